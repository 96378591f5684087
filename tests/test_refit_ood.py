"""scripts/refit_ood.py: refit a trained model's OOD scores on its own training rows, or refuse."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from coreloss.cli import app
from coreloss.models.inverse import InverseModel
from coreloss.models.synthetic import synthetic_structure_dataset

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    env = {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "refit_ood.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("refit")
    synthetic_structure_dataset(d / "syn.h5", n_structures=14, seed=3)
    synthetic_structure_dataset(d / "other.h5", n_structures=9, seed=5)
    r = CliRunner().invoke(app, ["train", str(d / "syn.h5"), "--out", str(d / "m.pt"), "--members", "2",
                                 "--epochs", "5", "--hidden", "16,8"])
    assert r.exit_code == 0, r.output
    return d


def test_refit_reproduces_the_scores_and_refuses_other_data(trained):
    d = trained
    r = _run(d / "m.pt", d / "syn.h5", "--out", d / "refit.pt")
    assert r.returncode == 0, r.stderr
    a, b = InverseModel.load(d / "m.pt"), InverseModel.load(d / "refit.pt")
    np.testing.assert_allclose(b.combined_ood_.thresholds_, a.combined_ood_.thresholds_, rtol=1e-6)
    assert b.metadata["ood_refits"][-1]["scores"] == list(b.combined_ood_.names)
    r = _run(d / "m.pt", d / "other.h5", "--out", d / "bad.pt")
    assert r.returncode == 1 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    assert not (d / "bad.pt").exists()
    r = _run(d / "m.pt", d / "syn.h5", "--out", d / "refit.pt")
    assert r.returncode == 2 and "exists" in r.stderr


def test_refit_rebuilds_the_rows_of_a_model_trained_with_auxiliary_rows(trained):
    d = trained
    synthetic_structure_dataset(d / "aux.h5", n_structures=12, seed=6, engine="other-engine")
    r = CliRunner().invoke(app, ["train", str(d / "syn.h5"), "--also", str(d / "aux.h5"), "--out",
                                 str(d / "mf.pt"), "--members", "1", "--epochs", "3", "--hidden", "16"])
    assert r.exit_code == 0, r.output
    r = _run(d / "mf.pt", d / "syn.h5", "--out", d / "mf_refit.pt")
    assert r.returncode == 2 and "--also" in r.stderr  # the auxiliary rows are part of the model's rows
    r = _run(d / "mf.pt", d / "syn.h5", "--also", d / "aux.h5", "--out", d / "mf_refit.pt")
    assert r.returncode == 0, r.stderr
    a, b = InverseModel.load(d / "mf.pt"), InverseModel.load(d / "mf_refit.pt")
    np.testing.assert_allclose(b.combined_ood_.thresholds_, a.combined_ood_.thresholds_, rtol=1e-6)
