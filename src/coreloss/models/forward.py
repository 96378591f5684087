"""Forward model: local environment of an O site (SOAP) -> its onset-aligned O K-edge spectrum.

:class:`ForwardModel` featurises every O site with :class:`~coreloss.models.descriptors.SoapFeaturizer`
(centred on the O atom, species = all elements of the training structures) and maps the
standardised descriptor through an MLP with a softplus output; the result is area-normalised,
so predictions are non-negative unit-area spectra (1/eV) on :attr:`grid` (E - onset, eV).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from torch import nn

from coreloss import __version__
from coreloss.conventions import SpectralConventions
from coreloss.errors import CorelossError
from coreloss.models._io import load_blob, save_atomic
from coreloss.models.descriptors import SoapFeaturizer, SoapParams, species_of
from coreloss.models.networks import train_network
from coreloss.spectra import DEFAULT_GRID, EnergyGrid

FORMAT = "coreloss-forward/1"
_KEYS = ("params", "grid", "soap", "f_mean", "f_std", "weights", "metadata")  # what load() reads


class SpectrumMLP(nn.Module):
    """descriptor -> hidden ReLU layers -> softplus -> unit trapezoidal area on ``n_grid`` points (1/eV)."""

    def __init__(self, n_in: int, n_grid: int, step: float, hidden=(256, 256), dropout: float = 0.05):
        super().__init__()
        layers, prev = [], n_in
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU(), nn.Dropout(dropout)]
            prev = h
        self.body = nn.Sequential(*layers, nn.Linear(prev, n_grid), nn.Softplus())
        self.step = step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        area = (y.sum(dim=1, keepdim=True) - 0.5 * (y[:, :1] + y[:, -1:])) * self.step  # trapezoid
        return y / area


class ForwardModel(BaseEstimator):
    """``fit(structures, X, structure_ids, site_index)``, ``predict_sites(structure)``, save / load.

    A scikit-learn estimator (``get_params`` / ``set_params`` / ``sklearn.base.clone``). ``soap``:
    descriptor parameters (None: defaults; the species are always those of the training structures,
    fitted as ``soap_``). Torch threads are the caller's (``torch.set_num_threads``).
    """

    def __init__(self, soap: SoapParams | None = None, hidden=(256, 256), dropout: float = 0.05,
                 epochs: int = 300, lr: float = 1e-3, batch_size: int = 32, weight_decay: float = 1e-5,
                 seed: int = 0, grid: EnergyGrid = DEFAULT_GRID):
        self.soap = soap
        self.hidden, self.dropout, self.epochs, self.lr = hidden, dropout, epochs, lr
        self.batch_size, self.weight_decay, self.seed = batch_size, weight_decay, seed
        self.grid = grid
        self.metadata: dict = {}

    def param_record(self) -> dict:
        """JSON-able network/training parameters (what the model file stores; grid and SOAP apart)."""
        return {"hidden": [int(h) for h in self.hidden], "dropout": self.dropout, "epochs": self.epochs,
                "lr": self.lr, "batch_size": self.batch_size, "weight_decay": self.weight_decay,
                "seed": self.seed}

    # -- features ------------------------------------------------------------------------------
    def features(self, structures: dict, structure_ids, site_index) -> np.ndarray:
        """SOAP rows for (structure_id, site_index) pairs, featurising each structure once."""
        sids = np.asarray(structure_ids).astype(str)
        site_index = np.asarray(site_index, int)
        F = np.empty((len(sids), self.featurizer_.n_features))
        for sid in dict.fromkeys(sids.tolist()):
            if sid not in structures:
                raise CorelossError(f"structure {sid!r} is not in the structures given")
            rows = np.nonzero(sids == sid)[0]
            F[rows] = self.featurizer_.featurize(structures[sid], site_index[rows])
        return F

    # -- training ------------------------------------------------------------------------------
    def fit(self, structures: dict, X, structure_ids, site_index, provenance: dict | None = None,
            progress=None):
        """Train on spectra ``X`` (n, grid.n) of the O sites ``(structure_ids[i], site_index[i])``;
        ``progress()`` is called once per epoch."""
        t0 = time.perf_counter()
        X = np.asarray(X, float)
        if X.ndim != 2 or X.shape[1] != self.grid.n:
            raise CorelossError(f"spectra must have {self.grid.n} points (grid of the model)")
        if len(X) < 2:
            raise CorelossError("need at least 2 spectra to train the forward model")
        n_structures = self._set_featurizer(structures, structure_ids)
        F = self.features(structures, structure_ids, site_index)
        return self._fit_features(F, X, n_structures=n_structures, provenance=provenance, t0=t0,
                                  progress=progress)

    def _set_featurizer(self, structures: dict, structure_ids) -> int:
        """SOAP over the species of the structures used; returns how many structures those are."""
        used = {k: structures[k] for k in dict.fromkeys(np.asarray(structure_ids).astype(str).tolist())
                if k in structures}
        params = self.soap or SoapParams()
        self.soap_ = SoapParams(species_of(used.values()) or params.species, params.r_cut, params.n_max,
                                params.l_max, params.sigma)
        self.featurizer_ = SoapFeaturizer(self.soap_)
        return len(used)

    def _fit_features(self, F: np.ndarray, X: np.ndarray, n_structures: int, provenance: dict | None = None,
                      t0: float | None = None, progress=None):
        """Train the network on SOAP rows ``F`` (featurizer already set) and spectra ``X``."""
        t0 = time.perf_counter() if t0 is None else t0
        self.f_mean_ = F.mean(axis=0)
        self.f_std_ = np.maximum(F.std(axis=0), 1e-6 * max(float(F.std()), 1e-12))
        torch.manual_seed(self.seed)
        self.net_ = SpectrumMLP(F.shape[1], self.grid.n, self.grid.step, tuple(self.hidden), self.dropout)
        scale = float(torch.as_tensor(np.nan_to_num(X), dtype=torch.float32).std()) or 1.0

        def loss(out, y, mask):  # scaled MSE over every grid point
            return torch.mean(((out - y) / scale) ** 2)

        hist = train_network(self.net_, (F - self.f_mean_) / self.f_std_, X, epochs=self.epochs, lr=self.lr,
                             batch_size=self.batch_size, weight_decay=self.weight_decay, seed=self.seed,
                             loss=loss, seed_torch=False, progress=progress)
        losses = hist["train"]
        conv = SpectralConventions.from_provenance(provenance)
        self.conventions_ = SpectralConventions(**{**conv.__dict__, "grid": self.grid})
        self.metadata = {
            "format": FORMAT, "coreloss_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "descriptor": {"kind": "SOAP (dscribe)", **self.soap_.to_dict(), "centre": "O site"},
            "params": self.param_record(), "grid": self.grid.to_dict(),
            "conventions": self.conventions_.to_dict(), "n_train": int(len(X)),
            "n_structures": int(n_structures), "final_train_loss": losses[-1],
            "train_seconds": round(time.perf_counter() - t0, 2), "training_provenance": provenance or {},
            "output": "onset-aligned, area-normalised spectrum (1/eV) on grid (E - onset, eV)",
        }
        return self

    def _check_fitted(self):
        if not hasattr(self, "net_"):
            raise CorelossError("the forward model is not trained: call fit() or ForwardModel.load()")

    # -- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def predict_features(self, F: np.ndarray) -> np.ndarray:
        """Spectra (n, grid.n) for SOAP rows ``F``."""
        self._check_fitted()
        Ft = torch.as_tensor((np.atleast_2d(F) - self.f_mean_) / self.f_std_, dtype=torch.float32)
        return self.net_(Ft).numpy().astype(float)

    def predict(self, structure, site_indices) -> np.ndarray:
        """Spectra (n, grid.n) of the O atoms ``site_indices`` of ``structure``."""
        self._check_fitted()
        return self.predict_features(self.featurizer_.featurize(structure, site_indices))

    def predict_sites(self, structure, volumes: bool = True):
        """``(sites, spectra)``: the symmetry-inequivalent O sites (:func:`coreloss.sites.o_sites`;
        ``volumes=False``: without their Voronoi volumes, faster) and their spectra (n_sites, grid.n)."""
        from coreloss.sites import o_sites

        sites = o_sites(structure, volumes=volumes)
        return sites, self.predict(structure, [s.index for s in sites])

    def predict_structure(self, structure):
        """``(sites, spectra, total)``; ``total`` is the multiplicity-weighted mean spectrum (unit area)."""
        sites, spectra = self.predict_sites(structure)
        w = np.array([s.multiplicity for s in sites], float)
        return sites, spectra, (w[:, None] * spectra).sum(axis=0) / w.sum()

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path) -> Path:
        """One file (atomic write): weights, SOAP parameters, feature scaling, grid, metadata."""
        self._check_fitted()
        path = Path(path)
        blob = {"format": FORMAT, "metadata": json.dumps(self.metadata), "soap": json.dumps(self.soap_.to_dict()),
                "params": json.dumps(self.param_record()), "grid": json.dumps(self.grid.to_dict()),
                "f_mean": torch.as_tensor(self.f_mean_), "f_std": torch.as_tensor(self.f_std_),
                "weights": self.net_.state_dict()}
        return save_atomic(blob, path)

    @classmethod
    def load(cls, path) -> "ForwardModel":
        blob = load_blob(path, FORMAT, _KEYS, "coreloss forward model")
        params = json.loads(blob["params"])
        params["hidden"] = tuple(params["hidden"])
        grid = EnergyGrid.from_dict(json.loads(blob["grid"]))
        obj = cls(soap=SoapParams(**json.loads(blob["soap"])), grid=grid, **params)
        obj.soap_ = obj.soap
        obj.featurizer_ = SoapFeaturizer(obj.soap_)
        obj.f_mean_, obj.f_std_ = blob["f_mean"].numpy(), blob["f_std"].numpy()
        obj.net_ = SpectrumMLP(len(obj.f_mean_), grid.n, grid.step, obj.hidden, obj.dropout)
        obj.net_.load_state_dict(blob["weights"])
        obj.net_.eval()
        obj.metadata = json.loads(blob["metadata"])
        obj.conventions_ = SpectralConventions.of_model(obj)
        return obj


def cross_validate_params(structures: dict, X, structure_ids, site_index, candidates: list[dict],
                          n_splits: int = 3, grid: EnergyGrid = DEFAULT_GRID, progress=None,
                          groups=None) -> list[dict]:
    """Group k-fold score of each candidate parameter set of :class:`ForwardModel`; folds by
    ``groups`` (:func:`coreloss.evaluate.split_groups`: snapshots of one parent together), else by structure.

    SOAP rows are computed once. Returns, per candidate, ``{"params", "cosine_mean", "fold_cosine"}``
    (mean cosine similarity of the held-out folds' spectra); pick the best on *training* data only.
    """
    from coreloss.evaluate import group_kfold, spectrum_metrics

    X = np.asarray(X, float)
    sids = np.asarray(structure_ids).astype(str)
    base = ForwardModel(grid=grid)
    base._set_featurizer(structures, sids)  # SOAP rows once, shared by every candidate and fold
    F = base.features(structures, sids, site_index)
    folds = group_kfold(sids if groups is None else np.asarray(groups).astype(str), n_splits)
    out = []
    for cand in candidates:
        scores = []
        for tr, va in folds:
            fm = clone(base).set_params(**cand)
            fm.soap_, fm.featurizer_ = base.soap_, base.featurizer_
            fm._fit_features(F[tr], X[tr], n_structures=len(set(sids[tr].tolist())))
            scores.append(spectrum_metrics(X[va], fm.predict_features(F[va]), grid)["cosine_mean"])
            if progress:
                progress(cand, len(scores), scores[-1])
        out.append({"params": cand, "cosine_mean": float(np.mean(scores)), "fold_cosine": scores})
    return out
