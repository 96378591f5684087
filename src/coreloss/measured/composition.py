"""Edges of other elements in a measured spectrum: the composition check of the OOD flag.

The inverse model learned O K edges of SiO2. A spectrum whose energy range also shows a major edge
of another element (Mn L3 in a manganite, Ti L3 in a titanate) is not SiO2, whatever its O K shape
looks like, and the spectrum-only OOD scores cannot know that (BENCHMARKS.md, "Shipped DFT model":
10 LSMO pixels pass them). Edge onsets come from exspy's element database ("Major" edges). Each
edge whose fit windows lie inside the data and outside the O K edge and its fine structure is
tested in every spectrum with the rule of :func:`coreloss.measured.edges.find_edge` at a fixed
energy: a power law fitted below the edge (log-log line), and the mean log excess above it in
standard errors (``significance``) and as a fraction of the background (``relative_jump``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: the O K edge and its fine structure (eV relative to the nominal O K onset): no edge tested here
O_K_EXCLUSION_EV = (-15.0, 60.0)


@lru_cache(maxsize=4)
def major_edges(exclude: tuple[str, ...] = ("O", "Si")) -> tuple[tuple[str, float], ...]:
    """``(("Mn L3", 640.0), ...)``: every "Major" edge of exspy's element database (onset, eV),
    sorted by energy, without the elements in ``exclude``."""
    from exspy.material import elements

    out = []
    for el in elements.keys():
        if el in exclude:
            continue
        be = elements[el].get_item("Atomic_properties.Binding_energies", None)
        if be is None:
            continue
        for shell in be.keys():
            d = be[shell]
            if d.get_item("relevance", "") == "Major":
                out.append((f"{el} {shell}", float(d.get_item("onset_energy (eV)"))))
    return tuple(sorted(out, key=lambda t: t[1]))


def edge_jump(energy, data, e0: float, pre_ev: float = 20.0, gap_ev: float = 1.5,
              post_ev: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """Per spectrum (rows of ``data``, vectorised): significance and relative jump of an edge at
    ``e0`` (eV): the mean excess of ``log I`` on ``[e0 + gap_ev, e0 + post_ev]`` over the log-log line
    fitted on ``[e0 - pre_ev, e0 - gap_ev]``, in standard errors of that mean, and ``expm1`` of it
    (:func:`coreloss.measured.edges.find_edge`'s measure at one energy). Zeros where a spectrum has
    non-positive or non-finite values in those windows."""
    e = np.asarray(energy, float)
    y = np.atleast_2d(np.asarray(data, float))
    pre = (e >= e0 - pre_ev) & (e <= e0 - gap_ev)
    post = (e >= e0 + gap_ev) & (e <= e0 + post_ev)
    sig, rel = np.zeros(len(y)), np.zeros(len(y))
    if pre.sum() < 5 or post.sum() < 3:
        return sig, rel
    win = y[:, pre | post]
    ok = np.all(np.isfinite(win) & (win > 0), axis=1)
    if not ok.any():
        return sig, rel
    le = np.log(e)
    lp = np.log(y[ok][:, pre]).T  # (n_pre, n_ok)
    slope, icpt = np.polyfit(le[pre], lp, 1)
    resid = lp - (np.outer(le[pre], slope) + icpt)
    scatter = np.maximum(resid.std(axis=0), 1e-6)
    excess = np.log(y[ok][:, post]).T - (np.outer(le[post], slope) + icpt)
    jump = excess.mean(axis=0)
    sig[ok] = jump / (scatter / np.sqrt(post.sum()))
    rel[ok] = np.expm1(jump)
    return sig, rel


def foreign_edges(energy, data, o_k_onset_ev: float = 532.0, exclude: tuple[str, ...] = ("O", "Si"),
                  min_sigma: float = 10.0, min_relative_jump: float = 0.1,
                  pre_ev: float = 20.0, post_ev: float = 12.0) -> np.ndarray:
    """Per spectrum: the edges of other elements found in it (significance >= ``min_sigma`` and
    relative jump >= ``min_relative_jump``; the strongest of neighbours closer than ``post_ev``),
    ``"; "``-joined as ``"edge at 631 eV (I M4, Mn L3)"`` (the major edges with onsets in its
    window: the shape does not tell them apart), or ``""``. ``energy`` must be calibrated (the O K
    onset near ``o_k_onset_ev``)."""
    e = np.asarray(energy, float)
    y = np.atleast_2d(np.asarray(data, float))
    lo_x, hi_x = o_k_onset_ev + O_K_EXCLUSION_EV[0], o_k_onset_ev + O_K_EXCLUSION_EV[1]
    names, sigs = [], []
    for name, e0 in major_edges(tuple(exclude)):
        if e0 - pre_ev < e[0] or e0 + post_ev > e[-1] or (e0 + post_ev > lo_x and e0 - pre_ev < hi_x):
            continue
        sig, rel = edge_jump(e, y, e0, pre_ev=pre_ev, post_ev=post_ev)
        names.append((name, e0))
        sigs.append(np.where(rel >= min_relative_jump, sig, 0.0))
    out = np.full(len(y), "", dtype=object)
    if not names:
        return out
    S = np.array(sigs)  # (n_edges, n_spectra)
    e0s = np.array([e0 for _, e0 in names])
    for i in np.nonzero((S >= min_sigma).any(axis=0))[0]:
        kept = []
        for j in np.argsort(-S[:, i]):  # strongest first; one edge per post_ev neighbourhood
            if S[j, i] < min_sigma:
                break
            if all(abs(e0s[j] - e0s[k]) > post_ev for k in kept):
                kept.append(j)
        out[i] = "; ".join(_label(names, e0s[j], post_ev) for j in sorted(kept, key=lambda j: e0s[j]))
    return out


def _label(names, e0: float, post_ev: float) -> str:
    near = [n for n, e in names if e0 - 3.0 <= e <= e0 + post_ev - 2.0]
    return f"edge at {e0:.0f} eV ({', '.join(near)})"
