"""Issue 14: failures found by an audit (bad inputs, partial outputs, resume) and their fixes.

Each test runs the real ``coreloss`` entry point in-process (exit code, stderr) or the library
function that failed, on real (small) inputs; the shipped inverse model serves where one is needed.
"""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from coreloss.errors import CorelossError

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FIX = TESTS / "fixtures" / "measured"
MINERALS = ROOT.parent / "shared" / "data" / "structures" / "minerals"


def cli(monkeypatch, capsys, *args):
    """Run ``coreloss.cli.main`` in-process: (exit code, stdout, stderr)."""
    from coreloss.cli import main
    monkeypatch.setattr(sys, "argv", ["coreloss", *map(str, args)])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(code, err):
    return code == 1 and err.startswith("error:") and err.strip().count("\n") == 0 and "Traceback" not in err


def quartz():
    return Structure.from_spacegroup("P3_221", Lattice.hexagonal(4.913, 5.405), ["Si", "O"],
                                     [[0.4697, 0, 2 / 3], [0.4135, 0.2669, 0.7858]])


@pytest.fixture(scope="module")
def image_1089(tmp_path_factory):
    """A 33x33 synthetic EELS spectrum image (1,089 spectra > 1,000) as .hspy."""
    from coreloss.measured.synthetic import synthetic_spectrum_image, write_hspy
    from coreloss.models.synthetic import synthetic_dataset
    X, y, _ = synthetic_dataset(n_structures=10, sites_per_structure=4, seed=0)
    si, truth = synthetic_spectrum_image(X, y, shape=(33, 33), snr=80, n_bad=3, seed=2)
    return write_hspy(si, tmp_path_factory.mktemp("img") / "si33.hspy", truth)


# 1 ----------------------------------------------------------------------------------------------
def test_build_from_folder_skips_disordered_cif(tmp_path, monkeypatch, capsys):
    d = tmp_path / "cifs"
    d.mkdir()
    quartz().to(filename=str(d / "quartz.cif"))
    dis = Structure(Lattice.cubic(4.2), [{"Mg": 0.5, "Fe": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    dis.to(filename=str(d / "disordered.cif"))
    out = tmp_path / "set.json"
    code, stdout, err = cli(monkeypatch, capsys, "structures", "build", "--from", d, "--out", out)
    assert code == 0, err
    assert "file-disordered" in stdout and "disordered" in stdout
    from coreloss.structures.record import load_structures
    assert [r.id for r in load_structures(out)] == ["file-quartz"]


def test_build_from_shared_minerals_folder(tmp_path, monkeypatch, capsys):
    if not (MINERALS / "Ca-Tschermak.cif").exists():
        pytest.skip(f"shared minerals not present: {MINERALS}")
    from coreloss.structures import sources
    dropped = []
    recs = sources.read_folder(MINERALS, dropped)
    reasons = {rid: why for rid, _, why in dropped}
    assert "disordered" in reasons["file-Ca-Tschermak"] and len(recs) > 30


# 2 ----------------------------------------------------------------------------------------------
def test_predict_more_than_1000_spectra(image_1089, tmp_path, monkeypatch, capsys):
    out = tmp_path / "res"
    code, _, err = cli(monkeypatch, capsys, "predict", image_1089, "--out", out)
    assert code == 0, err
    rows = (out / "si33_predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + 1089
    assert len(list(out.glob("si33_spectrum_*.png"))) == 10


def test_predict_failure_while_writing_leaves_nothing(image_1089, tmp_path, monkeypatch, capsys):
    import coreloss.measured.predict as pred

    def boom(*a, **k):
        raise CorelossError("plot failed")
    monkeypatch.setattr(pred, "plot_spectrum", boom)
    out = tmp_path / "res"
    code, _, err = cli(monkeypatch, capsys, "predict", image_1089, "--out", out)
    assert one_line_error(code, err) and "plot failed" in err
    assert not list(out.glob("*")), list(out.glob("*"))  # a rerun is not refused


# 3 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["predict", "map"])
@pytest.mark.parametrize("where", ["file", "under_file"])
def test_out_is_a_file_checked_before_work(command, where, tmp_path, monkeypatch, capsys):
    f = tmp_path / "results.txt"
    f.write_text("keep me")
    out = f if where == "file" else f / "sub"
    # a model that does not exist: the output check must come first (no work done)
    code, _, err = cli(monkeypatch, capsys, command, FIX / "xas_ok.csv", "--model", tmp_path / "none.pt",
                       "--out", out)
    assert one_line_error(code, err) and "results.txt" in err and "none.pt" not in err
    assert f.read_text() == "keep me"


@pytest.mark.parametrize("args", [
    ["structures", "build", "--from", "{cifs}", "--out", "{f}/set.json"],
    ["dataset", "build", "--out", "{f}/d.h5", "--limit-structures", "1"],
    ["synthetic-image", "{ds}", "--out", "{f}/x.hspy", "--size", "4"],
    ["train", "{ds}", "--out", "{f}/m.pt", "--epochs", "1", "--members", "1"],
    ["evaluate", "{f}", "--out", "{f}/eval"],
    ["simulate", "{cif}", "--out", "{f}/sim"],
    ["sites", "summary", "{set}", "--png", "{f}/labels.png"],
    ["dataset", "subset", "{ds}", "{f}/sub.h5"],
    ["dataset", "info", "{ds}", "--csv", "{f}/labels.csv"],
])
def test_out_under_a_file_other_commands(args, tmp_path, monkeypatch, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    quartz().to(filename=str(cifs / "q.cif"))
    ds = ROOT / "datasets" / "sio2_xtb_gfn2_v2.h5"
    from coreloss.structures.record import StructureRecord, save_structures
    sset = save_structures([StructureRecord("q", quartz(), "generated", "test")], tmp_path / "set.json") \
        or tmp_path / "set.json"
    args = [a.format(f=f, cifs=cifs, cif=cifs / "q.cif", ds=ds, set=sset) for a in args]
    code, _, err = cli(monkeypatch, capsys, *args)
    assert one_line_error(code, err) and "file.txt" in err, err


# 4 ----------------------------------------------------------------------------------------------
def test_truncated_part_file_is_set_aside_and_recomputed(tmp_path, capsys):
    sys.path.insert(0, str(TESTS))
    from test_dataset import quartz as q, write_set

    from coreloss.dataset import _jsonable, build_dataset, load_dataset, resolve_engine
    from coreloss.dataset_store import collect, parts_dir
    from coreloss.spectra import DEFAULT_GRID
    sset = write_set(tmp_path / "set.json", {"q-a": q(), "q-b": q(1.02, 0.03, 1)})
    out = tmp_path / "d.h5"
    eng = resolve_engine("test_dataset:ToyEngine", None)
    config = {"engine": eng.name, "engine_spec": "test_dataset:ToyEngine",
              "parameters": _jsonable(eng.params), "grid": DEFAULT_GRID.to_dict()}
    pdir = parts_dir(out)
    pdir.mkdir()
    (pdir / "run.json").write_text(json.dumps({**config, "created": "2026-01-01T00:00:00+00:00"}))
    buf = io.BytesIO()
    np.savez(buf, meta=np.array("{}"), x0=np.arange(5000.0))
    (pdir / "000001.npz").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # killed mid-copy
    with pytest.raises(zipfile.BadZipFile):
        np.load(pdir / "000001.npz")["x0"]
    rep = build_dataset(out, sset, engine="test_dataset:ToyEngine", workers=0)
    assert rep.total_sites == 7 and len(load_dataset(out)) == 7
    bad = tmp_path / "d.h5.parts" / "000001.npz.bad"
    assert bad.exists() or not (tmp_path / "d.h5.parts").exists()
    assert "000001.npz" in capsys.readouterr().err
    # the library function alone: a bad part is renamed and reported, never raised
    pdir.mkdir(exist_ok=True)
    (pdir / "000002.npz").write_bytes(b"PK\x03\x04 truncated")
    aside = []
    table, parts = collect(out, aside)
    assert len(table.rows) == 7 and parts == [] and aside[0][1].name == "000002.npz.bad"
    assert (pdir / "000002.npz.bad").exists() and not (pdir / "000002.npz").exists()


# 5 ----------------------------------------------------------------------------------------------
def test_sites_rejects_overlapping_atoms(tmp_path, monkeypatch, capsys):
    s = quartz()
    o = [i for i, site in enumerate(s) if site.specie.symbol == "O"][0]
    s.append("O", s[o].coords + np.array([0.05, 0, 0]), coords_are_cartesian=True)
    cif = tmp_path / "overlap.cif"
    s.to(filename=str(cif))
    code, _, err = cli(monkeypatch, capsys, "sites", cif)
    assert one_line_error(code, err) and "too close" in err
    code, out, err = cli(monkeypatch, capsys, "structures", "build", "--from", cif, "--out",
                         tmp_path / "s.json")
    assert code == 1  # the same rule as `structures build`


# 6 ----------------------------------------------------------------------------------------------
def test_map_keeps_a_non_uniform_navigation_axis(tmp_path, monkeypatch, capsys):
    import hyperspy.api as hs

    from coreloss.measured.readers import MeasuredSpectra, NavAxis, read_measured
    from coreloss.measured.synthetic import synthetic_spectrum_image, write_hspy
    from coreloss.models.synthetic import synthetic_dataset
    X, y, _ = synthetic_dataset(n_structures=6, sites_per_structure=4, seed=1)
    si, _ = synthetic_spectrum_image(X, y, shape=(1, 12), snr=80, seed=1)
    pos = tuple(float(v) for v in np.cumsum(np.linspace(0.5, 3.0, 12)))  # nm, growing steps
    line = MeasuredSpectra(si.energy, si.data[0], [NavAxis("x", 12, units="nm", values=pos)],
                           si.metadata, "line")
    path = write_hspy(line, tmp_path / "line.hspy")
    back = read_measured(path)
    assert np.allclose(back.nav_axes[0].positions, pos)
    code, _, err = cli(monkeypatch, capsys, "map", path, "--out", tmp_path / "m")
    assert code == 0, err
    props = hs.load(str(tmp_path / "m" / "line_properties.hspy"))
    ax = props.axes_manager.signal_axes[0]
    assert ax.units == "nm" and np.allclose(ax.axis, pos)


# 7 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opt,match", [
    (["--edge", "nan"], "--edge"), (["--shift", "inf"], "--shift"), (["--edge", "-5"], "--edge"),
    (["--resolution", "-1"], "--resolution"), (["--resolution", "nan"], "--resolution"),
    (["--bg-window", "nan:500"], "--bg-window")])
@pytest.mark.parametrize("command", ["predict", "map"])
def test_option_values_checked(opt, match, command, tmp_path, monkeypatch, capsys):
    code, _, err = cli(monkeypatch, capsys, command, FIX / "xas_ok.csv", *opt, "--out", tmp_path / "o")
    assert one_line_error(code, err) and match in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("opt", [["--size", "0"], ["--snr", "nan"], ["--snr", "-3"], ["--n-bad", "-1"]])
def test_synthetic_image_options_checked(opt, tmp_path, monkeypatch, capsys):
    code, _, err = cli(monkeypatch, capsys, "synthetic-image", ROOT / "datasets" / "sio2_xtb_gfn2_v2.h5",
                       *opt, "--out", tmp_path / "x.hspy")
    assert one_line_error(code, err)


def test_unreadable_input_is_an_error_line(tmp_path, monkeypatch, capsys):
    if os.geteuid() == 0:
        # root reads any file: make `open` fail for this path as a permission error would
        import builtins
        real_open = builtins.open
        target = str(tmp_path / "locked.csv")

        def fake_open(file, *a, **k):
            if str(file) == target:
                raise PermissionError(13, "Permission denied", target)
            return real_open(file, *a, **k)
        monkeypatch.setattr(builtins, "open", fake_open)
    locked = tmp_path / "locked.csv"
    locked.write_bytes((FIX / "xas_ok.csv").read_bytes())
    locked.chmod(0)
    code, _, err = cli(monkeypatch, capsys, "predict", locked, "--out", tmp_path / "o")
    assert one_line_error(code, err) and "cannot be read" in err


# 9 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["inverse", "forward"])
def test_model_with_tag_but_no_weights(kind, tmp_path, monkeypatch, capsys):
    import torch

    from coreloss.models import default_forward_model_path, default_inverse_model_path
    src = default_inverse_model_path() if kind == "inverse" else default_forward_model_path()
    blob = torch.load(src, map_location="cpu", weights_only=True)
    del blob["weights"]
    bad = tmp_path / "damaged.pt"
    torch.save(blob, bad)
    if kind == "inverse":
        args = ["predict", FIX / "xas_ok.csv", "--model", bad, "--out", tmp_path / "o"]
    else:
        cif = tmp_path / "q.cif"
        quartz().to(filename=str(cif))
        args = ["simulate", cif, "--model", bad, "--out", tmp_path / "o"]
    code, _, err = cli(monkeypatch, capsys, *args)
    assert one_line_error(code, err) and "damaged" in err and "weights" in err


# 10 ---------------------------------------------------------------------------------------------
def test_no_resource_tracker_noise_at_exit(tmp_path):
    """A command whose processes leave a semaphore behind (as Dask workers stopped at the end of a
    build do) prints no `resource_tracker` warning through the real entry point."""
    import subprocess
    code = (
        "import os, sys, multiprocessing as mp\n"
        "from coreloss.cli import app, main\n"
        "@app.command('leak')\n"
        "def leak():\n"
        "    global sem\n"
        "    sem = mp.get_context('spawn').Semaphore(1)  # still held at exit\n"
        "    sys.stdout.flush()\n"
        "    os._exit(0)\n"
        "sys.argv = ['coreloss', 'leak']\n"
        "main()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = str(ROOT / "src")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "resource_tracker" not in p.stderr and "Warning" not in p.stderr, p.stderr


# scale ------------------------------------------------------------------------------------------
def test_streamed_lazy_image_gives_the_in_memory_results(tmp_path):
    """A lazily read image streamed in small blocks on 2 threads = the in-memory result."""
    from coreloss.measured import load_model, predict_measured, read_measured
    from coreloss.measured.synthetic import synthetic_spectrum_image, write_hspy
    from coreloss.models.synthetic import synthetic_dataset
    X, y, _ = synthetic_dataset(n_structures=6, sites_per_structure=4, seed=3)
    si, _ = synthetic_spectrum_image(X, y, shape=(9, 7), snr=60, n_bad=4, seed=3)
    path = write_hspy(si, tmp_path / "s.hspy", compression=None)
    lazy = read_measured(path, energy_range=(490, 590), lazy=True, keep_lazy=True)
    eager = read_measured(path, energy_range=(490, 590))
    assert lazy.lazy and not eager.lazy
    model = load_model()
    a = predict_measured(lazy, model, batch=10, workers=2)
    b = predict_measured(eager, model, workers=1)
    for key in ("onset", "snr"):  # pre-processing: identical whatever the blocks and threads
        assert np.array_equal(getattr(a, key), getattr(b, key), equal_nan=True), key
    for key in ("mean", "std", "ood_score"):  # the float32 network: equal to its rounding
        assert np.allclose(getattr(a, key), getattr(b, key), rtol=1e-6, atol=0, equal_nan=True), key
    assert np.array_equal(a.reasons, b.reasons) and (~a.valid).sum() == 4
