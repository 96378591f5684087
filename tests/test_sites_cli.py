"""`coreloss sites` and `coreloss sites summary` through typer's CliRunner."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from coreloss.cli import app
from coreloss.errors import CorelossError
from coreloss.structures.record import StructureRecord, save_structures
from coreloss.structures.reference import alpha_quartz, stishovite

runner = CliRunner()


@pytest.fixture
def files(tmp_path):
    cif = tmp_path / "quartz.cif"
    alpha_quartz().to(filename=str(cif))
    sset = tmp_path / "set.json.gz"
    save_structures([StructureRecord("quartz", alpha_quartz(), "generated", "Levien 1980"),
                     StructureRecord("stishovite", stishovite(), "generated", "Sinclair 1978")], sset)
    return cif, sset


def test_table(files):
    cif, _ = files
    r = runner.invoke(app, ["sites", str(cif)])
    assert r.exit_code == 0, r.output
    assert "Å" in r.output and "deg" in r.output and "1.609" in r.output and "143.7" in r.output


def test_json_from_set_with_id(files):
    _, sset = files
    r = runner.invoke(app, ["sites", str(sset), "--id", "stishovite", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["structure_id"] == "stishovite" and doc["n_O"] == 4
    (site,) = doc["sites"]
    assert site["coordination"] == 3 and site["multiplicity"] == 4 and len(site["neighbors"]) == 3
    assert 1.75 <= site["bond_length"] <= 1.82 and doc["units"]["bond_angle"] == "deg"


@pytest.mark.parametrize("args,match", [
    (["sites", "/no/such/file.cif"], "not found"),
    (["sites", "{set}"], "pick one with --id"),
    (["sites", "{set}", "--id", "nope"], "no structure with id"),
    (["sites", "{bad}"], "cannot read a structure"),
    (["sites", "{silicon}"], "no O atoms"),
    (["sites", "summary"], "usage"),
    (["sites", "{cif}", "--png", "x.png"], "summary"),
])
def test_errors_are_one_line(files, tmp_path, args, match):
    cif, sset = files
    bad = tmp_path / "bad.cif"
    bad.write_text("this is not a CIF\n")
    silicon = tmp_path / "Si.cif"
    Structure.from_spacegroup(227, Lattice.cubic(5.43), ["Si"], [[0, 0, 0]]).to(filename=str(silicon))
    args = [a.format(set=sset, bad=bad, silicon=silicon, cif=cif) for a in args]
    r = runner.invoke(app, args)
    assert r.exit_code != 0
    assert isinstance(r.exception, CorelossError), r.exception
    assert match in str(r.exception) and "\n" not in str(r.exception)


def test_summary_png_csv(files, tmp_path):
    _, sset = files
    png, table = tmp_path / "out" / "labels.png", tmp_path / "out" / "labels.csv"
    r = runner.invoke(app, ["sites", "summary", str(sset), "--png", str(png), "--csv", str(table)])
    assert r.exit_code == 0, r.output
    assert "2 structures, 2 unique O sites, 10 O atoms" in r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(table.open()))
    assert [row["structure_id"] for row in rows] == ["quartz", "stishovite"]
    assert [int(row["coordination"]) for row in rows] == [2, 3]
    r = runner.invoke(app, ["sites", "summary", str(sset), "--json"])
    doc = json.loads(r.output)
    assert doc["n_structures"] == 2 and doc["n_O"] == 10
    assert doc["coordination_histogram"] == {"2": {"unique_sites": 1, "O_atoms": 6},
                                             "3": {"unique_sites": 1, "O_atoms": 4}}
    lab = doc["labels"]["bond_length"]
    assert lab["min"] < lab["max"] and lab["n"] == 2
    r = runner.invoke(app, ["sites", "summary", str(sset), "--csv", str(sset)])
    assert isinstance(r.exception, CorelossError) and sset.stat().st_size > 0


def test_console_script_prints_one_line_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "coreloss", "sites", str(tmp_path / "missing.cif")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "not found" in r.stderr
