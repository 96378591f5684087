"""Learning curve of the inverse model: group-CV R2 per label against the number of structure groups.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_learning_curve.py \
        --data datasets/sio2_xtb_gfn2_v2.h5 --groups 15 31 62 124 0 --draws 3 \
        [--params '{"arch": "et", "augment_copies": 3, "augment_prob": 0.5}']

For each size (0: every group) and draw, a random subset of the dataset's structure groups
(coreloss.evaluate.split_groups) is scored by group 5-fold CV of the default InverseModel
(``--members``, ``--epochs``; ``--params``: other InverseModel parameters, e.g. trees); pooled
out-of-fold R2 and MAE per label. Answers: how much does a
model gain from more structures, and what should the DFT dataset reach at a given size? Writes
benchmarks/results/learning_curve_<data stem>.json (resumable: finished (size, draw) cells are
kept) and prints a markdown table (mean and spread over draws).
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
from coreloss.evaluate import cross_validate, split_groups  # noqa: E402
from coreloss.labels import LABEL_NAMES  # noqa: E402
from coreloss.models.inverse import InverseModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHORT = {"bond_length": "d(O-X)", "bond_angle": "angle", "voronoi_volume": "V_vor", "bop": "BOP",
         "mulliken_charge": "q_O", "excitation_energy": "E_exc"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--groups", type=int, nargs="+", default=[15, 31, 62, 124, 0],
                    help="numbers of structure groups (0: all)")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--params", default="{}", help="JSON InverseModel parameters (e.g. arch et)")
    args = ap.parse_args()
    params = json.loads(args.params)
    torch.set_num_threads(1)
    ds = load_dataset(args.data)
    groups = split_groups(ds)
    uniq = np.unique(groups)
    out = ROOT / "benchmarks" / "results" / f"learning_curve_{args.data.stem}.json"
    doc = json.loads(out.read_text()) if out.is_file() else {"cells": {}}
    doc.update({"data": str(args.data), "n_sites": len(ds), "n_groups": int(len(uniq)),
                "engine": ds.provenance.get("engine"),
                "model": {"members": args.members, "epochs": args.epochs, "folds": args.folds}})
    tag = f"m{args.members}e{args.epochs}f{args.folds}" + (f" {json.dumps(params, sort_keys=True)}" if params else "")
    for size in args.groups:
        n = len(uniq) if size <= 0 or size >= len(uniq) else size
        for draw in range(args.draws if n < len(uniq) else 1):
            key = f"{n}/{draw}/{tag}"
            if key in doc["cells"]:
                continue
            t0 = time.perf_counter()
            pick = np.random.default_rng(draw).choice(uniq, n, replace=False)
            rows = np.isin(groups, pick)
            res = cross_validate(ds.X[rows], ds.y[rows], groups[rows],
                                 lambda: InverseModel(members=args.members, epochs=args.epochs, seed=draw,
                                                      **params),
                                 n_splits=args.folds)
            doc["cells"][key] = {"groups": n, "draw": draw, "sites": int(rows.sum()),
                                 "r2": {k: v["r2"] for k, v in res["pooled"].items()},
                                 "mae": {k: v["mae"] for k, v in res["pooled"].items()},
                                 "seconds": time.perf_counter() - t0}
            doc["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            out.write_text(json.dumps(doc, indent=1))
            print(f"{key}: {rows.sum()} sites, R2 " + " ".join(
                f"{SHORT[k]} {v:.2f}" for k, v in doc["cells"][key]["r2"].items() if v is not None)
                + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n{ds.provenance.get('engine')} ({args.data.name}): group {args.folds}-fold CV R2, mean (min-max) over draws, {tag}\n")
    print("| groups | sites | " + " | ".join(SHORT[n] for n in LABEL_NAMES) + " |\n|---|---|" + "---|" * 6)
    for n in sorted({c["groups"] for k, c in doc["cells"].items() if k.endswith(tag)}):
        cells = [c for k, c in doc["cells"].items() if k.endswith(tag) and c["groups"] == n]
        vals = []
        for lab in LABEL_NAMES:
            r = [c["r2"][lab] for c in cells if c["r2"][lab] is not None]
            vals.append(f"{np.mean(r):.2f} ({min(r):.2f}-{max(r):.2f})" if r else "-")
        print(f"| {n} | {np.mean([c['sites'] for c in cells]):.0f} | " + " | ".join(vals) + " |")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
