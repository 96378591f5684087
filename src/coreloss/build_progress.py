"""Progress and ETA of a dataset build that may span many runs and machines.

A build writes its plan (the structures still to compute when it started, their estimated O
sites and relative cost) to ``<out>.parts/plan.json``. Progress is then read from what is on
disk, so it survives kills and fresh clones: the sites in the dataset file and the finished part
files, against the plan. The ETA divides the plan's remaining cost by the measured throughput
of the finished structures of this plan (worker seconds per cost unit, from each structure's
recorded task wall time) and the number of workers.
"""

from __future__ import annotations

import json
from pathlib import Path

from coreloss.dataset_store import collect, now, parts_dir
from coreloss.fileio import atomic_write_bytes

PLAN_NAME = "plan.json"


def write_plan(pdir: Path, tasks: list[dict], workers: int, engine: str) -> Path:
    """Record the structures still to compute: ``tasks`` = ``[{id, sites, cost}]`` (cost: relative)."""
    doc = {"written": now(), "engine": engine, "workers": max(int(workers), 1), "tasks": tasks}
    path = Path(pdir) / PLAN_NAME
    atomic_write_bytes(path, json.dumps(doc, indent=1).encode())
    return path


def read_plan(out) -> dict | None:
    """The plan of the build writing ``out``, or None when no build is planned or running."""
    path = parts_dir(out) / PLAN_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def build_progress(out, workers: int | None = None) -> dict | None:
    """Sites and structures done, left (estimated) and the ETA (h) of the build writing ``out``.

    None when no plan exists (no build was started, or the last one finished). ``workers``
    overrides the plan's worker count for the ETA.
    """
    plan = read_plan(out)
    if plan is None:
        return None
    table, parts = collect(Path(out))
    done_ids = set(table.structures)
    tasks = plan.get("tasks", [])
    left = [t for t in tasks if t["id"] not in done_ids]
    done_here = [t for t in tasks if t["id"] in done_ids]
    task_seconds = {}
    for (sid, _), row in table.rows.items():
        info = row.get("info", {})
        if "task_seconds" in info:
            task_seconds[sid] = float(info["task_seconds"])
    measured = [t for t in done_here if t["id"] in task_seconds]
    cost_done = sum(t["cost"] for t in measured)
    secs_done = sum(task_seconds[t["id"]] for t in measured)
    n_workers = max(int(workers or plan.get("workers", 1)), 1)
    cost_left = sum(t["cost"] for t in left)
    eta_h = (secs_done / cost_done * cost_left / n_workers / 3600) if cost_done > 0 else None
    return {"planned_structures": len(tasks), "done_structures": len(done_here),
            "left_structures": len(left), "left_sites_estimated": int(sum(t["sites"] for t in left)),
            "sites_in_file_and_parts": len(table.rows), "failures": len(table.failures),
            "unmerged_parts": len(parts), "worker_seconds_done": secs_done,
            "workers": n_workers, "eta_hours": eta_h, "plan_written": plan.get("written"),
            "engine": plan.get("engine")}
