"""Tests of the shared spectrum operations (grid, broadening, onset, alignment, noise)."""

import numpy as np
import pytest

from coreloss.errors import CorelossError
from coreloss.spectra import (DEFAULT_GRID, EnergyGrid, add_noise, align_to_grid, broaden_curve,
                              broaden_sticks, cosine_similarity, estimate_snr, normalise_area,
                              onset_energy, shift)


def test_default_grid_is_minus5_to_25_at_0p1():
    e = DEFAULT_GRID.energies
    assert DEFAULT_GRID.n == 301 and e[0] == pytest.approx(-5) and e[-1] == pytest.approx(25)
    assert EnergyGrid.from_dict(DEFAULT_GRID.to_dict()).matches(DEFAULT_GRID)
    assert not EnergyGrid(-5, 25, 0.2).matches(DEFAULT_GRID)


def test_broaden_sticks_preserves_area_and_width():
    e = np.linspace(-20, 40, 6001)
    y = broaden_sticks([10.0], [2.0], e, gaussian_fwhm=1.0, lorentzian_fwhm=0.0)
    assert np.trapezoid(y, e) == pytest.approx(2.0, rel=1e-3)
    half = y >= y.max() / 2
    assert e[half][-1] - e[half][0] == pytest.approx(1.0, abs=0.02)


def test_broaden_curve_preserves_area():
    e = np.linspace(0, 50, 1001)
    y = np.exp(-((e - 20) ** 2) / 0.1)
    b = broaden_curve(e, y, gaussian_fwhm=2.0, lorentzian_fwhm=0.5)
    assert np.trapezoid(b, e) == pytest.approx(np.trapezoid(y, e), rel=1e-2)
    assert b.max() < y.max()


def test_onset_of_step_edge():
    e = np.linspace(520, 560, 801)
    y = 1.0 / (1.0 + np.exp(-(e - 535.0) / 0.3))
    on = onset_energy(e, y, fraction=0.5, smooth_ev=0)
    assert on == pytest.approx(535.0, abs=0.06)


def test_onset_rejects_empty_and_nan():
    e = np.linspace(0, 10, 50)
    with pytest.raises(CorelossError):
        onset_energy(e, np.zeros(50))
    with pytest.raises(CorelossError):
        onset_energy(e, np.full(50, np.nan))


def test_align_puts_onset_at_zero_and_unit_area():
    e = np.linspace(520, 570, 1001)
    y = broaden_sticks([538.0], [1.0], e, 1.0, 0.3)
    on = onset_energy(e, y)
    a = align_to_grid(e, y, on)
    assert np.trapezoid(a, dx=DEFAULT_GRID.step) == pytest.approx(1.0)
    assert onset_energy(DEFAULT_GRID.energies, a) == pytest.approx(0.0, abs=0.05)


def test_shift_moves_peak():
    g = DEFAULT_GRID
    s = broaden_sticks([5.0], [1.0], g.energies, 0.5, 0.0)
    moved = shift(s, 0.5)[0]
    assert g.energies[np.argmax(moved)] == pytest.approx(5.5, abs=0.051)


def test_noise_levels_match_snr():
    rng = np.random.default_rng(0)
    clean = np.tile(normalise_area(broaden_sticks([5.0], [1.0], DEFAULT_GRID.energies, 3.0, 0.0), 0.1), (400, 1))
    for kind in ("poisson", "gaussian"):
        noisy = add_noise(clean, 20.0, rng, kind=kind)
        peak_idx = np.argmax(clean[0])
        measured = clean[0, peak_idx] / np.std(noisy[:, peak_idx])
        assert measured == pytest.approx(20.0, rel=0.15)
    assert np.array_equal(add_noise(clean, np.inf), clean)
    with pytest.raises(ValueError):
        add_noise(clean, 10, kind="pink")


def test_estimate_snr_orders_noise_levels():
    rng = np.random.default_rng(1)
    e = np.linspace(525, 560, 700)
    clean = broaden_sticks([538.0], [100.0], e, 4.0, 0.0) + 1.0
    snr_hi = estimate_snr(e, add_noise(clean, 100, rng)[0])
    snr_lo = estimate_snr(e, add_noise(clean, 10, rng)[0])
    assert snr_hi > 3 * snr_lo


def test_cosine_similarity():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert np.allclose(cosine_similarity(a, a), 1.0)
    assert cosine_similarity([1.0, 0.0], [0.0, 1.0])[0] == pytest.approx(0.0)


def test_operations_work_along_the_last_axis_of_any_array():
    """One spectrum core: a block of spectra gives what each spectrum gives alone."""
    rng = np.random.default_rng(2)
    e = np.linspace(520, 570, 501)
    block = np.stack([[broaden_sticks([530 + 3 * i + j], [1.0], e, 1.0, 0.3) for j in range(3)]
                      for i in range(2)]) + rng.normal(0, 1e-3, (2, 3, e.size))  # (2, 3, n)
    on = onset_energy(e, block)
    assert on.shape == (2, 3)
    assert np.allclose(on, [[onset_energy(e, s) for s in row] for row in block], atol=1e-12)
    b = broaden_curve(e, block, gaussian_fwhm=2.0)
    assert np.allclose(b[1, 2], broaden_curve(e, block[1, 2], gaussian_fwhm=2.0))
    snr = estimate_snr(e, block)
    assert snr.shape == (2, 3) and snr[0, 1] == pytest.approx(estimate_snr(e, block[0, 1]))
    a = align_to_grid(e, block, on)
    assert a.shape == (2, 3, DEFAULT_GRID.n)
    assert np.allclose(a[1, 0], align_to_grid(e, block[1, 0], on[1, 0]), atol=1e-12)
    g = DEFAULT_GRID
    s = block[0, :, :g.n]
    d = np.array([0.3, -1.2, 2.05])
    ref = np.stack([np.interp(g.energies - di, g.energies, si) for si, di in zip(s, d)])
    assert np.allclose(shift(s, d, g), ref, atol=1e-12)


def test_onset_ignores_short_spikes_by_default():
    e = np.linspace(520, 560, 401)
    y = 1.0 / (1.0 + np.exp(-(e - 540.0) / 0.3))
    spiky = y.copy()
    spiky[100] = 0.5  # a one-channel spike at 530 eV, far above 10 % of the maximum
    assert onset_energy(e, spiky, sustain_ev=0.0, smooth_ev=0) < 531
    assert onset_energy(e, spiky, smooth_ev=0) == pytest.approx(onset_energy(e, y, smooth_ev=0))
