"""Prediction, maps, synthetic spectrum images and the predict/map CLI (coreloss.measured)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coreloss.errors import CorelossError
from coreloss.measured import predict_measured, read_measured
from coreloss.measured.maps import save_maps
from coreloss.measured.synthetic import synthetic_spectrum_image, write_hspy

FIX = Path(__file__).parent / "fixtures" / "measured"
EXP = Path(__file__).resolve().parents[2] / "shared" / "data" / "experimental"


@pytest.fixture(scope="module")
def data():
    from coreloss.models.synthetic import synthetic_dataset
    return synthetic_dataset(n_structures=30, sites_per_structure=8, seed=0)


@pytest.fixture(scope="module")
def model_path(data, tmp_path_factory):
    from coreloss.models.inverse import InverseModel
    X, y, g = data
    m = InverseModel(members=2, epochs=40, hidden=(64,), seed=0).fit(X, y, g)
    return m.save(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="module")
def model(model_path):
    from coreloss.models.inverse import InverseModel
    return InverseModel.load(model_path)


@pytest.fixture(scope="module")
def image(data, tmp_path_factory):
    X, y, _ = data
    si, truth = synthetic_spectrum_image(X, y, shape=(12, 10), snr=100, n_bad=6, seed=1)
    path = write_hspy(si, tmp_path_factory.mktemp("si") / "si.hspy", truth, ["a"] * 6)
    return path, truth


def run_cli(args, capsys):
    from coreloss.cli import main
    old = sys.argv
    sys.argv = ["coreloss", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def test_synthetic_image_roundtrip_and_truth(image):
    path, truth = image
    m = read_measured(path)
    assert m.nav_shape == (12, 10) and [a.name for a in m.nav_axes] == ["y", "x"]
    assert m.metadata["signal_type"] == "EELS" and m.energy[0] == pytest.approx(480.0)
    assert truth["labels"].shape == (12, 10, 6) and truth["bad"].sum() == 6


def test_map_recovers_labels_and_masks_failed_pixels(image, model, tmp_path):
    path, truth = image
    m = read_measured(path)
    res = predict_measured(m, model)
    bad = truth["bad"].ravel()
    assert np.array_equal(~res.valid, bad)  # exactly the broken pixels fail, each with a reason
    assert all(r for r in res.reasons[bad]) and np.isnan(res.mean[bad]).all()
    y = truth["labels"].reshape(-1, 6)[~bad]
    pred = res.mean[~bad]
    r2 = 1 - np.sum((pred - y) ** 2, 0) / np.sum((y - y.mean(0)) ** 2, 0)
    assert np.median(r2) > 0.5, r2  # labels recovered through background, noise and alignment
    assert res.ood[~bad].mean() < 0.2  # in-distribution spectra are mostly not flagged
    files = save_maps(res, m, tmp_path, "si")
    assert all(Path(f).exists() for f in files)
    import hyperspy.api as hs
    props = hs.load(str(tmp_path / "si_properties.hspy"))
    assert props.data.shape == (6, 12, 10)
    assert [a.name for a in props.axes_manager.signal_axes] == ["x", "y"]
    assert np.isnan(props.data[:, truth["bad"]]).all()
    failed = json.loads((tmp_path / "si_failed_pixels.json").read_text())
    assert failed["n_failed"] == 6
    with pytest.raises(CorelossError, match="already exists"):
        save_maps(res, m, tmp_path, "si")  # never overwrite results


def test_real_spectra_are_out_of_distribution(model):
    if not EXP.exists():
        pytest.skip(f"shared experimental data not present: {EXP}")
    for name in ("exspy_coreloss_spectrum.msa", "LSMO_STO_linescan.hspy"):
        res = predict_measured(read_measured(EXP / name), model)
        assert res.valid.all() and res.ood.all(), name


def test_cli_predict_csv_and_map(image, model_path, tmp_path, capsys):
    code, out, err = run_cli(["predict", FIX / "xas_ok.csv", "--model", model_path, "--out", tmp_path], capsys)
    assert code == 0, err
    rows = (tmp_path / "xas_ok_predictions.csv").read_text().splitlines()
    assert rows[0].startswith("index,bond_length,bond_length_std") and len(rows) == 2
    assert (tmp_path / "xas_ok_spectrum.png").stat().st_size > 0
    js = json.loads((tmp_path / "xas_ok_predictions.json").read_text())
    assert js["provenance"]["preprocessing"]["stages"][0]["stage"] == "background"
    code, out, err = run_cli(["predict", FIX / "xas_ok.csv", "--model", model_path, "--out", tmp_path], capsys)
    assert code == 1 and "already exists" in err  # results are never overwritten silently
    path, _ = image
    code, out, err = run_cli(["map", path, "--model", model_path, "--out", tmp_path / "m"], capsys)
    assert code == 0, err
    assert (tmp_path / "m" / "si_bond_angle.png").exists() and "6 failed" in out


@pytest.mark.parametrize("name,match", [
    ("not_a_spectrum.msa", "cannot read"), ("not_a_spectrum.dm3", "cannot read"),
    ("no_edge.csv", "no O K edge in range"), ("zeros.csv", "zero counts"),
    ("nan.csv", "non-finite"), ("missing.msa", "no such file")])
def test_cli_bad_files_one_line_exit_1(name, match, model_path, tmp_path, capsys):
    code, out, err = run_cli(["predict", FIX / name, "--model", model_path, "--out", tmp_path], capsys)
    assert code == 1 and match in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_truncated_file_subprocess(tmp_path, model_path):
    if not EXP.exists():
        pytest.skip(f"shared experimental data not present: {EXP}")
    src = (EXP / "LSMO_linescan.hspy").read_bytes()
    bad = tmp_path / "cut.hspy"
    bad.write_bytes(src[: len(src) // 3])
    exe = Path(sys.executable).parent / "coreloss"
    p = subprocess.run([str(exe), "map", str(bad), "--model", str(model_path), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr and p.stderr.startswith("error:")
