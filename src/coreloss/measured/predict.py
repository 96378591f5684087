"""Measured spectra -> the six O-site properties with uncertainty and an out-of-distribution flag.

>>> from coreloss.measured import read_measured, predict_measured, load_model   # doctest: +SKIP
>>> res = predict_measured(read_measured("si.hspy"), load_model())              # doctest: +SKIP
>>> res.mean.shape, res.ood.shape                                               # doctest: +SKIP

Pre-processing runs in blocks of ``batch`` spectra (vectorised over pixels), so spectrum images of
any size stream through with bounded memory; failed pixels carry a reason and NaN predictions.

Energy calibration (``calibrate``): ``None`` uses ``config.shift_ev``; ``"auto"`` finds the O K edge
by its shape (:mod:`coreloss.measured.edges`) and shifts its onset to 532 eV; ``"zlp"`` shifts the
axis so that the low-loss zero-loss peak sits at 0 eV. When no spectrum can be processed because no
edge is where it should be, the error says where an edge-like step is and which ``--shift`` to use.

A spectrum is flagged out of distribution when the model's combined OOD score exceeds 1 (PCA of the
spectrum and latent k-nearest-neighbour distance; see :mod:`coreloss.models.ood`), when a predicted
label lies outside the training range widened by 10 %, or when a prediction had to be clipped to
its physical limits (:mod:`coreloss.models.bounds`) from more than one standard deviation outside
them (a clipped value is always marked in ``clipped``).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from coreloss import __version__
from coreloss.errors import CorelossError
from coreloss.measured import edges
from coreloss.measured.preprocess import PreprocessConfig, preprocess_block
from coreloss.measured.readers import MeasuredSpectra
from coreloss.measured.composition import foreign_edges
from coreloss.measured.stream import map_blocks
from coreloss.spectra import EnergyGrid


def load_model(path=None):
    """Load an :class:`~coreloss.models.inverse.InverseModel`: a file, or a shipped one by keyword
    (None: the default; ``"xtb"``: :func:`coreloss.models.inverse_model_path`)."""
    from coreloss.models import inverse_model_path
    from coreloss.models.inverse import InverseModel
    return InverseModel.load(inverse_model_path(path))


_ONSET_RULE = ("onset_fraction", "onset_smooth_ev", "onset_sustain_ev")


def _with_model_conventions(config: PreprocessConfig, model) -> PreprocessConfig:
    """A copy of ``config`` with the model's spectral conventions where the caller left the
    defaults: the training broadening (``training_fwhm_ev``) and the onset rule the training
    spectra were aligned with, so training and measurement share one rule by construction."""
    from coreloss.conventions import SpectralConventions
    conv, default = SpectralConventions.of_model(model), PreprocessConfig()
    changes = {k: getattr(conv, k) for k in _ONSET_RULE if getattr(config, k) == getattr(default, k)}
    if config.training_fwhm_ev is None:
        changes["training_fwhm_ev"] = conv.gaussian_fwhm
    return replace(config, **changes)


def _conventions(model) -> dict:
    from coreloss.conventions import SpectralConventions
    return SpectralConventions.of_model(model).to_dict()


def training_envelope(model) -> dict:
    """Training-spectrum band on the model's grid: ``{"low", "high", "mean", "kind"}``.

    Uses ``metadata["training_envelope"]`` (``q05``/``q95`` or ``min``/``max`` lists) when the model
    carries it; otherwise approximates a 5-95 % band from the model's PCA (OOD) statistics.
    """
    md = getattr(model, "metadata", {}) or {}
    env = md.get("training_envelope")
    if env:
        lo, hi = env.get("q05", env.get("min")), env.get("q95", env.get("max"))
        kind = "5-95 % of training spectra" if "q05" in env else "min-max of training spectra"
        return {"low": np.asarray(lo, float), "high": np.asarray(hi, float),
                "mean": np.asarray(env.get("mean", (np.asarray(lo) + np.asarray(hi)) / 2), float),
                "kind": kind}
    ood = getattr(model, "ood_", None)
    if ood is not None and hasattr(ood, "components_"):
        sd = np.sqrt(np.sum(ood.variances_[:, None] * ood.components_**2, axis=0))
        return {"low": ood.mean_ - 1.645 * sd, "high": ood.mean_ + 1.645 * sd, "mean": ood.mean_,
                "kind": "approx. 5-95 % band of training spectra (PCA, Gaussian)"}
    return {}


@dataclass
class MeasuredPrediction:
    """Predictions for every spectrum of a :class:`MeasuredSpectra` (flat order, C order of nav)."""

    mean: np.ndarray  # (n, 6) label units
    std: np.ndarray  # (n, 6)
    ood_score: np.ndarray  # (n,)
    ood: np.ndarray  # (n,) bool (True also for failed pixels)
    onset: np.ndarray  # (n,) eV
    snr: np.ndarray  # (n,)
    reasons: np.ndarray  # (n,) "" or why the pixel failed
    X: np.ndarray | None  # (k, grid.n) model inputs of the first k spectra (keep_inputs), or None
    nav_shape: tuple
    grid: EnergyGrid
    label_names: list
    label_units: list
    provenance: dict = field(default_factory=dict)
    crop_energy: np.ndarray | None = None
    cropped: np.ndarray | None = None
    clipped: np.ndarray | None = None  # (n, 6) bool: mean clipped to its physical limits
    foreign: np.ndarray | None = None  # (n,) "" or the other elements' edges found (composition check)

    @property
    def valid(self) -> np.ndarray:
        return self.reasons == ""

    def as_map(self, values: np.ndarray) -> np.ndarray:
        """Reshape a per-spectrum array (n, ...) to the navigation shape."""
        return np.asarray(values).reshape(tuple(self.nav_shape) + np.asarray(values).shape[1:])


def _lowloss_rows(lowloss: MeasuredSpectra | None, measured: MeasuredSpectra):
    if lowloss is None:
        return None
    if lowloss.n_spectra not in (1, measured.n_spectra):
        raise CorelossError(f"low-loss {lowloss.source} has {lowloss.n_spectra} spectra, core-loss has "
                            f"{measured.n_spectra}: give one low-loss or one per pixel")
    return lowloss.flat()


def calibrate_shift(measured: MeasuredSpectra, config: PreprocessConfig, calibrate: str | None,
                    lowloss: MeasuredSpectra | None = None) -> dict | None:
    """Set ``config.shift_ev`` for ``calibrate`` ("auto" | "zlp" | None); returns what was done."""
    if calibrate is None:
        return None
    if calibrate == "zlp":
        if lowloss is None:
            raise CorelossError("--shift zlp needs the matching low-loss file (--lowloss)")
        config.shift_ev = edges.zlp_shift(lowloss.energy, lowloss.flat())
        return {"method": "zero-loss peak of the low-loss at 0 eV", "shift_eV": config.shift_ev}
    if calibrate == "auto":
        shift, est = edges.calibration_shift(measured.energy, _sample_rows(measured), config.edge_ev)
        config.shift_ev = shift
        return {"method": f"O K onset found by shape moved to {config.edge_ev:g} eV",
                "shift_eV": shift, "edge": est.to_dict()}
    raise CorelossError(f"unknown calibration {calibrate!r}: use a number of eV, 'auto' or 'zlp'")


def _sample_rows(measured: MeasuredSpectra, k: int = 4096) -> np.ndarray:
    """Up to ``k`` evenly spaced spectra (for the edge search on a mean spectrum)."""
    n = measured.n_spectra
    flat = measured.data.reshape(n, measured.energy.size)
    idx = np.unique(np.linspace(0, n - 1, min(n, k)).astype(int))
    return np.asarray(flat[idx], float)


def _edge_error(measured: MeasuredSpectra, config: PreprocessConfig, why: str) -> CorelossError:
    hint = edges.calibration_hint(measured.energy + config.shift_ev, _sample_rows(measured), config.edge_ev)
    return CorelossError(f"{measured.source}: {why}; {hint}")


#: a mean clipped to its physical limit from further out than this many (raw) sigmas is also OOD
CLIP_OOD_SIGMA = 1.0

_EDGE_REASONS = ("no O K edge", "onset outside", "background fit failed")


def predict_measured(measured: MeasuredSpectra, model, config: PreprocessConfig | None = None,
                     lowloss: MeasuredSpectra | None = None, batch: int = 1024, progress: bool = False,
                     keep_inputs: bool | int | None = None, workers: int | None = None,
                     calibrate: str | None = None, onset_offset_ev: float | None = None,
                     strict: bool = True) -> MeasuredPrediction:
    """Pre-process every spectrum of ``measured`` and run ``model`` (bounded means, combined OOD).

    ``config``: pre-processing parameters (``training_fwhm_ev`` defaults to the model's).
    ``keep_inputs``: keep the aligned inputs and cropped spectra: True (all), False (none), an
    integer k (the first k spectra), default all when <= 1000 spectra, else none.
    Spectra run in blocks of ``batch`` on ``workers`` threads (default: up to 2 cores); lazy (dask)
    ``measured.data`` is read block by block, so memory stays bounded for any image size.
    ``calibrate``: ``"auto"`` (edge by shape) or ``"zlp"`` (low-loss ZLP at 0 eV) sets the shift.
    ``onset_offset_ev``: for a model trained with the absolute onset, the declared calibration
    ``measured onset - engine onset`` (eV); such a model refuses spectra without it.
    Raises :class:`CorelossError` (with a ``--shift`` hint) when the O K edge is not where expected
    in every spectrum (``strict``; with ``strict=False`` such spectra are only marked failed).
    """
    config = _with_model_conventions(config or PreprocessConfig(), model)  # a copy: the caller's stays
    grid = model.grid
    n = measured.n_spectra
    if n == 0:
        raise CorelossError(f"{measured.source}: contains no spectra")
    absolute = bool(getattr(model, "absolute_onset", False))
    if absolute and onset_offset_ev is None:
        raise CorelossError("this model uses the absolute onset energy: declare the energy calibration "
                            "with onset_offset_ev (measured onset - engine onset, eV), or use an "
                            "onset-aligned model")
    calib = calibrate_shift(measured, config, calibrate, lowloss)
    if calibrate == "zlp":  # the low-loss shares the calibration: its ZLP now sits at 0 eV
        lowloss = MeasuredSpectra(lowloss.energy + config.shift_ev, lowloss.data, list(lowloss.nav_axes),
                                  dict(lowloss.metadata), lowloss.source)
    if keep_inputs is None:
        keep_inputs = n <= 1000
    n_keep = n if keep_inputs is True else (0 if keep_inputs is False else min(int(keep_inputs), n))
    keep = n_keep > 0
    ll = _lowloss_rows(lowloss, measured)
    k = len(model.label_names)
    mean, std = np.full((n, k), np.nan), np.full((n, k), np.nan)
    score, onset, snr = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    reasons = np.full(n, "", dtype=object)
    foreign = np.full(n, "", dtype=object)
    flag = np.ones(n, bool)  # failed pixels count as out of distribution
    clipped = np.zeros((n, k), bool)
    X = np.full((n_keep, grid.n), np.nan) if keep else None
    cropped, crop_energy, record = [], None, {}
    timing = {"read_s": 0.0, "preprocess_s": 0.0, "network_s": 0.0}  # summed over blocks/threads

    def one_block(a, b, block):
        t0 = time.perf_counter()
        low = None if ll is None else (lowloss.energy, ll if len(ll) == 1 else ll[a:b])
        try:
            p = preprocess_block(measured.energy, block, grid, config, low, keep_cropped=a < n_keep)
        except CorelossError as exc:
            if "no O K edge" not in str(exc) and "pre-edge region" not in str(exc):
                raise
            raise _edge_error(measured, config, str(exc).split(" (check")[0]) from None
        block_foreign = foreign_edges(measured.energy + config.shift_ev, block, o_k_onset_ev=config.edge_ev)
        t1 = time.perf_counter()
        ok, out = p.valid, None
        if ok.any():
            full = model.predict_full(p.X[ok], onset=p.onset[ok] - onset_offset_ev if absolute else None)
            m, fl = full["mean"], full["ood"]
            fl = fl | (full["clipped_sigma"] > CLIP_OOD_SIGMA).any(axis=1)  # clearly impossible
            if hasattr(model, "extrapolated"):  # labels outside the training range: also OOD
                fl = fl | model.extrapolated(m)
            fl = fl | (block_foreign[ok] != "")  # another element's edge: not SiO2
            out = (m, full["std"], full["ood_score"], fl, full["clipped"])
        return p, out, block_foreign, t1 - t0, time.perf_counter() - t1

    if lowloss is not None and config.deconvolve:
        workers = 1  # exspy's deconvolution toggles HyperSpy's global preferences: one thread
    for a, b, (p, out, fe, t_pre, t_net) in map_blocks(measured, one_block, batch, workers,
                                                   f"mapping {n} spectra" if progress else None, timing):
        record, crop_energy = p.record, p.energy
        onset[a:b], snr[a:b], reasons[a:b], foreign[a:b] = p.onset, p.snr, p.reasons, fe
        timing["preprocess_s"] += t_pre
        timing["network_s"] += t_net
        if out is not None:
            idx = np.arange(a, b)[p.valid]
            mean[idx], std[idx], score[idx], flag[idx], clipped[idx] = out
        if a < n_keep:
            X[a:min(b, n_keep)] = p.X[:n_keep - a]
            cropped.append(p.cropped[:n_keep - a])
    if strict and not (reasons == "").any():
        vals, counts = np.unique(reasons.astype(str), return_counts=True)
        main = vals[np.argmax(counts)]
        if main.startswith(_EDGE_REASONS):
            raise _edge_error(measured, config, f"no spectrum could be processed ({main})")
    threshold = 1.0 if hasattr(model, "combined_ood_") else getattr(getattr(model, "ood_", None),
                                                                     "threshold_", None)
    prov = {"coreloss_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "input": measured.describe(), "lowloss": lowloss.source if lowloss is not None else None,
            "preprocessing": record, "grid": grid.to_dict(),
            "model": {k2: (getattr(model, "metadata", {}) or {}).get(k2)
                      for k2 in ("format", "created", "coreloss_version", "n_train", "params")},
            "model_conventions": _conventions(model),
            "ood_threshold": threshold,
            "ood_rule": "OOD score > ood_threshold (combined: max over the model's flag scores, PCA and "
                        "latent kNN distance, of score / its threshold), or a predicted label outside the "
                        "training range widened by 10 % of it, or a mean clipped to its physical limits from "
                        "more than CLIP_OOD_SIGMA (1) raw standard deviations outside them, or a major "
                        "edge of another element in the spectrum (coreloss.measured.composition)",
            "composition_check": {"n_with_foreign_edges": int((foreign != "").sum()),
                                  "edges": sorted(set("; ".join(foreign[foreign != ""]).split("; ")) - {""})},
            "calibration": calib or {"method": "declared shift", "shift_eV": config.shift_ev},
            "absolute_onset": {"used": absolute, "onset_offset_eV": onset_offset_ev},
            "n_clipped": int(clipped.any(axis=1).sum()),
            "n_spectra": n, "n_failed": int((reasons != "").sum()),
            "units": dict(zip(model.label_names, model.label_units)),
            "timing": {k2: round(v, 3) for k2, v in timing.items()}}
    return MeasuredPrediction(mean, std, score, flag, onset, snr, reasons, X, measured.nav_shape, grid,
                              list(model.label_names), list(model.label_units), prov, crop_energy,
                              np.concatenate(cropped) if keep and cropped else None, clipped, foreign)


def _nav_index(res: MeasuredPrediction, i: int) -> tuple:
    return tuple(int(v) for v in np.unravel_index(i, res.nav_shape)) if res.nav_shape else ()


def records(res: MeasuredPrediction) -> list[dict]:
    """One dict per spectrum: nav index, each label's mean/std, OOD score/flag, onset, SNR, status."""
    out = []
    for i in range(len(res.reasons)):
        r = {"index": list(_nav_index(res, i))}
        for j, name in enumerate(res.label_names):
            r[name] = None if not np.isfinite(res.mean[i, j]) else float(res.mean[i, j])
            r[f"{name}_std"] = None if not np.isfinite(res.std[i, j]) else float(res.std[i, j])
        r["ood_score"] = None if not np.isfinite(res.ood_score[i]) else float(res.ood_score[i])
        r["ood"] = bool(res.ood[i])
        r["clipped"] = ";".join(n for n, c in zip(res.label_names, res.clipped[i]) if c) \
            if res.clipped is not None else ""
        r["onset_eV"] = None if not np.isfinite(res.onset[i]) else float(res.onset[i])
        r["snr"] = None if not np.isfinite(res.snr[i]) else float(res.snr[i])
        r["status"] = res.reasons[i] or "ok"
        r["foreign_edges"] = "" if res.foreign is None else str(res.foreign[i])
        out.append(r)
    return out


def check_writable(paths, overwrite: bool = False) -> None:
    """Refuse to overwrite existing results unless ``overwrite``."""
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise CorelossError(f"{existing[0]} already exists; choose another --out or pass --overwrite")


def write_predictions(res: MeasuredPrediction, out_dir, stem: str, overwrite: bool = False) -> list[Path]:
    """Write ``{stem}_predictions.csv`` and ``{stem}_predictions.json`` (with provenance)."""
    out_dir = Path(out_dir)
    csv_path, json_path = out_dir / f"{stem}_predictions.csv", out_dir / f"{stem}_predictions.json"
    check_writable([csv_path, json_path], overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = records(res)
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index"] + [k for k in rows[0] if k != "index"])
        for r in rows:
            w.writerow([":".join(map(str, r["index"]))] + ["" if v is None else v
                                                         for k, v in r.items() if k != "index"])
    json_path.write_text(json.dumps({"units": dict(zip(res.label_names, res.label_units)),
                                     "provenance": res.provenance, "spectra": rows}, indent=1, default=str))
    return [csv_path, json_path]


_SHORT = {"bond_length": "d(O-X)", "bond_angle": "X-O-X", "voronoi_volume": "V_vor", "bop": "BOP",
          "mulliken_charge": "q(O)", "excitation_energy": "E_exc"}


def results_table(res: MeasuredPrediction, max_rows: int = 40):
    """A rich Table of the predictions: one row per property for a single spectrum, else one row
    per spectrum (first ``max_rows``)."""
    from rich.table import Table
    src = Path(str(res.provenance.get("input", {}).get("source", ""))).name
    if len(res.reasons) == 1:
        t = Table(title=f"O-site properties: {src}")
        for col in ("property", "value", "±1σ", "unit"):
            t.add_column(col, justify="left" if col == "property" else "right")
        if res.reasons[0]:
            t.add_row("failed", res.reasons[0], "", "")
            return t
        for n, u, m, s in zip(res.label_names, res.label_units, res.mean[0], res.std[0]):
            t.add_row(n, f"{m:.4g}", f"{s:.2g}", u)
        t.add_row("OOD", "[red]yes[/]" if res.ood[0] else "no", f"score {res.ood_score[0]:.3g}", "")
        if res.foreign is not None and res.foreign[0]:
            t.add_row("other elements", "[red]" + res.foreign[0] + "[/]", "", "")
        t.add_row("SNR / onset", f"{res.snr[0]:.0f}", "", f"{res.onset[0]:.2f} eV")
        return t
    t = Table(title=f"O-site properties ±1σ: {src}")
    t.add_column("#")
    for name, unit in zip(res.label_names, res.label_units):
        t.add_column(f"{_SHORT.get(name, name)} {unit}", justify="right")
    t.add_column("OOD", justify="right")
    t.add_column("SNR", justify="right")
    for i in range(min(len(res.reasons), max_rows)):
        idx = ":".join(map(str, _nav_index(res, i)))
        if res.reasons[i]:
            t.add_row(idx, f"[yellow]failed: {res.reasons[i]}[/]", *([""] * (len(res.label_names) + 1)))
            continue
        vals = [f"{m:.4g}±{s:.2g}" for m, s in zip(res.mean[i], res.std[i])]
        t.add_row(idx, *vals, "[red]yes[/]" if res.ood[i] else "no", f"{res.snr[i]:.0f}")
    if len(res.reasons) > max_rows:
        t.caption = f"first {max_rows} of {len(res.reasons)} spectra; all in the CSV/JSON"
    return t


def plot_spectrum(res: MeasuredPrediction, model, path, index: int = 0) -> Path:
    """PNG: spectrum ``index`` as the model sees it, over the training envelope, with predictions."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if res.X is None or index >= len(res.X):
        raise CorelossError(f"input {index} was not kept; call predict_measured(..., keep_inputs="
                            f"{index + 1})")
    e = res.grid.energies
    fig, ax = plt.subplots(figsize=(7, 4.2))
    env = training_envelope(model)
    if env:
        ax.fill_between(e, env["low"], env["high"], color="0.85", label=env["kind"])
        ax.plot(e, env["mean"], color="0.5", lw=1, label="training mean")
    if res.valid[index]:
        ax.plot(e, res.X[index], color="C3", lw=1.5, label="measured (processed)")
        txt = "\n".join(f"{n} = {m:.3g} ± {s:.2g} {u}" for n, u, m, s in
                        zip(res.label_names, res.label_units, res.mean[index], res.std[index]))
        txt += f"\nOOD: {'YES' if res.ood[index] else 'no'} (score {res.ood_score[index]:.3g})"
        ax.text(0.98, 0.97, txt, transform=ax.transAxes, ha="right", va="top", fontsize=7,
                family="monospace", bbox={"fc": "white", "alpha": 0.8, "ec": "0.7"})
    else:
        ax.set_title(f"failed: {res.reasons[index]}")
    ax.set_xlabel("E - onset (eV)")
    ax.set_ylabel("intensity (unit area, 1/eV)")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
