"""Pre-processing of measured O K-edge spectra into model inputs, vectorised over pixels.

Stages (each optional, its parameters recorded in :meth:`PreprocessConfig.to_dict`), in order:

1. ``shift_ev``: calibration shift added to the energy axis (eV).
2. Power-law background ``A E^-r`` fitted before the edge and subtracted; the fit window defaults
   to ``[edge-30, edge-5]`` eV clipped to the data (least squares in log-log space, all pixels at once).
3. Fourier-ratio deconvolution with a low-loss spectrum (exspy) when one is given.
4. Crop to the O K edge window ``crop_ev`` (relative to ``edge_ev``).
5. Resolution: if the instrument resolution (Gaussian FWHM, eV; from ``resolution_ev`` or the
   low-loss zero-loss peak) is finer than the training broadening, the spectra are broadened by
   ``sqrt(T^2 - R^2)`` to match ("matched"); otherwise the mismatch is only declared ("declared").
6. Optional Savitzky-Golay smoothing.
7. Onset (same rule as the training spectra, :func:`coreloss.spectra.onset_energy`), alignment onto
   the model's grid of ``E - onset`` and area normalisation (:func:`coreloss.spectra.normalise_area`).

A measured SNR (same definition as :func:`coreloss.spectra.estimate_snr`) is returned per pixel.
Pixels that cannot be processed get NaN spectra and a reason string; they never raise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import savgol_filter

from coreloss.errors import CorelossError
from coreloss.spectra import (FWHM_TO_SIGMA, ONSET_FRACTION, ONSET_SMOOTH_EV, ONSET_SUSTAIN_EV, EnergyGrid,
                              align_to_grid, estimate_snr, onset_energy, resample)

O_K_EDGE_EV = 532.0


@dataclass
class PreprocessConfig:
    """Parameters of the pre-processing pipeline (energies in eV)."""

    edge_ev: float = O_K_EDGE_EV
    shift_ev: float = 0.0
    background: bool = True
    background_window: tuple[float, float] | None = None  # absolute eV; None: [edge-30, edge-5]
    deconvolve: bool = True  # Fourier-ratio deconvolution, only when a low-loss is given
    crop_ev: tuple[float, float] = (-12.0, 40.0)  # relative to edge_ev
    resolution_ev: float | None = None  # instrument resolution (FWHM); None: from low-loss or unknown
    training_fwhm_ev: float | None = None  # Gaussian broadening of the training spectra
    smooth: bool = False
    smooth_window_ev: float = 1.5
    smooth_polyorder: int = 2
    onset_fraction: float = ONSET_FRACTION  # the onset rule of coreloss.spectra.onset_energy,
    onset_smooth_ev: float = ONSET_SMOOTH_EV  # the same defaults as for the training spectra
    onset_sustain_ev: float = ONSET_SUSTAIN_EV
    min_edge_sigma: float = 2.0  # edge jump / pre-edge noise below this: "no O K edge"
    onset_range_ev: tuple[float, float] = (-10.0, 15.0)  # allowed onset relative to edge_ev

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


@dataclass
class Processed:
    """Output of :func:`preprocess_block` for ``n`` spectra."""

    X: np.ndarray  # (n, grid.n) aligned, area-normalised (NaN rows for failed pixels)
    onset: np.ndarray  # (n,) absolute onset energy (eV, after the calibration shift)
    snr: np.ndarray  # (n,) measured SNR of the cropped, background-subtracted spectrum
    reasons: np.ndarray  # (n,) object: "" for good pixels, else why the pixel failed
    energy: np.ndarray  # (n_crop,) energies of the cropped window (eV)
    cropped: np.ndarray | None  # (n, n_crop) processed spectra before alignment (if kept)
    record: dict  # what was done (stages, windows, resolution handling)

    @property
    def valid(self) -> np.ndarray:
        return self.reasons == ""


def powerlaw_fit(energy, data, window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``I = A E^-r`` in ``window`` (eV) to every row of ``data``: returns ``(A, r, ok)``.

    Weighted least squares of ``log I`` against ``log E`` over the positive channels of each row,
    solved in closed form for all rows at once. ``ok`` is False where fewer than 3 positive channels.
    """
    sel = (energy >= window[0]) & (energy <= window[1])
    x = np.log(energy[sel])[None, :]
    y = np.asarray(data, float)[:, sel]
    w = (y > 0) & np.isfinite(y)
    ly = np.log(np.where(w, y, 1.0))
    sw, sx, sy = w.sum(1), (w * x).sum(1), (w * ly).sum(1)
    sxx, sxy = (w * x * x).sum(1), (w * x * ly).sum(1)
    det = sw * sxx - sx**2
    ok = (sw >= 3) & (det > 0)
    det = np.where(ok, det, 1.0)
    slope = (sw * sxy - sx * sy) / det
    intercept = (sy - slope * sx) / np.where(sw > 0, sw, 1)
    return np.exp(intercept), -slope, ok


def background_window(energy, config: PreprocessConfig) -> tuple[float, float]:
    """The background-fit window (eV): the configured one, or ``[edge-30, edge-5]`` clipped."""
    lo, hi = config.background_window or (config.edge_ev - 30.0, config.edge_ev - 5.0)
    lo, hi = max(lo, float(energy[0])), min(hi, float(energy[-1]))
    if hi - lo < 5 * float(np.median(np.diff(energy))) or hi - lo < 3.0:
        raise CorelossError(f"no pre-edge region for the background fit: data start at {energy[0]:.1f} eV, "
                            f"window {lo:.1f}-{hi:.1f} eV (O K edge {config.edge_ev:g} eV)")
    return lo, hi


def check_edge_range(energy, config: PreprocessConfig) -> None:
    """Raise :class:`CorelossError` unless the data cover the O K edge window."""
    need_lo, need_hi = config.edge_ev - 5.0, config.edge_ev + 20.0
    if energy[0] > need_lo or energy[-1] < need_hi:
        raise CorelossError(f"no O K edge in range: data cover {energy[0]:.1f}-{energy[-1]:.1f} eV, need "
                            f"{need_lo:g}-{need_hi:g} eV (check the energy calibration or use --shift)")


def uniform_axis(energy, data) -> tuple[np.ndarray, np.ndarray]:
    """Resample onto a uniform axis (median step) if the axis is not uniform to 1 %."""
    d = np.diff(energy)
    step = float(np.median(d))
    if np.all(np.abs(d - step) <= 0.01 * step):
        return energy, data
    new = np.arange(energy[0], energy[-1] + 0.5 * step, step)
    return new, resample(energy, data, new)


def zlp_fwhm(energy, lowloss) -> float:
    """Zero-loss peak FWHM (eV) of low-loss spectra (mean over rows), by half-maximum crossings."""
    ll = np.atleast_2d(np.asarray(lowloss, float))
    widths = []
    for row in ll:
        k = int(np.argmax(row))
        half = row[k] / 2
        left = np.nonzero(row[:k] < half)[0]
        right = np.nonzero(row[k:] < half)[0]
        if not left.size or not right.size:
            continue
        i, j = left[-1], k + right[0]
        el = np.interp(half, [row[i], row[i + 1]], [energy[i], energy[i + 1]])
        er = np.interp(half, [row[j], row[j - 1]], [energy[j], energy[j - 1]])
        widths.append(er - el)
    return float(np.median(widths)) if widths else float("nan")


def fourier_ratio(energy, data, ll_energy, lowloss) -> np.ndarray:
    """Fourier-ratio deconvolution of background-subtracted rows with exspy (low-loss rows
    broadcast when one low-loss is given; resampled to the core-loss dispersion if needed)."""
    import logging
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
        from exspy.signals import EELSSpectrum
        old_bar, log = hs.preferences.General.show_progressbar, logging.getLogger("hyperspy")
        old_level = log.level
        hs.preferences.General.show_progressbar = False
        log.setLevel(logging.ERROR)
        step = float(energy[1] - energy[0])
        ll = np.atleast_2d(np.asarray(lowloss, float))
        if abs(float(ll_energy[1] - ll_energy[0]) - step) > 1e-6 * step:
            new = np.arange(ll_energy[0], ll_energy[-1], step)
            ll, ll_energy = resample(ll_energy, ll, new), new
        if ll.shape[0] == 1 and data.shape[0] > 1:
            ll = np.repeat(ll, data.shape[0], axis=0)
        if ll.shape[0] != data.shape[0]:
            raise CorelossError(f"low-loss has {ll.shape[0]} spectra, core-loss {data.shape[0]}")
        cl_s = EELSSpectrum(np.asarray(data, float))
        ll_s = EELSSpectrum(ll)
        for s, e in ((cl_s, energy), (ll_s, ll_energy)):
            ax = s.axes_manager.signal_axes[0]
            ax.offset, ax.scale, ax.units = float(e[0]), step, "eV"
        if data.shape[0] == 1:
            cl_s, ll_s = cl_s.inav[0], ll_s.inav[0]
        try:
            out = cl_s.fourier_ratio_deconvolution(ll_s).data
        finally:
            hs.preferences.General.show_progressbar = old_bar
            log.setLevel(old_level)
    return np.atleast_2d(np.asarray(out, float))[:, :data.shape[1]]


def _span(energy, lo: float = -np.inf, hi: float = np.inf) -> slice:
    """The slice of an increasing ``energy`` axis with ``lo <= E <= hi`` (views, not copies)."""
    return slice(int(np.searchsorted(energy, lo, side="left")), int(np.searchsorted(energy, hi, side="right")))


def preprocess_block(energy, data, grid: EnergyGrid, config: PreprocessConfig | None = None,
                     lowloss: tuple[np.ndarray, np.ndarray] | None = None,
                     keep_cropped: bool = False) -> Processed:
    """Run the pipeline on ``data`` (n, n_energy) with energies ``energy`` (eV).

    ``lowloss``: optional ``(energy, spectra)`` with one low-loss row, or one per row of ``data``.
    Returns a :class:`Processed` whose ``X`` matches ``grid``. Only the channels a stage needs are
    converted to float64 and processed (energy windows are slices of the sorted axis).
    """
    config = config or PreprocessConfig()
    energy = np.asarray(energy, float) + config.shift_ev
    data = np.atleast_2d(np.asarray(data))
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(float)
    energy, data = uniform_axis(energy, data)
    check_edge_range(energy, config)
    step = float(energy[1] - energy[0])
    n = data.shape[0]
    reasons = np.full(n, "", dtype=object)
    finite = np.all(np.isfinite(data), axis=1)
    reasons[~finite] = "non-finite values (NaN/inf)"
    reasons[finite & ~np.any(data != 0, axis=1)] = "zero counts"
    record: dict = {"config": config.to_dict(), "stages": []}

    lo, hi = background_window(energy, config)
    crop = (config.edge_ev + config.crop_ev[0], min(config.edge_ev + config.crop_ev[1], energy[-1]))
    deconvolve = lowloss is not None and config.deconvolve
    # only deconvolution needs the full range; the background fit needs [lo, ...]
    use = _span(energy, lo if config.background else -np.inf, np.inf if deconvolve else crop[1] + 1.0)
    energy, data = energy[use], np.array(data[:, use], dtype=float)  # float64 copy of what is used
    if not finite.all():
        data[~np.isfinite(data)] = 0.0
    win = _span(energy, lo, hi)
    if config.background:
        amp, r, ok = powerlaw_fit(energy, data, (lo, hi))
        reasons[(reasons == "") & ~ok] = "background fit failed (pre-edge not positive)"
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            log_amp = np.where(ok, np.log(amp), -np.inf)[:, None]
            log_bg = log_amp - np.where(ok, r, 0.0)[:, None] * np.log(energy)[None, :]
            data -= np.exp(log_bg, out=log_bg)  # A E^-r; failed fits subtract nothing
        record["stages"].append({"stage": "background", "model": "power law A*E^-r",
                                 "method": "log-log least squares", "window_eV": [lo, hi],
                                 "r_median": float(np.median(r[ok])) if ok.any() else None})
    pre_noise = np.std(data[:, win], axis=1) if config.background else None

    if deconvolve:
        data = fourier_ratio(energy, data, np.asarray(lowloss[0], float) + 0.0, lowloss[1])
        record["stages"].append({"stage": "fourier_ratio_deconvolution", "method": "exspy"})

    sel = _span(energy, *crop)
    energy, data = energy[sel], data[:, sel]
    record["stages"].append({"stage": "crop", "window_eV": [float(energy[0]), float(energy[-1])]})
    snr = estimate_snr(energy, data)

    res = config.resolution_ev
    res_src = "given" if res is not None else None
    if res is None and lowloss is not None:
        res, res_src = zlp_fwhm(np.asarray(lowloss[0], float), lowloss[1]), "low-loss ZLP FWHM"
    train = config.training_fwhm_ev
    rec = {"stage": "resolution", "instrument_fwhm_eV": res, "source": res_src, "training_fwhm_eV": train}
    if res is not None and np.isfinite(res) and train is not None and res < train:
        extra = float(np.sqrt(train**2 - res**2))
        data = gaussian_filter1d(data, extra * FWHM_TO_SIGMA / step, axis=1, mode="nearest")
        rec.update(mode="matched", added_gaussian_fwhm_eV=extra)
    else:
        rec["mode"] = "declared"
    record["stages"].append(rec)

    if config.smooth:
        win_ch = max(config.smooth_polyorder + 2, int(round(config.smooth_window_ev / step)) | 1)
        win_ch += 1 - win_ch % 2
        data = savgol_filter(data, win_ch, config.smooth_polyorder, axis=1)
        record["stages"].append({"stage": "savitzky_golay", "window_channels": int(win_ch),
                                 "polyorder": config.smooth_polyorder})

    if pre_noise is not None:
        jump = data[:, _span(energy, config.edge_ev, config.edge_ev + 30.0)].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            weak = ~(jump > config.min_edge_sigma * pre_noise)
        reasons[(reasons == "") & weak] = "no O K edge found (edge jump below pre-edge noise)"
    on = onset_energy(energy, data, config.onset_fraction, config.onset_smooth_ev, config.onset_sustain_ev)
    lo_on, hi_on = config.edge_ev + config.onset_range_ev[0], config.edge_ev + config.onset_range_ev[1]
    bad_on = ~((on >= lo_on) & (on <= hi_on))
    reasons[(reasons == "") & bad_on] = f"onset outside {lo_on:g}-{hi_on:g} eV"
    X = align_to_grid(energy, data, np.where(np.isfinite(on), on, config.edge_ev), grid)
    record["stages"].append({"stage": "onset_align_normalise", "rule": "coreloss.spectra.onset_energy",
                             "fraction": config.onset_fraction, "sustain_eV": config.onset_sustain_ev,
                             "grid": grid.to_dict(),
                             "normalisation": "unit area on the grid"})
    bad = reasons != ""
    reasons[~bad & ~np.all(np.isfinite(X), axis=1)] = "normalisation failed (zero area)"
    bad = reasons != ""
    X[bad] = np.nan
    on = np.where(bad, np.nan, on)
    return Processed(X, on, snr, reasons, energy, data if keep_cropped else None, record)
