"""How much geometry do two engines' spectra carry? The same O sites, the same folds, two engines.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_engine_information.py \
        --data datasets/sio2_gpaw_lcao.h5 datasets/sio2_xtb_gfn2_dft_sites.h5

The second file holds the first one's sites computed with another engine (``coreloss dataset build
--sites-of``). On the sites both hold, group k-fold CV (folds by coreloss.evaluate.split_groups,
identical for both engines) of the inverse model (``--arch``; members/epochs as given) trained
on each engine's spectra; pooled out-of-fold R2 and MAE per label (the geometric labels are the
same numbers in both files; the electronic ones are each engine's own). Also the mean cosine
between the two engines' spectra of a site. Writes benchmarks/results/engine_information.json.

``--checks``: on engine A's paired sites only, the same CV (MLP) with the training augmentation
off / noise only / shifts of at most 0.3 eV, with the spectra put on the first transition
(excitation energy) instead of the onset, with the absolute onset as a second input, and with
a split by site instead of by structure group (benchmarks/results/engine_information_checks.json).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from coreloss.dataset_store import load_dataset  # noqa: E402
from coreloss.evaluate import cross_validate, split_groups  # noqa: E402
from coreloss.labels import GEOMETRIC_LABELS, LABEL_NAMES  # noqa: E402
from coreloss.models.inverse import InverseModel  # noqa: E402
from coreloss.spectra import cosine_similarity  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "engine_information.json"
SHORT = {"bond_length": "d(O-X)", "bond_angle": "angle", "voronoi_volume": "V_vor", "bop": "BOP",
         "mulliken_charge": "q_O", "excitation_energy": "E_exc"}


def paired(a, b):
    """Row indices of ``a`` and ``b`` holding the same (structure id, site index), in ``a``'s order."""
    key_b = {(str(s), int(i)): k for k, (s, i) in enumerate(zip(b.structure_ids, b.site_index))}
    ia, ib = [], []
    for k, (s, i) in enumerate(zip(a.structure_ids, a.site_index)):
        j = key_b.get((str(s), int(i)))
        if j is not None:
            ia.append(k)
            ib.append(j)
    return np.array(ia, int), np.array(ib, int)


def checks(ds, rows, groups, args) -> dict:
    """Why engine A's spectra read badly: the same CV with one thing changed at a time."""
    from coreloss.evaluate import group_kfold, regression_metrics
    from coreloss.spectra import shift

    X, y, onset = ds.X[rows], ds.y[rows], ds.onset[rows]
    d = onset - y[:, LABEL_NAMES.index("excitation_energy")]  # onset above the first transition, eV
    common = dict(members=args.members, epochs=args.epochs, seed=0)
    sites = np.array([f"{s}#{i}" for s, i in zip(ds.structure_ids[rows], ds.site_index[rows])])
    variants = {"default": ({}, X, groups), "no augmentation": ({"augment": (), "snrs": (float("inf"),)}, X, groups),
                "noise only": ({"augment": ("noise",)}, X, groups), "shifts <= 0.3 eV": ({"max_shift_ev": 0.3}, X, groups),
                "first-transition aligned": ({}, shift(X, d - d.mean(), ds.grid), groups),
                "split by site": ({}, X, sites)}
    out = {"onset_minus_first_transition_eV": {"mean": float(d.mean()), "std": float(d.std())},
           "r_onset_shift_vs_angle": float(np.corrcoef(d, y[:, LABEL_NAMES.index("bond_angle")])[0, 1])}
    for name, (kw, Xv, g) in variants.items():
        cv = cross_validate(Xv, y, g, lambda: InverseModel(**common, **kw), n_splits=args.folds)
        out[name] = {k: v["r2"] for k, v in cv["pooled"].items()}
        print(f"{name}: " + " ".join(f"{SHORT[k]} {v:.2f}" for k, v in out[name].items() if v is not None), flush=True)
    oof = np.full(y.shape, np.nan)  # the absolute onset as a second input (cross_validate has no onset)
    for tr, te in group_kfold(groups, args.folds):
        m = InverseModel(**common, absolute_onset=True).fit(X[tr], y[tr], groups=groups[tr], onset=onset[tr])
        oof[te] = m.predict(X[te], onset=onset[te])[0]
    out["absolute onset input"] = {k: v["r2"] for k, v in regression_metrics(y, oof).items()}
    print("absolute onset input: " + " ".join(f"{SHORT[k]} {v:.2f}" for k, v in out["absolute onset input"].items()
                                              if v is not None), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, nargs=2, required=True, metavar=("A", "B"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--arch", default="mlp", choices=("mlp", "cnn"))
    ap.add_argument("--checks", action="store_true", help="engine A only: the CV with one thing changed at a time")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    a, b = (load_dataset(p) for p in args.data)
    if not a.grid.matches(b.grid):
        raise SystemExit(f"error: grids differ: {a.grid.to_dict()} vs {b.grid.to_dict()}")
    ia, ib = paired(a, b)
    if len(ia) < 20:
        raise SystemExit(f"error: only {len(ia)} sites in common")
    groups = split_groups(a)[ia]
    if args.checks:
        doc = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "data": str(args.data[0]),
               "n_sites": int(len(ia)), "model": {"arch": "mlp", "members": args.members, "epochs": args.epochs,
                                                  "folds": args.folds}, **checks(a, ia, groups, args)}
        (OUT.parent / "engine_information_checks.json").write_text(json.dumps(doc, indent=1))
        return
    geo = [LABEL_NAMES.index(n) for n in GEOMETRIC_LABELS]
    gap = np.nanmax(np.abs(a.y[ia][:, geo] - b.y[ib][:, geo]))
    hidden = (256, 128) if args.arch == "mlp" else (128,)
    res = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "data": [str(p) for p in args.data], "n_sites": int(len(ia)), "n_groups": int(len(np.unique(groups))),
           "model": {"arch": args.arch, "hidden": list(hidden), "members": args.members, "epochs": args.epochs,
                     "folds": args.folds},
           "max_geometric_label_difference": float(gap),
           "spectrum_cosine_a_vs_b": float(np.mean(cosine_similarity(a.X[ia], b.X[ib]))), "cv": {}}
    for ds, rows in ((a, ia), (b, ib)):
        name = ds.provenance.get("engine")
        cv = cross_validate(ds.X[rows], ds.y[rows], groups,
                            lambda: InverseModel(arch=args.arch, hidden=hidden, members=args.members,
                                                 epochs=args.epochs, seed=0), n_splits=args.folds)
        res["cv"][ds.provenance.get("engine")] = cv["pooled"]
        print(f"{name}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    res["seconds"] = time.perf_counter() - t0
    OUT.write_text(json.dumps(res, indent=1))
    print(f"\n{len(ia)} sites of {res['n_groups']} groups in both files; spectra of a site, engine A vs B: "
          f"mean cosine {res['spectrum_cosine_a_vs_b']:.3f}; group {args.folds}-fold CV ({args.arch}), R2 (MAE)\n")
    print("| spectra from | " + " | ".join(SHORT[n] for n in LABEL_NAMES) + " |\n|---|" + "---|" * 6)
    for eng, m in res["cv"].items():
        print(f"| {eng} | " + " | ".join(f"{m[n]['r2']:.2f} ({m[n]['mae']:.3g})" if m[n]["r2"] is not None
                                          else "-" for n in LABEL_NAMES) + " |")
    print(f"\nwrote {OUT} ({res['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
