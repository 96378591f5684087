"""Out-of-distribution scores for spectra and their calibrated combination.

* :class:`PCAOutlierScore` - what the *spectrum* looks like: PCA Mahalanobis distance plus
  reconstruction residual (below).
* :class:`LatentScore` - what the *network* makes of it: squared Mahalanobis distance of each
  ensemble member's last hidden layer to the training spectra's (Ledoit-Wolf covariance), averaged
  over members.
* ensemble disagreement - the epistemic variance (variance of the member means, standardised
  units) averaged over labels, computed by the inverse model.
* :class:`CombinedOOD` - each score divided by its own threshold, ``score = max`` of the ratios,
  ``flag = score > 1``. The thresholds are the same quantile ``q`` of each score on held-out
  calibration spectra, with ``q`` chosen so that a fraction ``target_rate`` of them is flagged.

PCA score details:

A spectrum ``x`` (on the model's grid) is projected on the ``k`` leading principal components of
the training spectra. The score combines Hotelling's T^2 inside the PCA subspace and the squared
residual Q outside it, each divided by its mean on the calibration spectra::

    score = T2 / mean(T2_cal) + Q / mean(Q_cal)

so a typical training spectrum scores about 2. The threshold is the ``quantile`` (default 0.99)
of the calibration scores; ``flag = score > threshold``. Calibration spectra should look like
the data the model will see (the trainer passes noise-augmented held-out spectra).
"""

from __future__ import annotations

import numpy as np


class PCAOutlierScore:
    """Fit with :meth:`fit`; :meth:`score` returns ``(score, flag)``. Arrays only: picklable, small."""

    def __init__(self, n_components: int | float = 0.999, quantile: float = 0.99, max_components: int = 40):
        self.n_components = n_components
        self.quantile = quantile
        self.max_components = max_components

    def fit(self, X: np.ndarray, X_calib: np.ndarray | None = None) -> "PCAOutlierScore":
        """PCA of ``X`` (n, n_grid); score statistics and threshold from ``X_calib`` (default ``X``)."""
        X = np.asarray(X, float)
        self.mean_ = X.mean(axis=0)
        _, s, vt = np.linalg.svd(X - self.mean_, full_matrices=False)
        var = s**2 / max(len(X) - 1, 1)
        if isinstance(self.n_components, float):
            frac = np.cumsum(var) / np.sum(var)
            k = int(np.searchsorted(frac, self.n_components) + 1)
        else:
            k = int(self.n_components)
        k = max(1, min(k, self.max_components, len(var)))
        self.components_ = vt[:k]
        self.variances_ = np.maximum(var[:k], 1e-12 * var[0] + 1e-30)
        t2, q = self._stats(X if X_calib is None else np.asarray(X_calib, float))
        self.t2_scale_ = max(float(np.mean(t2)), 1e-30)
        self.q_scale_ = max(float(np.mean(q)), 1e-30)
        self.threshold_ = float(np.quantile(t2 / self.t2_scale_ + q / self.q_scale_, self.quantile))
        return self

    def _stats(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = X - self.mean_
        z = d @ self.components_.T
        t2 = np.sum(z**2 / self.variances_, axis=1)
        q = np.maximum(np.einsum("ij,ij->i", d, d) - np.einsum("ij,ij->i", z, z), 0.0)  # orthonormal rows
        return t2, q

    def score(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(score (n,), flag (n,) bool)``; non-finite spectra score inf and are flagged."""
        X = np.atleast_2d(np.asarray(X, float))
        finite = np.all(np.isfinite(X), axis=1)
        t2, q = self._stats(np.where(finite[:, None], X, 0.0))
        s = np.where(finite, t2 / self.t2_scale_ + q / self.q_scale_, np.inf)
        return s, s > self.threshold_

    def state(self) -> dict:
        """Plain arrays/floats for saving."""
        return {"mean": self.mean_, "components": self.components_, "variances": self.variances_,
                "t2_scale": self.t2_scale_, "q_scale": self.q_scale_, "threshold": self.threshold_,
                "quantile": self.quantile}

    @classmethod
    def from_state(cls, st: dict) -> "PCAOutlierScore":
        obj = cls(quantile=float(st["quantile"]))
        obj.mean_ = np.asarray(st["mean"], float)
        obj.components_ = np.asarray(st["components"], float)
        obj.variances_ = np.asarray(st["variances"], float)
        obj.t2_scale_, obj.q_scale_ = float(st["t2_scale"]), float(st["q_scale"])
        obj.threshold_ = float(st["threshold"])
        return obj


class LatentScore:
    """Mahalanobis distance in the networks' learned representation (one Gaussian per member).

    Stored as a whitening matrix ``W`` (precision = ``W W^T``) so the score is a sum of squares.
    """

    def fit(self, latent: np.ndarray) -> "LatentScore":
        """``latent``: ``(members, n, n_hidden)`` embeddings of (augmented) training spectra."""
        from sklearn.covariance import LedoitWolf
        self.means_, self.whiten_ = [], []
        for z in latent:
            lw = LedoitWolf().fit(z)
            evals, evecs = np.linalg.eigh(lw.covariance_)
            self.means_.append(lw.location_)
            self.whiten_.append(evecs / np.sqrt(np.maximum(evals, 1e-12 * evals.max())))
        self.means_, self.whiten_ = np.asarray(self.means_), np.asarray(self.whiten_)
        return self

    def score(self, latent: np.ndarray) -> np.ndarray:
        """``(n,)`` mean over members of the squared Mahalanobis distance, divided by n_hidden."""
        d2 = [np.sum(((np.asarray(z, float) - mu) @ w) ** 2, axis=1) / z.shape[1]
              for z, mu, w in zip(latent, self.means_, self.whiten_)]
        return np.mean(d2, axis=0)

    def state(self) -> dict:
        return {"means": self.means_, "whiten": self.whiten_}

    @classmethod
    def from_state(cls, st: dict) -> "LatentScore":
        obj = cls()
        obj.means_ = np.ascontiguousarray(st["means"], float)
        obj.whiten_ = np.ascontiguousarray(st["whiten"], float)
        return obj


OOD_SCORES = ("pca", "disagreement", "latent")


def calibrate_thresholds(scores: np.ndarray, target_rate: float = 0.01) -> tuple[np.ndarray, float]:
    """Per-column thresholds (same quantile ``q`` of each column of ``scores`` (n, k)) such that the
    fraction of rows with any column above its threshold is at most ``target_rate``. Returns
    ``(thresholds (k,), q)``."""
    scores = np.asarray(scores, float)
    lo, hi = 1.0 - target_rate, 1.0
    for _ in range(40):  # bisection on q: the union rate falls as q rises
        q = 0.5 * (lo + hi)
        thr = np.quantile(scores, q, axis=0)
        rate = np.mean(np.any(scores > thr, axis=1))
        lo, hi = (q, hi) if rate > target_rate else (lo, q)
    return np.quantile(scores, hi, axis=0), float(hi)


class CombinedOOD:
    """``score = max_k s_k / threshold_k`` over :data:`OOD_SCORES`; ``flag = score > 1``."""

    def __init__(self, thresholds, quantile: float, target_rate: float):
        self.thresholds_ = np.asarray(thresholds, float)
        self.quantile, self.target_rate = float(quantile), float(target_rate)

    @classmethod
    def fit(cls, scores: np.ndarray, target_rate: float = 0.01) -> "CombinedOOD":
        thr, q = calibrate_thresholds(scores, target_rate)
        return cls(np.maximum(thr, 1e-30), q, target_rate)

    def combine(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(score (n,), flag (n,), which (n, k) bool)`` from component scores ``(n, k)``."""
        ratios = np.asarray(scores, float) / self.thresholds_
        ratios = np.where(np.isfinite(ratios), ratios, np.inf)
        s = ratios.max(axis=1)
        return s, s > 1.0, ratios > 1.0

    def state(self) -> dict:
        return {"thresholds": self.thresholds_, "quantile": self.quantile, "target_rate": self.target_rate}

    @classmethod
    def from_state(cls, st: dict) -> "CombinedOOD":
        return cls(st["thresholds"], float(st["quantile"]), float(st["target_rate"]))
