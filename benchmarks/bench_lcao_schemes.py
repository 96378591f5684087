"""Which core-hole scheme for the gpaw-lcao engine: half core hole + XCH, or one XCH SCF a site?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_schemes.py --basis tzdp --h 0.25

For each structure (alpha-quartz, stishovite; ../shared minerals) and its first unique O site,
on the engine's 8 Å supercell: one LCAO ground state, one spin-polarised XCH SCF (fch1s,
charge -1, magmom 1; gives the Delta-KS energy and two candidate spectra: spin 0 from the
excited electron's state up, spin 1 from the lowest empty state up), one spin-paired XCH SCF
(energy only, for comparison) and one half-core-hole SCF (transition-potential spectrum).
Sticks, energies and wall times go to ``benchmarks/results/lcao_schemes_<basis>_h<h>.json``;
``bench_lcao_fidelity.py`` compares them with the plane-wave reference.
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
RESULTS = ROOT / "benchmarks" / "results"


def run_structure(structure, site: int, basis: str, h: float, spin_paired: bool = True) -> dict:
    from pymatgen.io.ase import AseAtomsAdaptor
    from gpaw.xas import XAS

    from coreloss.engines import gpaw_basis, gpaw_setups
    from coreloss.engines._supercell import make_supercell
    from coreloss.engines.gpaw_lcao import hch_state, lcao_ground_state, xas_sticks, xch_state

    gpaw_setups.activate(("hch1s", "fch1s"))
    gpaw_basis.ensure_bases([s.specie.symbol for s in structure], basis, ("hch1s", "fch1s"))
    sc, j, scale = make_supercell(structure, site, 8.0)
    atoms = AseAtomsAdaptor.get_atoms(sc)
    kw = {"mode": "lcao", "basis": basis, "h": h, "xc": "PBE", "kpts": (1, 1, 1),
          "nbands": "nao", "txt": None, "maxiter": 300}
    out = {"supercell_atoms": len(atoms), "site": site, "supercell_index": j, "timings_s": {}}
    t0 = time.perf_counter()
    e_gs, q, pops, _ = lcao_ground_state(atoms, **kw)
    out["timings_s"]["ground_state"] = time.perf_counter() - t0
    out["E_gs"], out["mulliken_charge"] = e_gs, float(q[j])
    t0 = time.perf_counter()
    e_x, calc = xch_state(atoms, j, True, **kw)
    out["timings_s"]["xch_spinpol"] = time.perf_counter() - t0
    dks = e_x - e_gs
    out["dks_spinpol"] = dks
    sticks = {}
    e, f, top = xas_sticks(calc, j, dks, include_excited=True)
    sticks["xch_spin0"] = (e.tolist(), f.tolist(), top)
    xas = XAS(calc, mode="xas", center=j, spin=1)
    e1, f1 = xas.get_oscillator_strength(dks=dks)
    sticks["xch_spin1"] = (list(map(float, e1)), list(map(float, f1.sum(axis=0))), float(max(e1)))
    if spin_paired:
        t0 = time.perf_counter()
        e_p, calc_p = xch_state(atoms, j, False, **kw)
        out["timings_s"]["xch_paired"] = time.perf_counter() - t0
        out["dks_paired"] = e_p - e_gs
        e, f, top = xas_sticks(calc_p, j, dks)
        sticks["xch_paired"] = (e.tolist(), f.tolist(), top)
    t0 = time.perf_counter()
    calc_h = hch_state(atoms, j, **kw)
    out["timings_s"]["hch"] = time.perf_counter() - t0
    e, f, top = xas_sticks(calc_h, j, dks)
    sticks["hch"] = (e.tolist(), f.tolist(), top)
    out["sticks"] = sticks
    return out


def water(basis: str) -> dict:
    """O 1s Delta-KS of H2O (3 Å vacuum, h 0.2): spin-paired vs spin-polarised XCH, in LCAO.

    GPAW's own finite-difference reference for this molecule (test_h2o_dks, spin-polarised):
    533.07 eV (tests/test_engine_gpaw.py reproduces it)."""
    from ase.build import molecule

    from coreloss.engines import gpaw_basis, gpaw_setups
    from coreloss.engines.gpaw_lcao import lcao_ground_state, xch_state

    gpaw_setups.activate(("fch1s",))
    gpaw_basis.ensure_bases(["O", "H"], basis, ("fch1s",))
    atoms = molecule("H2O")
    atoms.center(vacuum=3.0)
    kw = {"mode": "lcao", "basis": basis, "h": 0.2, "xc": "PBE", "txt": None, "nbands": "nao"}
    e0 = lcao_ground_state(atoms, **kw)[0]
    return {f"spinpol={sp}": xch_state(atoms, 0, sp, **kw)[0] - e0 for sp in (False, True)}


def main(argv=None):
    from pymatgen.core import Structure

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_pw_reference import MINERALS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--basis", default="tzdp")
    ap.add_argument("--h", type=float, default=0.25)
    ap.add_argument("--structures", nargs="+", default=["Quartz-alpha", "Stishovite"])
    ap.add_argument("--no-paired", action="store_true", help="skip the spin-paired XCH SCF")
    ap.add_argument("--water", action="store_true", help="H2O Delta-KS: spin-paired vs -polarised")
    args = ap.parse_args(argv)
    path = RESULTS / f"lcao_schemes_{args.basis}_h{args.h}.json"
    res = json.loads(path.read_text()) if path.is_file() else {}
    if args.water:
        res[f"_water_dks_eV_{args.basis}"] = water(args.basis)
        print(res[f"_water_dks_eV_{args.basis}"])
        path.write_text(json.dumps(res))
        return
    from coreloss.sites import o_sites
    for name in args.structures:
        if name in res:
            continue
        s = Structure.from_file(MINERALS / f"{name}.cif")
        site = o_sites(s)[0].index
        t0 = time.perf_counter()
        res[name] = run_structure(s, site, args.basis, args.h, not args.no_paired)
        res[name]["wall_s"] = time.perf_counter() - t0
        res[name]["load_avg_1min"] = os.getloadavg()[0]
        print(name, {k: v for k, v in res[name].items() if k != "sticks"}, flush=True)
        res["_command"] = "benchmarks/bench_lcao_schemes.py " + " ".join(argv or sys.argv[1:])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(res))
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
