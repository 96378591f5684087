"""Ghost basis functions in the voids of open frameworks: does the LCAO spectrum get closer to PW?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_ghosts.py --min-distance 2.6 3.0 3.4
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_ghosts.py --ghost O --min-distance 3.0

For every site of the plane-wave reference set (datasets/sio2_pw_reference.h5): the gpaw-lcao
half-core-hole spectrum (tzdp, h 0.25, SCF density 1e-3, the engine's stick rule) with ghost atoms
(GPAW setup ``'ghost'``: the element's tzdp basis functions, no nucleus, no electrons) at the void
centres of :func:`coreloss.engines._voids.void_centres` (points >= ``min_distance`` Å from every
atom, >= ``--min-separation`` Å apart, default 3), against the same without ghosts (``--min-distance 0``). Cosine against the
plane-wave spectrum on -5..15 and -5..25 eV (bench_lcao_fidelity's alignment) and CPU seconds of
the SCF; one JSON line per run appended to benchmarks/results/lcao_ghosts.jsonl. Sites without a
void are computed once (the spectrum is the same).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "lcao_ghosts.jsonl"

import numpy as np  # noqa: E402


def _kw(h: float = 0.25) -> dict:
    return dict(mode="lcao", basis="tzdp", h=h, xc="PBE", kpts=(1, 1, 1), maxiter=300, nbands="nao",
                convergence={"density": 1e-3}, txt=None)


def hch_with_ghosts(sc, j: int, ghosts: np.ndarray, ghost: str, h: float = 0.25):
    """The engine's half-core-hole calc of supercell ``sc`` (pymatgen) excited at ``j``, ghosts appended."""
    from coreloss.engines.gpaw import gpaw_atoms
    from coreloss.engines.gpaw_lcao import hch_state, with_ghosts

    atoms, gsetups = with_ghosts(gpaw_atoms(sc), ghosts, ghost)
    return hch_state(atoms, j, ghosts=gsetups, **_kw(h))


def energies_with_ghosts(sc, j: int, ghosts: np.ndarray, ghost: str, h: float = 0.25) -> dict:
    """Ground state and spin-paired XCH (the engine's Delta-KS recipe) with the ghosts in both."""
    from coreloss.engines.gpaw import gpaw_atoms
    from coreloss.engines.gpaw_lcao import PAIRED_XCH_OFFSET_EV, lcao_ground_state, with_ghosts, xch_state

    atoms, gsetups = with_ghosts(gpaw_atoms(sc), ghosts, ghost)
    c0 = time.process_time()
    e_gs, charges, *_ = lcao_ground_state(atoms, gsetups, **_kw(h))
    c1 = time.process_time()
    e_x, _ = xch_state(atoms, j, False, ghosts=gsetups, **_kw(h))
    c2 = time.process_time()
    return {"dks_eV": e_x - e_gs - PAIRED_XCH_OFFSET_EV, "q_O": float(charges[j]),
            "gs_cpu_s": round(c1 - c0, 1), "xch_cpu_s": round(c2 - c1, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-distance", type=float, nargs="+", default=[0.0, 2.6, 3.0, 3.4])
    ap.add_argument("--min-separation", type=float, default=3.0, help="Å between ghosts")
    ap.add_argument("--ghost", default="H", help="element whose tzdp basis the ghosts carry")
    ap.add_argument("--only", nargs="*", help="structure ids of the reference set")
    ap.add_argument("--energies", action="store_true",
                    help="Delta-KS (spin-paired XCH) and Mulliken q_O with the ghosts in GS and XCH too")
    args = ap.parse_args(argv)
    from pymatgen.core import Structure

    from bench_lcao_fidelity import aligned, cosines, ref_spectrum
    from coreloss.dataset_store import read_table
    from coreloss.engines import gpaw_basis, gpaw_setups
    from coreloss.engines._supercell import make_supercell
    from coreloss.engines._voids import void_centres
    from coreloss.engines.gpaw_lcao import sticks_to_spectrum, xas_sticks

    gpaw_setups.activate(("hch1s", "fch1s"), "PBE")
    gpaw_basis.ensure_bases(["Si", "O", args.ghost], "tzdp", ("hch1s", "fch1s"), "PBE")
    t = read_table(ROOT / "datasets" / "sio2_pw_reference.h5")
    for (sid, site), row in t.rows.items():
        if args.only and sid not in args.only:
            continue
        sc, _, scale = make_supercell(Structure.from_dict(t.structures[sid]["structure"]), site, 8.0)
        j = site * int(np.prod(scale))
        seen = set()
        for md in args.min_distance:
            ghosts = void_centres(sc, md, args.min_separation) if md > 0 else np.zeros((0, 3))
            if len(ghosts) in seen:
                continue
            seen.add(len(ghosts))
            if args.energies:
                rec = {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "test": "energies", "id": sid,
                       "site": site, "atoms": len(sc), "ghost": args.ghost, "min_distance": md,
                       "min_separation": args.min_separation, "n_ghosts": len(ghosts),
                       **energies_with_ghosts(sc, j, ghosts, args.ghost)}
                print(json.dumps(rec), flush=True)
                with open(OUT, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                continue
            c0 = time.process_time()
            calc = hch_with_ghosts(sc, j, ghosts, args.ghost)
            cpu = time.process_time() - c0
            e, f, top = xas_sticks(calc, j, 100.0)  # gpaw treats dks=0 as "no shift"
            grid, spec, _, _ = sticks_to_spectrum(e - 100.0, f, 0.0, top - 100.0, 28.0)
            rec = {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "id": sid, "site": site, "atoms": len(sc),
                   "ghost": args.ghost, "min_distance": md, "min_separation": args.min_separation, "n_ghosts": len(ghosts),
                   "hch_cpu_s": round(cpu, 1), "n_basis": int(calc.wfs.setups.nao),
                   **cosines(aligned(grid, spec), ref_spectrum(row))}
            print(json.dumps(rec), flush=True)
            with open(OUT, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
