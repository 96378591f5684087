"""Fidelity of the gpaw-lcao (default) and xtb engines against the plane-wave reference set.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_fidelity.py            # run + report
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_fidelity.py --schemes  # scheme choice

Reference: the plane-wave half-core-hole spectra of ``bench_pw_reference.py`` (the committed
``datasets/sio2_pw_reference.h5`` and any newer committed part files in
``datasets/sio2_pw_reference.parts/``, Delta-KS energies of its ``dks`` step merged in: PBE, 400 eV,
images >= 8 Å, bands converged >= 25 eV above the first transition). Every reference site is recomputed with ``get_engine("gpaw-lcao")``
(defaults) and ``get_engine("xtb")`` (defaults, same broadening), results cached per site in
``benchmarks/results/fidelity_sites.json``. Reported per site: cosine of the onset-aligned,
area-normalised spectra on -5..15 and -5..25 eV (``coreloss.spectra.DEFAULT_GRID``), labels;
over the set: Spearman rank correlation between the engine's and the reference's pairwise
cosine distances, and the alpha-quartz -> stishovite excitation-energy shift. ``--schemes``
compares the candidate spectra of ``bench_lcao_schemes.py`` instead. Writes
``benchmarks/results/fidelity_lcao.json`` (or ``lcao_schemes_fidelity.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "fidelity_sites.json"
sys.path.insert(0, str(ROOT / "benchmarks"))

WINDOWS = {"-5..15": 15.0, "-5..25": 25.0}
#: bench_lcao_schemes.py results (AMCSD CIFs of ../shared) -> reference site on the project's own
#: structure (alpha-quartz: same cell and coordinates; stishovite: StructureMatcher rms 1.2e-3,
#: benchmarks/pw_reference_own_structures.py)
SCHEME_IDS = {"Quartz-alpha": ("ref-alpha-quartz", 1), "Stishovite": ("ref-stishovite", 2)}


def reference_rows() -> dict:
    """(structure id, site) -> reference row (committed dataset file, then the committed part files,
    with the plane-wave Delta-KS energies of ``pw_reference_dks.json`` where a row has none)."""
    from bench_pw_reference import DKS_JSON, PATHS
    from pw_reference_set import with_dks

    from coreloss.dataset_store import Table, list_parts, read_part, read_table

    table = read_table(PATHS.out) if PATHS.out.is_file() else Table()
    for p in list_parts(PATHS.parts) if PATHS.parts.is_dir() else []:
        table.add(read_part(p))
    dks = json.loads(DKS_JSON.read_text()) if DKS_JSON.is_file() else {}
    return {k: {**with_dks(v, f"{k[0]}#{k[1]}", dks), "record": table.structures[k[0]]}
            for k, v in table.rows.items()}


def aligned(energy, intensity, onset=None):
    from coreloss.spectra import DEFAULT_GRID, align_to_grid, onset_energy

    energy, intensity = np.asarray(energy, float), np.asarray(intensity, float)
    onset = onset_energy(energy, intensity) if onset is None else onset
    return align_to_grid(energy, intensity, onset, DEFAULT_GRID)


def ref_spectrum(row):
    e = row["raw_start"] + row["raw_step"] * np.arange(len(row["raw"]))
    return aligned(e, row["raw"], row["onset"])


def cosines(a, b) -> dict:
    from coreloss.spectra import DEFAULT_GRID

    e = DEFAULT_GRID.energies
    out = {}
    for name, top in WINDOWS.items():
        m = e <= top + 1e-9
        out[name] = float(np.dot(a[m], b[m]) / np.linalg.norm(a[m]) / np.linalg.norm(b[m]))
    return out


def rank_corr_of_distances(specs_ref, specs_eng, top: float) -> float | None:
    """Spearman correlation between the two sets' pairwise cosine distances (window -5..top eV)."""
    from scipy.stats import spearmanr

    from coreloss.spectra import DEFAULT_GRID

    m = DEFAULT_GRID.energies <= top + 1e-9
    if len(specs_ref) < 3:
        return None

    def dist(x, y):
        return 1.0 - float(np.dot(x[m], y[m]) / np.linalg.norm(x[m]) / np.linalg.norm(y[m]))
    pairs = list(combinations(range(len(specs_ref)), 2))
    d_ref = [dist(specs_ref[i], specs_ref[j]) for i, j in pairs]
    d_eng = [dist(specs_eng[i], specs_eng[j]) for i, j in pairs]
    return float(spearmanr(d_ref, d_eng)[0])


def engine_site(engine: str, params: dict, record: dict, site: int) -> dict:
    """Run (or reuse from the cache) one engine on one reference site."""
    from pymatgen.core import Structure

    from coreloss.engines import get_engine

    resolved = {k: v for k, v in get_engine(engine, **params).params.items() if k != "log_dir"}
    key = json.dumps([engine, resolved, record["id"], site], sort_keys=True)  # defaults change
    cache = json.loads(CACHE.read_text()) if CACHE.is_file() else {}
    if key in cache:
        return cache[key]
    t0 = time.perf_counter()
    r = get_engine(engine, **params).compute_sites(Structure.from_dict(record["structure"]), [site])[0]
    wall = time.perf_counter() - t0
    if isinstance(r, Exception):
        rec = {"error": str(r), "wall_s": wall}
    else:
        rec = {"energy": r.energy.tolist(), "intensity": r.intensity.tolist(), "onset": r.onset,
               "labels": r.labels, "wall_s": wall, "load_avg_1min": os.getloadavg()[0],
               "timings_s": r.provenance.get("timings_s"),
               "cpu_timings_s": r.provenance.get("cpu_timings_s"), "ghosts": r.provenance.get("ghosts"),
               "supercell_atoms": r.provenance.get("supercell_atoms"),
               "empty_reach_eV": r.provenance.get("empty_reach_eV")}
    cache = json.loads(CACHE.read_text()) if CACHE.is_file() else {}
    cache[key] = rec
    tmp = CACHE.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache))
    os.replace(tmp, CACHE)
    return rec


def seed_from_schemes(path: Path) -> None:
    """Put the default gpaw-lcao results of ``bench_lcao_schemes.py`` (the same functions and
    parameters: tzdp, h 0.25, spin-polarised XCH energy, hch sticks cut at the engine's default
    ``empty_cut_ev`` above the first transition, Voigt 1.0/0.2 eV) into the cache instead of recomputing them. BOP is not
    recorded there (NaN)."""
    import inspect

    from coreloss.engines.gpaw_lcao import GPAWLCAOEngine, sticks_to_spectrum
    from coreloss.spectra import onset_energy

    cut = inspect.signature(GPAWLCAOEngine).parameters["empty_cut_ev"].default
    data = json.loads(path.read_text())
    cache = json.loads(CACHE.read_text()) if CACHE.is_file() else {}
    for name, res in data.items():
        if name not in SCHEME_IDS:
            continue
        sid, site = SCHEME_IDS[name]
        key = json.dumps(["gpaw-lcao", {}, sid, site], sort_keys=True)
        e, f, top = (np.asarray(v) if i < 2 else v for i, v in enumerate(res["sticks"]["hch"]))
        dks = res["dks_spinpol"]
        energy, inten, e_max, _ = sticks_to_spectrum(e, f, dks, top, cut)
        t = res["timings_s"]
        cache[key] = ({
            "energy": energy.tolist(), "intensity": inten.tolist(),
            "onset": onset_energy(energy, inten),
            "labels": {"mulliken_charge": res["mulliken_charge"], "bop": float("nan"),
                       "excitation_energy": dks},
            "wall_s": t["ground_state"] + t["xch_spinpol"] + t["hch"],
            "load_avg_1min": res.get("load_avg_1min"), "supercell_atoms": res["supercell_atoms"],
            "timings_s": {"ground_state_s": t["ground_state"], "xch_s": t["xch_spinpol"],
                          "hch_s": t["hch"]}, "empty_reach_eV": e_max - dks,
            "source": f"{path.name} (bench_lcao_schemes.py)"})
    CACHE.write_text(json.dumps(cache))


def _shift(labels: dict, key="excitation_energy"):
    q = labels.get(("ref-alpha-quartz", 1))
    s = labels.get(("ref-stishovite", 2))
    return None if q is None or s is None else float(s[key] - q[key])


def compare_engines(engines: dict) -> dict:
    from coreloss.labels import LABEL_NAMES

    refs = reference_rows()
    dks_path = RESULTS / "pw_reference_dks.json"  # bench_pw_reference.py dks
    pw_dks = json.loads(dks_path.read_text()) if dks_path.is_file() else {}
    out = {"reference_sites": [f"{k[0]}#{k[1]}" for k in refs], "engines": {}}
    for name, (engine, params) in engines.items():
        rows, sref, seng, lab_ref, lab_eng = [], [], [], {}, {}
        for key, row in refs.items():
            res = engine_site(engine, params, row["record"], key[1])
            if "error" in res:
                rows.append({"site": f"{key[0]}#{key[1]}", "error": res["error"]})
                continue
            a, b = ref_spectrum(row), aligned(res["energy"], res["intensity"], res["onset"])
            sref.append(a)
            seng.append(b)
            lab_ref[key] = dict(zip(LABEL_NAMES, map(float, row["y"])))
            if not np.isfinite(lab_ref[key]["excitation_energy"]):  # spectrum-only reference
                extra = pw_dks.get(f"{key[0]}#{key[1]}")
                lab_ref[key]["excitation_energy"] = extra["excitation_energy"] if extra else np.nan
            lab_eng[key] = res["labels"]
            rows.append({"site": f"{key[0]}#{key[1]}", "cosine": cosines(a, b),
                         "labels": res["labels"], "reference_labels": {
                             k: lab_ref[key][k] for k in res["labels"]},
                         "wall_s": res["wall_s"], "supercell_atoms": res.get("supercell_atoms")})
            print(name, json.dumps(rows[-1]), flush=True)
        ok = [r for r in rows if "cosine" in r]
        out["engines"][name] = {
            "engine": engine, "parameters": params, "per_site": rows,
            "min_cosine": {w: min(r["cosine"][w] for r in ok) for w in WINDOWS} if ok else None,
            "mean_cosine": {w: float(np.mean([r["cosine"][w] for r in ok])) for w in WINDOWS}
            if ok else None,
            "rank_corr_pairwise_distances": {w: rank_corr_of_distances(sref, seng, t)
                                             for w, t in WINDOWS.items()},
            "pairwise_cosine_-5..15": [
                {"pair": [ok[i]["site"], ok[j]["site"]],
                 "reference": cosines(sref[i], sref[j])["-5..15"],
                 "engine": cosines(seng[i], seng[j])["-5..15"]}
                for i, j in combinations(range(len(ok)), 2)],
            "quartz_to_stishovite_shift_eV": _shift(lab_eng),
            "reference_quartz_to_stishovite_shift_eV": _shift(lab_ref)}
    return out


def compare_schemes(path: Path) -> dict:
    """Candidate LCAO spectra of bench_lcao_schemes.py vs the PW reference (quartz, stishovite)."""
    from coreloss.engines.gpaw_lcao import sticks_to_spectrum

    data = json.loads(path.read_text())
    refs = reference_rows()
    out = {}
    for name, res in data.items():
        if name.startswith("_") or name not in SCHEME_IDS:
            continue
        ref = refs.get(SCHEME_IDS[name])
        entry = {"timings_s": res["timings_s"], "dks_spinpol": res["dks_spinpol"],
                 "dks_paired": res.get("dks_paired"), "schemes": {}}
        if ref is not None:
            entry["reference_excitation_energy"] = float(ref["y"][-1])
        for scheme, (e, f, top) in res["sticks"].items():
            e, f = np.asarray(e), np.asarray(f)
            for cut in (20.0, 24.0, 25.0, 26.0, 27.0, 28.0, 30.0):
                grid, spec, _, _ = sticks_to_spectrum(e, f, e.min(), top, cut)
                spec = aligned(grid, spec)
                entry["schemes"][f"{scheme}_cut{cut:g}"] = (
                    cosines(ref_spectrum(ref), spec) if ref is not None else None)
        out[name] = entry
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schemes", type=Path, nargs="?", const=RESULTS / "lcao_schemes_tzdp_h0.25.json")
    ap.add_argument("--lcao-param", nargs="*", default=[], help="key=value for gpaw-lcao")
    ap.add_argument("--seed-schemes", type=Path, default=None,
                    help="reuse the default-scheme results of bench_lcao_schemes.py (JSON)")
    args = ap.parse_args(argv)
    if args.seed_schemes:
        seed_from_schemes(args.seed_schemes)
    if args.schemes:
        out = compare_schemes(args.schemes)
        dest = RESULTS / "lcao_schemes_fidelity.json"
    else:
        from coreloss.dataset import parse_engine_params
        lcao = parse_engine_params(args.lcao_param)
        out = compare_engines({"gpaw-lcao": ("gpaw-lcao", lcao),
                               "xtb": ("xtb", {"gaussian_fwhm": 1.0, "lorentzian_fwhm": 0.2})})
        dest = RESULTS / "fidelity_lcao.json"
    out["command"] = "benchmarks/bench_lcao_fidelity.py " + " ".join(argv or sys.argv[1:])
    dest.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1)[:4000])


if __name__ == "__main__":
    main()
