"""How stable is the OOD flag from one training run to the next? The flag with and without the spectrum kNN.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_ood_stability.py --data datasets/sio2_gpaw_lcao.h5 \
        --other datasets/sio2_xtb_gfn2_dft_sites.h5 --reference datasets/sio2_pw_reference.h5 --seeds 0 1 2 3 4 5

Trains the inverse model (``--arch``/``--members``/``--epochs``) on the training structures of the
fixed hash split (``coreloss.evaluate.test_mask``, 15 %) with several seeds (the seed sets the
initialisation, the batches and which training groups become the validation structures), and
reports the fraction flagged of: held-out structures' spectra (clean, Poisson SNR 10, every
degradation of ``coreloss.models.augment`` at SNR 30), the other engine's spectra (``--other``;
e.g. xtb spectra of the same sites), a reference set (``--reference``; the plane-wave spectra)
and random spectra. Three flags from the same trained model:

* ``PCA + latent kNN``: the flag before session 9, rebuilt from the model's scores (latent-kNN
  threshold re-calibrated on the validation spectra without the spectrum kNN);
* ``spectrum kNN``: :class:`coreloss.models.ood.SpectrumKNN` alone, at its own threshold;
* ``the flag``: the model's (``InverseModel.predict_full``): PCA, latent kNN and spectrum kNN.

The first version of this script (commit history) also tried a leave-group-out calibration of
the latent-kNN threshold: it narrowed the spread over seeds but flagged fewer xtb spectra.

Writes benchmarks/results/ood_stability.json.
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
import torch  # noqa: E402

from coreloss.dataset_store import load_dataset  # noqa: E402
from coreloss.evaluate import split_groups, test_mask  # noqa: E402
from coreloss.models.augment import Augmenter, degrade  # noqa: E402
from coreloss.models.inverse import InverseModel  # noqa: E402
from coreloss.models.ood import OOD_SCORES, CombinedOOD  # noqa: E402
from coreloss.spectra import add_noise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SKNN = OOD_SCORES.index("spectrum_knn")
FLAGS = ("PCA + latent kNN", "spectrum kNN", "the flag (PCA + latent + spectrum kNN)")


def flag_before(model: InverseModel, X_fit, groups_fit) -> CombinedOOD:
    """The PCA + latent-kNN flag of a model trained before the spectrum kNN, from ``model``'s scores."""
    tr, va, _, _ = model.fit_rows(X_fit, groups_fit)
    rng = np.random.default_rng(model.seed + 7)  # the same noisy copies as InverseModel.fit_ood
    Xn = Augmenter(model.grid, ("noise",), tuple(model.snrs), noise_kind=model.noise_kind)(X_fit[va], rng)
    comp = model._ood_components(np.concatenate([X_fit[va], Xn]))[:, :3]
    return CombinedOOD.fit(comp, names=OOD_SCORES[:3], flag_names=("pca", "latent_knn"),
                           target_rate=model.ood_target_rate, fixed={"pca": model.ood_.threshold_})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "sio2_gpaw_lcao.h5")
    ap.add_argument("--other", type=Path, nargs="*", default=[ROOT / "datasets" / "sio2_xtb_gfn2_dft_sites.h5"])
    ap.add_argument("--reference", type=Path, default=ROOT / "datasets" / "sio2_pw_reference.h5")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arch", default="mlp", choices=("mlp", "cnn"))
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=150)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds = load_dataset(args.data)
    groups = split_groups(ds)
    te = test_mask(groups, 0.15, seed=0)
    noise_rng = np.random.default_rng(1)
    sets = {"held-out structures (clean)": ds.X[te],
            "held-out structures (SNR 10, Poisson)": add_noise(ds.X[te], 10.0, noise_rng),
            "held-out structures, every degradation (SNR 30)": degrade(ds.X[te], ds.grid, "all", seed=123)}
    for p in args.other:
        o = load_dataset(p)
        sets[f"{o.provenance.get('engine')} spectra ({p.name})"] = o.X
    if args.reference and args.reference.is_file():
        sets[f"reference set ({args.reference.name})"] = load_dataset(args.reference).X
    rng = np.random.default_rng(0)
    rand = np.abs(rng.normal(size=(200, ds.grid.n))).cumsum(axis=1)[:, ::-1]
    sets["random spectra"] = rand / np.trapezoid(rand, dx=ds.grid.step, axis=1)[:, None]
    hidden = (256, 128) if args.arch == "mlp" else (128,)
    runs = []
    for seed in args.seeds:
        m = InverseModel(arch=args.arch, hidden=hidden, members=args.members, epochs=args.epochs, seed=seed)
        m.fit(ds.X[~te], ds.y[~te], groups=groups[~te], provenance=ds.provenance)
        before = flag_before(m, ds.X[~te], groups[~te])
        s_thr = float(m.combined_ood_.thresholds_[SKNN])
        run = {"seed": seed, "thresholds": dict(zip(m.combined_ood_.names, m.combined_ood_.thresholds_.tolist())),
               "flagged": {}}
        for name, X in sets.items():
            full = m.predict_full(X)
            comp = full["ood_components"]
            run["flagged"][name] = dict(zip(FLAGS, (float(np.mean(before.combine(comp[:, :3])[1])),
                                                    float(np.mean(comp[:, SKNN] > s_thr)), float(np.mean(full["ood"])))))
        runs.append(run)
        print(f"seed {seed} ({time.perf_counter() - t0:.0f} s): " + "; ".join(
            f"{n}: " + " / ".join(f"{v[c]:.0%}" for c in FLAGS) for n, v in run["flagged"].items()), flush=True)
    print(f"\n{len(ds)} sites ({te.sum()} held out); {args.arch}, {args.members} members; fraction flagged, "
          "min-max over seeds (each seed)\n\n| spectra | n | " + " | ".join(FLAGS) + " |\n|---|---|---|---|---|")
    for name, X in sets.items():
        cells = []
        for cal in FLAGS:
            v = [r["flagged"][name][cal] for r in runs]
            cells.append(f"{min(v):.0%}-{max(v):.0%} (" + ", ".join(f"{x:.0%}" for x in v) + ")")
        print(f"| {name} | {len(X)} | " + " | ".join(cells) + " |")
    res = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "data": str(args.data),
           "n_sites": len(ds), "n_test": int(te.sum()),
           "model": {"arch": args.arch, "members": args.members, "epochs": args.epochs},
           "runs": runs,
           "seconds": time.perf_counter() - t0}
    out = ROOT / "benchmarks" / "results" / "ood_stability.json"
    out.write_text(json.dumps(res, indent=1))
    print(f"\nwrote {out} ({res['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
