"""Numerical noise floor of the default engine: spectra of symmetry-equivalent O sites of one crystal.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_spectrum_noise_floor.py \
        [--structure ref-alpha-quartz] [--sites 4] [--data datasets/sio2_gpaw_lcao.h5] [--other-cell 10]
        [--structures datasets/sio2_gpaw_lcao.structures.json.gz --against noise_floor_OTHER.json]

All O sites of alpha-quartz are equivalent by symmetry, so their spectra and electronic labels
differ only by numerics: where each core-hole site sits on the real-space grid (egg-box), the
ghost functions, the SCF tolerance. The engine (the dataset's own parameters, read from ``--data``)
computes ``--sites`` of them in one supercell (one ground state). Compared with the site-to-site
spread of the dataset: numerical variance of the aligned spectra / the dataset's variance (summed
over the grid), 1 - cosine between equivalent sites against that between dataset spectra of
different structure groups, and the spread of the electronic labels against their dataset spread.
A ratio near 0 means the numerics leave the site-to-site signal intact. ``--other-cell D`` also
computes the first site in the supercell the engine builds for a minimum image distance of D Å
(another size and shape, so another Gamma-point sampling of the empty states, other ghosts):
the part of a structure's spectrum set by its supercell, not by its sites. ``--against`` a result
of another structure (with ``--other-cell``): is the change from one cell to the other the same
for both (cosine between the two changes, and the norm of their difference relative to this one)?
With ``--sites 1`` only the cell comparison is made. The aligned spectra are stored. JSON
``benchmarks/results/noise_floor_<structure>_s<sites>[_c<other cell>].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from coreloss.spectra import cosine_similarity  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _cos(a, b) -> float:
    return float(cosine_similarity(a, b)[0])


def main() -> None:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from coreloss.dataset import load_dataset
    from coreloss.engines.gpaw_lcao import GPAWLCAOEngine
    from coreloss.evaluate import split_groups
    from coreloss.labels import LABEL_NAMES
    from coreloss.structures.record import load_structures

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structure", default="ref-alpha-quartz")
    ap.add_argument("--structures", type=Path, default=ROOT / "datasets" / "sio2_pw_reference.structures.json")
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "sio2_gpaw_lcao.h5")
    ap.add_argument("--other-cell", type=float, default=None, help="minimum image distance (Å) of a second supercell")
    ap.add_argument("--against", type=Path, default=None, help="result JSON of another structure (--other-cell)")
    args = ap.parse_args()
    ds = load_dataset(args.data)
    params = {k: v for k, v in ds.provenance["parameters"].items() if k != "log_dir"}
    rec = next((r for r in load_structures(args.structures) if r.id == args.structure), None)
    if rec is None:
        raise SystemExit(f"error: no structure {args.structure!r} in {args.structures}")
    st = rec.structure
    eq = SpacegroupAnalyzer(st).get_symmetrized_structure().equivalent_indices
    o_sets = [s for s in eq if st[s[0]].specie.symbol == "O"]
    if len(o_sets) != 1:
        raise SystemExit(f"{args.structure}: {len(o_sets)} inequivalent O sites; pick a crystal with one")
    sites = o_sets[0][:args.sites]
    engine = GPAWLCAOEngine(**params)
    t0 = time.perf_counter()
    res = engine.compute_sites(st, sites)
    bad = [r for r in res if isinstance(r, Exception)]
    if bad:
        raise SystemExit(f"engine failed: {bad[0]}")
    X = np.array([r.aligned(ds.grid) for r in res])
    lab = {k: [float(r.labels[k]) for r in res] for k in res[0].labels}
    var_data = float(ds.X.var(axis=0, ddof=1).sum())
    g = split_groups(ds)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(ds), 2000), rng.integers(0, len(ds), 2000)
    keep = g[a] != g[b]
    data_pairs = [1 - _cos(ds.X[i], ds.X[j]) for i, j in zip(a[keep], b[keep])]
    out = {"structure": args.structure, "sites": [int(s) for s in sites], "engine": engine.name,
           "parameters": params, "seconds": time.perf_counter() - t0,
           "one_minus_cos_dataset_other_groups": {"median": float(np.median(data_pairs)),
                                                   "q10": float(np.quantile(data_pairs, 0.1))},
           "onsets_eV": [float(r.onset) for r in res], "spectra": X.round(7).tolist()}
    if len(sites) > 1:
        pairs = [1 - _cos(X[i], X[j]) for i in range(len(X)) for j in range(i + 1, len(X))]
        out.update({"spectral_variance_ratio": float(X.var(axis=0, ddof=1).sum()) / var_data,
                    "one_minus_cos_equivalent": {"median": float(np.median(pairs)), "max": float(np.max(pairs))},
                    "labels": {k: {"values": v, "std": float(np.std(v, ddof=1)),
                                   "dataset_std": float(np.nanstd(ds.y[:, LABEL_NAMES.index(k)]))}
                               for k, v in lab.items() if k in LABEL_NAMES}})
    if args.other_cell is not None:
        t1 = time.perf_counter()
        other = GPAWLCAOEngine(**{**params, "min_image_distance": args.other_cell}).compute_sites(st, sites[:1])[0]
        if isinstance(other, Exception):
            raise SystemExit(f"engine failed in the second cell: {other}")
        x2 = other.aligned(ds.grid)
        out["other_cell"] = {
            "min_image_distance": args.other_cell, "seconds": time.perf_counter() - t1,
            "supercells": [res[0].provenance.get("supercell"), other.provenance.get("supercell")],
            "one_minus_cos": 1 - _cos(X[0], x2),
            "spectral_variance_ratio": float(np.stack([X[0], x2]).var(axis=0, ddof=1).sum()) / var_data,
            "label_differences": {k: float(other.labels[k] - res[0].labels[k]) for k in res[0].labels
                                  if k in LABEL_NAMES},
            "onset_difference_eV": float(other.onset - res[0].onset),
            "spectrum": x2.round(7).tolist()}
        if args.against is not None:
            ref = json.loads(args.against.read_text())
            d_this = x2 - X[0]
            d_ref = np.asarray(ref["other_cell"]["spectrum"]) - np.asarray(ref["spectra"][0])
            out["other_cell"]["against"] = {
                "structure": ref["structure"], "cos_between_changes": _cos(d_this, d_ref),
                "difference_over_this_change": float(np.linalg.norm(d_this - d_ref) / np.linalg.norm(d_this)),
                "excitation_energy_change_other": ref["other_cell"]["label_differences"]["excitation_energy"]}
    brief = {k: v for k, v in out.items() if k not in ("spectra", "parameters")}
    if "other_cell" in brief:
        brief["other_cell"] = {k: v for k, v in brief["other_cell"].items() if k != "spectrum"}
    print(json.dumps(brief, indent=1))
    cell = "" if args.other_cell is None else f"_c{args.other_cell:g}"
    path = ROOT / "benchmarks" / "results" / f"noise_floor_{args.structure}_s{len(sites)}{cell}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
