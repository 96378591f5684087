"""Seconds per O site of the gpaw-lcao engine for ~72, ~150 and ~290-atom supercells (one worker).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_cost.py \
        --ids pyxtal-lt_quartz zeo-EEI zeo-AWO

Structures from the embedded default set; the first unique O site of each, with the engine's
defaults (``get_engine("gpaw-lcao")``). Per structure: the ground state (shared by a structure's
sites) and the per-site core-hole SCF, wall seconds, the load average of the (shared) machine.
Adds the default-engine timings of ``bench_lcao_fidelity.py`` runs, fits the builder's cost model ``(g + n_sites * s) * (N / 100) ** p`` to the measured ground-state
and site times and writes everything to ``benchmarks/results/lcao_cost.json`` (resumable: done
structures are kept).

    .venv/bin/python benchmarks/bench_lcao_cost.py --dataset datasets/sio2_gpaw_lcao.h5
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lcao_cost.py --workers-test pyxtal-lt_quartz

instead reads the per-site timings a dataset build recorded (``timings_s``, and ``cpu_timings_s``
where present: CPU seconds of the worker, the cost on a shared machine), prints them by supercell
size and fits the same power laws; writes ``benchmarks/results/lcao_cost_dataset.json``.
``--workers-test ID``: one worker, then two at once, on an otherwise idle machine (``workers_test``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "lcao_cost.json"


def from_dataset(path: Path) -> dict:
    """Per-site timings of a gpaw-lcao dataset build, by supercell size, and power-law fits."""
    from coreloss.dataset_store import load_dataset

    ds = load_dataset(path)
    rows = []
    for sid, info in zip(ds.structure_ids, ds.site_provenance):
        e = info.get("engine", {})
        for kind in ("timings_s", "cpu_timings_s"):
            t = e.get(kind)
            if t:
                rows.append({"id": str(sid), "kind": kind, "atoms": int(e["supercell_atoms"]),
                             "ground_state_s": t["ground_state_s"],
                             "site_s": _per_site(t),
                             "xch_s": t.get("xch_s"), "hch_s": t.get("hch_s")})
    out = {"dataset": str(path), "engine": ds.provenance.get("engine"),
           "parameters": ds.provenance.get("parameters"), "n_sites": len(ds), "by_size": {}, "fit": {}}
    for kind in ("timings_s", "cpu_timings_s"):
        sel = [r for r in rows if r["kind"] == kind]
        sizes = sorted({r["atoms"] for r in sel})
        out["by_size"][kind] = {n: {"sites": sum(r["atoms"] == n for r in sel),
                                    **{k: float(np.median([r[k] for r in sel if r["atoms"] == n and r[k] is not None]))
                                       for k in ("ground_state_s", "site_s", "xch_s", "hch_s")}}
                                for n in sizes}
        fit = _power_laws([{**r, "supercell_atoms": r["atoms"]} for r in sel], ("ground_state_s", "site_s"))
        if fit:
            out["fit"][kind] = fit
    return out


def _per_site(timings: dict) -> float:
    """Seconds a site spends beyond the shared ground state: the sum of its core-hole SCFs."""
    return sum(v for k, v in timings.items() if k != "ground_state_s")


def _power_laws(rows: list, keys) -> dict:
    """Fit ``seconds = a * (N / 100) ** p`` to each key over rows with ``supercell_atoms`` N."""
    if len({v["supercell_atoms"] for v in rows}) < 2:
        return {}
    n = np.array([v["supercell_atoms"] for v in rows], float)
    fit = {}
    for what in keys:
        p, loga = np.polyfit(np.log(n / 100.0), np.log([v[what] for v in rows]), 1)
        fit[what] = {"exponent": float(p), "seconds_at_100_atoms": float(np.exp(loga))}
    return fit


def _one_site(sid: str, params: dict) -> dict:
    """The first unique O site of default-set structure ``sid``: wall and CPU seconds of the process."""
    from coreloss.engines import get_engine
    from coreloss.sites import o_sites
    from coreloss.structures import default_set_path, load_structures

    s = next(r for r in load_structures(default_set_path()) if r.id == sid).structure
    t0, c0 = time.perf_counter(), time.process_time()
    r = get_engine("gpaw-lcao", **params).compute_sites(s, [o_sites(s)[0].index])[0]
    if isinstance(r, Exception):
        raise r
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "supercell_atoms": r.provenance["supercell_atoms"], "timings_s": r.provenance["timings_s"]}


def workers_test(sid: str, params: dict) -> dict:
    """One worker alone, then two workers at once (the same site twice, separate processes).

    Meant for an otherwise idle machine (pause other jobs: ``kill -STOP``); the load average
    before each run is recorded. Throughput ratio = 2 x one-worker wall / two-worker wall."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as ex:  # a fresh process, like a build worker
        load1 = os.getloadavg()[0]
        one = ex.submit(_one_site, sid, params).result()
    with ProcessPoolExecutor(2) as ex:
        load2 = os.getloadavg()[0]
        two = [f.result() for f in [ex.submit(_one_site, sid, params) for _ in range(2)]]
    wall2 = max(t["wall_s"] for t in two)
    return {"id": sid, "params": params, "one_worker": {**one, "load_avg_before": load1},
            "two_workers": {"runs": two, "wall_s": wall2, "load_avg_before": load2},
            "throughput_ratio": 2 * one["wall_s"] / wall2, "cpus": os.cpu_count()}


def main(argv=None):
    from coreloss.engines import get_engine
    from coreloss.sites import o_sites
    from coreloss.structures import default_set_path, load_structures

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ids", nargs="*", default=["pyxtal-lt_quartz", "zeo-EEI", "zeo-AWO"],
                    help="structures to run (none: only collect the fidelity runs and fit)")
    ap.add_argument("-p", "--param", nargs="*", default=[], help="engine key=value")
    ap.add_argument("--dataset", type=Path, help="fit the timings recorded by a dataset build instead")
    ap.add_argument("--workers-test", metavar="ID", help="one vs two workers on this structure's first "
                    "site (run on an otherwise idle machine)")
    args = ap.parse_args(argv)
    if args.workers_test:
        from coreloss.dataset import parse_engine_params
        res = json.loads(OUT.read_text()) if OUT.is_file() else {"per_structure": {}}
        res.setdefault("workers_test", []).append(workers_test(args.workers_test,
                                                               parse_engine_params(args.param)))
        res["workers_test"][-1]["command"] = "benchmarks/bench_lcao_cost.py " + " ".join(argv or sys.argv[1:])
        OUT.write_text(json.dumps(res, indent=1))
        print(json.dumps(res["workers_test"][-1], indent=1))
        return
    if args.dataset:
        res = from_dataset(args.dataset)
        res["command"] = "benchmarks/bench_lcao_cost.py --dataset " + str(args.dataset)
        (OUT.parent / "lcao_cost_dataset.json").write_text(json.dumps(res, indent=1))
        for kind, table in res["by_size"].items():
            print(f"{kind}: supercell atoms | sites | ground state | site (xch + hch) | xch | hch")
            for n, v in table.items():
                print(f"  {n} | {v['sites']} | {v['ground_state_s']:.0f} | {v['site_s']:.0f} | "
                      f"{v['xch_s']:.0f} | {v['hch_s']:.0f}")
        print(json.dumps(res["fit"], indent=1))
        return
    from coreloss.dataset import parse_engine_params
    params = parse_engine_params(args.param)
    recs = {r.id: r for r in load_structures(default_set_path())}
    res = json.loads(OUT.read_text()) if OUT.is_file() else {"per_structure": {}}
    eng = get_engine("gpaw-lcao", **params)
    physics = {k: v for k, v in params.items() if k != "log_dir"}  # log_dir only keeps GPAW's text logs
    for sid in args.ids:
        key = f"{sid} {json.dumps(physics, sort_keys=True)}"
        if key in res["per_structure"]:
            continue
        s = recs[sid].structure
        site = o_sites(s)[0].index
        t0 = time.perf_counter()
        r = eng.compute_sites(s, [site])[0]
        wall = time.perf_counter() - t0
        if isinstance(r, Exception):
            res["per_structure"][key] = {"id": sid, "error": str(r), "wall_s": wall}
        else:
            t, c = r.provenance["timings_s"], r.provenance.get("cpu_timings_s") or {}
            res["per_structure"][key] = {
                "id": sid, "params": physics, "log_dir": params.get("log_dir"), "supercell_atoms": r.provenance["supercell_atoms"],
                "ground_state_s": t["ground_state_s"],
                "site_s": _per_site(t),
                "wall_s": wall, "load_avg_1min": os.getloadavg()[0], "timings_s": t,
                "cpu_timings_s": c, "ghosts": (r.provenance.get("ghosts") or {}).get("n"),
                "cpu_ground_state_s": c.get("ground_state_s"),
                "cpu_site_s": _per_site(c) if c else None}
        print(json.dumps(res["per_structure"][key]), flush=True)
        OUT.write_text(json.dumps(res, indent=1))
    fid = OUT.parent / "fidelity_sites.json"  # default-engine runs of bench_lcao_fidelity.py
    if fid.is_file():
        for key, v in json.loads(fid.read_text()).items():
            engine, params, sid, site = json.loads(key)
            if engine == "gpaw-lcao" and not params and v.get("timings_s"):
                t = v["timings_s"]
                res["per_structure"][f"{sid} (fidelity run)"] = {
                    "id": sid, "params": {}, "supercell_atoms": v["supercell_atoms"],
                    "ground_state_s": t["ground_state_s"],
                    "site_s": _per_site(t),
                    "wall_s": v["wall_s"], "load_avg_1min": v.get("load_avg_1min") or float("nan"),
                    "timings_s": t, "source": "benchmarks/results/fidelity_sites.json"}
                c = v.get("cpu_timings_s") or {}
                if c:
                    res["per_structure"][f"{sid} (fidelity run)"].update(
                        cpu_timings_s=c, cpu_ground_state_s=c["ground_state_s"],
                        cpu_site_s=_per_site(c))
    ok = [v for v in res["per_structure"].values() if "error" not in v and not v["params"]]
    res["fit"] = _power_laws(ok, ("ground_state_s", "site_s"))
    res["fit_cpu"] = _power_laws([v for v in ok if v.get("cpu_site_s")], ("cpu_ground_state_s", "cpu_site_s"))
    res["command"] = "benchmarks/bench_lcao_cost.py " + " ".join(argv or sys.argv[1:])
    res["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                      "note": "shared 2-core machine: other jobs ran at the same time (see "
                              "load_avg_1min); one worker, OMP_NUM_THREADS=1"}
    OUT.write_text(json.dumps(res, indent=1))
    print(json.dumps(res.get("fit"), indent=1))


if __name__ == "__main__":
    main()
