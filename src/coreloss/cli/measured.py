"""``coreloss predict`` / ``coreloss map`` / ``coreloss synthetic-image``: measured spectra -> properties."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from coreloss.errors import CorelossError


def _finite(option: str, value: Optional[float], positive: bool = False) -> None:
    """Refuse NaN/inf (and, with ``positive``, values <= 0) for a numeric option."""
    if value is None:
        return
    if not np.isfinite(value):
        raise CorelossError(f"{option} must be a finite number, got {value}")
    if positive and not value > 0:
        raise CorelossError(f"{option} must be positive, got {value:g}")


def _window(text: Optional[str]):
    if not text:
        return None
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise CorelossError(f"--bg-window must be LO:HI in eV, got {text!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise CorelossError(f"--bg-window {text}: LO and HI must be finite numbers")
    if not hi > lo:
        raise CorelossError(f"--bg-window {text}: HI must exceed LO")
    return (lo, hi)


def _shift(text: str) -> tuple[float, Optional[str]]:
    """``--shift``: a number of eV, or ``auto`` (O K edge found by shape) / ``zlp`` (low-loss ZLP)."""
    if str(text).strip().lower() in ("auto", "zlp"):
        return 0.0, str(text).strip().lower()
    try:
        return float(text), None
    except ValueError:
        raise CorelossError(f"--shift must be a number of eV, 'auto' or 'zlp', got {text!r}") from None


def _config(shift, smooth, resolution, bg_window, no_background, edge):
    """``(config, calibrate)`` from the options, every value checked before any work."""
    from coreloss.measured import PreprocessConfig
    shift, calibrate = _shift(shift)
    _finite("--edge", edge, positive=True)
    _finite("--shift", shift)
    _finite("--resolution", resolution, positive=True)
    return PreprocessConfig(edge_ev=edge, shift_ev=shift, smooth=smooth, resolution_ev=resolution,
                            background=not no_background, background_window=_window(bg_window)), calibrate


def _read(path: Path, config, calibrate: Optional[str] = None):
    """Read ``path``; large files stay lazy (cropped to the edge window, streamed block by block;
    with ``--shift auto`` the window is 50 eV wider on each side for the edge search)."""
    from coreloss.measured.readers import LAZY_ABOVE_BYTES, read_measured
    big = path.is_file() and path.stat().st_size > LAZY_ABOVE_BYTES
    if not big:
        return read_measured(path)
    lo = min((config.background_window or (config.edge_ev - 30, 0))[0], config.edge_ev - 30) - 5
    wide = 50.0 if calibrate == "auto" else 0.0
    return read_measured(path, energy_range=(lo - config.shift_ev - wide, config.edge_ev + config.crop_ev[1]
                                             + 10 - config.shift_ev + wide), lazy=True, keep_lazy=True)


def _prepare(file: Path, model: Optional[Path], lowloss: Optional[Path], config, calibrate=None):
    """Check the inputs and read them: (model, measured, low-loss or None)."""
    from coreloss.fileio import check_input_file
    from coreloss.measured import load_model, read_measured
    from coreloss.models import inverse_model_path
    model = None if model is None else inverse_model_path(model)
    for opt, p in (("FILE", file), ("--lowloss", lowloss), ("--model", model)):
        if p is not None:
            check_input_file(p, opt)
    mdl = load_model(model)
    measured = _read(file, config, calibrate)
    ll = read_measured(lowloss) if lowloss is not None else None
    return mdl, measured, ll


def _predict(file: Path, mdl, measured, ll, config, keep_inputs=None, calibrate=None, workers=None):
    from coreloss.measured import predict_measured
    res = predict_measured(measured, mdl, config, lowloss=ll, progress=True, keep_inputs=keep_inputs,
                           calibrate=calibrate, workers=workers)
    if not res.valid.any():
        reasons, counts = np.unique(res.reasons.astype(str), return_counts=True)
        raise CorelossError(f"{file}: no spectrum could be processed ({reasons[np.argmax(counts)]})")
    return res


def _undo_on_error(paths):
    """Remove the files of ``paths`` written by this run (they did not exist before it)."""
    for p in paths:
        Path(p).unlink(missing_ok=True)


_MODEL = typer.Option(None, "--model", "-m", help="Inverse model file (.pt), or `xtb` for the shipped "
                      "xtb-trained one; default: the shipped default.")
_LOWLOSS = typer.Option(None, "--lowloss", help="Low-loss spectrum for Fourier-ratio deconvolution "
                        "(and the instrument resolution from its zero-loss peak).")
_SHIFT = typer.Option("0", "--shift", help="Energy calibration: shift added to the energy axis (eV), "
                      "'auto' (O K edge found by its shape, onset moved to --edge) or 'zlp' (the "
                      "--lowloss zero-loss peak moved to 0 eV).")
_SMOOTH = typer.Option(False, "--smooth", help="Savitzky-Golay smoothing (1.5 eV window, order 2).")
_RES = typer.Option(None, "--resolution", help="Instrument resolution, Gaussian FWHM (eV).")
_BGW = typer.Option(None, "--bg-window", help="Background fit window LO:HI (eV); default edge-30:edge-5.")
_NOBG = typer.Option(False, "--no-background", help="Skip background subtraction (XAS, pre-subtracted).")
_EDGE = typer.Option(532.0, "--edge", help="Nominal O K edge energy (eV).")
_OVER = typer.Option(False, "--overwrite", help="Replace existing result files in --out.")
_WORKERS = typer.Option(None, "--workers", help="Threads for pre-processing and the network "
                        "(default: the usable cores, at most 2).")


def predict(file: Path = typer.Argument(..., help="Spectrum file: .msa .dm3 .dm4 .hspy .emd .csv .txt"),
            model: Optional[Path] = _MODEL, lowloss: Optional[Path] = _LOWLOSS, shift: str = _SHIFT,
            smooth: bool = _SMOOTH, resolution: Optional[float] = _RES, bg_window: Optional[str] = _BGW,
            no_background: bool = _NOBG, edge: float = _EDGE,
            out: Path = typer.Option(Path("coreloss_results"), "--out", "-o", help="Output directory."),
            overwrite: bool = _OVER):
    """Six O-site properties (± 1σ) and an out-of-distribution flag for each spectrum in FILE."""
    from rich.console import Console

    from coreloss.measured.predict import (check_writable, plot_spectrum, results_table,
                                           write_predictions)
    from coreloss.fileio import check_output_dir
    stem = file.stem
    n_png_max = 10
    config, calibrate = _config(shift, smooth, resolution, bg_window, no_background, edge)
    check_output_dir(out)
    check_writable([out / f"{stem}_predictions.csv", out / f"{stem}_predictions.json"], overwrite)
    mdl, measured, ll = _prepare(file, model, lowloss, config, calibrate)
    n_png = min(measured.n_spectra, n_png_max)
    pngs = [out / (f"{stem}_spectrum.png" if measured.n_spectra == 1 else f"{stem}_spectrum_{i}.png")
            for i in range(n_png)]
    check_writable(pngs, overwrite)
    res = _predict(file, mdl, measured, ll, config, keep_inputs=n_png, calibrate=calibrate)
    fresh = [p for p in pngs + [out / f"{stem}_predictions.csv", out / f"{stem}_predictions.json"]
             if not p.exists()]
    try:
        paths = write_predictions(res, out, stem, overwrite)
        for i, p in enumerate(pngs):
            paths.append(plot_spectrum(res, mdl, p, i))
    except BaseException:
        _undo_on_error(fresh)  # no half-written result set that would block a rerun
        raise
    console = Console()
    console.print(results_table(res))
    n_ood = int(res.ood[res.valid].sum())
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    thr = res.provenance.get("ood_threshold")
    thr = "n/a" if thr is None else f"{thr:.3g}"
    console.print(f"{res.valid.sum()} of {len(res.valid)} spectra processed, {n_ood} out of distribution "
                  f"(OOD threshold {thr}); wrote " + ", ".join(str(p) for p in paths[:3]) + more)
    _report_foreign(res)


def map_(file: Path = typer.Argument(..., help="Spectrum image or line scan (.hspy .dm3 .dm4 .emd ...)"),
         model: Optional[Path] = _MODEL, lowloss: Optional[Path] = _LOWLOSS, shift: str = _SHIFT,
         smooth: bool = _SMOOTH, resolution: Optional[float] = _RES, bg_window: Optional[str] = _BGW,
         no_background: bool = _NOBG, edge: float = _EDGE,
         out: Path = typer.Option(..., "--out", "-o", help="Output directory."), overwrite: bool = _OVER,
         workers: Optional[int] = _WORKERS):
    """Property maps (or profiles) with uncertainty and OOD mask, as PNG and .hspy, for an image/line scan."""
    import time

    from rich.console import Console

    from coreloss.fileio import check_output_dir
    from coreloss.measured.maps import map_paths, save_maps
    from coreloss.measured.predict import check_writable
    config, calibrate = _config(shift, smooth, resolution, bg_window, no_background, edge)
    if workers is not None and workers < 1:
        raise CorelossError(f"--workers must be >= 1, got {workers}")
    check_output_dir(out)
    t0 = time.perf_counter()
    mdl, measured, ll = _prepare(file, model, lowloss, config, calibrate)
    if len(measured.nav_axes) not in (1, 2):
        raise CorelossError(f"{file}: `map` needs a line scan or a 2-D spectrum image, got navigation "
                            f"shape {measured.nav_shape or '()'}; use `coreloss predict` for single spectra")
    paths = map_paths(out, file.stem, mdl.label_names)
    check_writable(paths, overwrite)  # before any work: never after the computation
    res = _predict(file, mdl, measured, ll, config, keep_inputs=False, calibrate=calibrate, workers=workers)
    t1 = time.perf_counter()
    fresh = [p for p in paths if not p.exists()]
    try:
        paths = save_maps(res, measured, out, file.stem, overwrite)
    except BaseException:
        _undo_on_error(fresh)
        raise
    n_bad = int((~res.valid).sum())
    Console().print(f"mapped {res.valid.size} spectra {measured.nav_shape} in {t1 - t0:.1f} s: "
                    f"{n_bad} failed, {int(res.ood[res.valid].sum())} out of distribution; "
                    f"wrote {len(paths)} files to {out}/")
    _report_foreign(res)


def _report_foreign(res) -> None:
    """One line naming the other elements' edges found (composition check), if any."""
    check = res.provenance.get("composition_check") or {}
    if check.get("n_with_foreign_edges"):
        from rich.console import Console
        Console().print(f"{check['n_with_foreign_edges']} spectra show another element's edge (not SiO2; "
                        f"flagged): " + "; ".join(check["edges"][:6]))


def synthetic_image(dataset: Path = typer.Argument(..., help="Dataset file (HDF5) with spectra and labels."),
                    out: Path = typer.Option(..., "--out", "-o", help="Spectrum image to write (.hspy)."),
                    size: int = typer.Option(64, "--size", help="Image is SIZE x SIZE pixels."),
                    snr: float = typer.Option(50.0, "--snr", help="Edge-peak SNR, P/sqrt(P+B)."),
                    layout: str = typer.Option("field", "--layout", help="field (domains) or random."),
                    n_bad: int = typer.Option(0, "--n-bad", help="Pixels made to fail (NaN/zero/no edge)."),
                    seed: int = typer.Option(0, "--seed"), overwrite: bool = _OVER):
    """Write a synthetic EELS spectrum image from dataset spectra (known labels) for testing maps."""
    from coreloss.dataset import load_dataset
    from coreloss.fileio import check_output_file
    if size < 1 or n_bad < 0:
        raise CorelossError(f"--size must be >= 1 and --n-bad >= 0, got {size} and {n_bad}")
    if np.isnan(snr) or not snr > 0:
        raise CorelossError(f"--snr must be positive (inf: no noise), got {snr}")
    check_output_file(out, "--out")
    if out.exists() and not overwrite:
        raise CorelossError(f"{out} already exists; choose another name or pass --overwrite")
    from coreloss.measured.synthetic import synthetic_spectrum_image, write_hspy
    ds = load_dataset(dataset)
    si, truth = synthetic_spectrum_image(ds.X, ds.y, ds.grid, (size, size), snr, layout, n_bad=n_bad,
                                         seed=seed)
    write_hspy(si, out, truth, list(ds.label_names), overwrite)
    typer.echo(f"wrote {out}: {size}x{size} spectra at SNR {snr:g} (truth labels in original_metadata.truth)")


def register(app) -> None:
    """Add ``predict``, ``map`` and ``synthetic-image`` to the coreloss app."""
    app.command("predict")(predict)
    app.command("map")(map_)
    app.command("synthetic-image")(synthetic_image)
