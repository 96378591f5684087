"""CLI: coreloss train / evaluate / simulate on a tiny synthetic HDF5 dataset."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from coreloss.cli import app
from coreloss.models.synthetic import stishovite, synthetic_structure_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    synthetic_structure_dataset(d / "syn.h5", n_structures=14, seed=3)
    stishovite().to(filename=str(d / "st.cif"))
    return d


def test_train_evaluate_simulate(work):
    r = runner.invoke(app, ["train", str(work / "syn.h5"), "--out", str(work / "m.pt"), "--members", "2",
                            "--epochs", "5", "--hidden", "16,8", "--forward-out", str(work / "f.pt"),
                            "--forward-epochs", "5"])
    assert r.exit_code == 0, r.output
    assert (work / "m.pt").is_file() and (work / "f.pt").is_file()
    r = runner.invoke(app, ["evaluate", str(work / "syn.h5"), "--model", str(work / "m.pt"),
                            "--out", str(work / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((work / "ev" / "metrics.json").read_text())
    assert set(m["test"]) == {"bond_length", "bond_angle", "voronoi_volume", "bop", "mulliken_charge",
                              "excitation_energy"}
    assert m["split"]["n_test_structures"] >= 1 and "coverage_95" in m
    assert (work / "ev" / "parity.png").stat().st_size > 10_000
    r = runner.invoke(app, ["simulate", str(work / "st.cif"), "--model", str(work / "f.pt"),
                            "--out", str(work / "sim")])
    assert r.exit_code == 0, r.output
    data = np.loadtxt(work / "sim" / "spectra.csv", delimiter=",", skiprows=1)
    assert data.shape == (301, 3)  # energy, one O site, total
    assert np.trapezoid(data[:, -1], data[:, 0]) == pytest.approx(1.0, rel=1e-3)


def test_cli_refuses_to_overwrite_and_bad_input(work):
    (work / "exists.pt").write_bytes(b"keep me")
    r = runner.invoke(app, ["train", str(work / "syn.h5"), "--out", str(work / "exists.pt")])
    assert r.exit_code != 0 and (work / "exists.pt").read_bytes() == b"keep me"
    r = runner.invoke(app, ["train", str(work / "missing.h5"), "--out", str(work / "new.pt")])
    assert r.exit_code != 0
    r = runner.invoke(app, ["simulate", str(work / "nothing.cif"), "--model", str(work / "x.pt"),
                            "--out", str(work / "s2")])
    assert r.exit_code != 0


def test_evaluate_transfer_scores_every_site_geometric_only(work):
    if not (work / "m.pt").is_file():
        test_train_evaluate_simulate(work)
    synthetic_structure_dataset(work / "ref.h5", n_structures=4, seed=11)
    r = runner.invoke(app, ["evaluate", str(work / "ref.h5"), "--model", str(work / "m.pt"),
                            "--transfer", "--out", str(work / "tr")])
    assert r.exit_code == 0, r.output
    doc = json.loads((work / "tr" / "transfer.json").read_text())
    from coreloss.dataset import load_dataset
    n = len(load_dataset(work / "ref.h5"))
    assert doc["n_sites"] == n == len(doc["sites"])
    assert doc["labels"] == ["bond_length", "bond_angle", "voronoi_volume"]
    site = doc["sites"][0]
    assert {"bond_angle_true", "bond_angle_pred", "bond_angle_std", "ood_flag"} <= set(site)
    assert "bop_pred" not in site
    rows = (work / "tr" / "transfer.csv").read_text().strip().splitlines()
    assert len(rows) == n + 1
    r = runner.invoke(app, ["evaluate", str(work / "ref.h5"), "--model", str(work / "m.pt"),
                            "--transfer", "--labels", "colour", "--out", str(work / "tr2")])
    assert r.exit_code != 0 and "unknown label" in str(r.exception)
    r = runner.invoke(app, ["evaluate", str(work / "ref.h5"), "--model", str(work / "m.pt"),
                            "--transfer", "--out", str(work / "tr")])
    assert r.exit_code != 0  # refuses to overwrite
    # the training set itself: its training structures' sites are marked as seen, the test ones not
    r = runner.invoke(app, ["evaluate", str(work / "syn.h5"), "--model", str(work / "m.pt"),
                            "--transfer", "--out", str(work / "tr3")])
    assert r.exit_code == 0, r.output
    doc = json.loads((work / "tr3" / "transfer.json").read_text())
    from coreloss.evaluate import split_groups, test_mask
    ds = load_dataset(work / "syn.h5")
    te = test_mask(split_groups(ds), 0.15, 0)
    assert doc["seen_group_sites"] == int((~te).sum()) and "not a strict transfer test" in r.output
    assert [s["seen_group"] for s in doc["sites"]] == (~te).tolist()


def test_train_select_chooses_by_group_cv_and_records_it(work, monkeypatch):
    import coreloss.models.tuning as tuning
    from coreloss.models.inverse import InverseModel

    monkeypatch.setattr(tuning, "INVERSE_CANDIDATES", [{"hidden": (8,), "dropout": 0.0},
                                                       {"hidden": (16, 8), "dropout": 0.1}])
    r = runner.invoke(app, ["train", str(work / "syn.h5"), "--out", str(work / "sel.pt"), "--members", "1",
                            "--epochs", "3", "--select", "--cv-folds", "2"])
    assert r.exit_code == 0, r.output
    m = InverseModel.load(work / "sel.pt")
    sel = m.metadata["selection"]
    assert sel["folds"] == 2 and len(sel["candidates"]) == 2
    best = max(sel["candidates"], key=lambda c: c["score"])["params"]
    assert list(m.hidden) == best["hidden"] and m.dropout == best["dropout"]
    r = runner.invoke(app, ["train", str(work / "syn.h5"), "--out", str(work / "sel2.pt"), "--select",
                            "--cv-folds", "1"])
    assert r.exit_code != 0 and "--cv-folds" in str(r.exception) and not (work / "sel2.pt").exists()
