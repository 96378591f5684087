"""Model files: one torch file, written atomically (temp file + rename)."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch


def save_atomic(blob: dict, path) -> Path:
    """``torch.save`` ``blob`` to ``path`` so that the file is either complete or absent."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save(blob, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, path)
    return path
