"""coreloss.fileio.atomic_write: the one crash-safe writer (complete file or none, usual mode)."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from coreloss.fileio import atomic_write, atomic_write_bytes, stale_temp_files


def test_callback_writer_replaces_atomically(tmp_path):
    out = tmp_path / "sub" / "a.h5"

    def write(tmp):
        with h5py.File(tmp, "w") as fh:
            fh["x"] = np.arange(3)

    assert atomic_write(out, write) == out
    with h5py.File(out) as fh:
        assert fh["x"][:].tolist() == [0, 1, 2]
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.h5"]  # no temp file left


def test_failed_write_keeps_the_old_file(tmp_path):
    out = atomic_write_bytes(tmp_path / "r.json", b"old")

    def broken(tmp):
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(out, broken)
    assert out.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_stale_temp_files_names_only_this_outputs(tmp_path):
    out = tmp_path / "d.h5"

    def killed(tmp):
        raise KeyboardInterrupt  # removed on the way out, like any failure

    with pytest.raises(KeyboardInterrupt):
        atomic_write(out, killed)
    assert stale_temp_files(out) == []
    left = tmp_path / ".d.h5.ab12cd_9.tmp"  # what a kill -9 mid-write leaves
    for name in (left.name, ".d.h5.bak.ab12cd_9.tmp", ".d.h5x.ab12cd_9.tmp", "d.h5.tmp"):
        (tmp_path / name).write_bytes(b"half")
    assert stale_temp_files(out) == [left]
    assert stale_temp_files(tmp_path / "missing" / "d.h5") == []
