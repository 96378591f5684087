"""Append records of one structure set to another as a superset (existing records kept verbatim).

Usage (the DFT build's structure set gets the ambient glasses of the default set):
    PYTHONPATH=src .venv/bin/python scripts/extend_structure_set.py datasets/sio2_gpaw_lcao.structures.json.gz \
        --from src/coreloss/data/default_structures.json.gz 'amo-2p2gcc-q6ps-*' 'amo-2p2gcc-q3ps-*'

Ids are exact or prefixes ending in ``*``; ids already in the target are skipped when identical and
refused when different (coreloss.structures.record.extend_structure_set).
"""

from __future__ import annotations

import argparse
import sys

from coreloss.errors import CorelossError
from coreloss.structures.record import extend_structure_set, load_structures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", help="structure set to extend (rewritten in place, atomically)")
    ap.add_argument("ids", nargs="+", help="record ids of --from (or prefixes ending in *)")
    ap.add_argument("--from", dest="source", required=True, help="structure set to take the records from")
    args = ap.parse_args(argv)
    try:
        recs = load_structures(args.source)
        pick = [r for r in recs if any(r.id == t or (t.endswith("*") and r.id.startswith(t[:-1]))
                                       for t in args.ids)]
        if not pick:
            raise CorelossError(f"no record of {args.source} matches {' '.join(args.ids)}")
        added = extend_structure_set(args.target, pick)
    except CorelossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"added {len(added)} record(s) to {args.target}: {' '.join(added) or '(none, all present)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
