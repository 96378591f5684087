"""Markdown tables for BENCHMARKS.md / docs/engines.md from the gpaw-lcao benchmark results.

    .venv/bin/python benchmarks/bench_lcao_report.py

Reads ``benchmarks/results/fidelity_lcao.json`` (bench_lcao_fidelity.py),
``lcao_schemes_fidelity.json`` (bench_lcao_fidelity.py --schemes) and ``lcao_cost.json``
(bench_lcao_cost.py); prints the tables (no computation).
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _f(x, fmt="{:.3f}"):
    return "-" if x is None or x != x else fmt.format(x)


def fidelity() -> None:
    path = RESULTS / "fidelity_lcao.json"
    if not path.is_file():
        return
    d = json.loads(path.read_text())
    for name, e in d["engines"].items():
        print(f"\n{name} ({e['engine']}, {e['parameters'] or 'defaults'}) vs plane-wave hch reference:\n")
        print("| site | cosine -5..15 eV | cosine -5..25 eV | q_O (e) eng / PW | E_exc (eV) eng / PW | wall s |")
        print("|---|---|---|---|---|---|")
        for r in e["per_site"]:
            if "error" in r:
                print(f"| {r['site']} | error: {r['error'][:60]} | | | | |")
                continue
            lab, ref = r["labels"], r["reference_labels"]
            print(f"| {r['site']} | {_f(r['cosine']['-5..15'])} | {_f(r['cosine']['-5..25'])} | "
                  f"{_f(lab['mulliken_charge'])} / {_f(ref['mulliken_charge'])} | "
                  f"{_f(lab['excitation_energy'], '{:.2f}')} / {_f(ref['excitation_energy'], '{:.2f}')} | "
                  f"{_f(r['wall_s'], '{:.0f}')} |")
        mc, rc = e["min_cosine"] or {}, e["rank_corr_pairwise_distances"]
        print(f"\nmin cosine -5..15 / -5..25: {_f(mc.get('-5..15'))} / {_f(mc.get('-5..25'))}; "
              f"Spearman of pairwise distances -5..15 / -5..25: {_f(rc.get('-5..15'))} / "
              f"{_f(rc.get('-5..25'))}; quartz -> stishovite shift: "
              f"{_f(e['quartz_to_stishovite_shift_eV'])} eV (PW "
              f"{_f(e['reference_quartz_to_stishovite_shift_eV'])} eV)")


def schemes() -> None:
    path = RESULTS / "lcao_schemes_fidelity.json"
    if not path.is_file():
        return
    d = json.loads(path.read_text())
    print("\nLCAO candidate spectra vs plane-wave hch (cosine -5..15 / -5..25 eV):\n")
    names = [k for k in d if not k.startswith("_") and k != "command"]
    keys = sorted({s for n in names for s in d[n]["schemes"]})
    print("| spectrum, cut above first transition | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for k in keys:
        cells = []
        for n in names:
            c = d[n]["schemes"].get(k)
            cells.append("-" if not c else f"{c['-5..15']:.3f} / {c['-5..25']:.3f}")
        print(f"| {k} | " + " | ".join(cells) + " |")


def cost() -> None:
    path = RESULTS / "lcao_cost.json"
    if not path.is_file():
        return
    d = json.loads(path.read_text())
    print("\ngpaw-lcao cost (one worker, shared machine):\n")
    print("| structure | supercell atoms | ground state s | core-hole SCFs s/site | load avg |")
    print("|---|---|---|---|---|")
    for v in d["per_structure"].values():
        if "error" in v:
            print(f"| {v['id']} | error | | | |")
            continue
        print(f"| {v['id']} | {v['supercell_atoms']} | {v['ground_state_s']:.0f} | {v['site_s']:.0f} | "
              f"{v['load_avg_1min']:.1f} |")
    if d.get("fit"):
        print("\nfit:", json.dumps(d["fit"]))


if __name__ == "__main__":
    schemes()
    fidelity()
    cost()
