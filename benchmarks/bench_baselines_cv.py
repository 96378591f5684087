"""Baselines under the same group k-fold CV as the networks (issue 11): ridge and random forest.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_baselines_cv.py \
        [--data datasets/sio2_gpaw_lcao.h5] [--baselines ridge rf] [--folds 5]

Folds: ``coreloss.evaluate.group_kfold`` over ``split_groups`` (the folds of
``bench_multifidelity.py`` and ``coreloss evaluate --cv``). Each baseline trains as in
``bench_models.py``: the clean training spectra plus three copies degraded by the networks'
noise/shift augmentation (``make_augmenter``), on the dataset's rows only. Pooled out-of-fold R2
and MAE per label, on the clean validation spectra and on measured-like copies of them
(``coreloss.models.tuning.measured_like``, the second half of ``cv_select``'s score); JSON
``benchmarks/results/baselines_cv_<data stem>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from coreloss.dataset import load_dataset  # noqa: E402
from coreloss.evaluate import cross_validate, split_groups  # noqa: E402
from coreloss.labels import LABEL_NAMES  # noqa: E402
from coreloss.models.baselines import fit_baseline  # noqa: E402
from coreloss.models.inverse import make_augmenter  # noqa: E402
from coreloss.models.tuning import measured_like  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class Augmented:
    """Baseline ``name`` fitted on clean + 3 augmented copies of its training spectra."""

    def __init__(self, name: str, grid):
        self.name, self.grid = name, grid

    def fit(self, X, y):
        rng = np.random.default_rng(0)
        aug = make_augmenter(self.grid, [50.0, 20.0, 10.0], 0.3)
        self.model_ = fit_baseline(self.name, np.concatenate([X] + [aug(X, rng) for _ in range(3)]),
                                   np.concatenate([y] * 4))
        return self

    def predict(self, X):
        return self.model_.predict(X)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "sio2_gpaw_lcao.h5")
    ap.add_argument("--baselines", nargs="+", default=["ridge", "rf"])
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    ds = load_dataset(args.data)
    groups = split_groups(ds)
    res = {"data": str(args.data), "n_sites": len(ds), "n_groups": int(len(np.unique(groups))),
           "folds": args.folds, "cv": {}}
    print(f"{args.data}: {len(ds)} sites, {res['n_groups']} groups; group {args.folds}-fold CV, pooled R2 (MAE)\n")
    print("| baseline | " + " | ".join(LABEL_NAMES) + " | mean R2 |\n|---|" + "---|" * (len(LABEL_NAMES) + 1))
    for name in args.baselines:
        t0 = time.perf_counter()
        cv = cross_validate(ds.X, ds.y, groups, lambda: Augmented(name, ds.grid), n_splits=args.folds,
                            degraded=lambda X: measured_like(X, ds.grid))
        res["cv"][name] = {"pooled": cv["pooled"], "pooled_degraded": cv["pooled_degraded"],
                           "seconds": time.perf_counter() - t0}
        for tag, pooled in ((name, cv["pooled"]), (f"{name}, measured-like", cv["pooled_degraded"])):
            mean = float(np.mean([pooled[n]["r2"] for n in LABEL_NAMES]))
            print(f"| {tag} | " + " | ".join(f"{pooled[n]['r2']:.2f} ({pooled[n]['mae']:.3g})" for n in LABEL_NAMES)
                  + f" | {mean:.2f} |", flush=True)
    out = ROOT / "benchmarks" / "results" / f"baselines_cv_{args.data.stem}.json"
    out.write_text(json.dumps(res, indent=1, default=float))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
