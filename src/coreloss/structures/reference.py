"""Small literature reference structures for tests, benchmarks and examples (no file needed)."""

from __future__ import annotations

from pymatgen.core import Lattice, Structure


def alpha_quartz() -> Structure:
    """alpha-quartz, P3_221, 9 atoms (AMCSD cell: a = 4.916 Å, c = 5.4054 Å)."""
    return Structure(Lattice.hexagonal(4.916, 5.4054), ["Si", "O", "O"] * 3, [
        [0.0, 0.4697, 2 / 3], [0.2669, 0.4135, 0.54756667], [0.7331, 0.1466, 0.78576667],
        [0.4697, 0.0, 0.0], [0.4135, 0.2669, 0.1191], [0.1466, 0.7331, 0.8809],
        [0.5303, 0.5303, 1 / 3], [0.5865, 0.8534, 0.21423333], [0.8534, 0.5865, 0.45243333]])


def stishovite(a: float = 4.1801, c: float = 2.6678, x: float = 0.3062) -> Structure:
    """Stishovite (rutile type, P4_2/mnm), 6 atoms: a, c (Å), O at (x, x, 0); defaults from the
    literature cell (a = 4.1801 Å, c = 2.6678 Å, x(O) = 0.3062)."""
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(a, c), ["Si", "O"],
                                     [[0, 0, 0], [x, x, 0]])


def coesite() -> Structure:
    """Coesite, C2/c, 48 atoms (cell of Levien & Prewitt, Am. Mineral. 66, 324 (1981): a = 7.1356,
    b = 12.3692, c = 7.1736 Å, beta = 120.34 deg). Coordinates as published to ~0.001; Si1 fitted to
    four Si-O of 1.61 Å; RMS 0.003 (pymatgen StructureMatcher units) from the AMCSD coesite CIF."""
    return Structure.from_spacegroup(
        "C2/c", Lattice.monoclinic(7.1356, 12.3692, 7.1736, 120.34), ["Si", "Si", "O", "O", "O", "O", "O"],
        [[0.1408, 0.1095, 0.0729], [0.5065, 0.1581, 0.5402], [0, 0, 0], [0.5, 0.1163, 0.75],
         [0.2660, 0.1232, 0.9405], [0.3114, 0.1036, 0.3279], [0.0175, 0.2115, 0.4784]])
