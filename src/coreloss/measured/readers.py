"""Read measured core-loss spectra (EELS / XAS) into one :class:`MeasuredSpectra` object.

Supported: everything HyperSpy / RosettaSciIO reads as a 1-D signal (``.msa``, ``.dm3``, ``.dm4``,
``.hspy``, ``.emd``, ...) and two-column text (``.csv`` / ``.txt`` / ``.dat``: energy in eV, intensity;
comma, semicolon, tab or whitespace separated; header and ``#`` comment lines allowed; extra columns
are read as further spectra). A ``.msa`` that RosettaSciIO cannot read as EMSA (e.g. the headerless
``energy, counts`` files of the EELS Data Base) is read as two-column text.
:func:`from_signal` turns an in-memory HyperSpy / exspy signal into :class:`MeasuredSpectra`.
The energy axis is kept in eV; navigation (spatial) axes keep their
names, scales, offsets and units; acquisition metadata (beam energy in kV, convergence and
collection semi-angles in mrad, dwell time in s) is kept when the file has it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from coreloss.errors import CorelossError

TEXT_SUFFIXES = (".csv", ".txt", ".dat", ".tsv")
TEXT_FALLBACK_SUFFIXES = (".msa", ".ems", ".emsa")  # EMSA; headerless two-column text as a fallback
LAZY_ABOVE_BYTES = 256 * 1024**2  # files larger than this are opened lazily and cropped before loading
_ENERGY_UNITS = {"ev": 1.0, "kev": 1e3, "mev": 1e-3}


@dataclass(frozen=True)
class NavAxis:
    """One navigation (spatial) axis, in the order of ``MeasuredSpectra.data``'s leading axes."""

    name: str
    size: int
    scale: float = 1.0
    offset: float = 0.0
    units: str = ""
    values: tuple | None = None  # positions of a non-uniform axis (then scale/offset: mean step/first)

    @property
    def positions(self) -> np.ndarray:
        """Position of every index along the axis (``values``, or ``offset + scale * i``)."""
        if self.values is not None:
            return np.asarray(self.values, float)
        return self.offset + self.scale * np.arange(self.size)

    def to_dict(self) -> dict:
        d = {"name": self.name, "size": int(self.size), "scale": float(self.scale),
             "offset": float(self.offset), "units": self.units}
        if self.values is not None:
            d["values"] = [float(v) for v in self.values]
        return d


@dataclass
class MeasuredSpectra:
    """Measured spectra on one energy axis.

    ``energy``: (n_energy,) energy loss / photon energy in eV (increasing).
    ``data``: (*nav_shape, n_energy) intensities (counts or arbitrary units).
    ``nav_axes``: one :class:`NavAxis` per leading axis of ``data`` (empty for a single spectrum).
    ``metadata``: acquisition metadata (``beam_energy_kV``, ``convergence_angle_mrad``,
    ``collection_angle_mrad``, ``dwell_time_s``, ``signal_type``, ``title``) where known.
    ``source``: the file it came from.
    """

    energy: np.ndarray
    data: np.ndarray
    nav_axes: list[NavAxis] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        self.energy = np.asarray(self.energy, float)
        if not hasattr(self.data, "compute"):  # dask arrays stay lazy (streamed block by block)
            self.data = np.asarray(self.data)
        if self.data.shape[-1] != self.energy.size:
            raise CorelossError(f"{self.source or 'spectra'}: {self.data.shape[-1]} channels but "
                                f"{self.energy.size} energies")
        if len(self.nav_axes) != self.data.ndim - 1:
            raise CorelossError(f"{self.source or 'spectra'}: navigation axes do not match the data shape")

    @property
    def nav_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[:-1])

    @property
    def n_spectra(self) -> int:
        return int(np.prod(self.nav_shape, dtype=int))

    @property
    def dispersion(self) -> float:
        """Mean channel width in eV."""
        return float(np.mean(np.diff(self.energy))) if self.energy.size > 1 else float("nan")

    @property
    def offset(self) -> float:
        """Energy of the first channel in eV."""
        return float(self.energy[0])

    @property
    def lazy(self) -> bool:
        """True when ``data`` is a dask array read block by block (see :func:`read_measured`)."""
        return hasattr(self.data, "compute")

    def flat(self) -> np.ndarray:
        """All spectra as a (n_spectra, n_energy) float array (a view when possible)."""
        return np.asarray(self.data, float).reshape(self.n_spectra, self.energy.size)

    def describe(self) -> dict:
        """A JSON-able summary (axes, shape, metadata, source) for provenance records."""
        return {"source": self.source, "nav_shape": list(self.nav_shape),
                "nav_axes": [a.to_dict() for a in self.nav_axes],
                "energy_axis": {"offset_eV": self.offset, "dispersion_eV": self.dispersion,
                                "size": int(self.energy.size), "units": "eV"},
                "metadata": dict(self.metadata)}


def read_measured(path, energy_range: tuple[float, float] | None = None,
                  lazy: bool | None = None, keep_lazy: bool = False) -> MeasuredSpectra:
    """Read a measured spectrum, line scan or spectrum image from ``path``.

    ``energy_range`` (eV, optional) crops the energy axis while reading (done before loading the
    data when the file is opened lazily); ``lazy`` forces lazy loading (default: files larger than
    ``LAZY_ABOVE_BYTES``); ``keep_lazy``: a lazily opened file keeps a dask array as ``data``
    (nothing is loaded until a block is used). Raises :class:`CorelossError` for missing, unreadable
    or unsuitable files.
    """
    path = Path(path)
    if not path.exists():
        raise CorelossError(f"{path}: no such file")
    if path.is_dir():
        raise CorelossError(f"{path}: is a directory, expected a spectrum file")
    if path.stat().st_size == 0:
        raise CorelossError(f"{path}: empty file")
    if path.suffix.lower() in TEXT_SUFFIXES:
        out = read_text_spectrum(path)
    else:
        out = (_read_with_text_fallback if path.suffix.lower() in TEXT_FALLBACK_SUFFIXES
               else _read_hyperspy)(path, energy_range, lazy, keep_lazy)
    if energy_range is not None:
        out = crop_energy(out, *energy_range)
    return out


def crop_energy(spectra: MeasuredSpectra, emin: float, emax: float) -> MeasuredSpectra:
    """Return ``spectra`` restricted to ``emin <= E <= emax`` (eV)."""
    keep = (spectra.energy >= emin) & (spectra.energy <= emax)
    if keep.sum() < 3:
        raise CorelossError(f"{spectra.source}: fewer than 3 channels in {emin:g}-{emax:g} eV "
                            f"(data cover {spectra.energy[0]:g}-{spectra.energy[-1]:g} eV)")
    idx = np.nonzero(keep)[0]
    sl = slice(int(idx[0]), int(idx[-1]) + 1)  # a contiguous slice keeps dask arrays cheap
    return MeasuredSpectra(spectra.energy[sl], spectra.data[..., sl], list(spectra.nav_axes),
                           dict(spectra.metadata), spectra.source)


def _numbers(line: str) -> list[float] | None:
    parts = [p for p in re.split(r"[,;\s]+", line.strip()) if p]
    try:
        return [float(p) for p in parts]
    except ValueError:
        return None


def read_text_spectrum(path) -> MeasuredSpectra:
    """Read two-column (energy eV, intensity) text; header lines before the data are skipped."""
    path = Path(path)
    try:
        lines = path.read_text(errors="strict").splitlines()
    except UnicodeDecodeError:
        raise CorelossError(f"{path}: not a text file (expected energy,intensity columns)") from None
    rows, header, started = [], [], False
    for k, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith(("#", "%", "//")):
            continue
        vals = _numbers(s)
        if vals is None:
            if started:
                raise CorelossError(f"{path}:{k}: non-numeric line inside the data: {s[:40]!r}")
            header.append(s)
            continue
        if len(vals) < 2:
            raise CorelossError(f"{path}:{k}: expected at least two columns (energy, intensity)")
        if started and len(vals) != len(rows[0]):
            raise CorelossError(f"{path}:{k}: {len(vals)} columns, expected {len(rows[0])}")
        rows.append(vals)
        started = True
    if len(rows) < 10:
        raise CorelossError(f"{path}: found {len(rows)} data rows, need at least 10 (energy, intensity)")
    arr = np.asarray(rows, float)
    energy, data = arr[:, 0], arr[:, 1:].T
    if not np.all(np.isfinite(energy)):
        raise CorelossError(f"{path}: energy column has non-finite values")
    order = np.argsort(energy)
    energy, data = energy[order], data[:, order]
    if np.any(np.diff(energy) <= 0):
        raise CorelossError(f"{path}: energy column has repeated values")
    nav = [] if data.shape[0] == 1 else [NavAxis("column", data.shape[0])]
    data = data[0] if data.shape[0] == 1 else data
    meta = {"signal_type": "", "title": path.stem, "header": header[:5]}
    return MeasuredSpectra(energy, data, nav, meta, str(path))


def _metadata(sig) -> dict:
    md = sig.metadata
    out = {"signal_type": str(md.get_item("Signal.signal_type", "") or ""),
           "title": str(md.get_item("General.title", "") or "")}
    items = {"beam_energy_kV": "Acquisition_instrument.TEM.beam_energy",
             "convergence_angle_mrad": "Acquisition_instrument.TEM.convergence_angle",
             "collection_angle_mrad": "Acquisition_instrument.TEM.Detector.EELS.collection_angle",
             "dwell_time_s": "Acquisition_instrument.TEM.dwell_time"}
    for key, item in items.items():
        val = md.get_item(item, None)
        if val is not None:
            out[key] = float(val)
    om = sig.original_metadata  # EMSA keywords (.msa) when the HyperSpy tree lacks them
    for key, item in (("beam_energy_kV", "BEAMKV"), ("convergence_angle_mrad", "CONVANGLE"),
                      ("collection_angle_mrad", "COLLANGLE")):
        val = om.get_item(item, None) if key not in out else None
        if val is not None:
            try:
                out[key] = float(val)
            except (TypeError, ValueError):
                pass
    return out


def _nav_axis(a, i: int) -> NavAxis:
    """A HyperSpy navigation axis as a :class:`NavAxis` (non-uniform axes keep their positions)."""
    name = str(a.name) if a.name and str(a.name) != "<undefined>" else f"axis{i}"
    units = "" if str(a.units) == "<undefined>" else str(a.units)
    if getattr(a, "is_uniform", True):
        return NavAxis(name, int(a.size), float(a.scale), float(a.offset), units)
    pos = np.asarray(a.axis, float)
    step = float(np.mean(np.diff(pos))) if pos.size > 1 else 1.0
    return NavAxis(name, int(a.size), step, float(pos[0]), units, tuple(float(v) for v in pos))


def _read_with_text_fallback(path: Path, energy_range, lazy, keep_lazy: bool = False) -> MeasuredSpectra:
    """EMSA through RosettaSciIO; if that fails or finds < 3 channels, two-column text."""
    try:
        return _read_hyperspy(path, energy_range, lazy, keep_lazy)
    except CorelossError as first:
        try:
            out = read_text_spectrum(path)
        except CorelossError:
            raise first from None
        out.metadata["reader"] = "two-column text (no usable EMSA header)"
        return out


def _read_hyperspy(path: Path, energy_range, lazy, keep_lazy: bool = False) -> MeasuredSpectra:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
        if lazy is None:
            lazy = path.stat().st_size > LAZY_ABOVE_BYTES
        try:
            sig = hs.load(str(path), lazy=lazy)
        except Exception as exc:  # RosettaSciIO raises many kinds for bad/truncated files
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CorelossError(f"{path}: cannot read as a spectrum file ({msg[:160]})") from None
    if isinstance(sig, list):
        sigs = [s for s in sig if s.axes_manager.signal_dimension == 1]
        if not sigs:
            raise CorelossError(f"{path}: contains no 1-D spectrum signal")
        sig = sigs[0]
    return from_signal(sig, energy_range, source=str(path), keep_lazy=keep_lazy)


def as_spectrum_signal(sig, source: str = "signal"):
    """``sig`` with exactly one signal axis in energy units (EMD-style all-signal axes converted)."""
    if sig.axes_manager.signal_dimension != 1:  # e.g. EMD stores every axis as a signal axis
        ev = [a for a in sig.axes_manager.signal_axes if str(a.units).strip().lower() in _ENERGY_UNITS]
        if len(ev) == 1 and not sig.axes_manager.navigation_axes:
            sig = sig.as_signal1D(ev[0].index_in_axes_manager)
    if sig.axes_manager.signal_dimension != 1:
        raise CorelossError(f"{source}: signal is {sig.axes_manager.signal_dimension}-D, expected spectra "
                            "(a 1-D energy axis)")
    return sig


def energy_axis(sig, source: str = "signal") -> np.ndarray:
    """The signal axis of ``sig`` in eV (units eV/keV/meV or undefined = eV)."""
    ax = sig.axes_manager.signal_axes[0]
    unit = str(ax.units or "eV").strip().lower()
    if unit in ("<undefined>", "", "none", "t.b.d."):
        unit = "ev"
    if unit not in _ENERGY_UNITS:
        raise CorelossError(f"{source}: energy axis in {ax.units!r}, expected eV")
    energy = np.asarray(ax.axis, float) * _ENERGY_UNITS[unit]
    if energy.size < 3:
        raise CorelossError(f"{source}: cannot read as a spectrum file (only {energy.size} energy channels)")
    return energy


def nav_axes_of(sig) -> list[NavAxis]:
    """Navigation axes of ``sig`` in array order (HyperSpy lists them in reverse)."""
    return [_nav_axis(a, i) for i, a in enumerate(sig.axes_manager.navigation_axes[::-1])]


def from_signal(sig, energy_range: tuple[float, float] | None = None, source: str | None = None,
                keep_lazy: bool = False) -> MeasuredSpectra:
    """A HyperSpy / exspy signal (lazy or not) -> :class:`MeasuredSpectra`.

    Lazy signals are cropped to ``energy_range`` (eV) before their data are computed; with
    ``keep_lazy`` their data stay a dask array (streamed block by block by the prediction).
    """
    source = source or str(sig.metadata.get_item("General.original_filename", "")
                           or sig.metadata.get_item("General.title", "") or "signal")
    sig = as_spectrum_signal(sig, source)
    energy = energy_axis(sig, source)
    lazy = bool(getattr(sig, "_lazy", False))
    if energy_range is not None and lazy:  # crop before computing
        keep = np.nonzero((energy >= energy_range[0]) & (energy <= energy_range[1]))[0]
        if keep.size >= 3:
            sig = sig.isig[int(keep[0]):int(keep[-1]) + 1]
            energy = energy[keep[0]:keep[-1] + 1]
    try:
        data = sig.data if lazy and keep_lazy else np.asarray(sig.data.compute() if lazy else sig.data)
    except Exception as exc:
        raise CorelossError(f"{source}: data could not be read ({type(exc).__name__}: "
                            f"{str(exc)[:120]}); the file may be truncated") from None
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise CorelossError(f"{source}: data of type {data.dtype} is not real numbers")
    if np.any(np.diff(energy) < 0):
        energy, data = energy[::-1], data[..., ::-1]
    return MeasuredSpectra(energy, data, nav_axes_of(sig), _metadata(sig), source)
