"""Dataset builder: HDF5 round trip, failures, resume after a real kill -9, refusals, bad inputs.

The storage/resume logic is tested with ``ToyEngine``, a real :class:`Engine` subclass that
computes a deterministic spectrum from the O site's Si neighbour distances (test-only). The
real xtb engine is exercised end to end in ``test_dataset_xtb.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from coreloss.build_progress import build_progress
from coreloss.dataset import build_dataset, load_dataset
from coreloss.dataset_store import collect, parts_dir
from coreloss.engines.base import Engine, EngineError, SiteResult
from coreloss.errors import CorelossError
from coreloss.labels import LABEL_NAMES, LABEL_UNITS
from coreloss.sites import o_sites
from coreloss.spectra import DEFAULT_GRID, broaden_sticks, onset_energy
from coreloss.structures.record import StructureRecord, save_structures

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


class ToyEngine(Engine):
    """Test-only engine: sticks at energies set by the Si-O distances of the site.

    ``delay`` (s per site); ``fail_sites``: site indices that raise EngineError while the file
    ``fail_marker`` exists (always if no marker); ``crash_natoms``: structures of that size raise.
    """

    name = "toy"

    def __init__(self, delay=0.0, fail_sites=(), fail_marker=None, crash_natoms=0):
        super().__init__(delay=delay, fail_sites=list(fail_sites), fail_marker=fail_marker,
                         crash_natoms=crash_natoms)

    @property
    def version(self):
        return "toy-1"

    def compute_sites(self, structure, site_indices):
        p = self.params
        if len(structure) == p["crash_natoms"]:
            raise RuntimeError("toy engine crashed")
        failing = p["fail_marker"] is None or os.path.exists(p["fail_marker"])
        energy = np.arange(520.0, 570.0, 0.05)
        out = []
        for i in site_indices:
            time.sleep(p["delay"])
            if failing and i in p["fail_sites"]:
                out.append(EngineError(f"SCF did not converge for site {i}"))
                continue
            d = sorted(n.nn_distance for n in structure.get_neighbors(structure[i], 2.2))
            sticks = [532.0 + 8.0 * (x - 1.6) + 4.0 * k for k, x in enumerate(d)] + [545.0]
            intensity = broaden_sticks(sticks, np.ones(len(sticks)), energy, 1.0, 0.3)
            onset = onset_energy(energy, intensity)
            out.append(SiteResult(i, energy, intensity, onset,
                                  {"mulliken_charge": -0.3 * len(d), "bop": 0.1 * sum(d),
                                   "excitation_energy": onset},
                                  {**self.provenance(), "pid": os.getpid(), "t": time.time()}))
        return out


def quartz(scale=1.0, perturb=0.0, seed=0) -> Structure:
    s = Structure.from_spacegroup("P3_221", Lattice.hexagonal(4.913 * scale, 5.405 * scale),
                                  ["Si", "O"], [[0.4697, 0, 2 / 3], [0.4135, 0.2669, 0.7858]])
    if perturb:
        rng = np.random.default_rng(seed)
        for i in range(len(s)):
            s.translate_sites([i], rng.normal(0, perturb, 3), frac_coords=False)
    return s


def write_set(path, structures: dict) -> Path:
    save_structures([StructureRecord(k, s, "generated", "test") for k, s in structures.items()], path)
    return path


@pytest.fixture
def small_set(tmp_path):
    return write_set(tmp_path / "set.json", {"q-a": quartz(), "q-b": quartz(1.02, 0.03, 1)})


def cli(capsys, monkeypatch, *args):
    """Run the real ``coreloss`` entry point (``coreloss.cli.main``) in-process: (exit code, stderr)."""
    from coreloss.cli import main
    monkeypatch.setattr(sys, "argv", ["coreloss", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def test_round_trip(tmp_path, small_set):
    out = tmp_path / "d.h5"
    rep = build_dataset(out, small_set, engine="test_dataset:ToyEngine", workers=0)
    ds = load_dataset(out)
    n = 1 + 6  # quartz: one unique O; perturbed quartz (P1): six
    assert rep.new_sites == n == len(ds) and rep.total_sites == n
    assert ds.X.shape == (n, DEFAULT_GRID.n) and ds.y.shape == (n, 6)
    assert ds.grid.matches(DEFAULT_GRID)
    assert tuple(ds.label_names) == LABEL_NAMES
    assert tuple(ds.label_units) == tuple(LABEL_UNITS[k] for k in LABEL_NAMES)
    assert np.allclose(np.trapezoid(ds.X, dx=ds.grid.step, axis=1), 1.0)
    p = ds.provenance
    assert p["engine"] == "toy" and p["engine_version"] == "toy-1" and p["parameters"]["delay"] == 0.0
    assert p["grid"]["step"] == pytest.approx(0.1) and p["units"]["voronoi_volume"] == "Å^3"
    assert p["coreloss_version"] and p["created"] and p["n_sites"] == n
    assert set(ds.structures) == {"q-a", "q-b"} and ds.structures["q-b"] == quartz(1.02, 0.03, 1)
    assert ds.structure_meta["q-a"]["source"] == "generated"
    assert ds.failures == [] and not parts_dir(out).exists()
    # labels: geometric ones from coreloss.sites, electronic ones from the engine, in LABEL_NAMES order
    sites = {s.index: s for s in o_sites(quartz(1.02, 0.03, 1))}
    rows = np.nonzero(ds.structure_ids == "q-b")[0]
    assert sorted(ds.site_index[rows]) == sorted(sites)
    for r in rows:
        site = sites[int(ds.site_index[r])]
        g = site.labels()
        assert ds.y[r, :3] == pytest.approx([g["bond_length"], g["bond_angle"], g["voronoi_volume"]])
        assert ds.y[r, LABEL_NAMES.index("mulliken_charge")] == pytest.approx(-0.3 * site.coordination)
        assert ds.y[r, LABEL_NAMES.index("excitation_energy")] == pytest.approx(ds.onset[r])
        assert ds.site_provenance[r]["coordination"] == site.coordination == 2
    assert ds.multiplicity[ds.structure_ids == "q-a"].tolist() == [6]
    with h5py.File(out) as fh:  # raw spectra kept, units as attributes
        assert fh["raw/intensity"][0].size == 1000 and fh["onset"].attrs["unit"].startswith("eV")
        assert json.loads(fh["y"].attrs["label_names"]) == list(LABEL_NAMES)
    sub = ds.subset(ds.structure_ids == "q-a")
    assert len(sub) == 1 and set(sub.structures) == {"q-a"}
    ds.to_csv(tmp_path / "l.csv")
    lines = (tmp_path / "l.csv").read_text().splitlines()
    assert len(lines) == n + 1 and lines[0].startswith("structure_id,site_index,multiplicity")
    # re-running is a no-op that keeps the file as it is
    before = ds.site_provenance
    assert build_dataset(out, small_set, engine="test_dataset:ToyEngine", workers=0).new_sites == 0
    assert load_dataset(out).site_provenance == before


def test_failures_recorded_then_retried(tmp_path):
    marker = tmp_path / "fail-now"
    marker.touch()
    big = quartz().make_supercell([2, 1, 1], in_place=False)
    sset = write_set(tmp_path / "s.json", {"q-b": quartz(1.0, 0.03, 2), "q-big": big})
    params = {"fail_sites": [3, 5], "fail_marker": str(marker), "crash_natoms": 18}
    out = tmp_path / "d.h5"
    rep = build_dataset(out, sset, engine="test_dataset:ToyEngine", engine_params=params, workers=0)
    assert rep.new_sites == 4
    ds = load_dataset(out)
    fails = {(f["structure_id"], f["site_index"]): f["reason"] for f in ds.failures}
    big_sites = {("q-big", s.index) for s in o_sites(big)}
    assert set(fails) == {("q-b", 3), ("q-b", 5)} | big_sites
    assert "SCF did not converge" in fails[("q-b", 3)]
    assert all("toy engine crashed" in r for (sid, _), r in fails.items() if sid == "q-big")
    assert len(ds) == 4 and 3 not in ds.site_index and "q-big" in ds.structures
    marker.unlink()
    rep = build_dataset(out, sset, engine="test_dataset:ToyEngine", engine_params=params,
                        workers=0, retry_failed=True)
    ds = load_dataset(out)
    assert rep.new_sites == 2 and len(ds) == 6
    keys = list(zip(ds.structure_ids.tolist(), ds.site_index.tolist()))
    assert len(keys) == len(set(keys))  # nothing duplicated
    assert {f["structure_id"] for f in ds.failures} == {"q-big"}  # still crashing


def test_mismatched_engine_parameters_refused(tmp_path, small_set, capsys, monkeypatch):
    out = tmp_path / "d.h5"
    build_dataset(out, small_set, engine="test_dataset:ToyEngine", workers=0)
    stamp = out.stat().st_mtime_ns
    with pytest.raises(CorelossError, match="delay"):
        build_dataset(out, small_set, engine="test_dataset:ToyEngine",
                      engine_params={"delay": 0.01}, workers=0)
    code, err = cli(capsys, monkeypatch, "dataset", "build", "--engine", "test_dataset:ToyEngine",
                    "-p", "delay=0.01", "--structures", str(small_set), "--out", str(out),
                    "--workers", "0")
    assert code == 1 and "use another --out" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(CorelossError, match="grid"):
        from coreloss.spectra import EnergyGrid
        build_dataset(out, small_set, engine="test_dataset:ToyEngine", workers=0,
                      grid=EnergyGrid(-5, 20, 0.1))
    assert out.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("case", ["missing-structures", "out-is-dir", "out-not-dataset", "bad-param"])
def test_bad_inputs_one_line_exit_1(tmp_path, small_set, case, capsys, monkeypatch):
    args = ["--structures", str(small_set), "--out", str(tmp_path / "d.h5")]
    foreign = tmp_path / "notes.h5"
    foreign.write_text("precious, not a dataset")
    if case == "missing-structures":
        args[1] = str(tmp_path / "nope.json")
    elif case == "out-is-dir":
        args[3] = str(tmp_path)
    elif case == "out-not-dataset":
        args[3] = str(foreign)
    else:
        args += ["--engine-param", "novalue"]
    code, err = cli(capsys, monkeypatch, "dataset", "build", "--engine", "test_dataset:ToyEngine",
                    "--workers", "0", *args)
    assert code == 1, err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert foreign.read_text() == "precious, not a dataset"
    assert not (tmp_path / "d.h5").exists()


def _wait_for(pred, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_resume_after_kill_9(tmp_path):
    """A real SIGKILL of the build (and its Dask workers); the restart loses and duplicates nothing."""
    structs = {f"q{k}": quartz(1.0 + 0.01 * k, 0.03, k) for k in range(6)}  # 6 x 6 unique O sites
    sset = write_set(tmp_path / "s.json", structs)
    out = tmp_path / "d.h5"
    cmd = [sys.executable, "-m", "coreloss", "dataset", "build", "--engine", "test_dataset:ToyEngine",
           "-p", "delay=0.12", "--structures", str(sset), "--out", str(out), "--workers", "1",
           "--checkpoint-every", "12"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # kill once the first checkpoint is in the HDF5 and more parts are pending
        assert _wait_for(lambda: out.exists() and len(collect(out)[0].structures) >= 3, 90), \
            proc.stderr.read1().decode() if proc.poll() is not None else "build too slow"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before, _ = collect(out)
    assert 3 <= len(before.structures) < 6, "kill came too late to test a resume"
    prog = build_progress(out)  # progress and ETA read from disk after the kill
    done = len(before.structures)
    assert prog["planned_tasks"] == 6 and prog["done_tasks"] == done
    assert prog["left_tasks"] == 6 - done and prog["left_sites_estimated"] == 6 * (6 - done)
    assert prog["sites_in_file_and_parts"] == 6 * done and prog["eta_hours"] > 0
    info = subprocess.run([sys.executable, "-m", "coreloss", "dataset", "info", str(out)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert info.returncode == 0 and f"{done}/6 planned tasks done" in info.stdout, info.stderr
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    ds = load_dataset(out)
    keys = list(zip(ds.structure_ids.tolist(), ds.site_index.tolist()))
    assert len(keys) == len(set(keys)) == 36 and ds.failures == []
    assert set(ds.structure_ids.tolist()) == set(structs)
    for (sid, idx), row in before.rows.items():  # earlier results kept as they were, not recomputed
        i = keys.index((sid, idx))
        assert ds.site_provenance[i]["engine"]["pid"] == row["info"]["engine"]["pid"]
        assert np.array_equal(ds.X[i], row["x"]) and np.array_equal(ds.y[i], row["y"], equal_nan=True)
    pids = {p["engine"]["pid"] for p in ds.site_provenance}
    assert len(pids) == 2  # one worker before the kill, one after
    assert not parts_dir(out).exists() and build_progress(out) is None


def test_external_scheduler_gives_same_results(tmp_path, small_set):
    """``scheduler=`` connects to an existing Dask cluster; results equal the serial build's."""
    from dask.distributed import LocalCluster
    serial = tmp_path / "serial.h5"
    build_dataset(serial, small_set, engine="test_dataset:ToyEngine", workers=0)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        rep = build_dataset(tmp_path / "dask.h5", small_set, engine="test_dataset:ToyEngine",
                            scheduler=cl.scheduler_address)
    a, b = load_dataset(serial), load_dataset(tmp_path / "dask.h5")
    assert rep.new_sites == len(a) == len(b) == 7
    order = lambda d: np.lexsort((d.site_index, d.structure_ids))  # noqa: E731
    ia, ib = order(a), order(b)
    assert np.array_equal(a.X[ia], b.X[ib]) and np.allclose(a.y[ia], b.y[ib], equal_nan=True)


def test_subset_drops_a_source_and_never_overwrites(tmp_path, capsys, monkeypatch):
    sset = tmp_path / "set.json"
    save_structures([StructureRecord("q-a", quartz(), "generated", "test"),
                     StructureRecord("q-min", quartz(1.02, 0.03, 1), "amcsd", "a mineral CIF")], sset)
    full = tmp_path / "full.h5"
    build_dataset(full, sset, engine="test_dataset:ToyEngine", workers=0)
    sub = tmp_path / "sub.h5"
    code, err = cli(capsys, monkeypatch, "dataset", "subset", str(full), str(sub), "--drop-source", "amcsd")
    assert code == 0, err
    a, b = load_dataset(full), load_dataset(sub)
    assert set(b.structures) == {"q-a"} and len(b) == 1 and len(a) == 7
    keep = a.structure_ids == "q-a"
    assert np.array_equal(b.X, a.X[keep]) and np.array_equal(b.y, a.y[keep])
    assert b.provenance["subset"]["dropped_sources"] == ["amcsd"] and b.provenance["engine"] == "toy"
    before = sub.read_bytes()
    code, err = cli(capsys, monkeypatch, "dataset", "subset", str(full), str(sub), "--ids", "q-a")
    assert code == 1 and "exists" in err and len(err.strip().splitlines()) == 1
    assert sub.read_bytes() == before
    code, err = cli(capsys, monkeypatch, "dataset", "subset", str(full), str(tmp_path / "e.h5"), "--ids", "nope")
    assert code == 1 and "empty" in err and not (tmp_path / "e.h5").exists()


class SplitToyEngine(ToyEngine):
    """ToyEngine whose build tasks hold at most 2 O sites."""

    sites_per_task = 2


def test_sites_per_task_splits_tasks_same_results(tmp_path):
    sset = write_set(tmp_path / "s.json", {"q-p": quartz(1.0, 0.03, 2)})  # 6 unique O sites
    whole = build_dataset(tmp_path / "a.h5", sset, engine="test_dataset:ToyEngine", workers=0)
    split = build_dataset(tmp_path / "b.h5", sset, engine="test_dataset:SplitToyEngine", workers=0)
    assert whole.new_sites == split.new_sites == 6 and split.structures_done == 3
    a, b = load_dataset(tmp_path / "a.h5"), load_dataset(tmp_path / "b.h5")
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert {p["task_sites"] for p in b.site_provenance} == {2}


def test_split_tasks_follows_the_pick_order():
    from coreloss.dataset import split_tasks
    recs = {k: {"id": k, "structure": quartz(1.0, 0.03, s).as_dict()} for s, k in enumerate("ab")}
    rank = {("a", 0): 0, ("b", 5): 1, ("a", 3): 2, ("b", 1): 3, ("a", 4): 4, ("b", 2): 5}
    todo = [(recs["a"], [0, 3, 4]), (recs["b"], [1, 2, 5])]
    out = split_tasks(todo, 2, rank)
    assert [(r["id"], only) for r, only in out] == [("a", [0, 3]), ("b", [1, 5]), ("a", [4]), ("b", [2])]
    assert split_tasks(todo, None, rank) == todo
    whole = split_tasks([(recs["a"], None)], 4)  # all 6 sites of a structure, in order
    idx = [s.index for s in o_sites(quartz(1.0, 0.03, 0))]
    assert len(idx) == 6 and [only for _, only in whole] == [idx[:4], idx[4:]]


def test_build_start_removes_leftover_consolidation_temp(tmp_path):
    """A consolidation killed mid-write leaves .<out>.XXXXXXXX.tmp; the next build removes it."""
    from coreloss.dataset_store import prepare_output
    out = tmp_path / "d.h5"
    left, other = tmp_path / ".d.h5.ab12cd_9.tmp", tmp_path / ".e.h5.ab12cd_9.tmp"
    left.write_bytes(b"half")
    other.write_bytes(b"another output's")
    _, lock, _ = prepare_output(out, {"engine": "toy"})
    lock.close()
    assert not left.exists() and other.exists()


def test_sites_of_another_dataset_computes_exactly_those(tmp_path, capsys, monkeypatch):
    from coreloss.dataset import dataset_sites

    sset = write_set(tmp_path / "s.json", {"q-p": quartz(1.0, 0.03, 2), "q-a": quartz()})
    pick = {"q-p": sorted(s.index for s in o_sites(quartz(1.0, 0.03, 2)))[:2]}
    rep = build_dataset(tmp_path / "a.h5", sset, engine="test_dataset:ToyEngine", workers=0, sites=pick,
                        sites_source="a hand-made list")
    a = load_dataset(tmp_path / "a.h5")
    assert rep.new_sites == 2 and dataset_sites(tmp_path / "a.h5") == pick
    assert a.provenance["sites"] == "the 2 listed O sites of 1 structures (a hand-made list)"
    # the same sites with another engine, through the CLI; a rerun computes nothing
    args = ["dataset", "build", "--engine", "test_dataset:SplitToyEngine", "--workers", "0",
            "--structures", str(sset), "--out", str(tmp_path / "b.h5"), "--sites-of", str(tmp_path / "a.h5")]
    code, err = cli(capsys, monkeypatch, *args)
    assert code == 0, err
    assert dataset_sites(tmp_path / "b.h5") == pick
    code, err = cli(capsys, monkeypatch, *args)
    assert code == 0 and "0 new sites" in err
    # bad inputs: one line, nothing written
    (tmp_path / "notes.h5").write_text("not a dataset")
    for extra, msg in ((["--sites-of", str(tmp_path / "notes.h5")], "not a coreloss dataset"),
                       (["--sites-of", str(tmp_path / "a.h5"), "--budget", "3"], "not both")):
        code, err = cli(capsys, monkeypatch, "dataset", "build", "--engine", "test_dataset:ToyEngine",
                        "--workers", "0", "--structures", str(sset), "--out", str(tmp_path / "c.h5"), *extra)
        assert code == 1 and msg in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "c.h5").exists()
    with pytest.raises(CorelossError, match="not in the structure set"):
        build_dataset(tmp_path / "d.h5", sset, engine="test_dataset:ToyEngine", workers=0, sites={"nope": [0]})

