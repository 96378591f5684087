"""Energy grids and spectrum operations shared by engines, models and measured data.

Conventions (used identically for computed and measured spectra):

* Energies are in eV. A model works on *onset-aligned* spectra: the energy axis is
  ``E - E_onset`` sampled on an :class:`EnergyGrid` (default -5..25 eV at 0.1 eV, 301 points).
* Onset (:func:`onset_energy`): the first energy at which the (lightly smoothed) intensity
  reaches ``fraction`` (default 0.1) of its maximum, linearly interpolated between channels.
* Normalisation (:func:`normalise_area`): divided by the trapezoidal area on the grid, so a
  normalised spectrum has unit area (units 1/eV).
* Broadening (:func:`broaden_sticks`, :func:`broaden_curve`): a Voigt profile, Gaussian FWHM
  for the instrument resolution and Lorentzian FWHM for the core-hole lifetime.
* SNR (:func:`add_noise`): peak signal over noise standard deviation at the peak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import voigt_profile

from coreloss.errors import CorelossError

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


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


def broaden_curve(energy, intensity, gaussian_fwhm: float = 0.0, lorentzian_fwhm: float = 0.0) -> np.ndarray:
    """Convolve a curve on a uniform axis with a Voigt kernel (FWHMs in eV); area preserved."""
    energy = np.asarray(energy, float)
    intensity = np.asarray(intensity, float)
    if gaussian_fwhm <= 0 and lorentzian_fwhm <= 0:
        return intensity.copy()
    de = float(np.mean(np.diff(energy)))
    half = int(np.ceil(10 * max(gaussian_fwhm, lorentzian_fwhm) / de)) + 1
    x = de * np.arange(-half, half + 1)
    kernel = voigt_profile(x, max(gaussian_fwhm * FWHM_TO_SIGMA, 1e-9), lorentzian_fwhm / 2.0)
    kernel /= kernel.sum()
    padded = np.pad(intensity, half, mode="edge")
    return np.convolve(padded, kernel, mode="same")[half:-half]


def onset_energy(energy, intensity, fraction: float = 0.1, smooth_ev: float = 0.3) -> float:
    """Edge onset (eV): first crossing of ``fraction`` x max of the smoothed intensity."""
    energy = np.asarray(energy, float)
    y = np.asarray(intensity, float)
    if energy.size < 3 or not np.all(np.isfinite(y)):
        raise CorelossError("cannot find an edge onset: spectrum too short or not finite")
    de = abs(float(np.median(np.diff(energy))))
    if smooth_ev > 0 and de > 0:
        y = broaden_curve(energy, y, gaussian_fwhm=smooth_ev)
    peak = float(np.max(y))
    if not peak > 0:
        raise CorelossError("cannot find an edge onset: no positive intensity")
    thr = fraction * peak
    above = np.nonzero(y >= thr)[0]
    i = int(above[0])
    if i == 0:
        return float(energy[0])
    e0, e1, y0, y1 = energy[i - 1], energy[i], y[i - 1], y[i]
    return float(e0 + (thr - y0) * (e1 - e0) / (y1 - y0)) if y1 != y0 else float(e1)


def resample(energy, intensity, target_energies) -> np.ndarray:
    """Linear interpolation onto ``target_energies``; zero outside the input range."""
    return np.interp(target_energies, energy, intensity, left=0.0, right=0.0)


def normalise_area(intensity, step: float) -> np.ndarray:
    """Divide by the trapezoidal area (``step`` in eV); returns unit-area spectra (last axis)."""
    y = np.asarray(intensity, float)
    area = np.trapezoid(y, dx=step, axis=-1)
    area = np.where(np.abs(area) > 0, area, np.nan)
    return y / np.expand_dims(area, -1)


def align_to_grid(energy, intensity, onset: float, grid: EnergyGrid = DEFAULT_GRID,
                  normalise: bool = True) -> np.ndarray:
    """Resample a spectrum onto ``grid`` of ``E - onset`` and (optionally) area-normalise it."""
    y = resample(np.asarray(energy, float) - onset, intensity, grid.energies)
    return normalise_area(y, grid.step) if normalise else y


def shift(spectra, delta_ev, grid: EnergyGrid = DEFAULT_GRID) -> np.ndarray:
    """Shift spectra on ``grid`` by ``delta_ev`` (scalar or one per spectrum), edge-padded."""
    spectra = np.atleast_2d(np.asarray(spectra, float))
    d = np.broadcast_to(np.asarray(delta_ev, float), (spectra.shape[0],))
    e = grid.energies
    return np.stack([np.interp(e - di, e, s) for s, di in zip(spectra, d)])


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


def estimate_snr(energy, intensity, smooth_ev: float = 1.5) -> float:
    """Rough SNR (peak / std of the residual to a smoothed copy) of a measured spectrum."""
    y = np.asarray(intensity, float)
    smooth = broaden_curve(energy, y, gaussian_fwhm=smooth_ev)
    resid = y - smooth
    noise = float(np.std(np.diff(resid)) / np.sqrt(2))
    peak = float(np.max(smooth))
    return float(peak / noise) if noise > 0 else float("inf")


def cosine_similarity(a, b) -> np.ndarray:
    """Row-wise cosine similarity of two arrays of spectra on the same grid."""
    a = np.atleast_2d(np.asarray(a, float))
    b = np.atleast_2d(np.asarray(b, float))
    num = np.sum(a * b, axis=-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return num / np.where(den > 0, den, np.nan)
