"""Small literature reference structures for tests, benchmarks and examples (no file needed)."""

from __future__ import annotations

from pymatgen.core import Lattice, Structure


def alpha_quartz() -> Structure:
    """alpha-quartz, P3_221, 9 atoms (AMCSD cell: a = 4.916 Å, c = 5.4054 Å)."""
    return Structure(Lattice.hexagonal(4.916, 5.4054), ["Si", "O", "O"] * 3, [
        [0.0, 0.4697, 2 / 3], [0.2669, 0.4135, 0.54756667], [0.7331, 0.1466, 0.78576667],
        [0.4697, 0.0, 0.0], [0.4135, 0.2669, 0.1191], [0.1466, 0.7331, 0.8809],
        [0.5303, 0.5303, 1 / 3], [0.5865, 0.8534, 0.21423333], [0.8534, 0.5865, 0.45243333]])


def stishovite() -> Structure:
    """Stishovite (rutile type, P4_2/mnm), 6 atoms: a = 4.1801 Å, c = 2.6678 Å, x(O) = 0.3062."""
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.1801, 2.6678), ["Si", "O"],
                                     [[0, 0, 0], [0.3062, 0.3062, 0]])
