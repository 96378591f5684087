"""Forward model (SOAP -> spectrum): shapes, normalisation, round trip, held-out accuracy."""

import numpy as np
import pytest

from coreloss.errors import CorelossError
from coreloss.evaluate import spectrum_metrics
from coreloss.models.descriptors import SoapFeaturizer, SoapParams
from coreloss.models.forward import ForwardModel
from coreloss.models.synthetic import stishovite, synthetic_structure_dataset


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return synthetic_structure_dataset(tmp_path_factory.mktemp("fwd") / "syn.h5", n_structures=10, seed=2)


@pytest.fixture(scope="module")
def fitted(ds):
    te = np.isin(ds.structure_ids, ["syn-stishovite-001", "syn-stishovite-002"])
    fm = ForwardModel(epochs=150, hidden=(64, 64), lr=3e-3, batch_size=16, seed=0)
    fm.fit(ds.structures, ds.X[~te], ds.structure_ids[~te], ds.site_index[~te])
    return fm, te


def test_soap_descriptor_is_local_and_invariant():
    f = SoapFeaturizer(SoapParams(species=["O", "Si"], r_cut=5.0, n_max=4, l_max=3))
    s = stishovite()
    o = [i for i, site in enumerate(s) if site.specie.symbol == "O"]
    F = f.featurize(s, o)
    assert F.shape == (4, f.n_features)
    np.testing.assert_allclose(F[0], F[1:].mean(0), rtol=1e-6, atol=1e-8)  # equivalent O sites
    s2 = s.copy()
    s2.translate_sites(list(range(len(s2))), [0.1, 0.2, 0.3])
    np.testing.assert_allclose(f.featurize(s2, o), F, rtol=1e-5, atol=1e-8)
    s3 = s.copy()
    s3.replace(0, "Ge")
    with pytest.raises(CorelossError, match="Ge"):
        f.featurize(s3, o)


def test_predictions_are_normalised_and_accurate(fitted, ds):
    fm, te = fitted
    pred = fm.predict_features(fm.features(ds.structures, ds.structure_ids[te], ds.site_index[te]))
    assert pred.shape == (te.sum(), ds.grid.n)
    assert np.all(pred >= 0)
    np.testing.assert_allclose(np.trapezoid(pred, dx=ds.grid.step, axis=1), 1.0, rtol=1e-4)
    m = spectrum_metrics(ds.X[te], pred, ds.grid)
    assert m["cosine_mean"] > 0.95
    mean_spec = ds.X[~te].mean(0, keepdims=True)
    assert m["mse_mean"] < spectrum_metrics(ds.X[te], np.repeat(mean_spec, te.sum(), 0), ds.grid)["mse_mean"]


def test_round_trip_and_structure_spectrum(fitted, ds, tmp_path):
    fm, te = fitted
    s = ds.structures["syn-stishovite-001"]
    sites, spectra = fm.predict_sites(s)
    loaded = ForwardModel.load(fm.save(tmp_path / "fwd.pt"))
    sites2, spectra2, total = loaded.predict_structure(s)
    np.testing.assert_array_equal(spectra, spectra2)
    assert [x.index for x in sites] == [x.index for x in sites2]
    w = np.array([x.multiplicity for x in sites], float)
    np.testing.assert_allclose(total, (w[:, None] * spectra).sum(0) / w.sum())
    assert loaded.metadata["descriptor"]["species"] == ["O", "Si"]
    with pytest.raises(CorelossError):
        ForwardModel.load(tmp_path / "missing.pt")
    with pytest.raises(CorelossError):
        ForwardModel().predict(s, [2])


def test_cross_validate_params_ranks_a_useful_model_above_a_useless_one(ds):
    from coreloss.models.forward import cross_validate_params
    cands = [{"epochs": 60, "hidden": (64, 64), "lr": 3e-3, "batch_size": 16},
             {"epochs": 1, "hidden": (4,), "lr": 1e-6, "batch_size": 16}]  # (almost) untrained
    res = cross_validate_params(ds.structures, ds.X, ds.structure_ids, ds.site_index, cands, n_splits=3,
                                grid=ds.grid)
    assert [r["params"] for r in res] == cands and all(len(r["fold_cosine"]) == 3 for r in res)
    assert res[0]["cosine_mean"] > res[1]["cosine_mean"] + 0.05
    # folds follow the given groups (two groups cannot make three folds)
    with pytest.raises(CorelossError):
        cross_validate_params(ds.structures, ds.X, ds.structure_ids, ds.site_index, cands[:1], n_splits=3,
                              grid=ds.grid, groups=np.where(np.arange(len(ds)) % 2, "a", "b"))
