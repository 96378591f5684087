"""Bookkeeping of the plane-wave reference set (``bench_pw_reference.py``): which sites, where the
committed state lives, seeding part files from a dataset file, assembling the dataset file.

No GPAW here: the plumbing is tested on small fake parts (``tests/test_pw_reference_set.py``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coreloss.errors import CorelossError

#: the amorphous cell: a CHGNet melt-quench glass the structure checks refuse (one 3-fold Si), so
#: it is in no training set; its O sites are ordinary glass sites (docs/structures.md)
GLASS = "amo-2p2gcc-q3ps-s2-cell"

#: (structure id, O site indices) in the order they are computed; None: chosen by :func:`sites_for`
SITES = [("ref-alpha-quartz", [1]), ("ref-stishovite", [2]), ("zeo-CHA", [12]),
         ("pyxtal-lt_cristobalite", None), ("chgnet-quartz-900K", None), ("ref-coesite", None),
         (GLASS, None)]

#: structures whose plane-wave Delta-KS excitation energy is computed (quartz -> stishovite shift)
DELTA_KS = ("ref-alpha-quartz", "ref-stishovite", "zeo-CHA", "chgnet-quartz-900K",
            "pyxtal-lt_cristobalite", "ref-coesite", GLASS)

EXC = 5  # index of excitation_energy in coreloss.labels.LABEL_NAMES


@dataclass(frozen=True)
class ReferencePaths:
    """structures: structure-set file; parts: part-file folder; out: dataset file; logs: GPAW logs."""

    structures: Path
    parts: Path
    out: Path
    logs: Path


def sites_for(sid: str, structure) -> list[int]:
    """Chosen O sites: the listed ones, else the first unique O site; coesite: the 180 deg site and
    the one with the smallest Si-O-Si angle; the snapshot: the O with the smallest angle; a glass
    (``amo-``): :func:`typical_glass_site`."""
    from coreloss.sites import o_sites

    listed = dict(SITES).get(sid)
    if listed is not None:
        return list(listed)
    sites = o_sites(structure)
    if not sites:
        raise CorelossError(f"{sid}: no O site")
    by_angle = sorted(sites, key=lambda s: s.labels()["bond_angle"])
    if sid.endswith("coesite"):
        return sorted({by_angle[0].index, by_angle[-1].index})
    if sid.startswith("amo-"):
        return [typical_glass_site(sites)]
    if sid.startswith("chgnet-"):
        return [by_angle[0].index]
    return [sites[0].index]


def typical_glass_site(sites) -> int:
    """Index of the O bridging two 4-fold Si whose Si-O-Si angle is nearest the median of such O."""
    from collections import Counter

    si_cn = Counter(j for s in sites for j, _ in s.neighbors)
    ok = [s for s in sites if s.coordination == 2 and all(si_cn[j] == 4 for j, _ in s.neighbors)]
    if not ok:
        raise CorelossError("no O bridging two 4-fold Si")
    median = float(np.median([s.labels()["bond_angle"] for s in ok]))
    return min(ok, key=lambda s: abs(s.labels()["bond_angle"] - median)).index


def check_not_training(records, training_path: Path) -> None:
    """CorelossError if a reference structure id is in the DFT training structure set (issue 11)."""
    from coreloss.structures import load_structures

    train = {r.id for r in load_structures(training_path)}
    clash = sorted({r.id for r in records} & train)
    if clash:
        raise CorelossError(f"reference structures {clash} are in the training set {training_path.name}")


def done_structures(parts: Path) -> set[str]:
    from coreloss.dataset_store import list_parts, read_part

    return {read_part(p)["structure_id"] for p in list_parts(parts)} if parts.is_dir() else set()


def sites_with_dks(parts: Path) -> set[str]:
    """``"sid#site"`` of the part-file sites whose own run had Delta-KS (finite excitation energy)."""
    from coreloss.dataset_store import list_parts, read_part

    out = set()
    for p in list_parts(parts) if parts.is_dir() else []:
        part = read_part(p)
        out |= {f"{part['structure_id']}#{r['site_index']}" for r in part["sites"]
                if np.isfinite(r["y"][EXC])}
    return out


def seed_parts(dataset: Path, paths: ReferencePaths) -> int:
    """Write one part file per structure of ``dataset`` that has no part yet (the sites computed
    before the parts were committed); returns the number written. Nothing is recomputed."""
    from coreloss.dataset_store import read_table, write_part

    if not dataset.is_file():
        raise CorelossError(f"no dataset to seed from: {dataset}")
    table = read_table(dataset)
    paths.parts.mkdir(parents=True, exist_ok=True)
    done, n = done_structures(paths.parts), 0
    for sid, rec in table.structures.items():
        if sid in done:
            continue
        rows = [r for (s, _), r in table.rows.items() if s == sid]
        fails = [f for (s, _), f in table.failures.items() if s == sid]
        write_part(paths.parts, {"structure_id": sid, "record": rec, "sites": rows, "failures": fails,
                                 "seeded_from": dataset.name})
        n += 1
    return n


def with_dks(row: dict, key: str, dks_values: dict) -> dict:
    """The row with the dks step's excitation energy where its own is NaN (else unchanged)."""
    val = dks_values.get(key)
    if val is None or np.isfinite(row["y"][EXC]):
        return row
    y = np.array(row["y"], float)
    y[EXC] = float(val["excitation_energy"])
    eng = {**row["info"]["engine"], "E_gs_eV": val["E_gs_eV"], "E_fch_eV": val["E_fch_eV"],
           "dks_source": "benchmarks/results/pw_reference_dks.json (bench_pw_reference.py dks; "
                         "same supercell and PW parameters; the spectrum's absolute axis keeps "
                         "its nominal first transition)"}
    return {**row, "y": y, "info": {**row["info"], "engine": eng}}


def assemble_reference(paths: ReferencePaths, grid, provenance: dict, dks_values: dict):
    """Merge every part file (plus Delta-KS values) into ``paths.out`` (atomic replace); the Table."""
    from coreloss.dataset_store import Table, list_parts, read_part, write_dataset

    parts = list_parts(paths.parts) if paths.parts.is_dir() else []
    if not parts:
        raise CorelossError(f"no part files in {paths.parts}; nothing to assemble")
    table = Table()
    for p in parts:
        table.add(read_part(p))
    table.rows = {k: with_dks(r, f"{k[0]}#{k[1]}", dks_values) for k, r in table.rows.items()}
    write_dataset(paths.out, table, grid, provenance)
    return table


def record_timing(path: Path, piece: str, wall: float, cpu: float, load_start: float,
                  load_end: float, **extra) -> None:
    """Append one piece's wall/CPU seconds (and the 1-min load average) to a JSON file."""
    from coreloss.fileio import atomic_write_bytes

    doc = json.loads(path.read_text()) if path.is_file() else {"pieces": []}
    doc["pieces"].append({"piece": piece, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                          "loadavg_1min_start_end": [round(load_start, 2), round(load_end, 2)],
                          "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), **extra})
    atomic_write_bytes(path, json.dumps(doc, indent=1).encode())
