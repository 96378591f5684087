"""Model files: one torch file, written atomically."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from coreloss.fileio import atomic_write_bytes


def save_atomic(blob: dict, path) -> Path:
    """``torch.save`` ``blob`` to ``path`` so that the file is either complete or absent."""
    buf = io.BytesIO()
    torch.save(blob, buf)
    return atomic_write_bytes(path, buf.getvalue())
