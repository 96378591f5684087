"""Plumbing of the plane-wave reference set (benchmarks/pw_reference_set.py): site choice, seeding
part files from a dataset file, assembling with Delta-KS values; and the committed state."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from coreloss.dataset import compute_structure
from coreloss.dataset_store import list_parts, read_part, read_table, write_dataset, write_part
from coreloss.engines.base import Engine, SiteResult
from coreloss.errors import CorelossError
from coreloss.spectra import DEFAULT_GRID, onset_energy
from coreloss.structures import load_structures, reference
from coreloss.structures.record import StructureRecord

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import pw_reference_set as prs  # noqa: E402


class PeakEngine(Engine):
    """One Gaussian peak a site; the excitation energy NaN (a spectrum-only reference)."""

    name = "peak"

    def compute_sites(self, structure, site_indices):
        e = np.arange(525.0, 570.0, 0.05)
        out = []
        for i in site_indices:
            y = np.exp(-0.5 * ((e - 540.0 - 0.1 * i) / 2.0) ** 2) + 0.01
            out.append(SiteResult(i, e, y, onset_energy(e, y), {
                "mulliken_charge": -0.3, "bop": 1.7, "excitation_energy": float("nan")},
                {"engine": "peak", "E_gs_eV": float("nan"), "E_fch_eV": float("nan")}))
        return out


def _paths(tmp_path):
    return prs.ReferencePaths(structures=tmp_path / "s.json", parts=tmp_path / "ref.parts",
                              out=tmp_path / "ref.h5", logs=tmp_path / "logs")


def _result(sid="ref-stishovite", structure=None):
    rec = StructureRecord(sid, structure or reference.stishovite(), "reference", "test", {})
    return compute_structure(PeakEngine(), rec.to_dict(), DEFAULT_GRID, only_sites=[2])


def test_coesite_72_atom_cell():
    """The committed coesite reference is a 72-atom cell the engines run as it is (widths >= 8 Å)."""
    from bench_pw_reference import coesite_72

    from coreloss.engines._supercell import supercell_scaling
    from coreloss.sites import o_sites

    rec = coesite_72("test")
    assert len(rec.structure) == 72 and supercell_scaling(rec.structure.lattice, 8.0) == (1, 1, 1)
    assert rec.structure.composition.reduced_formula == "SiO2"
    assert abs(rec.structure.volume - 3 * reference.coesite().volume / 2) < 1e-6
    angles = {s.index: s.labels()["bond_angle"] for s in o_sites(rec.structure)}
    chosen = prs.sites_for("ref-coesite", rec.structure)
    assert [round(angles[i], 1) for i in chosen] == [180.0, 136.9]
    committed = {r.id: r for r in load_structures(ROOT / "datasets" / "sio2_pw_reference.structures.json")}
    assert len(committed["ref-coesite"].structure) == 72


def test_sites_for_rules():
    assert prs.sites_for("ref-stishovite", reference.stishovite()) == [2]
    # coesite: the 180 deg site (16) and the smallest Si-O-Si angle (40, 136.9 deg)
    assert prs.sites_for("ref-coesite", reference.coesite()) == [16, 40]
    quartz = reference.alpha_quartz()
    assert prs.sites_for("some-structure", quartz) == [1]  # first unique O site
    assert len(prs.sites_for("chgnet-x", quartz * (1, 1, 2))) == 1


def test_seed_assemble_and_dks_merge(tmp_path):
    paths = _paths(tmp_path)
    from coreloss.dataset_store import Table
    table = Table()
    table.add(_result())
    write_dataset(paths.out, table, DEFAULT_GRID, {"engine": "peak"})
    assert prs.seed_parts(paths.out, paths) == 1
    assert prs.seed_parts(paths.out, paths) == 0  # already seeded: nothing rewritten
    assert prs.done_structures(paths.parts) == {"ref-stishovite"}
    write_part(paths.parts, _result("zeo-X", reference.alpha_quartz()) | {"sites": []})
    dks = {"ref-stishovite#2": {"E_gs_eV": -10.0, "E_fch_eV": 525.5, "excitation_energy": 535.5}}
    out = prs.assemble_reference(paths, DEFAULT_GRID, {"engine": "peak"}, dks)
    assert list(out.rows) == [("ref-stishovite", 2)]
    back = read_table(paths.out)
    row = back.rows[("ref-stishovite", 2)]
    assert row["y"][prs.EXC] == pytest.approx(535.5)
    assert row["info"]["engine"]["E_fch_eV"] == pytest.approx(525.5)
    np.testing.assert_allclose(row["x"], table.rows[("ref-stishovite", 2)]["x"], rtol=1e-6)
    # a finite excitation energy of the site's own run is never replaced
    row["y"][prs.EXC] = 534.0
    assert prs.with_dks(row, "ref-stishovite#2", dks)["y"][prs.EXC] == 534.0


def test_sites_with_dks_and_errors(tmp_path):
    paths = _paths(tmp_path)
    with pytest.raises(CorelossError, match="no part files"):
        prs.assemble_reference(paths, DEFAULT_GRID, {}, {})
    with pytest.raises(CorelossError, match="no dataset"):
        prs.seed_parts(tmp_path / "missing.h5", paths)
    paths.parts.mkdir()
    res = _result()
    res["sites"][0]["y"][prs.EXC] = 535.0
    write_part(paths.parts, res)
    assert prs.sites_with_dks(paths.parts) == {"ref-stishovite#2"}


def test_check_not_training(tmp_path):
    from coreloss.structures.record import save_structures
    train = tmp_path / "train.json"
    save_structures([StructureRecord("zeo-CHA", reference.stishovite(), "x", "x", {})], train)
    ok = StructureRecord("ref-stishovite", reference.stishovite(), "x", "x", {})
    prs.check_not_training([ok], train)
    with pytest.raises(CorelossError, match="zeo-CHA"):
        prs.check_not_training([ok, StructureRecord("zeo-CHA", reference.stishovite(), "x", "x", {})],
                               train)


def test_record_timing_appends(tmp_path):
    path = tmp_path / "t.json"
    prs.record_timing(path, "a", 10.0, 4.0, 1.0, 2.0, supercell_atoms=72)
    prs.record_timing(path, "b", 20.0, 8.0, 1.0, 2.0)
    doc = json.loads(path.read_text())
    assert [p["piece"] for p in doc["pieces"]] == ["a", "b"]
    assert doc["pieces"][0]["supercell_atoms"] == 72


def test_committed_reference_state():
    """The committed parts, structures and dataset file agree; no reference structure is trained on."""
    structs = ROOT / "datasets" / "sio2_pw_reference.structures.json"
    parts = ROOT / "datasets" / "sio2_pw_reference.parts"
    ids = {r.id for r in load_structures(structs)}
    assert {sid for sid, _ in prs.SITES} <= ids
    train = ROOT / "datasets" / "sio2_gpaw_lcao.structures.json.gz"
    prs.check_not_training(load_structures(structs), train)
    keys = set()
    for p in list_parts(parts):
        part = read_part(p)
        assert part["structure_id"] in ids
        keys |= {(part["structure_id"], int(r["site_index"])) for r in part["sites"]}
    assert {("ref-alpha-quartz", 1), ("ref-stishovite", 2), ("zeo-CHA", 12)} <= keys
    assert set(read_table(ROOT / "datasets" / "sio2_pw_reference.h5").rows) == keys


def test_glass_reference_site_is_a_typical_bridging_o():
    """The amorphous reference cell is in no training set; its site bridges two 4-fold Si at an
    angle near the cell's median."""
    from collections import Counter

    from coreloss.sites import o_sites

    committed = {r.id: r for r in load_structures(ROOT / "datasets" / "sio2_pw_reference.structures.json")}
    glass = committed[prs.GLASS].structure
    sites = o_sites(glass)
    (chosen,) = prs.sites_for(prs.GLASS, glass)
    site = next(s for s in sites if s.index == chosen)
    si_cn = Counter(j for s in sites for j, _ in s.neighbors)
    assert site.coordination == 2 and all(si_cn[j] == 4 for j, _ in site.neighbors)
    assert min(si_cn.values()) == 3  # the defect that keeps the cell out of every training set
    two_fold = [s.labels()["bond_angle"] for s in sites if s.coordination == 2]
    assert abs(site.labels()["bond_angle"] - np.median(two_fold)) < 5.0
    train = ROOT / "datasets" / "sio2_gpaw_lcao.structures.json.gz"
    prs.check_not_training([committed[prs.GLASS]], train)
