"""Crash-safe file writes shared by every module that writes results."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Callable

from coreloss.errors import CorelossError


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write: Callable[[str], object]) -> Path:
    """Write ``path`` through ``write(tmp)`` (a callback that writes the file named ``tmp``, e.g.
    ``h5py.File``, ``torch.save``, ``fig.savefig``), then fsync and ``os.replace``.

    The temp file ``.<name>.XXXXXXXX.tmp`` sits in the same folder (:func:`stale_temp_files`). The file is either complete or absent
    (also after kill -9) and gets the usual mode (0666 minus the umask; ``mkstemp`` alone would
    leave it 0600). The one crash-safe writer of coreloss; :func:`atomic_write_bytes` is its
    shorthand for bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def stale_temp_files(path) -> list[Path]:
    """Temp files an :func:`atomic_write` of ``path`` left behind (killed mid-write); only call
    this while no other process writes ``path``."""
    path = Path(path)
    pat = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")
    if not path.parent.is_dir():
        return []
    return [p for p in path.parent.iterdir() if pat.fullmatch(p.name)]


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` crash-safely (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _blocking_ancestor(path: Path) -> tuple[Path | None, Path]:
    """The first existing ancestor of ``path`` that is not a folder (or None), and the nearest
    existing folder above ``path``."""
    for parent in path.absolute().parents:
        if parent.exists():
            return (None if parent.is_dir() else parent), parent
    return None, Path("/")


def check_output_dir(path, option: str = "--out") -> Path:
    """Check, before any work, that folder ``path`` can be created or written (CorelossError if not).

    Refused: ``path`` is an existing file, lies under a file, or its nearest existing folder is not
    writable. Nothing is created.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CorelossError(f"{option} {path} is a file, expected a folder")
    blocker, base = _blocking_ancestor(path)
    if blocker is not None:
        raise CorelossError(f"{option} {path}: {blocker} is a file, not a folder")
    target = path if path.exists() else base
    if not os.access(target, os.W_OK | os.X_OK):
        raise CorelossError(f"{option} {path}: {target} is not writable")
    return path


def check_output_file(path, option: str = "--out") -> Path:
    """Check, before any work, that file ``path`` can be written (its folder can be created/written).

    Refused: ``path`` is a folder, or its folder is a file / lies under a file / is not writable.
    Whether an existing file may be replaced is the caller's decision.
    """
    path = Path(path)
    if path.is_dir():
        raise CorelossError(f"{option} {path} is a folder, expected a file name")
    blocker, base = _blocking_ancestor(path)
    if blocker is not None:
        raise CorelossError(f"{option} {path}: {blocker} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise CorelossError(f"{option} {path}: {base} is not writable")
    return path


def check_input_file(path, option: str = "FILE") -> Path:
    """Check that ``path`` is an existing, readable file (CorelossError with one line if not)."""
    path = Path(path)
    if not path.exists():
        raise CorelossError(f"{option} {path}: no such file")
    if path.is_dir():
        raise CorelossError(f"{option} {path}: is a directory, expected a file")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise CorelossError(f"{option} {path}: cannot be read ({exc.strerror or exc})") from None
    return path


def require_keys(doc: dict, keys, what: str) -> None:
    """CorelossError naming the missing ``keys`` of a loaded file (right format tag, damaged body)."""
    missing = [k for k in keys if k not in doc]
    if missing:
        raise CorelossError(f"{what} is damaged (missing {', '.join(missing)})")
