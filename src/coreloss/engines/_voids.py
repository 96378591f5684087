"""Empty space in a structure: centres of the voids where an LCAO basis has no functions.

Atom-centred LCAO bases cannot represent the diffuse final states that extend through the cages
and channels of open frameworks (zeolites). Ghost atoms (basis functions without nucleus or
electrons, GPAW setup ``'ghost'``) at void centres add them. :func:`void_centres` finds those
centres: points of a real-space grid whose distance to the nearest atom is at least
``min_distance`` Å, picked greedily from the emptiest one, each at least ``min_separation`` Å
from every earlier pick (periodic images included).
"""

from __future__ import annotations

import numpy as np


def _nearest_atom_distance(lattice, frac_points: np.ndarray, frac_atoms: np.ndarray,
                           chunk: int = 4096) -> np.ndarray:
    out = np.empty(len(frac_points))
    for i in range(0, len(frac_points), chunk):
        out[i:i + chunk] = lattice.get_all_distances(frac_points[i:i + chunk], frac_atoms).min(axis=1)
    return out


def void_centres(structure, min_distance: float = 3.0, min_separation: float = 3.0,
                 spacing: float = 0.35, max_centres: int | None = None) -> np.ndarray:
    """Cartesian positions (Å, shape (n, 3)) of void centres of a pymatgen ``structure``.

    A grid of about ``spacing`` Å over the cell; points at least ``min_distance`` Å from every atom
    are candidates; the emptiest candidate is picked first, then the emptiest one at least
    ``min_separation`` Å from all picks, and so on (deterministic). Dense phases give none.
    """
    lat = structure.lattice
    n = np.maximum(np.ceil(np.array(lat.abc) / spacing).astype(int), 1)
    axes = [np.arange(k) / k for k in n]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    d = _nearest_atom_distance(lat, grid, structure.frac_coords)
    cand = np.flatnonzero(d >= min_distance)
    cand = cand[np.argsort(-d[cand], kind="stable")]
    picks: list[int] = []
    alive = np.ones(len(cand), bool)
    for k in range(len(cand)):
        if not alive[k]:
            continue
        picks.append(cand[k])
        if max_centres is not None and len(picks) >= max_centres:
            break
        rest = np.flatnonzero(alive[k + 1:]) + k + 1
        if len(rest):
            dist = lat.get_all_distances(grid[cand[k]][None], grid[cand[rest]])[0]
            alive[rest[dist < min_separation]] = False
    return lat.get_cartesian_coords(grid[picks]) if picks else np.zeros((0, 3))
