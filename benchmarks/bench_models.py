"""Inverse-model benchmark: MLP vs 1-D CNN deep ensembles vs ridge / random forest / gradient boosting.

Same fixed held-out test structures (coreloss.evaluate.test_mask, 15 %) for every method; test spectra
get seeded Poisson noise at each SNR. Prints markdown tables and writes JSON to benchmarks/results/.

    .venv/bin/python benchmarks/bench_models.py --data runs/default_xtb.h5 [--select [--ship]] [--also AUX.h5]
    .venv/bin/python benchmarks/bench_models.py --synthetic 60      # no dataset: synthetic spectra

``--select`` chooses architecture, size and regularisation by group k-fold CV on the training
structures only (coreloss.models.tuning.cv_select over INVERSE_CANDIDATES) and scores that setup on
the test structures as "selected". ``--ship`` (needs ``--select``) retrains it through the library
workflow (coreloss.workflow.ship: train_and_evaluate on the dataset's hash split, then write_models)
into src/coreloss/data/inverse_model.pt, with these benchmark metrics in model_metrics.json (key
"inverse"). The test set is never used to choose what ships.
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

from coreloss.evaluate import interval_coverage, ood_rates, regression_metrics, test_mask  # noqa: E402
from coreloss.labels import LABEL_NAMES  # noqa: E402
from coreloss.models.baselines import fit_baseline  # noqa: E402
from coreloss.models.inverse import InverseModel, make_augmenter  # noqa: E402
from coreloss.models.tuning import mean_r2  # noqa: E402
from coreloss.spectra import DEFAULT_GRID, add_noise, normalise_area  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SNRS = (float("inf"), 50.0, 20.0, 10.0)
SHORT = {"bond_length": "d(O-X)", "bond_angle": "angle", "voronoi_volume": "V_vor", "bop": "BOP",
         "mulliken_charge": "q_O", "excitation_energy": "E_exc"}


def load(args):
    if args.synthetic:
        from coreloss.models.synthetic import synthetic_dataset
        X, y, g = synthetic_dataset(args.synthetic, 8, seed=0)
        return X, y, g, DEFAULT_GRID, {"engine": "synthetic", "n_structures": args.synthetic}
    from coreloss.dataset import load_dataset
    ds = load_dataset(args.data)
    from coreloss.evaluate import split_groups
    return ds.X, ds.y, split_groups(ds), ds.grid, ds.provenance  # groups: snapshots of a parent together


def noisy(X, snr, grid, seed=123):
    if not np.isfinite(snr):
        return X
    return np.nan_to_num(normalise_area(add_noise(X, snr, np.random.default_rng(seed)), grid.step))


def table(rows: dict, key: str) -> str:
    head = "| method | SNR | " + " | ".join(SHORT[n] for n in LABEL_NAMES) + " |"
    lines = [head, "|" + "---|" * (len(LABEL_NAMES) + 2)]
    for (method, snr), m in rows.items():
        vals = [m[n][key] for n in LABEL_NAMES]
        lines.append(f"| {method} | {snr:g} | " + " | ".join("n/a" if v is None else f"{v:.3g}" for v in vals) + " |")
    return "\n".join(lines)


def select(X, y, groups, grid, args, res, auxiliary=None) -> dict:
    """Parameters chosen by group k-fold CV on the training structures (coreloss.models.tuning)."""
    from coreloss.models.tuning import INVERSE_CANDIDATES, best_params, cv_select

    t0 = time.perf_counter()
    base = InverseModel(members=args.cv_members, epochs=args.epochs, seed=0, grid=grid)
    sel = cv_select(base, INVERSE_CANDIDATES, X, y, groups, n_splits=args.cv_folds, auxiliary=auxiliary,
                    progress=lambda i, c, s: print(f"  cv candidate {i}: {c} -> mean R2 {s:.3f}", flush=True))
    best = max(sel, key=lambda r: r["score"])
    res["selection"] = {"folds": args.cv_folds, "members": args.cv_members, "candidates": sel,
                        "chosen": best["params"], "seconds": time.perf_counter() - t0}
    print(f"### Parameter selection: group {args.cv_folds}-fold CV on training structures "
          f"({args.cv_members}-member ensembles, {time.perf_counter() - t0:.0f} s)\n")
    print("| candidate | " + " | ".join(SHORT[n] for n in LABEL_NAMES)
          + " | clean R2 | measured-like R2 | score |\n|" + "---|" * 10)
    for r in sel:
        mark = " (chosen)" if r is best else ""
        cells = " | ".join("n/a" if r["pooled"][n]["r2"] is None else f"{r['pooled'][n]['r2']:.3f}"
                           for n in LABEL_NAMES)
        print(f"| {r['params']} | {cells} | {r['score_clean']:.3f} | {r['score_degraded']:.3f} | "
              f"{r['score']:.3f}{mark} |")
    print()
    return best_params(sel)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "runs" / "default_xtb.h5"))
    ap.add_argument("--synthetic", type=int, default=0, help="use N synthetic structures instead")
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--archs", default="mlp,cnn")
    ap.add_argument("--baselines", default="ridge,rf,gbr")
    ap.add_argument("--n-infer", type=int, default=65536)
    ap.add_argument("--select", action="store_true",
                    help="choose the network's parameters by group k-fold CV on training structures "
                         "(coreloss.models.tuning); trained and scored as 'selected'")
    ap.add_argument("--cv-folds", type=int, default=5)
    ap.add_argument("--cv-members", type=int, default=3, help="ensemble size during --select")
    ap.add_argument("--ship", action="store_true", help="ship the --select choice (needs --select)")
    ap.add_argument("--also", default=None,
                    help="auxiliary dataset of another engine joined to the networks' training rows "
                         "(coreloss.multifidelity; as `coreloss train --also`); baselines: --data only")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the inference timing")
    args = ap.parse_args()
    if args.ship and not args.select:
        raise SystemExit("--ship needs --select: the shipped setup is chosen by CV on training structures, "
                         "never by the test set")

    X, y, groups, grid, prov = load(args)
    te = test_mask(groups, 0.15, seed=0)
    n_struct = len(np.unique(groups))
    print(f"dataset: {len(X)} sites, {n_struct} structures ({prov.get('engine')}); test: {te.sum()} sites of "
          f"{len(np.unique(groups[te]))} structures\n")
    res = {"dataset": {"path": None if args.synthetic else args.data, "n_sites": int(len(X)),
                       "n_structures": int(n_struct), "n_test_sites": int(te.sum()),
                       "n_test_structures": int(len(np.unique(groups[te]))), "provenance": prov},
           "r2": {}, "mae": {}, "train_seconds": {}, "coverage_95": {}, "ood": {}, "inference": {}}
    rows_r2, rows_mae, models = {}, {}, {}
    aux = aux_all = None
    if args.also:
        from coreloss.dataset import load_dataset
        from coreloss.multifidelity import AuxiliaryRows
        aux_all = AuxiliaryRows.from_dataset(load_dataset(args.also), str(prov.get("engine")), grid=grid,
                                             source=args.also)  # shipping leaves the test groups out itself
        aux = aux_all.without(groups[te])
        res["auxiliary"] = aux.record(len(aux.X))
        print(f"auxiliary: {len(aux.X)} {aux.engine} sites outside the test structures join the networks' "
              f"training rows\n")
    setups = {arch: {"arch": arch, "hidden": (256, 128) if arch == "mlp" else (128,)}
              for arch in args.archs.split(",") if arch}
    if args.select:
        setups["selected"] = select(X[~te], y[~te], groups[~te], grid, args, res, aux)
    for arch, setup in setups.items():
        t0 = time.perf_counter()
        model = InverseModel(members=args.members, epochs=args.epochs, seed=0, grid=grid, **setup)
        rows = (X[~te], y[~te], groups[~te], None) if aux is None else aux.joined(X[~te], y[~te], groups[~te])
        model.fit(*rows[:3], primary=rows[3], provenance={"dataset_provenance": prov,
                                                          "split": {"test_fraction": 0.15, "seed": 0}})
        res["train_seconds"][arch] = time.perf_counter() - t0
        models[arch] = model
        for snr in SNRS:
            mean, std = model.predict(noisy(X[te], snr, grid))
            m = regression_metrics(y[te], mean)
            rows_r2[(arch, snr)] = m
            res["r2"][f"{arch}@{snr:g}"] = {k: v["r2"] for k, v in m.items()}
            res["mae"][f"{arch}@{snr:g}"] = {k: v["mae"] for k, v in m.items()}
            res["coverage_95"][f"{arch}@{snr:g}"] = interval_coverage(y[te], mean, std)
        res["ood"][arch] = ood_rates(model, X[te], grid)
        Xbig = X[np.random.default_rng(0).integers(len(X), size=args.n_infer)]
        torch.set_num_threads(args.threads)
        t0 = time.perf_counter()
        model.predict(Xbig)
        t_pred = time.perf_counter() - t0
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        model.ood_score(Xbig)
        res["inference"][arch] = {"n_spectra": args.n_infer, "members": args.members,
                                  "predict_seconds": t_pred, "threads": args.threads, "ood_seconds": time.perf_counter() - t0}
    # baselines see the same augmentation as the networks: the clean training set plus one
    # noisy/shifted copy per finite training SNR (coreloss.models.inverse.make_augmenter)
    rng = np.random.default_rng(0)
    aug = make_augmenter(grid, [s for s in SNRS if np.isfinite(s)], 0.3)
    X_aug = np.concatenate([X[~te]] + [aug(X[~te], rng) for _ in range(3)])
    y_aug = np.concatenate([y[~te]] * 4)
    res["baseline_training"] = "clean + 3 augmented copies (random SNR 50/20/10 Poisson, +-0.3 eV shift)"
    for name in [b for b in args.baselines.split(",") if b]:
        t0 = time.perf_counter()
        base = fit_baseline(name, X_aug, y_aug, n_jobs=1)
        res["train_seconds"][name] = time.perf_counter() - t0
        for snr in SNRS:
            m = regression_metrics(y[te], base.predict(noisy(X[te], snr, grid)))
            rows_r2[(name, snr)] = m
            res["r2"][f"{name}@{snr:g}"] = {k: v["r2"] for k, v in m.items()}
            res["mae"][f"{name}@{snr:g}"] = {k: v["mae"] for k, v in m.items()}
    rows_mae = rows_r2
    print("### R2 on held-out structures (test spectra with Poisson noise at SNR)\n")
    print(table(rows_r2, "r2") + "\n")
    print("### MAE (label units: Å, deg, Å^3, e, e, eV)\n")
    print(table(rows_mae, "mae") + "\n")
    print("### 95% interval coverage (after per-label variance recalibration on validation structures)\n")
    print("| model@SNR | " + " | ".join(SHORT[n] for n in LABEL_NAMES) + " |\n|" + "---|" * 7)
    for k, v in res["coverage_95"].items():
        print(f"| {k} | " + " | ".join("n/a" if v[n] is None else f"{v[n]:.2f}" for n in LABEL_NAMES) + " |")
    print("\n### OOD flag rate (threshold: 99th percentile of noise-augmented validation spectra)\n")
    for arch, v in res["ood"].items():
        print(f"- {arch}: " + ", ".join(f"{k} {val:.3f}" for k, val in v.items()))
    print(f"\n### Training (1 torch thread) and inference ({args.threads} thread(s)) time\n")
    for k, v in res["train_seconds"].items():
        print(f"- train {k}: {v:.1f} s")
    for arch, v in res["inference"].items():
        print(f"- predict {v['n_spectra']} spectra, {v['members']}-member {arch} ensemble: "
              f"{v['predict_seconds']:.2f} s (+ OOD score {v['ood_seconds']:.2f} s)")

    best = max(models, key=lambda a: mean_r2(rows_r2[(a, float("inf"))])) if models else None
    res["best_network"] = best  # by test R2: reported, never used to choose what ships
    res["shipped_setup"] = "selected" if args.select else None
    res["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    tag = "synthetic" if args.synthetic else Path(args.data).stem + (f"+{Path(args.also).stem}" if aux else "")
    (out / f"models_{tag}.json").write_text(json.dumps(res, indent=2, default=float))
    print(f"\nbest network (mean test R2, clean): {best}; wrote {out / f'models_{tag}.json'}")
    if args.ship:
        best = "selected"
        if args.synthetic:
            raise SystemExit("--ship needs --data (a dataset), not --synthetic")
        from coreloss.dataset import load_dataset
        from coreloss.workflow import ship
        bench = {"arch": models[best].arch, "dataset": res["dataset"], "benchmark_test_r2_by_snr": res["r2"],
                 "benchmark_test_mae_by_snr": res["mae"], "benchmark_coverage_95": res["coverage_95"],
                 "benchmark_ood": res["ood"][best], "params": models[best].param_record(),
                 "selection": res.get("selection"),
                 "created": res["created"]}
        ds = load_dataset(args.data)
        run = ship(ds, inverse=models[best], metrics={"inverse": bench}, dataset_path=args.data,
                   auxiliary=aux_all)
        print(f"shipped inverse model ({best}, retrained by coreloss.workflow.ship; "
              f"{run.inverse.metadata['train_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
