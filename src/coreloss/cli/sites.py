"""``coreloss sites``: symmetry-inequivalent O sites and their geometric labels.

``coreloss sites FILE [--id ID] [--json]``: one structure (CIF, POSCAR, any pymatgen-readable
file, or one structure of a ``.json``/``.json.gz`` set picked with ``--id``).
``coreloss sites summary SET [--png FILE] [--csv FILE] [--json]``: the whole set.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from coreloss.errors import CorelossError
from coreloss.fileio import atomic_write
from coreloss.labels import GEOMETRIC_LABELS, LABEL_UNITS, label
from coreloss.sites import SYMPREC, o_sites, site_table
from coreloss.structures.io import pick_structure, read_structures

_HEADERS = {"bond_length": "bond length (Å)", "bond_angle": "cation-O-cation angle (deg)",
            "voronoi_volume": "Voronoi volume (Å³)"}


def _read_file(path: Path) -> list[tuple[str, object]]:
    """``[(id, Structure)]`` from a structure set or a single structure file."""
    return read_structures(path)


def _pick(items: list[tuple[str, object]], path: Path, sid: Optional[str]):
    return pick_structure(items, path, sid, hint=f" or use `coreloss sites summary {path}`")


def _num(x: float) -> Optional[float]:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _write_atomic(path: Path, write) -> None:
    """Write through :func:`coreloss.fileio.atomic_write` (no half-written outputs)."""
    path = Path(path)
    if path.is_dir():
        raise CorelossError(f"{path} is a directory")
    atomic_write(path, write)


def _show_structure(sid: str, structure, symprec: float, as_json: bool) -> None:
    sites = o_sites(structure, symprec=symprec)
    n_o = sum(s.multiplicity for s in sites)
    if as_json:
        doc = {"structure_id": sid, "formula": structure.composition.reduced_formula,
               "n_atoms": len(structure), "n_O": n_o, "symprec_A": symprec,
               "units": {k: LABEL_UNITS[k] for k in GEOMETRIC_LABELS},
               "sites": [{"index": s.index, "multiplicity": s.multiplicity,
                          "equivalent_indices": s.equivalent_indices,
                          "coordination": s.coordination,
                          "neighbors": [[j, d] for j, d in s.neighbors],
                          **{k: _num(v) for k, v in s.labels().items()}} for s in sites]}
        typer.echo(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{sid}: {structure.composition.reduced_formula}, {len(structure)} atoms, "
                        f"{len(sites)} unique O sites ({n_o} O)")
    for head in ("site", "multiplicity", "CN", "cations", *(_HEADERS[k] for k in GEOMETRIC_LABELS)):
        table.add_column(head, justify="left" if head == "cations" else "right")
    for s in sites:
        cations = " ".join(f"{e}{n}" for e, n in sorted(Counter(s.species).items()))
        table.add_row(str(s.index), str(s.multiplicity), str(s.coordination), cations or "-",
                      f"{s.bond_length:.4f}", f"{s.bond_angle:.2f}", f"{s.voronoi_volume:.3f}")
    Console().print(table)


def _stats(rows: list[dict]) -> dict:
    out = {}
    for key in GEOMETRIC_LABELS:
        v = np.array([r[key] for r in rows], dtype=float)
        v = v[np.isfinite(v)]
        out[key] = ({"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max()),
                     "n": int(v.size)} if v.size else {"min": None, "median": None, "max": None, "n": 0})
    return out


def _histogram_png(rows: list[dict], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.6), constrained_layout=True)
    FigureCanvasAgg(fig)
    for ax, key in zip(fig.subplots(1, 3), GEOMETRIC_LABELS):
        v = np.array([r[key] for r in rows], dtype=float)
        ax.hist(v[np.isfinite(v)], bins=40, color="tab:blue", edgecolor="white", linewidth=0.3)
        ax.set_xlabel(_HEADERS[key].replace("Å³", "Å$^3$"))
        ax.set_ylabel("unique O sites")
        ax.set_title(f"{label(key).name} (first-shell rule: docs/labels.md)", fontsize=8)
    fig.suptitle(title)
    _write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def _write_csv(rows: list[dict], path: Path) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    _write_atomic(path, write)


def _summary(path: Path, symprec: float, png: Optional[Path], csv_path: Optional[Path],
             as_json: bool) -> None:
    from coreloss.fileio import check_output_file
    for opt, out in (("--png", png), ("--csv", csv_path)):
        if out is not None:
            check_output_file(out, opt)
            if out.resolve() == path.resolve():
                raise CorelossError(f"refusing to overwrite the input set {path}")
    items = _read_file(path)
    rows = site_table(items, symprec=symprec, progress=not as_json)
    n_o = sum(r["multiplicity"] for r in rows)
    cn_sites = Counter(r["coordination"] for r in rows)
    cn_atoms = Counter()
    for r in rows:
        cn_atoms[r["coordination"]] += r["multiplicity"]
    stats = _stats(rows)
    if png is not None:
        _histogram_png(rows, png, f"{path.name}: {len(items)} structures, {len(rows)} unique O sites")
    if csv_path is not None:
        _write_csv(rows, csv_path)
    if as_json:
        typer.echo(json.dumps({"set": str(path), "n_structures": len(items), "n_unique_O_sites": len(rows),
                               "n_O": n_o, "symprec_A": symprec,
                               "units": {k: LABEL_UNITS[k] for k in GEOMETRIC_LABELS},
                               "labels": stats,
                               "coordination_histogram": {str(k): {"unique_sites": cn_sites[k],
                                                                   "O_atoms": cn_atoms[k]}
                                                          for k in sorted(cn_sites)},
                               "png": str(png) if png else None, "csv": str(csv_path) if csv_path else None},
                              indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{path}[/]: {len(items)} structures, {len(rows)} unique O sites, {n_o} O atoms",
                  soft_wrap=True)
    table = Table(title="geometric O-site labels (over unique sites)")
    for head in ("label", "unit", "min", "median", "max"):
        table.add_column(head, justify="left" if head in ("label", "unit") else "right")
    for key, s in stats.items():
        fmt = (lambda x: "-" if x is None else f"{x:.4g}")
        table.add_row(key, LABEL_UNITS[key], fmt(s["min"]), fmt(s["median"]), fmt(s["max"]))
    console.print(table)
    cn = Table(title="O coordination (first-shell cations)")
    for head in ("CN", "unique sites", "O atoms"):
        cn.add_column(head, justify="right")
    for k in sorted(cn_sites):
        cn.add_row(str(k), str(cn_sites[k]), str(cn_atoms[k]))
    console.print(cn)
    for what, out in (("histogram", png), ("table", csv_path)):
        if out is not None:
            console.print(f"wrote {what} {out}", soft_wrap=True)


def sites(
    file: str = typer.Argument(..., metavar="FILE",
                               help="Structure file (CIF, POSCAR, ...) or structure set (.json[.gz]); "
                                    "or `summary` followed by a structure set."),
    set_path: Optional[str] = typer.Argument(None, metavar="SET", show_default=False,
                                             help="With `summary`: the structure set (.json[.gz])."),
    sid: Optional[str] = typer.Option(None, "--id", help="Structure id within a set."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    png: Optional[Path] = typer.Option(None, "--png", help="summary: write label histograms (PNG)."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="summary: write the site table (CSV)."),
    symprec: float = typer.Option(SYMPREC, "--symprec", help="spglib tolerance (Å); 0.1 is the fallback."),
) -> None:
    """O sites of a structure: multiplicity, CN, bond length, angle, Voronoi volume.

    `coreloss sites FILE [--id ID] [--json]` or `coreloss sites summary SET [--png F] [--csv F]`.
    """
    if symprec <= 0:
        raise CorelossError("--symprec must be positive")
    if file == "summary" and (set_path is not None or not Path(file).exists()):
        if set_path is None:
            raise CorelossError("usage: coreloss sites summary SET [--png FILE] [--csv FILE]")
        if sid is not None:
            raise CorelossError("--id does not apply to `sites summary`")
        _summary(Path(set_path), symprec, png, csv_path, as_json)
        return
    if set_path is not None:
        raise CorelossError(f"unexpected extra argument {set_path!r} (did you mean `sites summary`?)")
    if png is not None or csv_path is not None:
        raise CorelossError("--png/--csv apply to `coreloss sites summary SET`")
    path = Path(file)
    items = _read_file(path)
    sid_, structure = _pick(items, path, sid)
    from coreloss.structures.checks import overlap_reasons
    bad = overlap_reasons(structure) if structure.is_ordered else []
    if bad:  # the same rule `structures build` applies (structures.checks)
        raise CorelossError(f"{path}: {bad[0]}; not a physical structure")
    _show_structure(sid_, structure, symprec, as_json)


def register(app) -> None:
    """Add ``coreloss sites`` to the app."""
    app.command("sites")(sites)
