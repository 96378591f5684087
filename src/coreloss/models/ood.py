"""Out-of-distribution score for spectra: PCA Mahalanobis distance plus reconstruction residual.

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
