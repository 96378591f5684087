"""Evaluation: structure-grouped splits, per-label metrics, calibration, spectrum errors, parity plots.

* :func:`test_mask` - the fixed held-out test set: a structure is in it when a seeded SHA-256 hash
  of its id falls below ``fraction``, so membership never changes as the dataset grows.
* :func:`group_kfold` - k-fold cross-validation by structure (scikit-learn ``GroupKFold``).
* :func:`split_groups` - the id every split keeps on one side: a structure's ``meta["group"]`` (thermal
  snapshots, relaxations and high-pressure cells of one parent share it), else the structure id.
  Pass it to :func:`test_mask` / :func:`group_kfold` / ``fit(groups=...)`` instead of structure ids.
* :func:`regression_metrics` - MAE, RMSE, R2 per label (NaN targets skipped).
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from coreloss.errors import CorelossError
from coreloss.labels import LABEL_NAMES, LABEL_UNITS


# ----------------------------------------------------------------------------- splits
def split_groups(ds) -> np.ndarray:
    """Group id per row of a :class:`coreloss.dataset.Dataset`: the structure record's
    ``meta["group"]``, or the structure id where the record has none."""
    meta = getattr(ds, "structure_meta", None) or {}
    ids = np.asarray(ds.structure_ids).astype(str)
    lookup = {sid: str((meta.get(sid) or {}).get("meta", {}).get("group") or sid) for sid in np.unique(ids)}
    return np.array([lookup[s] for s in ids], dtype=str)


def structure_hash(structure_id: str, seed: int = 0) -> float:
    """Deterministic number in [0, 1) from ``seed`` and ``structure_id``."""
    h = hashlib.sha256(f"{seed}:{structure_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def test_mask(structure_ids, fraction: float = 0.15, seed: int = 0) -> np.ndarray:
    """Boolean mask of rows whose structure is in the fixed test set (at least one structure)."""
    ids = np.asarray(structure_ids).astype(str)
    uniq = np.unique(ids)
    if len(uniq) < 2:
        raise CorelossError("a train/test split needs at least 2 structures")
    h = {u: structure_hash(u, seed) for u in uniq}
    test_ids = {u for u in uniq if h[u] < fraction}
    if not test_ids:
        test_ids = {min(uniq, key=h.get)}
    if len(test_ids) == len(uniq):
        test_ids.discard(max(uniq, key=h.get))
    return np.isin(ids, sorted(test_ids))


test_mask.__test__ = False  # not a pytest test


def group_kfold(structure_ids, n_splits: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(train_idx, test_idx)] * n_splits`` with every structure in exactly one test fold."""
    from sklearn.model_selection import GroupKFold

    ids = np.asarray(structure_ids).astype(str)
    n_groups = len(np.unique(ids))
    if n_groups < n_splits:
        raise CorelossError(f"{n_splits}-fold cross-validation needs >= {n_splits} structures, got {n_groups}")
    return list(GroupKFold(n_splits=n_splits).split(np.zeros(len(ids)), groups=ids))


# ----------------------------------------------------------------------------- metrics
def regression_metrics(y_true, y_pred, label_names=LABEL_NAMES) -> dict:
    """``{label: {mae, rmse, r2, n}}`` in label units; rows with a NaN target are skipped per label."""
    y_true, y_pred = np.atleast_2d(np.asarray(y_true, float)), np.atleast_2d(np.asarray(y_pred, float))
    out = {}
    for j, name in enumerate(label_names):
        ok = np.isfinite(y_true[:, j]) & np.isfinite(y_pred[:, j])
        t, p = y_true[ok, j], y_pred[ok, j]
        if not len(t):
            out[name] = {"mae": None, "rmse": None, "r2": None, "n": 0}
            continue
        ss_tot = float(np.sum((t - t.mean()) ** 2))
        ss_res = float(np.sum((t - p) ** 2))
        out[name] = {"mae": float(np.mean(np.abs(t - p))), "rmse": float(np.sqrt(np.mean((t - p) ** 2))),
                     "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else None, "n": int(len(t))}
    return out


def interval_coverage(y_true, mean, std, level: float = 0.95, label_names=LABEL_NAMES) -> dict:
    """Fraction of finite targets inside the central Gaussian ``level`` interval, per label."""
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    y_true, mean, std = (np.atleast_2d(np.asarray(a, float)) for a in (y_true, mean, std))
    out = {}
    for j, name in enumerate(label_names):
        ok = np.isfinite(y_true[:, j])
        inside = np.abs(y_true[ok, j] - mean[ok, j]) <= z * std[ok, j]
        out[name] = float(np.mean(inside)) if ok.any() else None
    return out


def spectrum_metrics(true, pred, grid, reference=None) -> dict:
    """Mean cosine similarity, mean MSE ((1/eV)^2) and main-peak position error (eV) of spectra.

    ``reference`` (one spectrum, e.g. the mean training spectrum, or one per row) adds ``deviation_r2``: the
    fraction of the spectra's squared deviation from the reference that ``pred`` explains
    (1 - sum (true - pred)^2 / sum (true - reference)^2; 0 for predicting the reference itself).
    """
    from coreloss.spectra import cosine_similarity

    true, pred = np.atleast_2d(true), np.atleast_2d(pred)
    e = grid.energies
    dpeak = e[np.argmax(pred, axis=1)] - e[np.argmax(true, axis=1)]
    cos = cosine_similarity(true, pred)
    out = {"cosine_mean": float(np.mean(cos)), "cosine_min": float(np.min(cos)),
           "mse_mean": float(np.mean((true - pred) ** 2)),
           "peak_abs_error_ev_mean": float(np.mean(np.abs(dpeak))),
           "peak_abs_error_ev_median": float(np.median(np.abs(dpeak))), "n": int(len(true))}
    if reference is not None:
        dev = float(np.sum((true - np.asarray(reference, float)) ** 2))
        out["deviation_r2"] = float(1.0 - np.sum((true - pred) ** 2) / dev) if dev > 0 else None
    return out


def _predicted_mean(model, X) -> np.ndarray:
    """``model.predict(X)``, or its first element (the mean) where it returns ``(mean, std)``."""
    pred = model.predict(X)
    return pred[0] if isinstance(pred, tuple) else pred


def cross_validate(X, y, groups, make_model: Callable, n_splits: int = 5, progress: bool = False,
                   auxiliary=None, degraded: Callable | None = None) -> dict:
    """Group k-fold CV of ``make_model()`` (``fit(X, y, groups)`` then ``predict``; a tuple's first
    element is the mean). Returns per-fold metrics and pooled out-of-fold metrics. With ``auxiliary``
    (:class:`coreloss.multifidelity.AuxiliaryRows`) each fold trains on its rows joined by the
    auxiliary rows outside its validation groups (``fit(..., primary=)``); scores are on ``X`` only.
    With ``degraded`` (``f(X) -> X'``, e.g. :func:`coreloss.models.tuning.measured_like`) each fold
    is also scored on degraded copies of its validation spectra (``"pooled_degraded"``)."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    groups = np.asarray(groups).astype(str)
    oof = np.full_like(y, np.nan)
    oof_deg = np.full_like(y, np.nan) if degraded is not None else None
    folds = []
    splits = group_kfold(groups, n_splits)
    for k, (tr, te) in enumerate(splits):
        model = make_model()
        if auxiliary is not None:
            Xj, yj, gj, primary = auxiliary.joined(X[tr], y[tr], groups[tr], held_out=groups[te])
            model.fit(Xj, yj, groups=gj, primary=primary)
        else:
            try:
                model.fit(X[tr], y[tr], groups=groups[tr])
            except TypeError:
                model.fit(X[tr], y[tr])
        oof[te] = _predicted_mean(model, X[te])
        folds.append(regression_metrics(y[te], oof[te]))
        if degraded is not None:
            oof_deg[te] = _predicted_mean(model, degraded(X[te]))
        if progress:
            print(f"fold {k + 1}/{n_splits} done")
    out = {"n_splits": n_splits, "folds": folds, "pooled": regression_metrics(y, oof), "oof": oof}
    if degraded is not None:
        out["pooled_degraded"] = regression_metrics(y, oof_deg)
    return out


# ----------------------------------------------------------------------------- figures
def parity_figure(y_train, p_train, y_test, p_test, path, label_names=LABEL_NAMES,
                  label_units=None, title: str | None = None):
    """2x3 predicted-vs-true panels (train and test points, diagonal, R2/MAE of the test set)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units = list(label_units) if label_units is not None else [LABEL_UNITS[n] for n in label_names]
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    test_m = regression_metrics(y_test, p_test, label_names)
    for j, (ax, name) in enumerate(zip(axes.ravel(), label_names)):
        if y_train is not None and len(y_train):
            ax.scatter(y_train[:, j], p_train[:, j], s=6, alpha=0.35, c="tab:blue", label="train")
        ax.scatter(y_test[:, j], p_test[:, j], s=10, alpha=0.8, c="tab:orange", label="test")
        vals = np.concatenate([a[:, j] for a in (y_train, p_train, y_test, p_test)
                               if a is not None and len(a)])
        vals = vals[np.isfinite(vals)]
        if len(vals):
            lo, hi = float(vals.min()), float(vals.max())
            pad = 0.05 * (hi - lo or 1.0)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1)
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(lo - pad, hi + pad)
        m = test_m[name]
        r2 = f"{m['r2']:.3f}" if m["r2"] is not None else "n/a"
        mae = f"{m['mae']:.3g}" if m["mae"] is not None else "n/a"
        ax.text(0.04, 0.96, f"test R$^2$ = {r2}\nMAE = {mae} {units[j]}", transform=ax.transAxes,
                va="top", fontsize=9, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
        pretty = name.replace("_", " ")
        ax.set_xlabel(f"true {pretty} ({units[j]})")
        ax.set_ylabel(f"predicted {pretty} ({units[j]})")
        if j == 0:
            ax.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def ood_rates(model, X, grid, rng: np.random.Generator | None = None) -> dict:
    """Fraction flagged by ``model.ood_score`` for ``X``, noisy copies, 8 eV shifts and random spectra."""
    from coreloss.spectra import add_noise, normalise_area, shift

    rng = rng or np.random.default_rng(0)
    out = {"in_distribution": float(np.mean(model.ood_score(X)[1]))}
    for snr in (50.0, 20.0, 10.0):
        noisy = np.nan_to_num(normalise_area(add_noise(X, snr, rng), grid.step))
        out[f"in_distribution_snr{snr:g}"] = float(np.mean(model.ood_score(noisy)[1]))
    out["shifted_+8eV"] = float(np.mean(model.ood_score(shift(X, 8.0, grid))[1]))
    out["shifted_-3eV"] = float(np.mean(model.ood_score(shift(X, -3.0, grid))[1]))
    rand = normalise_area(rng.random(X.shape), grid.step)
    out["random_uniform"] = float(np.mean(model.ood_score(rand)[1]))
    return out


def evaluate_inverse(model, ds, test_fraction: float = 0.15, seed: int = 0) -> dict:
    """Metrics of a trained inverse model on a dataset's fixed train/test structure split.

    Returns ``{"metrics": {...}, "arrays": {...}}``; arrays hold the true/predicted labels of both
    parts for :func:`parity_figure`.
    """
    te = test_mask(split_groups(ds), test_fraction, seed)
    mean_te, std_te = model.predict(ds.X[te])
    mean_tr, _ = model.predict(ds.X[~te])
    metrics = {
        "split": {"test_fraction": test_fraction, "seed": seed, "method": "sha256(seed:group id) < fraction",
                  "n_train_sites": int((~te).sum()), "n_test_sites": int(te.sum()),
                  "n_test_structures": int(len(np.unique(ds.structure_ids[te]))),
                  "test_structures": sorted(np.unique(ds.structure_ids[te]).tolist())},
        "test": regression_metrics(ds.y[te], mean_te, ds.label_names),
        "train": regression_metrics(ds.y[~te], mean_tr, ds.label_names),
        "coverage_95": interval_coverage(ds.y[te], mean_te, std_te, 0.95, ds.label_names),
        "ood_flag_rate_test": ood_rates(model, ds.X[te], ds.grid),
    }
    arrays = {"y_train": ds.y[~te], "p_train": mean_tr, "y_test": ds.y[te], "p_test": mean_te,
              "std_test": std_te}
    return {"metrics": metrics, "arrays": arrays}


def evaluate_transfer(model, ds, labels=None) -> dict:
    """Score a trained inverse model on every site of ``ds``, a set it was not trained on.

    Meant for reference sets from another engine or code (e.g. plane-wave core-hole spectra):
    by default only the geometric labels are scored, since electronic labels (Mulliken charge,
    BOP, excitation energy) depend on the engine. Spectra on another grid are resampled to the
    model's grid. Returns ``{"metrics": {...}, "sites": [per-site dicts]}``; each site carries
    true and predicted values, the 1-sigma uncertainty (label units), the OOD score and flag, and
    ``seen_group``: its structure group (:func:`split_groups`) is among the model's training groups
    (``metadata["training_groups"]``; None where the model does not record them), i.e. the site is
    not a transfer test in the strict sense (e.g. a thermal snapshot of that polymorph was trained on).
    """
    from coreloss.labels import GEOMETRIC_LABELS

    labels = tuple(labels or GEOMETRIC_LABELS)
    unknown = [n for n in labels if n not in ds.label_names]
    if unknown:
        raise CorelossError(f"unknown label(s) {', '.join(unknown)}; choose from {', '.join(ds.label_names)}")
    cols = [list(ds.label_names).index(n) for n in labels]
    mean, std = model.predict(ds.X, grid=ds.grid)
    score, flag = model.ood_score(ds.X, grid=ds.grid)
    flag = np.asarray(flag, bool)
    y, p = ds.y[:, cols], mean[:, cols]
    trained = (getattr(model, "metadata", None) or {}).get("training_groups")
    groups = split_groups(ds)
    sites = []
    for i in range(len(ds)):
        row = {"structure_id": str(ds.structure_ids[i]), "site_index": int(ds.site_index[i]),
               "ood_score": float(score[i]), "ood_flag": bool(flag[i]),
               "seen_group": None if trained is None else bool(groups[i] in set(trained))}
        for j, n in enumerate(labels):
            row[f"{n}_true"], row[f"{n}_pred"] = float(y[i, j]), float(p[i, j])
            row[f"{n}_std"] = float(std[i, cols[j]])
        sites.append(row)
    metrics = {
        "n_sites": len(ds), "n_structures": int(len(np.unique(ds.structure_ids))),
        "labels": list(labels), "units": {n: LABEL_UNITS.get(n, "") for n in labels},
        "all": regression_metrics(y, p, labels),
        "unflagged": regression_metrics(y[~flag], p[~flag], labels),
        "coverage_95": interval_coverage(y, p, std[:, cols], 0.95, labels),
        "ood_flag_rate": float(flag.mean()) if len(flag) else None,
        "seen_group_sites": None if trained is None else int(sum(r["seen_group"] for r in sites)),
        "reference_engine": ds.provenance.get("engine"),
        "reference_parameters": ds.provenance.get("parameters"),
    }
    return {"metrics": metrics, "sites": sites, "arrays": {"y": y, "p": p}}
