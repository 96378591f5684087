"""make demo, step 1: a synthetic spectrum image of spectra the shipped model never saw, and its score.

    python scripts/demo_heldout.py image DATA.h5 OUT.hspy [--model M.pt] [--size 32] [--snr 40]
    python scripts/demo_heldout.py score OUT.hspy MAPDIR      # after `coreloss map OUT.hspy --out MAPDIR`

``image`` takes the test structures of the model's own split (``metadata.training_provenance.split``,
coreloss.evaluate.test_mask) and builds a spectrum image from their spectra (coreloss.measured.synthetic:
power-law background, Poisson noise at SNR, onset jitter); truth labels go into the file.
``score`` reads the maps `coreloss map` wrote and prints, per label, the error against the truth
(MAE, R2, share of pixels within 2 sigma) on the pixels not flagged out of distribution, and draws
truth | prediction | |error| panels (MAPDIR/<stem>_vs_truth.png).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np


def image(a) -> None:
    from coreloss.dataset import load_dataset
    from coreloss.evaluate import split_groups, test_mask
    from coreloss.measured.synthetic import synthetic_spectrum_image, write_hspy
    from coreloss.models import default_inverse_model_path
    from coreloss.models.inverse import InverseModel

    model = InverseModel.load(a.model or default_inverse_model_path())
    split = model.metadata.get("training_provenance", {}).get("split") or {}
    if not split.get("test_fraction"):
        raise SystemExit("error: the model records no held-out split (trained with --include-test)")
    ds = load_dataset(a.data)
    te = test_mask(split_groups(ds), split["test_fraction"], int(split.get("seed", 0)))  # the model's split
    si, truth = synthetic_spectrum_image(ds.X[te], ds.y[te], ds.grid, (a.size, a.size), a.snr,
                                         onset_jitter_ev=0.5, seed=a.seed)
    write_hspy(si, a.out, truth, list(ds.label_names), overwrite=True)
    print(f"wrote {a.out}: {a.size}x{a.size} pixels from {int(te.sum())} spectra of "
          f"{len(np.unique(ds.structure_ids[te]))} held-out structures, SNR {a.snr:g}")


def _load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
        return hs.load(str(path))


def score(a) -> int:
    from coreloss.evaluate import regression_metrics
    from coreloss.labels import LABEL_UNITS

    img = _load(a.image)
    t = img.original_metadata.truth
    names = list(t.label_names)
    truth = np.asarray(t.labels, float)  # (ny, nx, 6)
    stem, mapdir = Path(a.image).stem, Path(a.mapdir)
    def stack(kind):  # {quantity name: (ny, nx) map} of a file save_maps wrote
        sig = _load(mapdir / f"{stem}_{kind}.hspy")
        return dict(zip(list(sig.original_metadata.coreloss.quantities), np.asarray(sig.data, float)))

    means, sds, flags = stack("properties"), stack("uncertainty"), stack("ood")
    pred = np.stack([means[n] for n in names], axis=-1)
    std = np.stack([sds[f"{n}_std"] for n in names], axis=-1)
    ok = np.isfinite(pred).all(axis=-1) & (flags["ood"] == 0) & (flags["failed"] == 0)
    m = regression_metrics(truth[ok], pred[ok], names)
    print(f"{int(ok.sum())} of {ok.size} pixels in distribution; error against the known truth:")
    print(f"  {'label':18s} {'MAE':>9s} {'unit':5s} {'R2':>6s} {'within 2 sigma':>15s}")
    for j, n in enumerate(names):
        r2 = "n/a" if m[n]["r2"] is None else f"{m[n]['r2']:.2f}"
        cov = np.mean(np.abs(pred[ok, j] - truth[ok, j]) <= 2 * std[ok, j])
        print(f"  {n:18s} {m[n]['mae']:9.3g} {LABEL_UNITS.get(n, ''):5s} {r2:>6s} {cov:15.0%}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(len(names), 3, figsize=(8, 2.3 * len(names)))
    for j, n in enumerate(names):
        err = np.where(ok, np.abs(pred[..., j] - truth[..., j]), np.nan)
        lo, hi = np.nanmin(truth[..., j]), np.nanmax(truth[..., j])
        for ax, im, title, kw in ((axs[j, 0], truth[..., j], f"{n}: truth", {"vmin": lo, "vmax": hi}),
                                  (axs[j, 1], np.where(ok, pred[..., j], np.nan), "prediction (OOD blank)",
                                   {"vmin": lo, "vmax": hi}),
                                  (axs[j, 2], err, f"|error| ({LABEL_UNITS.get(n, '')})", {"cmap": "magma"})):
            h = ax.imshow(im, **kw)
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
            fig.colorbar(h, ax=ax, fraction=0.046)
    fig.tight_layout()
    out = mapdir / f"{stem}_vs_truth.png"
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("image")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--model")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--snr", type=float, default=40.0)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("score")
    p.add_argument("image")
    p.add_argument("mapdir")
    a = ap.parse_args(argv)
    if a.cmd == "image":
        image(a)
        return 0
    return score(a)


if __name__ == "__main__":
    sys.exit(main())
