"""Realistic SiO2 structures: the CHGNet plan, a tiny resumable run, checks, provenance, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from coreloss.structures import check_sio2, default_set_path, load_structures
from coreloss.structures import chgnet_tools as ct
from coreloss.structures import diverse as dv
from coreloss.structures.reference import alpha_quartz, coesite, stishovite


def test_reference_coesite_and_thermal_checks():
    c = coesite()
    assert len(c) == 48 and check_sio2(c) == []
    q = alpha_quartz()
    q.make_supercell([2, 2, 2])
    rng = np.random.default_rng(0)
    hot = q.copy()
    for i in range(len(hot)):  # ~1200 K-like displacements (0.07 A rms per axis)
        hot.translate_sites([i], rng.normal(0, 0.07, 3), frac_coords=False, to_unit_cell=True)
    assert check_sio2(hot) == []
    five = stishovite()  # octahedral Si: coordination 6 allowed, 5 as well now
    assert check_sio2(five) == []


def test_random_packing_and_box():
    assert ct.cubic_box_length(24, 2.2) == pytest.approx(10.29, abs=0.01)
    s = ct.random_sio2(8, 2.2, seed=3)
    assert s.composition.reduced_formula == "SiO2" and len(s) == 24
    assert s.density == pytest.approx(2.2, rel=1e-4)
    d = s.distance_matrix + 10 * np.eye(len(s))
    assert d.min() >= 1.6 - 1e-9
    assert ct.random_sio2(8, 2.2, seed=3) == s  # seeded


def test_plan_order_ids_and_groups():
    parents = {p: alpha_quartz() for p in dv.DENSE}
    tasks = dv.plan(parents)
    ids = [t.id for t in tasks]
    assert len(ids) == len(set(ids))
    kinds = [t.kind for t in tasks]
    assert kinds.index("pressure") > max(i for i, k in enumerate(kinds[:10]) if k == "relax")
    assert kinds.index("md") > kinds.index("pressure") and kinds.index("amorphous") > kinds.index("md")
    first_600 = ids.index(f"md-{dv.QUARTZ}-600K")
    assert first_600 > ids.index("amo-2p2gcc-q0p5ps-s0-xq")  # 300/1200 K and two glasses first
    assert {t.params["pressure_gpa"] for t in tasks if t.kind == "pressure"} == {5, 10, 20, 30, 40}
    only = dv.plan(parents, kinds=("amorphous",))
    assert {t.params.get("density") for t in only} >= {2.2, 3.6}
    # zeolites: relaxations smallest first, MD snapshots of the smallest after their relaxation
    from coreloss.structures.record import StructureRecord
    zeo = [StructureRecord(f"zeo-Z{n:02d}", alpha_quartz(), "zeose", "", {}) for n in range(12)]
    zids = [t.id for t in dv.plan(dict(parents), zeo)]
    md_zeo = [i for i in zids if i.startswith("md-zeo-")]
    assert len(md_zeo) == dv.N_MD_ZEOLITES and md_zeo[0] == "md-zeo-Z00-600K"
    assert zids.index("md-zeo-Z00-600K") > zids.index("relax-zeo-Z11")
    assert all(t.parent == t.params["relax_of"] for t in only if "relax_of" in t.params)


@pytest.mark.slow
def test_tiny_chgnet_run_resumes_with_provenance(tmp_path, monkeypatch):
    parents = {dv.QUARTZ: alpha_quartz(), "ref-stishovite": stishovite()}
    tasks = [dv.Task(f"relax-{dv.QUARTZ}", "relax", dv.QUARTZ, {"pressure_gpa": 0.0, "fmax": 0.1, "steps": 30}),
             dv.Task("hp-stish", "pressure", "ref-stishovite", {"pressure_gpa": 20.0, "fmax": 0.1, "steps": 40}),
             dv.Task("md-stish", "md", "ref-stishovite", {
                 "temperature_k": 600.0, "seed": 0, "equil_steps": 3, "interval": 2, "n_snapshots": 2,
                 "timestep_fs": 2.0, "min_image_distance": 5.0}),
             dv.Task("amo-tiny", "amorphous", None, {
                 "density": 2.2, "quench_ps": 0.006, "seed": 0, "n_sio2": 6, "t_melt_k": 3000.0,
                 "melt_ps": 0.003, "anneal_ps": 0.0015, "timestep_fs": 1.5, "relax_cell": False,
                 "relax_steps": 5, "prerelax_steps": 5})]
    docs = dv.run(tasks, parents, tmp_path, log=lambda m: None)
    assert all(d["error"] is None for d in docs), [d["error"] for d in docs]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t.id}.json.gz" for t in tasks)
    recs, dropped = dv.records_from_docs(docs)
    by = {r.id: r for r in recs}
    assert set(by) >= {f"relax-{dv.QUARTZ}", "md-stish-0", "md-stish-1", "amo-tiny"}
    hp = by.get("hp-stish")
    if hp is not None:  # stishovite compresses under 20 GPa
        assert hp.structure.volume < stishovite().volume and hp.meta["pressure_gpa"] == 20.0
    snap = by["md-stish-1"]
    assert snap.source == "chgnet-md" and len(snap.structure) == 6 * 8 and snap.meta["group"] == "ref-stishovite"
    for key in ("generator", "chgnet_version", "temperature_k", "pressure_gpa", "seed", "e_above_quartz"):
        assert key in snap.meta
    assert by[f"relax-{dv.QUARTZ}"].meta["e_above_quartz"] == 0.0
    amo = by["amo-tiny"]
    assert amo.meta["group"] == "amo-tiny" and amo.source == "chgnet-amorphous"
    assert amo.structure.density == pytest.approx(2.2, rel=1e-3)
    assert [t for t, _ in amo.meta["msd_melt_curve"]] == [0.003]  # one point: the melt is 2 steps

    def boom(*a, **k):
        raise AssertionError("a cached task ran again")

    monkeypatch.setattr(dv, "_run_task", boom)
    again = dv.run(tasks, parents, tmp_path, log=lambda m: None)
    assert [d["task"] for d in again] == [t.id for t in tasks]


def test_shipped_set_has_realistic_structures():
    path = default_set_path()
    recs = load_structures(path)
    derived = [r for r in recs if r.source.startswith("chgnet-")]
    if not derived:
        pytest.skip("embedded default set has no CHGNet-derived structures yet")
    assert all("group" in r.meta for r in recs)
    for r in derived:
        assert {"generator", "chgnet_version", "temperature_k", "pressure_gpa", "parent"} <= set(r.meta)
        assert check_sio2(r.structure) == []
    assert {"chgnet-relaxed", "chgnet-pressure"} <= {r.source for r in derived}


@pytest.mark.parametrize("args", [["--generate"], ["--generate", "--chgnet-cache", "c", "--chgnet-kinds", "md,x"],
                                  ["--chgnet-cache", "missing_dir"], ["--chgnet-kinds", "md"]])
def test_cli_chgnet_options_bad_input(args, tmp_path, monkeypatch, capsys):
    import sys

    from coreloss.cli import main
    out = tmp_path / "set.json"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["coreloss", "structures", "build", "--out", str(out), *args])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.startswith("error:") and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "c").exists()
