"""Deduplication of a structure set with pymatgen's :class:`StructureMatcher`.

Rule: two records are the same structure when ``StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5,
primitive_cell=True, scale=True)`` fits them. Only pairs in one bucket are compared: same reduced
formula, same number of atoms in the spglib primitive cell (symprec 0.1) and densities within
``density_tol`` (20 %). Two IZA frameworks are never compared (distinct by framework code). Of a group of
duplicates the record of the most trusted source is kept (experimental AMCSD first, then pyxtal, AFLOW,
IZA, Materials Project, generated, user files; ties by id); the others are listed as its duplicates.
"""

from __future__ import annotations

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coreloss.structures.record import StructureRecord

SOURCE_PRIORITY = ("amcsd", "pyxtal", "aflow", "zeose", "materials-project", "generated-chgnet", "folder")


def _priority(record: StructureRecord) -> tuple:
    src = record.source
    rank = SOURCE_PRIORITY.index(src) if src in SOURCE_PRIORITY else len(SOURCE_PRIORITY)
    return rank, record.id


def n_primitive(structure: Structure, symprec: float = 0.1) -> int:
    """Number of atoms in the spglib primitive cell (the input size when spglib fails)."""
    try:
        prim = SpacegroupAnalyzer(structure, symprec=symprec).find_primitive()
        return len(prim) if prim is not None else len(structure)
    except Exception:
        return len(structure)


def default_matcher() -> StructureMatcher:
    return StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=True, scale=True,
                            attempt_supercell=False)


def deduplicate(records: list[StructureRecord], density_tol: float = 0.2,
                matcher: StructureMatcher | None = None
                ) -> tuple[list[StructureRecord], list[tuple[str, str]]]:
    """Unique records (most trusted of each group, in priority order) and ``(duplicate_id, kept_id)``.

    The kept records get ``meta["duplicates"]``: the sorted ids merged into them.
    """
    matcher = matcher or default_matcher()
    kept: list[tuple[StructureRecord, tuple, float]] = []
    duplicates: list[tuple[str, str]] = []
    for rec in sorted(records, key=_priority):
        s = rec.structure
        key = (s.composition.reduced_formula, n_primitive(s))
        rho = float(s.density)
        match = None
        for other, okey, orho in kept:
            if okey != key or abs(rho - orho) > density_tol * max(rho, orho):
                continue
            if rec.source == "zeose" and other.source == "zeose":
                continue
            if matcher.fit(other.structure, s):
                match = other
                break
        if match is None:
            kept.append((rec, key, rho))
        else:
            duplicates.append((rec.id, match.id))
    merged: dict[str, list[str]] = {}
    for dup, keep in duplicates:
        merged.setdefault(keep, []).append(dup)
    out = []
    for rec, _, _ in kept:
        meta = dict(rec.meta)
        if rec.id in merged:
            meta["duplicates"] = sorted(merged[rec.id])
        else:
            meta.pop("duplicates", None)
        out.append(StructureRecord(rec.id, rec.structure, rec.source, rec.citation, meta))
    return out, duplicates
