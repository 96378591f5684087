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
    """Record the tasks still to compute: ``tasks`` = ``[{id, sites, cost}]``; ``sites`` is the list
    of O-site indices of a task, or their estimated number when the task takes all of a
    structure's sites; ``cost`` is relative (the engine's cost model)."""
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
    finished = set(table.rows) | set(table.failures)

    def n_sites(t):
        return len(t["sites"]) if isinstance(t["sites"], list) else int(t["sites"])

    def is_done(t):
        if isinstance(t["sites"], list):
            return all((t["id"], int(i)) in finished for i in t["sites"])
        return t["id"] in table.structures

    tasks = plan.get("tasks", [])
    done = [t for t in tasks if is_done(t)]
    left = [t for t in tasks if not is_done(t)]
    # measured throughput: worker seconds of the finished sites of this plan per unit of cost
    per_site_s = {k: float(r["info"]["task_seconds"]) / max(int(r["info"].get("task_sites", 1)), 1)
                  for k, r in table.rows.items() if "task_seconds" in r.get("info", {})}
    secs_done = cost_done = 0.0
    for t in done:
        keys = [(t["id"], int(i)) for i in t["sites"]] if isinstance(t["sites"], list) else \
            [k for k in per_site_s if k[0] == t["id"]]
        measured = [per_site_s[k] for k in keys if k in per_site_s]
        if measured:
            secs_done += sum(measured)
            cost_done += t["cost"] * len(measured) / max(len(keys), 1)
    n_workers = max(int(workers or plan.get("workers", 1)), 1)
    cost_left = sum(t["cost"] for t in left)
    eta_h = (secs_done / cost_done * cost_left / n_workers / 3600) if cost_done > 0 else None
    return {"planned_tasks": len(tasks), "done_tasks": len(done), "left_tasks": len(left),
            "left_sites_estimated": int(sum(n_sites(t) for t in left)),
            "sites_in_file_and_parts": len(table.rows), "failures": len(table.failures),
            "unmerged_parts": len(parts), "worker_seconds_done": secs_done,
            "workers": n_workers, "eta_hours": eta_h, "plan_written": plan.get("written"),
            "engine": plan.get("engine")}
