"""Model files: one torch file, written atomically, read with a format check.

The inverse model's file layout (:func:`inverse_blob`, :func:`inverse_from_blob`) lives here so
that :mod:`coreloss.models.inverse` holds the estimator alone.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

from coreloss.errors import CorelossError
from coreloss.fileio import atomic_write_bytes, require_keys


def save_atomic(blob: dict, path) -> Path:
    """``torch.save`` ``blob`` to ``path`` so that the file is either complete or absent."""
    buf = io.BytesIO()
    torch.save(blob, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_blob(path, fmt: str, keys, what: str) -> dict:
    """The dict saved in ``path`` (tensors only, no code is unpickled), checked to be format ``fmt``
    with all of ``keys``; a clear :class:`CorelossError` naming ``what`` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CorelossError(f"model file not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise CorelossError(f"{path} is not a {what} ({exc.__class__.__name__})") from exc
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise CorelossError(f"{path} is not a {what} (format {fmt!r} expected)")
    require_keys(blob, keys, f"{path}: {what}")
    return blob


def inverse_blob(model) -> dict:
    """The file content of a fitted :class:`~coreloss.models.inverse.InverseModel`."""
    from coreloss.models.inverse import FORMAT

    arrays = {"x_mean": model.x_mean_, "y_mean": model.y_mean_, "y_std": model.y_std_,
              "calibration": model.calibration_,
              "onset_norm": [model.onset_mean_, model.onset_std_],
              **{f"ood_{k}": np.asarray(v, float) for k, v in model.ood_.state().items()},
              **{f"lat_{k}": np.asarray(v, np.float32 if k == "ref" else float)
                 for k, v in model.latent_.state().items()},
              **{f"comb_{k}": np.asarray(v, float) for k, v in model.combined_ood_.state().items()},
              **({f"skn_{k}": np.asarray(v, float) for k, v in model.spectrum_knn_.state().items()}
                 if hasattr(model, "spectrum_knn_") else {})}
    ens = model.ensemble_.state()
    return {"format": FORMAT, "metadata": json.dumps(model.metadata), "x_scale": model.x_scale_,
            "params": json.dumps(model.param_record()), "grid": json.dumps(model.grid.to_dict()),
            "arrays": {k: torch.as_tensor(np.asarray(v, float)) for k, v in arrays.items()},
            "ensemble": {**{k: v for k, v in ens.items() if k != "weights"},
                         "net_kwargs": json.dumps({k: list(v) if isinstance(v, tuple) else v
                                                   for k, v in model.ensemble_.net_kwargs.items()})},
            "weights": ens["weights"]}


def inverse_from_blob(cls, blob: dict, path, grid=None):
    """An ``cls`` (InverseModel) rebuilt from :func:`inverse_blob`'s content; with ``grid``, refuse a
    model trained on another grid."""
    from coreloss.conventions import SpectralConventions
    from coreloss.labels import LABEL_NAMES
    from coreloss.models.ensemble import DeepEnsemble
    from coreloss.models.forest import FOREST_ARCHS, ForestEnsemble
    from coreloss.models.ood import CombinedOOD, LatentKNN, PCAOutlierScore, SpectrumKNN
    from coreloss.spectra import EnergyGrid

    names = cls._get_param_names()
    params = {k: v for k, v in json.loads(blob["params"]).items() if k in names}
    for k in ("hidden", "snrs", "augment"):
        if k in params:
            params[k] = tuple(params[k])
    model_grid = EnergyGrid.from_dict(json.loads(blob["grid"]))
    if grid is not None and not model_grid.matches(grid):
        raise CorelossError(f"model {path} was trained on grid {model_grid.to_dict()}, not "
                            f"{grid.to_dict()}; resample the spectra to the model's grid")
    obj = cls(grid=model_grid, **params)
    obj.training_fwhm_ = obj.training_fwhm
    obj.metadata = json.loads(blob["metadata"])
    obj.conventions_ = SpectralConventions.of_model(obj)
    a = {k: v.numpy() for k, v in blob["arrays"].items()}
    obj.x_mean_, obj.y_mean_, obj.y_std_ = a["x_mean"], a["y_mean"], a["y_std"]
    obj.x_scale_, obj.calibration_ = float(blob["x_scale"]), a["calibration"]
    obj.ood_ = PCAOutlierScore.from_state({k[4:]: v for k, v in a.items() if k.startswith("ood_")})
    obj.onset_mean_, obj.onset_std_ = (float(v) for v in a.get("onset_norm", (0.0, 1.0)))
    if "comb_flag_mask" in a and "lat_ref" in a:  # else: a model from before the combined score
        obj.latent_ = LatentKNN.from_state({k[4:]: v for k, v in a.items() if k.startswith("lat_")})
        obj.combined_ood_ = CombinedOOD.from_state({k[5:]: v for k, v in a.items() if k.startswith("comb_")})
    if "skn_ref" in a:
        obj.spectrum_knn_ = SpectrumKNN.from_state({k[4:]: v for k, v in a.items() if k.startswith("skn_")})
    ens = dict(blob["ensemble"])
    ens["net_kwargs"] = json.loads(ens["net_kwargs"])
    kind = ForestEnsemble if ens["arch"] in FOREST_ARCHS else DeepEnsemble
    obj.ensemble_ = kind.from_state({**ens, "weights": blob["weights"]})
    obj.label_names = list(obj.metadata.get("label_names", LABEL_NAMES))
    obj.label_units = list(obj.metadata.get("label_units", obj.label_units))
    return obj
