"""The gpaw-lcao engine on tiny cells: generated bases, the absolute energy scale, O environments.

Two 6-atom SiO2 cells (ht-cristobalite, linear Si-O-Si; rutile-type, threefold O) with the shipped
dzp basis on a coarse grid and core-hole images only a cell apart: physics too crude for data, but
every step of the engine runs (~10-30 s for the file).
"""

import pickle

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

pytest.importorskip("gpaw", reason="GPAW is not installed (pip install gpaw gpaw-data)")

from coreloss.engines import get_engine  # noqa: E402
from coreloss.engines import gpaw_basis  # noqa: E402
from coreloss.errors import CorelossError  # noqa: E402
from coreloss.engines.gpaw_lcao import rebroadened_spectra, spectrum_from_sticks  # noqa: E402

FAST = dict(basis="dzp", h=0.35, min_image_distance=2.0)


# core-hole setups and bases are generated into a private cache, not the user's
pytestmark = pytest.mark.usefixtures("private_cache", "coarse_eggbox_reference")


def cristobalite() -> Structure:
    """Idealised ht-cristobalite (Fd-3m primitive cell): O between two Si, Si-O-Si 180 deg."""
    a = 7.46 / np.sqrt(2)
    lat = Lattice.from_parameters(a, a, a, 60, 60, 60)
    return Structure(lat, ["Si", "Si", "O", "O", "O", "O"],
                     [[0, 0, 0], [0.75, 0.75, 0.75], [0.375, 0.875, 0.875], [0.875, 0.375, 0.875],
                      [0.875, 0.875, 0.375], [0.875, 0.875, 0.875]])


def rutile_type() -> Structure:
    """Stishovite (rutile type): O bonded to three Si, Si-O-Si 2 x 130.7 + 98.6 deg."""
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.177, 2.665), ["Si", "O"],
                                     [[0, 0, 0], [0.3062, 0.3062, 0]])


@pytest.fixture(scope="module")
def two_sites():
    eng = get_engine("gpaw-lcao", **FAST)
    return eng, eng.compute_sites(cristobalite(), [2])[0], eng.compute_sites(rutile_type(), [2])[0]


def test_tiny_lcao_sites(two_sites):
    eng, a, b = two_sites
    for r in (a, b):
        assert not isinstance(r, Exception), r
        assert np.all(np.isfinite(r.intensity)) and r.intensity.min() >= 0 and r.intensity.max() > 0
        assert np.allclose(np.diff(r.energy), eng.params["de"])
        # absolute scale: Delta-KS O 1s -> first empty state near the ~535-540 eV SiO2 edge,
        # the spectrum starts at that energy
        e_x = r.labels["excitation_energy"]
        assert 525 < e_x < 550
        assert r.energy[0] < e_x <= r.onset + 1.0 and r.onset < e_x + 10.0  # weak first states
        assert r.labels["mulliken_charge"] < 0 and r.labels["bop"] > 0
        p = r.provenance
        assert p["engine"] == "gpaw-lcao" and p["mulliken_basis"] == "dzp"
        assert p["empty_reach_eV"] == pytest.approx(min(eng.params["empty_cut_ev"],
                                                        p["highest_state_eV"] - e_x))
        assert p["spectrum_max_eV"] + 5.0 - eng.params["de"] <= r.energy[-1] + 1e-9
        assert {"ground_state_s", "xch_s"} <= set(p["timings_s"]) == set(p["cpu_timings_s"])
        assert all(v > 0 for v in p["cpu_timings_s"].values())
        assert np.trapezoid(r.aligned(), dx=0.1) == pytest.approx(1.0, rel=1e-6)
        # the kept sticks are stored, and broadening them again gives the same spectrum
        st = p["sticks"]
        assert len(st["energy_eV"]) == len(st["strength"]) == p["n_sticks"] > 0
        assert min(st["energy_eV"]) == pytest.approx(0.0, abs=1e-3) and max(st["strength"]) == 1.0
        energy, inten = spectrum_from_sticks(st, e_x, eng.params["gaussian_fwhm"],
                                             eng.params["lorentzian_fwhm"], eng.params["de"])
        assert np.allclose(energy, r.energy)
        diff = np.abs(inten / inten.max() - r.intensity / r.intensity.max())
        assert diff.max() < 1e-3, diff.max()  # stored energies rounded to 0.1 meV
        sharp = spectrum_from_sticks(st, e_x, 0.3, 0.2, eng.params["de"])[1]
        assert sharp.max() / np.trapezoid(sharp) > inten.max() / np.trapezoid(inten)
    # dataset rows broadened again from their stored sticks (a row without sticks: NaN)
    rows = [{"engine": a.provenance}, {"engine": {}}, {"engine": b.provenance}]
    e_x = [a.labels["excitation_energy"], 0.0, b.labels["excitation_energy"]]
    X = rebroadened_spectra(rows, e_x, eng.params["gaussian_fwhm"], eng.params["lorentzian_fwhm"])
    assert np.isnan(X[1]).all() and np.abs(X[0] - a.aligned()).max() < 1e-3 * a.aligned().max()
    assert np.abs(X[2] - b.aligned()).max() < 1e-3 * b.aligned().max()
    X_sharp = rebroadened_spectra(rows, e_x, 0.3)
    assert np.trapezoid(X_sharp[0], dx=0.1) == pytest.approx(1.0, rel=1e-6) and X_sharp[0].max() > X[0].max()
    # two O environments (twofold linear vs threefold) give different spectra and energies
    cos = float(np.dot(a.aligned(), b.aligned())
                / np.linalg.norm(a.aligned()) / np.linalg.norm(b.aligned()))
    assert cos < 0.95
    assert abs(a.labels["excitation_energy"] - b.labels["excitation_energy"]) > 0.1
    assert a.provenance["first_shell"] != b.provenance["first_shell"]


def test_paired_xch_energy_on_the_spin_polarised_scale(two_sites):
    """The default spin-paired XCH minus PAIRED_XCH_OFFSET_EV lands on the spin-polarised (GPAW
    recipe) Delta-KS energy; the spectrum does not depend on the XCH setting."""
    from coreloss.engines.gpaw_lcao import PAIRED_XCH_OFFSET_EV

    eng, a, _ = two_sites
    assert eng.params["xch_spinpol"] is False
    assert f"minus {PAIRED_XCH_OFFSET_EV} eV" in a.provenance["excitation_energy"]
    spin = get_engine("gpaw-lcao", **FAST, xch_spinpol=True).compute_sites(cristobalite(), [2])[0]
    assert not isinstance(spin, Exception), spin
    assert a.labels["excitation_energy"] == pytest.approx(spin.labels["excitation_energy"], abs=0.3)
    assert a.provenance["E_xch_eV"] - spin.provenance["E_xch_eV"] == pytest.approx(PAIRED_XCH_OFFSET_EV, abs=0.3)
    np.testing.assert_allclose(a.aligned(), spin.aligned(), atol=1e-6)


def test_generated_basis_cached_and_named_by_setup():
    path = gpaw_basis.ensure_basis("O", "szp", "hch1s")
    assert path.name == "O.hch1s.szp.basis" and path.stat().st_size > 1000
    mtime = path.stat().st_mtime_ns
    assert gpaw_basis.ensure_basis("O", "szp", "hch1s").stat().st_mtime_ns == mtime
    assert gpaw_basis.ensure_basis("Si", "dzp") is None  # shipped with gpaw-data
    with pytest.raises(CorelossError):
        gpaw_basis.ensure_basis("O", "not-a-basis")


def test_engine_params_and_errors():
    eng = get_engine("gpaw-lcao", **FAST)
    assert pickle.loads(pickle.dumps(eng)).params == eng.params
    with pytest.raises(CorelossError, match="not an O atom"):
        eng.compute_sites(rutile_type(), [0])
    with pytest.raises(CorelossError, match="scheme"):
        get_engine("gpaw-lcao", scheme="zz")
    assert eng.cost(200, 3) > eng.cost(100, 3) > eng.cost(100, 1)


def test_dataset_build_defaults_to_the_dft_engine():
    import inspect

    from coreloss.cli.dataset import build
    from coreloss.dataset import build_dataset

    assert inspect.signature(build_dataset).parameters["engine"].default == "gpaw-lcao"
    assert inspect.signature(build).parameters["engine"].default.default == "gpaw-lcao"


def test_committed_pw_reference_set_loads():
    """datasets/sio2_pw_reference.h5 (benchmarks/bench_pw_reference.py): a coreloss dataset file."""
    from pathlib import Path

    from coreloss.dataset import load_dataset

    path = Path(__file__).resolve().parents[1] / "datasets" / "sio2_pw_reference.h5"
    if not path.is_file():
        pytest.skip("no plane-wave reference set committed")
    ds = load_dataset(path)
    p = ds.provenance
    assert p["engine"] == "gpaw" and p["parameters"]["ecut"] >= 400
    assert p["parameters"]["min_image_distance"] >= 8
    assert len(ds) >= 1 and np.all(np.isfinite(ds.X)) and ds.X.min() >= -1e-9
    assert np.all(np.isfinite(ds.y[:, :5]))  # excitation energy may be NaN (spectrum only)
    assert not any(sid.startswith("amcsd-") for sid in ds.structures)  # nothing from ../shared


def test_gpaw_atoms_turns_negative_orthorhombic_axes():
    """GPAW's log drawing fails on a diagonal cell with a negative element (seen on a generated
    SiO2 phase); gpaw_atoms gives the same lattice and positions with +x, +y, +z axes."""
    pytest.importorskip("gpaw")
    from gpaw.io.plot_atoms import plot_atoms
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    from coreloss.engines.gpaw import gpaw_atoms

    s = Structure(Lattice([[-4.0, 0, 0], [0, -4.2, 0], [0, 0, 4.4]]), ["Si", "O", "O"],
                  [[0, 0, 0], [0.3, 0.3, 0], [0.7, 0.7, 0]])
    with pytest.raises(ValueError):
        plot_atoms(AseAtomsAdaptor.get_atoms(s))
    atoms = gpaw_atoms(s)
    assert np.allclose(atoms.cell.array, np.diag([4.0, 4.2, 4.4]))
    plot_atoms(atoms)  # no error
    back = AseAtomsAdaptor.get_structure(atoms)
    assert back.lattice.volume == pytest.approx(s.lattice.volume)
    assert sorted(np.round(back.distance_matrix.ravel(), 6)) == sorted(np.round(s.distance_matrix.ravel(), 6))


def test_sticks_to_spectrum_cuts_basis_artefacts():
    from coreloss.engines.gpaw_lcao import sticks_to_spectrum

    e = np.array([530.0, 540.0, 560.0])  # the last stick lies 30 eV above the first transition
    f = np.array([1.0, 2.0, 50.0])
    energy, inten, e_max, n_kept = sticks_to_spectrum(e, f, 530.0, 600.0, empty_cut_ev=28.0)
    assert (e_max, n_kept) == (558.0, 2)
    assert energy[0] == pytest.approx(522.0) and energy[-1] < 563.0
    assert np.all(inten >= 0) and energy[np.argmax(inten)] == pytest.approx(540.0, abs=0.06)
    # the highest computed state bounds the window too
    assert sticks_to_spectrum(e, f, 530.0, 545.0)[2:] == (545.0, 2)


def test_ghosts_in_voids_are_part_of_the_basis(two_sites):
    eng, a, b = two_sites  # ghosts on (the default)
    assert eng.params["ghost_min_distance"] > 0
    assert a.provenance["ghosts"]["n"] > 0 and b.provenance["ghosts"]["n"] == 0  # open vs dense
    assert a.provenance["supercell_atoms"] == 6  # real atoms only
    off = get_engine("gpaw-lcao", **FAST, ghost_min_distance=0).compute_sites(cristobalite(), [2])[0]
    assert off.provenance["ghosts"] == {"n": 0, "element": "H", "used_in": "every SCF (basis)", "rule": "off"}
    # the ghosts hold little Mulliken population: the O charge moves by far less than its scale
    assert off.labels["mulliken_charge"] == pytest.approx(a.labels["mulliken_charge"], abs=0.1)
    assert off.labels["excitation_energy"] != pytest.approx(a.labels["excitation_energy"], abs=1e-4)
    cos = float(np.dot(a.aligned(), off.aligned()) / np.linalg.norm(a.aligned()) / np.linalg.norm(off.aligned()))
    assert cos < 0.9999  # the spectrum does change
    with pytest.raises(CorelossError, match="ghost_min_distance"):
        get_engine("gpaw-lcao", ghost_min_distance=-1)


def test_eggbox_correction_removes_the_grid_position_dependence(two_sites):
    """Translating the crystal by half a grid step moves the raw Delta-KS energy (egg-box); the
    isolated-atom correction takes most of that away."""
    from coreloss.engines._eggbox import grid_vectors

    eng, a, _ = two_sites
    p = a.provenance
    assert p["excitation_energy"].endswith("against h 0.10 A)")
    assert a.labels["excitation_energy"] == pytest.approx(p["dks_uncorrected_eV"] - p["eggbox_correction_eV"])
    corr, offset = eng.eggbox(cristobalite(), 2)  # geometry only: the same number
    assert corr == pytest.approx(p["eggbox_correction_eV"], abs=1e-6) and offset == p["grid_offset"]
    s = cristobalite()
    half_step = 0.5 * grid_vectors(s.lattice.matrix, eng.params["h"]).sum(axis=0)
    s.translate_sites(list(range(len(s))), half_step, frac_coords=False)
    moved = eng.compute_sites(s, [2])[0]
    assert not isinstance(moved, Exception), moved
    raw = abs(moved.provenance["dks_uncorrected_eV"] - p["dks_uncorrected_eV"])
    corrected = abs(moved.labels["excitation_energy"] - a.labels["excitation_energy"])
    assert raw > 0.02 and corrected < raw / 3
    off = get_engine("gpaw-lcao", **FAST, eggbox_correction=False).compute_sites(cristobalite(), [2])[0]
    assert off.labels["excitation_energy"] == pytest.approx(p["dks_uncorrected_eV"], abs=1e-3)
    assert off.provenance["eggbox_correction_eV"] == 0.0
