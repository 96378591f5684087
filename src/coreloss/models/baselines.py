"""Baselines for the inverse problem, scikit-learn estimators on the same spectra and splits.

``ridge``: standardised inputs + RidgeCV (alphas 1e-3..1e3); ``rf``: random forest (200 trees);
``gbr``: histogram gradient boosting, one model per label; ``constant``: the training mean.
All predict every label; NaN targets are imputed with the training mean for fitting only.
"""

from __future__ import annotations

import numpy as np

BASELINES = ("constant", "ridge", "rf", "gbr")


def make_baseline(name: str, seed: int = 0, n_jobs: int = 1):
    """An unfitted multi-output scikit-learn regressor called ``name`` (see :data:`BASELINES`)."""
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "constant":
        return DummyRegressor(strategy="mean")
    if name == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    if name == "rf":
        return RandomForestRegressor(n_estimators=200, min_samples_leaf=2, max_features=0.3,
                                     random_state=seed, n_jobs=n_jobs)
    if name == "gbr":
        return MultiOutputRegressor(HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05,
                                                                  random_state=seed))
    raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")


def fit_baseline(name: str, X, y, seed: int = 0, n_jobs: int = 1):
    """Fit baseline ``name`` on spectra ``X`` and labels ``y`` (NaN -> column mean) and return it."""
    y = np.asarray(y, float)
    fill = np.nan_to_num(np.nanmean(y, axis=0))
    y = np.where(np.isfinite(y), y, fill)
    return make_baseline(name, seed=seed, n_jobs=n_jobs).fit(np.asarray(X, float), y)
