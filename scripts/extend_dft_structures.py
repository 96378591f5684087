"""Grow the DFT build's structure set from a (re)built default set, as a superset.

Usage (after `coreloss structures build --chgnet-cache datasets/chgnet_structures --out NEW.json.gz`):
    PYTHONPATH=src .venv/bin/python scripts/extend_dft_structures.py NEW.json.gz \
        [--target datasets/sio2_gpaw_lcao.structures.json.gz] [--max-atoms 150] [--dry-run]

Adds every record of NEW that the DFT engine affords (the engines' supercell, core-hole images
>= 8 Å apart, has at most ``--max-atoms`` atoms) and that is realistic, i.e.:

* CHGNet-derived records (sources ``chgnet-*``: relaxed, high-pressure, MD snapshots, amorphous
  cells) and generated phases;
* IZA frameworks only once CHGNet relaxed them: ``relax-zeo-X`` where the set keeps it, else
  ``zeo-X`` when the cache holds a converged ``relax-zeo-X`` that the dedup dropped as a tight
  duplicate (the relaxation did not move the idealised framework); unrelaxed frameworks wait.

Never added: records from ../shared (source ``amcsd``: not committed to the repository) and the
structures of the plane-wave reference set (``datasets/sio2_pw_reference.structures.json``) with
their relaxations, which must stay out of every training set. Existing records are kept verbatim
(``coreloss.structures.record.extend_structure_set``); the DFT build re-plans its budget over the
larger set when it is restarted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def affordable(structure, max_atoms: int) -> bool:
    from coreloss.engines._supercell import make_supercell

    o = [i for i, sp in enumerate(structure.species) if sp.symbol == "O"]
    return bool(o) and len(make_supercell(structure, o[0], 8.0)[0]) <= max_atoms


def relaxed_frameworks(cache: Path) -> set[str]:
    """IZA codes whose CHGNet relaxation finished and converged."""
    out = set()
    for p in cache.glob("relax-zeo-*.json.gz"):
        doc = json.loads(gzip.decompress(p.read_bytes()))
        if doc.get("records") and not doc.get("error") and doc["records"][0]["meta"].get("converged"):
            out.add(doc["task"][len("relax-zeo-"):])
    return out


def pick(records, relaxed: set[str], excluded: set[str], max_atoms: int) -> list:
    ids = {r.id for r in records}
    chosen = []
    for r in records:
        if r.source == "amcsd" or r.id in excluded or r.meta.get("parent") in excluded:
            continue
        if r.source == "zeose":
            code = r.id[len("zeo-"):]
            if code not in relaxed or f"relax-{r.id}" in ids:
                continue  # unrelaxed, or its relaxed record is in the set
        elif not (r.source.startswith("chgnet-") or r.source == "generated-chgnet"):
            continue
        if affordable(r.structure, max_atoms):
            chosen.append(r)
    return chosen


def main(argv=None) -> int:
    from coreloss.errors import CorelossError
    from coreloss.structures.record import extend_structure_set, load_structures

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="structure set to take records from (a rebuilt default set)")
    ap.add_argument("--target", default=str(ROOT / "datasets" / "sio2_gpaw_lcao.structures.json.gz"))
    ap.add_argument("--cache", default=str(ROOT / "datasets" / "chgnet_structures"))
    ap.add_argument("--reference", default=str(ROOT / "datasets" / "sio2_pw_reference.structures.json"))
    ap.add_argument("--max-atoms", type=int, default=150)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    try:
        refs = {r.id for r in load_structures(args.reference)}
        excluded = refs | {f"relax-{i}" for i in refs}
        have = {r.id for r in load_structures(args.target)}
        new = [r for r in pick(load_structures(args.source), relaxed_frameworks(Path(args.cache)),
                               excluded, args.max_atoms) if r.id not in have]
        by_source: dict[str, int] = {}
        for r in new:
            by_source[r.source] = by_source.get(r.source, 0) + 1
        print(f"{len(new)} new record(s): " + ", ".join(f"{k} {v}" for k, v in sorted(by_source.items())))
        if args.dry_run or not new:
            print(" ".join(r.id for r in new))
            return 0
        added = extend_structure_set(args.target, new)
    except CorelossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"added {len(added)} record(s) to {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
