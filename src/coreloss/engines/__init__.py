"""Engines: structure + O site -> spectrum + electronic labels. See :mod:`coreloss.engines.base`.

The one registry: :func:`get_engine` takes a built-in name (``_BUILTIN``), a name from the
``coreloss.engines`` entry-point group, or an import path ``module:Class`` of an
:class:`~coreloss.engines.base.Engine` subclass. Adding an engine: write a module with an
``Engine`` subclass and add one line to ``_BUILTIN`` (or expose it through the entry-point group).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from coreloss.engines.base import Engine, EngineError, SiteResult
from coreloss.errors import CorelossError

_BUILTIN = {
    "xtb": "coreloss.engines.xtb:XTBEngine",
    "gpaw": "coreloss.engines.gpaw:GPAWEngine",
    "gpaw-lcao": "coreloss.engines.gpaw_lcao:GPAWLCAOEngine",
}


def available_engines() -> list[str]:
    names = set(_BUILTIN)
    names.update(ep.name for ep in entry_points(group="coreloss.engines"))
    return sorted(names)


def engine_class(name: str) -> type[Engine]:
    """The :class:`Engine` subclass registered as ``name`` (or at import path ``module:Class``)."""
    target = _BUILTIN.get(name)
    if target is None and ":" not in name:
        eps = [ep for ep in entry_points(group="coreloss.engines") if ep.name == name]
        if not eps:
            raise CorelossError(f"unknown engine {name!r}; available: {', '.join(available_engines())}")
        cls = eps[0].load()
    else:
        mod, _, cls_name = (target or name).partition(":")
        try:
            cls = getattr(importlib.import_module(mod), cls_name)
        except ImportError as exc:
            raise CorelossError(f"engine {name!r} is not usable here: {exc}") from exc
        except AttributeError as exc:
            raise CorelossError(f"cannot import engine {name!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise CorelossError(f"{name!r} is not a coreloss Engine subclass")
    return cls


def get_engine(name: str, **params) -> Engine:
    """Instantiate the engine called ``name`` with ``params`` (see :func:`engine_class`); unknown
    parameters or values of the wrong type raise one :class:`CorelossError`."""
    cls = engine_class(name)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise CorelossError(f"bad {name} engine parameter: {exc}") from exc


__all__ = ["Engine", "EngineError", "SiteResult", "get_engine", "engine_class", "available_engines"]
