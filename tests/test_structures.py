"""Structure sets: checks, dedup, readers, the `coreloss structures build` CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from coreloss.errors import CorelossError
from coreloss.structures import (check_oxide, check_sio2, deduplicate, load_structures,
                                 save_structures, StructureRecord)
from coreloss.structures import sources
from coreloss.structures.reference import stishovite

MINERALS = Path(__file__).resolve().parents[2] / "shared" / "data" / "structures" / "minerals"


def quartz() -> Structure:
    """alpha-quartz from pyxtal's installed CIF (a dependency, not shared data)."""
    path = sources._package_file("pyxtal", "database", "cifs", "lt_quartz.cif")
    return sources.read_structure_file(path)




def rec(rid, s, source="aflow"):
    return StructureRecord(rid, s, source, "test", {})


def _cn(s: Structure, cutoff=2.05):
    return [len(s.get_neighbors(site, cutoff)) for site in s if site.specie.symbol == "Si"]


def test_checks_accept_and_reject():
    assert check_sio2(quartz()) == [] and check_sio2(stishovite()) == []
    assert check_oxide(quartz()) == []
    bad = quartz()
    bad.translate_sites([3], bad[4].coords - bad[3].coords + np.array([0.5, 0, 0]),
                        frac_coords=False)
    assert "too close" in check_sio2(bad)[0]
    missing = quartz()
    missing.remove_sites([5])
    assert "composition" in check_sio2(missing)[0]
    stretched = quartz()
    stretched.scale_lattice(stretched.volume * 1.25 ** 3)  # Si-O 2.0 A
    assert "Si-O" in check_sio2(stretched)[0]
    mgsi = Structure(Lattice.cubic(4.2), ["Mg", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert "no oxygen" in check_oxide(mgsi)[0]


def test_dedup_merges_copies_keeps_polymorphs():
    q = quartz()
    copy = q.copy()
    copy.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 2]])  # different cell, 4x
    copy = Structure(Lattice(copy.lattice.matrix @ _rotation(0.7)), copy.species, copy.frac_coords)
    np.random.seed(0)
    copy.perturb(0.02)
    beta = Structure.from_spacegroup("P6_222", Lattice.hexagonal(4.9965, 5.4570), ["Si", "O"],
                                     [[0.5, 0, 0], [0.2081, 0.4162, 0.5]])
    assert check_sio2(beta) == []
    records = [rec("b-copy", copy, "generated-chgnet"), rec("a-quartz", q, "amcsd"),
               rec("c-stish", stishovite()), rec("d-beta", beta)]
    unique, dups = deduplicate(records)
    assert sorted(r.id for r in unique) == ["a-quartz", "c-stish", "d-beta"]
    assert dups == [("b-copy", "a-quartz")]
    assert next(r for r in unique if r.id == "a-quartz").meta["duplicates"] == ["b-copy"]


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def test_zeose_small_frameworks_are_sio2():
    recs = sources.read_zeose(max_atoms=150, codes=["SOD", "CHA"])
    assert [r.id for r in recs] == ["zeo-CHA", "zeo-SOD"]
    for r in recs:
        assert r.structure.composition.reduced_formula == "SiO2"
        assert check_sio2(r.structure) == []
        assert set(_cn(r.structure)) == {4}
        assert r.source == "zeose" and "Baerlocher" in r.citation
    sod = recs[1].structure
    assert len(sod) == 18  # primitive cell: 6 Si + 12 O
    tonly = sod.copy()
    tonly.remove_species(["O"])
    rebuilt = sources.bridge_oxygens(tonly)
    assert rebuilt.composition == sod.composition and check_sio2(rebuilt) == []
    assert sources.read_zeose(max_atoms=10, codes=["SOD"]) == []


def test_aflow_reader_drops_coesite():
    dropped = []
    recs = sources.read_aflow(dropped)
    minerals = {r.meta["mineral"].lower() for r in recs}
    assert not any("coesite" in m for m in minerals)
    assert any("coesite" in d[2].lower() for d in dropped)
    assert {"quartz (alpha)", "keatite", "beta tridymite"} <= minerals
    assert all(r.structure.composition.reduced_formula == "SiO2" for r in recs)


def test_pyxtal_reader():
    recs = sources.read_pyxtal()
    assert [r.id for r in recs] == ["pyxtal-lt_quartz", "pyxtal-ht_quartz", "pyxtal-lt_cristobalite",
                                    "pyxtal-ht_cristobalite"]
    assert len(recs[0].structure) == 9 and len(recs[3].structure) == 6  # primitive cells


@pytest.mark.skipif(not MINERALS.is_dir(), reason=f"shared minerals data absent ({MINERALS})")
def test_minerals_reader():
    recs = sources.read_minerals(MINERALS)
    ids = {r.id for r in recs}
    assert {"amcsd-Quartz-alpha", "amcsd-Coesite", "amcsd-Stishovite", "amcsd-Seifertite"} <= ids
    stish = next(r for r in recs if r.id == "amcsd-Stishovite").structure
    assert set(_cn(stish)) == {6} and check_sio2(stish) == []
    assert all(r.structure.composition.reduced_formula == "SiO2" for r in recs)


def _write_folder(tmp_path: Path) -> Path:
    d = tmp_path / "cifs"
    d.mkdir()
    quartz().to(filename=str(d / "quartz.cif"))
    Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"],
                              [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(d / "MgO.cif"))
    (d / "notes.txt").write_text("not a structure")
    (d / "broken.cif").write_text("data_x\n_cell_length_a 3\n")
    return d


def test_read_folder_any_oxide(tmp_path):
    d = _write_folder(tmp_path)
    dropped = []
    recs = sources.read_folder(d, dropped)
    assert sorted(r.id for r in recs) == ["file-MgO", "file-quartz"]
    assert [x[0] for x in dropped] == ["file-broken"]
    assert all(check_oxide(r.structure) == [] for r in recs)
    with pytest.raises(CorelossError):
        sources.read_folder(tmp_path / "missing")


def _cli(monkeypatch, capsys, *args):
    """Run the real `coreloss` entry point in-process; returns (exit code, stdout, stderr)."""
    from coreloss.cli import main
    monkeypatch.setattr(sys, "argv", ["coreloss", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_build_from_folder_idempotent(tmp_path, monkeypatch, capsys):
    d = _write_folder(tmp_path)
    out = tmp_path / "set.json"
    code, stdout, _ = _cli(monkeypatch, capsys, "structures", "build", "--from", d, "--out", out)
    assert code == 0, stdout
    first = out.read_text()
    recs = load_structures(out)
    assert [r.id for r in recs] == ["file-MgO", "file-quartz"]
    assert "folder" in stdout and "file-broken" in stdout
    code, _, err = _cli(monkeypatch, capsys, "structures", "build", "--from", d, "--out", out, "-q")
    assert code == 1 and "--overwrite" in err and out.read_text() == first  # never replaced unasked
    code, _, _ = _cli(monkeypatch, capsys, "structures", "build", "--from", d, "--out", out, "-q",
                      "--overwrite")
    assert code == 0
    strip = lambda t: t.split('"created":')[0] + t.split('"created":')[1].split(",", 1)[1]  # noqa: E731
    assert strip(out.read_text()) == strip(first)


@pytest.mark.parametrize("case", ["missing_dir", "not_structure", "out_not_set", "empty_dir",
                                  "mp_no_key"])
def test_cli_bad_inputs(case, tmp_path, monkeypatch, capsys):
    out = tmp_path / "set.json"
    args = ["structures", "build", "--out", out, "--from", tmp_path / "missing"]
    if case == "not_structure":
        (tmp_path / "x.cif").write_text("hello")
        args[-1] = tmp_path / "x.cif"
    elif case == "empty_dir":
        (tmp_path / "empty").mkdir()
        args[-1] = tmp_path / "empty"
    elif case == "mp_no_key":
        monkeypatch.delenv("MP_API_KEY", raising=False)
        args = ["structures", "build", "--out", out, "--mp"]
    elif case == "out_not_set":
        out.write_text("precious user data")
        args[-1] = _write_folder(tmp_path)
    code, _, err = _cli(monkeypatch, capsys, *args)
    assert code == 1
    assert err.startswith("error:") and err.strip().count("\n") == 0 and "Traceback" not in err
    if case == "out_not_set":
        assert out.read_text() == "precious user data"
    else:
        assert not out.exists()


def test_save_load_roundtrip_gz(tmp_path):
    path = tmp_path / "s.json.gz"
    save_structures([rec("q", quartz()), rec("s", stishovite())], path)
    back = load_structures(path)
    assert [r.id for r in back] == ["q", "s"] and back[0].structure == quartz()
