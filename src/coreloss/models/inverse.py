"""Inverse model: O K-edge spectrum of one O site -> the six site properties, with uncertainty.

:class:`InverseModel` (scikit-learn style) wraps a :class:`~coreloss.models.ensemble.DeepEnsemble`
trained on onset-aligned, area-normalised spectra on a fixed :class:`~coreloss.spectra.EnergyGrid`
(default -5..25 eV, 0.1 eV). Targets are standardised for training and reported in the units of
:data:`coreloss.labels.LABEL_UNITS`. Training augments every batch with Poisson noise at a random
SNR from ``snrs`` and a random energy shift within ``+-max_shift_ev``. A group-wise validation split
(``val_fraction`` of the structures) selects the epoch, fits one variance recalibration factor per
label (so the validation z-scores have unit variance) and calibrates the OOD threshold.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from coreloss import __version__
from coreloss.errors import CorelossError
from coreloss.fileio import require_keys
from coreloss.models._io import save_atomic
from coreloss.labels import LABEL_NAMES, LABEL_UNITS
from coreloss.models.ensemble import DeepEnsemble
from coreloss.models.ood import PCAOutlierScore
from coreloss.spectra import DEFAULT_GRID, EnergyGrid, add_noise, normalise_area, shift

FORMAT = "coreloss-inverse/1"
_KEYS = ("params", "grid", "arrays", "x_scale", "ensemble", "weights", "metadata")  # read by load()


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


def make_augmenter(grid: EnergyGrid, snrs, max_shift_ev: float, kind: str = "poisson"):
    """``augment(X, rng)``: per spectrum a random SNR from ``snrs`` (inf = clean) and shift, re-normalised."""
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


def _group_val_split(n: int, groups, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(n)
    if val_fraction <= 0:
        return idx, idx[:0]
    if groups is None:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(n)
        k = max(1, int(round(val_fraction * n)))
        return np.sort(perm[k:]), np.sort(perm[:k])
    groups = np.asarray(groups).astype(str)
    uniq = np.unique(groups)
    if len(uniq) < 3:
        return idx, idx[:0]
    rng = np.random.default_rng(seed)
    k = max(1, int(round(val_fraction * len(uniq))))
    val_groups = rng.choice(uniq, size=k, replace=False)
    is_val = np.isin(groups, val_groups)
    return idx[~is_val], idx[is_val]


#: predicted labels beyond the training range by more than this fraction of it are flagged
EXTRAPOLATION_MARGIN = 0.1


class InverseModel:
    """Spectrum -> (mean, std) of the six labels. ``fit`` / ``predict`` / ``ood_score`` / ``save`` / ``load``."""

    def __init__(self, arch: str = "mlp", members: int = 5, hidden: tuple[int, ...] = (256, 128),
                 dropout: float = 0.1, epochs: int = 150, lr: float = 1e-3, batch_size: int = 128,
                 weight_decay: float = 1e-5, snrs=(float("inf"), 50.0, 20.0, 10.0),
                 noise_kind: str = "poisson", max_shift_ev: float = 0.3, val_fraction: float = 0.15,
                 recalibrate: bool = True, seed: int = 0, grid: EnergyGrid = DEFAULT_GRID,
                 n_threads: int = 1, progress: bool = False):
        self.arch, self.members, self.hidden, self.dropout = arch, members, tuple(hidden), dropout
        self.epochs, self.lr, self.batch_size, self.weight_decay = epochs, lr, batch_size, weight_decay
        self.snrs, self.noise_kind, self.max_shift_ev = tuple(snrs), noise_kind, max_shift_ev
        self.val_fraction, self.recalibrate, self.seed = val_fraction, recalibrate, seed
        self.grid, self.n_threads, self.progress = grid, n_threads, progress
        self.label_names = list(LABEL_NAMES)
        self.label_units = [LABEL_UNITS[n] for n in LABEL_NAMES]
        self.metadata: dict = {}

    # -- configuration -------------------------------------------------------------------------
    def get_params(self) -> dict:
        return {"arch": self.arch, "members": self.members, "hidden": list(self.hidden),
                "dropout": self.dropout, "epochs": self.epochs, "lr": self.lr,
                "batch_size": self.batch_size, "weight_decay": self.weight_decay,
                "snrs": [float(s) for s in self.snrs], "noise_kind": self.noise_kind,
                "max_shift_ev": self.max_shift_ev, "val_fraction": self.val_fraction,
                "recalibrate": self.recalibrate, "seed": self.seed}

    def _net_kwargs(self) -> dict:
        if self.arch == "mlp":
            return {"hidden": self.hidden, "dropout": self.dropout}
        return {"hidden": self.hidden[0], "dropout": self.dropout}

    def _scale_x(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.x_mean_) / self.x_scale_).astype(np.float32)

    # -- training ------------------------------------------------------------------------------
    def fit(self, X, y, groups=None, provenance: dict | None = None) -> "InverseModel":
        """Train on spectra ``X`` (n, grid.n) and labels ``y`` (n, 6; NaN = missing).

        ``groups`` (e.g. structure ids) makes the validation split structure-wise;
        ``provenance`` (the dataset's) is stored in :attr:`metadata`.
        """
        t0 = time.perf_counter()
        X = check_spectra(X, self.grid)
        y = np.asarray(y, float)
        if y.ndim != 2 or y.shape != (len(X), len(self.label_names)):
            raise CorelossError(f"labels must have shape ({len(X)}, {len(self.label_names)}), got {y.shape}")
        if len(X) < 4:
            raise CorelossError(f"need at least 4 spectra to train, got {len(X)}")
        torch.set_num_threads(self.n_threads)
        self.x_mean_ = X.mean(axis=0)
        self.x_scale_ = float(np.std(X - self.x_mean_)) or 1.0
        self.y_mean_ = np.nanmean(y, axis=0)
        self.y_std_ = np.nan_to_num(np.nanstd(y, axis=0), nan=1.0)
        self.y_std_ = np.where(self.y_std_ > 0, self.y_std_, 1.0)
        self.y_mean_ = np.nan_to_num(self.y_mean_)
        Ys = (y - self.y_mean_) / self.y_std_
        tr, va = _group_val_split(len(X), groups, self.val_fraction, self.seed)
        augment = make_augmenter(self.grid, self.snrs, self.max_shift_ev, self.noise_kind)
        self.ensemble_ = DeepEnsemble(self.arch, self.members, self._net_kwargs(), self.seed)
        scale = self._scale_x
        aug_scaled = (lambda xb, rng: scale(augment(xb, rng)))
        progress_cb, bar = None, None
        if self.progress:
            from rich.progress import Progress
            bar = Progress(transient=True)
            bar.start()
            task = bar.add_task(f"training {self.members} x {self.arch}", total=self.members * self.epochs)
            progress_cb = lambda: bar.advance(task)  # noqa: E731
        try:
            hist = self.ensemble_.fit(X[tr], Ys[tr], X_val=scale(X[va]) if len(va) else None,
                                      Y_val=Ys[va] if len(va) else None, augment=aug_scaled,
                                      progress=progress_cb, epochs=self.epochs, lr=self.lr,
                                      batch_size=self.batch_size, weight_decay=self.weight_decay)
        finally:
            if bar is not None:
                bar.stop()
        # variance recalibration on the validation structures
        self.calibration_ = np.ones(len(self.label_names))
        calib_idx = va if len(va) else tr
        if self.recalibrate and len(va):
            mu, var = self.ensemble_.predict(scale(X[va]))
            z2 = (Ys[va] - mu) ** 2 / var
            with np.errstate(invalid="ignore"):
                c = np.sqrt(np.nanmean(z2, axis=0))
            self.calibration_ = np.where(np.isfinite(c) & (c > 0), c, 1.0)
        # OOD: PCA on training spectra, threshold on augmented calibration spectra
        rng = np.random.default_rng(self.seed + 7)
        self.ood_ = PCAOutlierScore().fit(X[tr], augment(X[calib_idx], rng))
        self.metadata = {
            "format": FORMAT, "coreloss_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "params": self.get_params(), "grid": self.grid.to_dict(),
            "label_names": self.label_names, "label_units": self.label_units,
            "n_train": int(len(tr)), "n_val": int(len(va)),
            "n_structures": int(len(np.unique(groups))) if groups is not None else None,
            "calibration": {"method": "per-label std factor fitted on validation structures "
                            "(sqrt of mean squared z-score)" if len(va) and self.recalibrate else "none",
                            "factors": self.calibration_.tolist()},
            "ood": {"method": "PCA T2 + residual Q, each over its calibration mean; threshold = "
                    f"{self.ood_.quantile:g} quantile on noise-augmented validation spectra",
                    "n_components": int(len(self.ood_.components_)), "threshold": self.ood_.threshold_},
            "train_seconds": round(time.perf_counter() - t0, 2),
            "best_val_mse": [float(min(h["val_mse"])) if h["val_mse"] else None for h in hist],
            "training_provenance": provenance or {},
            "training_envelope": _envelope(X[tr]),
            "label_range": label_range(y),
        }
        return self

    def _check_fitted(self):
        if not hasattr(self, "ensemble_"):
            raise CorelossError("the model is not trained: call fit() or InverseModel.load()")

    # -- inference -----------------------------------------------------------------------------
    def predict(self, X, grid: EnergyGrid | None = None, batch_size: int = 16384):
        """``(mean, std)``, each (n, 6) in label units, for spectra ``X`` on :attr:`grid`."""
        self._check_fitted()
        X = check_spectra(X, self.grid, grid)
        torch.set_num_threads(self.n_threads)
        mu, var = self.ensemble_.predict(self._scale_x(X), batch_size=batch_size)
        mean = mu * self.y_std_ + self.y_mean_
        std = np.sqrt(var) * self.calibration_ * self.y_std_
        return mean, std

    def ood_score(self, X, grid: EnergyGrid | None = None):
        """``(score (n,), flag (n,) bool)``: flag marks spectra unlike the training data."""
        self._check_fitted()
        return self.ood_.score(check_spectra(X, self.grid, grid))

    def extrapolated(self, mean, margin: float = EXTRAPOLATION_MARGIN) -> np.ndarray:
        """(n,) bool: a predicted label lies outside the training range widened by ``margin`` x range.

        A second OOD test next to :meth:`ood_score`: a spectrum inside the spectral envelope can
        still drive the network to labels it never saw (e.g. a transition-metal oxide's O K edge).
        """
        rng = (getattr(self, "metadata", {}) or {}).get("label_range")
        mean = np.atleast_2d(np.asarray(mean, float))
        if not rng:
            return np.zeros(len(mean), bool)
        lo, hi = np.asarray(rng["min"], float), np.asarray(rng["max"], float)
        pad = margin * (hi - lo)
        with np.errstate(invalid="ignore"):
            out = (mean < lo - pad) | (mean > hi + pad)
        return np.any(out & np.isfinite(lo) & np.isfinite(hi), axis=1)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write weights + metadata to ONE file (atomically: temp file then rename)."""
        self._check_fitted()
        path = Path(path)
        arrays = {"x_mean": self.x_mean_, "y_mean": self.y_mean_, "y_std": self.y_std_,
                  "calibration": self.calibration_,
                  **{f"ood_{k}": np.asarray(v, float) for k, v in self.ood_.state().items()}}
        blob = {"format": FORMAT, "metadata": json.dumps(self.metadata), "x_scale": self.x_scale_,
                "params": json.dumps(self.get_params()), "grid": json.dumps(self.grid.to_dict()),
                "arrays": {k: torch.as_tensor(np.asarray(v, float)) for k, v in arrays.items()},
                "ensemble": {**{k: v for k, v in self.ensemble_.state().items() if k != "weights"},
                             "net_kwargs": json.dumps({k: list(v) if isinstance(v, tuple) else v
                                                       for k, v in self.ensemble_.net_kwargs.items()})},
                "weights": self.ensemble_.state()["weights"]}
        return save_atomic(blob, path)

    @classmethod
    def load(cls, path, grid: EnergyGrid | None = None) -> "InverseModel":
        """Read a file written by :meth:`save`; with ``grid``, refuse a model trained on another grid."""
        path = Path(path)
        if not path.is_file():
            raise CorelossError(f"model file not found: {path}")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
            raise CorelossError(f"{path} is not a coreloss inverse model ({exc.__class__.__name__})") from exc
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise CorelossError(f"{path} is not a coreloss inverse model (format {FORMAT!r} expected)")
        require_keys(blob, _KEYS, f"{path}: coreloss inverse model")
        params = json.loads(blob["params"])
        params["hidden"] = tuple(params["hidden"])
        model_grid = EnergyGrid.from_dict(json.loads(blob["grid"]))
        if grid is not None and not model_grid.matches(grid):
            raise CorelossError(f"model {path} was trained on grid {model_grid.to_dict()}, not "
                                f"{grid.to_dict()}; resample the spectra to the model's grid")
        obj = cls(grid=model_grid, **params)
        a = {k: v.numpy() for k, v in blob["arrays"].items()}
        obj.x_mean_, obj.y_mean_, obj.y_std_ = a["x_mean"], a["y_mean"], a["y_std"]
        obj.x_scale_, obj.calibration_ = float(blob["x_scale"]), a["calibration"]
        obj.ood_ = PCAOutlierScore.from_state({k[4:]: v for k, v in a.items() if k.startswith("ood_")})
        ens = dict(blob["ensemble"])
        ens["net_kwargs"] = json.loads(ens["net_kwargs"])
        obj.ensemble_ = DeepEnsemble.from_state({**ens, "weights": blob["weights"]})
        obj.metadata = json.loads(blob["metadata"])
        obj.label_names = list(obj.metadata.get("label_names", LABEL_NAMES))
        obj.label_units = list(obj.metadata.get("label_units", obj.label_units))
        return obj


def _envelope(X) -> dict:
    """5-95 % band and mean of the training spectra on the grid (for plots of measured spectra)."""
    return {"q05": np.quantile(X, 0.05, axis=0).round(6).tolist(),
            "q95": np.quantile(X, 0.95, axis=0).round(6).tolist(),
            "mean": X.mean(axis=0).round(6).tolist()}


def label_range(y) -> dict:
    """Per-label min and max of training labels (label units; NaN labels ignored)."""
    y = np.asarray(y, float)
    with np.errstate(invalid="ignore"):
        return {"min": np.nanmin(y, axis=0).tolist(), "max": np.nanmax(y, axis=0).tolist()}
