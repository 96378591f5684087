"""Structure-grouped splits, metrics, calibration and the parity figure."""

import numpy as np
import pytest

from coreloss.errors import CorelossError
from coreloss.evaluate import (group_kfold, interval_coverage, parity_figure, regression_metrics,
                               spectrum_metrics, test_mask)
from coreloss.spectra import DEFAULT_GRID, shift


def _ids(n_struct=40, per=5):
    return np.repeat([f"s{i:03d}" for i in range(n_struct)], per)


def test_group_kfold_never_splits_a_structure():
    ids = _ids()
    folds = group_kfold(ids, 5)
    assert len(folds) == 5
    seen = []
    for tr, te in folds:
        assert not set(ids[tr]) & set(ids[te])
        seen += sorted(set(ids[te]))
    assert sorted(seen) == sorted(set(ids))  # each structure in exactly one test fold
    with pytest.raises(CorelossError):
        group_kfold(_ids(3), 5)


def test_test_set_disjoint_and_stable_as_data_grows():
    ids = _ids(60)
    te = test_mask(ids, 0.15, seed=0)
    assert not set(ids[te]) & set(ids[~te])
    assert 0.05 < len(set(ids[te])) / 60 < 0.3
    grown = np.concatenate([ids, _ids(100)[300:]])  # more structures appended
    te2 = test_mask(grown, 0.15, seed=0)
    assert set(ids[te]) == {s for s in set(grown[te2]) if s in set(ids)}
    assert set(ids[test_mask(ids, 0.15, seed=1)]) != set(ids[te])
    assert test_mask(["a", "a", "b"], 0.0).sum() >= 1  # never empty


def test_regression_metrics_and_coverage():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(2000, 6))
    noise = rng.normal(size=y.shape) * 0.1
    m = regression_metrics(y, y + noise)
    assert m["bond_length"]["r2"] > 0.98
    assert abs(m["bop"]["rmse"] - 0.1) < 0.01
    assert m["bop"]["mae"] < m["bop"]["rmse"]
    y[0, 1] = np.nan
    assert regression_metrics(y, y)["bond_angle"]["n"] == 1999
    cov = interval_coverage(y, y + noise, np.full(y.shape, 0.1))
    assert all(abs(v - 0.95) < 0.02 for v in cov.values())
    cov_small = interval_coverage(y, y + noise, np.full(y.shape, 0.02))
    assert all(v < 0.5 for v in cov_small.values())


def test_spectrum_metrics():
    e = DEFAULT_GRID.energies
    x = np.exp(-0.5 * ((e - 3) / 1.0) ** 2)[None].repeat(3, 0)
    same = spectrum_metrics(x, x, DEFAULT_GRID)
    assert same["cosine_mean"] == pytest.approx(1.0) and same["peak_abs_error_ev_mean"] == 0
    moved = spectrum_metrics(x, shift(x, 1.0), DEFAULT_GRID)
    assert moved["peak_abs_error_ev_mean"] == pytest.approx(1.0, abs=0.05)
    assert moved["cosine_mean"] < 0.9
    assert "deviation_r2" not in same


def test_spectrum_metrics_deviation_r2():
    e = DEFAULT_GRID.energies
    x = np.stack([np.exp(-0.5 * ((e - c) / 1.0) ** 2) for c in (2.0, 3.0, 4.0)])
    ref = x.mean(axis=0)
    assert spectrum_metrics(x, x, DEFAULT_GRID, reference=ref)["deviation_r2"] == pytest.approx(1.0)
    assert spectrum_metrics(x, ref[None].repeat(3, 0), DEFAULT_GRID, reference=ref)["deviation_r2"] == \
        pytest.approx(0.0, abs=1e-12)
    half = spectrum_metrics(x, 0.5 * (x + ref), DEFAULT_GRID, reference=ref)["deviation_r2"]
    assert half == pytest.approx(0.75)  # half the deviation left: 1 - 0.5^2
    worse = spectrum_metrics(x, shift(x, 2.0), DEFAULT_GRID, reference=ref)["deviation_r2"]
    assert worse < 0


def test_parity_figure(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.normal(size=(50, 6))
    out = parity_figure(y[:40], y[:40] + 0.1, y[40:], y[40:] - 0.1, tmp_path / "parity.png")
    assert out.stat().st_size > 10_000
