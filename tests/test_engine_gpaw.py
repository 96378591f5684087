"""The gpaw engine: core-hole setups, Delta-KS validation on water, a tiny stishovite cell.

Runtime: ~40 s for the whole file on a quiet machine, ~2.5 min under heavy load (stishovite
fixture ~22-90 s, water Delta-KS ~13-50 s).
"""

import pickle

import numpy as np
import pytest
from pymatgen.core import Structure

pytest.importorskip("gpaw", reason="GPAW is not installed (pip install gpaw gpaw-data)")

from coreloss.engines import get_engine  # noqa: E402
from coreloss.engines import gpaw_setups  # noqa: E402
from coreloss.errors import CorelossError  # noqa: E402
from coreloss.structures import reference  # noqa: E402


# core-hole setups and bases are generated into a private cache, not the user's
pytestmark = pytest.mark.usefixtures("private_cache")


def stishovite() -> Structure:
    return reference.stishovite(a=4.177, c=2.665)


def test_setup_generated_once_and_found():
    path = gpaw_setups.ensure_core_hole_setup("hch1s")
    assert path.name == "O.hch1s.PBE" and path.stat().st_size > 10_000
    mtime = path.stat().st_mtime_ns
    assert gpaw_setups.ensure_core_hole_setup("hch1s").stat().st_mtime_ns == mtime  # cached
    folder = gpaw_setups.activate(("hch1s",))
    import gpaw
    from gpaw.setup_data import search_for_file

    assert str(folder) in map(str, gpaw.setup_paths)
    found, _ = search_for_file("O.hch1s.PBE")
    assert found == str(path)
    with pytest.raises(CorelossError):
        gpaw_setups.ensure_core_hole_setup("hch2p")


@pytest.mark.slow
def test_water_delta_ks_matches_gpaw_reference():
    """GPAW's own test (gpaw/test/corehole/test_h2o_dks.py): 533.070 eV for the O 1s of H2O."""
    from ase.build import molecule
    from gpaw import PoissonSolver

    from coreloss.engines.gpaw import dks_excited_energy, ground_state_energy

    gpaw_setups.activate(("fch1s",))
    atoms = molecule("H2O")
    atoms.center(vacuum=2.5)
    params = dict(mode="fd", xc={"name": "PBE", "stencil": 1}, txt=None,
                  poissonsolver=PoissonSolver("fd", use_charge_center=True))
    e_gs = ground_state_energy(atoms, **params)
    e_exc = dks_excited_energy(atoms, 0, "fch1s", **params)
    assert e_exc - e_gs == pytest.approx(533.070, abs=0.01)


@pytest.fixture(scope="module")
def stishovite_result():
    eng = get_engine("gpaw", ecut=250, min_image_distance=2.0, empty_ev=15.0)
    return eng, eng.compute_sites(stishovite(), [2])[0]


@pytest.mark.slow
def test_tiny_stishovite_site(stishovite_result):
    eng, r = stishovite_result
    assert not isinstance(r, Exception), r
    assert r.site_index == 2
    assert np.all(np.isfinite(r.intensity)) and r.intensity.min() >= 0 and r.intensity.max() > 0
    assert np.allclose(np.diff(r.energy), eng.params["de"])
    assert r.energy[0] < r.onset < r.energy[-1]
    assert r.labels["mulliken_charge"] < 0
    assert r.labels["bop"] > 0
    # Delta-KS O 1s transition energy: a few eV around the 538 eV SiO2 edge (tiny cell, 250 eV)
    assert 520 < r.labels["excitation_energy"] < 560
    assert r.energy[0] < r.labels["excitation_energy"] < r.onset + 1.0
    p = r.provenance
    assert p["engine"] == "gpaw" and p["engine_version"].startswith("gpaw ")
    assert p["nbands"] > p["occupied_bands"] and p["setups"]["excited_spectrum"] == "hch1s"
    assert {"ground_state_s", "lcao_s", "fch_s", "hch_s"} <= set(p["timings_s"])
    aligned = r.aligned()
    assert aligned.shape == (301,) and np.trapezoid(aligned, dx=0.1) == pytest.approx(1.0, rel=1e-6)


def test_engine_pickles_and_refuses_non_o_sites():
    eng = get_engine("gpaw", ecut=250, min_image_distance=2.0)
    assert pickle.loads(pickle.dumps(eng)).params == eng.params
    with pytest.raises(CorelossError, match="not an O atom"):
        eng.compute_sites(stishovite(), [0])
    with pytest.raises(CorelossError):
        get_engine("gpaw", mode="lcao")


def test_lcao_mulliken_water_neutral_and_bonding():
    from ase.build import molecule

    from coreloss.engines.gpaw import lcao_populations

    atoms = molecule("H2O")
    atoms.center(vacuum=3.0)
    charges, pops, valence = lcao_populations(atoms, txt=None)
    assert charges.sum() == pytest.approx(0.0, abs=1e-8)  # populations add up to 8 electrons
    assert list(valence) == [6.0, 1.0, 1.0]
    assert charges[0] < 0 < charges[1] and charges[1] == pytest.approx(charges[2], abs=1e-6)
    assert pops[0, 1] > 0.3 and pops[1, 2] < 0.1  # O-H bonding, H...H not
    assert np.allclose(pops, pops.T)
