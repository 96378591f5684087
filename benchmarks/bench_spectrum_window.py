"""Which part of the spectrum, and which broadening, carries the geometry? Group CV per variant.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_spectrum_window.py --data datasets/sio2_gpaw_lcao.h5 \
        [--stops 10 15 20 25] [--fwhm 1.0 0.5 0.3] [--arch mlp]

Window variants: the dataset's onset-aligned spectra cut at ``stop`` eV above the onset (grid
start unchanged) and area-normalised again over the cut window, so intensity far above the edge
(where LCAO basis artifacts and void ghost functions live) neither enters the input nor sets
its scale. Broadening variants (gpaw-lcao only): the rows whose provenance stores sticks
(``coreloss.engines.gpaw_lcao.rebroadened_spectra``), broadened again with each Gaussian FWHM
(Lorentzian 0.2 eV), full window; the stored 1.0 eV spectra of the same rows are the reference.

Every variant uses the same group k-fold folds (``coreloss.evaluate.split_groups``) and the same
model (``InverseModel(arch, members, epochs, seed)``; the augmentation is on, with
``training_fwhm`` set to the variant's width). Pooled out-of-fold R2 per label, averaged over
``--seeds``. Writes benchmarks/results/spectrum_window_<engine><--out-suffix>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_engine_information import SHORT  # noqa: E402
from coreloss.dataset_store import load_dataset  # noqa: E402
from coreloss.evaluate import cross_validate, split_groups  # noqa: E402
from coreloss.labels import LABEL_NAMES  # noqa: E402
from coreloss.models.inverse import InverseModel  # noqa: E402
from coreloss.spectra import EnergyGrid, normalise_area  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def cut_window(X, grid: EnergyGrid, stop: float) -> tuple[np.ndarray, EnergyGrid]:
    """Spectra ``X`` on ``grid`` cut at ``stop`` eV (onset reference) and area-normalised again."""
    g = EnergyGrid(grid.start, float(stop), grid.step)
    if g.n > grid.n:
        raise SystemExit(f"error: window stop {stop} eV is beyond the dataset grid ({grid.stop} eV)")
    return normalise_area(np.asarray(X)[:, :g.n], g.step), g


def run_cv(X, y, groups, grid, args, fwhm=None) -> dict:
    """Pooled out-of-fold R2 per label, averaged over ``args.seeds`` (same folds, other training seeds)."""
    hidden = (256, 128) if args.arch == "mlp" else (128,)
    runs = []
    for seed in args.seeds:
        cv = cross_validate(X, y, groups, lambda: InverseModel(arch=args.arch, hidden=hidden, members=args.members,
                                                               epochs=args.epochs, seed=seed, grid=grid,
                                                               training_fwhm=fwhm), n_splits=args.folds)
        runs.append({k: v["r2"] for k, v in cv["pooled"].items()})
    return {k: None if any(r[k] is None for r in runs) else float(np.mean([r[k] for r in runs])) for k in runs[0]}


def show(name: str, r2: dict, n: int) -> None:
    print(f"| {name} | {n} | " + " | ".join("-" if r2[k] is None else f"{r2[k]:.2f}" for k in LABEL_NAMES) + " |",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "sio2_gpaw_lcao.h5")
    ap.add_argument("--stops", type=float, nargs="*", default=[10.0, 15.0, 20.0, 25.0])
    ap.add_argument("--fwhm", type=float, nargs="*", default=[1.0, 0.5, 0.3])
    ap.add_argument("--min-sticks-groups", type=int, default=10,
                    help="run the broadening variants only with at least this many groups carrying sticks")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--arch", default="mlp", choices=("mlp", "cnn", "et"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds; R2 averaged over them")
    ap.add_argument("--out-suffix", default="", help="appended to the result file name")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds = load_dataset(args.data)
    engine = str(ds.provenance.get("engine"))
    groups = split_groups(ds)
    res = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "data": str(args.data),
           "engine": engine, "n_sites": len(ds), "n_groups": int(len(np.unique(groups))),
           "model": {"arch": args.arch, "members": args.members, "epochs": args.epochs, "folds": args.folds,
                     "seeds": args.seeds},
           "windows": {}, "broadening": {}}
    print(f"{args.data}: {len(ds)} sites, {res['n_groups']} groups; group {args.folds}-fold CV ({args.arch}), "
          "pooled R2\n\n| variant | sites | " + " | ".join(SHORT[k] for k in LABEL_NAMES) + " |\n|---|---|"
          + "---|" * 6)
    for stop in args.stops:
        X, g = cut_window(ds.X, ds.grid, stop)
        res["windows"][f"{ds.grid.start:g}..{stop:g}"] = r2 = run_cv(X, ds.y, groups, g, args)
        show(f"window {ds.grid.start:g}..{stop:g} eV", r2, len(ds))
    if engine == "gpaw-lcao" and args.fwhm:
        from coreloss.engines.gpaw_lcao import rebroadened_spectra
        e_x = ds.y[:, LABEL_NAMES.index("excitation_energy")]
        ref = rebroadened_spectra(ds.site_provenance, e_x, 1.0, grid=ds.grid)
        rows = np.flatnonzero(np.all(np.isfinite(ref), axis=1))
        n_g = len(np.unique(groups[rows]))
        res["broadening"]["rows_with_sticks"], res["broadening"]["groups_with_sticks"] = int(len(rows)), n_g
        if n_g < max(args.min_sticks_groups, args.folds):
            print(f"\nbroadening variants skipped: {len(rows)} rows of {n_g} groups carry sticks "
                  f"(need {args.min_sticks_groups} groups)")
        else:
            res["broadening"]["max_abs_diff_stored_vs_sticks_1eV"] = float(np.max(np.abs(ref[rows] - ds.X[rows])))
            r2 = run_cv(ds.X[rows], ds.y[rows], groups[rows], ds.grid, args)
            res["broadening"]["stored 1.0 eV"] = r2
            show("stored spectra (1.0 eV), rows with sticks", r2, len(rows))
            for fw in args.fwhm:
                X = rebroadened_spectra([ds.site_provenance[i] for i in rows], e_x[rows], fw, grid=ds.grid)
                res["broadening"][f"{fw:g} eV"] = r2 = run_cv(X, ds.y[rows], groups[rows], ds.grid, args, fwhm=fw)
                show(f"sticks, Gaussian {fw:g} eV", r2, len(rows))
    res["seconds"] = time.perf_counter() - t0
    out = ROOT / "benchmarks" / "results" / f"spectrum_window_{engine}{args.out_suffix}.json"
    out.write_text(json.dumps(res, indent=1))
    print(f"\nwrote {out} ({res['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
