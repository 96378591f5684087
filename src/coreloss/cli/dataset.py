"""``coreloss dataset build|info|subset``: compute a dataset with an engine (Dask-parallel, resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

dataset_app = typer.Typer(no_args_is_help=True, help="Build and inspect spectrum/label datasets (HDF5).")


@dataset_app.command("build")
def build(
    out: Path = typer.Option(..., "--out", "-o", help="Dataset file to write (HDF5, e.g. data.h5)."),
    engine: str = typer.Option(
        "gpaw-lcao", "--engine",
        help="Engine: gpaw-lcao (default, DFT), xtb (fast, low fidelity), gpaw (plane waves) or module:Class."),
    structures: Optional[Path] = typer.Option(
        None, "--structures", "-s", help="Structure set (.json/.json.gz); default: the embedded set."),
    workers: int = typer.Option(1, "--workers", "-j", help="Local Dask worker processes (0: serial)."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="Address of an existing Dask scheduler, e.g. tcp://host:8786."),
    engine_param: Optional[List[str]] = typer.Option(
        None, "--engine-param", "-p", help="Engine parameter key=value (repeatable)."),
    limit_structures: Optional[int] = typer.Option(
        None, "--limit-structures", help="Only the N cheapest (smallest computed cell) structures."),
    ids: Optional[str] = typer.Option(None, "--ids", help="Comma-separated structure ids."),
    max_atoms: Optional[int] = typer.Option(None, "--max-atoms", help="Skip structures with more atoms."),
    grid: Optional[str] = typer.Option(
        None, "--grid", help="Onset-relative grid start:stop:step in eV (default -5:25:0.1)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Recompute failed sites."),
    checkpoint_every: int = typer.Option(
        50, "--checkpoint-every", help="Consolidate finished sites into the HDF5 file every N sites."),
    budget: Optional[int] = typer.Option(
        None, "--budget", help="Compute only N more O sites: the N that best cover the local "
                               "environments (farthest-point sampling on SOAP), most informative first."),
    cost_aware: bool = typer.Option(
        True, "--cost-aware/--no-cost-aware", help="With --budget: weigh each pick by the engine's cost "
                                                  "of one site of its structure (more sites per CPU hour)."),
    cover_structures: bool = typer.Option(
        False, "--cover-structures", help="With --budget: one site of every structure first, then the "
                                          "rest (a dataset from many structures, not many sites of a few)."),
    sites_of: Optional[Path] = typer.Option(
        None, "--sites-of", help="Compute exactly the O sites another dataset holds (e.g. the same sites "
                                 "with a second engine); pass its structure set with --structures."),
):
    """Run every symmetry-unique O site of every structure; re-run the same command to resume."""
    from rich.console import Console

    from coreloss.dataset import build_dataset, parse_engine_params, parse_grid
    from coreloss.fileio import check_output_file

    check_output_file(out, "--out")
    console = Console(stderr=True)
    id_list = [i.strip() for i in ids.split(",") if i.strip()] if ids else None
    site_list = None
    if sites_of is not None:
        from coreloss.dataset import dataset_sites
        from coreloss.fileio import check_input_file

        check_input_file(sites_of, "--sites-of")
        site_list = dataset_sites(sites_of)
    report = build_dataset(out, structures, engine=engine,
                           engine_params=parse_engine_params(engine_param), workers=workers,
                           scheduler=scheduler, grid=parse_grid(grid), ids=id_list,
                           limit_structures=limit_structures, max_atoms=max_atoms,
                           retry_failed=retry_failed, checkpoint_every=checkpoint_every,
                           console=console, budget=budget, cost_aware=cost_aware,
                           cover_structures=cover_structures, sites=site_list,
                           sites_source=None if sites_of is None else f"the sites of {sites_of}")
    for f in report.new_failures[:20]:
        console.print(f"failed {f['structure_id']} site {f['site_index']}: {f['reason']}",
                      soft_wrap=True, markup=False, highlight=False, style="red")
    if len(report.new_failures) > 20:
        console.print(f"... and {len(report.new_failures) - 20} more (coreloss dataset info --failures)")
    summary = (f"{report.new_sites} new sites ({len(report.new_failures)} failed) from "
               f"{report.structures_done} structures, {report.structures_skipped} already done, "
               f"in {report.seconds:.1f} s; {out}: {report.total_sites} sites, "
               f"{report.total_failures} failures")
    console.print(summary, soft_wrap=True, markup=False, highlight=False)


@dataset_app.command("info")
def info(path: Path = typer.Argument(..., help="Dataset file (HDF5)."),
         failures: bool = typer.Option(False, "--failures", help="List every failed site."),
         csv: Optional[Path] = typer.Option(None, "--csv", help="Also write the labels as CSV.")):
    """Summarise a dataset: sizes, provenance, label ranges, failures."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from coreloss.dataset import load_dataset
    from coreloss.errors import CorelossError

    from coreloss.build_progress import build_progress

    if csv is not None:
        from coreloss.fileio import check_output_file
        check_output_file(csv, "--csv")
    console = Console()
    prog = build_progress(path)
    if prog is not None:
        eta = "unknown until a structure finishes" if prog["eta_hours"] is None else \
            f"{prog['eta_hours']:.1f} h on {prog['workers']} worker(s)"
        console.print(f"build in progress or interrupted (plan of {prog['plan_written']}, "
                      f"{prog['engine']}): {prog['done_tasks']}/{prog['planned_tasks']} "
                      f"planned tasks done, {prog['sites_in_file_and_parts']} sites and "
                      f"{prog['failures']} failures on disk ({prog['unmerged_parts']} part files not "
                      f"yet merged); left: {prog['left_tasks']} tasks, ~"
                      f"{prog['left_sites_estimated']} sites; ETA {eta}. Rerun the build command to "
                      "resume.", soft_wrap=True, highlight=False)
        if not path.exists():
            return
    ds = load_dataset(path)
    p = ds.provenance
    console.print(f"{path}: {len(ds)} sites from {len(ds.structures)} structures, "
                  f"{len(ds.failures)} failed sites")
    console.print(f"engine {p.get('engine')} {p.get('engine_version')} parameters "
                  f"{p.get('parameters')}; grid {ds.grid.start}..{ds.grid.stop} step {ds.grid.step} eV "
                  f"({ds.grid.n} points); coreloss {p.get('coreloss_version')}; "
                  f"created {p.get('created')}, updated {p.get('updated')}")
    t = Table("label", "unit", "min", "mean", "max", "NaN")
    for j, (name, unit) in enumerate(zip(ds.label_names, ds.label_units)):
        col = ds.y[:, j]
        ok = col[np.isfinite(col)]
        stats = [f"{f(ok):.4g}" for f in (np.min, np.mean, np.max)] if ok.size else ["-"] * 3
        t.add_row(name, unit, *stats, str(int(np.sum(~np.isfinite(col)))))
    console.print(t)
    for f in ds.failures if failures else ds.failures[:5]:
        console.print(f"failed {f['structure_id']} site {f['site_index']}: {f['reason']}",
                      soft_wrap=True, markup=False, highlight=False)
    if csv is not None:
        if csv.exists():
            raise CorelossError(f"{csv} exists; not overwriting it")
        ds.to_csv(csv)
        console.print(f"labels written to {csv}")


@dataset_app.command("subset")
def subset(src: Path = typer.Argument(..., help="Dataset file (HDF5)."),
           dst: Path = typer.Argument(..., help="New dataset file to write (must not exist)."),
           ids: Optional[str] = typer.Option(None, "--ids", help="Comma-separated structure ids to keep."),
           drop_source: Optional[List[str]] = typer.Option(None, "--drop-source",
                                                           help="Drop structures from this source (repeatable), "
                                                                "e.g. amcsd.")):
    """Copy some structures of a dataset into a new file (same grid, provenance noted)."""
    from coreloss.dataset_store import subset_dataset
    from coreloss.fileio import check_output_file

    check_output_file(dst, "DST")
    keep = [i.strip() for i in ids.split(",") if i.strip()] if ids else None
    sub = subset_dataset(src, dst, keep, drop_source or ())
    typer.echo(f"wrote {dst}: {len(sub.rows)} sites of {len(sub.structures)} structures, "
               f"{len(sub.failures)} failed sites")


def register(app) -> None:
    """Add this module's commands to the coreloss app."""
    app.add_typer(dataset_app, name="dataset")
