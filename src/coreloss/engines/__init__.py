"""Engines: structure + O site -> spectrum + electronic labels. See :mod:`coreloss.engines.base`.

Adding an engine: write a module with an :class:`~coreloss.engines.base.Engine` subclass and add
one line to ``_BUILTIN`` (or expose it through the ``coreloss.engines`` entry-point group).
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


def get_engine(name: str, **params) -> Engine:
    """Instantiate the engine called ``name`` with ``params``."""
    target = _BUILTIN.get(name)
    if target is None:
        eps = [ep for ep in entry_points(group="coreloss.engines") if ep.name == name]
        if not eps:
            raise CorelossError(f"unknown engine {name!r}; available: {', '.join(available_engines())}")
        cls = eps[0].load()
    else:
        mod, cls_name = target.split(":")
        try:
            cls = getattr(importlib.import_module(mod), cls_name)
        except ImportError as exc:
            raise CorelossError(f"engine {name!r} is not usable here: {exc}") from exc
    return cls(**params)


__all__ = ["Engine", "EngineError", "SiteResult", "get_engine", "available_engines"]
