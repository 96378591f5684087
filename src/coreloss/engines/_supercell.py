"""Diagonal supercells for Gamma-point / core-hole calculations (shared by the engines).

A core-hole (Z+1) calculation in a periodic cell excites every periodic image of the site at
once, and a Gamma-point-only code (xTB) additionally folds images onto the same matrix element
(in a 9-atom quartz cell an O atom and its own image are "bonded"). Both need a supercell whose
images of the excited site are far apart. :func:`make_supercell` picks the smallest *diagonal*
supercell ``(na, nb, nc)`` whose three perpendicular widths (distance between opposite faces,
``V / |b x c|`` etc.) are all >= ``min_image_distance``. This is a slightly stronger condition
than "shortest lattice vector >= d": it guarantees that the images of *any* point, and a sphere
of diameter ``d`` around it, never overlap.
"""

from __future__ import annotations

from itertools import product

import numpy as np
from pymatgen.core import Lattice, Structure

from coreloss.errors import CorelossError


def perpendicular_widths(lattice) -> np.ndarray:
    """Distances (Å) between opposite faces of the cell: ``V / |a_j x a_k|`` for the three axes."""
    m = np.asarray(getattr(lattice, "matrix", lattice), float)
    vol = abs(float(np.linalg.det(m)))
    return np.array([vol / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in range(3)])


def shortest_image_distance(lattice) -> float:
    """Length (Å) of the shortest non-zero lattice vector: the closest distance between images."""
    red = Lattice(np.asarray(getattr(lattice, "matrix", lattice), float)).get_lll_reduced_lattice()
    m = red.matrix
    best = np.inf
    for n in product((-1, 0, 1), repeat=3):  # enough after LLL reduction
        if any(n):
            best = min(best, float(np.linalg.norm(np.asarray(n) @ m)))
    return best


def supercell_scaling(lattice, min_image_distance: float = 8.0) -> tuple[int, int, int]:
    """Smallest diagonal scaling ``(na, nb, nc)`` with every perpendicular width >= the distance (Å)."""
    if not min_image_distance > 0:
        raise CorelossError(f"min_image_distance must be positive, got {min_image_distance}")
    widths = perpendicular_widths(lattice)
    return tuple(int(max(1, np.ceil(min_image_distance / w - 1e-9))) for w in widths)


def make_supercell(structure: Structure, site_index: int,
                   min_image_distance: float = 8.0) -> tuple[Structure, int, tuple[int, int, int]]:
    """Build the diagonal supercell for exciting ``site_index``.

    Returns ``(supercell, new_index, (na, nb, nc))``. Atoms are ordered site-major: the images of
    original site ``i`` are ``i * n_cells + t`` for the translations ``t`` in
    ``itertools.product(range(na), range(nb), range(nc))``, so ``new_index = site_index * n_cells``
    is the image in the home cell (same Cartesian position as in ``structure``). Site
    properties and oxidation states are dropped; disordered structures are refused.
    """
    if not structure.is_ordered:
        raise CorelossError("supercells need an ordered structure (no partial occupancies)")
    if not 0 <= site_index < len(structure):
        raise CorelossError(f"site index {site_index} out of range for a {len(structure)}-atom structure")
    scale = supercell_scaling(structure.lattice, min_image_distance)
    shifts = np.array(list(product(*(range(n) for n in scale))), float)
    n_cells = len(shifts)
    frac = structure.frac_coords
    new_frac = ((frac[:, None, :] + shifts[None, :, :]) / np.asarray(scale, float)).reshape(-1, 3)
    species = [site.specie.symbol for site in structure for _ in range(n_cells)]
    lattice = Lattice(structure.lattice.matrix * np.asarray(scale, float)[:, None])
    supercell = Structure(lattice, species, new_frac)
    return supercell, site_index * n_cells, scale
