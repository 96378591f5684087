"""Benchmark of the structure-set build: time per stage, counts, and (optionally) CHGNet relaxations.

Usage:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_structures.py [--relax N] [--max-atoms 150]

Prints one JSON document: seconds per stage (and their share of the total), structures per source,
and with ``--relax N`` the median CHGNet relaxation time of N AB2 prototypes (one process, one thread).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-atoms", type=int, default=150)
    ap.add_argument("--relax", type=int, default=0, help="relax N generation prototypes (CHGNet)")
    args = ap.parse_args()

    from coreloss.structures import build, checks, dedup, sources

    times, dropped = {}, []
    t = time.perf_counter()
    raw = sources.read_zeose(args.max_atoms, dropped)
    times["read_zeose"] = time.perf_counter() - t
    t = time.perf_counter()
    raw += sources.read_aflow(dropped, args.max_atoms) + sources.read_pyxtal(dropped)
    minerals = sources.find_minerals_dir()
    raw += sources.read_minerals(minerals, dropped) if minerals else []
    raw += build.shipped_generated()
    derived = build.shipped_chgnet()
    times["read_other"] = time.perf_counter() - t
    t = time.perf_counter()
    ok = [r for r in raw + derived if not checks.check_sio2(r.structure)]
    times["checks"] = time.perf_counter() - t
    t = time.perf_counter()
    unique, dups = dedup.deduplicate([r for r in ok if r.source not in dedup.CHGNET_SOURCES])
    unique, more = dedup.merge_chgnet(unique, [r for r in ok if r.source in dedup.CHGNET_SOURCES], dict(dups))
    dups += more
    times["dedup"] = time.perf_counter() - t
    total = sum(times.values())
    raw += derived
    result = {"max_atoms": args.max_atoms, "seconds": {k: round(v, 2) for k, v in times.items()},
              "share": {k: round(v / total, 3) for k, v in times.items()},
              "total_seconds": round(total, 2), "read": len(raw), "passed_checks": len(ok),
              "duplicates": len(dups), "unique": len(unique),
              "per_source": dict(sorted({s: sum(r.source == s for r in unique)
                                         for s in {r.source for r in unique}}.items()))}
    if args.relax:
        from coreloss.structures.generate import ab2_prototypes, prescale, relax
        secs, steps = [], []
        for label, _, sub in ab2_prototypes()[: args.relax]:
            res = relax(prescale(sub))
            secs.append(res["seconds"])
            steps.append(res["steps"])
        result["chgnet_relax"] = {"n": len(secs), "median_seconds": round(statistics.median(secs), 2),
                                  "median_steps": statistics.median(steps),
                                  "seconds_per_step": round(sum(secs) / sum(steps), 4)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
