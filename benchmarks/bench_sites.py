"""Time O-site enumeration + geometric labels (coreloss.sites.o_sites) on IZA zeolite frameworks.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sites.py [--n 20] [--max-atoms 150]
Reads the zeose ASE database in place (no zse import). Reports wall time, time per structure
and per unique O site, the split between symmetry/first shell and the Voronoi tessellation, and
the worst relative error of sum(Voronoi volumes) vs the cell volume.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import ase.db
from pymatgen.io.ase import AseAtomsAdaptor

from coreloss.sites import o_sites
from coreloss.voronoi import voronoi_volumes

DB = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
    "site-packages" / "zse" / "collections" / "frameworks.db"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20, help="number of frameworks (0 = all)")
    ap.add_argument("--max-atoms", type=int, default=150)
    args = ap.parse_args()
    rows = [r for r in ase.db.connect(str(DB)).select() if r.natoms <= args.max_atoms]
    rows = rows if args.n <= 0 else rows[: args.n]
    structures = [(r.fw, AseAtomsAdaptor.get_structure(r.toatoms())) for r in rows]
    t0 = time.perf_counter()
    n_sites = n_o = 0
    for _, s in structures:
        sites = o_sites(s)
        n_sites += len(sites)
        n_o += sum(x.multiplicity for x in sites)
    t_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    worst = max(abs(voronoi_volumes(s).sum() / s.volume - 1.0) for _, s in structures)
    t_vor = time.perf_counter() - t0
    atoms = sum(len(s) for _, s in structures)
    print(f"{len(structures)} frameworks (<= {args.max_atoms} atoms, {atoms} atoms, {n_o} O, "
          f"{n_sites} unique O sites)")
    print(f"o_sites total {t_all:.2f} s = {t_all / len(structures) * 1e3:.0f} ms/structure, "
          f"{t_all / n_sites * 1e3:.1f} ms/unique site")
    print(f"of which Voronoi ~{t_vor:.2f} s ({100 * t_vor / t_all:.0f} %); "
          f"worst |sum(V_i)/V_cell - 1| = {worst:.1e}")


if __name__ == "__main__":
    main()
