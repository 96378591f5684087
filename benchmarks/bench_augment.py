"""Augmentation ablation: which training degradations help on held-out spectra degraded the same way.

Trains one inverse model per configuration (the baseline: Poisson noise + 0.3 eV misalignment; the
baseline plus each degradation of coreloss.models.augment; all of them; the baseline with the
absolute onset as input) on the training structures of coreloss.evaluate.test_mask(0.15, seed 0),
and scores each on the held-out structures: clean, and degraded by each degradation (seeded,
coreloss.models.augment.degrade; noise at SNR 30). Writes benchmarks/results/augment_<data>.json
and prints markdown tables (mean R2 over the six labels, and R2 per label on clean spectra).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_augment.py \
        --data datasets/sio2_xtb_gfn2_v2.h5 --members 3 --epochs 60
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
from coreloss.evaluate import regression_metrics, split_groups, test_mask  # noqa: E402
from coreloss.labels import LABEL_NAMES  # noqa: E402
from coreloss.models.augment import DEGRADATIONS, degrade  # noqa: E402
from coreloss.models.inverse import DEFAULT_AUGMENT, InverseModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASE = ("noise", "misalign")
EXTRA = [k for k in DEGRADATIONS if k not in BASE]


def configs(names):
    out = {"baseline": {"augment": BASE, "max_shift_ev": 0.3}}
    for k in EXTRA:
        out[f"+{k}"] = {"augment": BASE + (k,), "max_shift_ev": 0.3}
    out["+misalign 1 eV"] = {"augment": BASE, "max_shift_ev": 1.0}
    out["all"] = {"augment": DEGRADATIONS, "max_shift_ev": 1.0}
    sel = tuple(k for k in DEGRADATIONS if k != "lifetime")
    out["selected (all but lifetime)"] = {"augment": sel, "max_shift_ev": 1.0}
    helpful = ("noise", "misalign", "stretch", "background", "plural")
    out["helpful: stretch+background+plural+misalign 1 eV"] = {"augment": helpful, "max_shift_ev": 1.0}
    out["all p=0.25"] = {"augment": DEGRADATIONS, "max_shift_ev": 1.0, "augment_prob": 0.25}
    out["selected + absolute onset"] = {"augment": sel, "max_shift_ev": 1.0, "absolute_onset": True}
    out["baseline + absolute onset"] = {"augment": BASE, "max_shift_ev": 0.3, "absolute_onset": True}
    return {k: v for k, v in out.items() if not names or k in names}


def mean_r2(m):
    vals = [v["r2"] for v in m.values() if v["r2"] is not None]
    return float(np.mean(vals))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "datasets" / "sio2_xtb_gfn2_v2.h5"))
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--only", default="", help="comma-separated configuration names")
    ap.add_argument("--append", action="store_true",
                    help="add the runs to the existing results file instead of a *_partial.json")
    args = ap.parse_args()
    ds = load_dataset(args.data)
    X, y, groups, grid = ds.X, ds.y, split_groups(ds), ds.grid
    fwhm = float(ds.provenance.get("parameters", {}).get("gaussian_fwhm", 1.0))
    te = test_mask(groups, 0.15, seed=0)
    tests = {"clean": X[te]}
    for k in DEGRADATIONS + ("all",):
        tests[k] = degrade(X[te], grid, k, seed=123, training_fwhm=fwhm, snr=30.0)
    res = {"dataset": {"path": args.data, "n_train": int((~te).sum()), "n_test": int(te.sum()),
                       "n_test_structures": int(len(np.unique(groups[te])))},
           "settings": {"members": args.members, "epochs": args.epochs, "test_noise_snr": 30.0,
                        "training_fwhm": fwhm, "default_augment": list(DEFAULT_AUGMENT)},
           "runs": {}}
    for name, cfg in configs([s for s in args.only.split(",") if s]).items():
        t0 = time.perf_counter()
        model = InverseModel(members=args.members, epochs=args.epochs, seed=0, grid=grid,
                             training_fwhm=fwhm, **cfg)
        model.fit(X[~te], y[~te], groups[~te], provenance=ds.provenance,
                  onset=ds.onset[~te] if cfg.get("absolute_onset") else None)
        run = {"config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
               "train_seconds": round(time.perf_counter() - t0, 1), "mean_r2": {}, "r2": {}, "ood_rate": {}}
        for tname, Xt in tests.items():
            full = model.predict_full(Xt, onset=ds.onset[te] if cfg.get("absolute_onset") else None)
            m = regression_metrics(y[te], full["mean"])
            run["mean_r2"][tname] = mean_r2(m)
            run["r2"][tname] = {k: v["r2"] for k, v in m.items()}
            run["ood_rate"][tname] = float(full["ood"].mean())
        res["runs"][name] = run
        print(f"{name}: {run['train_seconds']} s, mean R2 " +
              ", ".join(f"{k} {v:.3f}" for k, v in run["mean_r2"].items()), flush=True)
    cols = list(tests)
    print("\n| training | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 1))
    for name, run in res["runs"].items():
        print(f"| {name} | " + " | ".join(f"{run['mean_r2'][c]:.3f}" for c in cols) + " |")
    print("\n| training (clean test) | " + " | ".join(LABEL_NAMES) + " |\n|" + "---|" * 7)
    for name, run in res["runs"].items():
        print(f"| {name} | " + " | ".join(f"{run['r2']['clean'][n]:.3f}" for n in LABEL_NAMES) + " |")
    res["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = ROOT / "benchmarks" / "results" / f"augment_{Path(args.data).stem}.json"
    if args.append and out.exists():
        old = json.loads(out.read_text())
        if old.get("settings") != res["settings"]:
            raise SystemExit(f"{out} was made with other settings; not appending")
        res["runs"] = {**old["runs"], **res["runs"]}
    elif args.only:
        out = out.with_name(out.stem + "_partial.json")
    out.write_text(json.dumps(res, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
