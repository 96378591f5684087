"""Symmetry-inequivalent O sites of a crystal and their geometric labels.

Sites (:func:`o_sites`)
    O atoms are grouped into symmetry orbits with spglib (pymatgen
    :class:`~pymatgen.symmetry.analyzer.SpacegroupAnalyzer`, ``symprec`` = 0.01 Å, angle
    tolerance 5°; if spglib fails at 0.01 Å it is retried once at 0.1 Å). Orbits are spglib's
    ``crystallographic_orbits`` (symmetry of the primitive cell), so a supercell gives the same
    unique sites as its primitive cell, with multiplied multiplicities. Each orbit gives one
    :class:`OSite`: its representative is the lowest site index of the orbit, ``multiplicity`` is
    the number of O atoms of the orbit in the cell and ``equivalent_indices`` lists them, so a
    cell-averaged spectrum is ``sum(multiplicity * spectrum) / n_O``.

First shell (:func:`first_shell`, the rule behind all three labels and the engines' BOP)
    *Cations* are all atoms except the anions O, N, F, S, Cl, Se, Br, Te, I. For each cation
    element E, let ``d_E`` be the shortest O-E distance over all periodic images. If
    ``d_E <= d_max(E)`` the first shell holds every E atom (every periodic image, counted
    separately) with ``d <= min(1.2 * d_E, d_max(E))``. ``d_max`` is 2.5 Å for Si, 1.2 Å for H
    and ``1.3 * (r_E + 1.40 Å)`` otherwise (``r_E``: pymatgen average cationic radius; 3.0 Å if
    unknown). For SiO2 this selects exactly the bonded Si (Si-O 1.55-1.95 Å; the next Si is
    beyond 2.9 Å in every polymorph), is deterministic and has no tunable neighbour weights.

Labels (units: Å, deg, Å^3; see :mod:`coreloss.labels`)
    ``bond_length``: mean O-cation distance over the first shell (NaN if it is empty).
    ``bond_angle``: mean cation-O-cation angle over all pairs of first-shell cations
    (NaN for coordination < 2). ``voronoi_volume``: volume of the O atom's cell in the periodic
    Voronoi tessellation of all atoms (:func:`coreloss.voronoi.voronoi_volumes`, exact).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from pymatgen.core import Element, Structure

from coreloss.errors import CorelossError
from coreloss.voronoi import voronoi_volumes

__all__ = ["OSite", "o_sites", "first_shell", "voronoi_volumes", "site_table",
           "SYMPREC", "SYMPREC_FALLBACK", "SHELL_FACTOR", "ANIONS", "max_bond_length"]

#: spglib distance tolerance (Å) and the single fallback used if detection fails
SYMPREC = 0.01
SYMPREC_FALLBACK = 0.1
ANGLE_TOLERANCE = 5.0
#: first-shell cations of element E lie within SHELL_FACTOR * (shortest O-E distance)
SHELL_FACTOR = 1.2
#: elements never counted as cations
ANIONS = frozenset({"O", "N", "F", "S", "Cl", "Se", "Br", "Te", "I"})
_FIXED_MAX = {"Si": 2.5, "H": 1.2}
_O_RADIUS = 1.40


def max_bond_length(symbol: str) -> float:
    """Longest O-cation distance (Å) ever counted as a first-shell bond for element ``symbol``."""
    if symbol in _FIXED_MAX:
        return _FIXED_MAX[symbol]
    try:
        r = float(Element(symbol).average_cationic_radius)
    except (ValueError, KeyError):
        r = 0.0
    return 1.3 * (r + _O_RADIUS) if r > 0 else 3.0


@dataclass
class OSite:
    """One symmetry-inequivalent O site.

    index: site index of the representative O in the structure
    multiplicity: number of symmetry-equivalent O atoms in the cell
    equivalent_indices: their site indices (sorted, includes ``index``)
    coordination: number of first-shell cations (periodic images counted separately)
    neighbors: first-shell cations as ``(cation_index, distance_Å)``, sorted by distance
    bond_length: mean O-cation distance (Å); bond_angle: mean cation-O-cation angle (deg);
    voronoi_volume: periodic Voronoi volume of the O atom (Å^3)
    """

    index: int
    multiplicity: int
    equivalent_indices: list[int]
    coordination: int
    neighbors: list[tuple[int, float]]
    bond_length: float
    bond_angle: float
    voronoi_volume: float
    species: list[str] = field(default_factory=list)

    def labels(self) -> dict[str, float]:
        """The three geometric labels of :mod:`coreloss.labels` (Å, deg, Å^3)."""
        return {"bond_length": self.bond_length, "bond_angle": self.bond_angle,
                "voronoi_volume": self.voronoi_volume}


def _as_structure(structure) -> Structure:
    if isinstance(structure, Structure):
        s = structure
    else:
        try:
            from ase import Atoms
        except ImportError:  # pragma: no cover - ase is a dependency
            Atoms = ()
        if Atoms and isinstance(structure, Atoms):
            from pymatgen.io.ase import AseAtomsAdaptor
            s = AseAtomsAdaptor.get_structure(structure)
        else:
            raise CorelossError(f"expected a pymatgen Structure, got {type(structure).__name__}")
    if not s.is_ordered:
        raise CorelossError("disordered structure (partial occupancies) is not supported")
    return s


def _symbol(site) -> str:
    return site.specie.symbol


def _shells(structure: Structure, centers: list[int]) -> dict[int, list[tuple[int, float, np.ndarray]]]:
    """First shell of every site in ``centers``: ``{center: [(cation, distance, vector)]}``."""
    symbols = [_symbol(s) for s in structure]
    cation_elems = sorted({e for e in symbols if e not in ANIONS})
    out: dict[int, list] = {c: [] for c in centers}
    if not cation_elems or not centers:
        return out
    limits = {e: max_bond_length(e) for e in cation_elems}
    r = max(limits.values()) + 1e-6
    ctr, nbr, images, dist = structure.get_neighbor_list(r, sites=[structure[i] for i in centers])
    cart = structure.cart_coords
    matrix = structure.lattice.matrix
    by_center: dict[int, list] = {}
    for c, j, img, d in zip(ctr, nbr, images, dist):
        e = symbols[j]
        if e in ANIONS or d > limits[e]:
            continue
        by_center.setdefault(int(c), []).append((int(j), float(d), tuple(int(x) for x in img), e))
    for k, center in enumerate(centers):
        cands = by_center.get(k, [])
        shortest: dict[str, float] = {}
        for j, d, img, e in cands:
            shortest[e] = min(d, shortest.get(e, math.inf))
        kept = [(j, d, img) for j, d, img, e in cands if d <= SHELL_FACTOR * shortest[e] + 1e-9]
        kept.sort(key=lambda t: (round(t[1], 6), t[0], t[2]))
        out[center] = [(j, d, cart[j] + np.asarray(img, float) @ matrix - cart[center])
                       for j, d, img in kept]
    return out


def first_shell(structure, index: int) -> list[tuple[int, float]]:
    """First-shell cations of site ``index`` as ``(cation_index, distance_Å)``, nearest first.

    Rule (see module docstring): per cation element E, all E atoms within
    ``min(1.2 * d_E, d_max(E))`` where ``d_E`` is the shortest O-E distance (only if
    ``d_E <= d_max(E)``; ``d_max``: 2.5 Å for Si). A cation reached through two periodic images
    appears twice (two distinct bonds).
    """
    s = _as_structure(structure)
    if not -len(s) <= index < len(s):
        raise CorelossError(f"site index {index} out of range (structure has {len(s)} sites)")
    index = index % len(s)
    return [(j, d) for j, d, _ in _shells(s, [index])[index]]


def _orbits(structure: Structure, symprec: float) -> list[list[int]]:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    last = None
    for tol in dict.fromkeys((symprec, SYMPREC_FALLBACK)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = SpacegroupAnalyzer(structure, symprec=tol,
                                          angle_tolerance=ANGLE_TOLERANCE).get_symmetry_dataset()
            if data is None:
                raise ValueError("spglib returned no dataset")
            # crystallographic_orbits uses the symmetry of the primitive cell, so the orbits of a
            # supercell whose lattice breaks a rotation are still complete (equivalent_atoms is not)
            orbits = getattr(data, "crystallographic_orbits", None)
            equiv = np.asarray(orbits if orbits is not None else data.equivalent_atoms)
            groups: dict[int, list[int]] = {}
            for i, rep in enumerate(equiv):
                groups.setdefault(int(rep), []).append(i)
            return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])
        except Exception as exc:  # spglib signals failure in several ways across versions
            last = exc
    raise CorelossError(f"symmetry detection failed at symprec {symprec} and {SYMPREC_FALLBACK} Å: "
                        f"{str(last).splitlines()[0] if str(last) else type(last).__name__}")


def _angle_mean(vectors: list[np.ndarray]) -> float:
    if len(vectors) < 2:
        return math.nan
    angles = []
    for u, v in combinations(vectors, 2):
        cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
        angles.append(math.degrees(math.acos(min(1.0, max(-1.0, cos)))))
    return float(np.mean(angles))


def o_sites(structure, symprec: float = SYMPREC, volumes: bool = True) -> list[OSite]:
    """Symmetry-inequivalent O sites of ``structure`` with their geometric labels.

    ``structure``: pymatgen Structure (or ASE Atoms), ordered, periodic.
    ``symprec``: spglib distance tolerance in Å (default 0.01; retried at 0.1 on failure).
    ``volumes=False`` skips the Voronoi volumes (``voronoi_volume`` NaN; about 2/3 of the time)
    for callers that need only the orbits and first shells.
    Returns one :class:`OSite` per O orbit, ordered by representative index.
    """
    s = _as_structure(structure)
    o_idx = [i for i, site in enumerate(s) if _symbol(site) == "O"]
    if not o_idx:
        raise CorelossError(f"structure {s.composition.reduced_formula} has no O atoms")
    orbits = [g for g in _orbits(s, symprec) if _symbol(s[g[0]]) == "O"]
    reps = [g[0] for g in orbits]
    shells = _shells(s, reps)
    vols = voronoi_volumes(s) if volumes else np.full(len(s), math.nan)
    symbols = [_symbol(site) for site in s]
    out = []
    for group in orbits:
        rep = group[0]
        shell = shells[rep]
        dists = [d for _, d, _ in shell]
        out.append(OSite(
            index=rep, multiplicity=len(group), equivalent_indices=list(group),
            coordination=len(shell), neighbors=[(j, round(d, 6)) for j, d, _ in shell],
            bond_length=float(np.mean(dists)) if dists else math.nan,
            bond_angle=_angle_mean([v for _, _, v in shell]),
            voronoi_volume=float(vols[rep]),
            species=[symbols[j] for j, _, _ in shell]))
    return out


def _items(records) -> Iterable[tuple[str, Structure]]:
    if isinstance(records, Mapping):
        return list(records.items())
    items = []
    for r in records:
        items.append((r.id, r.structure) if hasattr(r, "structure") else tuple(r))
    return items


def site_table(records, symprec: float = SYMPREC, progress: bool = False) -> list[dict]:
    """One row per unique O site of each structure.

    ``records``: StructureRecords, ``(id, Structure)`` pairs or a ``{id: Structure}`` mapping.
    Row keys: ``structure_id``, ``site_index``, ``multiplicity``, ``coordination``,
    ``bond_length`` (Å), ``bond_angle`` (deg), ``voronoi_volume`` (Å^3).
    ``progress``: show a rich progress bar (on stderr).
    """
    items = _items(records)
    rows: list[dict] = []

    def run(advance=lambda: None):
        for sid, structure in items:
            try:
                sites = o_sites(structure, symprec=symprec)
            except CorelossError as exc:
                raise CorelossError(f"structure {sid}: {exc}") from exc
            for site in sites:
                rows.append({"structure_id": sid, "site_index": site.index,
                             "multiplicity": site.multiplicity, "coordination": site.coordination,
                             **site.labels()})
            advance()

    if progress:
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("O-site labels", total=len(items))
            run(lambda: bar.advance(task))
    else:
        run()
    return rows
