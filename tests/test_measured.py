"""Readers and pre-processing stages for measured spectra (coreloss.measured)."""

from pathlib import Path

import numpy as np
import pytest

from coreloss.errors import CorelossError
from coreloss.measured.preprocess import PreprocessConfig, powerlaw_fit, preprocess_block, zlp_fwhm
from coreloss.measured.readers import read_measured
from coreloss.spectra import DEFAULT_GRID, align_to_grid, estimate_snr, onset_energy

FIX = Path(__file__).parent / "fixtures" / "measured"
EXP = Path(__file__).resolve().parents[2] / "shared" / "data" / "experimental"


def need(name):
    path = EXP / name
    if not path.exists():
        pytest.skip(f"shared experimental data not present: {path}")
    return path


def synthetic_edge(energy, onset=535.0, bg=True, rng=None, n=1, noise=0.0):
    """Power-law background + O K-like edge (step + peaks) starting at ``onset``."""
    e = np.asarray(energy)
    step = 1 / (1 + np.exp(-(e - onset - 1.0) / 0.3))
    edge = step * (0.5 + np.exp(-0.5 * ((e - onset - 3) / 1.0) ** 2)
                   + 0.6 * np.exp(-0.5 * ((e - onset - 10) / 2.5) ** 2))
    y = 100 * edge + (3000 * (e / 532.0) ** -3.0 if bg else 0)
    y = np.repeat(y[None], n, axis=0)
    if noise:
        y = y + (rng or np.random.default_rng(0)).normal(0, noise, y.shape)
    return y


# -- readers -----------------------------------------------------------------------------------
def test_read_msa_single_spectrum():
    m = read_measured(need("exspy_coreloss_spectrum.msa"))
    assert m.nav_shape == () and m.n_spectra == 1 and m.data.shape == (2048,)
    assert m.offset == pytest.approx(360.0) and m.dispersion == pytest.approx(0.2)
    assert m.metadata["signal_type"] == "EELS"


def test_read_hspy_linescan_keeps_axes_and_metadata():
    m = read_measured(need("LSMO_linescan.hspy"))
    assert m.nav_shape == (40,) and m.energy.size == 586
    assert m.nav_axes[0].name == "x" and m.nav_axes[0].units == "µm"
    assert m.nav_axes[0].scale == pytest.approx(0.003219, rel=1e-3)
    assert m.offset == pytest.approx(428.5) and m.dispersion == pytest.approx(0.5)
    assert m.metadata["beam_energy_kV"] == 80.0
    assert m.metadata["convergence_angle_mrad"] == pytest.approx(27.42)
    assert m.metadata["collection_angle_mrad"] == pytest.approx(33.19)
    c = read_measured(need("LSMO_STO_linescan.hspy"), energy_range=(500, 600), lazy=True)
    assert c.nav_shape == (10,) and c.energy[0] >= 500 and c.energy[-1] <= 600


@pytest.mark.parametrize("name", ["xas_ok.csv", "xas_ok_whitespace.txt"])
def test_read_text_two_columns_with_header(name):
    m = read_measured(FIX / name)
    assert m.nav_shape == () and m.energy[0] == pytest.approx(515.0) and m.dispersion == pytest.approx(0.25)
    assert m.data.shape == m.energy.shape and np.all(np.isfinite(m.data))


@pytest.mark.parametrize("name,match", [("not_a_spectrum.msa", "cannot read"),
                                        ("not_a_spectrum.dm3", "cannot read"),
                                        ("missing.msa", "no such file")])
def test_bad_files_raise_one_line(name, match):
    with pytest.raises(CorelossError, match=match) as err:
        read_measured(FIX / name)
    assert "\n" not in str(err.value)


def test_truncated_hspy(tmp_path):
    src = need("LSMO_linescan.hspy").read_bytes()
    bad = tmp_path / "truncated.hspy"
    bad.write_bytes(src[: len(src) // 2])
    with pytest.raises(CorelossError):
        read_measured(bad)


def test_read_emd_spectrum_image(tmp_path):
    import hyperspy.api as hs
    s = hs.signals.Signal1D(np.arange(3 * 4 * 50, dtype=np.float32).reshape(3, 4, 50))
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = 500.0, 0.25, "eV", "Energy loss"
    s.save(str(tmp_path / "si.emd"))
    m = read_measured(tmp_path / "si.emd")
    assert m.nav_shape == (3, 4) and m.energy[1] == pytest.approx(500.25)
    assert m.data[2, 3, 0] == 2 * 200 + 3 * 50


def test_text_reader_rejects_garbage_inside_data(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("E,I\n" + "".join(f"{530 + i},{i}\n" for i in range(12)) + "oops,1\n")
    with pytest.raises(CorelossError, match="non-numeric"):
        read_measured(p)


# -- pre-processing stages ---------------------------------------------------------------------
def test_powerlaw_background_removal_makes_pre_edge_zero():
    e = np.arange(480.0, 600.0, 0.1)
    y = synthetic_edge(e, n=3)
    amp, r, ok = powerlaw_fit(e, y, (502, 527))
    assert ok.all() and np.allclose(r, 3.0, atol=1e-3)
    p = preprocess_block(e, y, DEFAULT_GRID, keep_cropped=True)
    pre = p.cropped[:, p.energy < 530]
    assert np.max(np.abs(pre)) < 0.5  # background 3000 counts -> residual < 0.5
    assert p.valid.all()


def test_powerlaw_fit_agrees_with_exspy_on_real_spectrum():
    m = read_measured(need("exspy_coreloss_spectrum.msa"))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from hyperspy.components1d import PowerLaw
        from exspy.signals import EELSSpectrum
        s = EELSSpectrum(m.data)
        s.axes_manager[0].offset, s.axes_manager[0].scale = m.offset, m.dispersion
        pl = PowerLaw()
        pl.estimate_parameters(s, 502, 527)
    amp, r, ok = powerlaw_fit(m.energy, m.data[None], (502, 527))
    assert ok[0] and r[0] == pytest.approx(pl.r.value, abs=0.15)
    sel = (m.energy > 505) & (m.energy < 525)
    ours = amp[0] * m.energy[sel] ** -r[0]
    theirs = pl.function(m.energy[sel]) * m.dispersion  # EELS signals are binned: counts per channel
    assert np.max(np.abs(ours / theirs - 1)) < 0.02


def onsets(e, y, sustain_ev=0.0):
    """The one onset rule (coreloss.spectra.onset_energy) on a block of spectra."""
    return onset_energy(e, y, sustain_ev=sustain_ev)


def test_vectorised_onset_matches_reference_rule():
    e = np.arange(520.0, 572.0, 0.1)
    rng = np.random.default_rng(3)
    y = synthetic_edge(e, bg=False, n=5, noise=2.0, rng=rng)
    for sus in (0.0, 0.5):
        got = onsets(e, y, sustain_ev=sus)
        ref = [onset_energy(e, row, sustain_ev=sus) for row in y]
        assert np.allclose(got, ref, atol=1e-9)
    clean = synthetic_edge(e, onset=533.0, bg=False)
    assert 532.0 < onsets(e, clean)[0] < 534.5  # on a known synthetic edge
    assert onsets(e, clean, sustain_ev=0.5)[0] == pytest.approx(onsets(e, clean)[0])  # same on clean edges
    assert onset_energy(e, clean[0]) == pytest.approx(onsets(e, clean, 0.5)[0])  # default rule: sustained


def test_sustained_onset_ignores_pre_edge_noise_spikes():
    e = np.arange(520.0, 572.0, 0.1)
    y = synthetic_edge(e, onset=535.0, bg=False, n=50, noise=12.0, rng=np.random.default_rng(5))
    plain, robust = onsets(e, y), onsets(e, y, sustain_ev=0.5)
    clean = onsets(e, synthetic_edge(e, onset=535.0, bg=False))[0]
    assert np.mean(np.abs(robust - clean) < 0.5) > 0.9
    assert np.mean(np.abs(robust - clean)) < np.mean(np.abs(plain - clean))


def test_vectorised_alignment_and_snr_match_reference():
    e = np.arange(520.0, 572.0, 0.07)
    y = synthetic_edge(e, bg=False, n=4, noise=1.0)
    on = np.array([533.0, 535.2, 536.7, 530.1])
    X = align_to_grid(e, y, on, DEFAULT_GRID)
    ref = np.stack([align_to_grid(e, row, o, DEFAULT_GRID) for row, o in zip(y, on)])
    assert np.allclose(X, ref, atol=1e-10)
    assert np.allclose(np.trapezoid(X, dx=DEFAULT_GRID.step, axis=1), 1.0)  # unit area on the grid
    assert np.allclose(estimate_snr(e, y), [estimate_snr(e, row) for row in y])


def test_pipeline_aligns_onset_shift_and_records_stages():
    e = np.arange(480.0, 600.0, 0.1)
    a = preprocess_block(e, synthetic_edge(e, onset=535.0), DEFAULT_GRID)
    b = preprocess_block(e, synthetic_edge(e, onset=533.0), DEFAULT_GRID, PreprocessConfig(shift_ev=2.0))
    assert b.onset[0] == pytest.approx(a.onset[0], abs=0.02)
    assert np.allclose(a.X, b.X, atol=2e-3)  # a calibrated shift gives the same model input
    names = [s["stage"] for s in a.record["stages"]]
    assert names == ["background", "crop", "resolution", "onset_align_normalise"]
    assert a.record["stages"][0]["window_eV"] == [502.0, 527.0]


def test_resolution_matched_or_declared_and_smoothing():
    e = np.arange(480.0, 600.0, 0.1)
    y = synthetic_edge(e, noise=3.0)
    sharp = preprocess_block(e, y, DEFAULT_GRID, PreprocessConfig(resolution_ev=0.3, training_fwhm_ev=1.0))
    rec = sharp.record["stages"][2]
    assert rec["mode"] == "matched" and rec["added_gaussian_fwhm_eV"] == pytest.approx(np.sqrt(1 - 0.09))
    coarse = preprocess_block(e, y, DEFAULT_GRID, PreprocessConfig(resolution_ev=1.5, training_fwhm_ev=1.0))
    assert coarse.record["stages"][2]["mode"] == "declared"
    sm = preprocess_block(e, y, DEFAULT_GRID, PreprocessConfig(smooth=True))
    assert sm.record["stages"][-2]["stage"] == "savitzky_golay"
    rough = lambda X: np.std(np.diff(X[0], 2))  # noqa: E731
    raw = preprocess_block(e, y, DEFAULT_GRID).X
    assert np.array_equal(coarse.X, raw)  # declared only: spectra untouched
    assert rough(sm.X) < 0.7 * rough(raw) and rough(sharp.X) < 0.7 * rough(raw)


def test_failed_pixels_get_reasons_not_exceptions():
    e = np.arange(480.0, 600.0, 0.1)
    y = synthetic_edge(e, n=5)
    y[1] = np.nan
    y[2] = 0.0
    y[3] = 3000 * (e / 532.0) ** -3.0 + np.random.default_rng(0).normal(0, 5, e.size)  # no edge
    p = preprocess_block(e, y, DEFAULT_GRID)
    assert p.valid.tolist() == [True, False, False, False, True]
    assert "non-finite" in p.reasons[1] and p.reasons[2] == "zero counts"
    assert "no O K edge" in p.reasons[3]
    assert np.isnan(p.X[1:4]).all() and np.isfinite(p.X[[0, 4]]).all()


def test_no_edge_in_range_raises():
    e = np.arange(400.0, 500.0, 0.5)
    with pytest.raises(CorelossError, match="no O K edge in range"):
        preprocess_block(e, np.ones((1, e.size)), DEFAULT_GRID)


def test_fourier_ratio_deconvolution_and_zlp_width():
    cl = read_measured(need("exspy_coreloss_spectrum.msa"))
    ll = read_measured(need("exspy_lowloss_spectrum.msa"))
    assert 0.2 < zlp_fwhm(ll.energy, ll.data) < 5.0
    p = preprocess_block(cl.energy, cl.data, DEFAULT_GRID, lowloss=(ll.energy, ll.data))
    stages = [s["stage"] for s in p.record["stages"]]
    assert "fourier_ratio_deconvolution" in stages and p.valid.all()
    assert p.record["stages"][stages.index("resolution")]["source"] == "low-loss ZLP FWHM"
