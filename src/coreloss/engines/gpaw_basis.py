"""GPAW LCAO basis sets: the shipped ``dzp`` and any other type generated offline on first use.

``gpaw-data`` ships only ``dzp`` bases for the standard setups. Every other basis (``tzdp``,
``szp``, ...) and every basis of a core-hole setup (GPAW looks them up by setup name, e.g.
``O.hch1s.tzdp.basis``) is generated here with GPAW's own basis generator
(:class:`gpaw.atom.basis.BasisMaker`, the code behind ``gpaw basis`` / ``gpaw-basis``; default
split-valence tail norms 0.16/0.3/0.6, energy shift 0.1 eV, smooth confinement 12/0.6) from the
setup file itself, a few seconds each, and cached next to the core-hole setups
(:func:`coreloss.engines.gpaw_setups.cache_dir`) as ``<symbol>[.<setup>].<type>.basis``, written
atomically. Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from coreloss.engines.gpaw_setups import activate, cache_dir, ensure_core_hole_setup
from coreloss.errors import CorelossError
from coreloss.fileio import atomic_write

#: basis types GPAW ships in gpaw-data for the standard setups
SHIPPED = ("dzp",)


def basis_file(symbol: str, basis: str = "tzdp", setup: str | None = None) -> Path:
    """Cache path of the basis ``basis`` for ``symbol`` (``setup``: a core-hole setup name)."""
    stem = ".".join([symbol, *([setup] if setup else []), basis, "basis"])
    return cache_dir() / stem


def _standard_setup_path(symbol: str, xc: str) -> str:
    from gpaw.setup_data import search_for_file

    activate((), xc)
    try:
        path, _ = search_for_file(f"{symbol}.{xc}")
    except RuntimeError as exc:
        raise CorelossError(f"no standard GPAW setup {symbol}.{xc} (gpaw-data): {exc}") from exc
    return path


def ensure_basis(symbol: str, basis: str = "tzdp", setup: str | None = None,
                 xc: str = "PBE") -> Path | None:
    """Make the basis ``basis`` for ``symbol`` (standard setup, or core-hole ``setup``) available.

    Returns the cached file, or None for a basis GPAW ships (``dzp`` of a standard setup).
    """
    from gpaw.atom.basisfromfile import BasisInfo, read_setup_and_generate_basis

    if setup is None and basis in SHIPPED:
        return None
    path = basis_file(symbol, basis, setup)
    if path.is_file():
        return path
    try:
        info = BasisInfo.from_name(basis)
    except Exception as exc:  # noqa: BLE001 - GPAW raises assorted errors for bad names
        raise CorelossError(f"unknown basis type {basis!r} (e.g. dzp, tzdp, tzp, szp)") from exc
    src = ensure_core_hole_setup(setup, symbol, xc) if setup else _standard_setup_path(symbol, xc)
    _, bas = read_setup_and_generate_basis(
        str(src), lambda bm: bm.generate(info.zetacount, info.polcount, txt=None), name=None)
    bas = dataclasses.replace(bas, name=".".join([*([setup] if setup else []), basis]))
    return atomic_write(path, lambda tmp: _write_basis(bas, tmp))  # workers never see half a file


def _write_basis(bas, tmp: str) -> None:
    with open(tmp, "w") as fh:
        bas.write_to(fh)


def ensure_bases(symbols, basis: str = "tzdp", core_holes=("hch1s", "fch1s"),
                 xc: str = "PBE") -> dict[str, str]:
    """Bases for every element of ``symbols`` and for the O core-hole setups; name -> file."""
    out = {}
    for sym in sorted(set(symbols)):
        p = ensure_basis(sym, basis, None, xc)
        out[sym] = str(p) if p else f"gpaw-data {sym}.{basis}.basis"
    for name in core_holes:
        out[f"O.{name}"] = str(ensure_basis("O", basis, name, xc))
    return out
