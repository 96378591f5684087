"""Void centres (ghost-atom positions for LCAO in open frameworks)."""

import numpy as np
from pymatgen.core import Lattice, Structure

from coreloss.engines._voids import void_centres


def test_void_centre_of_an_empty_cube_and_none_in_a_dense_cell():
    s = Structure(Lattice.cubic(8.0), ["Si"], [[0, 0, 0]])
    v = void_centres(s, min_distance=3.0, min_separation=3.0, spacing=0.5)
    assert np.allclose(v[0], [4.0, 4.0, 4.0])  # the emptiest point comes first
    # every pick is >= min_distance from the atom and >= min_separation from the others
    assert np.all(s.lattice.get_all_distances(s.lattice.get_fractional_coords(v), s.frac_coords) >= 3.0)
    d = s.lattice.get_all_distances(s.lattice.get_fractional_coords(v), s.lattice.get_fractional_coords(v))
    assert np.all(d[~np.eye(len(v), dtype=bool)] >= 3.0)
    dense = Structure(Lattice.cubic(3.0), ["Si"], [[0, 0, 0]])
    assert void_centres(dense, 3.0).shape == (0, 3)
    assert len(void_centres(s, 3.0, 3.0, spacing=0.5, max_centres=1)) == 1
