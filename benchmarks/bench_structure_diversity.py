"""Diversity of two structure sets: O-site label histograms, coordination, sites per source, glass checks.

Usage:
    git show 512ac47:src/coreloss/data/default_structures.json.gz > /tmp/old_set.json.gz
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_structure_diversity.py \
        --old /tmp/old_set.json.gz --new src/coreloss/data/default_structures.json.gz \
        --png docs/img/structure_diversity.png --json benchmarks/results/structure_diversity.json

Per symmetry-unique O site (what the engines compute; coreloss.sites): bond length, Si-O-Si angle,
Voronoi volume and O coordination (first shell); per Si atom: coordination (O within 2.05 Å, the
rule of coreloss.structures.checks). For the amorphous cells (source chgnet-amorphous): every Si-O
bond (< 2.05 Å), every Si-O-Si angle, density, coordination fractions, by target density.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def site_rows(records):
    from coreloss.sites import site_table
    by_src = {r.id: r.source for r in records}
    rows = site_table(records)
    for row in rows:
        row["source"] = by_src[row["structure_id"]]
    return rows


def si_cn(records, cutoff: float = 2.05) -> list[int]:
    out = []
    for r in records:
        s = r.structure
        sym = np.array([sp.symbol for sp in s.species])
        c, p, _, d = s.get_neighbor_list(cutoff)
        ok = (sym[c] == "Si") & (sym[p] == "O")
        cn = np.bincount(c[ok], minlength=len(s))
        out += cn[sym == "Si"].tolist()
    return out


def glass_stats(records) -> dict:
    """All-bond statistics of amorphous cells, one entry per cell (kept or not by the checks)."""
    from coreloss.structures.checks import check_sio2
    from coreloss.structures.glass import network_stats

    out = {}
    for r in records:
        if r.source != "chgnet-amorphous":
            continue
        reasons = check_sio2(r.structure)
        st = network_stats(r.structure)
        out[r.id] = {"passes_checks": not reasons, "check": "; ".join(reasons),
                    "start": r.meta.get("start", "random"), "target_density": r.meta.get("target_density"),
                    "energy_above_quartz_ev_atom": r.meta.get("e_above_quartz"),
                    "residual_pressure_gpa": r.meta.get("pressure_gpa"), "msd_melt_a2": r.meta.get("msd_melt_a2"),
                    "density_g_cm3": round(st["density_g_cm3"], 3),
                    "si_o_mean": st["si_o_mean"], "si_o_median": st["si_o_median"],
                    "si_o_angle_median": st["angle_median"], "si_o_angle_mean": st["angle_mean"],
                    "si_o_angle_mode_5deg_bin": st["angle_mode"],
                    "si_cn_fraction": _fractions_of(st["si_cn"]), "o_cn_fraction": _fractions_of(st["o_cn"]),
                    "quench_rate_k_per_s": r.meta.get("quench_rate_k_per_s")}
    return out


def task_costs(docs) -> dict:
    """CHGNet wall seconds per kind, and seconds per MD step (per 100 atoms) of the MD tasks."""
    out = collections.defaultdict(lambda: {"tasks": 0, "records": 0, "seconds": 0.0})
    per_step = []
    for d in docs:
        k = out[d["kind"]]
        k["tasks"] += 1
        k["records"] += len(d.get("records", []))
        k["seconds"] += d.get("seconds", 0.0)
        p = d["params"]
        if d["kind"] == "md" and d.get("records"):
            steps = p["equil_steps"] + p["interval"] * (p["n_snapshots"] - 1)
            natoms = len(d["records"][0]["structure"]["sites"])
            per_step.append(d["seconds"] / steps / natoms * 100)
    res = {k: {**v, "seconds": round(v["seconds"], 1)} for k, v in sorted(out.items())}
    if per_step:
        res["md_seconds_per_step_per_100_atoms"] = {"median": float(np.median(per_step)),
                                                    "min": float(np.min(per_step)), "max": float(np.max(per_step))}
    return res


def _fractions_of(counts: dict) -> dict:
    n = sum(counts.values())
    return {str(k): round(v / n, 4) for k, v in sorted(counts.items())}


def _fractions(values) -> dict:
    c = collections.Counter(int(v) for v in values)
    n = sum(c.values())
    return {str(k): round(v / n, 4) for k, v in sorted(c.items())}


def summary(records, rows) -> dict:
    arr = {k: np.array([r[k] for r in rows], float) for k in ("bond_length", "bond_angle", "voronoi_volume")}
    ang = arr["bond_angle"]
    return {"n_structures": len(records), "n_o_sites": len(rows),
            "structures_per_source": dict(collections.Counter(r.source for r in records)),
            "sites_per_source": dict(collections.Counter(r["source"] for r in rows)),
            "bond_length": _stats(arr["bond_length"]), "bond_angle": _stats(ang),
            "voronoi_volume": _stats(arr["voronoi_volume"]),
            "fraction_linear_angle_ge_179.9": float(np.mean(ang[np.isfinite(ang)] >= 179.9)),
            "fraction_bond_length_1.605_1.615": float(np.mean(np.abs(arr["bond_length"] - 1.61) <= 0.005)),
            "o_cn_fraction": _fractions([r["coordination"] for r in rows]),
            "si_cn_fraction": _fractions(si_cn(records))}


def _stats(x) -> dict:
    x = x[np.isfinite(x)]
    return {"min": float(x.min()), "p5": float(np.percentile(x, 5)), "median": float(np.median(x)),
            "p95": float(np.percentile(x, 95)), "max": float(x.max()), "std": float(x.std())}


def figure(old_rows, new_rows, old_recs, new_recs, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    panels = [("bond_length", "bond length (Å)", np.arange(1.50, 1.95, 0.005)),
              ("bond_angle", "Si-O-Si angle (deg)", np.arange(80, 182, 2)),
              ("voronoi_volume", "Voronoi volume (Å$^3$)", np.arange(5, 45, 0.5))]
    derived = [r for r in new_rows if r["source"].startswith("chgnet-")]
    for ax, (key, label, bins) in zip(axes[0], panels):
        for rows, name, color in ((old_rows, "old", "tab:gray"), (new_rows, "new", "tab:blue"),
                                  (derived, "new: CHGNet-derived only", "tab:orange")):
            x = np.array([r[key] for r in rows], float)
            x = x[np.isfinite(x)]
            ax.hist(np.clip(x, bins[0], bins[-1]), bins=bins, histtype="step", lw=1.4, color=color,
                    label=f"{name} ({len(x)} sites)")
        ax.set_xlabel(label)
        ax.set_ylabel("O sites (values beyond the axis piled at its ends)")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    for ax, (vals_old, vals_new, label) in zip(axes[1][:2], (
            ([r["coordination"] for r in old_rows], [r["coordination"] for r in new_rows], "O coordination (sites)"),
            (si_cn(old_recs), si_cn(new_recs), "Si coordination (atoms)"))):
        ks = sorted(set(vals_old) | set(vals_new))
        co, cn = collections.Counter(vals_old), collections.Counter(vals_new)
        w = 0.4
        ax.bar(np.arange(len(ks)) - w / 2, [co[k] for k in ks], w, color="tab:gray", label="old")
        ax.bar(np.arange(len(ks)) + w / 2, [cn[k] for k in ks], w, color="tab:blue", label="new")
        ax.set_xticks(np.arange(len(ks)), [str(k) for k in ks])
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.legend(fontsize=8)
    ax = axes[1][2]
    c = collections.Counter(r["source"] for r in new_rows)
    names = sorted(c, key=c.get)
    ax.barh(names, [c[n] for n in names], color="tab:blue")
    ax.set_xlabel("O sites per source (new set)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--png", default="docs/img/structure_diversity.png")
    ap.add_argument("--json", default="benchmarks/results/structure_diversity.json")
    ap.add_argument("--chgnet-cache", default="datasets/chgnet_structures",
                    help="CHGNet task folder: glass statistics of every amorphous cell, kept or not")
    args = ap.parse_args()
    from coreloss.structures import load_structures

    old, new = load_structures(args.old), load_structures(args.new)
    old_rows, new_rows = site_rows(old), site_rows(new)
    doc = {"command": "benchmarks/bench_structure_diversity.py", "old": args.old, "new": args.new,
           "old_set": summary(old, old_rows), "new_set": summary(new, new_rows)}
    if Path(args.chgnet_cache).is_dir():
        from coreloss.structures import diverse
        recs, _ = diverse.records_from_docs(diverse.read_cache(args.chgnet_cache))
        doc["amorphous_cells"] = glass_stats(recs)
        doc["chgnet_tasks"] = task_costs(diverse.read_cache(args.chgnet_cache))
    figure(old_rows, new_rows, old, new, args.png)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
