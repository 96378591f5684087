"""StructureRecord and the structure-set file (JSON) that later steps read."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pymatgen.core import Structure

from coreloss import __version__
from coreloss.errors import CorelossError
from coreloss.fileio import atomic_write_bytes

FORMAT = "coreloss-structures/1"


@dataclass
class StructureRecord:
    """One structure of a set.

    id: unique, stable identifier (e.g. ``zeo-MFI``, ``aflow-A2B_hP9_154_c_a``)
    source: where it came from (``zeose``, ``aflow``, ``pyxtal``, ``amcsd``, ``generated``,
            ``folder``, ``materials-project``)
    citation: what to cite for it
    meta: anything else (framework code, space group, CHGNet energy, original file, ...)
    """

    id: str
    structure: Structure
    source: str
    citation: str
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"id": self.id, "source": self.source, "citation": self.citation,
                "meta": self.meta, "structure": self.structure.as_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "StructureRecord":
        return cls(d["id"], Structure.from_dict(d["structure"]), d["source"], d["citation"],
                   d.get("meta", {}))


def save_structures(records: list[StructureRecord], path: str | Path, extra: dict | None = None) -> None:
    """Write records atomically (temp file + rename) as one JSON document (gzipped for ``.gz``)."""
    path = Path(path)
    ids = [r.id for r in records]
    if len(ids) != len(set(ids)):
        raise CorelossError("structure ids must be unique")
    doc = {"format": FORMAT, "coreloss_version": __version__,
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "n_structures": len(records), **(extra or {}),
           "structures": [r.to_dict() for r in records]}
    data = json.dumps(doc).encode()
    atomic_write_bytes(path, gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def load_structures(path: str | Path) -> list[StructureRecord]:
    """Read a structure-set file written by :func:`save_structures`."""
    path = Path(path)
    if not path.is_file():
        raise CorelossError(f"structure set not found: {path}")
    try:
        raw = path.read_bytes()
        doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise CorelossError(f"{path} is not a coreloss structure set (bad JSON: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CorelossError(f"{path} is not a coreloss structure set (format {FORMAT!r} expected)")
    return [StructureRecord.from_dict(d) for d in doc["structures"]]


def extend_structure_set(path: str | Path, new: list[StructureRecord]) -> list[str]:
    """Append ``new`` records to the structure set at ``path`` as a superset; returns the ids added.

    Every existing record is kept verbatim (its JSON dict untouched, so a dataset built from the file
    keeps the structure of every computed id); a new record whose id exists is skipped when identical
    and refused (CorelossError, nothing written) when its content differs.
    """
    path = Path(path)
    load_structures(path)  # validates the format
    raw = path.read_bytes()
    doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    have = {d["id"]: d for d in doc["structures"]}
    added = []
    for rec in new:
        d = json.loads(json.dumps(rec.to_dict()))
        if rec.id in have:
            if have[rec.id] != d:
                raise CorelossError(f"{rec.id} is already in {path} with another content: a superset must "
                                    "keep every existing record")
            continue
        doc["structures"].append(d)
        have[rec.id] = d
        added.append(rec.id)
    if added:
        doc["n_structures"] = len(doc["structures"])
        doc["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        data = json.dumps(doc).encode()
        atomic_write_bytes(path, gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return added
