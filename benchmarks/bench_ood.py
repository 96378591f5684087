"""OOD flag rates per source, and physically impossible predictions, for one or more inverse models.

Sources: the model's held-out test structures (coreloss.evaluate.test_mask 0.15, seed 0) clean, with
Poisson noise (SNR 20) and degraded by each coreloss.models.augment degradation; random spectra;
DFT spectra from another engine (gpaw sites in benchmarks/results/gpaw_sites.json, onset-aligned
with the training rule; and datasets/sio2_pw_reference.h5, the plane-wave GPAW references, when built); every measured file in ../shared/data/experimental through the measured
pipeline (with its low-loss file: Fourier-ratio deconvolution and resolution). For each source:
share flagged by the combined score and by each component, and the number of spectra whose raw
prediction left the physical limits (clipped by coreloss.models.bounds; then flagged).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ood.py --model src/coreloss/data/inverse_model.pt \
        --model /tmp/old_model.pt --data datasets/sio2_xtb_gfn2_v2.h5
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from coreloss.dataset import load_dataset  # noqa: E402
from coreloss.evaluate import split_groups, test_mask  # noqa: E402
from coreloss.models.augment import DEGRADATIONS, degrade  # noqa: E402
from coreloss.models.inverse import InverseModel  # noqa: E402
from coreloss.spectra import add_noise, align_to_grid, normalise_area, onset_energy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT.parent / "shared" / "data" / "experimental"
DFT_DATASETS = [ROOT / "datasets" / "sio2_pw_reference.h5"]  # used when present
MEASURED = [("exspy_coreloss_spectrum.msa", "exspy_lowloss_spectrum.msa", "Mn oxide"),
            ("LSMO_linescan.hspy", "LSMO_linescan_low_loss.hspy", "La0.7Sr0.3MnO3"),
            ("LSMO_STO_linescan.hspy", "LSMO_STO_linescan_low_loss.hspy", "LSMO on SrTiO3")]


def gpaw_spectra(grid):
    d = json.loads((ROOT / "benchmarks" / "results" / "gpaw_sites.json").read_text())
    names, X = [], []
    for v in d.values():
        e, y = np.asarray(v["energy"], float), np.asarray(v["intensity"], float)
        X.append(align_to_grid(e, y, onset_energy(e, y), grid))
        names.append(f"{v['polymorph']} O{v['site']}")
    return names, np.nan_to_num(np.asarray(X))


def summarise(full, extra_flag=None) -> dict:
    """The flag predict/map apply: combined score, clearly impossible raw prediction, label extrapolation."""
    from coreloss.measured.predict import CLIP_OOD_SIGMA
    flag = full["ood"] | (full["clipped_sigma"] > CLIP_OOD_SIGMA).any(axis=1)
    if extra_flag is not None:
        flag = flag | extra_flag
    return {"n": int(len(flag)), "flagged": float(flag.mean()), "combined_score": float(full["ood"].mean()),
            "clipped_spectra": int(full["clipped"].any(axis=1).sum())}


def model_rows(model, X, y, te, grid, fwhm) -> dict:
    thr = getattr(getattr(model, "combined_ood_", None), "thresholds_", None)
    rows = {}

    def run(name, Xs):
        full = model.predict_full(Xs)
        r = summarise(full, model.extrapolated(full["mean"]))
        if thr is not None:
            r["components"] = dict(zip(model.combined_ood_.names,
                                       (full["ood_components"] > thr).mean(axis=0).round(4).tolist()))
        rows[name] = r
        return full

    run("held-out clean", X[te])
    run("held-out SNR 20", np.nan_to_num(normalise_area(add_noise(X[te], 20.0, np.random.default_rng(1)),
                                                        grid.step)))
    for k in DEGRADATIONS + ("all",):
        run(f"held-out degraded: {k}", degrade(X[te], grid, k, seed=123, training_fwhm=fwhm, snr=30.0))
    run("random spectra", normalise_area(np.random.default_rng(0).random((200, grid.n)), grid.step))
    for path in DFT_DATASETS:  # plane-wave GPAW reference spectra (issue 9), where built
        if Path(path).exists():
            d = load_dataset(path)
            full = run(f"DFT dataset {Path(path).name}", d.X)
            rows[f"DFT dataset {Path(path).name}"]["per_site"] = {
                f"{sid} O{i}": {"bond_angle": round(float(m[1]), 1), "true_bond_angle": round(float(t[1]), 1),
                                "ood": bool(f)}
                for sid, i, m, t, f in zip(d.structure_ids, d.site_index, full["mean"], d.y, full["ood"])}
    names, G = gpaw_spectra(grid)
    full = run("DFT (gpaw sites, another engine)", G)
    rows["DFT (gpaw sites, another engine)"]["per_site"] = {
        n: {"bond_angle": round(float(m[1]), 1), "bond_length": round(float(m[0]), 3), "ood": bool(f)}
        for n, m, f in zip(names, full["mean"], full["ood"])}
    return rows


def measured_rows(model) -> dict:
    """Each measured file with its low-loss (the documented use); also without it and with
    ``calibrate="auto"``, to show every file is processed without hand steps."""
    from coreloss.measured import predict_measured, read_measured
    rows = {}
    if not EXP.exists():
        return rows
    for name, ll, what in MEASURED:
        variants = {"lowloss": {"lowloss": read_measured(EXP / ll)}, "no lowloss": {},
                    "lowloss, --shift auto": {"lowloss": read_measured(EXP / ll), "calibrate": "auto"}}
        out = {}
        for vname, kw in variants.items():
            res = predict_measured(read_measured(EXP / name), model, **kw)
            ok = res.valid
            sc = res.ood_score[ok]
            out[vname] = {"n": int(len(ok)), "processed": int(ok.sum()), "flagged": float(res.ood[ok].mean()),
                          "ood_score_min": float(sc.min()), "ood_score_median": float(np.median(sc)),
                          "clipped_spectra": int(res.clipped[ok].any(axis=1).sum()),
                          "shift_eV": res.provenance["calibration"]["shift_eV"]}
        rows[f"measured: {name} ({what})"] = {**out["lowloss"], "variants": out}
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="inverse model file (repeatable)")
    ap.add_argument("--data", default=str(ROOT / "datasets" / "sio2_xtb_gfn2_v2.h5"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ood.json"))
    args = ap.parse_args()
    ds = load_dataset(args.data)
    te = test_mask(split_groups(ds), 0.15, seed=0)
    fwhm = float(ds.provenance.get("parameters", {}).get("gaussian_fwhm", 1.0))
    res = {"dataset": args.data, "n_test": int(te.sum()), "models": {}}
    for path in args.model:
        model = InverseModel.load(path)
        rows = model_rows(model, ds.X, ds.y, te, ds.grid, fwhm)
        rows.update(measured_rows(model))
        Xbig = ds.X[np.random.default_rng(0).integers(len(ds.X), size=65536)]
        t0 = time.perf_counter()
        model.predict(Xbig)
        t1 = time.perf_counter()
        model.predict_full(Xbig)
        timing = {"n_spectra": 65536, "threads": 1, "predict_s": round(t1 - t0, 2),
                  "predict_full_s": round(time.perf_counter() - t1, 2)}
        res["models"][path] = {"ood_method": model.metadata.get("ood", {}).get("method"),
                               "augment": model.get_params().get("augment"), "sources": rows,
                               "timing": timing}
        print(f"timing on 65,536 spectra: predict {timing['predict_s']} s, predict_full {timing['predict_full_s']} s")
        print(f"\n### {path}\n\n| source | spectra | flagged | clipped (raw prediction impossible) |\n|---|---|---|---|")
        for k, r in rows.items():
            print(f"| {k} | {r['n']} | {100 * r['flagged']:.1f} % | {r['clipped_spectra']} |")
        for k, r in rows.items():
            for vname, v in r.get("variants", {}).items():
                print(f"- {k} [{vname}]: {v['processed']}/{v['n']} processed, {100 * v['flagged']:.1f} % "
                      f"flagged, OOD score min {v['ood_score_min']:.2f} median {v['ood_score_median']:.2f}, "
                      f"shift {v['shift_eV']:.2f} eV")
    res["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
