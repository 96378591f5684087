"""Dataset build throughput: N workers vs 1 worker on a fixed, size-stratified subset.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dataset.py --n 12 --workers 1 2 \
        [--structures STRUCTS.json.gz] [--engine xtb] [-p method=GFN1-xTB] [--max-computed-atoms 100]

The subset: the structure set sorted by computed atoms (the engine's supercell; after
``--max-atoms`` / ``--max-computed-atoms``), ``--n`` structures taken at evenly spaced ranks
(smallest and largest included), so it spans those sizes.
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


def subset_ids(records, n: int, max_atoms: int | None, mid: float | None,
               max_computed: int | None = None) -> list[str]:
    from coreloss.dataset import computed_atoms, select_structures
    recs = select_structures(records, max_atoms=max_atoms, min_image_distance=mid)
    if max_computed:
        recs = [r for r in recs if computed_atoms(r.structure, mid) <= max_computed]
    ranks = np.unique(np.round(np.linspace(0, len(recs) - 1, min(n, len(recs)))).astype(int))
    return [recs[i].id for i in ranks]


def main(argv=None) -> int:
    from rich.console import Console

    from coreloss.dataset import (_estimate_o_sites, build_dataset, computed_atoms, load_dataset,
                                  parse_engine_params, resolve_engine, select_structures)
    from coreloss.structures.record import load_structures

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", default=None, help="structure set (default: embedded set)")
    ap.add_argument("--engine", default="xtb")
    ap.add_argument("-p", "--engine-param", action="append", default=[])
    ap.add_argument("--n", type=int, default=12, help="subset size")
    ap.add_argument("--max-atoms", type=int, default=None)
    ap.add_argument("--max-computed-atoms", type=int, default=None,
                    help="subset only from structures whose (super)cell has at most this many atoms")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args(argv)
    if a.structures is None:
        from coreloss.structures import default_set_path
        a.structures = str(default_set_path())
    records = load_structures(a.structures)
    params = parse_engine_params(a.engine_param)
    mid = resolve_engine(a.engine, params).params.get("min_image_distance")
    ids = subset_ids(records, a.n, a.max_atoms, mid, a.max_computed_atoms)
    sizes = {r.id: computed_atoms(r.structure, mid) for r in records}
    console = Console(stderr=True)
    print(f"subset of {len(ids)}/{len(records)} structures, computed (supercell) atoms: "
          f"{[sizes[i] for i in ids]}")
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
            tasks = {}  # per structure: (computed atoms, seconds per SCF = task / (sites + 1))
            for sid, info in zip(ds.structure_ids, ds.site_provenance):
                tasks[sid] = (sizes[sid], info["task_seconds"] / (info["task_sites"] + 1))
            results[w]["tasks"] = tasks
            print(f"workers={w}: {n_sites} sites ({len(rep.new_failures)} failed) in {wall:.1f} s "
                  f"= {results[w]['sites_per_min']:.1f} sites/min")
    base = results[a.workers[0]]
    for w in a.workers[1:]:
        print(f"speed-up {w} vs {a.workers[0]} workers: {base['wall_s'] / results[w]['wall_s']:.2f}x")
    # extrapolation: seconds per SCF ~ c * atoms^b (fitted on the first run's tasks);
    # a structure costs (unique O sites + 1 ground state) SCFs of its supercell
    pts = np.array([v for v in base["tasks"].values() if v[1] > 0], float)
    if len(pts) >= 2:
        b, logc = np.polyfit(np.log(pts[:, 0]), np.log(pts[:, 1]), 1)
        full = select_structures(records, max_atoms=a.max_atoms)
        n_sites = sum(_estimate_o_sites(r.structure) for r in full)
        serial = float(sum(np.exp(logc) * sizes[r.id] ** b * (_estimate_o_sites(r.structure) + 1)
                           for r in full))
        print(f"fit: seconds per SCF = {np.exp(logc):.3g} * atoms^{b:.2f}; full set: {len(full)} "
              f"structures, ~{n_sites} sites (max-atoms {a.max_atoms}), extrapolated "
              f"{serial / 3600:.1f} h on {a.workers[0]} worker(s)")
        for w in a.workers[1:]:
            sp = base["wall_s"] / results[w]["wall_s"]
            print(f"  ... {serial / sp / 3600:.1f} h on {w} workers (measured speed-up)")
        base["extrapolated_full_set_h"] = serial / 3600
        base["fit"] = {"c": float(np.exp(logc)), "b": float(b), "full_set_sites": n_sites}
    if a.json:
        Path(a.json).write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
