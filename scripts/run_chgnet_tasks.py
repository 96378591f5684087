"""Run chosen tasks of the CHGNet plan (coreloss.structures.diverse) into the resumable cache folder.

Usage (one process, one torch thread, low priority next to a DFT build):
    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/run_chgnet_tasks.py \
        --cache datasets/chgnet_structures amo-2p2gcc-q6ps-s0 amo-2p2gcc-q6ps-s0-cell

Task ids are matched exactly, or as a prefix ending in ``*`` (``relax-zeo-*``); tasks run in plan
order; finished tasks (same parameters) are skipped. Unlike ``coreloss structures build --generate``
this reruns neither the AB2 generation nor the rest of the plan.
"""

from __future__ import annotations

import argparse
import sys

from coreloss.structures import diverse


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", nargs="+", help="task ids (or prefixes ending in *)")
    ap.add_argument("--cache", default="datasets/chgnet_structures")
    ap.add_argument("--max-minutes", type=float, default=None, help="start no new task after this time")
    args = ap.parse_args(argv)
    zeo = any("zeo" in t for t in args.tasks)  # relax-zeo-*, md-zeo-*
    parents, zeolites = diverse.default_parents(zeolites=zeo)

    def wanted(tid: str) -> bool:
        return any(tid == t or (t.endswith("*") and tid.startswith(t[:-1])) for t in args.tasks)

    tasks = [t for t in diverse.plan(parents, zeolites) if wanted(t.id)]
    if not tasks:
        print("error: no task of the plan matches " + " ".join(args.tasks), file=sys.stderr)
        return 2
    print("tasks:", " ".join(t.id for t in tasks), flush=True)
    diverse.run(tasks, parents, args.cache, None if args.max_minutes is None else 60 * args.max_minutes,
                log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
