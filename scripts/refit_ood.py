"""Refit a trained inverse model's OOD scores on its own training data (e.g. to add the spectrum kNN).

    PYTHONPATH=src .venv/bin/python scripts/refit_ood.py MODEL.pt DATA.h5 --out NEW.pt

The model's training rows are rebuilt from its metadata (the dataset's hash test split,
``training_provenance.split``; the validation structures from the model's ``val_fraction`` and
``seed``, as ``InverseModel.fit`` drew them), then ``InverseModel.fit_ood`` refits every OOD
score with the current code. The networks are not touched. As a check that the rows are the
model's own, the refitted PCA threshold must equal the stored one (same spectra, same noise
draws); otherwise nothing is written. A model trained with the absolute onset is refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from coreloss.dataset_store import load_dataset
from coreloss.models.inverse import InverseModel
from coreloss.workflow import training_rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("data", type=Path, help="the dataset the model was trained on")
    ap.add_argument("--also", type=Path, default=None,
                    help="the auxiliary dataset a model trained with `coreloss train --also` was given")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    if args.out.exists() and not args.overwrite and args.out.resolve() != args.model.resolve():
        print(f"error: {args.out} exists (use --overwrite)", file=sys.stderr)
        return 2
    m = InverseModel.load(args.model)
    if m.absolute_onset:
        print("error: models with the absolute onset are not supported", file=sys.stderr)
        return 2
    prov = m.metadata.get("training_provenance") or {}
    split = prov.get("split") or {}
    if bool(prov.get("auxiliary")) != (args.also is not None):
        print("error: pass --also exactly when the model was trained with auxiliary rows "
              f"(it records {prov.get('auxiliary', {}).get('source')})", file=sys.stderr)
        return 2
    ds = load_dataset(args.data)
    aux = None
    if args.also is not None:
        from coreloss.multifidelity import AuxiliaryRows
        aux = AuxiliaryRows.load(args.also, ds)
    frac = split.get("test_fraction")
    rows = training_rows(ds, None if frac is None else float(frac), int(split.get("seed", 0)), aux)
    X, g = rows.X, rows.groups
    tr, va, ood_tr, ood_cal = m.fit_rows(X, g, None if aux is None else rows.primary)
    if m.metadata.get("n_train") not in (None, len(tr)):
        print(f"error: {len(tr)} training rows rebuilt, the model was trained on {m.metadata['n_train']}: "
              "not this model's dataset or split", file=sys.stderr)
        return 1
    old_pca, old_names = m.ood_.threshold_, list(m.combined_ood_.names)
    m.fit_ood(X[ood_tr], X[ood_cal], groups_train=g[ood_tr])
    if not np.isclose(m.ood_.threshold_, old_pca, rtol=1e-9):
        print(f"error: PCA threshold {m.ood_.threshold_:.6g} != stored {old_pca:.6g}: the rebuilt rows are not "
              "the model's own; nothing written", file=sys.stderr)
        return 1
    m.metadata.setdefault("ood_refits", []).append({"scores_before": old_names, "scores": list(m.combined_ood_.names),
                                                    "script": "scripts/refit_ood.py", "data": str(args.data)})
    m.save(args.out)
    thr = dict(zip(m.combined_ood_.names, np.round(m.combined_ood_.thresholds_, 6).tolist()))
    print(f"refitted OOD of {args.model} on {len(tr)} training / {len(va)} validation spectra: "
          f"scores {old_names} -> {list(m.combined_ood_.names)}; thresholds {thr}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
