"""The egg-box error of the LCAO Delta-KS energy, and its isolated-atom correction.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_eggbox.py atom      # ~3 CPU min
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_eggbox.py crystal   # ~15 CPU min
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_eggbox.py seed      # ~1 CPU min

``atom``: ``E(fch1s, electron kept) - E(O)`` of an isolated O atom (tzdp, cubic 8 Å box) at
sub-grid offsets 0, (½,½,½), (½,0,0), (¼,¼,¼) and four random ones, for h 0.25-0.10 Å.
``crystal``: α-quartz and stishovite (72-atom supercells, the engine's defaults and ghosts)
translated rigidly by 0, (½,½,½) and (¼,½,0) grid steps; the raw spin-paired Delta-KS energy,
the engine's correction (:meth:`GPAWLCAOEngine.eggbox`) and the corrected energy.
``seed``: the 8 sites of the plane-wave reference set: the correction of each gpaw-lcao site
cached by ``bench_lcao_fidelity.py`` (computed without it), written back to that cache under the
engine's current parameters (the correction only subtracts a number from the Delta-KS energy and
moves the spectrum's energy axis with it), and the corrected polymorph shifts against plane waves.
Results: ``benchmarks/results/lcao_eggbox.json`` (one key per step).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "lcao_eggbox.json"


def _save(key: str, value) -> None:
    data = json.loads(OUT.read_text()) if OUT.is_file() else {}
    data[key] = value
    data.setdefault("commands", {})[key] = f"benchmarks/bench_lcao_eggbox.py {key}"
    OUT.write_text(json.dumps(data, indent=1))


def _prepare(basis: str = "tzdp"):
    from coreloss.engines import gpaw_basis, gpaw_setups

    gpaw_setups.activate(("hch1s", "fch1s"), "PBE")
    gpaw_basis.ensure_bases(["O", "Si", "H"], basis, ("hch1s", "fch1s"), "PBE")


def atom() -> dict:
    from coreloss.engines._eggbox import atom_excitation

    _prepare()
    offsets = [np.zeros(3), np.full(3, 0.5), np.array([0.5, 0, 0]), np.full(3, 0.25)]
    offsets += list(np.random.default_rng(0).random((4, 3)))
    out = {}
    for h in (0.25, 0.20, 0.15, 0.12, 0.10):
        c0 = time.process_time()
        vals = [atom_excitation(np.eye(3) * h, off) for off in offsets]
        out[f"{h:.2f}"] = {"eV": vals, "range_eV": float(np.ptp(vals)), "mean_eV": float(np.mean(vals)),
                           "cpu_s_per_offset": (time.process_time() - c0) / len(offsets)}
        print(f"h {h:.2f}: range {np.ptp(vals):.4f} eV, mean {np.mean(vals):.4f}", flush=True)
    return {"offsets": [o.tolist() for o in offsets], "by_h": out}


def crystal() -> dict:
    from coreloss.engines import get_engine
    from coreloss.engines._eggbox import grid_vectors
    from coreloss.engines.gpaw_lcao import PAIRED_XCH_OFFSET_EV, lcao_ground_state, xch_state
    from coreloss.structures import reference

    _prepare()
    eng = get_engine("gpaw-lcao")
    out = {}
    for name in ("alpha_quartz", "stishovite"):
        s0 = getattr(reference, name)()
        site = next(i for i, x in enumerate(s0) if x.specie.symbol == "O")
        steps = grid_vectors(eng._cell(s0)[4].cell.array, eng.params["h"])  # the supercell's grid
        rows = []
        for off in ((0, 0, 0), (0.5, 0.5, 0.5), (0.25, 0.5, 0.0)):
            s = s0.copy()
            shift = np.asarray(off) @ steps
            s.translate_sites(list(range(len(s))), shift, frac_coords=False, to_unit_cell=True)
            sc, scale, n_cells, _, atoms, ghosts = eng._cell(s)
            j = site * n_cells
            c0 = time.process_time()
            e_gs, *_ = lcao_ground_state(atoms, ghosts, **eng._kw("gs"))
            e_x, _ = xch_state(atoms, j, False, ghosts=ghosts, **eng._kw("xch"))
            raw = e_x - e_gs - PAIRED_XCH_OFFSET_EV
            corr, goff = eng.eggbox(s, site)
            rows.append({"translation_grid_steps": list(off), "grid_offset": goff, "dks_raw_eV": raw,
                         "eggbox_correction_eV": corr, "dks_corrected_eV": raw - corr,
                         "cpu_s": time.process_time() - c0})
            print(name, json.dumps(rows[-1]), flush=True)
        raw = [r["dks_raw_eV"] for r in rows]
        cor = [r["dks_corrected_eV"] for r in rows]
        out[name] = {"site": site, "supercell_atoms": len(sc), "rows": rows,
                     "range_raw_eV": float(np.ptp(raw)), "range_corrected_eV": float(np.ptp(cor))}
    q = np.mean([r["dks_corrected_eV"] for r in out["alpha_quartz"]["rows"]])
    s = np.mean([r["dks_corrected_eV"] for r in out["stishovite"]["rows"]])
    out["quartz_to_stishovite_shift_corrected_eV"] = float(s - q)
    out["quartz_to_stishovite_shift_raw_eV"] = [r2["dks_raw_eV"] - r1["dks_raw_eV"] for r1, r2 in
                                                zip(out["alpha_quartz"]["rows"], out["stishovite"]["rows"])]
    return out


def seed() -> dict:
    """Correct the cached gpaw-lcao fidelity sites; corrected shifts against plane waves."""
    from bench_lcao_fidelity import CACHE, RESULTS, reference_rows
    from pymatgen.core import Structure

    from coreloss.engines import get_engine

    _prepare()
    eng = get_engine("gpaw-lcao")
    new = {k: v for k, v in eng.params.items() if k != "log_dir"}
    old = {k: v for k, v in new.items() if k != "eggbox_correction"}
    cache = json.loads(CACHE.read_text())
    pw = json.loads((RESULTS / "pw_reference_dks.json").read_text())
    sites = []
    for (sid, idx), row in reference_rows().items():
        key_old = json.dumps(["gpaw-lcao", old, sid, idx], sort_keys=True)
        key_new = json.dumps(["gpaw-lcao", new, sid, idx], sort_keys=True)
        if key_old not in cache:
            print(f"{sid}#{idx}: no cached uncorrected result", flush=True)
            continue
        rec = dict(cache[key_old])
        corr, goff = eng.eggbox(Structure.from_dict(row["record"]["structure"]), idx)
        raw = rec["labels"]["excitation_energy"]
        rec["labels"] = {**rec["labels"], "excitation_energy": raw - corr}
        rec["energy"] = (np.asarray(rec["energy"]) - corr).tolist()
        rec["onset"] = rec["onset"] - corr
        rec["eggbox"] = {"correction_eV": corr, "grid_offset": goff, "dks_uncorrected_eV": raw,
                         "seeded_from": "the same site computed without the correction"}
        cache[key_new] = rec
        ref = float(row["y"][-1])  # the reference row's own Delta-KS, else bench_pw_reference.py dks
        ref = ref if np.isfinite(ref) else pw.get(f"{sid}#{idx}", {}).get("excitation_energy")
        sites.append({"site": f"{sid}#{idx}", "raw_eV": raw, "correction_eV": corr,
                      "corrected_eV": raw - corr, "grid_offset": goff, "plane_wave_eV": ref})
        print(json.dumps(sites[-1]), flush=True)
    tmp = CACHE.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache))
    os.replace(tmp, CACHE)
    return {"sites": sites, **shift_stats(sites)}


def shift_stats(sites: list) -> dict:
    """Shifts from α-quartz, raw and corrected, against the plane-wave ones (eV)."""
    by = {s["site"]: s for s in sites if s["plane_wave_eV"] is not None}
    q = by.get("ref-alpha-quartz#1")
    if q is None:
        return {}
    out = {}
    for kind in ("raw_eV", "corrected_eV"):
        others = [s for k, s in by.items() if k != "ref-alpha-quartz#1"]
        a = np.array([s[kind] - q[kind] for s in others])
        b = np.array([s["plane_wave_eV"] - q["plane_wave_eV"] for s in others])
        out[kind.replace("_eV", "")] = {
            "pearson_r": float(np.corrcoef(a, b)[0, 1]), "mae_eV": float(np.mean(np.abs(a - b))),
            "max_abs_eV": float(np.max(np.abs(a - b))),
            "offset_to_pw_eV": [float(min(s["plane_wave_eV"] - s[kind] for s in by.values())),
                                float(max(s["plane_wave_eV"] - s[kind] for s in by.values()))],
            "shifts": {s["site"]: [float(x), float(y)] for s, x, y in zip(others, a, b)}}
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("atom", "crystal", "seed"))
    step = ap.parse_args(argv).step
    result = {"atom": atom, "crystal": crystal, "seed": seed}[step]()
    _save(step, result)
    print(json.dumps(result, indent=1)[:3000])


if __name__ == "__main__":
    main()
