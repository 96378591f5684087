"""Bring a gpaw-lcao dataset built before the egg-box correction onto the corrected energy scale.

    PYTHONPATH=src .venv/bin/python scripts/apply_eggbox_correction.py datasets/sio2_gpaw_lcao.h5
    PYTHONPATH=src .venv/bin/python scripts/apply_eggbox_correction.py IN.h5 --out NEW.h5

The gpaw-lcao engine now subtracts the excited atom's egg-box correction from the Delta-KS
excitation energy (:mod:`coreloss.engines._eggbox`). The correction depends on the geometry alone
(two SCFs of the isolated atom, a few CPU seconds a site), so the sites computed without it are
corrected here, exactly as the engine would have: excitation energy, onset and the raw spectrum's
energy axis move down by the correction (the onset-aligned spectrum ``X`` does not change), the
site provenance gets ``dks_uncorrected_eV``, ``eggbox_correction_eV`` and ``grid_offset``, and the
file's engine parameters gain ``eggbox_correction: true`` so the build resumes with the new engine.

Sites already corrected (their engine parameters say ``eggbox_correction: true``) are left alone; the part files of an interrupted build are merged in
(the build's writer lock is taken: a running build is refused). In place by default, atomically;
``--out`` writes a new file and leaves the input untouched.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sys
import time
from pathlib import Path

E_INDEX = 5  # excitation_energy in coreloss.labels.LABEL_NAMES


def _corrected(row) -> bool:
    """Was the row computed (or migrated) with the correction? Its engine parameters say."""
    return (row["info"]["engine"].get("parameters") or {}).get("eggbox_correction") is True


def correct_table(table, params: dict, log=print) -> int:
    """Correct every row of ``table`` (a :class:`coreloss.dataset_store.Table`) lacking it; return the count."""
    from pymatgen.core import Structure

    from coreloss.engines import get_engine
    from coreloss.engines._eggbox import PROVENANCE_NOTE

    engine = get_engine("gpaw-lcao", **{**params, "eggbox_correction": True})
    todo = [k for k, r in table.rows.items() if not _corrected(r)]
    structures = {}
    t0 = time.perf_counter()
    for n, (sid, idx) in enumerate(todo, 1):
        row = table.rows[(sid, idx)]
        if sid not in structures:
            structures[sid] = Structure.from_dict(table.structures[sid]["structure"])
        corr, offset = engine.eggbox(structures[sid], idx)
        raw = float(row["y"][E_INDEX])
        row["y"] = row["y"].copy()
        row["y"][E_INDEX] = raw - corr
        row["onset"] -= corr
        row["raw_start"] -= corr
        eng = row["info"]["engine"]
        eng.update(dks_uncorrected_eV=raw, eggbox_correction_eV=corr, grid_offset=offset,
                   eggbox_applied="scripts/apply_eggbox_correction.py (after the SCFs, same rule)")
        eng["excitation_energy"] = eng.get("excitation_energy", "") + ", " + PROVENANCE_NOTE
        eng["parameters"] = {**(eng.get("parameters") or {}), "eggbox_correction": True}
        if n % 10 == 0 or n == len(todo):
            log(f"{n}/{len(todo)} sites corrected ({time.perf_counter() - t0:.0f} s)")
    return len(todo)


def main(argv=None) -> int:
    from coreloss.dataset_store import (collect, is_dataset_file, list_parts, now, parts_dir,
                                        read_header, write_dataset)
    from coreloss.errors import CorelossError
    from coreloss.fileio import atomic_write_bytes
    from coreloss.spectra import EnergyGrid

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="write here instead (must not exist)")
    args = ap.parse_args(argv)
    src, dst = args.dataset, args.out or args.dataset
    try:
        if not is_dataset_file(src):
            raise CorelossError(f"{src} is not a coreloss dataset file")
        if args.out is not None and args.out.exists():
            raise CorelossError(f"{args.out} exists; not overwriting it")
        header = read_header(src)
        if header.get("engine") != "gpaw-lcao":
            raise CorelossError(f"{src} was built with {header.get('engine')!r}, not gpaw-lcao")
        pdir = parts_dir(src)
        lock = None
        if pdir.is_dir():
            lock = open(pdir / "lock", "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise CorelossError(f"a build is writing {src} right now; stop it first") from None
        table, parts = collect(src)
        params = {k: v for k, v in header["parameters"].items() if k != "log_dir"}
        n = correct_table(table, params)
        header["parameters"]["eggbox_correction"] = True
        header = {k: v for k, v in header.items() if k not in ("n_sites", "n_failures", "n_structures")}
        header.setdefault("migrations", []).append(
            {"what": "egg-box correction of the excitation energy", "sites": n, "when": now(),
             "by": "scripts/apply_eggbox_correction.py"})
        header["updated"] = now()
        write_dataset(dst, table, EnergyGrid.from_dict(header["grid"]), header)
        if dst == src:
            for p in parts:
                p.unlink(missing_ok=True)
            run = pdir / "run.json"
            if run.is_file():
                cfg = json.loads(run.read_text())
                cfg["parameters"]["eggbox_correction"] = True
                atomic_write_bytes(run, json.dumps(cfg).encode())
        if lock is not None:
            lock.close()
    except CorelossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{dst}: {n} sites corrected, {len(table.rows)} in all, "
          f"{len(list_parts(pdir)) if pdir.is_dir() else 0} part files left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
