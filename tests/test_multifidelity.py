"""Multi-fidelity training: auxiliary rows of a second engine joined to the primary dataset."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from coreloss.cli import app
from coreloss.errors import CorelossError
from coreloss.evaluate import cross_validate, split_groups, test_mask
from coreloss.labels import GEOMETRIC_LABELS, LABEL_NAMES
from coreloss.models.inverse import InverseModel
from coreloss.models.synthetic import synthetic_structure_dataset
from coreloss.multifidelity import ENGINE_SPECIFIC_LABELS, AuxiliaryRows
from coreloss.spectra import EnergyGrid
from coreloss.workflow import train_and_evaluate

GEO = [LABEL_NAMES.index(n) for n in GEOMETRIC_LABELS]
ELEC = [LABEL_NAMES.index(n) for n in ENGINE_SPECIFIC_LABELS]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("mf")
    primary = synthetic_structure_dataset(d / "dft.h5", n_structures=10, seed=1, engine="dft-standin")
    aux = synthetic_structure_dataset(d / "xtb.h5", n_structures=16, seed=2, engine="xtb-standin")
    return d, primary, aux


def test_auxiliary_rows_mask_engine_specific_labels(data):
    _, primary, aux = data
    rows = AuxiliaryRows.from_dataset(aux, primary_engine="dft-standin", grid=primary.grid)
    assert rows.engine == "xtb-standin" and set(ENGINE_SPECIFIC_LABELS) == {"bop", "mulliken_charge",
                                                                            "excitation_energy"}
    assert np.isnan(rows.y[:, ELEC]).all() and np.isfinite(rows.y[:, GEO]).all()
    same = AuxiliaryRows.from_dataset(aux, primary_engine="xtb-standin")
    assert np.isfinite(same.y).all()  # same engine: every label means the same thing
    with pytest.raises(CorelossError, match="energy grid"):
        AuxiliaryRows.from_dataset(aux, "dft-standin", grid=EnergyGrid(-5.0, 20.0, 0.1))


def test_joined_leaves_out_held_out_groups_and_balances(data):
    _, primary, aux = data
    rows = AuxiliaryRows.from_dataset(aux, "dft-standin")
    g = split_groups(primary)
    tr = np.isin(g, np.unique(g)[:3])  # few primary rows: they are repeated
    held = np.unique(g)[3:5]
    X, y, gj, pm = rows.joined(primary.X[tr], primary.y[tr], g[tr], held_out=held)
    n_aux = int((~np.isin(rows.groups, held)).sum())
    assert n_aux < len(rows.X) and (~pm).sum() == n_aux
    rep = pm.sum() // tr.sum()
    assert rep == max(1, round(n_aux / (2 * tr.sum()))) and rep > 1 and pm.sum() == rep * tr.sum()
    assert not np.isin(gj, held).any() and pm[:pm.sum()].all()
    np.testing.assert_array_equal(X[~pm], rows.X[~np.isin(rows.groups, held)])
    assert len(rows.without(held).X) == n_aux


def test_train_and_evaluate_with_auxiliary_fits_ood_on_primary_only(data):
    _, primary, aux = data
    rows = AuxiliaryRows.from_dataset(aux, "dft-standin", source="xtb.h5")
    inv = InverseModel(members=1, epochs=3, hidden=(16,), seed=0)
    run = train_and_evaluate(primary, inv, test_fraction=0.3, auxiliary=rows)
    md = run.inverse.metadata
    g = split_groups(primary)
    te = test_mask(g, 0.3, 0)
    n_aux = int((~np.isin(rows.groups, np.unique(g[te]))).sum())
    rec = md["training_provenance"]["auxiliary"]
    assert rec["n_used"] == n_aux and rec["engine"] == "xtb-standin" and rec["source"] == "xtb.h5"
    assert md["n_train"] + md["n_val"] > (~te).sum() + n_aux - 1  # repeated primary rows + auxiliary
    # the OOD neighbours are the primary training spectra (each once), never the auxiliary ones
    ref = run.inverse.spectrum_knn_.ref_
    assert len(ref) == md["n_train_primary"] // (md["n_train_primary"] // len(ref)) <= (~te).sum()
    assert run.inverse.metadata["test_metrics"]["bond_length"]["r2"] is not None


class _Recorder:
    """A model that records what it was fitted on and predicts the training mean."""

    seen: list = []

    def fit(self, X, y, groups=None, primary=None):
        _Recorder.seen.append((len(X), None if primary is None else int(primary.sum()), set(groups)))
        self.mean_ = np.nanmean(y, axis=0)
        return self

    def predict(self, X):
        return np.tile(self.mean_, (len(X), 1))


def test_cross_validate_joins_auxiliary_rows_outside_the_validation_fold(data):
    _, primary, aux = data
    rows = AuxiliaryRows.from_dataset(aux, "dft-standin")
    g = split_groups(primary)
    _Recorder.seen = []
    res = cross_validate(primary.X, primary.y, g, _Recorder, n_splits=3, auxiliary=rows)
    assert len(_Recorder.seen) == 3 and np.isfinite(res["oof"][:, GEO]).all()
    from coreloss.evaluate import group_kfold
    for (n, n_primary, groups_fit), (tr, te) in zip(_Recorder.seen, group_kfold(g, 3)):
        assert not groups_fit & set(g[te])  # no validation group comes back through the other engine
        assert n_primary % len(tr) == 0 and n - n_primary == (~np.isin(rows.groups, g[te])).sum()


def test_cli_train_also(data):
    d, _, _ = data
    runner = CliRunner()
    r = runner.invoke(app, ["train", str(d / "dft.h5"), "--also", str(d / "xtb.h5"), "--out", str(d / "m.pt"),
                            "--members", "1", "--epochs", "3", "--hidden", "16", "--test-fraction", "0.3"])
    assert r.exit_code == 0, r.output
    md = InverseModel.load(d / "m.pt").metadata
    assert md["training_provenance"]["auxiliary"]["engine"] == "xtb-standin"
    r = runner.invoke(app, ["evaluate", str(d / "dft.h5"), "--model", str(d / "m.pt"), "--out", str(d / "ev"),
                            "--cv", "--folds", "2"])
    assert r.exit_code == 0, r.output
    cv = json.loads((d / "ev" / "metrics.json").read_text())["cv"]
    assert cv["auxiliary"]["engine"] == "xtb-standin" and cv["n_splits"] == 2
    r = runner.invoke(app, ["train", str(d / "dft.h5"), "--also", str(d / "xtb.h5"), "--out", str(d / "s.pt"),
                            "--members", "1", "--epochs", "2", "--select", "--cv-folds", "2"])
    assert r.exit_code == 0, r.output  # the CV that chooses the network also joins the auxiliary rows
    assert len(InverseModel.load(d / "s.pt").metadata["selection"]["candidates"]) >= 2
    r = runner.invoke(app, ["train", str(d / "dft.h5"), "--also", str(d / "missing.h5"), "--out", str(d / "n.pt")])
    assert r.exit_code != 0 and "missing.h5" in str(r.exception) and not (d / "n.pt").exists()
