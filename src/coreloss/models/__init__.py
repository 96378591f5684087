"""Models: inverse (spectrum -> six O-site properties, with uncertainty and OOD score) and
forward (O-site local environment -> spectrum). Pretrained copies ship in ``coreloss/data``.

>>> from coreloss.models import InverseModel, default_inverse_model_path   # doctest: +SKIP
>>> model = InverseModel.load(default_inverse_model_path())                 # doctest: +SKIP
>>> mean, std = model.predict(X)                                            # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from coreloss.errors import CorelossError

_DATA = Path(__file__).resolve().parent.parent / "data"


def _shipped(name: str, what: str) -> Path:
    path = _DATA / name
    if not path.is_file():
        raise CorelossError(f"no pretrained {what} model is installed ({path} missing); "
                            "train one with `coreloss train` and pass --model")
    return path


def default_inverse_model_path() -> Path:
    """Path of the shipped pretrained inverse model (``coreloss/data/inverse_model.pt``)."""
    return _shipped("inverse_model.pt", "inverse")


#: keywords ``--model`` accepts for the shipped inverse models
SHIPPED_INVERSE = {"default": "inverse_model.pt", "xtb": "inverse_model_xtb.pt"}


def inverse_model_path(spec=None) -> Path:
    """The inverse model file ``spec`` names: None or ``"default"``: the shipped default; ``"xtb"``:
    the shipped model trained on xtb spectra only (the earlier default; it flags DFT-like spectra);
    anything else: a file path (returned as given)."""
    if spec is None or str(spec) in SHIPPED_INVERSE:
        return _shipped(SHIPPED_INVERSE[str(spec or "default")], f"{spec or 'default'} inverse")
    return Path(spec)


def default_forward_model_path() -> Path:
    """Path of the shipped pretrained forward model (``coreloss/data/forward_model.pt``)."""
    return _shipped("forward_model.pt", "forward")


def __getattr__(name):  # lazy: importing coreloss.models must not import torch
    if name == "InverseModel":
        from coreloss.models.inverse import InverseModel
        return InverseModel
    if name == "ForwardModel":
        from coreloss.models.forward import ForwardModel
        return ForwardModel
    raise AttributeError(name)


__all__ = ["InverseModel", "ForwardModel", "default_inverse_model_path", "default_forward_model_path",
           "inverse_model_path"]
