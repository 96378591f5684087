"""Where the labels' information sits: between structures or between the sites of one structure.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_within_structure.py \
        [--data datasets/sio2_gpaw_lcao.h5] [--folds 5] [--ghosts]

Splits the variance of the aligned spectra (summed over the grid) and of each label into a part
between structures (structure means) and a part within structures (each site's deviation from its
structure's mean). Then takes the random-forest baseline's out-of-fold predictions (group k-fold,
``coreloss.evaluate.cross_validate``; clean spectra) and scores them the same two ways: R2 of the
structure means, and R2 of the within-structure deviations (structures with >= 2 sites). ``--ghosts`` (gpaw-lcao datasets): is the within-structure part of
a spectrum a basis artefact of the ghost functions in voids? Each site's distance to the nearest
ghost in its supercell (rebuilt by the engine's own rule, geometry only) against its
within-structure spectral deviation: correlation with the deviation's size, and ridge (group
5-fold) R2 of the within-structure ghost-distance deviation from the spectral deviation. JSON
``benchmarks/results/within_structure_<data stem>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from coreloss.dataset import load_dataset  # noqa: E402
from coreloss.evaluate import cross_validate, regression_metrics, split_groups  # noqa: E402
from coreloss.labels import LABEL_NAMES  # noqa: E402
from coreloss.models.baselines import fit_baseline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class Forest:
    def fit(self, X, y):
        self.model_ = fit_baseline("rf", X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)


def structure_means(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Each row replaced by the (NaN-ignoring) mean of the rows of its structure."""
    out = np.full(values.shape, np.nan)
    for s in np.unique(ids):
        w = ids == s
        has = np.isfinite(values[w]).any(axis=0)
        out[np.ix_(w, has)] = np.nanmean(values[w][:, has], axis=0)
    return out


def r2(true, pred) -> float:
    """R2 of one column (NaN rows skipped), by :func:`coreloss.evaluate.regression_metrics`."""
    return regression_metrics(np.asarray(true)[:, None], np.asarray(pred)[:, None], ["x"])["x"]["r2"]


def ghost_check(ds, ids, Xm, multi) -> dict:
    """Nearest-ghost distance of each site (the engine's supercell and void rule) against its
    within-structure spectral deviation."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GroupKFold, cross_val_predict

    from coreloss.engines.gpaw_lcao import GPAWLCAOEngine

    eng = GPAWLCAOEngine(**{k: v for k, v in ds.provenance["parameters"].items() if k != "log_dir"})
    dist, cells = np.full(len(ds), np.nan), {}
    for i, s in enumerate(ids):
        if s not in cells:
            *_, n_cells, voids, atoms, _ = eng._cell(ds.structures[s])
            cells[s] = (atoms, len(voids), n_cells)
        atoms, nv, n_cells = cells[s]
        if nv:
            j = ds.site_provenance[i]["engine"].get("supercell_index", ds.site_index[i] * n_cells)
            dist[i] = atoms.get_distances(j, list(range(len(atoms) - nv, len(atoms))), mic=True).min()
    ok = multi & np.isfinite(dist)
    dev = ds.X - Xm
    t = (dist - structure_means(dist[:, None], ids)[:, 0])[ok]
    pred = cross_val_predict(RidgeCV(alphas=np.logspace(-3, 3, 13)), dev[ok], t, groups=ids[ok], cv=GroupKFold(5))
    return {"n_sites": int(ok.sum()), "n_with_ghosts": int(np.isfinite(dist).sum()),
            "corr_size": float(np.corrcoef(dist[ok], np.linalg.norm(dev[ok], axis=1))[0, 1]),
            "r2_ridge": r2(t, pred)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "sio2_gpaw_lcao.h5")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--ghosts", action="store_true", help="also test the ghost functions (gpaw-lcao)")
    args = ap.parse_args()
    ds = load_dataset(args.data)
    ids = np.asarray(ds.structure_ids).astype(str)
    Xm = structure_means(ds.X, ids)
    res = {"data": str(args.data), "n_sites": len(ds), "n_structures": int(len(np.unique(ids))),
           "spectra_within_fraction": float(((ds.X - Xm) ** 2).sum() / ((ds.X - ds.X.mean(0)) ** 2).sum()),
           "labels": {}}
    oof = cross_validate(ds.X, ds.y, split_groups(ds), Forest, n_splits=args.folds)["oof"]
    multi = np.array([np.sum(ids == s) > 1 for s in ids])
    ym, pm = structure_means(ds.y, ids), structure_means(oof, ids)
    print(f"{args.data}: {len(ds)} sites of {res['n_structures']} structures; spectra: "
          f"{res['spectra_within_fraction']:.0%} of the variance within structures\n")
    print("| label | variance within structures | R2 all sites | R2 structure means | R2 within-structure deviations |\n"
          "|---|---|---|---|---|")
    for j, n in enumerate(LABEL_NAMES):
        y = ds.y[:, j]
        within = float(np.nansum((y - ym[:, j]) ** 2) / np.nansum((y - np.nanmean(y)) ** 2))
        d = {"within_fraction": within, "r2": r2(y, oof[:, j]), "r2_means": r2(ym[:, j], pm[:, j]),
             "r2_within": r2((y - ym[:, j])[multi], (oof[:, j] - pm[:, j])[multi])}
        res["labels"][n] = d
        print(f"| {n} | {within:.0%} | {d['r2']:.2f} | {d['r2_means']:.2f} | {d['r2_within']:.2f} |")
    if args.ghosts:
        res["ghosts"] = ghost_check(ds, ids, Xm, multi)
        print(f"\nghosts: corr(nearest-ghost distance, |spectrum - structure mean|) "
              f"{res['ghosts']['corr_size']:.2f}; R2 of the ghost-distance deviation from the spectral "
              f"deviation {res['ghosts']['r2_ridge']:.3f} ({res['ghosts']['n_sites']} sites)")
    out = ROOT / "benchmarks" / "results" / f"within_structure_{args.data.stem}.json"
    out.write_text(json.dumps(res, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
