"""Dataset build throughput: N workers vs 1 worker on a fixed, size-stratified subset.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dataset.py --n 12 --workers 1 2 \
        [--structures STRUCTS.json.gz] [--engine xtb] [-p method=GFN1-xTB] [--max-atoms 120]

The subset: the structure set sorted by atom count (after ``--max-atoms``), ``--n`` structures
taken at evenly spaced ranks (smallest and largest included), so it spans the set's sizes.
Each worker count builds the same subset into a fresh file. Prints sites/minute, speed-up
ratios and an extrapolated full-set time from a power-law fit of task time vs atom count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def subset_ids(records, n: int, max_atoms: int | None) -> list[str]:
    recs = sorted((r for r in records if max_atoms is None or len(r.structure) <= max_atoms),
                  key=lambda r: len(r.structure))
    ranks = np.unique(np.round(np.linspace(0, len(recs) - 1, min(n, len(recs)))).astype(int))
    return [recs[i].id for i in ranks]


def main(argv=None) -> int:
    from rich.console import Console

    from coreloss.dataset import build_dataset, load_dataset, parse_engine_params, select_structures
    from coreloss.structures.record import load_structures

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", default=None, help="structure set (default: embedded set)")
    ap.add_argument("--engine", default="xtb")
    ap.add_argument("-p", "--engine-param", action="append", default=[])
    ap.add_argument("--n", type=int, default=12, help="subset size")
    ap.add_argument("--max-atoms", type=int, default=None)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args(argv)
    if a.structures is None:
        from coreloss.structures import default_set_path
        a.structures = str(default_set_path())
    records = load_structures(a.structures)
    ids = subset_ids(records, a.n, a.max_atoms)
    sizes = {r.id: len(r.structure) for r in records}
    params = parse_engine_params(a.engine_param)
    console = Console(stderr=True)
    print(f"subset of {len(ids)}/{len(records)} structures, atoms: {[sizes[i] for i in ids]}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_dataset_") as tmp:
        for w in a.workers:
            out = Path(tmp) / f"w{w}.h5"
            t0 = time.perf_counter()
            rep = build_dataset(out, a.structures, engine=a.engine, engine_params=params, workers=w,
                                ids=ids, checkpoint_every=10_000, console=console)
            wall = time.perf_counter() - t0
            n_sites = rep.new_sites + len(rep.new_failures)
            results[w] = {"wall_s": wall, "sites": n_sites, "failures": len(rep.new_failures),
                          "sites_per_min": 60 * n_sites / wall}
            ds = load_dataset(out)
            tasks = {}
            for sid, info in zip(ds.structure_ids, ds.site_provenance):
                tasks[sid] = (info["n_atoms"], info["task_seconds"])
            results[w]["tasks"] = tasks
            print(f"workers={w}: {n_sites} sites ({len(rep.new_failures)} failed) in {wall:.1f} s "
                  f"= {results[w]['sites_per_min']:.1f} sites/min")
    base = results[a.workers[0]]
    for w in a.workers[1:]:
        print(f"speed-up {w} vs {a.workers[0]} workers: {base['wall_s'] / results[w]['wall_s']:.2f}x")
    # extrapolation: task seconds ~ c * atoms^b, fitted on the first run's tasks
    pts = np.array([v for v in base["tasks"].values() if v[1] > 0], float)
    if len(pts) >= 2:
        b, logc = np.polyfit(np.log(pts[:, 0]), np.log(pts[:, 1]), 1)
        full = [r for r in select_structures(records, max_atoms=a.max_atoms)]
        serial = float(sum(np.exp(logc) * len(r.structure) ** b for r in full))
        print(f"fit: task seconds = {np.exp(logc):.3g} * atoms^{b:.2f}; full set ({len(full)} "
              f"structures, max-atoms {a.max_atoms}) extrapolated: {serial / 3600:.1f} h on 1 worker")
        for w in a.workers[1:]:
            sp = base["wall_s"] / results[w]["wall_s"]
            print(f"  ... {serial / sp / 3600:.1f} h on {w} workers (measured speed-up)")
        base["extrapolated_full_set_h_1_worker"] = serial / 3600
        base["fit"] = {"c": float(np.exp(logc)), "b": float(b)}
    if a.json:
        Path(a.json).write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
