"""Training augmentation, physical bounds, the combined OOD score and the absolute-onset option."""

import numpy as np
import pytest

from coreloss.errors import CorelossError
from coreloss.models.augment import DEGRADATIONS, Augmenter, degrade
from coreloss.models.bounds import PHYSICAL_BOUNDS, apply_bounds, count_impossible
from coreloss.models.inverse import InverseModel
from coreloss.models.ood import OOD_SCORES, calibrate_thresholds
from coreloss.models.synthetic import synthetic_dataset
from coreloss.spectra import DEFAULT_GRID, cosine_similarity, normalise_area, onset_energy


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(n_structures=30, sites_per_structure=8, seed=2)


@pytest.mark.parametrize("kind", DEGRADATIONS + ("all",))
def test_degradations_keep_unit_area_aligned_and_change_the_spectrum(data, kind):
    X = data[0][:40]
    D = degrade(X, DEFAULT_GRID, kind, seed=1)
    assert D.shape == X.shape and np.all(np.isfinite(D))
    np.testing.assert_allclose(np.trapezoid(D, dx=DEFAULT_GRID.step, axis=1), 1.0, atol=1e-9)
    cos = cosine_similarity(D, X)
    assert np.all(cos < 0.99999) and np.mean(cos) > 0.5  # changed, but still an O K-like spectrum
    np.testing.assert_array_equal(D, degrade(X, DEFAULT_GRID, kind, seed=1))  # seeded
    if kind in ("resolution", "lifetime", "background", "stretch"):  # re-aligned like a measured spectrum
        on = [onset_energy(DEFAULT_GRID.energies, np.clip(d, 0, None)) for d in D]
        assert np.median(np.abs(on)) < 0.3


def test_resolution_broadening_widens_and_plural_moves_weight_up(data):
    X = data[0][:20]
    g = DEFAULT_GRID
    broad = degrade(X, g, "resolution", seed=0)
    assert np.mean(np.abs(np.diff(broad, axis=1))) < np.mean(np.abs(np.diff(X, axis=1)))
    pl = degrade(X, g, "plural", seed=0)
    e = g.energies
    assert np.mean(pl @ e) > np.mean(X @ e)  # plasmon losses move intensity to higher energy
    with pytest.raises(ValueError, match="unknown degradations"):
        Augmenter(g, ("nope",))


def test_apply_bounds_clips_flags_and_widens():
    names = list(PHYSICAL_BOUNDS)
    mean = np.array([[1.6, 190.0, -3.0, 1.5, -0.3, -12.0], [1.6, 150.0, 30.0, 1.5, -0.3, -12.0]])
    std = np.full_like(mean, 2.0)
    m, s, c = apply_bounds(mean, std, names)
    assert m[0, 1] == 180.0 and m[0, 2] == 1.0 and c[0, 1] and c[0, 2] and not c[1].any()
    assert s[0, 1] == pytest.approx(np.hypot(2.0, 10.0)) and s[1, 1] == 2.0
    assert count_impossible(mean, names) == 1 and count_impossible(m, names) == 0


def test_calibrated_thresholds_hit_the_target_rate():
    rng = np.random.default_rng(0)
    scores = rng.lognormal(size=(2000, 3))
    thr, q = calibrate_thresholds(scores, 0.02)
    rate = np.mean(np.any(scores > thr, axis=1))
    assert 0.015 <= rate <= 0.02 and q > 0.98


def test_augmented_model_bounds_ood_and_round_trip(data, tmp_path):
    X, y, g = data
    model = InverseModel(members=2, epochs=15, hidden=(64,), seed=0, val_fraction=0.3,
                         augment=DEGRADATIONS).fit(X, y, g)
    assert model.metadata["augmentation"]["kinds"] == list(DEGRADATIONS)
    full = model.predict_full(X)
    lo = np.array([PHYSICAL_BOUNDS[n][0] for n in model.label_names])
    hi = np.array([PHYSICAL_BOUNDS[n][1] for n in model.label_names])
    assert np.all((full["mean"] >= lo) & (full["mean"] <= hi))
    assert full["ood_components"].shape == (len(X), len(OOD_SCORES))
    assert full["ood"].mean() < 0.1  # in distribution (training + validation spectra)
    rand = normalise_area(np.random.default_rng(0).random((10, X.shape[1])), 0.1)
    assert model.predict_full(rand)["ood"].all()
    loaded = InverseModel.load(model.save(tmp_path / "aug.pt"))
    np.testing.assert_allclose(loaded.predict_full(X[:20])["ood_score"], full["ood_score"][:20], rtol=1e-6)
    assert loaded.get_params() == model.get_params()


def test_absolute_onset_model_needs_and_uses_the_onset(data, tmp_path):
    X, y, g = data
    onset = 530.0 + 2.0 * (y[:, 5] - y[:, 5].mean()) / y[:, 5].std()  # carries the excitation energy
    model = InverseModel(members=1, epochs=20, hidden=(64,), seed=0, absolute_onset=True).fit(
        X, y, g, onset=onset)
    with pytest.raises(CorelossError, match="absolute onset"):
        model.predict(X[:3])
    m1, _ = model.predict(X[:50], onset=onset[:50])
    m2, _ = model.predict(X[:50], onset=onset[:50] + 3.0)
    assert not np.allclose(m1[:, 5], m2[:, 5])
    loaded = InverseModel.load(model.save(tmp_path / "abs.pt"))
    np.testing.assert_allclose(loaded.predict(X[:50], onset=onset[:50])[0], m1, rtol=1e-6)
    with pytest.raises(CorelossError, match="onset="):
        InverseModel(members=1, epochs=1, absolute_onset=True).fit(X, y, g)
