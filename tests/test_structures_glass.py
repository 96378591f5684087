"""Glass statistics (coreloss.structures.glass), the slow ambient-glass tasks of the plan, superset writes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from coreloss.errors import CorelossError
from coreloss.structures import diverse as dv
from coreloss.structures.glass import SILICA_GLASS, network_stats, si_o_si_angles
from coreloss.structures.record import StructureRecord, extend_structure_set, load_structures, save_structures
from coreloss.structures.reference import alpha_quartz

CACHE = Path(__file__).resolve().parents[1] / "datasets" / "chgnet_structures"


def test_network_stats_quartz_and_a_defect():
    q = alpha_quartz()
    q.make_supercell([2, 2, 2])
    st = network_stats(q)
    assert st["si_cn"] == {4: 24} and st["o_cn"] == {2: 48} and st["n_bonds"] == 96
    assert st["si_o_mean"] == pytest.approx(1.609, abs=0.005)
    assert st["angle_mean"] == pytest.approx(143.7, abs=0.5) and st["angle_mode"] == 142.5
    assert st["density_g_cm3"] == pytest.approx(2.65, abs=0.01) and sum(st["angle_hist"].values()) == 48
    q.remove_sites([len(q) - 1])  # a bridging O gone: its two Si 3-coordinated, its angle lost
    st = network_stats(q)
    assert st["si_cn"] == {3: 2, 4: 22} and st["n_angles"] == 47 == len(si_o_si_angles(q))
    lo, hi = SILICA_GLASS["si_o_si_peak_deg"]
    assert lo < hi and SILICA_GLASS["density_g_cm3"] == 2.2


def test_ambient_glass_tasks_in_plan_and_cached_params_unchanged():
    parents = {p: alpha_quartz() for p in {*dv.DENSE, *dv.MD_PARENTS, *dv.HP_PARENTS}}
    tasks = {t.id: t for t in dv.plan(parents)}
    ids = list(tasks)
    for rho, q, seed in dv.AMBIENT_GLASS:
        tid = f"amo-{dv._fmt(rho)}gcc-q{dv._fmt(q)}ps-s{seed}"
        p = tasks[tid].params
        assert p["density"] == 2.2 and p["melt_ps"] >= 2.0 and p["quench_ps"] >= 3.0
        assert ids.index(tid) < ids.index(f"{tid}-cell") < ids.index(f"md-{dv.QUARTZ}-1200K")
    # every finished task of the committed cache is still in the plan with the same id and parameters
    for path in sorted(CACHE.glob("*.json.gz")):
        doc = json.loads(gzip.decompress(path.read_bytes()))
        if doc["kind"] == "zeolite" or (doc.get("parent") or "").startswith("zeo-"):
            continue  # zeolite relaxations and snapshots: planned only with the zeolite records
        assert doc["task"] in tasks, doc["task"]
        assert tasks[doc["task"]].params == doc["params"], doc["task"]


def test_extend_structure_set_is_a_superset(tmp_path):
    q = alpha_quartz()
    a = StructureRecord("a", q, "pyxtal", "c", {"group": "a"})
    path = tmp_path / "set.json.gz"
    save_structures([a], path)
    before = json.loads(gzip.decompress(path.read_bytes()))["structures"][0]
    b = StructureRecord("b", q.copy(), "x", "c", {"group": "b"})
    assert extend_structure_set(path, [a, b]) == ["b"]  # identical "a" skipped
    doc = json.loads(gzip.decompress(path.read_bytes()))
    assert doc["structures"][0] == before and doc["n_structures"] == 2
    assert [r.id for r in load_structures(path)] == ["a", "b"]
    moved = q.copy()
    moved.translate_sites([0], [0.01, 0, 0])
    raw = path.read_bytes()
    with pytest.raises(CorelossError, match="superset"):
        extend_structure_set(path, [StructureRecord("a", moved, "pyxtal", "c", {"group": "a"})])
    assert path.read_bytes() == raw
