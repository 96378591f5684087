"""``coreloss predict`` / ``coreloss map`` / ``coreloss synthetic-image``: measured spectra -> properties."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from coreloss.errors import CorelossError


def _window(text: Optional[str]):
    if not text:
        return None
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise CorelossError(f"--bg-window must be LO:HI in eV, got {text!r}") from None
    if not hi > lo:
        raise CorelossError(f"--bg-window {text}: HI must exceed LO")
    return (lo, hi)


def _read(path: Path, config):
    from coreloss.measured.readers import LAZY_ABOVE_BYTES, read_measured
    big = path.is_file() and path.stat().st_size > LAZY_ABOVE_BYTES
    if not big:
        return read_measured(path)
    lo = min((config.background_window or (config.edge_ev - 30, 0))[0], config.edge_ev - 30) - 5
    return read_measured(path, energy_range=(lo - config.shift_ev, config.edge_ev + config.crop_ev[1] + 10
                                             - config.shift_ev))


def _shift(text: str) -> tuple[float, Optional[str]]:
    """``--shift``: a number of eV, or ``auto`` (O K edge found by shape) / ``zlp`` (low-loss ZLP)."""
    if str(text).strip().lower() in ("auto", "zlp"):
        return 0.0, str(text).strip().lower()
    try:
        return float(text), None
    except ValueError:
        raise CorelossError(f"--shift must be a number of eV, 'auto' or 'zlp', got {text!r}") from None


def _run(file: Path, model: Optional[Path], lowloss: Optional[Path], shift: str, smooth: bool,
         resolution: Optional[float], bg_window: Optional[str], no_background: bool, edge: float):
    from coreloss.measured import PreprocessConfig, load_model, predict_measured, read_measured
    shift, calibrate = _shift(shift)
    config = PreprocessConfig(edge_ev=edge, shift_ev=shift, smooth=smooth, resolution_ev=resolution,
                              background=not no_background, background_window=_window(bg_window))
    mdl = load_model(model)
    measured = _read(file, config) if calibrate is None else read_measured(file)
    ll = read_measured(lowloss) if lowloss is not None else None
    res = predict_measured(measured, mdl, config, lowloss=ll, progress=True, calibrate=calibrate)
    if not res.valid.any():
        reasons, counts = np.unique(res.reasons.astype(str), return_counts=True)
        raise CorelossError(f"{file}: no spectrum could be processed ({reasons[np.argmax(counts)]})")
    return mdl, measured, res


_MODEL = typer.Option(None, "--model", "-m", help="Inverse model file (.pt); default: the shipped one.")
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
    stem = file.stem
    n_png_max = 10
    mdl, measured, res = _run(file, model, lowloss, shift, smooth, resolution, bg_window, no_background,
                              edge)
    n_png = min(measured.n_spectra, n_png_max)
    pngs = [out / (f"{stem}_spectrum.png" if measured.n_spectra == 1 else f"{stem}_spectrum_{i}.png")
            for i in range(n_png)]
    check_writable(pngs, overwrite)
    paths = write_predictions(res, out, stem, overwrite)
    for i, p in enumerate(pngs):
        paths.append(plot_spectrum(res, mdl, p, i))
    console = Console()
    console.print(results_table(res))
    n_ood = int(res.ood[res.valid].sum())
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    thr = res.provenance.get("ood_threshold")
    thr = "n/a" if thr is None else f"{thr:.3g}"
    console.print(f"{res.valid.sum()} of {len(res.valid)} spectra processed, {n_ood} out of distribution "
                  f"(OOD threshold {thr}); wrote " + ", ".join(str(p) for p in paths[:3]) + more)


def map_(file: Path = typer.Argument(..., help="Spectrum image or line scan (.hspy .dm3 .dm4 .emd ...)"),
         model: Optional[Path] = _MODEL, lowloss: Optional[Path] = _LOWLOSS, shift: str = _SHIFT,
         smooth: bool = _SMOOTH, resolution: Optional[float] = _RES, bg_window: Optional[str] = _BGW,
         no_background: bool = _NOBG, edge: float = _EDGE,
         out: Path = typer.Option(..., "--out", "-o", help="Output directory."), overwrite: bool = _OVER):
    """Property maps (or profiles) with uncertainty and OOD mask, as PNG and .hspy, for an image/line scan."""
    import time

    from rich.console import Console

    from coreloss.measured.maps import save_maps
    from coreloss.measured.predict import check_writable
    check_writable([out / f"{file.stem}_properties.hspy"], overwrite)
    t0 = time.perf_counter()
    _, measured, res = _run(file, model, lowloss, shift, smooth, resolution, bg_window, no_background, edge)
    if len(measured.nav_axes) not in (1, 2):
        raise CorelossError(f"{file}: `map` needs a line scan or a 2-D spectrum image, got navigation "
                            f"shape {measured.nav_shape or '()'}; use `coreloss predict` for single spectra")
    t1 = time.perf_counter()
    paths = save_maps(res, measured, out, file.stem, overwrite)
    n_bad = int((~res.valid).sum())
    Console().print(f"mapped {res.valid.size} spectra {measured.nav_shape} in {t1 - t0:.1f} s: "
                    f"{n_bad} failed, {int(res.ood[res.valid].sum())} out of distribution; "
                    f"wrote {len(paths)} files to {out}/")


def synthetic_image(dataset: Path = typer.Argument(..., help="Dataset file (HDF5) with spectra and labels."),
                    out: Path = typer.Option(..., "--out", "-o", help="Spectrum image to write (.hspy)."),
                    size: int = typer.Option(64, "--size", help="Image is SIZE x SIZE pixels."),
                    snr: float = typer.Option(50.0, "--snr", help="Edge-peak SNR, P/sqrt(P+B)."),
                    layout: str = typer.Option("field", "--layout", help="field (domains) or random."),
                    n_bad: int = typer.Option(0, "--n-bad", help="Pixels made to fail (NaN/zero/no edge)."),
                    seed: int = typer.Option(0, "--seed"), overwrite: bool = _OVER):
    """Write a synthetic EELS spectrum image from dataset spectra (known labels) for testing maps."""
    from coreloss.dataset import load_dataset
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
