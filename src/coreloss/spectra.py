"""Energy grids and spectrum operations shared by engines, models and measured data.

Conventions (used identically for computed and measured spectra):

* Energies are in eV. A model works on *onset-aligned* spectra: the energy axis is
  ``E - E_onset`` sampled on an :class:`EnergyGrid` (default -5..25 eV at 0.1 eV, 301 points).
* Onset (:func:`onset_energy`): the first energy at which the (lightly smoothed, 0.3 eV) intensity
  reaches ``fraction`` (0.1) of its maximum and stays above it for 0.5 eV, linearly interpolated
  between channels. The same rule serves engines, datasets and measured spectra.
* Every operation works along the last axis of an array of any shape (one spectrum or many),
  vectorised: the measured path runs whole blocks of a spectrum image through the same functions.
* Normalisation (:func:`normalise_area`): divided by the trapezoidal area on the grid, so a
  normalised spectrum has unit area (units 1/eV).
* Broadening (:func:`broaden_sticks`, :func:`broaden_curve`): a Voigt profile, Gaussian FWHM
  for the instrument resolution and Lorentzian FWHM for the core-hole lifetime.
* SNR (:func:`add_noise`): peak signal over noise standard deviation at the peak.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import convolve1d
from scipy.signal import fftconvolve
from scipy.special import voigt_profile

from coreloss.errors import CorelossError

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
ONSET_FRACTION = 0.1  # onset rule (training and measured spectra alike): fraction of the maximum,
ONSET_SMOOTH_EV = 0.3  # Gaussian FWHM (eV) of the smoothing before the threshold,
ONSET_SUSTAIN_EV = 0.5  # and how long (eV) the crossing must hold
SNR_SMOOTH_EV = 1.5  # Gaussian FWHM (eV) of the smooth reference in estimate_snr


@dataclass(frozen=True)
class EnergyGrid:
    """A uniform energy grid in eV, inclusive of both ends."""

    start: float = -5.0
    stop: float = 25.0
    step: float = 0.1

    @property
    def n(self) -> int:
        return int(round((self.stop - self.start) / self.step)) + 1

    @property
    def energies(self) -> np.ndarray:
        return self.start + self.step * np.arange(self.n)

    def to_dict(self) -> dict:
        return {"start": float(self.start), "stop": float(self.stop), "step": float(self.step),
                "unit": "eV", "reference": "onset"}

    @classmethod
    def from_dict(cls, d: dict) -> "EnergyGrid":
        return cls(float(d["start"]), float(d["stop"]), float(d["step"]))

    def matches(self, other: "EnergyGrid", tol: float = 1e-6) -> bool:
        return (self.n == other.n and abs(self.start - other.start) < tol
                and abs(self.step - other.step) < tol)


DEFAULT_GRID = EnergyGrid()


def broaden_sticks(stick_energies, stick_weights, energies, gaussian_fwhm: float = 0.5,
                   lorentzian_fwhm: float = 0.2) -> np.ndarray:
    """Sum of Voigt profiles (area = weight) centred on stick energies, evaluated at ``energies`` (eV)."""
    e = np.asarray(energies, float)[:, None]
    s = np.asarray(stick_energies, float)[None, :]
    w = np.asarray(stick_weights, float)
    sigma = max(gaussian_fwhm * FWHM_TO_SIGMA, 1e-6)
    gamma = max(lorentzian_fwhm / 2.0, 0.0)
    out = np.zeros(e.shape[0])
    for chunk in range(0, s.shape[1], 2048):  # bounded memory for many sticks
        sl = slice(chunk, chunk + 2048)
        out += voigt_profile(e - s[:, sl], sigma, gamma) @ w[sl]
    return out


def gaussian_kernel(step: float, fwhm: float, lorentzian_fwhm: float = 0.0) -> np.ndarray:
    """Normalised Voigt kernel on a grid of ``step`` eV (FWHMs in eV), +-10 FWHM wide; tails below
    1e-13 of the peak (which cannot change a float64 result) are dropped."""
    width = max(fwhm, lorentzian_fwhm)
    half = int(np.ceil(10 * width / step)) + 1
    k = voigt_profile(step * np.arange(-half, half + 1), max(fwhm * FWHM_TO_SIGMA, 1e-9),
                      lorentzian_fwhm / 2.0)
    k = k / k.sum()
    nz = np.nonzero(k > 1e-13 * k.max())[0]
    return k[nz[0]:nz[-1] + 1]


def _step(energy) -> float:
    return abs(float(np.median(np.diff(np.asarray(energy, float)))))


@lru_cache(maxsize=16)
def _band_matrix(n: int, kernel: bytes) -> np.ndarray:
    """(n, n) matrix M with ``y @ M`` = ``y`` convolved with ``kernel``, edge values extended."""
    k = np.frombuffer(kernel, float)
    half = (k.size - 1) // 2
    m = np.zeros((n, n))
    cols = np.arange(n)
    for j, kj in enumerate(k):
        np.add.at(m, (np.clip(cols + j - half, 0, n - 1), cols), kj)
    return m


def convolve_edge(y: np.ndarray, kernel: np.ndarray, block: int = 128) -> np.ndarray:
    """Convolve ``y`` along its last axis with a symmetric odd ``kernel``; edge values extended.

    Many spectra with a wide kernel: banded matrix products (BLAS, ~2x faster than a direct
    convolution; same result to rounding). Otherwise a direct (short) or FFT (long) convolution.
    """
    y = np.asarray(y, float)
    n, half = y.shape[-1], (kernel.size - 1) // 2
    if kernel.size >= 41 and y.size >= 64 * n and n <= 4096:
        m = _band_matrix(n, np.ascontiguousarray(kernel, float).tobytes())
        flat = y.reshape(-1, n)
        out = np.empty_like(flat)
        for i0 in range(0, n, block):  # each output block needs its inputs +- half only
            i1 = min(n, i0 + block)
            a0, a1 = max(0, i0 - half), min(n, i1 + half)
            np.matmul(flat[:, a0:a1], m[a0:a1, i0:i1], out=out[:, i0:i1])
        return out.reshape(y.shape)
    if kernel.size <= 129:
        return convolve1d(y, kernel, axis=-1, mode="nearest")
    pad = [(0, 0)] * (y.ndim - 1) + [(half, half)]  # long kernels: FFT of the edge-padded rows
    out = fftconvolve(np.pad(y, pad, mode="edge"), kernel.reshape((1,) * (y.ndim - 1) + (-1,)),
                      mode="same", axes=-1)
    return out[..., half:-half]


def broaden_curve(energy, intensity, gaussian_fwhm: float = 0.0, lorentzian_fwhm: float = 0.0) -> np.ndarray:
    """Convolve curves on a uniform axis with a Voigt kernel (FWHMs in eV), along the last axis of
    ``intensity``; area preserved, edge values extended."""
    intensity = np.asarray(intensity, float)
    if gaussian_fwhm <= 0 and lorentzian_fwhm <= 0:
        return intensity.copy()
    return convolve_edge(intensity, gaussian_kernel(_step(energy), gaussian_fwhm, lorentzian_fwhm))


def onset_energy(energy, intensity, fraction: float = ONSET_FRACTION, smooth_ev: float = ONSET_SMOOTH_EV,
                 sustain_ev: float = ONSET_SUSTAIN_EV):
    """Edge onset (eV): first crossing of ``fraction`` x max of the smoothed intensity that stays
    above it for ``sustain_ev`` (pre-edge noise spikes are ignored; a clean rising edge is
    unaffected), linearly interpolated between channels.

    One spectrum (1-D): a float, CorelossError when there is no onset. Many (..., n): an array,
    NaN where a spectrum is not finite or has no positive maximum.
    """
    energy = np.asarray(energy, float)
    y = np.asarray(intensity, float)
    single = y.ndim == 1
    finite = np.all(np.isfinite(y), axis=-1)
    if single and (energy.size < 3 or not finite):
        raise CorelossError("cannot find an edge onset: spectrum too short or not finite")
    if not single:
        y = np.where(finite[..., None], y, 0.0)
    step = _step(energy)
    if smooth_ev > 0 and step > 0:
        y = broaden_curve(energy, y, gaussian_fwhm=smooth_ev)
    peak = np.max(y, axis=-1)
    if single and not peak > 0:
        raise CorelossError("cannot find an edge onset: no positive intensity")
    thr = fraction * peak
    above = y >= thr[..., None]
    k = int(round(sustain_ev / step)) if step > 0 else 0
    if k > 1:  # channel i counts when i and the next k-1 channels (those that exist) are above
        n = y.shape[-1]
        held = above.copy()
        for j in range(1, k):
            held[..., :n - j] &= above[..., j:]
        above = held
    i = np.argmax(above, axis=-1)[..., None]
    im1 = np.maximum(i - 1, 0)
    y0, y1 = np.take_along_axis(y, im1, -1)[..., 0], np.take_along_axis(y, i, -1)[..., 0]
    e0, e1 = energy[im1[..., 0]], energy[i[..., 0]]
    with np.errstate(invalid="ignore", divide="ignore"):
        interp = np.where(y1 != y0, e0 + (thr - y0) * (e1 - e0) / (y1 - y0), e1)
    out = np.where(i[..., 0] == 0, energy[0], interp)
    if single:
        return float(out)
    return np.where(finite & (peak > 0), out, np.nan)


def resample(energy, intensity, target_energies, left: float | None = 0.0,
             right: float | None = 0.0) -> np.ndarray:
    """Linear interpolation of ``intensity`` (..., n) given at increasing ``energy`` (n,) onto
    ``target_energies`` ((m,) or (..., m), one row of targets per spectrum). Outside the input
    range: ``left``/``right`` (None: the first/last value)."""
    energy = np.asarray(energy, float)
    y = np.asarray(intensity, float)
    t = np.asarray(target_energies, float)
    if y.ndim == 1 and t.ndim == 1:
        return np.interp(t, energy, y, left=y[0] if left is None else left,
                         right=y[-1] if right is None else right)
    shape = np.broadcast_shapes(y.shape[:-1], t.shape[:-1])
    y = np.broadcast_to(y, shape + y.shape[-1:]).reshape(-1, energy.size)
    t = np.broadcast_to(t, shape + t.shape[-1:]).reshape(-1, t.shape[-1])
    n = energy.size
    d = np.diff(energy)
    step = (energy[-1] - energy[0]) / (n - 1)
    if np.all(np.abs(d - step) <= 1e-6 * abs(step)):  # uniform axis: the interval by arithmetic
        idx = np.clip(np.floor((t - energy[0]) / step), 0, n - 2).astype(np.intp)
    else:
        idx = np.clip(np.searchsorted(energy, t, side="right") - 1, 0, n - 2)
    e0 = np.take(energy, idx)
    w = (t - e0) / (np.take(energy[1:], idx) - e0)
    idx += (np.arange(len(y)) * n)[:, None]  # flat index of the left neighbour in each row
    flat = y.reshape(-1)
    out = np.take(flat, idx)
    out += (np.take(flat[1:], idx) - out) * w
    below, above = t < energy[0], t > energy[-1]
    if below.any():
        out[below] = (y[:, :1] if left is None else np.full((len(y), 1), left)).repeat(t.shape[-1], 1)[below]
    if above.any():
        out[above] = (y[:, -1:] if right is None else np.full((len(y), 1), right)).repeat(t.shape[-1], 1)[above]
    return out.reshape(shape + t.shape[-1:])


def normalise_area(intensity, step: float) -> np.ndarray:
    """Divide by the trapezoidal area (``step`` in eV); returns unit-area spectra (last axis)."""
    y = np.asarray(intensity, float)
    area = np.trapezoid(y, dx=step, axis=-1)
    area = np.where(np.abs(area) > 0, area, np.nan)
    return y / np.expand_dims(area, -1)


def align_to_grid(energy, intensity, onset, grid: EnergyGrid = DEFAULT_GRID,
                  normalise: bool = True) -> np.ndarray:
    """Resample spectra (..., n) onto ``grid`` of ``E - onset`` (one onset, or one per spectrum)
    and (optionally) area-normalise them; zero outside the measured range."""
    onset = np.asarray(onset, float)
    y = np.asarray(intensity, float)
    if y.ndim == 1 and onset.ndim == 0:
        out = resample(np.asarray(energy, float) - float(onset), y, grid.energies)
    else:
        out = resample(energy, y, grid.energies + onset[..., None])
    return normalise_area(out, grid.step) if normalise else out


def shift(spectra, delta_ev, grid: EnergyGrid = DEFAULT_GRID) -> np.ndarray:
    """Shift spectra on ``grid`` by ``delta_ev`` (scalar or one per spectrum), edge-padded."""
    spectra = np.atleast_2d(np.asarray(spectra, float))
    d = np.broadcast_to(np.asarray(delta_ev, float), (spectra.shape[0],))
    e = grid.energies
    return resample(e, spectra, e[None, :] - d[:, None], left=None, right=None)


def add_noise(spectra, snr: float, rng: np.random.Generator | None = None,
              kind: str = "poisson") -> np.ndarray:
    """Noisy copies of non-negative spectra at signal-to-noise ratio ``snr`` (peak / noise std).

    ``poisson``: counts scaled so the peak holds ``snr**2`` counts, sampled, scaled back.
    ``gaussian``: white noise with std = peak / snr. ``snr=inf`` returns a copy.
    """
    rng = rng or np.random.default_rng()
    x = np.atleast_2d(np.asarray(spectra, float))
    if not np.isfinite(snr):
        return x.copy()
    peak = np.max(np.abs(x), axis=-1, keepdims=True)
    peak = np.where(peak > 0, peak, 1.0)
    if kind == "poisson":
        scale = snr**2 / peak
        return rng.poisson(np.clip(x, 0, None) * scale) / scale
    if kind == "gaussian":
        return x + rng.normal(size=x.shape) * peak / snr
    raise ValueError(f"unknown noise kind {kind!r}")


def estimate_snr(energy, intensity, smooth_ev: float = SNR_SMOOTH_EV):
    """Rough SNR of measured spectra (last axis): peak of a smoothed copy over the noise std, the
    std of the channel-to-channel differences of the residual / sqrt(2). A float for one spectrum."""
    y = np.asarray(intensity, float)
    smooth = broaden_curve(energy, y, gaussian_fwhm=smooth_ev)
    noise = np.std(np.diff(y - smooth, axis=-1), axis=-1) / np.sqrt(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(noise > 0, np.max(smooth, axis=-1) / noise, np.inf)
    return float(snr) if y.ndim == 1 else snr


def cosine_similarity(a, b) -> np.ndarray:
    """Row-wise cosine similarity of two arrays of spectra on the same grid."""
    a = np.atleast_2d(np.asarray(a, float))
    b = np.atleast_2d(np.asarray(b, float))
    num = np.sum(a * b, axis=-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return num / np.where(den > 0, den, np.nan)
