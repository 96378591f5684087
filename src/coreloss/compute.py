"""One structure through an engine: the unit of work of a dataset build (one Dask task).

:func:`compute_structure` runs an engine on the symmetry-unique O sites of one structure record and
returns the rows (aligned spectrum on the grid, raw spectrum, the six labels, provenance) and the
failures the part files of :mod:`coreloss.dataset_store` hold. It never raises for a computational
failure: a site that fails becomes a failure record with its reason.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from coreloss.labels import ELECTRONIC_LABELS, LABEL_NAMES
from coreloss.spectra import DEFAULT_GRID, EnergyGrid

__all__ = ["compute_structure"]


def _reason(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {msg}"[:500]


def compute_structure(engine, record: dict, grid: EnergyGrid = DEFAULT_GRID,
                      only_sites=None) -> dict:
    """Run ``engine`` on the unique O sites of one structure record (the Dask task).

    Returns ``{structure_id, record, sites: [row], failures: [..], seconds}`` (see
    :class:`coreloss.dataset_store.Table`). Never raises for a computational failure.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from pymatgen.core import Structure

    from coreloss.engines.base import EngineError
    from coreloss.sites import o_sites

    sid = record["id"]
    out = {"structure_id": sid, "record": record, "sites": [], "failures": []}
    t0 = time.perf_counter()

    def fail(idx, reason):
        out["failures"].append({"structure_id": sid, "site_index": int(idx), "reason": reason})

    try:
        structure = Structure.from_dict(record["structure"])
        sites = o_sites(structure)
    except Exception as exc:  # noqa: BLE001 - recorded, never fatal
        fail(-1, "site analysis failed: " + _reason(exc))
        return out
    if only_sites is not None and -1 not in only_sites:
        sites = [s for s in sites if s.index in set(only_sites)]
    if not sites:
        out["seconds"] = time.perf_counter() - t0
        return out
    try:
        results = engine.compute_sites(structure, [s.index for s in sites])
        if len(results) != len(sites):
            raise EngineError(f"engine returned {len(results)} results for {len(sites)} sites")
    except Exception as exc:  # noqa: BLE001
        for s in sites:
            fail(s.index, _reason(exc))
        out["seconds"] = time.perf_counter() - t0
        return out
    for site, res in zip(sites, results):
        if isinstance(res, BaseException):
            fail(site.index, _reason(res))
            continue
        try:
            out["sites"].append(_row(sid, site, res, grid))
        except Exception as exc:  # noqa: BLE001
            fail(site.index, "bad engine output: " + _reason(exc))
    out["seconds"] = time.perf_counter() - t0
    for row in out["sites"]:  # cost bookkeeping: the task's wall time, shared by its sites
        row["info"].update(task_seconds=round(out["seconds"], 3), task_sites=len(sites),
                           n_atoms=len(structure))
    return out


def _row(sid: str, site, res, grid: EnergyGrid) -> dict:
    energy = np.asarray(res.energy, float)
    intensity = np.asarray(res.intensity, float)
    if energy.ndim != 1 or energy.shape != intensity.shape or energy.size < 3:
        raise ValueError("energy and intensity must be 1-D arrays of equal length")
    x = res.aligned(grid)
    if not np.all(np.isfinite(x)):
        raise ValueError("aligned spectrum is not finite (zero area on the grid?)")
    missing = [k for k in ELECTRONIC_LABELS if k not in res.labels]
    if missing:
        raise ValueError(f"engine labels missing: {missing}")
    labels = {**site.labels(), **{k: float(res.labels[k]) for k in ELECTRONIC_LABELS}}
    step = float(np.median(np.diff(energy)))
    uniform = np.arange(energy.size) * step + energy[0]
    raw = intensity if np.allclose(uniform, energy, atol=1e-6 * max(1.0, abs(step))) else \
        np.interp(uniform, energy, intensity)
    info = {"coordination": int(site.coordination),
            "equivalent_indices": [int(i) for i in site.equivalent_indices],
            "neighbors": [[int(j), float(d)] for j, d in site.neighbors],
            "engine": _jsonable(res.provenance)}
    return {"structure_id": sid, "site_index": int(site.index), "multiplicity": int(site.multiplicity),
            "onset": float(res.onset), "y": np.array([labels[k] for k in LABEL_NAMES], float),
            "x": x, "raw_start": float(energy[0]), "raw_step": step,
            "raw": raw.astype(np.float32), "info": info}


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
