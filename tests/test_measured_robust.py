"""Measured spectra as they come: headerless .msa, edge finding / calibration, the HyperSpy API."""

import sys
from pathlib import Path

import numpy as np
import pytest

from coreloss.errors import CorelossError
from coreloss.measured import predict_measured, read_measured
from coreloss.measured.edges import calibration_shift, find_edge, zlp_shift
from coreloss.measured.readers import MeasuredSpectra, NavAxis

sys.path.insert(0, str(Path(__file__).parent))
from test_measured import synthetic_edge  # noqa: E402

EXP = Path(__file__).resolve().parents[2] / "shared" / "data" / "experimental"


def steep(e, onset, jump=0.03, rng=None):
    """A weak O K-like edge (step of ``jump`` x the background at the onset) on a steep E^-4.5
    background with Poisson noise."""
    edge = synthetic_edge(e, onset=onset, bg=False)[0] / 50.0  # plateau ~1
    bg = 3e5 * (e / 532.0) ** -4.5
    y = jump * 3e5 * (onset / 532.0) ** -4.5 * edge + bg
    return (rng or np.random.default_rng(0)).poisson(y).astype(float)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from coreloss.models.inverse import InverseModel
    from coreloss.models.synthetic import synthetic_dataset
    X, y, g = synthetic_dataset(n_structures=30, sites_per_structure=8, seed=0)
    return InverseModel(members=2, epochs=30, hidden=(64,), seed=0, val_fraction=0.3).fit(X, y, g)


# -- readers -----------------------------------------------------------------------------------
def test_headerless_two_column_msa(tmp_path):
    e = np.arange(480.0, 600.0, 0.5)
    y = synthetic_edge(e, onset=531.0)[0]
    path = tmp_path / "eelsdb.msa"  # the EELS Data Base layout: "energy, counts" and nothing else
    path.write_text("\n".join(f"{a:.2f}, {b:.3f}" for a, b in zip(e, y)) + "\n")
    m = read_measured(path)
    assert m.nav_shape == () and m.energy.size == e.size
    np.testing.assert_allclose(m.energy, e)
    np.testing.assert_allclose(m.data, y, rtol=1e-6)
    assert "two-column" in m.metadata["reader"]
    path2 = tmp_path / "tabs.msa"  # tab separated, with an EMSA-like comment header
    path2.write_text("#FORMAT : EMSA/MAS\n#XUNITS : eV\n" + "\n".join(f"{a}\t{b}" for a, b in zip(e, y)))
    assert read_measured(path2).energy.size == e.size
    bad = tmp_path / "one_column.msa"
    bad.write_text("\n".join(f"{b:.3f}" for b in y))
    with pytest.raises(CorelossError) as err:
        read_measured(bad)
    assert "\n" not in str(err.value)


# -- edge finding ------------------------------------------------------------------------------
@pytest.mark.parametrize("onset", [522.0, 531.0, 545.0, 500.0])
def test_find_edge_weak_jump_steep_background_miscalibrated(onset):
    e = np.arange(350.0, 862.0, 0.25)
    est = find_edge(e, steep(e, onset)[None, :])
    assert est.found and abs(est.onset - onset) < 1.5, est
    shift, _ = calibration_shift(e, steep(e, onset)[None, :])
    assert abs(onset + shift - 532.0) < 1.5


def test_find_edge_reports_nothing_on_a_bare_background():
    e = np.arange(350.0, 862.0, 0.25)
    bg = np.random.default_rng(1).poisson(3e5 * (e / 532.0) ** -4.5).astype(float)
    assert not find_edge(e, bg[None, :]).found
    with pytest.raises(CorelossError, match="no edge-like step"):
        calibration_shift(e, bg[None, :])


def test_zlp_shift():
    e = np.arange(-20.0, 50.0, 0.1)
    ll = np.exp(-0.5 * ((e - 2.7) / 0.4) ** 2) + 0.01
    assert zlp_shift(e, ll[None, :]) == pytest.approx(-2.7, abs=0.05)


def test_miscalibrated_file_fails_with_shift_hint_then_auto_works(model):
    e = np.arange(350.0, 862.0, 0.25)
    y = synthetic_edge(e, onset=518.0, n=3, noise=0.5)  # O K 14 eV low: outside the onset range
    m = MeasuredSpectra(e, y, [NavAxis("x", 3)], source="sto.dm3")
    with pytest.raises(CorelossError, match=r"--shift 1[0-9]\.\d") as err:
        predict_measured(m, model)
    assert "\n" not in str(err.value)
    res = predict_measured(m, model, calibrate="auto")
    assert res.valid.all()
    assert res.provenance["calibration"]["shift_eV"] == pytest.approx(14.0, abs=1.5)


def test_cli_shift_auto(tmp_path, model, capsys):
    from test_measured_maps import run_cli
    e = np.arange(450.0, 620.0, 0.25)
    y = synthetic_edge(e, onset=520.0, noise=0.5)[0]
    path = tmp_path / "shifted.csv"
    path.write_text("energy,counts\n" + "\n".join(f"{a},{b}" for a, b in zip(e, y)))
    mp = model.save(tmp_path / "m.pt")
    code, out, err = run_cli(["predict", path, "--model", mp, "--out", tmp_path / "a"], capsys)
    assert code == 1 and "--shift" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(["predict", path, "--model", mp, "--shift", "auto", "--out", tmp_path / "b"],
                             capsys)
    assert code == 0, err
    code, out, err = run_cli(["predict", path, "--model", mp, "--shift", "x1", "--out", tmp_path / "c"], capsys)
    assert code == 1 and "--shift must be" in err


# -- HyperSpy-native API -----------------------------------------------------------------------
def _signal(lazy=False):
    import hyperspy.api as hs
    e = np.arange(480.0, 600.0, 0.5)
    rng = np.random.default_rng(3)
    data = np.stack([synthetic_edge(e, onset=531.0 + 0.2 * i, n=4, noise=0.3, rng=rng) for i in range(3)])
    s = hs.signals.Signal1D(data)
    s.axes_manager[0].name, s.axes_manager[0].scale, s.axes_manager[0].units = "x", 2.0, "nm"
    s.axes_manager[1].name, s.axes_manager[1].offset, s.axes_manager[1].units = "y", 5.0, "nm"
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = 480.0, 0.5, "eV", "Energy loss"
    s.metadata.General.title = "test SI"
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 200.0)
    return s.as_lazy() if lazy else s


@pytest.mark.parametrize("lazy", [False, True])
def test_predict_signal_keeps_axes_and_metadata(model, lazy, tmp_path):
    from coreloss.signals import predict_signal
    s = _signal(lazy)
    out = predict_signal(s, model, chunk=5)
    assert out.mean.data.shape == (3, 4, 6) and out.std.data.shape == (3, 4, 6)
    nav = out.mean.axes_manager.navigation_axes
    assert [a.name for a in nav] == ["x", "y"] and nav[0].scale == 2.0 and nav[1].offset == 5.0
    assert nav[0].units == "nm"
    assert out.mean.metadata.Acquisition_instrument.TEM.beam_energy == 200.0
    assert out.mean.metadata.coreloss.quantities[1] == "bond_angle"
    assert out.result.valid.all() and np.all(np.isfinite(out.mean.data))
    img = out.map("bond_angle")
    assert img.data.shape == (3, 4) and img.axes_manager.signal_dimension == 2
    # the same numbers as the file-based path
    from coreloss.measured.readers import from_signal
    ref = predict_measured(from_signal(_signal(False)), model)
    np.testing.assert_allclose(out.result.mean, ref.mean, rtol=1e-5)
    out.mean.save(tmp_path / "p.hspy")
    with pytest.raises(CorelossError, match="unknown property"):
        out.map("nope")


def test_predict_signal_real_linescan_lazy(model):
    if not EXP.exists():
        pytest.skip(f"shared experimental data not present: {EXP}")
    import hyperspy.api as hs
    from coreloss.signals import predict_signal
    s = hs.load(EXP / "LSMO_linescan.hspy", lazy=True)
    out = predict_signal(s, model, calibrate="auto", chunk=16)
    assert out.mean.axes_manager.navigation_shape == (40,)
    assert out.mean.axes_manager.navigation_axes[0].units == "µm"
    assert out.result.valid.all()


def test_predict_signal_non_uniform_navigation_axis(model):
    import hyperspy.api as hs
    from coreloss.signals import predict_signal
    e = np.arange(480.0, 600.0, 0.5)
    data = synthetic_edge(e, onset=531.0, n=3, noise=0.3)
    x = np.array([0.0, 1.0, 3.5])
    s = hs.signals.Signal1D(data, axes=[{"name": "x", "axis": x, "units": "nm", "navigate": True},
                                        {"name": "E", "size": e.size, "offset": 480.0, "scale": 0.5,
                                         "units": "eV", "navigate": False}])
    out = predict_signal(s, model)
    np.testing.assert_allclose(out.mean.axes_manager.navigation_axes[0].axis, x)


def test_calibrate_zlp_uses_the_lowloss_peak(model):
    e = np.arange(480.0, 600.0, 0.25)
    m = MeasuredSpectra(e, synthetic_edge(e, onset=529.0, n=2, noise=0.3), [NavAxis("x", 2)], source="cl")
    ell = np.arange(-20.0, 60.0, 0.25)
    ll = MeasuredSpectra(ell, np.exp(-0.5 * ((ell - 3.0) / 0.4) ** 2) + 1e-3, source="ll")
    res = predict_measured(m, model, lowloss=ll, calibrate="zlp")
    assert res.provenance["calibration"]["shift_eV"] == pytest.approx(-3.0, abs=0.05)
    assert res.onset[0] == pytest.approx(529.0 - 3.0, abs=1.0)
    with pytest.raises(CorelossError, match="needs the matching low-loss"):
        predict_measured(m, model, calibrate="zlp")
