"""Estimator API (clone / set_params), spectral conventions and the train_and_evaluate workflow."""

import json

import numpy as np
import pytest
from sklearn.base import clone

from coreloss.conventions import SpectralConventions
from coreloss.errors import CorelossError
from coreloss.models.forward import ForwardModel
from coreloss.models.inverse import InverseModel
from coreloss.models.synthetic import synthetic_structure_dataset
from coreloss.spectra import EnergyGrid
from coreloss.workflow import train_and_evaluate, write_models


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return synthetic_structure_dataset(tmp_path_factory.mktemp("wf") / "syn.h5", n_structures=12, seed=4)


def test_clone_and_set_params_are_explicit_state():
    m = InverseModel(members=2, hidden=(16, 8), augment=("noise",), training_fwhm=0.7)
    c = clone(m)
    assert c is not m and c.get_params() == m.get_params()
    assert c.set_params(epochs=3).epochs == 3 and m.epochs == 150
    assert set(ForwardModel().get_params()) >= {"grid", "soap", "hidden", "epochs"}
    assert "n_threads" not in m.get_params() and "progress" not in m.get_params()


def test_conventions_round_trip_and_old_provenance():
    g = EnergyGrid(-4.0, 20.0, 0.2)
    c = SpectralConventions.from_engine({"gaussian_fwhm": 0.8, "lorentzian_fwhm": 0.2}, g)
    assert SpectralConventions.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    old = {"grid": g.to_dict(), "parameters": {"gaussian_fwhm": 0.8, "lorentzian_fwhm": 0.2}}
    assert SpectralConventions.from_provenance({"dataset_provenance": old}) == c
    with pytest.raises(Exception):
        c.gaussian_fwhm = 1.0  # frozen


def test_train_and_evaluate_then_write(ds, tmp_path):
    inv = InverseModel(members=1, epochs=3, hidden=(16,), seed=0)
    run = train_and_evaluate(ds, inv, ForwardModel(epochs=3, hidden=(16,)), test_fraction=0.3)
    assert not hasattr(inv, "ensemble_")  # the given estimator is cloned, not fitted
    assert run.inverse.metadata["test_metrics"] and "cosine_mean" in run.forward.metadata["test_metrics"]
    conv = SpectralConventions.of_model(run.inverse)
    assert conv.grid == ds.grid
    assert conv.gaussian_fwhm == SpectralConventions.from_provenance(ds.provenance).gaussian_fwhm
    paths = write_models(run, tmp_path / "i.pt", tmp_path / "f.pt", tmp_path / "m.json")
    assert [p.name for p in paths] == ["i.pt", "f.pt", "m.json"]
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["inverse"]["file"] == "i.pt" and doc["forward"]["split"]["test_fraction"] == 0.3
    loaded = InverseModel.load(tmp_path / "i.pt")
    assert SpectralConventions.of_model(loaded) == conv
    np.testing.assert_array_equal(loaded.predict(ds.X[:5])[0], run.inverse.predict(ds.X[:5])[0])
    before = (tmp_path / "i.pt").read_bytes()
    with pytest.raises(CorelossError, match="--overwrite"):
        write_models(run, tmp_path / "new.pt", tmp_path / "f.pt")
    assert not (tmp_path / "new.pt").exists() and (tmp_path / "i.pt").read_bytes() == before


def test_measured_pipeline_reads_the_model_conventions_and_keeps_the_callers_config():
    from pathlib import Path
    from types import SimpleNamespace

    from coreloss.measured import load_model, predict_measured, read_measured
    from coreloss.measured.predict import _with_model_conventions
    from coreloss.measured.preprocess import PreprocessConfig

    conv = SpectralConventions(onset_sustain_ev=0.3, gaussian_fwhm=0.7, lorentzian_fwhm=0.1)
    fake = SimpleNamespace(metadata={"conventions": conv.to_dict()})
    cfg = PreprocessConfig(onset_fraction=0.2)
    got = _with_model_conventions(cfg, fake)
    assert (got.onset_sustain_ev, got.training_fwhm_ev, got.onset_fraction) == (0.3, 0.7, 0.2)
    assert cfg.training_fwhm_ev is None and cfg.onset_sustain_ev == PreprocessConfig().onset_sustain_ev
    fixture = sorted((Path(__file__).parent / "fixtures" / "measured").glob("xas_ok*"))[0]
    cfg = PreprocessConfig()
    res = predict_measured(read_measured(fixture), load_model(), cfg)
    assert cfg == PreprocessConfig()  # nothing written back into the caller's config
    assert res.provenance["model_conventions"]["gaussian_fwhm"] == 1.0
    assert res.provenance["model_conventions"]["lorentzian_fwhm"] == 0.2


def test_ship_writes_models_and_metrics_through_the_workflow(ds, tmp_path):
    from coreloss.workflow import ship

    (tmp_path / "model_metrics.json").write_text(json.dumps({"other": {"kept": True}}))
    run = ship(ds, InverseModel(members=1, epochs=2, hidden=(8,)), ForwardModel(epochs=2, hidden=(8,)),
               metrics={"inverse": {"arch": "mlp"}}, out_dir=tmp_path)
    doc = json.loads((tmp_path / "model_metrics.json").read_text())
    assert doc["other"] == {"kept": True} and doc["inverse"]["arch"] == "mlp"
    assert doc["inverse"]["file"] == "inverse_model.pt" and "test" in doc["forward"]
    assert InverseModel.load(tmp_path / "inverse_model.pt").metadata["params"] == run.inverse.param_record()
    assert ForwardModel.load(tmp_path / "forward_model.pt").metadata["conventions"]["grid"] == ds.grid.to_dict()
