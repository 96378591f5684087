"""Group k-fold CV of inverse-model settings given on the command line (quick what-if probes).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_cv_candidates.py \
        --data datasets/sio2_gpaw_lcao.h5 --base '{"dropout": 0.3, "weight_decay": 0.001}' \
        --candidates '[{"hidden": [64], "dropout": 0.5, "weight_decay": 0.01}, {"augment": ["noise"]}]' \
        [--also datasets/sio2_xtb_gfn2_v2.h5]

Each candidate overrides ``--base`` on ``InverseModel(members, epochs)``; the folds and score are
those of ``coreloss.models.tuning.cv_select`` (``split_groups`` folds, mean pooled out-of-fold R2);
``--also`` joins an auxiliary dataset's rows to every training fold (``coreloss.multifidelity``).
Appends the result to benchmarks/results/cv_candidates.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from coreloss.dataset import load_dataset  # noqa: E402
from coreloss.evaluate import split_groups  # noqa: E402
from coreloss.models.inverse import InverseModel  # noqa: E402
from coreloss.models.tuning import cv_select  # noqa: E402
from coreloss.multifidelity import AuxiliaryRows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _params(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "sio2_gpaw_lcao.h5")
    ap.add_argument("--base", default="{}", help="JSON parameters shared by every candidate")
    ap.add_argument("--candidates", required=True, help="JSON list of parameter dicts")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--also", type=Path, default=None, help="auxiliary dataset (e.g. xtb) joined to each fold")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset(args.data)
    base = InverseModel(members=args.members, epochs=args.epochs, grid=ds.grid, **_params(json.loads(args.base)))
    aux = None if args.also is None else AuxiliaryRows.load(args.also, ds)
    res = cv_select(base, [_params(c) for c in json.loads(args.candidates)], ds.X, ds.y, split_groups(ds),
                    n_splits=args.folds, auxiliary=aux, progress=lambda i, c, s: print(f"{c}: mean R2 {s:.3f}", flush=True))
    for r in res:
        print(r["params"], f"clean {r['score_clean']:.3f}", {k: round(v["r2"], 3) for k, v in r["pooled"].items()})
        print("   measured-like", f"{r['score_degraded']:.3f}",
              {k: round(v["r2"], 3) for k, v in r["pooled_degraded"].items()})
    with open(ROOT / "benchmarks" / "results" / "cv_candidates.jsonl", "a") as fh:
        fh.write(json.dumps({"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             "data": str(args.data), "also": None if aux is None else str(args.also),
                             "n_sites": len(ds), "base": json.loads(args.base),
                             "members": args.members, "epochs": args.epochs, "folds": args.folds,
                             "score": "mean of clean and measured-like (tuning.measured_like) mean R2",
                             "results": [{"params": r["params"], "score": r["score"],
                                          "score_clean": r["score_clean"], "score_degraded": r["score_degraded"],
                                          "r2": {k: v["r2"] for k, v in r["pooled"].items()},
                                          "r2_degraded": {k: v["r2"] for k, v in r["pooled_degraded"].items()}}
                                         for r in res]},
                            default=float) + "\n")


if __name__ == "__main__":
    main()
