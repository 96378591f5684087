"""How stable is the OOD flag from one training run to the next, and does a wider calibration help?

    PYTHONPATH=src .venv/bin/python benchmarks/bench_ood_stability.py --data datasets/sio2_gpaw_lcao.h5 \
        --other datasets/sio2_xtb_gfn2_dft_sites.h5 --reference datasets/sio2_pw_reference.h5 --seeds 0 1 2

Trains the inverse model (``--arch``/``--members``/``--epochs``) on the training structures of the
fixed hash split (``coreloss.evaluate.test_mask``, 15 %) with several seeds (the seed sets the
initialisation, the batches and which training groups become the validation structures), and
reports the fraction flagged of: held-out structures' spectra (clean), the other engine's
spectra (``--other``; e.g. xtb spectra of the same sites), a reference set (``--reference``;
the plane-wave spectra) and random spectra. Two calibrations of the latent-kNN threshold, from
the same trained model:

* ``validation``: the model's own (the quantile of clean + noisy validation spectra; with ~46
  structure groups the validation split holds ~7 of them);
* ``+ leave-group-out``: the same target rate over the validation spectra together with every
  training spectrum scored against the training spectra of the *other* groups (a site's own
  structure group excluded from its neighbours), so the threshold rests on every group.

A model-independent score is reported beside them (``spectrum kNN``): one minus the mean cosine
of a spectrum, smoothed with a Gaussian of ``--smooth-ev`` (sigma, eV) against Poisson noise, with
its ``k`` = 3 most similar smoothed training spectra; threshold at the same target rate over the
validation spectra (clean + noisy) and the leave-group-out training spectra.

Writes benchmarks/results/ood_stability.json.
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
from coreloss.evaluate import split_groups, test_mask  # noqa: E402
from coreloss.models.augment import Augmenter, degrade  # noqa: E402
from coreloss.models.inverse import InverseModel, _group_val_split  # noqa: E402
from coreloss.models.ood import OOD_SCORES, CombinedOOD  # noqa: E402
from coreloss.spectra import add_noise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KNN = OOD_SCORES.index("latent_knn")
CALIBRATIONS = ("validation", "+ leave-group-out", "spectrum kNN", "spectrum kNN, augmented calibration")


def logo_knn(model: InverseModel, X_tr, groups_tr) -> np.ndarray:
    """Latent-kNN score of each training spectrum against the training spectra of other groups."""
    knn = model.latent_
    z = (knn._cat(model.ensemble_.predict_full(model._inputs(X_tr))["latent"]) - knn.mean_) @ knn.proj_
    ref = knn.ref_.astype(float)
    if len(ref) != len(z):
        raise SystemExit("error: the latent reference set is not the training spectra in order")
    d2 = np.maximum(np.sum(z**2, 1)[:, None] + np.sum(ref**2, 1)[None, :] - 2 * z @ ref.T, 0.0)
    d2[groups_tr[:, None] == groups_tr[None, :]] = np.inf
    k = knn.k
    return np.sqrt(np.partition(d2, k - 1, axis=1)[:, :k]).mean(axis=1)


def widened(model: InverseModel, X_fit, groups_fit) -> CombinedOOD:
    """The model's combined OOD with the kNN threshold calibrated on validation + leave-group-out."""
    tr, va = _group_val_split(len(X_fit), groups_fit, model.val_fraction, model.seed)
    rng = np.random.default_rng(model.seed + 7)  # the same noisy copies as InverseModel.fit_ood
    Xn = Augmenter(model.grid, ("noise",), tuple(model.snrs), noise_kind=model.noise_kind)(X_fit[va], rng)
    comp_val = model._ood_components(np.concatenate([X_fit[va], Xn]))
    comp_tr = model._ood_components(X_fit[tr])
    comp_tr[:, KNN] = logo_knn(model, X_fit[tr], groups_fit[tr])
    return CombinedOOD.fit(np.concatenate([comp_val, comp_tr]), target_rate=model.ood_target_rate,
                           fixed={"pca": model.ood_.threshold_})


class SpectrumKNN:
    """1 - mean cosine with the ``k`` most similar smoothed training spectra (model-independent)."""

    def __init__(self, X_train, groups, sigma_points: float, k: int = 3):
        self.sigma, self.k = float(sigma_points), int(k)
        self.ref_, self.groups_ = self._unit(X_train), np.asarray(groups).astype(str)

    def _unit(self, X) -> np.ndarray:
        from scipy.ndimage import gaussian_filter1d
        Z = gaussian_filter1d(np.asarray(X, float), self.sigma, axis=1, mode="nearest")
        return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-30)

    def score(self, X, exclude_groups=None) -> np.ndarray:
        c = self._unit(X) @ self.ref_.T
        if exclude_groups is not None:
            c[np.asarray(exclude_groups).astype(str)[:, None] == self.groups_[None, :]] = -np.inf
        return 1.0 - np.sort(c, axis=1)[:, -self.k:].mean(axis=1)


def spectrum_knn(model: InverseModel, X_fit, groups_fit, smooth_ev: float, training_augmentation: bool = False):
    """(:class:`SpectrumKNN` on the model's training spectra, its threshold). The validation copies
    carry noise only, or (``training_augmentation``) the model's whole training augmentation."""
    tr, va = _group_val_split(len(X_fit), groups_fit, model.val_fraction, model.seed)
    knn = SpectrumKNN(X_fit[tr], groups_fit[tr], smooth_ev / model.grid.step)
    rng = np.random.default_rng(model.seed + 7)
    aug = model.make_augmenter() if training_augmentation else \
        Augmenter(model.grid, ("noise",), tuple(model.snrs), noise_kind=model.noise_kind)
    Xn = aug(X_fit[va], rng)
    cal = np.concatenate([knn.score(np.concatenate([X_fit[va], Xn])), knn.score(X_fit[tr], groups_fit[tr])])
    return knn, float(np.quantile(cal, 1.0 - model.ood_target_rate))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "sio2_gpaw_lcao.h5")
    ap.add_argument("--other", type=Path, nargs="*", default=[ROOT / "datasets" / "sio2_xtb_gfn2_dft_sites.h5"])
    ap.add_argument("--reference", type=Path, default=ROOT / "datasets" / "sio2_pw_reference.h5")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arch", default="mlp", choices=("mlp", "cnn"))
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--smooth-ev", type=float, default=0.5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds = load_dataset(args.data)
    groups = split_groups(ds)
    te = test_mask(groups, 0.15, seed=0)
    noise_rng = np.random.default_rng(1)
    sets = {"held-out structures (clean)": ds.X[te],
            "held-out structures (SNR 10, Poisson)": add_noise(ds.X[te], 10.0, noise_rng),
            "held-out structures, every degradation (SNR 30)": degrade(ds.X[te], ds.grid, "all", seed=123)}
    for p in args.other:
        o = load_dataset(p)
        sets[f"{o.provenance.get('engine')} spectra ({p.name})"] = o.X
    if args.reference and args.reference.is_file():
        sets[f"reference set ({args.reference.name})"] = load_dataset(args.reference).X
    rng = np.random.default_rng(0)
    rand = np.abs(rng.normal(size=(200, ds.grid.n))).cumsum(axis=1)[:, ::-1]
    sets["random spectra"] = rand / np.trapezoid(rand, dx=ds.grid.step, axis=1)[:, None]
    hidden = (256, 128) if args.arch == "mlp" else (128,)
    runs = []
    for seed in args.seeds:
        m = InverseModel(arch=args.arch, hidden=hidden, members=args.members, epochs=args.epochs, seed=seed)
        m.fit(ds.X[~te], ds.y[~te], groups=groups[~te], provenance=ds.provenance)
        wide = widened(m, ds.X[~te], groups[~te])
        sknn, s_thr = spectrum_knn(m, ds.X[~te], groups[~te], args.smooth_ev)
        _, s_thr_aug = spectrum_knn(m, ds.X[~te], groups[~te], args.smooth_ev, training_augmentation=True)
        run = {"seed": seed, "knn_threshold": {"validation": float(m.combined_ood_.thresholds_[KNN]),
                                               "+ leave-group-out": float(wide.thresholds_[KNN])}, "flagged": {}}
        for name, X in sets.items():
            comp = m._ood_components(X)
            run["flagged"][name] = {"validation": float(np.mean(m.combined_ood_.combine(comp)[1])),
                                    "+ leave-group-out": float(np.mean(wide.combine(comp)[1])),
                                    "spectrum kNN": float(np.mean(sknn.score(X) > s_thr)),
                                    "spectrum kNN, augmented calibration": float(np.mean(sknn.score(X) > s_thr_aug))}
        runs.append(run)
        print(f"seed {seed} ({time.perf_counter() - t0:.0f} s): " + "; ".join(
            f"{n}: " + " / ".join(f"{v[c]:.0%}" for c in CALIBRATIONS) for n, v in run["flagged"].items()), flush=True)
    print(f"\n{len(ds)} sites ({te.sum()} held out); {args.arch}, {args.members} members; fraction flagged, "
          "min-max over seeds\n\n| spectra | n | validation calibration | + leave-group-out |\n|---|---|---|---|")
    for name, X in sets.items():
        cells = []
        for cal in CALIBRATIONS:
            v = [r["flagged"][name][cal] for r in runs]
            cells.append(f"{min(v):.0%}-{max(v):.0%} (" + ", ".join(f"{x:.0%}" for x in v) + ")")
        print(f"| {name} | {len(X)} | " + " | ".join(cells) + " |")
    res = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "data": str(args.data),
           "n_sites": len(ds), "n_test": int(te.sum()),
           "model": {"arch": args.arch, "members": args.members, "epochs": args.epochs},
           "spectrum_knn": {"k": 3, "smooth_sigma_ev": args.smooth_ev}, "runs": runs,
           "seconds": time.perf_counter() - t0}
    out = ROOT / "benchmarks" / "results" / "ood_stability.json"
    out.write_text(json.dumps(res, indent=1))
    print(f"\nwrote {out} ({res['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
