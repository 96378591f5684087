"""Forward-model benchmark: spectrum accuracy on held-out structures and speed-up against engines.

Trains coreloss.models.forward.ForwardModel on the training structures of the fixed hash split
(coreloss.evaluate.test_mask, 15 %), reports cosine similarity / MSE / main-peak error on the
test structures (and the "mean training spectrum" baseline), and times per-site prediction
against the xtb engine (timed here on the smallest structures) and gpaw (from
benchmarks/results/gpaw_*.json when present).

    .venv/bin/python benchmarks/bench_forward.py --data runs/default_xtb.h5 [--select] [--ship]

``--ship`` retrains the chosen setup through coreloss.workflow.ship (the library workflow) into
src/coreloss/data/forward_model.pt, with these benchmark metrics in model_metrics.json (key "forward").

``--select``: the network size / dropout / weight decay are chosen by group 3-fold CV over the
*training* structures only (``coreloss.models.forward.cross_validate_params``); the test
structures are scored once, with the chosen parameters.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from coreloss.evaluate import spectrum_metrics, split_groups, test_mask  # noqa: E402
from coreloss.models.forward import ForwardModel, cross_validate_params  # noqa: E402

CANDIDATES = [{"hidden": (256, 256), "dropout": 0.05, "weight_decay": 1e-5},
              {"hidden": (256, 256), "dropout": 0.3, "weight_decay": 1e-3},
              {"hidden": (128,), "dropout": 0.2, "weight_decay": 1e-2}]

ROOT = Path(__file__).resolve().parents[1]


def time_xtb(structures: dict, n_structures: int = 2) -> dict | None:
    """Seconds per O site of the xtb engine on the ``n_structures`` smallest structures."""
    from coreloss.engines import get_engine
    from coreloss.errors import CorelossError
    from coreloss.sites import o_sites

    if n_structures <= 0:
        return None
    try:
        engine = get_engine("xtb")
    except CorelossError as exc:
        return {"error": str(exc)}
    total, n = 0.0, 0
    names = sorted(structures, key=lambda k: len(structures[k]))[:n_structures]
    for sid in names:
        s = structures[sid]
        idx = [site.index for site in o_sites(s)]
        t0 = time.perf_counter()
        res = engine.compute_sites(s, idx)
        total += time.perf_counter() - t0
        n += sum(not isinstance(r, Exception) for r in res)
    return {"seconds_per_site": total / max(n, 1), "n_sites": n, "structures": names,
            "engine_version": engine.version}


def gpaw_per_site() -> dict | None:
    """Look for a per-site time in the gpaw engineer's benchmark results."""
    for path in sorted(glob.glob(str(ROOT / "benchmarks" / "results" / "gpaw_*.json"))):
        doc = json.loads(Path(path).read_text())
        found = []

        def walk(d, pre=""):
            if isinstance(d, dict):
                for k, v in d.items():
                    if isinstance(v, (int, float)) and "site" in k and ("second" in k or k.endswith("_s")):
                        found.append((pre + k, float(v)))
                    walk(v, pre + k + ".")
            elif isinstance(d, list):
                for i, v in enumerate(d):
                    walk(v, pre + f"{i}.")

        walk(doc)
        if found:
            return {"file": os.path.relpath(path, ROOT), "key": found[0][0], "seconds_per_site": found[0][1]}
    return None


def dataset_engine_per_site(ds) -> dict | None:
    """Median seconds per O site of the engine that computed ``ds``, from the timings it recorded
    (CPU seconds where present, else wall): the site's own SCFs plus its share of the ground state."""
    from collections import Counter

    n_per_structure = Counter(str(s) for s in ds.structure_ids)
    per_site, kinds = [], Counter()
    for sid, info in zip(ds.structure_ids, ds.site_provenance):
        e = info.get("engine", {}) if isinstance(info, dict) else {}
        t = e.get("cpu_timings_s") or e.get("timings_s")
        if not t:
            continue
        kinds["cpu_timings_s" if e.get("cpu_timings_s") else "timings_s"] += 1
        gs = t.get("ground_state_s", 0.0) / n_per_structure[str(sid)]
        per_site.append(gs + sum(v for k, v in t.items() if k != "ground_state_s"))
    if not per_site:
        return None
    return {"seconds_per_site": float(np.median(per_site)), "n_sites": len(per_site), "timings": dict(kinds),
            "engine": ds.provenance.get("engine"), "note": "median over the dataset's sites; ground state "
            "shared by the sites of a structure in the dataset"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "runs" / "default_xtb.h5"))
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--xtb-structures", type=int, default=2)
    ap.add_argument("--ship", action="store_true")
    ap.add_argument("--select", action="store_true", help="choose parameters by group CV on training structures")
    ap.add_argument("--cv-folds", type=int, default=3)
    ap.add_argument("--candidate", type=int, default=None,
                    help="use CANDIDATES[i] without selecting (e.g. chosen by an earlier --select run)")
    args = ap.parse_args()

    from coreloss.dataset import load_dataset
    ds = load_dataset(args.data)
    groups = split_groups(ds)  # snapshots, relaxations and pressures of one parent stay together
    te = test_mask(groups, 0.15, seed=0)
    print(f"dataset: {len(ds)} sites, {len(ds.structures)} structures ({ds.provenance.get('engine')}); "
          f"test: {te.sum()} sites of {len(np.unique(ds.structure_ids[te]))} structures\n")
    chosen, selection = {}, None
    if args.candidate is not None:
        chosen = dict(CANDIDATES[args.candidate])
    elif args.select:
        t0 = time.perf_counter()
        cands = [{**c, "epochs": args.epochs, "seed": 0} for c in CANDIDATES]
        selection = cross_validate_params(
            ds.structures, ds.X[~te], ds.structure_ids[~te], ds.site_index[~te], cands, n_splits=args.cv_folds,
            grid=ds.grid, progress=lambda c, k, cos: print(f"  cv {c} fold {k}: cosine {cos:.4f}", flush=True),
            groups=groups[~te])
        best = max(selection, key=lambda r: r["cosine_mean"])
        chosen = best["params"]
        print(f"### Parameter selection: group {args.cv_folds}-fold CV on training structures "
              f"({time.perf_counter() - t0:.0f} s)\n")
        print("| hidden | dropout | weight decay | CV cosine mean |\n|---|---|---|---|")
        for r in selection:
            p = r["params"]
            mark = " (chosen)" if r is best else ""
            print(f"| {p['hidden']} | {p['dropout']} | {p['weight_decay']:g} | {r['cosine_mean']:.4f}{mark} |")
        print()
    t0 = time.perf_counter()
    fm = ForwardModel(**{"epochs": args.epochs, "seed": 0, **chosen}, grid=ds.grid)
    fm.fit(ds.structures, ds.X[~te], ds.structure_ids[~te], ds.site_index[~te],
           provenance={"dataset_provenance": ds.provenance, "split": {"test_fraction": 0.15, "seed": 0}})
    train_s = time.perf_counter() - t0
    pred = fm.predict_features(fm.features(ds.structures, ds.structure_ids[te], ds.site_index[te]))
    mean_train = ds.X[~te].mean(0)
    m_test = spectrum_metrics(ds.X[te], pred, ds.grid, reference=mean_train)
    m_base = spectrum_metrics(ds.X[te], np.repeat(mean_train[None], te.sum(), 0), ds.grid, reference=mean_train)
    pred_tr = fm.predict_features(fm.features(ds.structures, ds.structure_ids[~te], ds.site_index[~te]))
    m_train = spectrum_metrics(ds.X[~te], pred_tr, ds.grid)
    fm.metadata["test_metrics"] = m_test

    # speed: the spectra of every unique O site of the test structures from the structure alone
    # (symmetry + SOAP + network; predict_sites without the Voronoi labels, which are not needed)
    # CPU seconds (process time, 1 thread), as the engines' recorded timings: the ratio does not
    # depend on what else the machine runs
    test_ids = sorted(set(ds.structure_ids[te].tolist()))
    fm.predict_sites(ds.structures[test_ids[0]], volumes=False)  # warm-up: imports, SOAP set-up
    n_sites, t0 = 0, time.process_time()
    for sid in test_ids:
        sites, _ = fm.predict_sites(ds.structures[sid], volumes=False)
        n_sites += len(sites)
    fwd_per_site = (time.process_time() - t0) / max(n_sites, 1)
    xtb = time_xtb(ds.structures, args.xtb_structures)
    gpaw = gpaw_per_site()
    own = dataset_engine_per_site(ds)

    print("### Forward model on held-out structures (onset-aligned, unit-area spectra)\n")
    print("| predictor | set | cosine mean | cosine min | MSE (1/eV)^2 | main-peak error mean / median (eV) "
          "| deviation R2 |")
    print("|---|---|---|---|---|---|---|")
    for name, part, m in (("forward (SOAP+MLP)", "test", m_test), ("mean train spectrum", "test", m_base),
                          ("forward (SOAP+MLP)", "train", m_train)):
        print(f"| {name} | {part} | {m['cosine_mean']:.4f} | {m['cosine_min']:.4f} | {m['mse_mean']:.3g} | "
              f"{m['peak_abs_error_ev_mean']:.2f} / {m['peak_abs_error_ev_median']:.2f} | "
              f"{m.get('deviation_r2', float('nan')):.3f} |")
    print("\n### Speed per O site (this machine, 1 thread; forward model: CPU seconds)\n")
    print("| method | s / site | speed-up of forward model |\n|---|---|---|")
    print(f"| forward model (symmetry + SOAP + MLP) | {fwd_per_site:.2g} | 1 |")
    speed = {"forward_seconds_per_site": fwd_per_site}
    for name, d in (("xtb", xtb), ("gpaw", gpaw), (f"{ds.provenance.get('engine')} (this dataset's timings)", own)):
        if d and "seconds_per_site" in d:
            sp = d["seconds_per_site"] / fwd_per_site
            speed[name] = {**d, "speedup": sp}
            print(f"| {name} engine | {d['seconds_per_site']:.3f} | {sp:.0f}x |")
        else:
            speed[name] = d or {"error": "not timed (--xtb-structures 0)" if name == "xtb"
                                else "no benchmarks/results/gpaw_*.json with a per-site time"}
            print(f"| {name} engine | n/a ({speed[name].get('error')}) | - |")
    res = {"dataset": {"path": args.data, "n_sites": len(ds), "n_structures": len(ds.structures),
                       "n_test_sites": int(te.sum()), "provenance": ds.provenance},
           "test": m_test, "train": m_train, "mean_spectrum_baseline": m_base, "speed": speed,
           "train_seconds": train_s, "params": fm.param_record(), "selection": selection, "descriptor": fm.metadata["descriptor"],
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"forward_{Path(args.data).stem}.json").write_text(json.dumps(res, indent=2, default=float))
    print(f"\ntrain {train_s:.1f} s; wrote {out / f'forward_{Path(args.data).stem}.json'}")
    if args.ship:  # through the library workflow: train_and_evaluate on the dataset's split + write_models
        from coreloss.workflow import ship
        bench = {f"benchmark_{k}" if k in ("test", "mean_spectrum_baseline") else k: v
                 for k, v in res.items() if k != "train"}
        run = ship(ds, forward=fm, metrics={"forward": bench}, dataset_path=args.data)
        print(f"shipped forward model (retrained by coreloss.workflow.ship; "
              f"{run.forward.metadata['train_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
