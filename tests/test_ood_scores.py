"""The model-independent spectrum-neighbour OOD score and its place in the inverse model's flag."""

import numpy as np
import pytest

from coreloss.models.inverse import InverseModel
from coreloss.models.ood import OOD_SCORES, CombinedOOD, SpectrumKNN
from coreloss.models.synthetic import synthetic_dataset
from coreloss.spectra import DEFAULT_GRID, add_noise, shift


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(n_structures=24, sites_per_structure=6, seed=3)


def test_spectrum_knn_self_zero_leave_group_out_and_noise(data):
    X, _, groups = data
    knn = SpectrumKNN(k=1).fit(X, DEFAULT_GRID.step)
    assert np.allclose(knn.score(X), 0.0, atol=1e-5)  # every training spectrum is its own neighbour
    logo = knn.score(X, groups, groups)
    assert np.all(logo > 1e-4)  # its own structure excluded
    noisy = knn.score(add_noise(X, 20.0, np.random.default_rng(0)))
    moved = knn.score(shift(X, 3.0, DEFAULT_GRID))
    assert np.median(moved) > 5 * np.median(noisy)  # smoothing keeps counting noise small against shape
    assert knn.score(np.full((1, DEFAULT_GRID.n), np.nan))[0] == np.inf
    back = SpectrumKNN.from_state(knn.state())
    np.testing.assert_allclose(back.score(X[:5]), knn.score(X[:5]), atol=1e-6)


def test_old_three_score_state_loads():
    old = {"thresholds": np.array([2.0, 1.0, 3.0]), "quantile": 0.98, "target_rate": 0.015,
           "flag_mask": np.array([1.0, 0.0, 1.0])}
    c = CombinedOOD.from_state(old)
    assert c.names == list(OOD_SCORES[:3]) and c.flag_names == ["pca", "latent_knn"]
    s, flag, _ = c.combine(np.array([[1.0, 5.0, 1.0], [1.0, 0.0, 6.0]]))
    assert flag.tolist() == [False, True] and s[1] == pytest.approx(2.0)


def test_inverse_model_flags_with_spectrum_knn_and_round_trips(data, tmp_path):
    X, y, groups = data
    m = InverseModel(members=2, epochs=20, hidden=(32,), seed=0).fit(X, y, groups=groups)
    assert "spectrum_knn" in m.combined_ood_.names and "spectrum_knn" in m.combined_ood_.flag_names
    thr = m.combined_ood_.thresholds_[m.combined_ood_.names.index("spectrum_knn")]
    assert 0 < thr < 1
    full = m.predict_full(X)
    assert full["ood_components"].shape == (len(X), len(OOD_SCORES))
    assert full["ood"].mean() < 0.1
    far = m.predict_full(shift(X[:10], 4.0, DEFAULT_GRID))
    assert far["ood_components"][:, OOD_SCORES.index("spectrum_knn")].min() > thr
    assert far["ood"].all()
    loaded = InverseModel.load(m.save(tmp_path / "m.pt"))
    np.testing.assert_allclose(loaded.predict_full(X[:8])["ood_components"], full["ood_components"][:8], rtol=1e-5)
    assert "spectrum_knn" in loaded.metadata["ood"]["method"]
