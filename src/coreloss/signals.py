"""HyperSpy-native API: predict O-site properties straight from a HyperSpy / exspy signal.

>>> import hyperspy.api as hs                                               # doctest: +SKIP
>>> from coreloss.signals import predict_signal                             # doctest: +SKIP
>>> s = hs.load("si.hspy", lazy=True)            # EELSSpectrum, nav (y, x), signal energy   # doctest: +SKIP
>>> out = predict_signal(s, calibrate="auto")                                # doctest: +SKIP
>>> out.mean                # Signal1D: the input's navigation axes, signal axis = the six labels
>>> out.map("bond_angle").plot()                 # Signal2D image of one property      # doctest: +SKIP

The result keeps the input's navigation axes (names, scales, offsets, units), its metadata
(``General``, ``Acquisition_instrument``, ``Sample``) and records the processing in
``metadata.coreloss`` (units, pre-processing, calibration, model, OOD rule). Lazy signals are
cropped to the O K window and computed ``chunk`` spectra at a time, so a spectrum image larger than
memory streams through. Nothing is written to disk.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np

from coreloss.errors import CorelossError
from coreloss.measured.predict import MeasuredPrediction, calibrate_shift, load_model, predict_measured
from coreloss.measured.preprocess import PreprocessConfig
from coreloss.measured.readers import (MeasuredSpectra, NavAxis, _metadata, as_spectrum_signal, energy_axis,
                                       from_signal, nav_axes_of)

_KEEP_METADATA = ("General", "Acquisition_instrument", "Sample")


def _hs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
    return hs


@dataclass
class SignalPrediction:
    """Signals with the input's navigation axes; ``result`` is the flat :class:`MeasuredPrediction`."""

    mean: object  # Signal1D (*nav | 6): the six labels (label units)
    std: object  # Signal1D (*nav | 6): 1 sigma
    ood: object  # Signal1D (*nav | 3): OOD score, OOD flag, failed flag
    result: MeasuredPrediction

    def map(self, name: str, what: str = "mean"):
        """One property as a navigation-free signal (image for 2-D, profile for 1-D navigation)."""
        sig = {"mean": self.mean, "std": self.std}[what]
        names = list(self.result.label_names)
        if name not in names:
            raise CorelossError(f"unknown property {name!r}; choose from {names}")
        return sig.isig[names.index(name)].T


def _window(config: PreprocessConfig) -> tuple[float, float]:
    """Raw-axis energies the pipeline needs (background window to crop end), with margins."""
    lo = min((config.background_window or (config.edge_ev - 30.0, 0.0))[0], config.edge_ev - 30.0)
    return lo - 5.0 - config.shift_ev, config.edge_ev + config.crop_ev[1] + 10.0 - config.shift_ev


def _rows(sig):
    """``(energy, data (n, E) numpy or dask, nav_axes)`` of a spectrum signal (not computed)."""
    e = energy_axis(sig)
    data = sig.data
    if np.any(np.diff(e) < 0):
        e, data = e[::-1], data[..., ::-1]
    return e, data.reshape((-1, e.size)), nav_axes_of(sig)


def _as_measured(energy, rows, source, meta) -> MeasuredSpectra:
    rows = np.asarray(rows.compute() if hasattr(rows, "compute") else rows, float)
    return MeasuredSpectra(energy, rows, [NavAxis("spectrum", len(rows))], dict(meta), source)


def _out_signal(data, names, sig, title: str, provenance: dict, units):
    hs = _hs()
    nav_axes = nav_axes_of(sig)
    nav = [{"name": a.name, "units": a.units, "navigate": True,
            **({"axis": np.asarray(a.values, float)} if a.values is not None
               else {"size": a.size, "scale": a.scale, "offset": a.offset})} for a in nav_axes]
    axes = nav + [{"name": "property", "size": len(names), "navigate": False}]
    out = hs.signals.Signal1D(np.asarray(data, np.float32).reshape(
        tuple(a.size for a in nav_axes) + (len(names),)), axes=axes)
    for key in _KEEP_METADATA:
        if sig.metadata.has_item(key):
            out.metadata.set_item(key, copy.deepcopy(sig.metadata.get_item(key)))
    out.metadata.General.title = f"{sig.metadata.get_item('General.title', '') or 'spectra'}: {title}"
    out.metadata.set_item("coreloss", {"quantities": list(names), "units": list(units),
                                       **_plain(provenance)})
    return out


def _plain(obj):
    """Provenance as nested dicts/lists of str/float (what HyperSpy metadata can store)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj


def _merge(parts: list[MeasuredPrediction], nav_shape) -> MeasuredPrediction:
    cat = (lambda name: np.concatenate([getattr(p, name) for p in parts]))
    first = parts[0]
    prov = dict(first.provenance)
    prov["n_spectra"] = int(sum(len(p.reasons) for p in parts))
    prov["n_failed"] = int(sum(int((p.reasons != "").sum()) for p in parts))
    prov["n_clipped"] = int(sum(p.provenance.get("n_clipped", 0) for p in parts))
    X = cat("X") if all(p.X is not None for p in parts) else None
    return MeasuredPrediction(cat("mean"), cat("std"), cat("ood_score"), cat("ood"), cat("onset"), cat("snr"),
                              cat("reasons"), X, tuple(nav_shape), first.grid, first.label_names,
                              first.label_units, prov, first.crop_energy, None, cat("clipped"))


def predict_signal(signal, model=None, config: PreprocessConfig | None = None, lowloss=None,
                   calibrate: str | None = None, onset_offset_ev: float | None = None,
                   chunk: int = 8192) -> SignalPrediction:
    """Predict the six O-site properties for every spectrum of a HyperSpy / exspy ``signal``.

    ``model``: an :class:`~coreloss.models.inverse.InverseModel`, a path, or None (the shipped one).
    ``lowloss``: a low-loss signal (one spectrum, or one per navigation position) for Fourier-ratio
    deconvolution and the resolution. ``calibrate``: ``"auto"`` / ``"zlp"`` / None (use
    ``config.shift_ev``). Other arguments as :func:`coreloss.measured.predict.predict_measured`.
    """
    model = load_model(model) if model is None or not hasattr(model, "predict") else model
    config = copy.deepcopy(config) if config is not None else PreprocessConfig()
    sig = as_spectrum_signal(signal, "signal")
    source = str(sig.metadata.get_item("General.original_filename", "")
                 or sig.metadata.get_item("General.title", "") or "signal")
    meta = _metadata(sig)
    energy, rows, nav = _rows(sig)
    n = int(rows.shape[0])
    ll = from_signal(lowloss, source="lowloss") if lowloss is not None else None
    if ll is not None and ll.n_spectra not in (1, n):
        raise CorelossError(f"low-loss has {ll.n_spectra} spectra, the signal {n}: give one or one per pixel")
    if calibrate is not None:  # decide the shift once, on (up to) 4096 evenly spaced spectra
        idx = np.unique(np.linspace(0, n - 1, min(n, 4096)).astype(int))
        sample = _as_measured(energy, rows[idx] if not hasattr(rows, "compute") else rows[idx.tolist()],
                              source, meta)
        calib = calibrate_shift(sample, config, calibrate, ll)
    else:
        calib = None
    lo, hi = _window(config)
    keep = (energy >= lo) & (energy <= hi)
    if ll is None or not config.deconvolve:  # deconvolution needs the full range
        if keep.sum() >= 3:
            energy, rows = energy[keep], rows[:, np.nonzero(keep)[0][0]:np.nonzero(keep)[0][-1] + 1]
    parts = []
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        m = _as_measured(energy, rows[a:b], source, meta)
        low = None
        if ll is not None:
            lr = ll.flat() if ll.n_spectra == 1 else ll.flat()[a:b]
            low = MeasuredSpectra(ll.energy, lr, [NavAxis("spectrum", len(lr))], {}, ll.source)
        parts.append(predict_measured(m, model, config, lowloss=low, keep_inputs=False,
                                      onset_offset_ev=onset_offset_ev, strict=False))
    res = _merge(parts, tuple(a.size for a in nav))
    if not res.valid.any():
        from coreloss.measured.predict import _EDGE_REASONS, _edge_error
        vals, counts = np.unique(res.reasons.astype(str), return_counts=True)
        main = vals[np.argmax(counts)]
        if main.startswith(_EDGE_REASONS):
            raise _edge_error(_as_measured(energy, rows[:min(n, 256)], source, meta), config,
                              f"no spectrum could be processed ({main})")
    res.provenance["input"] = {"source": source, "nav_axes": [a.to_dict() for a in nav],
                               "energy_axis": {"offset_eV": float(energy[0]), "size": int(energy.size),
                                               "units": "eV"}, "lazy": bool(getattr(sig, "_lazy", False))}
    if calib is not None:
        res.provenance["calibration"] = calib
    names, units = res.label_names, res.label_units
    mean = _out_signal(res.mean, names, sig, "O-site properties", res.provenance, units)
    std = _out_signal(res.std, names, sig, "O-site property uncertainty (1 sigma)", res.provenance, units)
    flags = np.stack([res.ood_score, res.ood.astype(float), (~res.valid).astype(float)], axis=1)
    ood = _out_signal(flags, ["ood_score", "ood", "failed"], sig, "out-of-distribution", res.provenance,
                      ["", "bool", "bool"])
    return SignalPrediction(mean, std, ood, res)
