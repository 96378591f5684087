"""Inverse model: O K-edge spectrum of one O site -> the six site properties, with uncertainty.

:class:`InverseModel` (scikit-learn style) wraps a :class:`~coreloss.models.ensemble.DeepEnsemble`
of networks (``arch`` mlp / cnn) or a :class:`~coreloss.models.forest.ForestEnsemble` of trees
(et / rf), trained on onset-aligned, area-normalised spectra on a fixed
:class:`~coreloss.spectra.EnergyGrid` (default -5..25 eV, 0.1 eV); standardised targets, reported in
the units of :data:`coreloss.labels.LABEL_UNITS`. Training spectra are degraded by ``augment``
(:mod:`coreloss.models.augment`; every batch for networks, ``augment_copies`` copies for trees).
A group-wise validation split (``val_fraction`` of the structures) selects the epoch, fits one
variance recalibration factor per label (validation z-scores of unit variance) and calibrates the
OOD thresholds (:class:`~coreloss.models.ood.CombinedOOD`). Predictions are held inside
:data:`~coreloss.models.bounds.PHYSICAL_BOUNDS`. With ``absolute_onset=True`` the absolute onset
energy (eV, the engine's scale) is a further input: only for spectra calibrated to that scale
(docs/models.md).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator

from coreloss import __version__
from coreloss.conventions import SpectralConventions
from coreloss.errors import CorelossError
from coreloss.models._io import inverse_blob, inverse_from_blob, load_blob, save_atomic
from coreloss.labels import LABEL_NAMES, LABEL_UNITS
from coreloss.models.ensemble import DeepEnsemble
from coreloss.models.forest import FOREST_ARCHS, ForestEnsemble, label_sets
from coreloss.models.augment import Augmenter, make_augmenter  # noqa: F401 (re-export)
from coreloss.models.bounds import apply_bounds, label_range, outside_range, spectral_envelope
from coreloss.models.rows import group_val_split
from coreloss.models.ood import OOD_FLAG_SCORES, CombinedOOD, LatentKNN, PCAOutlierScore, SpectrumKNN
from coreloss.spectra import DEFAULT_GRID, EnergyGrid

FORMAT = "coreloss-inverse/1"
_KEYS = ("params", "grid", "arrays", "x_scale", "ensemble", "weights", "metadata")  # read by load()
#: degradations applied while training by default, each to a spectrum with probability
#: ``augment_prob`` = 0.25 (chosen with benchmarks/bench_augment.py; see BENCHMARKS.md)
DEFAULT_AUGMENT = ("noise", "misalign", "resolution", "lifetime", "stretch", "background", "plural")


def check_spectra(X, grid: EnergyGrid, spectra_grid: EnergyGrid | None = None) -> np.ndarray:
    """Return ``X`` as a float (n, grid.n) array or raise CorelossError if it is not on ``grid``."""
    if spectra_grid is not None and not grid.matches(spectra_grid):
        raise CorelossError(f"spectra are on grid {spectra_grid.to_dict()} but the model expects "
                            f"{grid.to_dict()}; resample them with coreloss.spectra.align_to_grid")
    X = np.asarray(X, float)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != grid.n:
        raise CorelossError(f"spectra have {X.shape[-1]} points but the model's grid "
                            f"({grid.start:g}..{grid.stop:g} eV, step {grid.step:g}) has {grid.n}; "
                            "resample them explicitly with coreloss.spectra.align_to_grid")
    return X


#: predicted labels beyond the training range by more than this fraction of it are flagged
EXTRAPOLATION_MARGIN = 0.1


class InverseModel(BaseEstimator):
    """Spectrum -> (mean, std) of the six labels. ``fit`` / ``predict`` / ``ood_score`` / ``save`` / ``load``.

    A scikit-learn estimator: the constructor only stores its parameters (``get_params`` /
    ``set_params`` / ``sklearn.base.clone``). Torch threads and training progress are the caller's
    (``torch.set_num_threads``; ``fit(..., progress=callback)``).
    """

    def __init__(self, arch: str = "mlp", members: int = 5, hidden: tuple[int, ...] = (256, 128),
                 dropout: float = 0.1, epochs: int = 150, lr: float = 1e-3, batch_size: int = 128,
                 weight_decay: float = 1e-5, snrs=(float("inf"), 50.0, 20.0, 10.0),
                 noise_kind: str = "poisson", max_shift_ev: float = 1.0, val_fraction: float = 0.15,
                 recalibrate: bool = True, seed: int = 0, grid: EnergyGrid = DEFAULT_GRID,
                 augment=DEFAULT_AUGMENT, augment_prob: float = 0.25, training_fwhm: float | None = None,
                 absolute_onset: bool = False, ood_target_rate: float = 0.015, init: str | None = None,
                 n_trees: int = 100, min_samples_leaf: int = 2, max_features: float = 0.3,
                 augment_copies: int = 3):
        self.arch, self.members, self.hidden, self.dropout = arch, members, hidden, dropout
        self.epochs, self.lr, self.batch_size, self.weight_decay = epochs, lr, batch_size, weight_decay
        self.snrs, self.noise_kind, self.max_shift_ev = snrs, noise_kind, max_shift_ev
        self.val_fraction, self.recalibrate, self.seed = val_fraction, recalibrate, seed
        self.grid = grid
        self.augment, self.augment_prob = augment, augment_prob
        self.training_fwhm, self.absolute_onset = training_fwhm, absolute_onset
        self.ood_target_rate, self.init = ood_target_rate, init
        self.n_trees, self.min_samples_leaf, self.max_features = n_trees, min_samples_leaf, max_features
        self.augment_copies = augment_copies
        self.label_names = list(LABEL_NAMES)
        self.label_units = [LABEL_UNITS[n] for n in LABEL_NAMES]
        self.metadata: dict = {}

    # -- configuration -------------------------------------------------------------------------
    def param_record(self) -> dict:
        """JSON-able constructor parameters as the model file stores them (grid apart;
        ``training_fwhm`` as resolved by :meth:`fit`)."""
        p = self.get_params()
        p.pop("grid")
        return {**p, "hidden": [int(h) for h in self.hidden], "snrs": [float(v) for v in self.snrs],
                "augment": list(self.augment), "augment_prob": float(self.augment_prob),
                "absolute_onset": bool(self.absolute_onset), "ood_target_rate": float(self.ood_target_rate),
                "training_fwhm": getattr(self, "training_fwhm_", self.training_fwhm)}

    def _new_ensemble(self):
        """Untrained members: a :class:`DeepEnsemble` of ``members`` networks (``arch`` mlp / cnn)
        or a :class:`~coreloss.models.forest.ForestEnsemble` of ``n_trees`` trees (et / rf)."""
        if self.arch in FOREST_ARCHS:
            return ForestEnsemble(self.arch, self.n_trees, self.min_samples_leaf, self.max_features, self.seed)
        kw = {"hidden": tuple(self.hidden)} if self.arch == "mlp" else {"hidden": self.hidden[0]}
        return DeepEnsemble(self.arch, self.members, {**kw, "dropout": self.dropout}, self.seed)

    def _scale_x(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.x_mean_) / self.x_scale_).astype(np.float32)

    def _inputs(self, X: np.ndarray, onset=None) -> np.ndarray:
        """Network inputs: scaled spectra, plus the standardised absolute onset when used."""
        Xs = self._scale_x(X)
        if not self.absolute_onset:
            return Xs
        if onset is None:
            raise CorelossError("this model uses the absolute onset energy (absolute_onset=True): pass "
                                "onset= (eV, on the training engine's scale; see docs/models.md)")
        on = np.broadcast_to(np.asarray(onset, float), (len(X),))
        return np.concatenate([Xs, ((on - self.onset_mean_) / self.onset_std_)[:, None]], axis=1
                              ).astype(np.float32)

    def _pretrained(self) -> "InverseModel | None":
        """The model named by ``init`` (fine-tuning): its networks start the training and its
        spectrum scaling is kept; the label scaling is refitted on the new labels."""
        if self.init is None:
            return None
        if self.arch in FOREST_ARCHS:
            raise CorelossError(f"arch {self.arch!r} (trees) cannot be fine-tuned: leave init unset")
        pre = InverseModel.load(self.init, grid=self.grid)
        mine, theirs = self.get_params(), pre.get_params()
        for k in ("arch", "members", "hidden", "absolute_onset"):
            if mine[k] != theirs[k]:
                raise CorelossError(f"init model {self.init}: {k} is {theirs[k]!r}, this model's is {mine[k]!r}")
        return pre

    def progress_task(self, y) -> tuple[str, int]:
        """``(what, steps)``: what :meth:`fit` on labels ``y`` trains, and how often it calls
        ``progress``: once per member epoch, or once per forest (label set) for trees."""
        if self.arch in FOREST_ARCHS:
            return f"{self.n_trees} {self.arch} trees", len(label_sets(y))
        return f"{self.members} x {self.arch}", self.members * self.epochs

    def make_augmenter(self) -> Augmenter:
        """The training-batch degradations (:class:`~coreloss.models.augment.Augmenter`)."""
        fwhm = getattr(self, "training_fwhm_", self.training_fwhm)
        return Augmenter(self.grid, tuple(self.augment), tuple(self.snrs), float(self.augment_prob),
                         training_fwhm=fwhm or 1.0,
                         ranges={"misalign": (-self.max_shift_ev, self.max_shift_ev)},
                         noise_kind=self.noise_kind)

    # -- training ------------------------------------------------------------------------------
    def fit(self, X, y, groups=None, provenance: dict | None = None, onset=None,
            progress=None, primary=None) -> "InverseModel":
        """Train on spectra ``X`` (n, grid.n) and labels ``y`` (n, 6; NaN = missing).

        ``groups`` (e.g. structure ids) makes the validation split structure-wise;
        ``provenance`` (the dataset's) is stored in :attr:`metadata`; its spectral conventions
        (:class:`~coreloss.conventions.SpectralConventions`, Gaussian FWHM = the training resolution
        unless ``training_fwhm`` is given) are carried as ``conventions_`` / ``metadata["conventions"]``; ``onset`` (n,) absolute onsets (eV)
        are required when ``absolute_onset``; ``progress()`` is called once per member epoch.
        With ``init`` (a model file, e.g. trained on xtb spectra) training fine-tunes its networks.
        ``primary`` (bool per row, default all): rows of the engine the model is for; the OOD scores
        and the training envelope are fitted on these only (:mod:`coreloss.multifidelity`).
        """
        t0 = time.perf_counter()
        X = check_spectra(X, self.grid)
        y = np.asarray(y, float)
        if y.ndim != 2 or y.shape != (len(X), len(self.label_names)):
            raise CorelossError(f"labels must have shape ({len(X)}, {len(self.label_names)}), got {y.shape}")
        if len(X) < 4:
            raise CorelossError(f"need at least 4 spectra to train, got {len(X)}")
        conv = SpectralConventions.from_provenance(provenance)
        self.training_fwhm_ = self.training_fwhm if self.training_fwhm is not None else conv.gaussian_fwhm
        self.conventions_ = replace(conv, grid=self.grid, gaussian_fwhm=self.training_fwhm_)
        pre = self._pretrained()
        self.x_mean_ = X.mean(axis=0) if pre is None else pre.x_mean_
        self.x_scale_ = (float(np.std(X - self.x_mean_)) or 1.0) if pre is None else pre.x_scale_
        self.onset_mean_, self.onset_std_ = 0.0, 1.0
        if self.absolute_onset:
            if onset is None or len(onset) != len(X):
                raise CorelossError("absolute_onset=True needs onset= with one absolute onset (eV) per spectrum")
            onset = np.asarray(onset, float)
            self.onset_mean_, self.onset_std_ = float(np.mean(onset)), float(np.std(onset)) or 1.0
        self.y_mean_ = np.nanmean(y, axis=0)
        self.y_std_ = np.nan_to_num(np.nanstd(y, axis=0), nan=1.0)
        self.y_std_ = np.where(self.y_std_ > 0, self.y_std_, 1.0)
        self.y_mean_ = np.nan_to_num(self.y_mean_)
        Ys = (y - self.y_mean_) / self.y_std_
        tr, va, ood_tr, ood_cal = self.fit_rows(X, groups, primary)
        pm = np.ones(len(X), bool) if primary is None else np.asarray(primary, bool)
        augment = self.make_augmenter()
        self.ensemble_ = self._new_ensemble() if pre is None else pre.ensemble_
        Xin = X if not self.absolute_onset else np.concatenate([X, onset[:, None]], axis=1)
        n_x = X.shape[1]

        def aug_scaled(xb, rng):  # spectra degraded; the onset (if used) jittered by 0.2 eV
            if not self.absolute_onset:
                return self._scale_x(augment(xb, rng))
            return self._inputs(augment(xb[:, :n_x], rng), xb[:, n_x] + rng.normal(0, 0.2, len(xb)))

        def clean_scaled(xb):
            return self._inputs(xb[:, :n_x], xb[:, n_x] if self.absolute_onset else None)

        if isinstance(self.ensemble_, ForestEnsemble):  # grown once on clean + degraded copies
            hist = self.ensemble_.fit(Xin[tr], Ys[tr], clean=clean_scaled, augment=aug_scaled,
                                      copies=self.augment_copies, progress=progress)
        else:
            hist = self.ensemble_.fit(Xin[tr], Ys[tr], X_val=clean_scaled(Xin[va]) if len(va) else None,
                                      Y_val=Ys[va] if len(va) else None, augment=aug_scaled,
                                      progress=progress, epochs=self.epochs, lr=self.lr, warm=pre is not None,
                                      batch_size=self.batch_size, weight_decay=self.weight_decay)
        # variance recalibration on the validation structures
        self.calibration_ = np.ones(len(self.label_names))
        if self.recalibrate and len(va):
            mu, var = self.ensemble_.predict(clean_scaled(Xin[va]))
            z2 = (Ys[va] - mu) ** 2 / var
            n_ok = np.isfinite(z2).sum(axis=0)  # labels masked in every validation row: no factor
            c = np.sqrt(np.nansum(z2, axis=0) / np.maximum(n_ok, 1)) * np.where(n_ok > 0, 1.0, np.nan)
            self.calibration_ = np.where(np.isfinite(c) & (c > 0), c, 1.0)
        self.fit_ood(X[ood_tr], X[ood_cal], None if onset is None else onset[ood_tr],
                     None if onset is None else onset[ood_cal],
                     groups_train=None if groups is None else np.asarray(groups).astype(str)[ood_tr])
        self.metadata = {
            "format": FORMAT, "coreloss_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "params": self.param_record(), "grid": self.grid.to_dict(),
            "conventions": self.conventions_.to_dict(),
            "label_names": self.label_names, "label_units": self.label_units,
            "n_train": int(len(tr)), "n_val": int(len(va)), "n_train_primary": int(pm[tr].sum()),
            "n_structures": int(len(np.unique(groups))) if groups is not None else None,
            "training_groups": None if groups is None else sorted(map(str, np.unique(groups))),
            "calibration": {"method": "per-label std factor fitted on validation structures "
                            "(sqrt of mean squared z-score)" if len(va) and self.recalibrate else "none",
                            "factors": self.calibration_.tolist()},
            "ood": self._ood_record(),
            "augmentation": self.make_augmenter().params(),
            "absolute_onset": {"used": self.absolute_onset, "mean_eV": self.onset_mean_,
                               "std_eV": self.onset_std_},
            "train_seconds": round(time.perf_counter() - t0, 2),
            "best_val_mse": [float(min(h["val_mse"])) if h["val_mse"] else None for h in hist],
            "training_provenance": provenance or {},
            "training_envelope": spectral_envelope(X[tr[pm[tr]]]),
            "label_range": label_range(y),
            "pretraining": None if pre is None else {"init": str(self.init), "n_train": pre.metadata.get("n_train"),
                                                      "training_provenance": pre.metadata.get("training_provenance")},
        }
        return self

    def fit_rows(self, X, groups=None, primary=None):
        """Row indices :meth:`fit` uses for ``X`` (its ``groups``, ``primary``): network training and
        validation (whole groups, ``val_fraction``, ``seed``), then the OOD scores' training and
        calibration rows (primary rows only, each spectrum once)."""
        tr, va = group_val_split(len(X), groups, self.val_fraction, self.seed)
        pm = np.ones(len(X), bool) if primary is None else np.asarray(primary, bool)
        if pm.shape != (len(X),) or not pm.any():
            raise CorelossError("primary must be one bool per spectrum with at least one True")
        calib = va if len(va) else tr
        ood_tr, ood_cal = tr[pm[tr]], calib[pm[calib]]
        ood_cal = ood_cal if len(ood_cal) else ood_tr  # no primary row among the validation groups
        if primary is not None:  # joined rows repeat the primary spectra: score against each once
            X = np.asarray(X)
            ood_tr = np.sort(ood_tr[np.unique(X[ood_tr], axis=0, return_index=True)[1]])
            ood_cal = np.sort(ood_cal[np.unique(X[ood_cal], axis=0, return_index=True)[1]])
        return tr, va, ood_tr, ood_cal

    def fit_ood(self, X_train, X_calib, onset_train=None, onset_calib=None, groups_train=None) -> "InverseModel":
        """(Re)fit the OOD scores: PCA, latent and spectrum neighbours on ``X_train`` (clean training
        spectra), thresholds on clean + noisy (``snrs``) copies of the held-out ``X_calib`` (for the
        spectrum neighbours also a copy with the training augmentation, and the training spectra
        scored leave-group-out when ``groups_train`` is given); see :mod:`coreloss.models.ood`. Called by :meth:`fit`; callable again on a
        trained model."""
        rng = np.random.default_rng(self.seed + 7)
        noisy = Augmenter(self.grid, ("noise",), tuple(self.snrs), noise_kind=self.noise_kind)
        Xn = noisy(X_calib, rng)
        self.ood_ = PCAOutlierScore(quantile=0.999).fit(X_train, Xn)  # leaves the rate to latent_knn
        lat = self.ensemble_.predict_full(self._inputs(X_train, onset_train))["latent"]
        self.latent_ = LatentKNN().fit(lat)
        self.spectrum_knn_ = SpectrumKNN().fit(X_train, self.grid.step)
        Xc = np.concatenate([X_calib, Xn])
        s_cal = self.spectrum_knn_.score(np.concatenate([Xc, self.make_augmenter()(X_calib, rng)]))
        if groups_train is not None and len(np.unique(groups_train)) > 1:
            s_cal = np.concatenate([s_cal, self.spectrum_knn_.score(X_train, groups_train, groups_train)])
        s_thr = float(np.quantile(s_cal[np.isfinite(s_cal)], 1.0 - self.ood_target_rate))
        oc = None if onset_calib is None else np.concatenate([onset_calib, onset_calib])
        comp = self._ood_components(Xc, oc)
        # the latent threshold takes the whole target rate beside PCA, as before the spectrum kNN;
        # the spectrum kNN then flags on its own threshold (it does not loosen the latent one)
        cal = CombinedOOD.fit(comp, flag_names=("pca", "latent_knn"), target_rate=self.ood_target_rate,
                              fixed={"pca": self.ood_.threshold_, "spectrum_knn": s_thr})
        self.combined_ood_ = CombinedOOD(cal.names, cal.thresholds_, OOD_FLAG_SCORES, cal.quantile, cal.target_rate)
        if getattr(self, "metadata", None):
            self.metadata["ood"] = self._ood_record()
        return self

    def _ood_record(self) -> dict:
        c = self.combined_ood_
        return {"method": "flag = max over " + ", ".join(c.flag_names) + " of score / threshold > 1; "
                "PCA: T2+Q with its own threshold (99.9th percentile of noisy validation spectra); "
                f"latent_knn: mean distance to the {self.latent_.k} nearest training spectra in the "
                + ("forest's latent space (PCA scores of the scaled spectra)" if self.arch in FOREST_ARCHS
                   else "ensemble's last hidden layers") + "; its threshold: the quantile of clean + noisy validation "
                f"spectra at which {self.ood_target_rate:.1%} of them are flagged in all; "
                f"spectrum_knn: 1 - mean cosine with the {self.spectrum_knn_.k} most similar training "
                f"spectra (smoothed, sigma {self.spectrum_knn_.sigma_ev:g} eV), threshold its "
                f"{1 - self.ood_target_rate:.1%} quantile over the validation spectra (clean, noisy, "
                "augmented) and the training spectra scored leave-group-out; "
                "disagreement (variance of member means) reported only", "scores": list(c.names),
                "flag_scores": list(c.flag_names), "thresholds": c.thresholds_.tolist(),
                "quantile": c.quantile, "target_rate": c.target_rate,
                "n_components": int(len(self.ood_.components_))}

    def _check_fitted(self):
        if not hasattr(self, "ensemble_"):
            raise CorelossError("the model is not trained: call fit() or InverseModel.load()")

    # -- inference -----------------------------------------------------------------------------
    def _ood_components(self, X, onset=None, full: dict | None = None) -> np.ndarray:
        """``(n, k)`` raw scores in the order of :data:`~coreloss.models.ood.OOD_SCORES` (the first
        three for a model file from before ``spectrum_knn``)."""
        full = full if full is not None else self.ensemble_.predict_full(self._inputs(X, onset))
        pca, _ = self.ood_.score(X)
        knn = self.latent_.score(full["latent"])
        cols = [pca, full["epistemic"].mean(axis=1), np.where(np.isfinite(pca), knn, np.inf)]
        if hasattr(self, "spectrum_knn_"):  # absent from model files saved before it
            cols.append(self.spectrum_knn_.score(X))
        return np.stack(cols, axis=1)

    def predict_full(self, X, grid: EnergyGrid | None = None, onset=None, batch_size: int = 16384) -> dict:
        """Everything from one pass: ``mean``, ``std`` (n, 6; bounded, label units), ``clipped``
        (n, 6) bool, ``clipped_sigma`` (n, 6: distance of the raw mean beyond its limit in raw
        standard deviations), ``ood_score`` (n,), ``ood`` (n,) bool, ``ood_components`` (n, k; :data:`~coreloss.models.ood.OOD_SCORES`)."""
        self._check_fitted()
        X = check_spectra(X, self.grid, grid)
        out = {}
        for a in range(0, max(len(X), 1), batch_size):
            xb = X[a:a + batch_size]
            full = self.ensemble_.predict_full(self._inputs(xb, None if onset is None else
                                                            np.broadcast_to(onset, (len(X),))[a:a + batch_size]))
            mean = full["mean"] * self.y_std_ + self.y_mean_
            std = np.sqrt(full["var"]) * self.calibration_ * self.y_std_
            raw_mean, raw_std = mean, std
            mean, std, clipped = apply_bounds(mean, std, self.label_names)
            with np.errstate(divide="ignore", invalid="ignore"):  # how far outside, in raw sigmas
                beyond = np.where(clipped, np.abs(raw_mean - mean) / raw_std, 0.0)
            if hasattr(self, "combined_ood_"):
                comp = self._ood_components(xb, full=full)
                score, flag, _ = self.combined_ood_.combine(comp)
            else:  # a model saved before the combined score: PCA only
                score, flag = self.ood_.score(xb)
                comp = score[:, None]
            part = {"mean": mean, "std": std, "clipped": clipped, "clipped_sigma": beyond,
                    "ood_score": score, "ood": flag, "ood_components": comp}
            for k, v in part.items():
                out.setdefault(k, []).append(v)
        return {k: np.concatenate(v) for k, v in out.items()}

    def predict(self, X, grid: EnergyGrid | None = None, batch_size: int = 16384, onset=None):
        """``(mean, std)``, each (n, 6) in label units, for spectra ``X`` on :attr:`grid`.

        Means are held inside the physical limits (:func:`~coreloss.models.bounds.apply_bounds`:
        clipped, std widened by the clipped distance).
        """
        self._check_fitted()
        X = check_spectra(X, self.grid, grid)
        mu, var = self.ensemble_.predict(self._inputs(X, onset), batch_size=batch_size)
        mean = mu * self.y_std_ + self.y_mean_
        std = np.sqrt(var) * self.calibration_ * self.y_std_
        mean, std, _ = apply_bounds(mean, std, self.label_names)
        return mean, std

    def ood_score(self, X, grid: EnergyGrid | None = None, onset=None):
        """``(score (n,), flag (n,) bool)``: flag marks spectra the model cannot read (score > 1 for
        the combined score; PCA score > its threshold for older models)."""
        full = self.predict_full(X, grid, onset)
        return full["ood_score"], full["ood"]

    def extrapolated(self, mean, margin: float = EXTRAPOLATION_MARGIN) -> np.ndarray:
        """(n,) bool: a predicted label lies outside the training range widened by ``margin`` x range
        (:func:`~coreloss.models.bounds.outside_range`), a second OOD test beside :meth:`ood_score`:
        a spectrum inside the spectral envelope can still drive the model to labels it never saw."""
        return outside_range(mean, (getattr(self, "metadata", {}) or {}).get("label_range"), margin)

    # -- persistence (the file format lives in coreloss.models._io) ------------------------------
    def save(self, path) -> Path:
        """Write weights + metadata to ONE file (atomically: temp file then rename)."""
        self._check_fitted()
        return save_atomic(inverse_blob(self), Path(path))

    @classmethod
    def load(cls, path, grid: EnergyGrid | None = None) -> "InverseModel":
        """Read a file written by :meth:`save`; with ``grid``, refuse a model trained on another grid."""
        return inverse_from_blob(cls, load_blob(path, FORMAT, _KEYS, "coreloss inverse model"), path, grid)
