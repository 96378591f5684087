"""Find the O K edge in a measured spectrum by its shape, and turn it into a calibration shift.

A core-loss edge is an upward step on a smoothly falling background. In ``log I`` against
``log E`` a power-law background is a straight line, so for every candidate energy ``E0`` in a wide
search window (default ``edge_ev`` -45..+45 eV) :func:`find_edge` fits that line to
``[E0 - pre_ev, E0 - gap_ev]`` and measures the mean excess of ``log I`` over its extrapolation in
``[E0 + gap_ev, E0 + post_ev]``, in units of the fit's residual scatter. The candidate with the
largest jump (the edge) must exceed ``min_sigma``; its onset is then located with the training
rule (:func:`coreloss.spectra.onset_energy`) on the background-subtracted step. This works on
a weak edge on a steep background (the log-log line follows the background) and on an energy axis
miscalibrated by tens of eV, and it never needs the nominal edge to sit inside the data's
background window.

:func:`calibration_shift` returns the shift that puts the found onset at the nominal O K onset
(``O_K_ONSET_EV``); :func:`zlp_shift` the shift that puts a low-loss zero-loss peak at 0 eV.
:func:`calibration_hint` words what a user should do when no spectrum of a file could be processed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from coreloss.errors import CorelossError
from coreloss.spectra import onset_energy

#: nominal O K onset (eV) that :func:`calibration_shift` aligns the found onset to. Oxide O K
#: onsets lie at ~528-535 eV; 532 eV is the pre-processing's default ``edge_ev``.
O_K_ONSET_EV = 532.0


@dataclass(frozen=True)
class EdgeEstimate:
    """An edge found by :func:`find_edge` (energies in eV)."""

    found: bool
    energy: float  # candidate E0 with the largest jump (NaN if none)
    onset: float  # onset of the background-subtracted step (training rule; NaN if none)
    significance: float  # jump / residual scatter of the background fit
    relative_jump: float  # mean post-edge excess over the background, as a fraction of it
    window: tuple[float, float]  # searched range

    def to_dict(self) -> dict:
        d = asdict(self)
        d["window"] = list(self.window)
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}


def _mean_spectrum(data) -> np.ndarray:
    d = np.atleast_2d(np.asarray(data, float))
    good = np.all(np.isfinite(d), axis=1)
    return d[good].mean(axis=0) if good.any() else np.full(d.shape[1], np.nan)


def find_edge(energy, data, edge_ev: float = O_K_ONSET_EV, search_ev: tuple[float, float] = (-45.0, 45.0),
              pre_ev: float = 20.0, gap_ev: float = 1.5, post_ev: float = 12.0,
              min_sigma: float = 5.0, min_relative_jump: float = 0.003) -> EdgeEstimate:
    """Locate the strongest edge of the mean of ``data`` (rows = spectra) near ``edge_ev``.

    Candidates step by ``max(dispersion, 0.25)`` eV over ``edge_ev + search_ev`` clipped to the
    data (with room for the fit windows). Returns ``found=False`` when no candidate's jump reaches
    ``min_sigma`` residual standard deviations and ``min_relative_jump`` of the background.
    """
    e = np.asarray(energy, float)
    y = _mean_spectrum(data)
    lo = max(edge_ev + search_ev[0], e[0] + pre_ev)
    hi = min(edge_ev + search_ev[1], e[-1] - post_ev)
    window = (float(edge_ev + search_ev[0]), float(edge_ev + search_ev[1]))
    none = EdgeEstimate(False, float("nan"), float("nan"), 0.0, 0.0, window)
    if not np.all(np.isfinite(y)) or hi <= lo:
        return none
    step = max(float(np.median(np.diff(e))), 0.25)
    pos = y > 0
    le, ly = np.log(e), np.log(np.where(pos, y, 1.0))
    best = (-np.inf, np.nan, 0.0, None)
    for e0 in np.arange(lo, hi + 0.5 * step, step):
        pre = pos & (e >= e0 - pre_ev) & (e <= e0 - gap_ev)
        post = pos & (e >= e0 + gap_ev) & (e <= e0 + post_ev)
        if pre.sum() < 5 or post.sum() < 3:
            continue
        slope, icpt = np.polyfit(le[pre], ly[pre], 1)
        resid = ly[pre] - (slope * le[pre] + icpt)
        scatter = max(float(np.std(resid)), 1e-6)
        excess = ly[post] - (slope * le[post] + icpt)
        jump = float(np.mean(excess))
        sig = jump / (scatter / np.sqrt(post.sum()))  # jump over the standard error of its mean
        if sig > best[0]:
            best = (sig, float(e0), jump, (slope, icpt))
    sig, e0, jump, fit = best
    if fit is None or not (sig >= min_sigma and np.expm1(jump) >= min_relative_jump):
        return EdgeEstimate(False, e0, float("nan"), float(max(sig, 0.0)), float(np.expm1(jump)), window)
    sel = (e >= e0 - 10.0) & (e <= e0 + post_ev + 8.0)
    step_sig = y[sel] - np.exp(fit[1] + fit[0] * le[sel])
    step_sig = np.where(e[sel] < e0 - gap_ev, 0.0, step_sig)  # the fitted pre-edge is background
    onset = float(onset_energy(e[sel], step_sig[None, :])[0])  # the training onset rule
    return EdgeEstimate(True, e0, onset, float(sig), float(np.expm1(jump)), window)


def calibration_shift(energy, data, edge_ev: float = O_K_ONSET_EV, **kwargs) -> tuple[float, EdgeEstimate]:
    """``(shift_eV, estimate)``: the shift that moves the found onset to ``edge_ev``.

    Raises :class:`CorelossError` (with what to do) when no edge is found.
    """
    est = find_edge(energy, data, edge_ev=edge_ev, **kwargs)
    if not est.found or not np.isfinite(est.onset):
        raise CorelossError(calibration_hint(energy, data, edge_ev, est))
    return float(edge_ev - est.onset), est


def zlp_shift(energy, lowloss) -> float:
    """Shift (eV) that puts the zero-loss peak of ``lowloss`` (mean of its rows) at 0 eV.

    The ZLP centre is the half-maximum midpoint, robust to an asymmetric tail.
    """
    e = np.asarray(energy, float)
    y = _mean_spectrum(lowloss)
    k = int(np.nanargmax(y))
    half = y[k] / 2
    left = np.nonzero(y[:k] < half)[0]
    right = np.nonzero(y[k:] < half)[0]
    if not left.size or not right.size or not np.isfinite(half) or half <= 0:
        raise CorelossError("cannot locate the zero-loss peak of the low-loss spectrum (no peak with "
                            "half-maximum crossings on both sides); give --shift instead")
    i, j = left[-1], k + right[0]
    el = np.interp(half, [y[i], y[i + 1]], [e[i], e[i + 1]])
    er = np.interp(half, [y[j], y[j - 1]], [e[j], e[j - 1]])
    return float(-(el + er) / 2)


def calibration_hint(energy, data, edge_ev: float = O_K_ONSET_EV, est: EdgeEstimate | None = None) -> str:
    """One sentence: where an edge-like step is and which ``--shift`` would calibrate it, or why not."""
    e = np.asarray(energy, float)
    est = est if est is not None else find_edge(e, data, edge_ev=edge_ev)
    if est.found and np.isfinite(est.onset):
        s = edge_ev - est.onset
        return (f"the strongest edge-like step in {est.window[0]:g}-{est.window[1]:g} eV has its onset at "
                f"{est.onset:.1f} eV ({est.significance:.0f} sigma); if that is the O K edge, calibrate "
                f"the energy axis with --shift {s:.1f} (or --shift auto; --shift zlp with a low-loss "
                f"file aligns its zero-loss peak to 0 eV)")
    return (f"no edge-like step found in {est.window[0]:g}-{est.window[1]:g} eV (data cover "
            f"{e[0]:.1f}-{e[-1]:.1f} eV): check that the file holds the O K edge (~{edge_ev:g} eV) and "
            "its energy axis (offset, dispersion); calibrate with --shift EV, or --shift zlp with the "
            "matching low-loss file")
