"""Optimised BLAS/LAPACK for tblite's worker processes.

The tblite wheels on PyPI bundle the *reference* (netlib) BLAS and LAPACK
(``tblite.libs/libblas-*.so``). The xTB SCF is dominated by one generalised eigenproblem per
cycle, which the reference LAPACK solves about 8x slower than OpenBLAS: a 192-atom zeolite SCF
takes 59 s with the bundled libraries and 16 s with OpenBLAS preloaded, with the same total
energy to 11 digits (BENCHMARKS.md, "xtb linear algebra").

A shared library can only be swapped before a process starts, so :func:`preload_environ`
returns the environment variables that make a *new* process (a Dask worker) resolve the BLAS
and LAPACK symbols from the system OpenBLAS (``LD_PRELOAD``), single-threaded. Nothing is
changed when tblite does not bundle the reference BLAS, when no OpenBLAS is installed
(Debian: ``libopenblas0``; the project's ``scripts/install_system_deps.sh`` installs it), or
when ``CORELOSS_BLAS=bundled`` is set. :func:`blas_in_use` reports what the current process
has loaded, for provenance.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: set to "bundled" to keep tblite's own reference BLAS in worker processes
ENV_SWITCH = "CORELOSS_BLAS"
_OPENBLAS_CANDIDATES = ("/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
                        "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
                        "/usr/lib64/libopenblas.so.0", "/usr/lib/libopenblas.so.0",
                        "/usr/local/lib/libopenblas.so.0")


def bundled_reference_blas() -> Path | None:
    """Path of the reference BLAS bundled with the tblite wheel, or None."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("tblite")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    libs = Path(list(spec.submodule_search_locations)[0]).parent / "tblite.libs"
    found = sorted(libs.glob("libblas*.so*")) if libs.is_dir() else []
    return found[0] if found else None


def system_openblas() -> str | None:
    """Path of an installed OpenBLAS shared library, or None."""
    for path in _OPENBLAS_CANDIDATES:
        if os.path.exists(path):
            return path
    from ctypes.util import find_library
    name = find_library("openblas")
    return name if name and os.path.isabs(name) and os.path.exists(name) else None


def preload_environ(environ: dict | None = None) -> dict[str, str]:
    """Environment variables to add for a new worker process (empty if nothing to change)."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or environ.get(ENV_SWITCH, "").lower() == "bundled":
        return {}
    openblas = system_openblas()
    if openblas is None or bundled_reference_blas() is None:
        return {}
    current = [p for p in environ.get("LD_PRELOAD", "").split() if p]
    if openblas not in current:
        current.insert(0, openblas)
    return {"LD_PRELOAD": " ".join(current), "OPENBLAS_NUM_THREADS": "1"}


def blas_in_use() -> str:
    """Which BLAS the current process has mapped: "openblas", "tblite bundled reference" or "unknown"."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown"
    if "libopenblas" in maps:
        return "openblas"
    if "tblite.libs/libblas" in maps:
        return "tblite bundled reference"
    return "unknown"
