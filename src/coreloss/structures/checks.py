"""Sanity checks for structures entering a set, and the canonical (primitive, Niggli) cell.

Two levels:

* :func:`check_sio2` (strict, for the SiO2 default set): composition SiO2, no two atoms closer than
  ``min_distance`` (1.3 A), every Si and every O has its nearest Si-O distance in ``si_o_window``
  (1.40-1.95 A; the lower end admits thermal snapshots at 1200 K), Si coordination 4, 5 or 6 and O
  coordination 2 or 3, counting Si-O pairs closer than ``bond_cutoff`` (2.05 A) as bonds (longer
  bonds than the window are admitted up to the cutoff: 5/6-coordinated Si in densified glass and
  hot stishovite has bonds of 1.95-2.05 A).
* :func:`check_oxide` (for user folders): the structure contains O, no overlapping atoms (1.3 A, 0.7 A
  for pairs with H) and every O has a non-O neighbour within 3.0 A.

Each returns a list of human-readable reasons (empty = accepted).
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Composition, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

SI_O_WINDOW = (1.40, 1.95)   # A, allowed nearest Si-O distance of every atom
BOND_CUTOFF = 2.05           # A, Si-O pairs closer than this are bonds (first shell)
MIN_DISTANCE = 1.30          # A, no two (non-H) atoms closer than this
SI_CN = (4, 5, 6)
O_CN = (2, 3)


def _neighbors(structure: Structure, r: float):
    """(centers, points, distances) of all pairs closer than ``r`` A (periodic)."""
    centers, points, _, dists = structure.get_neighbor_list(r)
    return centers, points, dists


def overlap_reasons(structure: Structure, min_distance: float = MIN_DISTANCE,
                    min_distance_h: float = 0.7) -> list[str]:
    """Reasons for atoms closer than ``min_distance`` A (``min_distance_h`` for pairs with H)."""
    if len(structure) == 0:
        return ["empty structure"]
    if structure.volume / len(structure) < 1.0:
        return [f"unphysical volume {structure.volume / len(structure):.2f} A^3/atom"]
    c, p, d = _neighbors(structure, min_distance)
    is_h = np.array([sp.symbol == "H" for sp in structure.species])
    limit = np.where(is_h[c] | is_h[p], min_distance_h, min_distance)
    bad = d < limit
    if bad.any():
        i = int(np.argmin(np.where(bad, d, np.inf)))
        return [f"atoms too close: {structure[c[i]].specie}{c[i]}-{structure[p[i]].specie}{p[i]} "
                f"{d[i]:.2f} A"]
    return []


def check_sio2(structure: Structure, si_o_window: tuple[float, float] = SI_O_WINDOW,
               bond_cutoff: float = BOND_CUTOFF, min_distance: float = MIN_DISTANCE) -> list[str]:
    """Strict SiO2 checks; returns the reasons for rejection (empty list = sane)."""
    if not structure.is_ordered:
        return ["disordered (partial occupancies)"]
    comp = structure.composition
    if comp.reduced_composition != Composition("SiO2").reduced_composition or set(
            comp.elements) != set(Composition("SiO2").elements):
        return [f"composition {comp.reduced_formula}, not SiO2"]
    reasons = overlap_reasons(structure, min_distance)
    if reasons:
        return reasons
    symbols = np.array([sp.symbol for sp in structure.species])
    lo, hi = si_o_window
    c, p, d = _neighbors(structure, max(bond_cutoff, 3.5))
    sio = (symbols[c] != symbols[p])
    c, p, d = c[sio], p[sio], d[sio]
    nearest = np.full(len(structure), np.inf)
    np.minimum.at(nearest, c, d)
    if not np.isfinite(nearest).all():
        return ["an atom has no Si-O neighbour within 3.5 A"]
    if nearest.min() < lo or nearest.max() > hi:
        k = int(np.argmax(nearest)) if nearest.max() > hi else int(np.argmin(nearest))
        return [f"nearest Si-O distance {nearest[k]:.2f} A at {symbols[k]}{k} outside "
                f"{lo:.2f}-{hi:.2f} A"]
    bonded = d < bond_cutoff
    cn = np.bincount(c[bonded], minlength=len(structure))
    for sym, allowed in (("Si", SI_CN), ("O", O_CN)):
        bad = sorted(set(cn[symbols == sym].tolist()) - set(allowed))
        if bad:
            return [f"{sym} coordination {bad} (allowed {list(allowed)})"]
    return []


def check_oxide(structure: Structure, min_distance: float = MIN_DISTANCE,
                cation_cutoff: float = 3.0) -> list[str]:
    """Loose checks for any oxide (user folders); returns the reasons for rejection."""
    if not structure.is_ordered:
        return ["disordered (partial occupancies)"]
    symbols = np.array([sp.symbol for sp in structure.species])
    if "O" not in symbols:
        return [f"no oxygen in {structure.composition.reduced_formula}"]
    reasons = overlap_reasons(structure, min_distance)
    if reasons:
        return reasons
    c, p, _ = _neighbors(structure, cation_cutoff)
    ok = (symbols[c] == "O") & (symbols[p] != "O")
    lonely = set(np.flatnonzero(symbols == "O").tolist()) - set(c[ok].tolist())
    if lonely:
        return [f"{len(lonely)} O atom(s) without a cation within {cation_cutoff:.1f} A"]
    return []


def canonical_cell(structure: Structure, symprec: float = 0.01) -> tuple[Structure, dict]:
    """Primitive, Niggli-reduced cell and symmetry meta (space group symbol/number at ``symprec``).

    Falls back to the Niggli-reduced input cell when spglib finds no primitive cell.
    """
    structure = structure.copy()
    structure.remove_oxidation_states()
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        prim = sga.find_primitive() or structure
        meta = {"spacegroup": sga.get_space_group_symbol(),
                "spacegroup_number": int(sga.get_space_group_number())}
    except Exception:  # spglib failure on odd input: keep the cell as given
        prim, meta = structure, {"spacegroup": "P1?", "spacegroup_number": 0}
    if len(prim) > len(structure) or prim.composition.reduced_composition != \
            structure.composition.reduced_composition:
        prim = structure
    red = prim.get_reduced_structure()
    red = Structure(red.lattice, red.species, np.round(red.frac_coords % 1.0, 10) % 1.0)
    red = red.get_sorted_structure(key=lambda s: (s.specie.symbol != "Si", s.specie.symbol,
                                                  *np.round(s.frac_coords, 6)))
    red = Structure(red.lattice.copy(), red.species, red.frac_coords)  # drop properties
    return red, meta
