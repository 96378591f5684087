"""Out-of-distribution scores for spectra and their calibrated combination.

* :class:`PCAOutlierScore` - what the *spectrum* looks like: PCA Mahalanobis distance plus
  reconstruction residual (below).
* :class:`LatentKNN` - what the *network* makes of it: mean distance to the ``k`` nearest
  training spectra in the ensemble's learned representation (the members' last hidden layers,
  concatenated and projected on their leading principal components).
* :class:`SpectrumKNN` - what the *spectrum* is next to, whatever the network learned: one minus
  the mean cosine similarity with the ``k`` most similar training spectra, all smoothed with a
  Gaussian (sigma 0.5 eV) so that counting noise does not set the threshold. Its threshold is
  fixed at fit time: the ``1 - target_rate`` quantile over the validation spectra (clean, noisy,
  and with the training augmentation) and every training spectrum scored against the training spectra of the *other* structure
  groups (leave-group-out), so it rests on all groups, not the few validation ones, and does
  not move with the network's training run (benchmarks/bench_ood_stability.py).
* ensemble disagreement - the epistemic variance (variance of the member means, standardised
  units) averaged over labels, computed by the inverse model (reported; not in the flag by
  default: it has a heavy tail on held-out SiO2 structures).
* :class:`CombinedOOD` - each score divided by its threshold, ``score = max`` of the ratios over
  the scores that flag, ``flag = score > 1``. Thresholds are quantiles of each score on held-out
  calibration spectra; scores with a fixed threshold keep it (PCA: its own 99th percentile), the
  others share one quantile ``q``, chosen so that a fraction ``target_rate`` of the calibration
  spectra is flagged in all.

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


class LatentKNN:
    """Distance to the training spectra in the networks' learned representation.

    ``fit(latent)`` with ``latent`` ``(members, n, n_hidden)`` of the training spectra: the members'
    vectors are concatenated, centred, projected on their ``n_components`` leading principal
    components (float32 reference set); the score is the mean Euclidean distance to the ``k``
    nearest reference spectra.
    """

    def __init__(self, k: int = 3, n_components: int = 64):
        self.k, self.n_components = int(k), int(n_components)

    @staticmethod
    def _cat(latent) -> np.ndarray:
        return np.concatenate(list(np.asarray(latent, float)), axis=1)

    def fit(self, latent) -> "LatentKNN":
        z = self._cat(latent)
        self.mean_ = z.mean(axis=0)
        _, _, vt = np.linalg.svd(z - self.mean_, full_matrices=False)
        self.proj_ = vt[:min(self.n_components, len(vt))].T
        self.ref_ = ((z - self.mean_) @ self.proj_).astype(np.float32)
        return self

    def score(self, latent, batch: int = 4096) -> np.ndarray:
        """``(n,)`` mean distance to the ``k`` nearest training spectra (latent units)."""
        z = (self._cat(latent) - self.mean_) @ self.proj_
        ref = self.ref_.astype(float)
        r2 = np.sum(ref**2, axis=1)
        out = np.empty(len(z))
        k = min(self.k, len(ref))
        for a in range(0, len(z), batch):
            zb = z[a:a + batch]
            d2 = np.maximum(np.sum(zb**2, axis=1)[:, None] + r2[None, :] - 2 * zb @ ref.T, 0.0)
            out[a:a + batch] = np.sqrt(np.partition(d2, k - 1, axis=1)[:, :k]).mean(axis=1)
        return out

    def state(self) -> dict:
        return {"mean": self.mean_, "proj": self.proj_, "ref": self.ref_, "k": float(self.k)}

    @classmethod
    def from_state(cls, st: dict) -> "LatentKNN":
        obj = cls(k=int(np.asarray(st["k"]).item()))
        obj.mean_ = np.asarray(st["mean"], float)
        obj.proj_ = np.ascontiguousarray(st["proj"], float)
        obj.ref_ = np.asarray(st["ref"], np.float32)
        obj.n_components = obj.proj_.shape[1]
        return obj


class SpectrumKNN:
    """``1 - mean cosine`` of a smoothed spectrum with its ``k`` most similar smoothed training spectra.

    ``fit(X_train, step)``; ``sigma_ev``: Gaussian smoothing (standard deviation, eV) of every
    spectrum before the cosine. Scores lie in [0, 2]; a training spectrum against itself scores 0.
    """

    def __init__(self, k: int = 3, sigma_ev: float = 0.5):
        self.k, self.sigma_ev = int(k), float(sigma_ev)

    def _unit(self, X) -> np.ndarray:
        from scipy.ndimage import gaussian_filter1d

        Z = np.asarray(X, float)
        if self.sigma_ev > 0:
            Z = gaussian_filter1d(Z, self.sigma_ev / self.step_, axis=1, mode="nearest")
        return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-30)

    def fit(self, X_train, step: float) -> "SpectrumKNN":
        """Reference set: the smoothed, unit-norm training spectra (float32); ``step``: grid step, eV."""
        self.step_ = float(step)
        self.ref_ = self._unit(X_train).astype(np.float32)
        return self

    def score(self, X, groups=None, ref_groups=None, batch: int = 4096) -> np.ndarray:
        """``(n,)`` scores; with ``groups`` (n,) and ``ref_groups`` (reference rows), a spectrum's
        neighbours exclude the reference spectra of its own group (leave-group-out)."""
        X = np.atleast_2d(np.asarray(X, float))
        finite = np.all(np.isfinite(X), axis=1)
        ref = self.ref_.astype(float)
        k = min(self.k, len(ref))
        if groups is not None:
            groups, ref_groups = np.asarray(groups).astype(str), np.asarray(ref_groups).astype(str)
        out = np.empty(len(X))
        for a in range(0, len(X), batch):
            c = self._unit(np.where(finite[a:a + batch, None], X[a:a + batch], 0.0)) @ ref.T
            if groups is not None:
                c[groups[a:a + batch, None] == ref_groups[None]] = -np.inf
            out[a:a + batch] = 1.0 - np.partition(c, len(ref) - k, axis=1)[:, len(ref) - k:].mean(axis=1)
        return np.where(finite & np.isfinite(out), out, np.inf)

    def state(self) -> dict:
        return {"ref": self.ref_, "k": float(self.k), "sigma_ev": self.sigma_ev, "step": self.step_}

    @classmethod
    def from_state(cls, st: dict) -> "SpectrumKNN":
        obj = cls(k=int(np.asarray(st["k"]).item()), sigma_ev=float(np.asarray(st["sigma_ev"]).item()))
        obj.step_ = float(np.asarray(st["step"]).item())
        obj.ref_ = np.asarray(st["ref"], np.float32)
        return obj


#: component scores, in this column order, of :meth:`InverseModel.predict_full`'s ``ood_components``
#: (a model file from before ``spectrum_knn`` holds the first three)
OOD_SCORES = ("pca", "disagreement", "latent_knn", "spectrum_knn")
#: the components that set the flag by default
OOD_FLAG_SCORES = ("pca", "latent_knn", "spectrum_knn")


def calibrate_thresholds(scores: np.ndarray, target_rate: float = 0.01,
                         base_flag: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Per-column thresholds (same quantile ``q`` of each column of ``scores`` (n, k)) such that the
    fraction of rows flagged (any column above its threshold, or ``base_flag``) is at most
    ``target_rate``. Returns ``(thresholds (k,), q)``."""
    scores = np.asarray(scores, float)
    base = np.zeros(len(scores), bool) if base_flag is None else np.asarray(base_flag, bool)
    lo, hi = 0.0, 1.0
    for _ in range(50):  # bisection on q: the union rate falls as q rises
        q = 0.5 * (lo + hi)
        thr = np.quantile(scores, q, axis=0)
        rate = np.mean(base | np.any(scores > thr, axis=1))
        lo, hi = (q, hi) if rate > target_rate else (lo, q)
    return np.quantile(scores, hi, axis=0), float(hi)


class CombinedOOD:
    """``score = max_k s_k / threshold_k`` over the flagging components; ``flag = score > 1``."""

    def __init__(self, names, thresholds, flag_names, quantile: float, target_rate: float):
        self.names, self.flag_names = list(names), list(flag_names)
        self.thresholds_ = np.asarray(thresholds, float)
        self.quantile, self.target_rate = float(quantile), float(target_rate)

    @classmethod
    def fit(cls, scores: np.ndarray, names=OOD_SCORES, flag_names=OOD_FLAG_SCORES,
            target_rate: float = 0.01, fixed: dict | None = None) -> "CombinedOOD":
        """Thresholds from calibration ``scores`` (n, len(names)); ``fixed``: {name: threshold}."""
        scores = np.asarray(scores, float)
        fixed = fixed or {}
        thr = np.full(len(names), np.nan)
        for i, n in enumerate(names):
            if n in fixed:
                thr[i] = fixed[n]
        base = np.zeros(len(scores), bool)
        for i, n in enumerate(names):
            if n in fixed and n in flag_names:
                base |= scores[:, i] > thr[i]
        free = [i for i, n in enumerate(names) if n not in fixed and n in flag_names]
        t, q = calibrate_thresholds(scores[:, free], target_rate, base) if free else ([], 1.0)
        thr[free] = t
        for i, n in enumerate(names):  # reported only: the same quantile
            if np.isnan(thr[i]):
                thr[i] = np.quantile(scores[:, i], q)
        return cls(names, np.maximum(thr, 1e-30), flag_names, q, target_rate)

    def combine(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(score (n,), flag (n,), ratios (n, k))`` from component scores ``(n, k)``."""
        ratios = np.asarray(scores, float) / self.thresholds_
        ratios = np.where(np.isfinite(ratios), ratios, np.inf)
        used = [i for i, n in enumerate(self.names) if n in self.flag_names]
        s = ratios[:, used].max(axis=1)
        return s, s > 1.0, ratios

    def state(self) -> dict:
        return {"thresholds": self.thresholds_, "quantile": self.quantile, "target_rate": self.target_rate,
                "flag_mask": np.array([n in self.flag_names for n in self.names], float)}

    @classmethod
    def from_state(cls, st: dict) -> "CombinedOOD":
        """Names by position in :data:`OOD_SCORES` (an older file holds fewer scores)."""
        mask = np.asarray(st["flag_mask"], float) > 0.5
        names = OOD_SCORES[:len(mask)]
        return cls(names, st["thresholds"], [n for n, m in zip(names, mask) if m],
                   float(np.asarray(st["quantile"]).item()), float(np.asarray(st["target_rate"]).item()))
