"""Physical limits of the six O-site labels and how predictions are held inside them.

A network's Gaussian output can leave the physical range (a mean Si-O-Si angle above 180 deg, a
negative volume). :func:`apply_bounds` clips the predicted mean to the range, flags the label and
widens its standard deviation by the clipped distance, ``std' = sqrt(std^2 + (mean - clipped)^2)``,
so the reported interval still reaches the raw prediction and says how unsure the model is.

Limits (label units): bond length 0.5-4 Å (positive; no O-cation bond outside it), mean
cation-O-cation angle 60-180 deg (two cations cannot be closer to each other than to the O they
share, and a mean of angles cannot exceed 180), Voronoi volume 1-200 Å^3 (positive; a cell larger than
any framework cage), O Mulliken charge -2..+6 e (O has 8 electrons, 2 of them 1s core), BOP
0-4 e (summed bonding overlap over at most a few bonds). The excitation energy has no physical
limit on an engine's relative scale.
"""

from __future__ import annotations

import numpy as np

PHYSICAL_BOUNDS: dict[str, tuple[float, float]] = {
    "bond_length": (0.5, 4.0),
    "bond_angle": (60.0, 180.0),
    "voronoi_volume": (1.0, 200.0),
    "bop": (0.0, 4.0),
    "mulliken_charge": (-2.0, 6.0),
    "excitation_energy": (-np.inf, np.inf),
}


def bounds_for(names) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` arrays for label ``names`` (unknown labels: unbounded)."""
    lo = np.array([PHYSICAL_BOUNDS.get(n, (-np.inf, np.inf))[0] for n in names], float)
    hi = np.array([PHYSICAL_BOUNDS.get(n, (-np.inf, np.inf))[1] for n in names], float)
    return lo, hi


def apply_bounds(mean, std, names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, std, clipped)``: means clipped to :data:`PHYSICAL_BOUNDS`, std widened, (n, k) flags."""
    mean = np.atleast_2d(np.asarray(mean, float))
    std = np.atleast_2d(np.asarray(std, float))
    lo, hi = bounds_for(names)
    clipped_mean = np.clip(mean, lo, hi)
    with np.errstate(invalid="ignore"):
        clipped = np.isfinite(mean) & (clipped_mean != mean)
    delta = np.where(clipped, mean - clipped_mean, 0.0)
    return clipped_mean, np.sqrt(std**2 + delta**2), clipped


def count_impossible(mean, names) -> int:
    """Number of rows with any label outside :data:`PHYSICAL_BOUNDS` (NaN rows not counted)."""
    mean = np.atleast_2d(np.asarray(mean, float))
    lo, hi = bounds_for(names)
    with np.errstate(invalid="ignore"):
        return int(np.sum(np.any((mean < lo) | (mean > hi), axis=1)))


def label_range(y) -> dict:
    """Per-label min and max of training labels (label units; NaN labels ignored)."""
    y = np.asarray(y, float)
    with np.errstate(invalid="ignore"):
        return {"min": np.nanmin(y, axis=0).tolist(), "max": np.nanmax(y, axis=0).tolist()}


def outside_range(mean, label_range: dict | None, margin: float) -> np.ndarray:
    """(n,) bool: a row of ``mean`` (n, 6) lies outside ``label_range`` (:func:`label_range`'s
    min / max) widened by ``margin`` x range on either side; all False without a range."""
    mean = np.atleast_2d(np.asarray(mean, float))
    if not label_range:
        return np.zeros(len(mean), bool)
    lo, hi = np.asarray(label_range["min"], float), np.asarray(label_range["max"], float)
    pad = margin * (hi - lo)
    with np.errstate(invalid="ignore"):
        out = (mean < lo - pad) | (mean > hi + pad)
    return np.any(out & np.isfinite(lo) & np.isfinite(hi), axis=1)


def spectral_envelope(X) -> dict:
    """5-95 % band and mean of spectra ``X`` (n, grid.n) per grid point (for plots of measured spectra)."""
    return {"q05": np.quantile(X, 0.05, axis=0).round(6).tolist(),
            "q95": np.quantile(X, 0.95, axis=0).round(6).tolist(),
            "mean": X.mean(axis=0).round(6).tolist()}
