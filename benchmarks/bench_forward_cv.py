"""Forward model under group k-fold CV: every candidate against the mean spectrum and a linear model.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_forward_cv.py --data datasets/sio2_gpaw_lcao.h5 [--folds 5]

A fixed test split of a few structures is a noisy judge when the spectra are much alike (the
DFT spectra of SiO2 reach cosine ~0.97 with the mean training spectrum), so this scores the
forward model over all structures by group k-fold CV (``coreloss.evaluate.split_groups``):
each candidate of ``bench_forward.CANDIDATES`` (``ForwardModel``, SOAP + MLP), a linear baseline
(ridge regression from the standardised SOAP vector to the spectrum's deviation from the mean
training spectrum, clipped at 0 and area-normalised; ``--alphas``), and the mean training
spectrum. Pooled over folds: mean cosine, main-peak error (eV) and ``deviation_r2`` (the share
of the spectra's squared deviation from the fold's mean training spectrum that a predictor
explains; 0 = the mean spectrum). Writes benchmarks/results/forward_cv_<dataset stem>.json.
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
from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402

from bench_forward import CANDIDATES  # noqa: E402
from coreloss.dataset_store import load_dataset  # noqa: E402
from coreloss.evaluate import group_kfold, spectrum_metrics, split_groups  # noqa: E402
from coreloss.models.forward import ForwardModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def ridge_spectra(F_tr, X_tr, F_te, alpha: float, step: float) -> np.ndarray:
    """Linear SOAP -> spectrum baseline: ridge on the deviation from the mean training spectrum."""
    m, s = F_tr.mean(0), F_tr.std(0) + 1e-8
    mu = X_tr.mean(0)
    p = np.clip(Ridge(alpha=alpha).fit((F_tr - m) / s, X_tr - mu).predict((F_te - m) / s) + mu, 0.0, None)
    return p / np.trapezoid(p, dx=step, axis=1)[:, None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "sio2_gpaw_lcao.h5")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--alphas", type=float, nargs="*", default=[1e2, 1e3, 1e4])
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds = load_dataset(args.data)
    groups = split_groups(ds)
    sids = np.asarray(ds.structure_ids).astype(str)
    base = ForwardModel(grid=ds.grid)
    base._set_featurizer(ds.structures, sids)
    F = base.features(ds.structures, sids, ds.site_index)
    X = np.asarray(ds.X, float)
    names = ["mean training spectrum"] + [f"ridge alpha {a:g}" for a in args.alphas] + \
            [f"MLP {tuple(c['hidden'])} dropout {c['dropout']} wd {c['weight_decay']:g}" for c in CANDIDATES]
    pred = {n: np.full_like(X, np.nan) for n in names}
    ref = np.full_like(X, np.nan)  # each row's fold mean training spectrum
    for k, (tr, te) in enumerate(group_kfold(groups, args.folds)):
        mu = X[tr].mean(0)
        ref[te] = mu
        pred[names[0]][te] = mu
        for a, n in zip(args.alphas, names[1:1 + len(args.alphas)]):
            pred[n][te] = ridge_spectra(F[tr], X[tr], F[te], a, ds.grid.step)
        for c, n in zip(CANDIDATES, names[1 + len(args.alphas):]):
            fm = clone(base).set_params(**c, epochs=args.epochs, seed=0)
            fm.soap_, fm.featurizer_ = base.soap_, base.featurizer_
            fm._fit_features(F[tr], X[tr], n_structures=len(set(sids[tr].tolist())))
            pred[n][te] = fm.predict_features(F[te])
        print(f"fold {k + 1}/{args.folds} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    res = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "data": str(args.data),
           "engine": ds.provenance.get("engine"), "n_sites": len(ds), "n_groups": int(len(np.unique(groups))),
           "folds": args.folds, "epochs": args.epochs, "descriptor": base.soap_.to_dict(), "metrics": {}}
    print(f"\n{args.data}: {len(ds)} sites, {res['n_groups']} groups; group {args.folds}-fold CV, pooled\n")
    print("| predictor | cosine mean | cosine min | main-peak error (eV) | deviation R2 |\n|---|---|---|---|---|")
    for n in names:
        m = spectrum_metrics(X, pred[n], ds.grid, reference=ref)
        res["metrics"][n] = m
        print(f"| {n} | {m['cosine_mean']:.4f} | {m['cosine_min']:.4f} | {m['peak_abs_error_ev_mean']:.2f} | "
              f"{m['deviation_r2']:.3f} |")
    res["seconds"] = time.perf_counter() - t0
    out = ROOT / "benchmarks" / "results" / f"forward_cv_{args.data.stem}.json"
    out.write_text(json.dumps(res, indent=1, default=float))
    print(f"\nwrote {out} ({res['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
