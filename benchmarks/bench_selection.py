"""Budgeted site selection (coreloss.selection) on a structure set: FPS against random picks.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_selection.py \
        --structures src/coreloss/data/default_structures.json.gz --budgets 50,200 \
        --json benchmarks/results/selection.json

For each budget N: seconds to select; the covering radius (largest SOAP distance from any candidate
site to its nearest pick, L2-normalised SOAP) of FPS and of 5 seeded random draws of N sites; the
fraction of each geometric label's full min-max range (bond length, angle, Voronoi volume) spanned
by the picks; sites per source and structures (= engine tasks) picked.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", default="src/coreloss/data/default_structures.json.gz")
    ap.add_argument("--budgets", default="50,200")
    ap.add_argument("--json", default="benchmarks/results/selection.json")
    args = ap.parse_args()
    from coreloss.models.descriptors import SoapFeaturizer
    from coreloss.selection import candidate_sites, farthest_point_order
    from coreloss.sites import site_table
    from coreloss.structures import load_structures

    recs = load_structures(args.structures)
    t0 = time.perf_counter()
    cands = candidate_sites(recs)
    t_sites = time.perf_counter() - t0
    feat, by_id = SoapFeaturizer(), {r.id: r for r in recs}
    t0 = time.perf_counter()
    X = np.vstack([feat.featurize(by_id[sid].structure, [c[1] for c in cands if c[0] == sid])
                   for sid in dict.fromkeys(c[0] for c in cands)])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    t_soap = time.perf_counter() - t0
    labels = {(r["structure_id"], r["site_index"]): r for r in site_table(recs)}
    L = np.array([[labels[(c[0], c[1])][k] for k in ("bond_length", "bond_angle", "voronoi_volume")]
                  for c in cands], float)
    source = {r.id: r.source for r in recs}

    def cover(idx):
        d = np.full(len(X), np.inf)
        for i in idx:
            d = np.minimum(d, np.linalg.norm(X - X[i], axis=1))
        return float(d.max())

    def span(idx):
        lo, hi = np.nanmin(L, 0), np.nanmax(L, 0)
        sub = L[idx]
        return [float((np.nanmax(sub[:, j]) - np.nanmin(sub[:, j])) / (hi[j] - lo[j])) for j in range(3)]

    out = {"structures": args.structures, "n_structures": len(recs), "n_candidates": len(cands),
           "seconds_sites": round(t_sites, 1), "seconds_soap": round(t_soap, 1), "budgets": {}}
    rng = np.random.default_rng(0)
    for n in (int(b) for b in args.budgets.split(",")):
        t0 = time.perf_counter()
        order, _ = farthest_point_order(X, n)
        t_fps = time.perf_counter() - t0
        rand = [rng.choice(len(X), n, replace=False) for _ in range(5)]
        out["budgets"][n] = {
            "seconds_fps": round(t_fps, 2),
            "covering_radius_fps": cover(order),
            "covering_radius_random_mean": float(np.mean([cover(r) for r in rand])),
            "label_range_fraction_fps": dict(zip(("bond_length", "bond_angle", "voronoi_volume"), span(order))),
            "label_range_fraction_random_mean": dict(zip(("bond_length", "bond_angle", "voronoi_volume"),
                                                         np.mean([span(r) for r in rand], 0).tolist())),
            "structures_fps": len({cands[i][0] for i in order}),
            "structures_random_mean": float(np.mean([len({cands[i][0] for i in r}) for r in rand])),
            "sites_per_source_fps": dict(collections.Counter(source[cands[i][0]] for i in order)),
        }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
