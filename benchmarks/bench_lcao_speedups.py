"""Cheaper gpaw-lcao settings at equal fidelity: grid spacing h and the SCF density tolerance.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_speedups.py spectra --h 0.30 --scf-density 1e-3
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_speedups.py scf --scf-density 1e-3
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_speedups.py energies

``spectra``: the half-core-hole spectrum of every site of the plane-wave reference set
(datasets/sio2_pw_reference.h5) with tzdp at the given h and SCF density tolerance; cosine against
the plane-wave spectrum on -5..15 and -5..25 eV (bench_lcao_fidelity's alignment), CPU seconds of
the SCF. ``scf``: on alpha-quartz (72-atom supercell, first O), ground state, half core hole and
spin-polarised XCH at GPAW's default convergence or the given density tolerance: CPU seconds, SCF
iterations, Delta-KS energy, spectrum. ``energies``: excitation-energy candidates on a few sites
(spin-polarised XCH Delta-KS, spin-paired XCH, 2 x (E_hch - E_gs)). Each run appends one JSON line
per site to benchmarks/results/lcao_speedups.jsonl. CPU seconds (time.process_time) are the
numbers to compare on a shared machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "lcao_speedups.jsonl"

import numpy as np  # noqa: E402


def _setup(basis: str = "tzdp"):
    from coreloss.engines import gpaw_basis, gpaw_setups
    gpaw_setups.activate(("hch1s", "fch1s"), "PBE")
    gpaw_basis.ensure_bases(["Si", "O"], basis, ("hch1s", "fch1s"), "PBE")


def _cell(structure, site: int):
    from coreloss.engines._supercell import make_supercell
    from coreloss.engines.gpaw import gpaw_atoms
    sc, _, scale = make_supercell(structure, site, 8.0)
    return gpaw_atoms(sc), site * int(np.prod(scale))


def _kw(h: float, scf_density: float | None, txt=None) -> dict:
    kw = {"mode": "lcao", "basis": "tzdp", "h": h, "xc": "PBE", "kpts": (1, 1, 1), "maxiter": 300,
          "nbands": "nao", "txt": txt}
    if scf_density is not None:
        kw["convergence"] = {"density": scf_density}
    return kw


def _spectrum(calc, j: int):
    """hch sticks cut 28 eV above the first transition, Voigt 1.0/0.2 eV (the engine's rule)."""
    from coreloss.engines.gpaw_lcao import sticks_to_spectrum, xas_sticks
    e, f, top = xas_sticks(calc, j, 100.0)  # gpaw treats dks=0 as "no shift": use any non-zero start
    grid, spec, _, _ = sticks_to_spectrum(e - 100.0, f, 0.0, top - 100.0, 28.0)
    return grid, spec


def _timed(fn):
    c0 = time.process_time()
    out = fn()
    return out, time.process_time() - c0


def _write(rec: dict) -> None:
    rec = {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), **rec}
    print(json.dumps(rec), flush=True)
    with open(OUT, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


def spectra(args) -> None:
    from pymatgen.core import Structure

    from bench_lcao_fidelity import aligned, cosines, ref_spectrum
    from coreloss.dataset_store import read_table
    from coreloss.engines.gpaw_lcao import hch_state
    _setup()
    t = read_table(ROOT / "datasets" / "sio2_pw_reference.h5")
    for (sid, site), row in t.rows.items():
        atoms, j = _cell(Structure.from_dict(t.structures[sid]["structure"]), site)
        calc, cpu = _timed(lambda: hch_state(atoms, j, **_kw(args.h, args.scf_density)))
        grid, spec = _spectrum(calc, j)
        _write({"test": "spectra", "id": sid, "site": site, "atoms": len(atoms), "h": args.h,
                "scf_density": args.scf_density, "hch_cpu_s": round(cpu, 1),
                **cosines(aligned(grid, spec), ref_spectrum(row))})


def scf(args) -> None:
    from coreloss.engines.gpaw_lcao import hch_state, lcao_ground_state, xch_state
    from coreloss.structures import reference
    _setup()
    s = reference.alpha_quartz()
    atoms, j = _cell(s, [i for i, sp in enumerate(s.species) if sp.symbol == "O"][0])
    tag = f"h{args.h}_scf{args.scf_density}"
    logs = ROOT / "work_data" / "lcao_speedups"
    logs.mkdir(parents=True, exist_ok=True)

    def kw(name):
        return _kw(args.h, args.scf_density, str(logs / f"{tag}_{name}.txt"))

    def iters(name):
        return sum(1 for line in open(logs / f"{tag}_{name}.txt") if line.startswith("iter:"))
    (e_gs, *_), c_gs = _timed(lambda: lcao_ground_state(atoms, **kw("gs")))
    calc, c_h = _timed(lambda: hch_state(atoms, j, **kw("hch")))
    grid, spec = _spectrum(calc, j)
    np.save(logs / f"{tag}_spectrum.npy", spec)
    (e_x, _), c_x = _timed(lambda: xch_state(atoms, j, True, **kw("xch")))
    _write({"test": "scf", "id": "ref-alpha-quartz", "site": j, "h": args.h, "scf_density": args.scf_density,
            "cpu_s": {"gs": round(c_gs, 1), "hch": round(c_h, 1), "xch": round(c_x, 1)},
            "iterations": {k: iters(k) for k in ("gs", "hch", "xch")}, "dks_eV": e_x - e_gs,
            "spectrum_file": str(logs / f"{tag}_spectrum.npy")})


def energies(args) -> None:
    from pymatgen.core import Structure

    from coreloss.dataset_store import read_table
    from coreloss.engines.gpaw_lcao import hch_state, lcao_ground_state, xch_state
    _setup()
    t = read_table(ROOT / "datasets" / "sio2_pw_reference.h5")
    cases = [(Structure.from_dict(t.structures[sid]["structure"]), site, sid) for sid, site in t.rows]
    recs = json.load(gzip.open(ROOT / "datasets" / "sio2_gpaw_lcao.structures.json.gz"))["structures"]
    for r in recs:
        if r["id"] in ("amo-3p6gcc-q0p5ps-s0", "gen-A2B_aP6_2_2i_i"):
            s = Structure.from_dict(r["structure"])
            o = [i for i, sp in enumerate(s.species) if sp.symbol == "O"]
            cases += [(s, o[0], r["id"]), (s, o[len(o) // 2], r["id"])]
    for s, site, sid in cases[:args.limit]:
        atoms, j = _cell(s, site)
        kw = _kw(args.h, args.scf_density)
        (e_gs, *_), c_gs = _timed(lambda: lcao_ground_state(atoms, **kw))

        def hch():
            c = hch_state(atoms, j, **kw)
            return float(c.get_potential_energy() + c.get_reference_energy())
        e_h, c_h = _timed(hch)
        (e_xs, _), c_xs = _timed(lambda: xch_state(atoms, j, True, **kw))
        (e_xp, _), c_xp = _timed(lambda: xch_state(atoms, j, False, **kw))
        _write({"test": "energies", "id": sid, "site": site, "atoms": len(atoms), "h": args.h,
                "scf_density": args.scf_density, "dks_spinpol": e_xs - e_gs, "dks_paired": e_xp - e_gs,
                "two_dhch": 2 * (e_h - e_gs), "cpu_s": {"gs": round(c_gs, 1), "hch": round(c_h, 1),
                                                        "xch_spinpol": round(c_xs, 1), "xch_paired": round(c_xp, 1)}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["spectra", "scf", "energies"])
    ap.add_argument("--h", type=float, default=0.30)
    ap.add_argument("--scf-density", type=float, default=1e-3,
                    help="SCF density tolerance; 0 = GPAW's default convergence")
    ap.add_argument("--limit", type=int, default=None, help="energies: only the first N sites")
    args = ap.parse_args()
    args.scf_density = args.scf_density or None
    {"spectra": spectra, "scf": scf, "energies": energies}[args.what](args)


if __name__ == "__main__":
    main()
