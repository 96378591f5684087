"""``coreloss structures build|show``: assemble and inspect structure sets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from coreloss.errors import CorelossError

structures_app = typer.Typer(no_args_is_help=True, help="Build and inspect SiO2 structure sets.")


def _check_out(out: Path, overwrite: bool = False) -> None:
    """Refuse to overwrite an existing set unless ``overwrite``, and anything that is not a set."""
    from coreloss.fileio import check_output_file
    from coreloss.structures.record import load_structures

    check_output_file(out, "--out")
    if out.exists() and not overwrite:
        raise CorelossError(f"{out} already exists; choose another --out or pass --overwrite")
    if out.exists():
        try:
            load_structures(out)
        except CorelossError:
            raise CorelossError(f"{out} exists and is not a coreloss structure set; "
                                "refusing to overwrite it") from None
        except Exception:
            raise CorelossError(f"{out} exists and is not a readable coreloss structure set; "
                                "refusing to overwrite it") from None


def _print_report(report, out: Path, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from coreloss.structures.sources import TOO_LARGE

    console = Console()
    console.print(f"{len(report.records)} structures written to {out}", highlight=False)
    if report.parameters.get("minerals_dir") == "not found":
        console.print("note: AMCSD minerals folder (../shared/data/structures/minerals) not found; "
                      "coesite, seifertite and the measured quartz/stishovite cells are left out "
                      "(pass --minerals DIR)", highlight=False)
    table = Table()
    for col in ("source", "read", "kept"):
        table.add_column(col, justify="left" if col == "source" else "right")
    counts = report.counts()
    for src in sorted(set(report.read) | set(counts)):
        table.add_row(src, str(report.read.get(src, 0)), str(counts.get(src, 0)))
    console.print(table)
    size = [d for d in report.dropped if d[2].startswith(TOO_LARGE)]
    other = [d for d in report.dropped if d not in size]
    if size:
        console.print(f"dropped {len(size)} over the size limit "
                      f"({report.parameters['max_atoms']} atoms in the primitive cell)")
    for rid, src, reason in other:
        console.print(f"dropped {rid} ({src}): {reason}", highlight=False)
    if report.duplicates:
        console.print(f"{len(report.duplicates)} duplicates merged:", highlight=False)
        for dup, kept in report.duplicates:
            console.print(f"  {dup} = {kept}", highlight=False)
    console.print(f"done in {seconds:.1f} s", highlight=False)


@structures_app.command("build")
def build(
    out: Path = typer.Option(Path("structures.json"), "--out", "-o",
                             help="Output structure set (.json, or .json.gz gzipped)."),
    max_atoms: int = typer.Option(150, "--max-atoms", help="Largest primitive cell kept (atoms)."),
    generate: bool = typer.Option(False, "--generate",
                                  help="Regenerate the CHGNet-relaxed AB2-prototype polymorphs (minutes)."),
    no_generated: bool = typer.Option(False, "--no-generated",
                                      help="Leave out the generated (CHGNet) polymorphs."),
    from_dir: Optional[Path] = typer.Option(None, "--from",
                                            help="Build from a folder of CIF/POSCAR files (any oxide) "
                                                 "instead of the default SiO2 sources."),
    mp: bool = typer.Option(False, "--mp", help="Add SiO2 entries of the Materials Project "
                                                "(needs mp-api and MP_API_KEY)."),
    minerals: Optional[Path] = typer.Option(None, "--minerals",
                                            help="Folder of AMCSD CIFs (default: ../shared/data/"
                                                 "structures/minerals where it exists)."),
    no_minerals: bool = typer.Option(False, "--no-minerals",
                                     help="Leave out the AMCSD minerals even where they exist."),
    workers: int = typer.Option(2, "--workers", help="Processes for --generate."),
    no_chgnet: bool = typer.Option(False, "--no-chgnet",
                                   help="Leave out the CHGNet-derived realistic structures (relaxed, "
                                        "high-pressure, MD snapshots, amorphous)."),
    chgnet_cache: Optional[Path] = typer.Option(
        None, "--chgnet-cache", help="Folder of finished CHGNet tasks (one .json.gz each) to read, or "
                                     "with --generate to run into (resumable). Default: the embedded set."),
    chgnet_kinds: Optional[str] = typer.Option(
        None, "--chgnet-kinds", help="With --generate: comma-separated subset of relax,pressure,md,"
                                     "amorphous,zeolite (default all)."),
    chgnet_max_minutes: Optional[float] = typer.Option(
        None, "--chgnet-max-minutes", help="With --generate: start no new CHGNet task after this time."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing structure set at --out."),
):
    """Assemble, check and deduplicate a structure set and write it to --out."""
    from coreloss.structures.build import build_structure_set
    from coreloss.structures.record import save_structures

    _check_out(out, overwrite)
    if generate and no_generated:
        raise CorelossError("--generate and --no-generated exclude each other")
    if generate and from_dir is not None:
        raise CorelossError("--generate applies to the default SiO2 sources, not to --from")
    if from_dir is not None and not from_dir.exists():
        raise CorelossError(f"--from: folder not found: {from_dir}")
    if max_atoms < 1 or workers < 1:
        raise CorelossError("--max-atoms and --workers must be at least 1")
    kinds = _parse_kinds(chgnet_kinds)
    if generate and not no_chgnet and chgnet_cache is None:
        raise CorelossError("--generate needs --chgnet-cache DIR (the resumable CHGNet task folder), "
                            "or --no-chgnet")
    if not generate and (kinds or chgnet_max_minutes is not None):
        raise CorelossError("--chgnet-kinds and --chgnet-max-minutes apply to --generate")
    if chgnet_cache is not None and not generate and not chgnet_cache.is_dir():
        raise CorelossError(f"--chgnet-cache: folder not found: {chgnet_cache}")
    t0 = time.perf_counter()
    report = build_structure_set(max_atoms=max_atoms, minerals_dir=minerals,
                                 use_minerals=not no_minerals, generate=generate,
                                 include_generated=not no_generated, from_dir=from_dir, mp=mp,
                                 workers=workers, progress=not quiet, include_chgnet=not no_chgnet,
                                 chgnet_cache=chgnet_cache, chgnet_kinds=kinds,
                                 chgnet_max_seconds=None if chgnet_max_minutes is None
                                 else 60.0 * chgnet_max_minutes)
    if not report.records:
        raise CorelossError("no structure passed the checks; nothing written")
    save_structures(report.records, out, extra={
        "build": report.summary(), "generated_cache": [r.to_dict() for r in report.generated]})
    if not quiet:
        _print_report(report, out, time.perf_counter() - t0)


def _parse_kinds(text: Optional[str]):
    from coreloss.structures.diverse import KINDS

    if not text:
        return None
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise CorelossError(f"--chgnet-kinds: unknown kind(s) {', '.join(bad) or '(none)'}; "
                            f"choose from {', '.join(KINDS)}")
    return kinds


@structures_app.command("show")
def show(path: Path = typer.Argument(..., help="A structure set file (default set: 'default').")):
    """Print the records of a structure set: id, source, atoms, space group, formula."""
    from rich.console import Console
    from rich.table import Table

    from coreloss.structures import default_set_path, load_structures

    records = load_structures(default_set_path() if str(path) == "default" else path)
    table = Table(title=f"{len(records)} structures")
    for col in ("id", "source", "group", "atoms", "space group", "density g/cm3"):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(r.id, r.source, str(r.meta.get("group", r.id)), str(len(r.structure)),
                      str(r.meta.get("spacegroup", "")), f"{float(r.structure.density):.3f}")
    Console().print(table)


def register(app) -> None:
    """Add ``coreloss structures ...`` to the coreloss app."""
    app.add_typer(structures_app, name="structures")
