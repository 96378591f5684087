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
from scipy.ndimage import convolve1d, gaussian_filter1d
from scipy.signal import fftconvolve, savgol_filter
from scipy.special import voigt_profile

from coreloss.errors import CorelossError
from coreloss.spectra import FWHM_TO_SIGMA, EnergyGrid, normalise_area

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
    onset_fraction: float = 0.1
    onset_smooth_ev: float = 0.3
    onset_sustain_ev: float = 0.5  # crossing must hold this long (ignores pre-edge noise spikes)
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


def gaussian_kernel(step: float, fwhm: float) -> np.ndarray:
    """The normalised Gaussian kernel that :func:`coreloss.spectra.broaden_curve` uses."""
    half = int(np.ceil(10 * fwhm / step)) + 1
    k = voigt_profile(step * np.arange(-half, half + 1), max(fwhm * FWHM_TO_SIGMA, 1e-9), 0.0)
    return k / k.sum()


def smooth_rows(data: np.ndarray, step: float, fwhm: float) -> np.ndarray:
    """Row-wise ``broaden_curve(..., gaussian_fwhm=fwhm)`` (edge padding), vectorised."""
    if fwhm <= 0:
        return np.array(data, float)
    k = gaussian_kernel(step, fwhm)
    nz = np.nonzero(k > 1e-13 * k.max())[0]  # drop tails that cannot change a float64 result
    k = k[nz[0]:nz[-1] + 1]
    data = np.asarray(data, float)
    if k.size <= 129:
        return convolve1d(data, k, axis=-1, mode="nearest")
    half = (k.size - 1) // 2  # long kernels: FFT convolution of the edge-padded rows
    pad = [(0, 0)] * (data.ndim - 1) + [(half, half)]
    out = fftconvolve(np.pad(data, pad, mode="edge"), k.reshape((1,) * (data.ndim - 1) + (-1,)),
                      mode="same", axes=-1)
    return out[..., half:-half]


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


def onsets(energy, data, fraction: float = 0.1, smooth_ev: float = 0.3,
           sustain_ev: float = 0.0) -> np.ndarray:
    """Row-wise :func:`coreloss.spectra.onset_energy` (same rule), NaN where no positive maximum.

    ``sustain_ev > 0`` makes the rule robust to noise spikes before the edge: the crossing must stay
    above the threshold for ``sustain_ev``; for a clean, rising edge the result is unchanged.
    """
    step = abs(float(np.median(np.diff(energy))))
    y = smooth_rows(data, step, smooth_ev)
    peak = np.max(y, axis=1)
    thr = fraction * peak
    above = y >= thr[:, None]
    k = int(round(sustain_ev / step))
    if k > 1:  # above[i] and the next k-1 channels all above the threshold
        c = np.concatenate([np.zeros((len(y), 1), int), np.cumsum(above, axis=1)], axis=1)
        n = y.shape[1]
        hi = np.minimum(np.arange(n) + k, n)
        above = (c[:, hi] - c[:, :n]) == (hi - np.arange(n))[None, :]
    i = np.argmax(above, axis=1)
    rows = np.arange(y.shape[0])
    im1 = np.maximum(i - 1, 0)
    y0, y1 = y[rows, im1], y[rows, i]
    e0, e1 = energy[im1], energy[i]
    with np.errstate(invalid="ignore", divide="ignore"):
        interp = np.where(y1 != y0, e0 + (thr - y0) * (e1 - e0) / (y1 - y0), e1)
    out = np.where(i == 0, energy[0], interp)
    return np.where(peak > 0, out, np.nan)


def align_rows(energy, data, onset, grid: EnergyGrid, normalise: bool = True) -> np.ndarray:
    """Row-wise :func:`coreloss.spectra.align_to_grid`: linear interpolation at ``grid + onset``."""
    t = grid.energies[None, :] + np.asarray(onset, float)[:, None]
    n = energy.size
    idx = np.clip(np.searchsorted(energy, t, side="right") - 1, 0, n - 2)
    e0, e1 = energy[idx], energy[idx + 1]
    w = (t - e0) / (e1 - e0)
    y0 = np.take_along_axis(data, idx, axis=1)
    y1 = np.take_along_axis(data, idx + 1, axis=1)
    out = y0 * (1 - w) + y1 * w
    out = np.where((t < energy[0]) | (t > energy[-1]), 0.0, out)
    return normalise_area(out, grid.step) if normalise else out


def snr_rows(energy, data, smooth_ev: float = 1.5) -> np.ndarray:
    """Row-wise :func:`coreloss.spectra.estimate_snr` (peak of smoothed / noise std)."""
    step = abs(float(np.median(np.diff(energy))))
    smooth = smooth_rows(data, step, smooth_ev)
    noise = np.std(np.diff(data - smooth, axis=1), axis=1) / np.sqrt(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(noise > 0, smooth.max(axis=1) / noise, np.inf)


def uniform_axis(energy, data) -> tuple[np.ndarray, np.ndarray]:
    """Resample onto a uniform axis (median step) if the axis is not uniform to 1 %."""
    d = np.diff(energy)
    step = float(np.median(d))
    if np.all(np.abs(d - step) <= 0.01 * step):
        return energy, data
    new = np.arange(energy[0], energy[-1] + 0.5 * step, step)
    return new, np.stack([np.interp(new, energy, row) for row in data])


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
            ll = np.stack([np.interp(new, ll_energy, r) for r in ll])
            ll_energy = new
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


def preprocess_block(energy, data, grid: EnergyGrid, config: PreprocessConfig | None = None,
                     lowloss: tuple[np.ndarray, np.ndarray] | None = None,
                     keep_cropped: bool = False) -> Processed:
    """Run the pipeline on ``data`` (n, n_energy) with energies ``energy`` (eV).

    ``lowloss``: optional ``(energy, spectra)`` with one low-loss row, or one per row of ``data``.
    Returns a :class:`Processed` whose ``X`` matches ``grid``.
    """
    config = config or PreprocessConfig()
    energy = np.asarray(energy, float) + config.shift_ev
    data = np.atleast_2d(np.asarray(data, float))
    energy, data = uniform_axis(energy, data)
    check_edge_range(energy, config)
    step = float(energy[1] - energy[0])
    n = data.shape[0]
    reasons = np.full(n, "", dtype=object)
    finite = np.all(np.isfinite(data), axis=1)
    reasons[~finite] = "non-finite values (NaN/inf)"
    data = np.where(np.isfinite(data), data, 0.0)
    reasons[finite & ~np.any(data != 0, axis=1)] = "zero counts"
    record: dict = {"config": config.to_dict(), "stages": []}

    lo, hi = background_window(energy, config)
    crop = (config.edge_ev + config.crop_ev[0], min(config.edge_ev + config.crop_ev[1], energy[-1]))
    if lowloss is None or not config.deconvolve:  # only deconvolution needs the full range
        keep = energy <= crop[1] + 1.0
        energy, data = energy[keep], data[:, keep]
    if config.background:
        keep = energy >= lo
        energy, data = energy[keep], data[:, keep]
        amp, r, ok = powerlaw_fit(energy, data, (lo, hi))
        reasons[(reasons == "") & ~ok] = "background fit failed (pre-edge not positive)"
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            log_amp = np.where(ok, np.log(amp), -np.inf)[:, None]
            log_bg = log_amp - np.where(ok, r, 0.0)[:, None] * np.log(energy)[None, :]
            data -= np.exp(log_bg)  # A E^-r; failed fits subtract nothing
        record["stages"].append({"stage": "background", "model": "power law A*E^-r",
                                 "method": "log-log least squares", "window_eV": [lo, hi],
                                 "r_median": float(np.median(r[ok])) if ok.any() else None})
    win = (energy >= lo) & (energy <= hi)
    pre_noise = np.std(data[:, win], axis=1) if config.background else None

    if lowloss is not None and config.deconvolve:
        data = fourier_ratio(energy, data, np.asarray(lowloss[0], float) + 0.0, lowloss[1])
        record["stages"].append({"stage": "fourier_ratio_deconvolution", "method": "exspy"})

    sel = (energy >= crop[0]) & (energy <= crop[1])
    energy, data = energy[sel], data[:, sel]
    record["stages"].append({"stage": "crop", "window_eV": [float(energy[0]), float(energy[-1])]})
    snr = snr_rows(energy, data)

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

    post = (energy >= config.edge_ev) & (energy <= config.edge_ev + 30.0)
    if pre_noise is not None:
        jump = data[:, post].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            weak = ~(jump > config.min_edge_sigma * pre_noise)
        reasons[(reasons == "") & weak] = "no O K edge found (edge jump below pre-edge noise)"
    on = onsets(energy, data, config.onset_fraction, config.onset_smooth_ev, config.onset_sustain_ev)
    lo_on, hi_on = config.edge_ev + config.onset_range_ev[0], config.edge_ev + config.onset_range_ev[1]
    bad_on = ~((on >= lo_on) & (on <= hi_on))
    reasons[(reasons == "") & bad_on] = f"onset outside {lo_on:g}-{hi_on:g} eV"
    X = align_rows(energy, data, np.where(np.isfinite(on), on, config.edge_ev), grid)
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
