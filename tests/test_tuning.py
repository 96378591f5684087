"""Inverse-model parameter choice by group CV on training structures (coreloss.models.tuning)."""

import numpy as np
import pytest

from coreloss.errors import CorelossError
from coreloss.models.inverse import InverseModel
from coreloss.models.synthetic import synthetic_dataset
from coreloss.models.tuning import best_params, cv_select, mean_r2


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(n_structures=18, sites_per_structure=8, seed=4)


def test_cv_prefers_the_trained_network_over_a_crippled_one(data):
    X, y, g = data
    base = InverseModel(members=1, epochs=30, hidden=(64, 32), seed=0, augment=("noise",))
    cands = [{"epochs": 1, "hidden": (2,), "dropout": 0.5}, {"epochs": 30, "hidden": (64, 32)}]
    res = cv_select(base, cands, X, y, g, n_splits=3)
    assert [r["params"]["hidden"] for r in res] == [[2], [64, 32]]  # JSON-able record
    assert len(res[0]["fold_scores"]) == 3 and set(res[0]["pooled"]) >= {"bond_length", "bond_angle"}
    assert res[1]["score"] > res[0]["score"] + 0.2
    assert best_params(res) == {"epochs": 30, "hidden": (64, 32)}  # tuples back, ready for set_params
    assert InverseModel().set_params(**best_params(res)).hidden == (64, 32)


def test_cv_select_refuses_unknown_parameters_and_empty_grids(data):
    X, y, g = data
    with pytest.raises(CorelossError, match="unknown model parameter"):
        cv_select(InverseModel(members=1, epochs=1), [{"layers": 3}], X, y, g, n_splits=3)
    with pytest.raises(CorelossError, match="no candidate"):
        cv_select(InverseModel(), [], X, y, g)


def test_mean_r2_skips_labels_without_one():
    assert mean_r2({"a": {"r2": 0.5}, "b": {"r2": None}, "c": {"r2": 0.7}}) == pytest.approx(0.6)
    assert mean_r2({"a": {"r2": None}}) == -np.inf


def test_score_averages_clean_and_measured_like_validation_spectra(data):
    X, y, g = data
    base = InverseModel(arch="et", n_trees=20, augment_copies=1, augment=("noise",))
    both = cv_select(base, [{}], X, y, g, n_splits=3)[0]
    clean = cv_select(base, [{}], X, y, g, n_splits=3, degraded=None)[0]
    assert both["score"] == pytest.approx(0.5 * (both["score_clean"] + both["score_degraded"]))
    assert both["score_clean"] == pytest.approx(clean["score"])
    assert both["score_degraded"] < both["score_clean"]  # measured-like copies are harder
    assert clean["score_degraded"] is None and clean["pooled_degraded"] is None
