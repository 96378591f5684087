"""Degradations that make computed spectra look measured, for training augmentation and robustness tests.

Each degradation acts on a batch of onset-aligned, unit-area spectra on an
:class:`~coreloss.spectra.EnergyGrid` (energies relative to the onset, eV) and draws its parameter
per spectrum from the range in :data:`DEFAULT_RANGES`:

================  ==========================================================================
``resolution``    extra Gaussian broadening to an instrument FWHM R ~ U(0.3, 2) eV: the
                  spectrum is convolved with sqrt(R^2 - T^2) where T is the training FWHM (the
                  pre-processing brings finer measured resolutions up to T, see docs/measured.md)
``lifetime``      final-state lifetime: Lorentzian FWHM rising linearly from 0 at the onset to
                  G ~ U(0, 2) eV at +25 eV (blend of the spectrum and its Lorentzian-broadened copy)
``stretch``       energy-scale error: E -> E (1 + s), s ~ U(-3, 3) % about the onset
``misalign``      onset misalignment: shift by U(-1, 1) eV
``background``    residual background after an imperfect subtraction: a * ((E + E_K)/E_K)^-q with
                  q ~ U(2, 5) plus a linear term, amplitudes ~ U(-0.1, 0.1) of the edge peak
``plural``        plural scattering: convolution with a low-loss-like kernel (Poisson sum over
                  t/lambda ~ U(0, 0.6) of a Drude-like plasmon at Ep ~ U(15, 25) eV, width U(4, 8) eV)
``noise``         Poisson noise at an SNR drawn from ``snrs`` (inf = clean)
================  ==========================================================================

After the degradations the spectra are re-aligned with the pre-processing's onset rule
(:func:`coreloss.spectra.onset_energy`) and area-normalised, exactly as a measured spectrum
is, so the model sees what the measured pipeline produces. :class:`Augmenter` is what
:class:`~coreloss.models.inverse.InverseModel` calls on every training batch.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from coreloss.spectra import (FWHM_TO_SIGMA, EnergyGrid, add_noise, align_to_grid, normalise_area,
                              onset_energy, shift)

DEGRADATIONS = ("resolution", "lifetime", "stretch", "misalign", "background", "plural", "noise")
DEFAULT_RANGES = {"resolution": (0.3, 2.0), "lifetime": (0.0, 2.0), "stretch": (-0.03, 0.03),
                  "misalign": (-1.0, 1.0), "background": (-0.1, 0.1), "plural": (0.0, 0.6)}
O_K_EV = 532.0


def _kernel_conv(X: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Row-wise 'same' convolution of ``X`` (n, m) with odd-length ``kernels`` (n, k), edge-padded."""
    half = kernels.shape[1] // 2
    pad = np.pad(X, ((0, 0), (half, half)), mode="edge")
    out = fftconvolve(pad, kernels, mode="same", axes=1)
    return out[:, half:-half]


def gaussian(X, grid: EnergyGrid, fwhm) -> np.ndarray:
    """Convolve each row with a unit-area Gaussian of FWHM ``fwhm[i]`` (eV; <= 0: unchanged)."""
    fwhm = np.broadcast_to(np.asarray(fwhm, float), (len(X),))
    half = int(np.ceil(4 * max(float(fwhm.max()), grid.step) * FWHM_TO_SIGMA / grid.step)) + 1
    x = grid.step * np.arange(-half, half + 1)
    sig = np.maximum(fwhm * FWHM_TO_SIGMA, 1e-3)[:, None]
    k = np.exp(-0.5 * (x[None, :] / sig) ** 2)
    k /= k.sum(axis=1, keepdims=True)
    return np.where(fwhm[:, None] > 0, _kernel_conv(X, k), X)


def lorentz_ramp(X, grid: EnergyGrid, gmax) -> np.ndarray:
    """Energy-dependent lifetime: blend towards a Lorentzian (FWHM ``gmax``) linearly up to the grid end."""
    gmax = np.broadcast_to(np.asarray(gmax, float), (len(X),))
    half = int(np.ceil(15.0 / grid.step))
    x = grid.step * np.arange(-half, half + 1)
    g = np.maximum(gmax, 1e-3)[:, None] / 2
    k = g / (np.pi * (x[None, :] ** 2 + g**2))
    k /= k.sum(axis=1, keepdims=True)
    w = np.clip(grid.energies / grid.stop, 0.0, 1.0)[None, :]
    return (1 - w) * X + w * _kernel_conv(X, k)


def stretch(X, grid: EnergyGrid, s) -> np.ndarray:
    """Energy-scale error: the value at ``E`` becomes the value at ``E / (1 + s)`` (about the onset)."""
    e = grid.energies
    s = np.broadcast_to(np.asarray(s, float), (len(X),))
    return np.stack([np.interp(e / (1 + si), e, row) for row, si in zip(X, s)])


def residual_background(X, grid: EnergyGrid, amp, rng: np.random.Generator) -> np.ndarray:
    """Add ``amp`` x peak x a power-law-minus-mean shape and a linear term of random sign."""
    amp = np.broadcast_to(np.asarray(amp, float), (len(X),))[:, None]
    e = grid.energies[None, :]
    q = rng.uniform(2.0, 5.0, (len(X), 1))
    pl = ((e + O_K_EV) / O_K_EV) ** -q
    pl = (pl - pl.mean(axis=1, keepdims=True)) / np.ptp(pl, axis=1, keepdims=True)
    lin = rng.uniform(-1, 1, (len(X), 1)) * (e - e.mean()) / np.ptp(e)
    peak = X.max(axis=1, keepdims=True)
    return X + amp * peak * (pl + lin)


def plural(X, grid: EnergyGrid, t, rng: np.random.Generator) -> np.ndarray:
    """Convolve with exp(-t) * sum_k t^k/k! P^(*k) (k <= 3), P a Drude-like plasmon loss function."""
    t = np.broadcast_to(np.asarray(t, float), (len(X),))
    ep = rng.uniform(15.0, 25.0, len(X))[:, None]
    width = rng.uniform(4.0, 8.0, len(X))[:, None]
    n = grid.n
    x = grid.step * np.arange(n)[None, :]  # energy loss 0..(n-1) step
    p = x * width * ep**2 / ((x**2 - ep**2) ** 2 + (x * width) ** 2)  # Im(-1/eps), Drude
    p /= p.sum(axis=1, keepdims=True)
    out, term = X * np.exp(-t)[:, None], X
    fact = 1.0
    for k in range(1, 4):
        term = fftconvolve(term, p, mode="full", axes=1)[:, :n]  # causal: losses move intensity up
        fact *= k
        out = out + (np.exp(-t) * t**k / fact)[:, None] * term
    return out


def realign(X, grid: EnergyGrid) -> np.ndarray:
    """Find the onset of each row with the measured pipeline's rule, re-align it to 0 and normalise."""
    e = grid.energies
    on = onset_energy(e, np.clip(X, 0, None))
    on = np.where(np.isfinite(on), on, 0.0)
    return align_to_grid(e, X, on, grid)


class Augmenter:
    """``augment(X, rng)``: degrade a batch of aligned spectra (see module docstring).

    ``kinds``: the degradations to apply (subset of :data:`DEGRADATIONS`); ``prob``: the chance
    that each one is applied to a given spectrum (the rest stay unchanged); ``snrs``: noise levels
    (``noise``); ``training_fwhm``: the Gaussian FWHM the spectra already carry (eV);
    ``ranges``: overrides of :data:`DEFAULT_RANGES`. Picklable; no state besides parameters.
    """

    def __init__(self, grid: EnergyGrid, kinds=("noise", "misalign"), snrs=(np.inf, 50.0, 20.0, 10.0),
                 prob: float = 0.5, training_fwhm: float = 1.0, ranges: dict | None = None,
                 noise_kind: str = "poisson"):
        unknown = set(kinds) - set(DEGRADATIONS)
        if unknown:
            raise ValueError(f"unknown degradations {sorted(unknown)}; choose from {DEGRADATIONS}")
        self.grid, self.kinds, self.snrs = grid, tuple(kinds), tuple(float(s) for s in snrs)
        self.prob, self.training_fwhm, self.noise_kind = float(prob), float(training_fwhm), noise_kind
        self.ranges = {**DEFAULT_RANGES, **(ranges or {})}

    def params(self) -> dict:
        return {"kinds": list(self.kinds), "snrs": list(self.snrs), "prob": self.prob,
                "training_fwhm": self.training_fwhm, "noise_kind": self.noise_kind,
                "ranges": {k: list(v) for k, v in self.ranges.items()}}

    def _draw(self, kind, n, rng, on):
        lo, hi = self.ranges[kind]
        return np.where(on, rng.uniform(lo, hi, n), 0.0)

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        g, out, n = self.grid, np.array(X, float), len(X)
        geometric = False
        for kind in self.kinds:
            if kind == "noise":
                continue
            on = rng.random(n) < self.prob
            if not on.any():
                continue
            v = self._draw(kind, n, rng, on)
            if kind == "resolution":
                extra = np.sqrt(np.clip(v**2 - self.training_fwhm**2, 0, None))
                out[on] = gaussian(out[on], g, extra[on])
            elif kind == "lifetime":
                out[on] = lorentz_ramp(out[on], g, v[on])
            elif kind == "stretch":
                out[on] = stretch(out[on], g, v[on])
            elif kind == "background":
                out[on] = residual_background(out[on], g, v[on], rng)
            elif kind == "plural":
                out[on] = plural(out[on], g, v[on], rng)
            geometric |= kind in ("resolution", "lifetime", "stretch", "background", "plural")
        if "noise" in self.kinds and self.snrs:
            pick = rng.integers(len(self.snrs), size=n)
            for i, snr in enumerate(self.snrs):
                sel = pick == i
                if np.isfinite(snr) and sel.any():
                    out[sel] = add_noise(out[sel], snr, rng, kind=self.noise_kind)
        if geometric:
            out = realign(out, g)
        if "misalign" in self.kinds:
            lo, hi = self.ranges["misalign"]
            out = shift(out, rng.uniform(lo, hi, n), g)
        return np.nan_to_num(normalise_area(out, g.step))


def degrade(X, grid: EnergyGrid, kind: str, seed: int = 123, training_fwhm: float = 1.0,
            snr: float = 30.0) -> np.ndarray:
    """A seeded copy of ``X`` with degradation ``kind`` applied to every spectrum (for test sets).

    ``noise`` uses Poisson noise at ``snr``; ``"all"`` applies every degradation with noise at ``snr``.
    """
    kinds = DEGRADATIONS if kind == "all" else (kind,)
    aug = Augmenter(grid, kinds, snrs=(snr,), prob=1.0, training_fwhm=training_fwhm)
    return aug(np.asarray(X, float), np.random.default_rng(seed))


def make_augmenter(grid: EnergyGrid, snrs, max_shift_ev: float, kind: str = "poisson"):
    """Noise + shift only (the augmentation before the degradations; used for the baselines):
    ``augment(X, rng)``: per spectrum a random SNR from ``snrs`` (inf = clean) and shift, re-normalised."""
    snrs = tuple(float(s) for s in snrs)

    def augment(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.array(X, float)
        if max_shift_ev > 0:
            out = shift(out, rng.uniform(-max_shift_ev, max_shift_ev, len(out)), grid)
        pick = rng.integers(len(snrs), size=len(out)) if snrs else np.zeros(0, int)
        for i, snr in enumerate(snrs):
            sel = pick == i
            if np.isfinite(snr) and sel.any():
                out[sel] = add_noise(out[sel], snr, rng, kind=kind)
        return np.nan_to_num(normalise_area(out, grid.step))

    return augment
