"""Seconds per O site of the gpaw engine on SiO2 polymorphs (serial GPAW, OMP_NUM_THREADS=1).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_engines_gpaw.py --polymorphs \
        Quartz-alpha Quartz-beta Stishovite Seifertite "Quartz-alpha*1x1x2" Coesite \
        --ecut 300 --min-image-distance 4 --empty-ev 20

Structures: ``../shared/data/structures/minerals/<name>.cif``. One symmetry-inequivalent O site
per polymorph (the first of :func:`coreloss.sites.o_sites`). Results (per-phase timings, supercell
size, bands, labels) are cached in ``benchmarks/results/gpaw_sites.json`` keyed by polymorph,
site and engine parameters, so reruns and ``bench_fidelity.py`` reuse them; the summary goes to
``benchmarks/results/gpaw_timings.json`` with a power-law fit t = a N^p over the measured
supercells and its extrapolation to larger cells (an estimate, labelled as such).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
MINERALS = ROOT.parent / "shared" / "data" / "structures" / "minerals"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "gpaw_sites.json"


def load_polymorph(name: str):
    """``<mineral>`` or ``<mineral>*AxBxC`` (the CIF cell repeated, for cost-scaling points)."""
    from pymatgen.core import Structure

    base, _, rep = name.partition("*")
    if base.startswith("zeo-"):  # an IZA framework of the embedded default set, e.g. zeo-CHA
        from coreloss.structures import default_set_path, load_structures
        s = next((r.structure for r in load_structures(default_set_path()) if r.id == base), None)
        if s is None:
            raise SystemExit(f"no structure {base} in the embedded default set")
        return s * [int(x) for x in rep.split("x")] if rep else s
    path = MINERALS / f"{base}.cif"
    if not path.is_file():
        raise SystemExit(f"missing structure {path} (shared data not present)")
    s = Structure.from_file(path)
    return s * [int(x) for x in rep.split("x")] if rep else s


def _key(name: str, site: int, params: dict) -> str:
    return json.dumps([name, site, {k: params[k] for k in sorted(params) if k != "log_dir"}])


def _load_cache() -> dict:
    return json.loads(CACHE.read_text()) if CACHE.is_file() else {}


def _save_cache(cache: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(cache, indent=1, default=float))
    os.replace(tmp, CACHE)


def gpaw_site(name: str, params: dict, site: int | None = None, log=print) -> dict:
    """Run (or reuse from the cache) the gpaw engine on one O site of polymorph ``name``."""
    from coreloss.engines import get_engine
    from coreloss.sites import o_sites

    s = load_polymorph(name)
    if site is None:
        site = o_sites(s)[0].index
    cache = _load_cache()
    key = _key(name, site, params)
    if key in cache:
        return cache[key]
    eng = get_engine("gpaw", **params)
    log(f"[gpaw] {name} site {site}: running {json.dumps(params)}")
    t0 = time.perf_counter()
    res = eng.compute_sites(s, [site])[0]
    wall = time.perf_counter() - t0
    if isinstance(res, Exception):
        rec = {"polymorph": name, "site": site, "error": str(res), "wall_s": wall}
    else:
        p = res.provenance
        rec = {"polymorph": name, "site": site, "wall_s": wall, "timings_s": p["timings_s"],
               "supercell_atoms": p["supercell_atoms"], "supercell_matrix": p["supercell_matrix"],
               "nbands": p["nbands"], "labels": res.labels, "onset": res.onset,
               "energy": res.energy.tolist(), "intensity": res.intensity.tolist(),
               "spectrum_max_eV": p["spectrum_max_eV"], "engine_version": p["engine_version"],
               "parameters": params}
    log(f"[gpaw] {name} site {site}: {wall:.0f} s {rec.get('labels', rec.get('error'))}")
    cache = _load_cache()
    cache[key] = rec
    _save_cache(cache)
    return rec


def engine_params(args) -> dict:
    return {"ecut": args.ecut, "min_image_distance": args.min_image_distance,
            "empty_ev": args.empty_ev, "kdensity": args.kdensity,
            "gaussian_fwhm": 1.0, "lorentzian_fwhm": 0.2}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--polymorphs", nargs="+", default=["Quartz-alpha", "Stishovite"])
    ap.add_argument("--ecut", type=float, default=300.0)
    ap.add_argument("--min-image-distance", type=float, default=4.0)
    ap.add_argument("--empty-ev", type=float, default=20.0)
    ap.add_argument("--kdensity", type=float, default=None)
    ap.add_argument("--extrapolate", type=int, nargs="+", default=[72, 144, 288],
                    help="supercell sizes (atoms) to extrapolate the per-site cost to")
    args = ap.parse_args(argv)
    params = engine_params(args)
    rows = [gpaw_site(name, params) for name in args.polymorphs]
    ok = [r for r in rows if "error" not in r]
    per_site = {r["polymorph"]: {"atoms": r["supercell_atoms"], "wall_s": r["wall_s"],
                                 "site_s": r["timings_s"]["fch_s"] + r["timings_s"]["hch_s"],
                                 "shared_s": r["timings_s"]["ground_state_s"] + r["timings_s"]["lcao_s"],
                                 "nbands": r["nbands"]} for r in ok}
    fit = None
    sizes = sorted({v["atoms"] for v in per_site.values()})
    if len(sizes) >= 2:
        n = np.array([v["atoms"] for v in per_site.values()], float)
        t = np.array([v["wall_s"] for v in per_site.values()], float)
        p, loga = np.polyfit(np.log(n), np.log(t), 1)
        fit = {"exponent": float(p), "prefactor_s": float(np.exp(loga)),
               "estimate_wall_s": {str(N): float(np.exp(loga) * N**p) for N in args.extrapolate},
               "note": "crude power-law fit over the measured supercells (estimate, not measured)"}
    out = {"benchmark": "gpaw seconds per O site (one site per structure, incl. its ground state)",
           "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_engines_gpaw.py "
                      + " ".join(argv if argv is not None else os.sys.argv[1:]),
           "parameters": params, "per_structure": per_site, "scaling": fit,
           "failures": [r for r in rows if "error" in r],
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "load_avg_1min_at_end": os.getloadavg()[0],
                       "note": "shared machine; wall times include contention"}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gpaw_timings.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
