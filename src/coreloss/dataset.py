"""Build a dataset: every symmetry-unique O site of every structure through an engine, in parallel.

One Dask task per structure (the engine shares its ground state over the structure's sites);
results stream back with ``as_completed`` and only this (client) process writes them, through
the crash-safe part files of :mod:`coreloss.dataset_store`. Re-running the same command resumes.

>>> from coreloss.dataset import build_dataset, load_dataset
>>> build_dataset("quartz.h5", "structs.json", workers=2)   # gpaw-lcao  # doctest: +SKIP
>>> ds = load_dataset("quartz.h5"); ds.X.shape, ds.y.shape                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from coreloss import __version__
from coreloss.compute import _jsonable, _reason, compute_structure
from coreloss.dataset_store import (Dataset, Table, collect, consolidate, list_parts, load_dataset,
                                    now, prepare_output, write_part)
from coreloss.conventions import SpectralConventions
from coreloss.errors import CorelossError
from coreloss.labels import ELECTRONIC_LABELS, LABEL_UNITS
from coreloss.spectra import DEFAULT_GRID, EnergyGrid

__all__ = ["build_dataset", "load_dataset", "Dataset", "BuildReport", "compute_structure",
           "resolve_engine", "parse_engine_params", "parse_grid", "select_structures",
           "computed_atoms"]


# ----------------------------------------------------------------------------- inputs
def parse_engine_params(items) -> dict:
    """``["method=GFN1-xTB", "kt=0.01"]`` -> dict; values are JSON when they parse, else strings."""
    params = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CorelossError(f"bad --engine-param {item!r}: expected key=value")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def parse_grid(text: str | None) -> EnergyGrid:
    """``"start:stop:step"`` in eV (relative to the onset) -> EnergyGrid; None -> default grid."""
    if not text:
        return DEFAULT_GRID
    try:
        start, stop, step = (float(v) for v in text.split(":"))
    except ValueError:
        raise CorelossError(f"bad --grid {text!r}: expected start:stop:step in eV, e.g. -5:25:0.1")
    if not (step > 0 and stop > start):
        raise CorelossError(f"bad --grid {text!r}: need stop > start and step > 0")
    return EnergyGrid(start, stop, step)


def resolve_engine(spec: str, params: dict | None = None):
    """An engine by registered name (``gpaw-lcao``, ``xtb``, ``gpaw``) or import path ``module:Class``
    (:func:`coreloss.engines.get_engine`, the one registry)."""
    from coreloss.engines import get_engine
    return get_engine(spec, **(params or {}))


def computed_atoms(structure, min_image_distance: float | None = None) -> int:
    """Atoms an engine computes: the cell, or its supercell for engines with ``min_image_distance``."""
    if not min_image_distance:
        return len(structure)
    from coreloss.engines._supercell import supercell_scaling
    return len(structure) * int(np.prod(supercell_scaling(structure.lattice, min_image_distance)))


def select_structures(records, ids=None, limit: int | None = None, max_atoms: int | None = None,
                      min_image_distance: float | None = None):
    """Filter a structure set: ``ids`` (exact), ``max_atoms`` (cell), then the ``limit`` smallest.

    Ordered cheapest first: by :func:`computed_atoms` (supercell atoms when the engine has a
    ``min_image_distance``), then cell atoms, then the set's order.
    """
    if ids:
        known = {r.id for r in records}
        missing = [i for i in ids if i not in known]
        if missing:
            raise CorelossError(f"unknown structure id(s): {', '.join(missing[:5])}")
        records = [r for r in records if r.id in set(ids)]
    if max_atoms is not None:
        records = [r for r in records if len(r.structure) <= max_atoms]
    records = sorted(records, key=lambda r: (computed_atoms(r.structure, min_image_distance),
                                             len(r.structure)))
    return records[:limit] if limit is not None else records


def _estimate_o_sites(structure) -> int:
    """Number of symmetry-unique O sites (for the progress bar only; corrected as results arrive)."""
    try:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        from coreloss.sites import ANGLE_TOLERANCE, SYMPREC
        eq = SpacegroupAnalyzer(structure, symprec=SYMPREC, angle_tolerance=ANGLE_TOLERANCE
                                ).get_symmetry_dataset().equivalent_atoms
        return len({int(e) for e, s in zip(eq, structure) if s.specie.symbol == "O"})
    except Exception:  # noqa: BLE001 - an estimate only
        return sum(1 for s in structure if s.specie.symbol == "O")


# ----------------------------------------------------------------------------- the build
@dataclass
class BuildReport:
    """What a build did: sites written now, failures now, totals in the file, wall time (s)."""

    out: Path
    new_sites: int = 0
    new_failures: list = field(default_factory=list)
    total_sites: int = 0
    total_failures: int = 0
    structures_done: int = 0
    structures_skipped: int = 0
    seconds: float = 0.0


def _check_same_structures(table: Table, records) -> None:
    from pymatgen.core import Structure
    for r in records:
        if r.id in table.structures:
            old = Structure.from_dict(table.structures[r.id]["structure"])
            if not old == r.structure:
                raise CorelossError(f"structure {r.id!r} differs from the one already in the dataset; "
                                    "use another --out")


def _plan(table: Table, records, retry_failed: bool) -> list[tuple[dict, list | None]]:
    """(record dict, only_sites or None) for every structure still to compute, smallest first."""
    todo = [(r.to_dict(), None) for r in records if r.id not in table.structures]
    if retry_failed:
        for sid, idx in table.failed_sites().items():
            todo.append((table.structures[sid], sorted(idx)))
    return todo


def _plan_sites(table: Table, records, sites: dict) -> list[tuple[dict, list | None]]:
    """(record dict, site indices) for the listed sites not yet computed or failed."""
    seen = set(table.rows) | set(table.failures)
    todo = []
    for r in records:
        want = sorted({int(i) for i in sites.get(r.id, ())} - {i for s, i in seen if s == r.id})
        if want:
            todo.append((r.to_dict(), want))
    return todo


def dataset_sites(path) -> dict[str, list[int]]:
    """``{structure id: [site index]}`` of the O sites a dataset file holds."""
    import h5py

    from coreloss.dataset_store import is_dataset_file

    if not is_dataset_file(Path(path)):
        raise CorelossError(f"{path} is not a coreloss dataset file")
    with h5py.File(path, "r") as f:
        ids = f["structure_ids"][()].astype(str)
        idx = f["site_index"][()]
    out: dict[str, list[int]] = {}
    for sid, i in zip(ids, idx):
        out.setdefault(str(sid), []).append(int(i))
    return out


def _executor(workers: int, scheduler: str | None):
    """A dask Client (LocalCluster of single-threaded worker processes unless ``scheduler``)."""
    import logging

    from dask.distributed import Client, LocalCluster
    if scheduler:
        try:
            return Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise CorelossError(f"cannot connect to the Dask scheduler {scheduler}: {exc}") from exc
    import dask

    from coreloss.engines._blas import preload_environ
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    # LD_PRELOAD must be in the environment *before* a worker process starts (pre-spawn)
    pre_spawn = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **env, **preload_environ()}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR, env=env)
    return Client(cluster)


def _task_cost(record: dict, n_sites: int, engine) -> float:
    """Relative cost of a task, for scheduling and the ETA: the engine's cost model
    (:meth:`coreloss.engines.base.Engine.cost`) on the atoms it computes."""
    from pymatgen.core import Structure
    s = Structure.from_dict(record["structure"])
    n_atoms = computed_atoms(s, engine.params.get("min_image_distance"))
    return float(engine.cost(n_atoms, n_sites))


def split_tasks(todo, max_sites: int | None, rank: dict | None = None) -> list[tuple[dict, list | None]]:
    """Split structure tasks into tasks of at most ``max_sites`` O sites (None: no split).

    A split task lists its sites explicitly (each piece recomputes the structure's ground state).
    ``rank``: ``{(structure_id, site_index): pick order}`` of a budgeted selection: a structure's
    sites are cut in pick order and the pieces of all structures are ordered by their best pick,
    so the work order stays the selection order. Without it, the order of ``todo`` is kept.
    """
    if not max_sites:
        return list(todo)
    from pymatgen.core import Structure

    from coreloss.sites import o_sites
    unranked = len(rank) if rank else 0
    pieces = []
    for rec, only in todo:
        if only is not None and -1 in only:
            pieces.append((rec, only))
            continue
        idx = list(only) if only is not None else \
            [s.index for s in o_sites(Structure.from_dict(rec["structure"]))]
        if rank is not None:
            idx.sort(key=lambda i: rank.get((rec["id"], i), unranked))
        if len(idx) <= max_sites:
            pieces.append((rec, only))
        else:
            pieces += [(rec, sorted(idx[k:k + max_sites])) for k in range(0, len(idx), max_sites)]
    if rank is not None:  # work order: each piece's best pick (sort is stable; unranked last)
        pieces.sort(key=lambda p: min((rank.get((p[0]["id"], i), unranked) for i in p[1]),
                                      default=unranked) if p[1] else unranked)
    return pieces


def _run_tasks(todo, engine, grid, workers, scheduler, costs=None):
    """Yield ``(task index, result dict)`` as tasks finish; failures of a whole task become failure
    records. ``costs`` (one per task) set the Dask priority: the most expensive tasks start first."""
    if workers == 0 and not scheduler:  # in-process, serial (debugging)
        for i, (rec, only) in enumerate(todo):
            yield i, compute_structure(engine, rec, grid, only)
        return
    from dask.distributed import as_completed
    client = _executor(workers, scheduler)
    try:
        # longest tasks first (LPT): with per-structure tasks, a large structure started last
        # would leave the other workers idle at the end of the build
        futures = {client.submit(compute_structure, engine, rec, grid, only, pure=False,
                                 key=f"coreloss-site-{rec['id']}-{i}",
                                 priority=int(1000 * costs[i]) if costs else 0): (i, rec, only)
                   for i, (rec, only) in enumerate(todo)}
        for fut in as_completed(futures):
            k, rec, only = futures.pop(fut)
            if fut.status == "finished":
                yield k, fut.result()
            else:
                reason = "task failed: " + _reason(fut.exception())
                idx = only if only is not None else [-1]
                yield k, {"structure_id": rec["id"], "record": rec, "sites": [],
                       "failures": [{"structure_id": rec["id"], "site_index": i, "reason": reason}
                                    for i in idx]}
            fut.release()
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()


def _remove_run_dir(pdir: Path) -> None:
    """Remove the run bookkeeping (run.json, lock) and the parts folder if it is then empty."""
    for p in (pdir / "run.json", pdir / "lock", pdir / "plan.json"):
        p.unlink(missing_ok=True)
    try:
        pdir.rmdir()
    except OSError:
        pass


def build_dataset(out, structures=None, engine: str = "gpaw-lcao", engine_params: dict | None = None,
                  workers: int = 1, scheduler: str | None = None, grid: EnergyGrid = DEFAULT_GRID,
                  ids=None, limit_structures: int | None = None, max_atoms: int | None = None,
                  retry_failed: bool = False, checkpoint_every: int = 50,
                  checkpoint_seconds: float = 600.0, console=None, budget: int | None = None,
                  cost_aware: bool = True, cover_structures: bool = False,
                  sites: dict | None = None, sites_source: str | None = None) -> BuildReport:
    """Compute every unique O site of the selected structures into the dataset file ``out``.

    Resumable: re-running with the same engine, parameters and grid continues where a previous
    (possibly killed) run stopped; anything else is refused. ``structures`` is a structure-set
    file (default: the embedded default set). ``workers=0`` runs serially in this process.
    ``budget``: compute only that many more O sites, chosen and ordered by :mod:`coreloss.selection`
    (farthest-point sampling on SOAP; a structure's picked sites stay in one task); ``cost_aware``:
    weigh each pick by the engine's cost of one site of that structure (value per CPU second);
    ``cover_structures``: one site of every structure before a second site of any. ``sites``:
    compute exactly these O sites, ``{structure id: [site index]}`` (e.g. those of another dataset,
    :func:`dataset_sites`: the same sites with a second engine; ``sites_source`` names them in the
    provenance).
    """
    from rich.console import Console

    from coreloss.structures.record import load_structures
    t0 = time.perf_counter()
    console = console or Console(stderr=True)
    out = Path(out)
    if structures is None:
        from coreloss.structures import default_set_path
        structures = default_set_path()
    if workers < 0 or checkpoint_every < 1:
        raise CorelossError("--workers must be >= 0 and --checkpoint-every >= 1")
    if budget is not None and budget < 1:
        raise CorelossError(f"--budget must be a positive number of O sites, got {budget}")
    eng = resolve_engine(engine, engine_params)
    lacking = [k for k in ELECTRONIC_LABELS if k not in eng.implemented_labels]
    if lacking:
        raise CorelossError(f"engine {eng.name!r} does not compute {', '.join(lacking)}; a dataset needs "
                            f"all of {', '.join(ELECTRONIC_LABELS)}")
    if sites is not None and budget is not None:
        raise CorelossError("give either a site list (--sites-of) or --budget, not both")
    records = select_structures(load_structures(structures), ids, limit_structures, max_atoms,
                                eng.params.get("min_image_distance"))
    if sites is not None:
        missing = sorted(set(sites) - {r.id for r in records})
        if missing:
            raise CorelossError(f"{len(missing)} structure(s) of the site list are not in the structure "
                                f"set, e.g. {missing[0]!r}; pass the set they come from with --structures")
        records = [r for r in records if r.id in sites]
    params = _jsonable(eng.params)
    config = {"engine": eng.name, "engine_spec": engine, "parameters": params, "grid": grid.to_dict()}
    pdir, lock, created = prepare_output(out, config)
    try:
        bad_parts: list = []
        table, _ = collect(out, bad_parts)
        for part, renamed, reason in bad_parts:
            console.print(f"{reason}; set aside as {renamed.name}, its structure is computed again",
                          soft_wrap=True, markup=False, highlight=False, style="yellow")
        _check_same_structures(table, records)
        selection = None
        if budget is not None:
            from coreloss.selection import budget_plan, site_costs
            costs = site_costs(records, eng) if cost_aware else None
            todo, selection = budget_plan(records, budget, table.rows, table.failures, costs,
                                          cover_structures)
            todo += _plan(table, [], retry_failed)  # --retry-failed: failed sites again
        elif sites is not None:
            todo = _plan_sites(table, records, sites) + _plan(table, [], retry_failed)
        else:
            todo = _plan(table, records, retry_failed)
        prov = {**config, "engine_version": eng.version, "coreloss_version": __version__,
                "created": created, "updated": now(),
                "units": {**LABEL_UNITS, "X": "1/eV", "energy": "eV", "onset": "eV"},
                "structure_source": str(structures), "sites": "symmetry-unique O sites (coreloss.sites)",
                "conventions": SpectralConventions.from_engine(params, grid).to_dict()}
        if sites is not None:
            prov["sites"] = (f"the {sum(map(len, sites.values()))} listed O sites of {len(sites)} structures"
                             + (f" ({sites_source})" if sites_source else ""))
        rank = {k: i for i, k in enumerate(selection.picks)} if selection is not None else None
        todo = split_tasks(todo, eng.sites_per_task, rank)
        if selection is not None:
            prov["selection"] = {**selection.summary(), "budget": budget}
            report = BuildReport(out, structures_skipped=len(records) - len(selection.tasks))
        else:
            report = BuildReport(out, structures_skipped=len(records) - sum(o is None for _, o in todo))
        _drive(todo, eng, grid, workers, scheduler, pdir, out, prov, report, checkpoint_every,
               checkpoint_seconds, console, ranked=selection is not None)
        table = consolidate(out, grid, {**prov, "updated": now()})
        report.total_sites, report.total_failures = len(table.rows), len(table.failures)
        _remove_run_dir(pdir)
    finally:
        if not out.exists() and pdir.is_dir() and not list_parts(pdir):  # nothing was written
            _remove_run_dir(pdir)
        lock.close()
    report.seconds = time.perf_counter() - t0
    return report


def _drive(todo, engine, grid, workers, scheduler, pdir, out, prov, report, every, every_s, console,
           ranked: bool = False):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    if not todo:
        return
    from pymatgen.core import Structure

    from coreloss.build_progress import write_plan
    est = [len(only) if only and -1 not in only else
           _estimate_o_sites(Structure.from_dict(rec["structure"])) for rec, only in todo]
    total = sum(est)
    costs = [_task_cost(rec, n, engine) for (rec, _), n in zip(todo, est)]
    write_plan(pdir, [{"id": rec["id"], "sites": only if only and -1 not in only else n, "cost": c}
                      for (rec, only), n, c in zip(todo, est, costs)], workers, engine.name)
    total_cost, done_cost = sum(costs), 0.0
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("sites  {task.fields[structs]} tasks  [red]{task.fields[fails]} failed"),
               TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}")]
    since, last, start = 0, time.monotonic(), time.monotonic()
    with Progress(*columns, console=console, transient=False, speed_estimate_period=3600) as bar:
        task = bar.add_task(f"{engine.name} -> {out.name}", total=total,
                            structs=f"0/{len(todo)}", fails=0, eta="-")
        # ranked (budget): the selection order is the work order; else the most expensive first
        prio = [float(len(todo) - i) for i in range(len(todo))] if ranked else costs
        for n, (k, res) in enumerate(_run_tasks(todo, engine, grid, workers, scheduler, prio), 1):
            write_part(pdir, res)
            n_done = len(res["sites"]) + len(res["failures"])
            total += n_done - est[k]
            report.new_sites += len(res["sites"])
            report.new_failures += res["failures"]
            report.structures_done += 1
            since += n_done
            done_cost += costs[k]
            eta_h = (time.monotonic() - start) * (total_cost - done_cost) / max(done_cost, 1e-12) / 3600
            eta = f"{eta_h:.1f} h" if eta_h >= 1 else f"{60 * eta_h:.0f} min"
            bar.update(task, advance=n_done, total=total, structs=f"{n}/{len(todo)}",
                       fails=len(report.new_failures), eta=eta)
            if since >= every or time.monotonic() - last > every_s:
                consolidate(out, grid, {**prov, "updated": now()})
                since, last = 0, time.monotonic()
                if not console.is_terminal:  # a log line for nohup'd builds
                    done = bar.tasks[0].completed
                    rate = done / max(time.monotonic() - start, 1e-9)
                    console.print(f"checkpoint {now()}: {done:.0f}/{total} sites, {n}/{len(todo)} tasks "
                                  f"(one or part of a structure), {len(report.new_failures)} failed, {60 * rate:.1f} "
                                  f"sites/min, ETA {eta} (from the done share of the engine's cost "
                                  "model)", soft_wrap=True, highlight=False)
