"""What a finished dataset build cost, from the timings every site stores in its provenance.

For each structure: supercell atoms, sites, ground-state SCF seconds, mean Z+1 seconds per site
and the task's wall seconds (one Dask task per structure). Prints a table of selected structures,
the cost fit t_SCF = a * atoms^b, and the summed task seconds (= the 1-worker build time at the
same per-task speed) next to a wall time you pass with ``--wall-seconds`` (from the build's log).

    .venv/bin/python benchmarks/bench_build_report.py runs/sio2_xtb_gfn2.h5 \
        [--since 2026-11-25T01:28] [--wall-seconds 7300] [--show zeo-MTN amcsd-Stishovite]
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def per_structure(path: Path) -> dict:
    with h5py.File(path, "r") as fh:
        sids = fh["structure_ids"].asstr()[:]
        prov = [json.loads(x) for x in fh["site_provenance"].asstr()[:]]
    rows: dict = {}
    for sid, p in zip(sids, prov):
        e = p["engine"]
        r = rows.setdefault(sid, {"atoms": e.get("supercell_atoms"), "sites": 0, "z_plus_1_s": [],
                                  "ground_s": e.get("ground_state_wall_s"), "task_s": p.get("task_seconds"),
                                  "blas": e.get("linear_algebra")})
        r["sites"] += 1
        r["z_plus_1_s"].append(e.get("wall_s"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--exclude", default=None, help="dataset whose structures to leave out (an earlier run)")
    ap.add_argument("--wall-seconds", type=float, default=None, help="measured wall time of the run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--show", nargs="*", default=[])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = per_structure(Path(args.dataset))
    if args.exclude:
        with h5py.File(args.exclude, "r") as fh:
            for sid in fh["structures/ids"].asstr()[:]:
                rows.pop(sid, None)
    atoms = np.array([r["atoms"] for r in rows.values()], float)
    scf = np.array([(r["ground_s"] + sum(r["z_plus_1_s"])) / (r["sites"] + 1) for r in rows.values()])
    b, log_a = np.polyfit(np.log(atoms), np.log(scf), 1)
    task = np.array([r["task_s"] or 0.0 for r in rows.values()])
    n_sites = sum(r["sites"] for r in rows.values())
    print(f"{len(rows)} structures, {n_sites} sites; supercells {atoms.min():.0f}-{atoms.max():.0f} atoms")
    print(f"seconds per SCF = {np.exp(log_a):.2e} x atoms^{b:.2f}")
    print(f"summed task seconds (1 worker at this per-task speed): {task.sum():.0f} s = {task.sum() / 3600:.2f} h")
    res = {"dataset": args.dataset, "n_structures": len(rows), "n_sites": n_sites,
           "scf_fit": {"a": float(np.exp(log_a)), "b": float(b)}, "task_seconds_sum": float(task.sum()),
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if args.wall_seconds:
        print(f"measured wall on {args.workers} workers: {args.wall_seconds:.0f} s = {args.wall_seconds / 3600:.2f} h; "
              f"summed task time / wall = {task.sum() / args.wall_seconds:.2f}")
        res.update(wall_seconds=args.wall_seconds, workers=args.workers,
                   parallel_efficiency=task.sum() / args.wall_seconds / args.workers)
    print("\n| structure | supercell atoms | sites | ground SCF s | Z+1 s/site | task s | s per site |")
    print("|---|---|---|---|---|---|---|")
    shown = {}
    for sid in args.show:
        r = rows.get(sid)
        if r is None:
            print(f"| {sid} | not in this run |||||")
            continue
        per_site = (r["task_s"] or 0.0) / r["sites"]
        shown[sid] = {**r, "s_per_site": per_site}
        print(f"| {sid} | {r['atoms']} | {r['sites']} | {r['ground_s']:.1f} | {np.mean(r['z_plus_1_s']):.1f} | "
              f"{r['task_s']:.0f} | {per_site:.1f} |")
    res["shown"] = shown
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
