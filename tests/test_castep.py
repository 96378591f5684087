"""CASTEP / OptaDOS readers on small text fixtures in the real output layouts."""

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from coreloss.readers.castep import (castep_site_result, read_bond_populations, read_core_edge,
                                     read_final_energy, read_ions, read_mulliken)
from coreloss.errors import CorelossError

FIX = Path(__file__).parent / "fixtures" / "castep"
CASTEP = FIX / "quartz.castep"
SPIN = FIX / "quartz_spin.castep"
EDGE = FIX / "quartz_core_edge.dat"


def quartz() -> Structure:
    """alpha-quartz in the fixture's atom order (O 1..6, Si 1..3)."""
    fc = [[0.2669, 0.4135, 0.547567], [0.7331, 0.1466, 0.785767], [0.4135, 0.2669, 0.1191],
          [0.1466, 0.7331, 0.8809], [0.5865, 0.8534, 0.214233], [0.8534, 0.5865, 0.452433],
          [0, 0.4697, 2 / 3], [0.4697, 0, 0], [0.5303, 0.5303, 1 / 3]]
    return Structure(Lattice.hexagonal(4.916, 5.4054), ["O"] * 6 + ["Si"] * 3, fc)


def test_mulliken_table():
    rows = read_mulliken(CASTEP)
    assert len(rows) == 9
    o3 = rows[2]
    assert (o3["species"], o3["ion"]) == ("O", 3)
    assert o3["charge"] == pytest.approx(-1.266)
    assert o3["total"] == pytest.approx(o3["s"] + o3["p"], abs=1e-3)
    assert rows[-1]["species"] == "Si" and rows[-1]["charge"] == pytest.approx(2.57)


def test_mulliken_spin_polarised_layout():
    rows = read_mulliken(SPIN)
    assert len(rows) == 9  # up/dn line pairs merged
    assert rows[0]["charge"] == pytest.approx(-1.256)
    assert rows[0]["spin"] == pytest.approx(0.006)
    assert rows[0]["total"] == pytest.approx(3.631 + 3.625)


def test_bond_populations():
    bonds = read_bond_populations(CASTEP)
    assert len(bonds) == 27
    b = bonds[0]
    assert (b["species1"], b["ion1"], b["species2"], b["ion2"]) == ("O", 1, "Si", 1)
    assert b["population"] == pytest.approx(0.55) and b["length"] == pytest.approx(1.60463)
    spin = read_bond_populations(SPIN)
    assert len(spin) == 12 and all("spin" in x for x in spin)


def test_ions_energy_and_core_edge():
    ions = read_ions(CASTEP)
    assert [i[0] for i in ions] == ["O"] * 6 + ["Si"] * 3
    assert ions[6][2] == pytest.approx((0.0, 0.4697, 0.666667), abs=1e-6)
    assert read_final_energy(CASTEP) == pytest.approx(-2600.123456789)
    e, y, labels = read_core_edge(EDGE)
    assert labels == ["O 1 K1", "O 2 K1"]
    assert y.shape == (2, e.size) == (2, 151)
    assert e[0] == pytest.approx(-5.0) and np.all(np.diff(e) > 0)
    assert y.max() > 0


def test_site_result_with_and_without_structure():
    r = castep_site_result(CASTEP, EDGE, o_ion=2)
    assert r.site_index == 1
    assert r.labels["mulliken_charge"] == pytest.approx(-1.264)
    assert r.labels["bop"] == pytest.approx(0.55 + 0.52)  # two Si, O-O bonds excluded
    assert np.isnan(r.labels["excitation_energy"])
    assert r.provenance["parameters"]["edge"] == "O 2 K1"
    assert -1.5 < r.onset < 3.0
    assert r.aligned().shape == (301,)
    try:
        import coreloss.sites  # noqa: F401
    except ImportError:
        pytest.skip("coreloss.sites not available yet")
    r2 = castep_site_result(CASTEP, EDGE, o_ion=2, structure=quartz(), excitation_energy=538.2)
    assert r2.labels["bop"] == pytest.approx(1.07)
    assert r2.labels["excitation_energy"] == 538.2


def test_bad_files_raise(tmp_path):
    text = CASTEP.read_text()
    cut = tmp_path / "cut.castep"
    cut.write_text(text[: text.index("O 4 -- Si 2")])  # truncated inside the bond table
    with pytest.raises(CorelossError, match="truncated"):
        read_bond_populations(cut)
    assert len(read_mulliken(cut)) == 9  # the complete table before the cut still reads
    cut2 = tmp_path / "cut2.castep"
    cut2.write_text(text[: text.index("  O              4")])
    with pytest.raises(CorelossError):
        read_mulliken(cut2)
    garbage = tmp_path / "garbage.castep"
    garbage.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(CorelossError):
        read_mulliken(garbage)
    with pytest.raises(CorelossError):
        read_core_edge(garbage)
    lines = EDGE.read_text().splitlines()
    short = tmp_path / "short_core_edge.dat"
    short.write_text("\n".join(lines[:-40]) + "\n")  # second edge truncated
    with pytest.raises(CorelossError, match="truncated"):
        read_core_edge(short)
    with pytest.raises(CorelossError, match="not found"):
        read_mulliken(tmp_path / "missing.castep")
    with pytest.raises(CorelossError, match="no Mulliken row"):
        castep_site_result(CASTEP, EDGE, o_ion=9)


def test_core_dat_per_orbital_layout(tmp_path):
    """OptaDOS <seed>_core.dat: '# Ion: O 1 State: n=1 ang= s' blocks, two columns (unbroadened)."""
    e = np.linspace(0, 10, 11)
    lines = [" #*********************************************", " #            Core loss function",
             " #*********************************************", " #"]
    for ion in (1, 2):
        lines.append(f" #  Ion: O  {ion} State: n=1 ang= s")
        lines += [f"   {x:.16E}   {ion * x:.16E}" for x in e] + [" "]
    path = tmp_path / "quartz_core.dat"
    path.write_text("\n".join(lines) + "\n")
    energy, y, labels = read_core_edge(path)
    assert labels == ["Ion: O 1 State: n=1 ang= s", "Ion: O 2 State: n=1 ang= s"]
    assert np.allclose(y[1], 2 * energy)
