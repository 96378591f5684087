"""Can a spectrum-neighbour OOD score separate measured non-SiO2 spectra from SiO2 DFT spectra?

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_ood_measured.py [--also XTB.h5]

Rebuilds the shipped model's training rows (``coreloss.workflow.training_rows`` +
``InverseModel.fit_rows``), refits ``SpectrumKNN`` with several smoothing widths and k on its
primary training spectra, sets each threshold as the model does (98.5 % quantile over clean and
augmented validation spectra and the training spectra scored leave-group-out), and counts how many
held-out DFT spectra (clean, augmented) and measured non-SiO2 spectra (../shared/data/experimental)
each variant flags. Writes benchmarks/results/ood_measured.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from coreloss.dataset import load_dataset  # noqa: E402
from coreloss.measured import load_model, predict_measured, read_measured  # noqa: E402
from coreloss.models.ood import SpectrumKNN  # noqa: E402
from coreloss.workflow import training_rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ("LSMO_linescan.hspy", "LSMO_STO_linescan.hspy", "exspy_coreloss_spectrum.msa")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="inverse model (default: shipped)")
    ap.add_argument("--data", type=Path, default=None,
                    help="the dataset the model was trained on (default: the path it records; that file "
                         "may have grown since, e.g. the DFT build: then pass the checkpoint it saw)")
    ap.add_argument("--measured", type=Path, default=ROOT.parent / "shared" / "data" / "experimental")
    args = ap.parse_args()
    m = load_model(args.model)
    prov = m.metadata["training_provenance"]
    ds = load_dataset(args.data or ROOT / prov["dataset"])
    aux = None
    if prov.get("auxiliary"):
        from coreloss.multifidelity import AuxiliaryRows
        aux = AuxiliaryRows.load(ROOT / prov["auxiliary"]["source"], ds)
    split = prov["split"]
    rows = training_rows(ds, split.get("test_fraction"), int(split.get("seed", 0)), aux)
    _, _, otr, ocal = m.fit_rows(rows.X, rows.groups, None if aux is None else rows.primary)
    if not args.measured.is_dir():
        raise SystemExit(f"error: no measured spectra in {args.measured}")
    L = np.nan_to_num(np.concatenate([predict_measured(read_measured(args.measured / n), m).X for n in MEASURED]))
    X_test, rng, aug = ds.X[rows.test], np.random.default_rng(0), m.make_augmenter()
    out = []
    for sigma in (0.0, 0.25, 0.5, 1.0):
        for k in (1, 3):
            s = SpectrumKNN(k=k, sigma_ev=sigma).fit(rows.X[otr], ds.grid.step)
            cal = np.concatenate([s.score(rows.X[ocal]), s.score(aug(rows.X[ocal], rng)),
                                  s.score(rows.X[otr], rows.groups[otr], rows.groups[otr])])
            thr = float(np.quantile(cal, 1.0 - m.ood_target_rate))
            r = {"sigma_ev": sigma, "k": k, "threshold": thr,
                 "held_out_clean": float(np.mean(s.score(X_test) > thr)),
                 "held_out_augmented": float(np.mean(s.score(aug(X_test, rng)) > thr)),
                 "measured_flagged": int(np.sum(s.score(L) > thr)), "measured_n": int(len(L))}
            out.append(r)
            print(f"sigma {sigma:g} eV, k {k}: held-out clean {r['held_out_clean']:.3f}, augmented "
                  f"{r['held_out_augmented']:.3f}; measured non-SiO2 {r['measured_flagged']}/{len(L)}", flush=True)
    (ROOT / "benchmarks" / "results" / "ood_measured.json").write_text(json.dumps(
        {"model": args.model or "shipped", "variants": out}, indent=1))


if __name__ == "__main__":
    main()
