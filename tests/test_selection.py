"""Budgeted site selection (farthest-point sampling on SOAP) and group-preserving splits."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from coreloss.errors import CorelossError
from coreloss.evaluate import group_kfold, split_groups, test_mask
from coreloss.selection import budget_plan, farthest_point_order, select_sites
from coreloss.structures import StructureRecord
from coreloss.structures.dedup import merge_chgnet
from coreloss.structures.reference import alpha_quartz, stishovite


def rec(rid, s, source="aflow", **meta):
    return StructureRecord(rid, s, source, "test", meta)


def _quartz_family(n=4, seed=0):
    """Alpha-quartz copies, slightly strained (distinct but similar environments)."""
    out = []
    for k in range(n):
        s = alpha_quartz()
        s.scale_lattice(s.volume * (1.0 + 0.01 * k))
        out.append(rec(f"q{k}", s, group="quartz"))
    return out


def _records():
    cristo = Structure.from_spacegroup("Fd-3m", Lattice.cubic(7.16), ["Si", "O"],
                                       [[0, 0, 0], [0.125, 0.125, 0.125]])  # ideal beta-cristobalite, 180 deg
    return _quartz_family() + [rec("stish", stishovite()), rec("cristo", cristo.get_primitive_structure())]


def test_fps_covering_property_and_ties():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    order, radii = farthest_point_order(X, 10)
    assert order[0] == int(np.argmax(np.linalg.norm(X - X.mean(0), axis=1)))  # an extreme first
    assert len(set(order)) == 10 and all(a >= b for a, b in zip(radii[1:], radii[2:]))
    # every prefix covers the rest within the next pick's radius (the FPS guarantee)
    for k in range(1, 10):
        d = np.min(np.linalg.norm(X[:, None] - X[order[:k]][None], axis=2), axis=1)
        assert d.max() == pytest.approx(radii[k])
    assert farthest_point_order(np.zeros((3, 2)), 2)[0] == [0, 1]  # ties: earlier row
    done = np.zeros(60, bool)
    done[order[:3]] = True
    again, _ = farthest_point_order(X, 7, done)
    assert again == order[3:10]  # resuming with the first picks done continues the same order
    assert farthest_point_order(X, 100, done)[0].__len__() == 57


def test_cost_aware_fps_prefers_cheap_rows_among_similar_distances():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.05], [0.5, 0.5]])
    done = np.array([True, False, False, False])
    assert farthest_point_order(X, 1, done)[0] == [2]                      # farthest
    assert farthest_point_order(X, 1, done, cost=[1, 1, 3, 1])[0] == [1]   # 3x dearer: next best
    assert farthest_point_order(X, 3, done, cost=[1, 1, 3, 1])[0][:2] == [1, 3]
    with pytest.raises(CorelossError):
        farthest_point_order(X, 1, done, cost=[1, 0, 1, 1])


def test_site_costs_follow_the_engine_cost_model():
    from coreloss.engines import get_engine
    from coreloss.selection import site_costs

    small, big = rec("q", alpha_quartz()), rec("s", stishovite())
    eng = get_engine("gpaw-lcao")
    c = site_costs([small, big], eng)
    assert set(c) == {"q", "s"} and all(v > 0 for v in c.values())
    sel = select_sites([small, big], 2, costs=c)
    assert sel.cost_aware and "cost-aware" in sel.summary()["rule"]


def test_fps_covers_every_group_first():
    """``groups``: one pick per group before any group gets a second (groups covered by ``done``
    count as covered), in FPS order; afterwards plain FPS."""
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 5, size=(20, 2)), rng.normal(0, 0.1, size=(3, 2)) + 50,
                   rng.normal(0, 0.01, size=(2, 2))])
    groups = np.array(["big"] * 20 + ["far"] * 3 + ["tiny"] * 2)
    plain, _ = farthest_point_order(X, 3)
    assert not set(plain) & {23, 24}  # plain FPS spends the picks on the big, spread-out group
    cover, _ = farthest_point_order(X, 6, groups=groups)
    assert {groups[i] for i in cover[:3]} == {"big", "far", "tiny"}
    assert groups[cover[0]] == "far"  # the most unusual group first
    done = np.zeros(25, bool)
    done[23] = True  # "tiny" already computed
    again, _ = farthest_point_order(X, 2, done, groups=groups)
    assert {groups[i] for i in again} == {"big", "far"}
    assert farthest_point_order(X, 25, groups=groups)[0].__len__() == 25


def test_select_sites_deterministic_extremes_and_tasks():
    recs = _records()
    a, b = select_sites(recs, 3), select_sites(recs, 3)
    assert a.picks == b.picks and a.tasks == b.tasks
    assert a.n_candidates == 6  # one unique O site in each cell
    picked = {sid for sid, _ in a.picks}
    # the two unusual environments (6-coordinated Si; linear Si-O-Si) are picked before more quartz
    assert {"stish", "cristo"} <= picked
    rev = select_sites(list(reversed(recs)), 3)
    assert {p[0] for p in rev.picks} == picked
    # one task per structure holding all of its picked sites, in pick order
    assert [t[0] for t in a.tasks] == list(dict.fromkeys(p[0] for p in a.picks))
    assert a.groups["q1"] == "quartz" and a.groups["stish"] == "stish"
    first = a.picks[0]
    resumed = select_sites(recs, 2, done=[first])
    assert first not in resumed.picks and resumed.picks == a.picks[1:3]
    with pytest.raises(CorelossError):
        select_sites(recs, 0)


def test_budget_plan_keeps_a_structure_in_one_task():
    s = alpha_quartz()
    s.make_supercell([2, 1, 1])
    np.random.seed(1)
    s.perturb(0.05)  # a "snapshot": all 12 O sites distinct
    recs = [rec("snap", s, group="quartz"), rec("stish", stishovite())]
    todo, sel = budget_plan(recs, 5, computed=[("stish", 2)], failed=[("snap", -1)])
    assert sel.n_candidates == 13 and len(sel.picks) == 5
    assert [t[0]["id"] for t in todo] == ["snap"]  # stishovite's one site is already done
    assert len(todo[0][1]) == 5 and todo[0][1] == sorted(todo[0][1])
    # covering every structure first: the two sites of a budget of 2 go to two structures
    recs.append(_records()[-1])  # beta-cristobalite
    todo, sel = budget_plan(recs, 2, cover_structures=True)
    assert sorted(t[0]["id"] for t in todo) in (["cristo", "snap"], ["cristo", "stish"], ["snap", "stish"])
    assert len({t[0]["id"] for t in todo}) == 2 and "one site of every structure" in sel.summary()["rule"]
    todo, _ = budget_plan(recs, 3, computed=[("stish", 2)], cover_structures=True)
    assert {t[0]["id"] for t in todo} == {"snap", "cristo"}


def test_split_groups_keep_groups_together():
    sids = np.array([f"s{i}" for i in range(40) for _ in range(3)])
    meta = {f"s{i}": {"meta": {"group": f"g{i // 4}"}} for i in range(40)}
    ds = SimpleNamespace(structure_ids=sids, structure_meta=meta)
    groups = split_groups(ds)
    assert groups[0] == "g0" and groups[-1] == "g9"
    te = test_mask(groups, 0.3, seed=1)
    for g in np.unique(groups):
        assert len(set(te[groups == g].tolist())) == 1
    for tr, va in group_kfold(groups, 5):
        assert not set(groups[tr]) & set(groups[va])
    legacy = SimpleNamespace(structure_ids=sids, structure_meta={})
    assert (split_groups(legacy) == sids).all()  # no group meta: the structure is the group


def test_merge_chgnet_groups():
    q = alpha_quartz()
    base = [rec("amcsd-q", q, "amcsd"), rec("stish", stishovite())]
    moved = q.copy()
    moved.scale_lattice(q.volume * 1.06)  # a relaxation that changed the cell by 2 %
    snap = q.copy()
    snap.make_supercell([2, 2, 2])
    derived = [rec("relax-ref-q", moved, "chgnet-relaxed", group="ref-q", parent="ref-q"),
               rec("md-ref-q-300K-0", snap, "chgnet-md", group="ref-q", parent="ref-q"),
               rec("relax-same", q.copy(), "chgnet-relaxed", group="stish-alias", parent="x"),
               rec("amo-1", snap, "chgnet-amorphous")]
    out, dups = merge_chgnet(base, derived, aliases={"pyxtal-q": "amcsd-q"})
    g = {r.id: r.meta["group"] for r in out}
    assert dups == [("relax-same", "amcsd-q")]  # unmoved by the relaxation: a duplicate
    assert g["relax-ref-q"] == g["md-ref-q-300K-0"] == "amcsd-q"  # joined the matching record's group
    assert g["amo-1"] == "amo-1" and g["stish"] == "stish"


def test_dataset_build_with_budget_resumes_and_extends(tmp_path):
    from test_dataset import quartz, write_set

    from coreloss.dataset import build_dataset, load_dataset

    sset = write_set(tmp_path / "set.json", {"q-a": quartz(), "q-b": quartz(1.02, 0.03, 1),
                                            "stish": stishovite()})
    out = tmp_path / "d.h5"
    rep = build_dataset(out, sset, engine="test_dataset:ToyEngine", workers=0, budget=3)
    ds = load_dataset(out)
    first = set(zip(ds.structure_ids.tolist(), ds.site_index.tolist()))
    assert rep.new_sites == 3 and len(first) == 3
    assert ds.provenance["selection"]["n_picked"] == 3 and ds.provenance["selection"]["n_candidates"] == 8
    assert ("stish", 2) in first  # the octahedral environment is among the first picks
    rep = build_dataset(out, sset, engine="test_dataset:ToyEngine", workers=0, budget=2)
    ds = load_dataset(out)
    both = set(zip(ds.structure_ids.tolist(), ds.site_index.tolist()))
    assert rep.new_sites == 2 and len(both) == 5 and first < both
    with pytest.raises(CorelossError):
        build_dataset(tmp_path / "x.h5", sset, engine="test_dataset:ToyEngine", workers=0, budget=0)
    assert not (tmp_path / "x.h5").exists()


def test_a_structure_whose_site_analysis_fails_is_left_out(monkeypatch):
    import coreloss.sites as sites

    real = sites.o_sites

    def flaky(structure, *a, **k):
        if structure.density > 4.0:  # the stishovite cell
            raise CorelossError("periodic Voronoi tessellation did not converge")
        return real(structure, *a, **k)

    monkeypatch.setattr(sites, "o_sites", flaky)
    with pytest.warns(UserWarning, match="stish: site analysis failed"):
        sel = select_sites(_records(), 3)
    assert "stish" not in {sid for sid, _ in sel.picks} and sel.n_candidates == 5
