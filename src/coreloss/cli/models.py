"""``coreloss train | evaluate | simulate``: fit, assess and apply the inverse and forward models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def _refuse_existing(paths, overwrite: bool) -> None:
    from coreloss.workflow import refuse_existing

    refuse_existing(paths, overwrite)


def _write_json(path: Path, doc: dict) -> None:
    from coreloss.fileio import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(doc, indent=2, default=float).encode())


def _rich_progress(console):
    """A :data:`coreloss.workflow.ProgressFactory` drawing one transient rich bar per task."""
    from rich.progress import Progress

    bar = Progress(console=console, transient=True)

    def start(task: str, total: int):
        bar.start()
        tid = bar.add_task(task, total=total)

        def advance():
            bar.advance(tid)
            if bar.tasks[tid].finished:
                bar.stop()
        return advance
    return start


OVERWRITE_HELP = "Replace existing output files."


def train(
    data: Path = typer.Argument(..., help="Dataset file (HDF5, `coreloss dataset build`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Inverse model file to write (.pt)."),
    arch: str = typer.Option("mlp", "--arch", help="Model: mlp or cnn (deep ensemble of networks), et or rf "
                             "(extremely randomised trees / random forest; coreloss.models.forest)."),
    members: int = typer.Option(5, "--members", help="Deep-ensemble size."),
    epochs: int = typer.Option(150, "--epochs", help="Training epochs per member."),
    hidden: str = typer.Option("256,128", "--hidden", help="Hidden sizes (MLP) / dense size first (CNN)."),
    test_fraction: float = typer.Option(0.15, "--test-fraction", help="Held-out structures (hash split)."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the structure hash split."),
    include_test: bool = typer.Option(False, "--include-test", help="Also train on the test structures."),
    seed: int = typer.Option(0, "--seed", help="Seed of the networks and augmentation."),
    forward_out: Optional[Path] = typer.Option(None, "--forward-out", help="Also train a forward model."),
    forward_epochs: int = typer.Option(300, "--forward-epochs", help="Forward-model epochs."),
    metrics_out: Optional[Path] = typer.Option(None, "--metrics-out",
                                               help="Also write the held-out metrics (JSON)."),
    threads: int = typer.Option(1, "--threads", help="Torch threads for training."),
    select: bool = typer.Option(
        False, "--select", help="Choose the model (networks or trees, size, regularisation, augmentation) by "
        "group k-fold CV on the training structures, scored on clean and measured-like validation spectra "
        "(coreloss.models.tuning; overrides --arch/--hidden)."),
    cv_folds: int = typer.Option(5, "--cv-folds", help="Folds for --select."),
    also: Optional[Path] = typer.Option(
        None, "--also", help="Auxiliary dataset of another engine (e.g. xtb) joined to the inverse model's "
        "training rows: its geometric labels only, its held-out structures left out "
        "(coreloss.multifidelity); the OOD flag and the forward model use DATA only."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
):
    """Train the inverse model (deep ensemble or tree ensemble) on the training structures of DATA."""
    from rich.console import Console

    from coreloss.dataset import load_dataset
    from coreloss.errors import CorelossError
    from coreloss.fileio import check_input_file, check_output_file

    from coreloss.models.forest import FOREST_ARCHS
    from coreloss.models.networks import ARCHITECTURES

    console = Console(stderr=True)
    if arch not in ARCHITECTURES + FOREST_ARCHS:
        raise CorelossError(f"--arch must be one of {', '.join(ARCHITECTURES + FOREST_ARCHS)}, not {arch!r}")
    try:
        hidden_t = tuple(int(h) for h in hidden.split(","))
    except ValueError:
        raise CorelossError(f"bad --hidden {hidden!r}: expected comma-separated integers")
    for opt, p in (("--out", out), ("--forward-out", forward_out), ("--metrics-out", metrics_out)):
        if p is not None:
            check_output_file(p, opt)
    if select and cv_folds < 2:
        raise CorelossError("--cv-folds must be >= 2")
    if members < 1 or epochs < 1 or forward_epochs < 1 or threads < 1 or not 0 < test_fraction < 1:
        raise CorelossError("--members, --epochs, --forward-epochs, --threads must be >= 1 and "
                            "--test-fraction in (0, 1)")
    _refuse_existing([out, forward_out, metrics_out], overwrite)
    check_input_file(data, "DATA")
    if also is not None:
        check_input_file(also, "--also")
    import numpy as np
    import torch

    from coreloss.evaluate import split_groups, test_mask
    from coreloss.models.forward import ForwardModel
    from coreloss.models.inverse import InverseModel
    from coreloss.workflow import train_and_evaluate, write_models

    torch.set_num_threads(threads)
    ds = load_dataset(data)
    groups = split_groups(ds)
    te = np.zeros(len(ds), bool) if include_test else test_mask(groups, test_fraction, split_seed)
    console.print(f"{data}: {len(ds)} sites / {len(ds.structures)} structures; training on "
                  f"{int((~te).sum())} sites of {len(np.unique(ds.structure_ids[~te]))} structures")
    auxiliary = None
    if also is not None:
        from coreloss.multifidelity import AuxiliaryRows

        auxiliary = AuxiliaryRows.load(also, ds)
        console.print(f"{also}: {len(auxiliary.X)} {auxiliary.engine} sites join the inverse model's training "
                      f"rows (less those of held-out structures)")
    inverse = InverseModel(arch=arch, members=members, epochs=epochs, hidden=hidden_t, seed=seed)
    selection = None
    if select:
        from coreloss.models.tuning import INVERSE_CANDIDATES, best_params, cv_select

        sel = cv_select(inverse, INVERSE_CANDIDATES, ds.X[~te], ds.y[~te], groups[~te], n_splits=cv_folds,
                        auxiliary=None if auxiliary is None else auxiliary.without(groups[te]),
                        progress=lambda i, c, sc: console.print(f"  CV candidate {i + 1}/{len(INVERSE_CANDIDATES)} "
                                                                 f"{c}: mean R2 {sc:.3f}"))
        chosen = best_params(sel)
        inverse.set_params(**chosen)
        console.print(f"chosen by {cv_folds}-fold group CV: {chosen}")
        selection = {"folds": cv_folds, "score": "mean pooled out-of-fold R2 over labels, averaged over clean "
                     "and measured-like (coreloss.models.tuning.measured_like) validation spectra",
                     "candidates": [{k: r[k] for k in ("params", "score", "score_clean", "score_degraded")}
                                    for r in sel]}
    run = train_and_evaluate(
        ds, inverse,
        ForwardModel(epochs=forward_epochs, seed=seed) if forward_out else None,
        test_fraction=test_fraction, split_seed=split_seed, include_test=include_test, dataset_path=data,
        progress=_rich_progress(console), auxiliary=auxiliary)
    if selection is not None:
        run.inverse.metadata["selection"] = selection
    for name, m in run.inverse.metadata.get("test_metrics", {}).items():
        if m["r2"] is not None:
            console.print(f"  test {name:18s} R2 {m['r2']:.3f}  MAE {m['mae']:.4g}")
    if run.forward is not None and "test_metrics" in run.forward.metadata:
        console.print(f"  forward test cosine {run.forward.metadata['test_metrics']['cosine_mean']:.4f}")
    for path in write_models(run, out, forward_out, metrics_out, overwrite=overwrite):
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    console.print(f"inverse model trained in {run.inverse.metadata['train_seconds']:.0f} s")


def evaluate(
    data: Path = typer.Argument(..., help="Dataset file (HDF5)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (metrics.json, parity.png)."),
    model_path: Optional[Path] = typer.Option(
        None, "--model", help="Inverse model file, or `xtb` for the shipped xtb-trained one (default: shipped)."),
    cv: bool = typer.Option(False, "--cv", help="Also run group k-fold CV, retraining the model's setup."),
    folds: int = typer.Option(5, "--folds", help="Folds for --cv."),
    transfer: bool = typer.Option(
        False, "--transfer", help="DATA is a reference set the model never saw (another engine or code): "
        "score every site, geometric labels only unless --labels; writes transfer.json/.csv."),
    labels: Optional[str] = typer.Option(
        None, "--labels", help="With --transfer: comma-separated labels to score (default: geometric)."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
):
    """Metrics (MAE, RMSE, R2 per label), 95% coverage, OOD rates and a parity plot on DATA."""
    if transfer:
        return _evaluate_transfer(data, out, model_path, labels, overwrite)
    from rich.console import Console

    from coreloss.dataset import load_dataset
    from coreloss.evaluate import cross_validate, evaluate_inverse, parity_figure, split_groups
    from coreloss.models import inverse_model_path
    from coreloss.models.inverse import InverseModel

    from coreloss.errors import CorelossError
    from coreloss.fileio import check_input_file, check_output_dir

    console = Console(stderr=True)
    check_output_dir(out)
    if folds < 2:
        raise CorelossError(f"--folds must be >= 2, got {folds}")
    _refuse_existing([out / "metrics.json", out / "parity.png"], overwrite)
    check_input_file(data, "DATA")
    out.mkdir(parents=True, exist_ok=True)
    model_path = inverse_model_path(model_path)
    model = InverseModel.load(model_path)
    ds = load_dataset(data)
    split = model.metadata.get("training_provenance", {}).get("split", {})
    fraction = split.get("test_fraction") or 0.15
    if split and split.get("test_fraction") is None:
        console.print("[yellow]warning[/yellow]: this model was trained on all structures; "
                      "its test metrics are not held-out metrics")
    res = evaluate_inverse(model, ds, fraction, int(split.get("seed", 0)))
    metrics = {"dataset": str(data), "dataset_provenance": ds.provenance, "model": str(model_path),
               "model_metadata": model.metadata, **res["metrics"]}
    if cv:
        from sklearn.base import clone
        auxiliary = _recorded_auxiliary(model, ds, console)
        cvres = cross_validate(ds.X, ds.y, split_groups(ds), lambda: clone(model).set_params(grid=ds.grid),
                               n_splits=folds, auxiliary=auxiliary)
        metrics["cv"] = {k: v for k, v in cvres.items() if k != "oof"}
        metrics["cv"]["auxiliary"] = None if auxiliary is None else auxiliary.record()
    a = res["arrays"]
    parity_figure(a["y_train"], a["p_train"], a["y_test"], a["p_test"], out / "parity.png",
                  ds.label_names, ds.label_units, title=f"{Path(data).name}: inverse model")
    _write_json(out / "metrics.json", metrics)
    for name, m in res["metrics"]["test"].items():
        r2 = f"{m['r2']:.3f}" if m["r2"] is not None else "n/a"
        console.print(f"test {name:18s} R2 {r2}  MAE {m['mae']:.4g}  "
                      f"95%-coverage {res['metrics']['coverage_95'][name]:.2f}")
    console.print(f"wrote {out / 'metrics.json'} and {out / 'parity.png'}")


def _recorded_auxiliary(model, ds, console):
    """The auxiliary rows a model was trained with (its recorded ``--also`` dataset), or None."""
    rec = model.metadata.get("training_provenance", {}).get("auxiliary")
    if not rec:
        return None
    from coreloss.multifidelity import AuxiliaryRows

    src = Path(rec.get("source") or "")
    if not src.is_file():
        console.print(f"[yellow]warning[/yellow]: the model was trained with auxiliary rows from {src}, which is "
                      "not here: CV retrains without them")
        return None
    return AuxiliaryRows.load(src, ds)


def _evaluate_transfer(data: Path, out: Path, model_path, labels, overwrite: bool) -> None:
    """``coreloss evaluate --transfer``: every site of DATA is held out; per-site CSV + metrics."""
    import csv

    from rich.console import Console

    from coreloss.dataset import load_dataset
    from coreloss.evaluate import evaluate_transfer
    from coreloss.models import inverse_model_path
    from coreloss.models.inverse import InverseModel

    from coreloss.fileio import check_input_file, check_output_dir

    console = Console(stderr=True)
    files = [out / "transfer.json", out / "transfer.csv"]
    check_output_dir(out)
    _refuse_existing(files, overwrite)
    check_input_file(data, "DATA")
    mpath = inverse_model_path(model_path)
    model = InverseModel.load(mpath)
    ds = load_dataset(data)
    names = [n.strip() for n in labels.split(",") if n.strip()] if labels else None
    res = evaluate_transfer(model, ds, names)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"dataset": str(data), "dataset_provenance": ds.provenance, "model": str(mpath),
           "model_training": model.metadata.get("training_provenance", {}).get("dataset_provenance", {})
           .get("engine"), **res["metrics"], "sites": res["sites"]}
    _write_json(files[0], doc)
    with open(files[1], "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(res["sites"][0]) if res["sites"] else ["structure_id"])
        w.writeheader()
        w.writerows(res["sites"])
    m = res["metrics"]
    for name in m["labels"]:
        a = m["all"][name]
        r2 = f"{a['r2']:.3f}" if a["r2"] is not None else "n/a"
        console.print(f"transfer {name:18s} MAE {a['mae']:.4g} {m['units'][name]}  R2 {r2}  "
                      f"95%-coverage {m['coverage_95'][name]:.2f}")
    console.print(f"{m['n_sites']} sites of {m['n_structures']} structures ({m['reference_engine']}); "
                  f"OOD-flagged {100 * m['ood_flag_rate']:.0f} %; wrote {files[0]} and {files[1]}")
    if m.get("seen_group_sites"):
        console.print(f"note: {m['seen_group_sites']} of these sites belong to structure groups the model was "
                      "trained on (column seen_group): not a strict transfer test for them")


def simulate(
    structure: Path = typer.Argument(..., help="Structure file (CIF, POSCAR, ...) or a structure set."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (spectra.csv, sites.csv, spectra.png)."),
    sid: Optional[str] = typer.Option(None, "--id", help="Structure id when STRUCTURE is a structure set."),
    model_path: Optional[Path] = typer.Option(None, "--model", help="Forward model (default: shipped)."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
):
    """Predict the O K-edge spectrum of every O site and the multiplicity-weighted total."""
    import numpy as np

    from coreloss.models import default_forward_model_path
    from coreloss.models.forward import ForwardModel

    from coreloss.fileio import check_output_dir
    from coreloss.structures.io import read_structure
    check_output_dir(out)
    files = [out / n for n in ("spectra.csv", "sites.csv", "spectra.png")]
    _refuse_existing(files, overwrite)
    _, s = read_structure(structure, sid)
    model = ForwardModel.load(model_path or default_forward_model_path())
    out.mkdir(parents=True, exist_ok=True)
    sites, spectra, total = model.predict_structure(s)
    e = model.grid.energies
    cols = ["energy_eV"] + [f"O{st.index}" for st in sites] + ["total"]
    np.savetxt(files[0], np.column_stack([e, spectra.T, total]), delimiter=",", fmt="%.6g",
               header=",".join(cols), comments="")
    with open(files[1], "w") as fh:
        fh.write("site_index,multiplicity,coordination,bond_length_A,bond_angle_deg,voronoi_volume_A3\n")
        for st in sites:
            fh.write(f"{st.index},{st.multiplicity},{st.coordination},{st.bond_length:.5f},"
                     f"{st.bond_angle:.3f},{st.voronoi_volume:.4f}\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for st, sp in zip(sites, spectra):
        ax.plot(e, sp, lw=0.8, alpha=0.6, label=f"O{st.index} (x{st.multiplicity})")
    ax.plot(e, total, "k", lw=2, label="total")
    ax.set_xlabel("E - onset (eV)")
    ax.set_ylabel("intensity (1/eV, unit area)")
    ax.set_title(f"{s.composition.reduced_formula}: forward-model O K edge")
    if len(sites) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(files[2], dpi=120)
    plt.close(fig)
    typer.echo(f"{len(sites)} O sites; wrote {', '.join(str(f) for f in files)}")


def register(app) -> None:
    """Add this module's commands to the coreloss app."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("simulate")(simulate)
