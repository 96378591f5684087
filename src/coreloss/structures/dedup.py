"""Deduplication of a structure set with pymatgen's :class:`StructureMatcher`.

Rule: two records are the same structure when they have the same reduced formula, the same number of
atoms in the spglib primitive cell and the same space group (symprec 0.1; enantiomorphic pairs such
as P3_121/P3_221 count as one), densities within ``density_tol`` (20 %), and ``StructureMatcher(ltol=0.2,
stol=0.3, angle_tol=5, primitive_cell=True, scale=True)`` fits them (the symmetry condition keeps
alpha/beta quartz apart, which the matcher alone merges). Two IZA frameworks are never compared (distinct by framework code). Of a group of
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


# enantiomorphic space-group pairs: mirror images give identical spectra
_ENANTIOMORPHS = {78: 76, 95: 91, 96: 92, 145: 144, 153: 151, 154: 152, 170: 169, 172: 171,
                  179: 178, 181: 180, 213: 212}


def symmetry_key(structure: Structure, symprec: float = 0.1) -> tuple[int, int]:
    """(atoms in the spglib primitive cell, space group number with enantiomorphs merged)."""
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        prim = sga.find_primitive()
        number = sga.get_space_group_number()
        return (len(prim) if prim is not None else len(structure)), _ENANTIOMORPHS.get(number, number)
    except Exception:  # spglib failure: compare as P1
        return len(structure), 1


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
        key = (s.composition.reduced_formula, *symmetry_key(s))
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
