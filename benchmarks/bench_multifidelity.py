"""Multi-fidelity trial (issue 11): does pretraining on, or training with, xtb spectra help a DFT model?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_multifidelity.py \
        --dft datasets/sio2_gpaw_lcao.h5 --xtb datasets/sio2_xtb_gfn2_v2.h5 [--folds 5]

Models scored by group k-fold cross-validation on the DFT dataset (coreloss.evaluate.split_groups:
snapshots, relaxations and high-pressure cells of one parent stay on one side):

* ``dft``: trained on the DFT training folds only;
* ``xtb->dft``: the xtb-pretrained model fine-tuned on the same folds (``InverseModel(init=...)``);
* ``dft+xtb``: one model trained on the DFT training folds together with the xtb sites outside the
  fold's validation groups (the library rule, ``coreloss train --also``:
  :class:`coreloss.multifidelity.AuxiliaryRows`; DFT rows repeated to about half the xtb row count;
  the xtb electronic labels are masked, so those heads learn from DFT only; OOD on DFT rows only);
* ``dft+xtb, engine input``: the same rows, with the engine as a second input (the model's scalar
  side input, the one ``InverseModel(absolute_onset=True)`` uses for the absolute onset, holds
  ``ENGINE_INPUT`` = 0 for xtb rows and 5 for DFT rows; its 0.2 training jitter is small against
  that gap), so one network can learn what the engines share and where they differ; it predicts
  with the DFT value;
* ``xtb``: the xtb-pretrained model as it is (zero-shot on DFT spectra; geometric labels only mean
  the same thing across engines, the electronic ones are engine-specific).

The xtb pretraining never sees a structure group that occurs in the DFT dataset (so no DFT test
group leaks through it). Then both DFT models are trained on every DFT site and scored on the
plane-wave reference set (``--reference``, geometric labels; ``seen_group`` marks reference sites
whose group the model was trained on). Writes benchmarks/results/multifidelity.json and prints
markdown tables. The pretrained model is cached in work_data/ (git-ignored; rebuilt when absent).
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
from coreloss.evaluate import evaluate_transfer, group_kfold, regression_metrics, split_groups  # noqa: E402
from coreloss.labels import GEOMETRIC_LABELS, LABEL_NAMES  # noqa: E402
from coreloss.models.inverse import InverseModel  # noqa: E402
from coreloss.multifidelity import AuxiliaryRows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "multifidelity.json"


def pretrained(xtb, exclude_groups: set, args) -> Path:
    """The xtb model (cached by its settings and the excluded groups)."""
    key = f"m{args.members}-e{args.epochs}-h{'x'.join(map(str, args.hidden))}-n{len(exclude_groups)}"
    path = ROOT / "work_data" / f"mf_xtb_pretrained_{key}.pt"
    if path.is_file():
        return path
    g = split_groups(xtb)
    keep = ~np.isin(g, sorted(exclude_groups))
    print(f"pretraining on {keep.sum()} xtb sites of {len(np.unique(g[keep]))} groups "
          f"({(~keep).sum()} sites of DFT groups left out)", flush=True)
    m = InverseModel(members=args.members, epochs=args.epochs, hidden=tuple(args.hidden), seed=args.seed)
    m.fit(xtb.X[keep], xtb.y[keep], groups=g[keep], provenance={"dataset_provenance": xtb.provenance})
    path.parent.mkdir(exist_ok=True)
    m.save(path)
    return path


ENGINE_INPUT = {"xtb": 0.0, "dft": 5.0}


class AsEngine:
    """A model with an engine input, read as the DFT engine (for ``evaluate_transfer``)."""

    def __init__(self, model, value: float = ENGINE_INPUT["dft"]):
        self.model, self.value, self.metadata = model, value, model.metadata

    def predict(self, X, grid=None):
        return self.model.predict(X, grid=grid, onset=self.value)

    def ood_score(self, X, grid=None):
        return self.model.ood_score(X, grid=grid, onset=self.value)


def scored(model, ds, idx) -> dict:
    return regression_metrics(ds.y[idx], model.predict(ds.X[idx], grid=ds.grid)[0], LABEL_NAMES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dft", type=Path, default=ROOT / "datasets" / "sio2_gpaw_lcao.h5")
    ap.add_argument("--xtb", type=Path, default=ROOT / "datasets" / "sio2_xtb_gfn2_v2.h5")
    ap.add_argument("--reference", type=Path, default=ROOT / "datasets" / "sio2_pw_reference.h5")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--ft-epochs", type=int, default=80)
    ap.add_argument("--ft-lr", type=float, default=3e-4)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 128])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    dft, xtb = load_dataset(args.dft), load_dataset(args.xtb)
    if not dft.grid.matches(xtb.grid):
        raise SystemExit(f"error: grids differ: {dft.grid.to_dict()} vs {xtb.grid.to_dict()}")
    groups = split_groups(dft)
    pre = pretrained(xtb, set(groups), args)
    common = dict(members=args.members, hidden=tuple(args.hidden), seed=args.seed)
    makers = {"dft": lambda: InverseModel(epochs=args.epochs, **common),
              "xtb->dft": lambda: InverseModel(epochs=args.ft_epochs, lr=args.ft_lr, init=str(pre), **common)}
    folds = group_kfold(groups, min(args.folds, len(np.unique(groups))))
    if min(len(tr) for tr, _ in folds) < 20:
        raise SystemExit(f"error: {len(dft)} DFT sites in {len(np.unique(groups))} groups is too few for "
                         f"{len(folds)}-fold CV (a training fold has < 20 sites)")
    aux = AuxiliaryRows.from_dataset(xtb, str(dft.provenance.get("engine")), grid=dft.grid, source=args.xtb)
    makers["dft+xtb"] = makers["dft"]
    makers["dft+xtb, engine input"] = lambda: InverseModel(epochs=args.epochs, absolute_onset=True, **common)

    def fitted(name, X, y, g, held_out=()):
        """``name`` trained on DFT rows X, y, g (the joint ones: with the xtb rows outside ``held_out``)."""
        if not name.startswith("dft+xtb"):
            return makers[name]().fit(X, y, groups=g)
        Xj, yj, gj, primary = aux.joined(X, y, g, held_out=held_out)
        if name == "dft+xtb":
            return makers[name]().fit(Xj, yj, groups=gj, primary=primary)
        engine = np.where(primary, ENGINE_INPUT["dft"], ENGINE_INPUT["xtb"])
        return AsEngine(makers[name]().fit(Xj, yj, groups=gj, primary=primary, onset=engine))

    pred = {k: np.full(dft.y.shape, np.nan) for k in (*makers, "xtb")}
    zero_shot = InverseModel.load(pre)
    for k, (tr, te) in enumerate(folds):
        for name in makers:
            m = fitted(name, dft.X[tr], dft.y[tr], groups[tr], held_out=groups[te])
            pred[name][te] = m.predict(dft.X[te], grid=dft.grid)[0]
        pred["xtb"][te] = zero_shot.predict(dft.X[te], grid=dft.grid)[0]
        print(f"fold {k + 1}/{len(folds)} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    cv = {name: regression_metrics(dft.y, p, LABEL_NAMES) for name, p in pred.items()}
    for lab in set(LABEL_NAMES) - set(GEOMETRIC_LABELS):
        cv["xtb"][lab] = {"note": "engine-specific label: not comparable across engines"}
    transfer, on_xtb = {}, {}
    ref = load_dataset(args.reference) if args.reference.is_file() else None
    for name in makers:
        m = fitted(name, dft.X, dft.y, groups)
        if ref is not None:
            transfer[name] = evaluate_transfer(m, ref)["metrics"]
        if name == "dft":  # the DFT model on xtb spectra: geometric labels, OOD flags
            on_xtb = {k: v for k, v in evaluate_transfer(m, xtb)["metrics"].items()
                      if k in ("n_sites", "all", "unflagged", "ood_flag_rate")}
    if ref is not None:
        transfer["xtb"] = evaluate_transfer(zero_shot, ref)["metrics"]
    doc = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "args": {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "dft_sites": len(dft), "dft_groups": int(len(np.unique(groups))), "folds": len(folds),
        "cv": cv, "transfer": transfer, "dft_model_on_xtb": on_xtb, "seconds": round(time.perf_counter() - t0, 1)}
    OUT.write_text(json.dumps(doc, indent=1))
    print(f"\nGroup {len(folds)}-fold CV on {len(dft)} DFT sites / {doc['dft_groups']} groups: R2 (MAE)\n")
    print("| model | " + " | ".join(LABEL_NAMES) + " |\n|---|" + "---|" * len(LABEL_NAMES))
    for name, res in cv.items():
        cells = [f"{r['r2']:.3f} ({r['mae']:.3g})" if r.get("r2") is not None else "-" for r in res.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if transfer:
        print("\nPlane-wave reference set: MAE of bond length (Å), angle (deg), Voronoi volume (Å^3); flagged\n")
        print("| model | bond | angle | volume | OOD-flagged | seen-group sites |\n|---|---|---|---|---|---|")
        for name, m in transfer.items():
            a = m["all"]
            print(f"| {name} | {a['bond_length']['mae']:.4f} | {a['bond_angle']['mae']:.1f} | "
                  f"{a['voronoi_volume']['mae']:.2f} | {m['ood_flag_rate'] * m['n_sites']:.0f}/{m['n_sites']} | "
                  f"{m['seen_group_sites']} |")
    if on_xtb:
        a = on_xtb["all"]
        print(f"\nDFT model on the {on_xtb['n_sites']} xtb spectra: MAE bond {a['bond_length']['mae']:.4f} Å, "
              f"angle {a['bond_angle']['mae']:.1f} deg, volume {a['voronoi_volume']['mae']:.2f} Å^3; "
              f"OOD-flagged {100 * on_xtb['ood_flag_rate']:.0f} %")
    print(f"\nwrote {OUT} ({doc['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
