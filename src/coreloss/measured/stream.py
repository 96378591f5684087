"""Stream the spectra of a :class:`MeasuredSpectra` through a function, block by block.

:func:`iter_blocks` cuts the spectra into blocks of at most ``batch`` rows (flat C order of the
navigation axes); lazy (dask) data are read one block at a time along the first navigation axis,
so memory is bounded by the block size, not the image size. :func:`map_blocks` runs a function
on the blocks on a few threads (numpy, scipy and torch release the GIL in their kernels) and
yields the results in order, with at most ``2 * workers`` blocks in flight.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from coreloss.errors import CorelossError
from coreloss.measured.readers import MeasuredSpectra


def default_workers() -> int:
    """Threads for block processing: the CPU cores this process may use, at most 2."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(2, n))


def _read_rows(measured: MeasuredSpectra, y0: int | None = None, y1: int | None = None) -> np.ndarray:
    """Indices ``y0:y1`` of the first navigation axis of lazy data (all data without them)."""
    import dask
    part = measured.data if y0 is None else measured.data[y0:y1]
    try:
        with dask.config.set(scheduler="synchronous"):  # this thread reads; no nested pool
            return np.asarray(part.compute())
    except Exception as exc:  # truncated / unreadable chunk in the file
        raise CorelossError(f"{measured.source}: data could not be read ({type(exc).__name__}: "
                            f"{str(exc)[:120]}); the file may be truncated") from None


def iter_blocks(measured: MeasuredSpectra, batch: int):
    """Yield ``(a, b, block)``: spectra ``a:b`` (flat C order) as an array of ``<= batch`` rows (at
    least one row of the first navigation axis). Lazy (dask) data are read one block at a time."""
    n, ne = measured.n_spectra, measured.energy.size
    if not measured.lazy:
        flat = measured.data.reshape(n, ne)
        for a in range(0, n, batch):
            yield a, min(a + batch, n), flat[a:a + batch]
        return
    data = measured.data
    if data.ndim == 1:
        yield 0, 1, _read_rows(measured)[None]  # one spectrum
        return
    per = int(np.prod(data.shape[1:-1], dtype=int))  # spectra per index of the first nav axis
    rows = max(1, batch // per)
    chunk = max(1, int(data.chunks[0][0]))  # file chunks: read whole chunk rows, each once
    if chunk * per * data.shape[-1] * data.dtype.itemsize <= 256 * 2**20:  # a band of <= 256 MiB
        rows = chunk * max(1, round(rows / chunk))
    for y0 in range(0, data.shape[0], rows):
        y1 = min(y0 + rows, data.shape[0])
        band = _read_rows(measured, y0, y1).reshape(-1, ne)
        for a in range(0, len(band), batch):  # a band above `batch` spectra: split in memory
            yield y0 * per + a, y0 * per + min(a + batch, len(band)), band[a:a + batch]


def _timed(blocks, timing: dict):
    """Pass ``blocks`` through, adding the time spent producing them to ``timing["read_s"]``."""
    it = iter(blocks)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            timing["read_s"] = timing.get("read_s", 0.0) + time.perf_counter() - t0
        yield item


def map_blocks(measured: MeasuredSpectra, fn, batch: int = 4096, workers: int | None = None,
               progress: str | None = None, timing: dict | None = None):
    """Yield ``(a, b, fn(a, b, block))`` for every block of :func:`iter_blocks`, in order.

    ``workers`` threads (default :func:`default_workers`); blocks are read in the calling thread
    (time spent reading added to ``timing["read_s"]`` when a dict is given).
    ``progress``: a description for a rich progress bar (shown when there is more than one block).
    """
    workers = workers or default_workers()
    blocks = iter_blocks(measured, batch) if timing is None else _timed(iter_blocks(measured, batch), timing)
    n = measured.n_spectra
    bar = task = None
    if progress and n > batch:
        from rich.progress import Progress
        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(progress, total=n)
    try:
        if workers == 1:
            for a, b, block in blocks:
                yield a, b, fn(a, b, block)
                if bar is not None:
                    bar.advance(task, b - a)
            return
        with ThreadPoolExecutor(workers) as pool:
            pending: deque = deque()
            for a, b, block in blocks:
                pending.append((a, b, pool.submit(fn, a, b, block)))
                while len(pending) >= 2 * workers:  # bounded: read ahead at most 2 blocks per thread
                    a0, b0, fut = pending.popleft()
                    yield a0, b0, fut.result()
                    if bar is not None:
                        bar.advance(task, b0 - a0)
            while pending:
                a0, b0, fut = pending.popleft()
                yield a0, b0, fut.result()
                if bar is not None:
                    bar.advance(task, b0 - a0)
    finally:
        if bar is not None:
            bar.stop()
