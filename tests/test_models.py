"""Inverse model: fit/predict/save/load, grid checks, OOD flags, beating baselines (synthetic data)."""

import numpy as np
import pytest

from coreloss.errors import CorelossError
from coreloss.evaluate import regression_metrics, test_mask
from coreloss.models.baselines import fit_baseline
from coreloss.models.inverse import InverseModel
from coreloss.models.synthetic import synthetic_dataset
from coreloss.spectra import DEFAULT_GRID, EnergyGrid, normalise_area, shift


@pytest.fixture(scope="module")
def data():
    X, y, g = synthetic_dataset(n_structures=30, sites_per_structure=10, seed=1)
    te = test_mask(g, 0.2, seed=0)
    return X, y, g, te


@pytest.fixture(scope="module")
def model(data):
    X, y, g, te = data
    # 30 % validation structures: the OOD thresholds are quantiles of the validation spectra; noise +
    # misalignment only: the synthetic spectra carry labels in sub-eV features that the measured-like
    # degradations blur (the default augmentation is tested in test_models_robust.py)
    return InverseModel(members=2, epochs=40, hidden=(64, 32), seed=0, val_fraction=0.3,
                        augment=("noise", "misalign"), max_shift_ev=0.3).fit(X[~te], y[~te], g[~te])


def test_predict_shapes_units_and_uncertainty(model, data):
    X, y, g, te = data
    mean, std = model.predict(X[te])
    assert mean.shape == std.shape == (te.sum(), 6)
    assert np.all(std > 0) and np.all(np.isfinite(mean))
    assert model.label_names[0] == "bond_length" and model.label_units[1] == "deg"
    assert len(model.calibration_) == 6 and model.metadata["calibration"]["method"] != "none"


def test_beats_constant_predictor(model, data):
    X, y, g, te = data
    mean, _ = model.predict(X[te])
    const = fit_baseline("constant", X[~te], y[~te]).predict(X[te])
    m_net, m_const = regression_metrics(y[te], mean), regression_metrics(y[te], const)
    wins = [m_net[k]["mae"] < m_const[k]["mae"] for k in m_net]
    assert sum(wins) >= 5, (m_net, m_const)
    assert m_net["bond_angle"]["r2"] > 0.5


def test_save_load_round_trip_identical(model, data, tmp_path):
    X, y, g, te = data
    path = model.save(tmp_path / "inv.pt")
    loaded = InverseModel.load(path)
    m1, s1 = model.predict(X[te])
    m2, s2 = loaded.predict(X[te])
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(model.ood_score(X[te])[0], loaded.ood_score(X[te])[0])
    assert loaded.metadata["grid"] == DEFAULT_GRID.to_dict()
    assert loaded.get_params() == model.get_params()


def test_grid_checks(model, data, tmp_path):
    X = data[0]
    with pytest.raises(CorelossError, match="points"):
        model.predict(X[:, :-1])
    with pytest.raises(CorelossError, match="grid"):
        model.predict(X[:3], grid=EnergyGrid(-5.0, 25.0, 0.2))
    with pytest.raises(CorelossError):
        model.ood_score(np.ones((2, 150)))
    path = model.save(tmp_path / "inv.pt")
    with pytest.raises(CorelossError, match="trained on grid"):
        InverseModel.load(path, grid=EnergyGrid(-10.0, 20.0, 0.1))
    # a model trained on another grid refuses spectra of the default grid
    other = EnergyGrid(-5.0, 25.0, 0.2)
    Xo = normalise_area(np.array([np.interp(other.energies, DEFAULT_GRID.energies, x) for x in X[:60]]), 0.2)
    small = InverseModel(members=1, epochs=2, hidden=(8,), grid=other).fit(Xo, data[1][:60], data[2][:60])
    with pytest.raises(CorelossError):
        small.predict(X[:2])


def test_ood_flags_random_and_shifted(model, data):
    X, y, g, te = data
    _, flag_in = model.ood_score(X[te])
    assert flag_in.mean() < 0.05
    rng = np.random.default_rng(0)
    _, flag_rand = model.ood_score(normalise_area(rng.random((20, X.shape[1])), 0.1))
    assert flag_rand.all()
    _, flag_shift = model.ood_score(shift(X[te], 8.0))
    assert flag_shift.mean() > 0.95
    score, flag = model.ood_score(np.full((1, X.shape[1]), np.nan))
    assert flag[0] and np.isinf(score[0])


def test_bad_inputs_raise(data, tmp_path):
    X, y, g, te = data
    with pytest.raises(CorelossError):
        InverseModel(members=1).fit(X[:10], y[:10, :5])
    with pytest.raises(CorelossError):
        InverseModel(members=1).predict(X[:2])
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(CorelossError):
        InverseModel.load(tmp_path / "junk.pt")


def test_cnn_and_nan_targets(data):
    X, y, g, te = data
    y = y.copy()
    y[::7, 1] = np.nan  # bond angle undefined for CN < 2
    m = InverseModel(arch="cnn", members=1, epochs=3, hidden=(16,), seed=3).fit(X[:120], y[:120], g[:120])
    mean, std = m.predict(X[120:140])
    assert mean.shape == (20, 6) and np.all(np.isfinite(mean)) and np.all(np.isfinite(std))


def test_deterministic_training(data):
    X, y, g, te = data
    a = InverseModel(members=1, epochs=3, hidden=(16,), seed=5).fit(X[:100], y[:100], g[:100])
    b = InverseModel(members=1, epochs=3, hidden=(16,), seed=5).fit(X[:100], y[:100], g[:100])
    np.testing.assert_allclose(a.predict(X[100:110])[0], b.predict(X[100:110])[0], rtol=1e-6)


def test_fine_tuning_from_init_model(model, data, tmp_path):
    """Multi-fidelity: ``init`` starts from a trained model's networks (keeps its spectrum
    scaling), and on few sites beats the same short training from scratch."""
    X, y, g, te = data
    path = model.save(tmp_path / "pre.pt")
    few = np.flatnonzero(~te)[:40]
    kw = dict(members=2, epochs=3, hidden=(64, 32), seed=1, lr=3e-4, augment=("noise",))
    ft = InverseModel(init=str(path), **kw).fit(X[few], y[few], g[few])
    fresh = InverseModel(**kw).fit(X[few], y[few], g[few])
    np.testing.assert_array_equal(ft.x_mean_, model.x_mean_)
    assert ft.metadata["pretraining"]["init"] == str(path)
    r2 = [np.nanmean([m["r2"] for m in regression_metrics(y[te], mdl.predict(X[te])[0]).values()])
          for mdl in (ft, fresh)]
    assert r2[0] > r2[1] + 0.2, r2
    with pytest.raises(CorelossError, match="hidden"):
        InverseModel(init=str(path), members=2, hidden=(16,)).fit(X[few], y[few], g[few])
