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


CHGNET_SOURCES = ("chgnet-relaxed", "chgnet-pressure", "chgnet-md", "chgnet-amorphous")


def tight_matcher() -> StructureMatcher:
    """Same structure to within numerical noise (no scaling): a relaxation that did not move it."""
    return StructureMatcher(ltol=0.01, stol=0.02, angle_tol=0.5, primitive_cell=True, scale=False,
                            attempt_supercell=False)


def merge_chgnet(base: list[StructureRecord], derived: list[StructureRecord],
                 aliases: dict[str, str] | None = None) -> tuple[list[StructureRecord], list[tuple[str, str]]]:
    """Add CHGNet-derived records (relaxed, under pressure, MD snapshots, amorphous) to a deduplicated
    set and give every record its ``meta["group"]``.

    Rules: a derived record's group is its parent's group (``meta["group"]``), an amorphous cell is its
    own group, a base record is its own group. A ``chgnet-relaxed`` record that the default matcher
    fits to a base record joins that record's group (with every record of its old group: e.g. the
    literature coesite's relaxations and snapshots join the AMCSD coesite); if the tight matcher also
    fits (the relaxation did not move it), it is a duplicate and left out. Snapshots and amorphous
    cells are never compared (thermal noise makes them unique). ``aliases``: ``{duplicate_id: kept_id}``
    of the base dedup (a parent merged into another record). Returns (records, duplicates).
    """
    base = [StructureRecord(r.id, r.structure, r.source, r.citation, {**r.meta, "group": r.meta.get("group") or r.id})
            for r in base]
    keys = [((r.structure.composition.reduced_formula, *symmetry_key(r.structure)), float(r.structure.density), r)
            for r in base if r.source != "zeose"]
    matcher, tight = default_matcher(), tight_matcher()
    rename: dict[str, str] = dict(aliases or {})
    kept, duplicates = [], []
    for rec in derived:
        meta = dict(rec.meta)
        meta["group"] = meta.get("group") or rec.id
        if rec.source == "chgnet-relaxed":
            s = rec.structure
            key, rho = (s.composition.reduced_formula, *symmetry_key(s)), float(s.density)
            parent = meta.get("parent")
            cands = [b for k, d, b in keys if k == key and abs(rho - d) <= 0.2 * max(rho, d)]
            cands += [b for b in base if b.id == parent and b.source == "zeose"]
            hit = next((b for b in cands if matcher.fit(b.structure, s)), None)
            if hit is not None:
                if tight.fit(hit.structure, s):
                    duplicates.append((rec.id, hit.id))
                    rename[meta["group"]] = hit.meta["group"]
                    continue
                rename[meta["group"]] = hit.meta["group"]
        kept.append(StructureRecord(rec.id, rec.structure, rec.source, rec.citation, meta))
    out = base + [StructureRecord(r.id, r.structure, r.source, r.citation,
                                  {**r.meta, "group": rename.get(r.meta["group"], r.meta["group"])})
                  for r in kept]
    return out, duplicates
