"""GPAW PAW setups: the standard ones (``gpaw-data``) and O 1s core-hole setups made on first use.

Core-hole setups are generated offline with GPAW's own atomic generator
(:class:`gpaw.atom.generator.Generator`, the code behind
``gpaw-setup O -f PBE --name=hch1s --core-hole=1s,0.5``) with GPAW's default O parameters,
about a second each, and cached as ``<cache>/gpaw-setups/<gpaw version>/O.<name>.<XC>``.
The cache is ``$CORELOSS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/coreloss`` or
``~/.cache/coreloss``. :func:`activate` puts the cache in front of GPAW's setup search path
(``gpaw.setup_paths``; standard setups come from the ``gpaw-data`` package or ``$GPAW_SETUP_PATH``).
"""

from __future__ import annotations

import os
from pathlib import Path

from coreloss.errors import CorelossError
from coreloss.fileio import atomic_write

#: name -> (n, l, occupation of the core hole); GPAW's conventional names
CORE_HOLES = {"hch1s": (1, 0, 0.5), "fch1s": (1, 0, 1.0), "xch1s": (1, 0, 1.0)}


def cache_dir() -> Path:
    """Directory holding coreloss' generated GPAW setups for the installed GPAW version."""
    import gpaw

    root = os.environ.get("CORELOSS_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "coreloss"
    return base / "gpaw-setups" / gpaw.__version__


def setup_file(name: str, symbol: str = "O", xc: str = "PBE") -> Path:
    """Path of the cached setup ``<symbol>.<name>.<xc>`` (may not exist yet)."""
    return cache_dir() / f"{symbol}.{name}.{xc}"


def ensure_core_hole_setup(name: str = "hch1s", symbol: str = "O", xc: str = "PBE") -> Path:
    """Generate the core-hole setup ``name`` (see :data:`CORE_HOLES`) unless cached; return its path."""
    if name not in CORE_HOLES:
        raise CorelossError(f"unknown core-hole setup {name!r}; known: {', '.join(CORE_HOLES)}")
    path = setup_file(name, symbol, xc)
    if path.is_file():
        return path
    from gpaw.atom.configurations import parameters
    from gpaw.atom.generator import Generator

    if symbol not in parameters:
        raise CorelossError(f"GPAW has no default generator parameters for {symbol}")
    gen = Generator(symbol, xc, scalarrel=True, corehole=CORE_HOLES[name], nofiles=True, txt=None)
    data = gen.run(write_xml=False, name=name, **dict(parameters[symbol]))
    return atomic_write(path, data.write_xml)  # concurrent workers never see half a file


def activate(names=("hch1s", "fch1s"), xc: str = "PBE") -> Path:
    """Make the standard and the cached core-hole setups visible to GPAW; return the cache dir."""
    import gpaw

    for name in names:
        ensure_core_hole_setup(name, "O", xc)
    folder = str(cache_dir())
    if folder not in map(str, gpaw.setup_paths):
        gpaw.setup_paths.insert(0, folder)
    if not any(Path(p, f"O.{xc}").exists() or Path(p, f"O.{xc}.gz").exists()
               for p in gpaw.setup_paths):
        raise CorelossError("GPAW's standard PAW setups were not found: install the 'gpaw-data' "
                            "package or set GPAW_SETUP_PATH")
    return Path(folder)
