"""Glass checks of the CHGNet melt-quench cells against silica glass (Si-O 1.61-1.63 Å, Si-O-Si peak
145-150°, 2.20 g/cm3): density, Si/O coordination counts, Si-O mean, Si-O-Si mode/mean/median, whether
the strict checks keep the cell, melt MSD and quench rate.

Usage:
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_glass.py \
        --cache datasets/chgnet_structures --json benchmarks/results/glass.json --png docs/img/glass_angles.png \
        --step-cost 20

Reads every finished amorphous task (``amo-*``) of the CHGNet cache folder (coreloss.structures.diverse);
statistics from coreloss.structures.glass.network_stats (bonds: Si-O < 2.05 Å, the checks' cutoff).
Prints one markdown table row per cell (the table of docs/structures.md).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def glass_rows(cache: str | Path) -> list[dict]:
    from pymatgen.core import Structure

    from coreloss.structures.checks import check_sio2
    from coreloss.structures.diverse import read_cache
    from coreloss.structures.glass import network_stats

    rows = []
    for doc in read_cache(cache):
        if doc["kind"] != "amorphous":
            continue
        for rec in doc.get("records", []):
            s = Structure.from_dict(rec["structure"])
            m = rec["meta"]
            p = doc["params"]
            rows.append({"id": rec["id"], "checks": "; ".join(check_sio2(s)) or "pass",
                         "start": m.get("start"), "cell_relaxed": "relax_of" in p,
                         "quench_ps": p.get("quench_ps"), "t_melt_k": p.get("t_melt_k"), "melt_ps": p.get("melt_ps"),
                         "quench_rate_k_per_s": m.get("quench_rate_k_per_s"), "msd_melt_a2": m.get("msd_melt_a2"),
                         "msd_melt_curve": m.get("msd_melt_curve"), "residual_pressure_gpa": m.get("residual_pressure_gpa",
                                                                                                  m.get("pressure_gpa")),
                         "energy_per_atom": m.get("energy_per_atom"), "task_seconds": doc.get("seconds"),
                         "md_steps": m.get("md_steps"), **network_stats(s)})
    return rows


def _cn(counts: dict) -> str:
    return "/".join(f"{k}:{v}" for k, v in sorted(counts.items(), key=lambda kv: int(kv[0])))


def table(rows: list[dict]) -> str:
    head = ("| cell | checks | density g/cm3 | Si CN (CN:count) | O CN (CN:count) | Si-O mean Å | "
            "Si-O-Si mode / mean / median ° | quench K/s | melt MSD Å² | P GPa |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        rate = f"{r['quench_rate_k_per_s']:.2g}" if r["quench_rate_k_per_s"] else "-"
        lines.append(f"| `{r['id']}` | {r['checks']} | {r['density_g_cm3']:.2f} | {_cn(r['si_cn'])} | "
                     f"{_cn(r['o_cn'])} | {r['si_o_mean']:.3f} | {r['angle_mode']:.1f} / {r['angle_mean']:.1f} / "
                     f"{r['angle_median']:.1f} | {rate} | {r['msd_melt_a2']} | {r['residual_pressure_gpa']} |")
    return "\n".join(lines)


def figure(rows: list[dict], path: str | Path, only: list[str] | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from coreloss.structures.glass import SILICA_GLASS

    sel = [r for r in rows if (only is None or r["id"] in only)]
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in sel:
        c = np.array(list(map(float, r["angle_hist"].keys())))
        h = np.array(list(r["angle_hist"].values()), float)
        ax.plot(c, h / max(h.sum(), 1), marker="o", ms=3, label=f"{r['id']} ({r['density_g_cm3']:.2f} g/cm3)")
    ax.axvspan(*SILICA_GLASS["si_o_si_peak_deg"], color="0.85", label="silica glass peak 145-150°")
    ax.set_xlabel("Si-O-Si angle (deg, 5° bins)")
    ax.set_ylabel("fraction of angles")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def step_cost(n_steps: int, seed: int = 0) -> dict:
    """CPU and wall seconds per Langevin step (2 fs, 4500 K) of a 72-atom random SiO2 cell at 2.2 g/cm3."""
    import time

    from coreloss.structures import chgnet_tools as ct

    atoms = ct._atoms(ct.random_sio2(24, 2.2, seed))
    ct._init_velocities(atoms, 4500.0, seed)
    dyn = ct._langevin(atoms, 4500.0, 2.0, seed)
    dyn.run(2)  # model load and first graph out of the timing
    t0, c0 = time.perf_counter(), time.process_time()
    dyn.run(n_steps)
    return {"n_atoms": len(atoms), "steps": n_steps, "wall_s_per_step": (time.perf_counter() - t0) / n_steps,
            "cpu_s_per_step": (time.process_time() - c0) / n_steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="datasets/chgnet_structures")
    ap.add_argument("--json", default=None)
    ap.add_argument("--png", default=None)
    ap.add_argument("--png-cells", default=None, help="comma-separated cell ids for the figure (default all)")
    ap.add_argument("--step-cost", type=int, default=0, help="also time this many CHGNet MD steps of 72 atoms")
    args = ap.parse_args()
    rows = glass_rows(args.cache)
    print(table(rows))
    cost = step_cost(args.step_cost) if args.step_cost else None
    if cost:
        print(f"CHGNet MD step, {cost['n_atoms']} atoms: {cost['cpu_s_per_step']:.3f} s CPU, "
              f"{cost['wall_s_per_step']:.3f} s wall (load: {os.getloadavg()[0]:.1f})")
    if args.json:
        from coreloss.structures.glass import SILICA_GLASS
        Path(args.json).write_text(json.dumps({"reference": SILICA_GLASS, "step_cost": cost, "cells": rows},
                                              indent=1))
    if args.png:
        figure(rows, args.png, args.png_cells.split(",") if args.png_cells else None)


if __name__ == "__main__":
    main()
