"""Benchmark the xtb engine: seconds per O site (GFN1 vs GFN2) and the quartz/stishovite ordering.

Structures: alpha-quartz (9 atoms -> 2x2x2 = 72), stishovite (6 -> 2x2x3 = 72) and one zeolite
from the zeose IZA database (default CHA, 108 atoms, 1x1x1). For each structure and method the
engine computes ``--sites`` symmetry-inequivalent O sites (one ground-state SCF + one Z+1 SCF per
site). Prints a markdown table and writes ``benchmarks/results/xtb_engine.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_engines_xtb.py [--zeolite CHA] [--sites 1]

The engine runs in this process, with whatever BLAS it loaded (reported as ``linear_algebra``).
Prefix ``LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libopenblas.so.0 OPENBLAS_NUM_THREADS=1`` to time
what ``coreloss dataset build`` workers use (see docs/engines.md, "Linear algebra").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
from pymatgen.core import Structure  # noqa: E402

from coreloss.engines import get_engine  # noqa: E402
from coreloss.engines._blas import blas_in_use  # noqa: E402
from coreloss.sites import o_sites  # noqa: E402
from coreloss.structures.reference import alpha_quartz, stishovite

ROOT = Path(__file__).resolve().parents[1]
ZEOSE_DB = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
    "site-packages" / "zse" / "collections" / "frameworks.db"


def zeolite(code: str) -> Structure:
    import ase.db
    from pymatgen.io.ase import AseAtomsAdaptor
    if not ZEOSE_DB.is_file():
        raise SystemExit(f"zeose database not found at {ZEOSE_DB}")
    row = ase.db.connect(str(ZEOSE_DB)).get(fw=code)
    return AseAtomsAdaptor.get_structure(row.toatoms())


def run(name: str, structure: Structure, method: str, n_sites: int) -> dict:
    sites = [s.index for s in o_sites(structure)][:n_sites]
    engine = get_engine("xtb", method=method)
    t0 = time.perf_counter()
    results = engine.compute_sites(structure, sites)
    total = time.perf_counter() - t0
    ok = [r for r in results if not isinstance(r, Exception)]
    if not ok:
        return {"structure": name, "method": method, "error": str(results[0])}
    p0 = ok[0].provenance
    site_walls = [r.provenance["wall_s"] for r in ok]
    return {"structure": name, "method": method, "atoms": len(structure),
            "supercell_atoms": p0["supercell_atoms"], "supercell_matrix": p0["supercell_matrix"],
            "n_sites": len(ok), "n_failed": len(results) - len(ok),
            "ground_state_s": p0["ground_state_wall_s"], "z_plus_1_s_per_site": float(np.mean(site_walls)),
            "s_per_site": total / len(results), "total_s": total,
            "sites": [{"site_index": r.site_index, "onset_eV": r.onset, **r.labels} for r in ok]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zeolite", default="CHA", help="IZA code in the zeose db ('' to skip)")
    ap.add_argument("--sites", type=int, default=1, help="inequivalent O sites per structure")
    ap.add_argument("--methods", default="GFN1-xTB,GFN2-xTB")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "xtb_engine.json"))
    args = ap.parse_args()

    structures = [("alpha-quartz", alpha_quartz()), ("stishovite", stishovite())]
    if args.zeolite:
        structures.append((f"zeolite-{args.zeolite}", zeolite(args.zeolite)))
    rows = []
    for method in args.methods.split(","):
        for name, s in structures:
            row = run(name, s, method, args.sites)
            rows.append(row)
            print(f"  {method} {name}: {row.get('s_per_site', float('nan')):.1f} s/site", file=sys.stderr, flush=True)

    print(f"linear algebra: {blas_in_use()}\n")
    print("| structure | method | atoms (supercell) | ground SCF (s) | Z+1 SCF per site (s) | s per site "
          "| q(O) (e) | BOP (e) | excitation energy (eV) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['structure']} | {r['method']} | failed: {r['error']} |||||||")
            continue
        s0 = r["sites"][0]
        print(f"| {r['structure']} | {r['method']} | {r['atoms']} ({r['supercell_atoms']}) | "
              f"{r['ground_state_s']:.1f} | {r['z_plus_1_s_per_site']:.1f} | {r['s_per_site']:.1f} | "
              f"{s0['mulliken_charge']:.3f} | {s0['bop']:.3f} | {s0['excitation_energy']:.3f} |")

    ordering = {}
    for method in args.methods.split(","):
        ee = {r["structure"]: r["sites"][0]["excitation_energy"] for r in rows
              if r["method"] == method and "sites" in r}
        if "alpha-quartz" in ee and "stishovite" in ee:
            ordering[method] = ee["stishovite"] - ee["alpha-quartz"]
            print(f"\n{method}: E_exc(stishovite) - E_exc(quartz) = {ordering[method]:+.3f} eV")
    ratio = {}
    for name, _ in structures:
        t = {r["method"]: r["s_per_site"] for r in rows if r["structure"] == name and "s_per_site" in r}
        if {"GFN1-xTB", "GFN2-xTB"} <= set(t):
            ratio[name] = t["GFN2-xTB"] / t["GFN1-xTB"]
            print(f"{name}: GFN2/GFN1 time ratio {ratio[name]:.2f}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": "xtb engine", "command": " ".join(sys.argv), "cpu_count": os.cpu_count(),
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "load_average": os.getloadavg(),
           "platform": platform.platform(), "engine_version": get_engine("xtb").version,
           "linear_algebra": blas_in_use(),
           "rows": rows, "stishovite_minus_quartz_excitation_eV": ordering, "gfn2_over_gfn1_time": ratio}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
