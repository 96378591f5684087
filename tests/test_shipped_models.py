"""The shipped models against the committed datasets they were trained on (held-out structures),
the plane-wave reference set, xtb spectra and measured non-SiO2 spectra."""

from pathlib import Path

import numpy as np
import pytest

from coreloss.dataset import load_dataset
from coreloss.evaluate import evaluate_transfer, regression_metrics, split_groups, test_mask
from coreloss.models import default_forward_model_path, default_inverse_model_path, inverse_model_path
from coreloss.models.bounds import count_impossible
from coreloss.models.forward import ForwardModel
from coreloss.models.inverse import InverseModel
from coreloss.spectra import cosine_similarity

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "datasets"
DEFAULT_ENGINE = "gpaw-lcao"


@pytest.fixture(scope="module")
def model():
    return InverseModel.load(default_inverse_model_path())


@pytest.fixture(scope="module")
def data(model):
    """The dataset the shipped inverse model was trained on (its recorded path, in this repository)."""
    return load_dataset(ROOT / model.metadata["training_provenance"]["dataset"])


def _held_out(model, ds):
    split = model.metadata["training_provenance"]["split"]
    return test_mask(split_groups(ds), split["test_fraction"], split["seed"])


def test_shipped_inverse_model_learned_the_default_engine(model, data):
    prov = model.metadata["training_provenance"]
    assert prov["dataset_provenance"]["engine"] == DEFAULT_ENGINE == data.provenance["engine"]
    aux = prov.get("auxiliary")
    if aux:  # the other engine's electronic labels never trained the electronic heads
        assert aux["engine"] != DEFAULT_ENGINE
        assert set(aux["masked_labels"]) == {"bop", "mulliken_charge", "excitation_energy"}


def test_shipped_inverse_model_on_held_out_structures(model, data):
    test = _held_out(model, data)
    groups = split_groups(data)
    assert 5 <= len(np.unique(groups[test])) < len(np.unique(groups))
    full = model.predict_full(data.X[test])
    m = regression_metrics(data.y[test], full["mean"])
    # measured (BENCHMARKS.md, "Shipped DFT model"): the labels the DFT spectra carry best beat the mean
    for name in ("bond_angle", "excitation_energy"):  # 0.25 and 0.28 when shipped (94 sites)
        assert m[name]["r2"] > 0.15, (name, m[name])
    assert np.all(full["std"] > 0)
    assert full["ood"].mean() < 0.1
    assert count_impossible(full["mean"], model.label_names) == 0
    assert model.extrapolated(full["mean"][:1] + np.array([[0, 0, 100.0, 0, 0, 0]])).all()


def test_shipped_forward_model_spectra_resemble_the_engine(data):
    fwd = ForwardModel.load(default_forward_model_path())
    assert fwd.metadata["training_provenance"]["dataset_provenance"]["engine"] == DEFAULT_ENGINE
    sid = data.structure_ids[0]
    rows = np.nonzero(data.structure_ids == sid)[0]
    pred = fwd.predict(data.structures[sid], [int(i) for i in data.site_index[rows]])
    assert pred.shape == (len(rows), data.grid.n)
    assert np.all(cosine_similarity(pred, data.X[rows]) > 0.9)


def test_shipped_inverse_model_flags_xtb_spectra_and_measured_non_sio2(model):
    """xtb spectra of the DFT sites are flagged (97 % when shipped); every measured non-SiO2 spectrum
    is flagged (10 of the LSMO line-scan pixels by the composition check alone: their O K shape
    resembles DFT spectra of hot SiO2 snapshots; BENCHMARKS.md, "Shipped DFT model"); no output
    outside the physical limits."""
    from coreloss.measured import predict_measured, read_measured

    xtb = load_dataset(DATASETS / "sio2_xtb_gfn2_dft_sites.h5")
    full = model.predict_full(xtb.X)
    assert full["ood"].mean() >= 0.9
    assert count_impossible(full["mean"], model.label_names) == 0
    exp = ROOT.parent / "shared" / "data" / "experimental"
    if not exp.exists():
        pytest.skip(f"shared experimental data not present: {exp}")
    for name in ("exspy_coreloss_spectrum.msa", "LSMO_linescan.hspy", "LSMO_STO_linescan.hspy"):
        res = predict_measured(read_measured(exp / name), model)
        assert res.valid.all() and res.ood.all(), name
        assert (res.foreign != "").all(), name  # Mn L3, Ti L3 or La M5 in every spectrum
        assert count_impossible(res.mean, model.label_names) == 0


def test_shipped_inverse_model_on_the_plane_wave_reference_set(model):
    """Sites in no training set (BENCHMARKS.md, "Transfer"): bounds respected; the angle error
    measured when shipped, with a margin (the goal, 3 deg, is not reached)."""
    res = evaluate_transfer(model, load_dataset(DATASETS / "sio2_pw_reference.h5"))
    assert res["metrics"]["n_sites"] >= 8
    assert res["metrics"]["all"]["bond_angle"]["mae"] < 20.0  # 16.5 deg when shipped
    assert all(0 < s["bond_angle_pred"] <= 180 and s["bond_length_pred"] > 0 for s in res["sites"])


def test_shipped_xtb_model_reads_xtb_and_flags_plane_wave_sites():
    """The earlier default (``--model xtb``) learned xtb spectra: it reads held-out xtb structures and
    flags the plane-wave quartz, stishovite, CHA and both coesite sites (BENCHMARKS.md)."""
    xtb_model = InverseModel.load(inverse_model_path("xtb"))
    assert xtb_model.metadata["training_provenance"]["dataset_provenance"]["engine"] == "xtb"
    data = load_dataset(DATASETS / "sio2_xtb_gfn2_v2.h5")
    test = _held_out(xtb_model, data)
    mean, _ = xtb_model.predict(data.X[test])
    m = regression_metrics(data.y[test], mean)
    for name in ("bond_angle", "bop", "mulliken_charge"):
        assert m[name]["r2"] > 0.6, (name, m[name])
    res = evaluate_transfer(xtb_model, load_dataset(DATASETS / "sio2_pw_reference.h5"))
    flags = {(s["structure_id"], s["site_index"]): s["ood_flag"] for s in res["sites"]}
    assert all(flags[k] for k in (("ref-alpha-quartz", 1), ("ref-stishovite", 2), ("zeo-CHA", 12),
                                  ("ref-coesite", 0), ("ref-coesite", 36)))
