"""Hyper-parameter choice for the inverse model by group k-fold CV on training structures only.

The scikit-learn ``GridSearchCV`` idea over :class:`~coreloss.models.inverse.InverseModel`, with
folds by structure group (:func:`coreloss.evaluate.split_groups`: snapshots of one parent stay on
one side) and one score that weighs the six labels alike: the mean over labels of the pooled
out-of-fold R2. With ``degraded`` (default :func:`measured_like`) the score is the mean of that on
the clean validation spectra and on measured-like copies of them, so a setting that reads computed
spectra well but breaks on measured ones does not win. The held-out test structures must not be
in ``X``: pass the training rows.

>>> res = cv_select(InverseModel(members=3), INVERSE_CANDIDATES, X[tr], y[tr], groups[tr])  # doctest: +SKIP
>>> model = clone(base).set_params(**best_params(res))                                     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from coreloss.errors import CorelossError
from coreloss.evaluate import cross_validate

#: the default search space: size, regularisation and architecture of the networks, and tree
#: ensembles (:mod:`coreloss.models.forest`; the best tree setting of BENCHMARKS.md's probes)
INVERSE_CANDIDATES: list[dict] = [
    {"arch": "et", "augment_copies": 3, "augment_prob": 0.5},
    {"arch": "mlp", "hidden": (256, 128), "dropout": 0.1, "weight_decay": 1e-5},
    {"arch": "mlp", "hidden": (128, 64), "dropout": 0.2, "weight_decay": 1e-4},
    {"arch": "mlp", "hidden": (512, 256), "dropout": 0.1, "weight_decay": 1e-5},
    {"arch": "mlp", "hidden": (256, 128), "dropout": 0.3, "weight_decay": 1e-3},
    {"arch": "cnn", "hidden": (128,), "dropout": 0.1, "weight_decay": 1e-5},
]


#: SNR of the measured-like validation copies
MEASURED_LIKE_SNR = 30.0


def measured_like(X, grid, seed: int = 123) -> np.ndarray:
    """Seeded measured-like copies of spectra ``X``: every degradation of
    :mod:`coreloss.models.augment` at once (resolution, lifetime, stretch, misalignment, residual
    background, plural scattering), Poisson noise at SNR :data:`MEASURED_LIKE_SNR`."""
    from coreloss.models.augment import degrade

    return degrade(X, grid, "all", seed=seed, snr=MEASURED_LIKE_SNR)


def mean_r2(metrics: dict) -> float:
    """Mean over labels of ``regression_metrics`` R2 (labels without one skipped; -inf if none)."""
    vals = [m["r2"] for m in metrics.values() if m.get("r2") is not None]
    return float(np.mean(vals)) if vals else -np.inf


def cv_select(base, candidates: list[dict], X, y, groups, n_splits: int = 5,
              progress: Callable[[int, dict, float], None] | None = None, auxiliary=None,
              degraded: Callable | str | None = "measured_like") -> list[dict]:
    """Group ``n_splits``-fold CV of ``clone(base).set_params(**c)`` for each ``c`` in ``candidates``.

    Returns, per candidate, ``{"params", "score"}`` (mean pooled out-of-fold R2 over labels; with
    ``degraded``, averaged with that on degraded validation copies), ``"pooled"`` (per-label
    R2/MAE/RMSE in label units, clean), ``"pooled_degraded"``, ``"score_clean"``,
    ``"score_degraded"`` and ``"fold_scores"``; ``progress(i, c, score)`` is called after each
    candidate. ``degraded``: ``"measured_like"`` (:func:`measured_like` on ``base.grid``), a
    function ``X -> X'``, or None (clean only). ``auxiliary`` rows join every training fold
    (:func:`coreloss.evaluate.cross_validate`).
    """
    from sklearn.base import clone

    if degraded == "measured_like":
        grid = base.get_params()["grid"]
        degraded = lambda X: measured_like(X, grid)  # noqa: E731

    if not candidates:
        raise CorelossError("no candidate parameters to choose from")
    out = []
    for i, cand in enumerate(candidates):
        bad = set(cand) - set(base.get_params())
        if bad:
            raise CorelossError(f"unknown model parameter(s) {sorted(bad)} in candidate {cand}")
        res = cross_validate(X, y, groups, lambda: clone(base).set_params(**cand), n_splits=n_splits,
                             auxiliary=auxiliary, degraded=degraded)
        clean = mean_r2(res["pooled"])
        worse = mean_r2(res["pooled_degraded"]) if degraded is not None else None
        score = clean if worse is None else 0.5 * (clean + worse)
        out.append({"params": _jsonable(cand), "score": score, "score_clean": clean, "score_degraded": worse,
                    "pooled": res["pooled"], "pooled_degraded": res.get("pooled_degraded"),
                    "fold_scores": [mean_r2(f) for f in res["folds"]]})
        if progress:
            progress(i, cand, score)
    return out


def best_params(results: list[dict]) -> dict:
    """The parameters of the best-scoring entry of :func:`cv_select`, ready for ``set_params``."""
    best = max(results, key=lambda r: r["score"])
    return {k: tuple(v) if isinstance(v, list) else v for k, v in best["params"].items()}


def _jsonable(params: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
