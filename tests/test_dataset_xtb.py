"""End to end with the real xtb engine (tblite GFN1-xTB) through Dask: tiny quartz, 1 worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from coreloss.dataset import load_dataset
from coreloss.engines._blas import preload_environ
from coreloss.labels import LABEL_NAMES
from coreloss.sites import o_sites
from coreloss.structures.record import StructureRecord, save_structures

pytest.importorskip("tblite")
xtb = pytest.importorskip("coreloss.engines.xtb")

ROOT = Path(__file__).resolve().parents[1]


def test_xtb_build_quartz_gfn1(tmp_path):
    quartz = Structure.from_spacegroup("P3_221", Lattice.hexagonal(4.913, 5.405), ["Si", "O"],
                                       [[0.4697, 0, 2 / 3], [0.4135, 0.2669, 0.7858]])
    sset = tmp_path / "q.json"
    save_structures([StructureRecord("alpha-quartz", quartz, "generated", "test")], sset)
    out = tmp_path / "q.h5"
    # min_image_distance 4.5 Å keeps the 9-atom cell (a tiny, fast, still periodic calculation)
    cmd = [sys.executable, "-m", "coreloss", "dataset", "build", "--engine", "xtb",
           "-p", "method=GFN1-xTB", "-p", "min_image_distance=4.5", "--structures", str(sset),
           "--out", str(out), "--workers", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    ds = load_dataset(out)
    assert len(ds) == 1 and ds.failures == [] and ds.multiplicity.tolist() == [6]
    assert ds.provenance["engine"] == "xtb" and ds.provenance["parameters"]["method"] == "GFN1-xTB"
    assert ds.provenance["engine_version"].startswith("tblite")
    y = dict(zip(LABEL_NAMES, ds.y[0]))
    site = o_sites(quartz)[0]
    assert y["bond_length"] == pytest.approx(site.bond_length)
    assert 1.55 < y["bond_length"] < 1.7 and 130 < y["bond_angle"] < 160
    assert -1.5 < y["mulliken_charge"] < 0 and y["bop"] > 0 and np.isfinite(y["excitation_energy"])
    assert np.trapezoid(ds.X[0], dx=ds.grid.step) == pytest.approx(1.0)
    assert ds.site_provenance[0]["engine"]["method"] == "GFN1-xTB"
    # same command again: nothing recomputed
    r2 = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r2.returncode == 0 and "0 new sites" in r2.stderr
    assert np.array_equal(load_dataset(out).X, ds.X)
    # workers get OpenBLAS preloaded where tblite bundles the reference BLAS; same numbers
    expected = "openblas" if preload_environ() else ds.site_provenance[0]["engine"]["linear_algebra"]
    assert ds.site_provenance[0]["engine"]["linear_algebra"] == expected
    if preload_environ():
        out_ref = tmp_path / "q_bundled.h5"
        cmd_ref = [c if c != str(out) else str(out_ref) for c in cmd]
        r3 = subprocess.run(cmd_ref, capture_output=True, text=True, env={**env, "CORELOSS_BLAS": "bundled"},
                            cwd=ROOT, timeout=300)
        assert r3.returncode == 0, r3.stderr
        ref = load_dataset(out_ref)
        assert ref.site_provenance[0]["engine"]["linear_algebra"] == "tblite bundled reference"
        assert np.allclose(ref.y, ds.y, rtol=0, atol=1e-6)
        assert np.allclose(ref.X, ds.X, rtol=0, atol=1e-6 * ds.X.max())
