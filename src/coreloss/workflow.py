"""Library workflow: train the inverse and/or forward model on a dataset's training structures,
score them on its held-out structures, write them. ``coreloss train`` and the shipping of the
default models (``benchmarks/bench_models.py --ship``, ``bench_forward.py --ship``) both use it.

>>> from coreloss.workflow import train_and_evaluate, write_models          # doctest: +SKIP
>>> run = train_and_evaluate(load_dataset("set.h5"), InverseModel(members=5))  # doctest: +SKIP
>>> write_models(run, inverse_out="inverse.pt", overwrite=True)            # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from coreloss.errors import CorelossError
from coreloss.evaluate import evaluate_inverse, spectrum_metrics, split_groups, test_mask
from coreloss.fileio import atomic_write_bytes

#: ``progress(task, total)`` returns a callback called once per epoch (or None)
ProgressFactory = Callable[[str, int], "Callable[[], None] | None"]
SHIPPED_DIR = Path(__file__).resolve().parent / "data"


@dataclass
class TrainedModels:
    """Fitted models (None where not asked for), the split used and the held-out metrics."""

    inverse: object | None
    forward: object | None
    split: dict
    metrics: dict = field(default_factory=dict)


def train_and_evaluate(ds, inverse=None, forward=None, *, test_fraction: float = 0.15, split_seed: int = 0,
                       include_test: bool = False, dataset_path=None,
                       progress: ProgressFactory | None = None, auxiliary=None) -> TrainedModels:
    """Fit clones of the unfitted estimators ``inverse`` (:class:`~coreloss.models.inverse.InverseModel`)
    and ``forward`` (:class:`~coreloss.models.forward.ForwardModel`) on the structures of dataset ``ds``
    outside the hash test split (``test_fraction``, ``split_seed``; all of them with ``include_test``),
    on the dataset's grid, and record the held-out metrics in each model's metadata. ``auxiliary``
    (:class:`coreloss.multifidelity.AuxiliaryRows`, e.g. xtb spectra) joins the inverse model's
    training rows, less its rows of held-out groups; the forward model learns from ``ds`` only."""
    from sklearn.base import clone

    if inverse is None and forward is None:
        raise CorelossError("nothing to train: give an inverse and/or a forward model")
    rows = training_rows(ds, None if include_test else test_fraction, split_seed, auxiliary)
    te = rows.test
    tr = ~te
    split = {"test_fraction": None if include_test else test_fraction, "seed": split_seed,
             "train_structures": int(len(np.unique(ds.structure_ids[tr])))}
    prov = {"dataset": None if dataset_path is None else str(dataset_path),
            "dataset_provenance": ds.provenance, "split": split}
    run = TrainedModels(None, None, split)
    if inverse is not None:
        inv = clone(inverse).set_params(grid=ds.grid)
        what, steps = inv.progress_task(rows.y)
        cb = progress(f"training {what}", steps) if progress else None
        if auxiliary is not None:
            prov = {**prov, "auxiliary": auxiliary.record(int((~rows.primary).sum()))}
        inv.fit(rows.X, rows.y, groups=rows.groups, primary=None if auxiliary is None else rows.primary,
                provenance=prov, progress=cb)
        if te.any():
            res = evaluate_inverse(inv, ds, test_fraction, split_seed)
            inv.metadata["test_metrics"] = res["metrics"]["test"]
            inv.metadata["coverage_95"] = res["metrics"]["coverage_95"]
            run.metrics["inverse"] = res["metrics"]
        run.inverse = inv
    if forward is not None:
        fm = clone(forward).set_params(grid=ds.grid)
        cb = progress("training forward model", fm.epochs) if progress else None
        fm.fit(ds.structures, ds.X[tr], ds.structure_ids[tr], ds.site_index[tr], provenance=prov, progress=cb)
        if te.any():
            pred = fm.predict_features(fm.features(ds.structures, ds.structure_ids[te], ds.site_index[te]))
            fm.metadata["test_metrics"] = spectrum_metrics(ds.X[te], pred, ds.grid)
            run.metrics["forward"] = {"test": fm.metadata["test_metrics"]}
        run.forward = fm
    return run


@dataclass
class TrainingRows:
    """The rows an inverse model is fitted on: spectra, labels, groups, ``primary`` (rows of the
    dataset itself, not auxiliary) and ``test`` (the dataset's held-out rows, bool per dataset row)."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    primary: np.ndarray
    test: np.ndarray


def training_rows(ds, test_fraction: float | None = 0.15, split_seed: int = 0, auxiliary=None) -> TrainingRows:
    """The inverse model's training rows of dataset ``ds`` as :func:`train_and_evaluate` builds them
    (hash split by structure group; ``test_fraction`` None: every row), joined by ``auxiliary``
    rows outside the test groups. With a model's ``training_provenance.split`` this rebuilds the
    rows it was fitted on (then ``InverseModel.fit_rows`` gives its validation and OOD rows)."""
    groups = split_groups(ds)
    te = np.zeros(len(ds), bool) if test_fraction is None else test_mask(groups, test_fraction, split_seed)
    if auxiliary is None:
        return TrainingRows(ds.X[~te], ds.y[~te], groups[~te], np.ones(int((~te).sum()), bool), te)
    X, y, g, primary = auxiliary.joined(ds.X[~te], ds.y[~te], groups[~te], held_out=groups[te])
    return TrainingRows(X, y, g, primary, te)


def refuse_existing(paths, overwrite: bool) -> None:
    """CorelossError naming the first of ``paths`` that exists, unless ``overwrite``."""
    existing = [str(p) for p in paths if p is not None and Path(p).exists()]
    if existing and not overwrite:
        raise CorelossError(f"{existing[0]} already exists; choose another output or pass --overwrite")


def write_models(run: TrainedModels, inverse_out=None, forward_out=None, metrics_out=None,
                 metrics: dict | None = None, overwrite: bool = False) -> list[Path]:
    """Write the fitted models (atomically) and, with ``metrics_out``, merge ``metrics``
    (``{"inverse": {...}, "forward": {...}}``, default: the run's) into that JSON file.
    Every target is checked before anything is written."""
    outs = [(inverse_out, run.inverse, "inverse"), (forward_out, run.forward, "forward")]
    for path, model, name in outs:
        if path is not None and model is None:
            raise CorelossError(f"no {name} model was trained; cannot write {path}")
    refuse_existing([inverse_out, forward_out], overwrite)
    written = [model.save(path) for path, model, _ in outs if path is not None]
    if metrics_out is not None:
        mpath = Path(metrics_out)
        doc = json.loads(mpath.read_text()) if mpath.is_file() else {}
        for name, entry in (metrics if metrics is not None else run.metrics).items():
            path = dict((n, p) for p, _, n in outs).get(name)
            doc[name] = {**({"file": Path(path).name, "size_bytes": Path(path).stat().st_size} if path else {}),
                         "split": run.split, **entry}
        written.append(atomic_write_bytes(mpath, json.dumps(doc, indent=2, default=float).encode()))
    return written


def ship(ds, inverse=None, forward=None, metrics: dict | None = None, dataset_path=None,
         out_dir=SHIPPED_DIR, progress: ProgressFactory | None = None, auxiliary=None) -> TrainedModels:
    """Train the default model(s) with :func:`train_and_evaluate` and write them to ``out_dir``
    (``inverse_model.pt``, ``forward_model.pt``, entries of ``model_metrics.json``; replaced)."""
    run = train_and_evaluate(ds, inverse, forward, dataset_path=dataset_path, progress=progress,
                             auxiliary=auxiliary)
    out_dir = Path(out_dir)
    merged = {k: {**run.metrics.get(k, {}), **(metrics or {}).get(k, {})}
              for k in ("inverse", "forward") if getattr(run, k) is not None}
    write_models(run, out_dir / "inverse_model.pt" if inverse is not None else None,
                 out_dir / "forward_model.pt" if forward is not None else None,
                 out_dir / "model_metrics.json", merged, overwrite=True)
    return run
