"""Tree ensembles inside the inverse model (arch et / rf): scikit-learn's trees walked from flat
arrays, total variance, missing labels, the InverseModel contract and its model file."""

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor

from coreloss.errors import CorelossError
from coreloss.evaluate import regression_metrics, test_mask
from coreloss.models.baselines import fit_baseline
from coreloss.models.forest import ForestEnsemble
from coreloss.models.inverse import InverseModel
from coreloss.models.synthetic import synthetic_dataset


def _toy(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12)).astype(np.float32)
    Y = np.stack([X[:, 0] + 0.5 * X[:, 1], np.sin(X[:, 2]), X[:, 3] * X[:, 4]], axis=1)
    return X, Y + 0.05 * rng.normal(size=Y.shape)


def test_flat_trees_reproduce_sklearn():
    X, Y = _toy()
    ens = ForestEnsemble("et", n_trees=25, seed=4)
    ens.fit(X, Y, clean=lambda x: x, copies=0)
    sk = ExtraTreesRegressor(25, min_samples_leaf=2, max_features=0.3, random_state=4).fit(X, Y)
    Xq, _ = _toy(80, seed=9)
    mean, var = ens.predict(Xq)
    np.testing.assert_allclose(mean, sk.predict(Xq), atol=1e-5)
    full = ens.predict_full(Xq)
    assert np.all(var >= full["epistemic"] - 1e-12) and np.all(var > 0)
    assert full["latent"].shape == (1, 80, 12)


def test_variance_grows_away_from_the_data():
    X, Y = _toy()
    ens = ForestEnsemble("rf", n_trees=40, seed=0)
    ens.fit(X, Y, clean=lambda x: x, copies=0)
    _, v_in = ens.predict(X[:50])
    _, v_out = ens.predict(X[:50] * 4.0)  # beyond the training inputs: the trees disagree more
    assert np.median(v_out[:, 0]) > np.median(v_in[:, 0])


def test_missing_labels_get_their_own_forest():
    X, Y = _toy()
    Y = Y.copy()
    Y[::2, 2] = np.nan  # e.g. electronic labels masked in auxiliary rows
    ens = ForestEnsemble("et", n_trees=10)
    hist = ens.fit(X, Y, clean=lambda x: x, copies=0)
    assert sorted(h["labels"] for h in hist) == [[0, 1], [2]]
    assert [h["n_rows"] for h in sorted(hist, key=lambda h: h["labels"])] == [300, 150]
    mean, var = ens.predict(X[:5])
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(var))
    with pytest.raises(ValueError):
        ens.fit(X, Y, clean=lambda x: x, warm=True)


@pytest.fixture(scope="module")
def data():
    X, y, g = synthetic_dataset(n_structures=30, sites_per_structure=10, seed=1)
    return X, y, g, test_mask(g, 0.2, seed=0)


@pytest.fixture(scope="module")
def forest_model(data):
    X, y, g, te = data
    return InverseModel(arch="et", n_trees=60, augment_copies=1, val_fraction=0.3, augment=("noise", "misalign"),
                        max_shift_ev=0.3, seed=0).fit(X[~te], y[~te], g[~te])


def test_inverse_model_with_trees_learns_and_calibrates(forest_model, data):
    X, y, g, te = data
    mean, std = forest_model.predict(X[te])
    assert mean.shape == std.shape == (te.sum(), 6) and np.all(std > 0)
    const = fit_baseline("constant", X[~te], y[~te]).predict(X[te])
    m, c = regression_metrics(y[te], mean), regression_metrics(y[te], const)
    assert sum(m[k]["mae"] < c[k]["mae"] for k in m) >= 5
    assert forest_model.metadata["calibration"]["method"] != "none"
    assert "PCA scores" in forest_model.metadata["ood"]["method"]
    _, flag = forest_model.ood_score(X[te])
    assert flag.mean() < 0.1


def test_forest_model_file_round_trip(forest_model, data, tmp_path):
    X, y, g, te = data
    loaded = InverseModel.load(forest_model.save(tmp_path / "et.pt"))
    for a, b in zip(forest_model.predict_full(X[te]).values(), loaded.predict_full(X[te]).values()):
        np.testing.assert_array_equal(a, b)
    assert loaded.get_params() == forest_model.get_params()


def test_forest_cannot_fine_tune(forest_model, data, tmp_path):
    X, y, g, te = data
    path = forest_model.save(tmp_path / "et.pt")
    with pytest.raises(CorelossError, match="fine-tuned"):
        InverseModel(arch="et", n_trees=5, init=str(path)).fit(X[:40], y[:40], g[:40])


def test_float32_thresholds_split_float32_inputs_exactly():
    from coreloss.models.forest import _float32_below

    rng = np.random.default_rng(3)
    t = rng.normal(size=2000)
    x = np.concatenate([t.astype(np.float32), np.nextafter(t.astype(np.float32), np.float32(np.inf)),
                        rng.normal(size=2000).astype(np.float32)])
    tt = np.concatenate([t, t, t])
    np.testing.assert_array_equal(x <= _float32_below(tt), x.astype(np.float64) <= tt)
