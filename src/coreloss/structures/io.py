"""Read structures for the CLI: one structure file (CIF, POSCAR, ...) or a structure set."""

from __future__ import annotations

import warnings
from pathlib import Path

from coreloss.errors import CorelossError


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name if empty)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_structures(path: str | Path) -> list[tuple[str, object]]:
    """``[(id, Structure)]`` from a structure set (``.json``/``.json.gz``) or one structure file."""
    from pymatgen.core import Structure

    from coreloss.structures.record import load_structures

    path = Path(path)
    if not path.exists():
        raise CorelossError(f"file not found: {path}")
    if path.is_dir():
        raise CorelossError(f"{path} is a directory, not a structure file")
    name = path.name.lower()
    if name.endswith((".json", ".json.gz")):
        try:
            return [(r.id, r.structure) for r in load_structures(path)]
        except CorelossError as exc:
            if "format" not in str(exc):
                raise
        except (KeyError, TypeError, ValueError) as exc:
            raise CorelossError(f"{path}: malformed structure set ({one_line(exc)})") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types for unreadable input
        raise CorelossError(f"cannot read a structure from {path}: {one_line(exc)}") from exc
    return [(path.stem, structure)]


def pick_structure(items: list[tuple[str, object]], path, sid: str | None, hint: str = ""):
    """The ``(id, Structure)`` called ``sid`` (or the only one) of ``items`` read from ``path``."""
    if sid is None:
        if len(items) == 1:
            return items[0]
        raise CorelossError(f"{path} holds {len(items)} structures: pick one with --id "
                            f"(e.g. {items[0][0]}){hint}")
    for item in items:
        if item[0] == sid:
            return item
    raise CorelossError(f"no structure with id {sid!r} in {path}")


def read_structure(path: str | Path, sid: str | None = None):
    """One ``(id, Structure)`` from a structure file or, with ``sid``, a structure set."""
    return pick_structure(read_structures(path), path, sid)
