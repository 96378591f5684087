"""Plane-wave half-core-hole reference spectra for the fidelity benchmark (one site at a time).

    nohup env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pw_reference.py run > pw.log &
    .venv/bin/python benchmarks/bench_pw_reference.py assemble   # -> datasets/sio2_pw_reference.h5

Reference settings (issue 9): ``get_engine("gpaw")`` in plane-wave mode, PBE, 400 eV, Gamma point,
supercells with core-hole images >= 8 Å apart, empty bands converged >= 25 eV above the first
transition (``spectrum_max_eV`` is recorded per site), Delta-KS excitation energy (full core hole,
electron kept). Sites: :data:`SITES` (structures in ``work_data/pw_reference_structures.json``,
made by ``make_reference_structures``). Every finished structure is saved as one part file in
``work_data/pw_reference.parts`` (the format of :mod:`coreloss.dataset_store`), so a
killed run resumes where it stopped; ``run`` waits while the file ``PAUSE`` exists next to the
parts (to free the CPU for another job). ``assemble`` writes the coreloss dataset files:
``work_data/sio2_pw_reference_full.h5`` (every site) and ``datasets/sio2_pw_reference.h5``
without the AMCSD minerals of ../shared (nothing derived from ../shared is committed; the
structure file and the parts live in the git-ignored ``work_data/`` for the same reason).
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
WORK = ROOT / "work_data"  # git-ignored: holds copies of ../shared minerals, never committed
STRUCTS = WORK / "pw_reference_structures.json"
PARTS = WORK / "pw_reference.parts"
FULL = WORK / "sio2_pw_reference_full.h5"  # every site, the ../shared minerals included
OUT = ROOT / "datasets" / "sio2_pw_reference.h5"
MINERALS = ROOT.parent / "shared" / "data" / "structures" / "minerals"

#: plane-wave reference engine parameters (gpaw engine, mode pw)
PW_PARAMS = {"mode": "pw", "ecut": 400.0, "min_image_distance": 8.0, "empty_ev": 32.0,
             "converge_fraction": 0.85, "gaussian_fwhm": 1.0, "lorentzian_fwhm": 0.2}

#: structures whose Delta-KS excitation energy is also computed in plane waves (the quartz ->
#: stishovite shift criterion); the others get the spectrum only (excitation energy NaN), which
#: skips the plane-wave ground state and the spin-polarised full-core-hole SCF
DELTA_KS = ("amcsd-Quartz-alpha", "amcsd-Stishovite")

#: (structure id, O site indices) in the order they are computed (cheapest first)
SITES = [("amcsd-Quartz-alpha", [3]), ("amcsd-Stishovite", [2]), ("zeo-CHA", None),
         ("chgnet-quartz-900K", None), ("pyxtal-lt_cristobalite", None),
         ("amcsd-Coesite", None)]


def make_reference_structures(snapshot=None) -> list:
    """Structure records of the reference set (minerals from ../shared, two from the default set,
    the CHGNet snapshot from :mod:`make_snapshot` if given)."""
    from pymatgen.core import Structure

    from coreloss.structures import default_set_path, load_structures
    from coreloss.structures.record import StructureRecord

    recs = []
    for name in ("Quartz-alpha", "Stishovite", "Coesite"):
        s = Structure.from_file(MINERALS / f"{name}.cif")
        recs.append(StructureRecord(f"amcsd-{name}", s, "amcsd", "AMCSD (../shared/data)",
                                    {"file": f"minerals/{name}.cif"}))
    default = {r.id: r for r in load_structures(default_set_path())}
    recs += [default["zeo-CHA"], default["pyxtal-lt_cristobalite"]]
    if snapshot is not None:
        recs.append(snapshot)
    return recs


def make_snapshot(temperature_k: float = 900.0, steps: int = 400, seed: int = 7):
    """alpha-quartz (``pyxtal-lt_quartz`` of the embedded set) 2x2x2 (72 atoms) after ``steps`` fs of CHGNet Langevin MD at ``temperature_k``
    (fixed seed; CHGNet's bundled weights, offline) -> a StructureRecord ``chgnet-quartz-900K``."""
    import numpy as np
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.units import fs
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    from coreloss.structures.record import StructureRecord

    from coreloss.structures import default_set_path, load_structures

    quartz = next(r.structure for r in load_structures(default_set_path()) if r.id == "pyxtal-lt_quartz")
    atoms = AseAtomsAdaptor.get_atoms(quartz * (2, 2, 2))
    atoms.calc = CHGNetCalculator(CHGNet.load(verbose=False), use_device="cpu")
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_k, rng=rng)
    Langevin(atoms, 1.0 * fs, temperature_K=temperature_k, friction=0.02, rng=rng).run(steps)
    snap = Structure(np.asarray(atoms.cell.array, float), atoms.get_chemical_symbols(),
                     np.asarray(atoms.get_positions(), float), coords_are_cartesian=True)
    meta = {"method": "CHGNet Langevin NVT", "temperature_K": temperature_k, "steps": steps,
            "timestep_fs": 1.0, "friction": 0.02, "seed": seed, "start": "pyxtal-lt_quartz (embedded default set) 2x2x2"}
    return StructureRecord("chgnet-quartz-900K", snap, "generated-chgnet-md",
                           "CHGNet: B. Deng et al., Nat. Mach. Intell. 5, 1031 (2023)", meta)


def _sites_for(rec) -> list[int]:
    """Chosen O sites: the listed ones, else the first unique O site; coesite: the 180 deg site
    and the one with the smallest Si-O-Si angle; the snapshot: the O with the smallest angle."""
    from coreloss.sites import o_sites

    listed = dict(SITES)[rec.id]
    if listed is not None:
        return listed
    sites = o_sites(rec.structure)
    by_angle = sorted(sites, key=lambda s: s.labels()["bond_angle"])
    if rec.id == "amcsd-Coesite":
        return sorted({by_angle[0].index, by_angle[-1].index})
    if rec.id == "chgnet-quartz-900K":
        return [by_angle[0].index]
    return [sites[0].index]


def run(args) -> None:
    from coreloss.dataset import compute_structure
    from coreloss.dataset_store import list_parts, read_part, write_part
    from coreloss.engines import get_engine
    from coreloss.spectra import DEFAULT_GRID
    from coreloss.structures import load_structures

    PARTS.mkdir(parents=True, exist_ok=True)
    for sid, _ in SITES:
        if args.only and sid not in args.only:
            continue
        while (PARTS / "PAUSE").exists():
            time.sleep(10)
        records = {r.id: r for r in load_structures(STRUCTS)}  # re-read: the snapshot may come later
        if sid not in records:
            print(f"skip {sid}: not in {STRUCTS.name}", flush=True)
            continue
        done = {(p["structure_id"]) for p in map(read_part, list_parts(PARTS)) if p["sites"]}
        if sid in done:
            continue
        sites = _sites_for(records[sid])
        eng = get_engine("gpaw", **PW_PARAMS, log_dir=str(WORK / "pw_reference.logs" / sid),
                         **({} if sid in DELTA_KS and not args.no_delta_ks else {"delta_ks": False}))
        print(f"{time.strftime('%H:%M:%S')} {sid} sites {sites}: running", flush=True)
        t0 = time.perf_counter()
        res = compute_structure(eng, records[sid].to_dict(), DEFAULT_GRID, only_sites=sites)
        write_part(PARTS, res)
        print(f"{time.strftime('%H:%M:%S')} {sid}: {len(res['sites'])} sites, "
              f"{len(res['failures'])} failed, {time.perf_counter() - t0:.0f} s "
              f"{[f['reason'] for f in res['failures']]}", flush=True)


def dks(args) -> None:
    """Plane-wave Delta-KS excitation energy only (ground state + full core hole), for the
    DELTA_KS structures whose spectrum ran with --no-delta-ks; -> ``pw_reference_dks.json``."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from coreloss.engines import get_engine, gpaw_setups
    from coreloss.engines._supercell import make_supercell
    from coreloss.engines.gpaw import dks_excited_energy, ground_state_energy
    from coreloss.structures import load_structures

    path = RESULTS / "pw_reference_dks.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    records = {r.id: r for r in load_structures(STRUCTS)}
    gpaw_setups.activate(("fch1s",))
    for sid in args.only or DELTA_KS:
        site = _sites_for(records[sid])[0]
        if f"{sid}#{site}" in out:
            continue
        eng = get_engine("gpaw", **PW_PARAMS, log_dir=str(WORK / "pw_reference.logs" / sid))
        sc, j, _ = make_supercell(records[sid].structure, site, PW_PARAMS["min_image_distance"])
        atoms = AseAtomsAdaptor.get_atoms(sc)
        t0 = time.perf_counter()
        e_gs = ground_state_energy(atoms, **eng._common("ground_state"))
        e_fch = dks_excited_energy(atoms, j, "fch1s", **eng._common(f"fch_{site}"))
        out[f"{sid}#{site}"] = {"E_gs_eV": e_gs, "E_fch_eV": e_fch, "excitation_energy": e_fch - e_gs,
                                "wall_s": time.perf_counter() - t0, "parameters": PW_PARAMS}
        print(sid, out[f"{sid}#{site}"], flush=True)
        path.write_text(json.dumps(out, indent=1))


def assemble(args) -> None:
    from coreloss import __version__
    from coreloss.dataset_store import Table, list_parts, now, read_part, write_dataset
    from coreloss.engines import get_engine
    from coreloss.labels import LABEL_UNITS
    from coreloss.spectra import DEFAULT_GRID

    table = Table()
    for p in list_parts(PARTS):
        table.add(read_part(p))
    eng = get_engine("gpaw", **PW_PARAMS)
    prov = {"engine": "gpaw", "engine_spec": "gpaw", "parameters": PW_PARAMS,
            "grid": DEFAULT_GRID.to_dict(), "engine_version": eng.version,
            "coreloss_version": __version__, "created": now(), "updated": now(),
            "units": {**LABEL_UNITS, "X": "1/eV", "energy": "eV", "onset": "eV"},
            "structure_source": "benchmarks/bench_pw_reference.py structures",
            "sites": "selected O sites (benchmarks/bench_pw_reference.py SITES)",
            "delta_ks": "plane-wave Delta-KS excitation energy where the site provenance has "
                        "E_fch_eV; NaN for the others (spectrum only, first transition at 0 eV)",
            "purpose": "plane-wave half-core-hole reference set (issue 9 fidelity, issue 11 transfer)",
            "command": "benchmarks/bench_pw_reference.py run; ... assemble"}
    FULL.parent.mkdir(parents=True, exist_ok=True)
    write_dataset(FULL, table, DEFAULT_GRID, prov)
    print(f"wrote {FULL}: {len(table.rows)} sites of {len(table.structures)} structures, "
          f"{len(table.failures)} failures")
    # the committed file: nothing derived from ../shared (the AMCSD minerals) goes into the repo
    from coreloss.dataset_store import subset_dataset
    from coreloss.errors import CorelossError
    new = OUT.with_name(OUT.stem + ".new.h5")
    new.unlink(missing_ok=True)
    try:
        sub = subset_dataset(FULL, new, drop_sources=("amcsd",))
    except CorelossError as exc:
        print(f"not writing {OUT}: {exc}")
        return
    os.replace(new, OUT)
    print(f"wrote {OUT}: {len(sub.rows)} sites of {len(sub.structures)} structures (AMCSD left out)")


def main(argv=None):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["snapshot", "structures", "run", "dks", "assemble"])
    ap.add_argument("--only", nargs="*", help="structure ids to run (default: all of SITES)")
    ap.add_argument("--no-delta-ks", action="store_true",
                    help="spectrum only, also for the DELTA_KS structures (saves ~40 %%)")
    args = ap.parse_args(argv)
    if args.what == "snapshot":
        from coreloss.structures.record import save_structures
        save_structures([make_snapshot()], RESULTS / "snapshot_quartz_900K.json")
        print(f"wrote {RESULTS / 'snapshot_quartz_900K.json'}")
    elif args.what == "structures":
        from coreloss.structures.record import load_structures, save_structures
        snap = None
        if STRUCTS.is_file():
            snap = next((r for r in load_structures(STRUCTS) if r.id == "chgnet-quartz-900K"), None)
        if snap is None and (RESULTS / "snapshot_quartz_900K.json").is_file():
            snap = load_structures(RESULTS / "snapshot_quartz_900K.json")[0]
        save_structures(make_reference_structures(snap), STRUCTS)
        print(f"wrote {STRUCTS}")
    elif args.what == "run":
        run(args)
    elif args.what == "dks":
        dks(args)
    else:
        assemble(args)


if __name__ == "__main__":
    main()
