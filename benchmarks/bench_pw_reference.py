"""Plane-wave half-core-hole reference spectra (issues 9 and 11), one structure at a time, resumable
from committed state.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pw_reference.py structures  # once (has CHGNet MD)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pw_reference.py seed        # parts of the old h5
    nohup env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pw_reference.py dks --only ref-stishovite &
    nohup env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pw_reference.py run --only ... &
    .venv/bin/python benchmarks/bench_pw_reference.py assemble   # -> datasets/sio2_pw_reference.h5

Reference settings: ``get_engine("gpaw")`` in plane-wave mode (:data:`PW_PARAMS`), PBE, 400 eV,
Gamma point, supercells with core-hole images >= 8 Å apart, empty bands converged >= 25 eV above the
first transition (``spectrum_max_eV`` is recorded per site). Spectra are computed without Delta-KS
(first transition at a nominal 535 eV); the Delta-KS excitation energy (full core hole, electron
kept) of the :data:`DELTA_KS` sites comes from the ``dks`` step (``pw_reference_dks.json``) or,
for alpha-quartz, from its earlier full run.

Only project-own structures (committed, so a fresh clone continues where a machine stopped):
``datasets/sio2_pw_reference.structures.json`` holds :mod:`coreloss.structures.reference`
(alpha-quartz, stishovite, coesite), ``zeo-CHA`` and ``pyxtal-lt_cristobalite`` of the default set
and a CHGNet 900 K quartz snapshot (:func:`make_snapshot`); none is in the DFT training set
(``datasets/sio2_gpaw_lcao.structures.json.gz``). Every finished structure is one part file in
``datasets/sio2_pw_reference.parts/`` (format of :mod:`coreloss.dataset_store`, committed); ``run``
skips finished structures and waits while the file ``PAUSE`` exists there. ``--amcsd`` uses the
AMCSD mineral CIFs of ../shared instead, with structures and parts in git-ignored ``work_data/``
(never committed).
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
from pw_reference_set import (DELTA_KS, GLASS, SITES, ReferencePaths, assemble_reference,  # noqa: E402
                              check_not_training, record_timing, seed_parts, sites_for,
                              sites_with_dks)

RESULTS = ROOT / "benchmarks" / "results"
DKS_JSON = RESULTS / "pw_reference_dks.json"
TIMINGS = RESULTS / "pw_reference_timings.json"
TRAINING = ROOT / "datasets" / "sio2_gpaw_lcao.structures.json.gz"
PATHS = ReferencePaths(structures=ROOT / "datasets" / "sio2_pw_reference.structures.json",
                       parts=ROOT / "datasets" / "sio2_pw_reference.parts",
                       out=ROOT / "datasets" / "sio2_pw_reference.h5",
                       logs=ROOT / "work_data" / "pw_reference.logs")
WORK = ROOT / "work_data"  # git-ignored: the --amcsd option copies ../shared minerals here
AMCSD_PATHS = ReferencePaths(structures=WORK / "pw_reference_structures.json",
                             parts=WORK / "pw_reference.parts",
                             out=WORK / "sio2_pw_reference_amcsd.h5", logs=WORK / "pw_reference.logs")
MINERALS = ROOT.parent / "shared" / "data" / "structures" / "minerals"

#: plane-wave reference engine parameters (gpaw engine, mode pw)
PW_PARAMS = {"mode": "pw", "ecut": 400.0, "min_image_distance": 8.0, "empty_ev": 32.0,
             "converge_fraction": 0.85, "gaussian_fwhm": 1.0, "lorentzian_fwhm": 0.2}


def make_structures(snapshot=None) -> list:
    """Project-own structure records of the reference set (snapshot: :func:`make_snapshot`)."""
    from coreloss.structures import default_set_path, load_structures, reference
    from coreloss.structures.record import StructureRecord

    src = "coreloss.structures.reference (literature)"
    recs = [StructureRecord("ref-alpha-quartz", reference.alpha_quartz(), "reference", src, {}),
            StructureRecord("ref-stishovite", reference.stishovite(), "reference", src, {}),
            coesite_72(src)]
    default = {r.id: r for r in load_structures(default_set_path())}
    recs += [default["zeo-CHA"], default["pyxtal-lt_cristobalite"]]
    return recs + ([snapshot] if snapshot is not None else []) + [glass_record()]


def glass_record():
    """The amorphous reference cell (:data:`pw_reference_set.GLASS`) from the committed CHGNet cache."""
    from pymatgen.core import Structure

    from coreloss.structures.diverse import _cache_read
    from coreloss.structures.record import StructureRecord

    doc = _cache_read(ROOT / "datasets" / "chgnet_structures", GLASS)
    rec = doc["records"][0]
    return StructureRecord(GLASS, Structure.from_dict(rec["structure"]), "chgnet-amorphous",
                           "CHGNet: B. Deng et al., Nat. Mach. Intell. 5, 1031 (2023)",
                           {**rec["meta"], "task": doc["task"], "chgnet_version": doc.get("chgnet_version"),
                            "why": "refused by the structure checks (one 3-fold Si): in no training set"})


def coesite_72(src: str):
    """Coesite as a 72-atom cell: the primitive cell (24 atoms) times the MD-snapshot supercell rule
    (:func:`coreloss.structures.diverse.md_supercell`, perpendicular widths >= 8 Å), so the engines
    run it as it is instead of in their 192-atom diagonal supercell of the conventional cell."""
    from coreloss.structures import reference
    from coreloss.structures.diverse import md_supercell
    from coreloss.structures.record import StructureRecord

    prim = reference.coesite().get_primitive_structure()
    scale = md_supercell(prim, 8.0)
    cell = prim.copy()
    cell.make_supercell(scale)
    return StructureRecord("ref-coesite", cell, "reference", src,
                           {"cell": "primitive cell x supercell (md_supercell rule, widths >= 8 Å)",
                            "supercell_of_primitive": scale})


def make_amcsd_structures() -> list:
    """Option: the AMCSD mineral CIFs of ../shared (work_data/ only, never committed)."""
    from pymatgen.core import Structure

    from coreloss.structures.record import StructureRecord

    recs = []
    for name, sid in (("Quartz-alpha", "ref-alpha-quartz"), ("Stishovite", "ref-stishovite"),
                      ("Coesite", "ref-coesite")):
        s = Structure.from_file(MINERALS / f"{name}.cif")
        recs.append(StructureRecord(sid, s, "amcsd", "AMCSD (../shared/data)",
                                    {"file": f"minerals/{name}.cif"}))
    return recs


def make_snapshot(temperature_k: float = 900.0, steps: int = 400, seed: int = 7):
    """alpha-quartz (``pyxtal-lt_quartz`` of the embedded set) 2x2x2 (72 atoms) after ``steps`` fs of
    CHGNet Langevin MD at ``temperature_k`` (fixed seed; CHGNet's bundled weights, offline)
    -> a StructureRecord ``chgnet-quartz-900K``."""
    import numpy as np
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.units import fs
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    from coreloss.structures import default_set_path, load_structures
    from coreloss.structures.record import StructureRecord

    quartz = next(r.structure for r in load_structures(default_set_path()) if r.id == "pyxtal-lt_quartz")
    atoms = AseAtomsAdaptor.get_atoms(quartz * (2, 2, 2))
    atoms.calc = CHGNetCalculator(CHGNet.load(verbose=False), use_device="cpu")
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_k, rng=rng)
    Langevin(atoms, 1.0 * fs, temperature_K=temperature_k, friction=0.02, rng=rng).run(steps)
    snap = Structure(np.asarray(atoms.cell.array, float), atoms.get_chemical_symbols(),
                     np.asarray(atoms.get_positions(), float), coords_are_cartesian=True)
    meta = {"method": "CHGNet Langevin NVT", "temperature_K": temperature_k, "steps": steps,
            "timestep_fs": 1.0, "friction": 0.02, "seed": seed,
            "start": "pyxtal-lt_quartz (embedded default set) 2x2x2"}
    return StructureRecord("chgnet-quartz-900K", snap, "generated-chgnet-md",
                           "CHGNet: B. Deng et al., Nat. Mach. Intell. 5, 1031 (2023)", meta)


def structures(paths: ReferencePaths, amcsd: bool) -> None:
    """Write the structure file; records already in it are kept as they are (resumable geometry)."""
    from coreloss.structures.record import load_structures, save_structures

    old = {r.id: r for r in load_structures(paths.structures)} if paths.structures.is_file() else {}
    snap = old.get("chgnet-quartz-900K") or make_snapshot()
    new = make_amcsd_structures() if amcsd else make_structures(snap)
    if amcsd:
        new += [r for r in make_structures(snap) if r.id not in {x.id for x in new}]
    recs = [old.get(r.id, r) for r in new]
    if TRAINING.is_file():
        check_not_training(recs, TRAINING)
    save_structures(recs, paths.structures)
    print(f"wrote {paths.structures}: {[r.id for r in recs]}")


def _engine(paths: ReferencePaths, sid: str, **kw):
    from coreloss.engines import get_engine

    return get_engine("gpaw", **PW_PARAMS, log_dir=str(paths.logs / sid), **kw)


def run(args, paths: ReferencePaths) -> None:
    """Spectrum (half core hole, no Delta-KS) of the chosen sites of each unfinished structure."""
    from coreloss.dataset import compute_structure
    from coreloss.dataset_store import list_parts, read_part, write_part
    from coreloss.spectra import DEFAULT_GRID
    from coreloss.structures import load_structures

    paths.parts.mkdir(parents=True, exist_ok=True)
    for sid, _ in SITES:
        if args.only and sid not in args.only:
            continue
        while (paths.parts / "PAUSE").exists():
            time.sleep(10)
        records = {r.id: r for r in load_structures(paths.structures)}
        if sid not in records:
            print(f"skip {sid}: not in {paths.structures.name}", flush=True)
            continue
        if sid in {read_part(p)["structure_id"] for p in list_parts(paths.parts)}:
            continue
        sites = sites_for(sid, records[sid].structure)
        eng = _engine(paths, sid, delta_ks=False)
        print(f"{time.strftime('%H:%M:%S')} {sid} sites {sites}: running", flush=True)
        t0, c0, l0 = time.perf_counter(), time.process_time(), os.getloadavg()[0]
        res = compute_structure(eng, records[sid].to_dict(), DEFAULT_GRID, only_sites=sites)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        write_part(paths.parts, res)
        atoms = res["sites"][0]["info"]["engine"]["supercell_atoms"] if res["sites"] else None
        record_timing(TIMINGS, f"run {sid} {sites}", wall, cpu, l0, os.getloadavg()[0],
                      supercell_atoms=atoms, failures=[f["reason"] for f in res["failures"]])
        print(f"{time.strftime('%H:%M:%S')} {sid}: {len(res['sites'])} sites, {len(res['failures'])} "
              f"failed, wall {wall:.0f} s, CPU {cpu:.0f} s {[f['reason'] for f in res['failures']]}",
              flush=True)


def dks(args, paths: ReferencePaths) -> None:
    """Plane-wave Delta-KS excitation energy (ground state + full core hole) of the DELTA_KS
    structures not yet in ``pw_reference_dks.json``."""
    from coreloss.engines import gpaw_setups
    from coreloss.engines._supercell import make_supercell
    from coreloss.engines.gpaw import dks_excited_energy, gpaw_atoms, ground_state_energy
    from coreloss.fileio import atomic_write_bytes
    from coreloss.structures import load_structures

    out = json.loads(DKS_JSON.read_text()) if DKS_JSON.is_file() else {}
    recs = load_structures(paths.structures) if paths.structures.is_file() else make_structures()
    records = {r.id: r for r in recs}
    has_dks = sites_with_dks(paths.parts)  # their own run had Delta-KS (alpha-quartz)
    gpaw_setups.activate(("fch1s",))
    for sid in args.only or DELTA_KS:
        eng, e_gs = _engine(paths, sid), None  # one ground state per structure, shared by its sites
        for site in sites_for(sid, records[sid].structure):
            if f"{sid}#{site}" in out or f"{sid}#{site}" in has_dks:
                continue
            sc, j, _ = make_supercell(records[sid].structure, site, PW_PARAMS["min_image_distance"])
            atoms = gpaw_atoms(sc)
            print(f"{time.strftime('%H:%M:%S')} {sid}#{site}: Delta-KS, {len(atoms)} atoms", flush=True)
            t0, c0, l0 = time.perf_counter(), time.process_time(), os.getloadavg()[0]
            if e_gs is None:
                e_gs = ground_state_energy(atoms, **eng._common("ground_state"))
            t_gs = time.perf_counter() - t0
            e_fch = dks_excited_energy(atoms, j, "fch1s", **eng._common(f"fch_{site}"))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out[f"{sid}#{site}"] = {
                "E_gs_eV": e_gs, "E_fch_eV": e_fch, "excitation_energy": e_fch - e_gs,
                "supercell_atoms": len(atoms), "ground_state_wall_s": t_gs, "wall_s": wall, "cpu_s": cpu,
                "engine_version": eng.version, "parameters": PW_PARAMS,
                "method": "gpaw.engines.gpaw ground_state_energy / dks_excited_energy (fch1s, charge -1, "
                          "spin-polarised, fixed magmom 1)", "structures": str(paths.structures.name)}
            record_timing(TIMINGS, f"dks {sid}#{site}", wall, cpu, l0, os.getloadavg()[0],
                          supercell_atoms=len(atoms))
            print(sid, out[f"{sid}#{site}"], flush=True)
            atomic_write_bytes(DKS_JSON, json.dumps(out, indent=1).encode())


def assemble(args, paths: ReferencePaths) -> None:
    from coreloss import __version__
    from coreloss.dataset_store import now
    from coreloss.labels import LABEL_UNITS
    from coreloss.spectra import DEFAULT_GRID

    eng = _engine(paths, "assemble")
    prov = {"engine": "gpaw", "engine_spec": "gpaw", "parameters": PW_PARAMS,
            "grid": DEFAULT_GRID.to_dict(), "engine_version": eng.version,
            "coreloss_version": __version__, "created": now(), "updated": now(),
            "units": {**LABEL_UNITS, "X": "1/eV", "energy": "eV", "onset": "eV"},
            "structure_source": f"{paths.structures.name} (benchmarks/bench_pw_reference.py structures)",
            "sites": "selected O sites (benchmarks/bench_pw_reference.py SITES)",
            "delta_ks": "plane-wave Delta-KS excitation energy where the site provenance has "
                        "E_fch_eV (own run or the dks step, benchmarks/results/pw_reference_dks.json); "
                        "NaN for the others (spectrum only, first transition at a nominal 535 eV)",
            "purpose": "plane-wave half-core-hole reference set (issue 9 fidelity, issue 11 transfer)",
            "command": "benchmarks/bench_pw_reference.py structures; seed; dks; run; assemble"}
    dks_values = json.loads(DKS_JSON.read_text()) if DKS_JSON.is_file() else {}
    table = assemble_reference(paths, DEFAULT_GRID, prov, dks_values)
    print(f"wrote {paths.out}: {len(table.rows)} sites of {len(table.structures)} structures "
          f"({', '.join(f'{s}#{i}' for s, i in table.rows)}), {len(table.failures)} failures")


def estimate(args, paths: ReferencePaths) -> None:
    """Cost of the unfinished structures from the finished ones: hch SCF seconds ~ c V n_bands^2
    (plane waves ~ volume V, dense band algebra ~ n_bands^2), LCAO seconds ~ c' N_atoms^3; c, c'
    from each finished site (``--only``: from those structures), reported as min / median / max."""
    import numpy as np
    from pymatgen.core import Structure

    from coreloss.dataset_store import list_parts, read_part
    from coreloss.engines._supercell import make_supercell
    from coreloss.engines.gpaw import n_empty_bands
    from coreloss.structures import load_structures

    c_hch, c_lcao, done = [], [], set()
    for p in list_parts(paths.parts):
        part = read_part(p)
        done.add(part["structure_id"])
        if args.only and part["structure_id"] not in args.only:
            continue
        cell = Structure.from_dict(part["record"]["structure"])
        for r in part["sites"]:
            e = r["info"]["engine"]
            vol = cell.volume * e["supercell_atoms"] / len(cell)  # supercell volume, A^3
            c_hch.append(e["timings_s"]["hch_s"] / (vol * e["nbands"] ** 2))
            c_lcao.append(e["timings_s"]["lcao_s"] / e["supercell_atoms"] ** 3)
            print(f"{part['structure_id']}#{r['site_index']}: {e['supercell_atoms']} atoms, "
                  f"V {vol:.0f} A^3, {e['nbands']} bands, hch {e['timings_s']['hch_s']:.0f} s, "
                  f"lcao {e['timings_s']['lcao_s']:.0f} s (wall)")
    q = {"hch": np.percentile(c_hch, [0, 50, 100]), "lcao": np.percentile(c_lcao, [0, 50, 100])}
    for r in load_structures(paths.structures):
        if r.id in done:
            continue
        sites = sites_for(r.id, r.structure)
        sc, _, _ = make_supercell(r.structure, sites[0], PW_PARAMS["min_image_distance"])
        n_occ = int(np.ceil(sum({"Si": 4, "O": 6}[str(x.specie)] for x in sc) / 2))
        nb = n_occ + n_empty_bands(sc.volume, PW_PARAMS["empty_ev"])
        t = q["lcao"] * len(sc) ** 3 + len(sites) * q["hch"] * sc.volume * nb ** 2
        print(f"estimate {r.id} sites {sites}: {len(sc)} atoms, V {sc.volume:.0f} A^3, {nb} bands: "
              f"wall {t[0]:.0f} / {t[1]:.0f} / {t[2]:.0f} s (min / median / max coefficient)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["structures", "seed", "run", "dks", "assemble",
                                           "estimate"])
    ap.add_argument("--only", nargs="*", help="structure ids to run (default: all of SITES)")
    ap.add_argument("--amcsd", action="store_true",
                    help="AMCSD minerals of ../shared, everything in git-ignored work_data/")
    args = ap.parse_args(argv)
    paths = AMCSD_PATHS if args.amcsd else PATHS
    if args.what == "structures":
        structures(paths, args.amcsd)
    elif args.what == "seed":
        n = seed_parts(PATHS.out, paths)
        print(f"seeded {n} structures from {PATHS.out} into {paths.parts}")
    elif args.what == "run":
        run(args, paths)
    elif args.what == "dks":
        dks(args, paths)
    elif args.what == "estimate":
        estimate(args, paths)
    else:
        assemble(args, paths)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # one clear line for bad input (CorelossError etc.)
        from coreloss.errors import CorelossError
        if not isinstance(exc, CorelossError):
            raise
        sys.exit(f"error: {exc}")
