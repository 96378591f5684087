"""Synthetic EELS spectrum images with known labels, built from (held-out) engine spectra.

Each pixel holds one dataset spectrum (onset-aligned, on the model grid) placed at an absolute
onset (default 535 eV) on an EELS energy axis, on top of a power-law background
``B(E) = ratio * peak * (E / edge)^-r``, with Poisson noise at a stated SNR. SNR definition: edge
peak counts over the shot-noise std at the peak, ``P / sqrt(P + B_peak)``; the dose is chosen to give
exactly ``snr``. Optional bad pixels (NaN, zero counts, background only) exercise failure masking.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from coreloss.errors import CorelossError
from coreloss.measured.readers import MeasuredSpectra, NavAxis
from coreloss.spectra import DEFAULT_GRID, EnergyGrid, resample


def _field(shape, rng, n_blobs: int = 6) -> np.ndarray:
    """Smooth random field in [0, 1] (sum of Gaussian blobs), ranked to a uniform distribution."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    f = np.zeros(shape)
    for _ in range(n_blobs):
        cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
        w = rng.uniform(0.15, 0.35) * max(ny, nx)
        f += rng.choice([-1, 1]) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w * w))
    ranks = np.argsort(np.argsort(f.ravel() + 1e-9 * rng.normal(size=f.size)))
    return (ranks / max(f.size - 1, 1)).reshape(shape)


def choose_sites(y: np.ndarray, shape, layout: str = "field", sort_label: int = 0,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """Index of the dataset spectrum shown in each pixel (``shape``).

    ``field``: a smooth random field picks spectra by their rank in label ``sort_label`` (domains
    with gradients); ``random``: independent random choice per pixel.
    """
    rng = rng or np.random.default_rng(0)
    n = len(y)
    if layout == "random":
        return rng.integers(n, size=shape)
    if layout != "field":
        raise CorelossError(f"unknown layout {layout!r} (field or random)")
    order = np.argsort(np.nan_to_num(y[:, sort_label], nan=np.nanmean(y[:, sort_label])), kind="stable")
    q = _field(shape, rng)
    return order[np.minimum((q * n).astype(int), n - 1)]


def synthetic_spectrum_image(X, y, grid: EnergyGrid = DEFAULT_GRID, shape=(32, 32), snr: float = 50.0,
                             layout: str = "field", onset_ev: float = 535.0, onset_jitter_ev: float = 0.0,
                             energy_axis=(480.0, 0.1, 1000), background_ratio: float = 3.0,
                             exponent: float = 3.0, edge_ev: float = 532.0, n_bad: int = 0,
                             seed: int = 0) -> tuple[MeasuredSpectra, dict]:
    """Build a spectrum image; return it and the truth ``{"labels" (ny, nx, 6), "site" (ny, nx),
    "bad" (ny, nx) bool}``. ``energy_axis``: (offset eV, dispersion eV, channels)."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    if X.ndim != 2 or X.shape[1] != grid.n or len(X) != len(y):
        raise CorelossError("X must be (n, grid.n) spectra on `grid`, with one label row each")
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    site = choose_sites(y, shape, layout, rng=rng)
    off, disp, n_ch = energy_axis
    energy = off + disp * np.arange(int(n_ch))
    flat_site = site.ravel()
    onsets = onset_ev + onset_jitter_ev * rng.uniform(-1, 1, size=flat_site.size)
    counts = np.empty((flat_site.size, energy.size), np.float32)
    bg_shape = (energy / edge_ev) ** (-exponent)
    g = grid.energies
    for a in range(0, flat_site.size, 4096):  # bounded memory for large images
        sl = slice(a, a + 4096)
        rel = energy[None, :] - onsets[sl, None]
        Xs = X[flat_site[sl]]
        edge = np.clip(resample(g, Xs, rel), 0, None)  # zero below the grid (coreloss.spectra)
        tail = Xs[:, -1:] * np.exp(-np.clip(rel - g[-1], 0, None) / 10.0)  # smooth continuation
        edge = np.where(rel > g[-1], tail, edge)
        p = edge.max(axis=1)
        bg = background_ratio * p[:, None] * bg_shape[None, :]
        b = bg[np.arange(len(bg)), np.argmax(edge, axis=1)]
        if np.isfinite(snr):
            scale = snr**2 * (p + b) / p**2  # counts per unit intensity giving P / sqrt(P + B) = snr
            counts[sl] = rng.poisson((edge + bg) * scale[:, None])
        else:
            counts[sl] = (edge + bg) * (1e4 / p)[:, None]
    bad = np.zeros(flat_site.size, bool)
    if n_bad:
        pick = rng.choice(flat_site.size, size=min(n_bad, flat_site.size), replace=False)
        bad[pick] = True
        for k, i in enumerate(pick):
            if k % 3 == 0:
                counts[i] = np.nan
            elif k % 3 == 1:
                counts[i] = 0.0
            else:  # background only: no edge
                counts[i] = rng.poisson(1e4 * background_ratio * bg_shape)
    data = counts.reshape(shape + (energy.size,))
    nav = [NavAxis("y", shape[0], 1.0, 0.0, "px"), NavAxis("x", shape[1], 1.0, 0.0, "px")]
    meta = {"signal_type": "EELS", "title": f"synthetic O K spectrum image (SNR {snr:g})",
            "synthetic": {"snr": float(snr), "snr_definition": "P/sqrt(P+B) at the edge peak",
                          "background_ratio": background_ratio, "exponent": exponent,
                          "onset_eV": onset_ev, "onset_jitter_eV": onset_jitter_ev, "layout": layout,
                          "seed": seed, "n_bad": int(n_bad)}}
    truth = {"labels": y[site], "site": site, "bad": bad.reshape(shape)}
    return MeasuredSpectra(energy, data, nav, meta, "synthetic"), truth


def write_hspy(spectra: MeasuredSpectra, path, truth: dict | None = None, label_names=None,
               overwrite: bool = False, compression: str | None = "gzip") -> Path:
    """Write spectra as an EELS ``.hspy`` signal (truth labels in ``original_metadata.truth``);
    ``compression``: HDF5 compression of the data (None: raw, as acquisition software writes)."""
    path = Path(path)
    if path.suffix != ".hspy":
        raise CorelossError(f"{path}: synthetic spectrum images are written as .hspy")
    if path.exists() and not overwrite:
        raise CorelossError(f"{path} already exists; choose another name or pass --overwrite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
        axes = [{"name": a.name, "units": a.units, "navigate": True,
                 **({"axis": np.asarray(a.values, float)} if a.values is not None else
                    {"size": a.size, "scale": a.scale, "offset": a.offset})} for a in spectra.nav_axes]
        axes.append({"name": "Energy loss", "size": spectra.energy.size, "offset": float(spectra.energy[0]),
                     "scale": spectra.dispersion, "units": "eV", "navigate": False})
        sig = hs.signals.Signal1D(spectra.data, axes=axes)
        sig.set_signal_type("EELS")
        sig.metadata.General.title = spectra.metadata.get("title", "")
        if "synthetic" in spectra.metadata:
            sig.original_metadata.add_dictionary({"synthetic": spectra.metadata["synthetic"]})
        if truth is not None:
            sig.original_metadata.add_dictionary(
                {"truth": {"labels": np.asarray(truth["labels"]), "site": np.asarray(truth["site"]),
                           "bad": np.asarray(truth["bad"]), "label_names": list(label_names or [])}})
        path.parent.mkdir(parents=True, exist_ok=True)
        sig.save(str(path), overwrite=True, compression=compression)
    return path
