"""Benchmark the measured-data path: map throughput and label recovery vs SNR on synthetic images.

1. Throughput: a SIZE x SIZE synthetic EELS spectrum image (default 256 x 256 = 65,536 spectra,
   480-580 eV at 0.1 eV) through the full ``predict_measured`` pipeline (background fit, crop,
   onset, alignment, normalisation, network, OOD score); the network part is also timed alone.
2. Recovery: images built from held-out spectra (structures the model never saw) at several SNRs
   (edge-peak P / sqrt(P + B)), with power-law background and Poisson noise; per-label MAE of the
   maps against the true labels, next to the MAE of the model on the clean held-out spectra.

Data: ``--dataset`` (default ``runs/default_xtb.h5`` when it exists, else the seeded synthetic
generator of :mod:`coreloss.models.synthetic`, reported as such). Model: ``--model`` (its own
validation structures are the held-out set, reproduced from its saved seed/val_fraction), or else a
model trained here on 80 % of the structures (``--epochs``, ``--members``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_maps.py --size 256 --recovery-size 48
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def load_data(path):
    if path and Path(path).exists():
        from coreloss.dataset import load_dataset
        ds = load_dataset(path)
        return ds.X, ds.y, np.asarray(ds.structure_ids).astype(str), ds.grid, f"dataset {path}"
    from coreloss.models.synthetic import synthetic_dataset
    from coreloss.spectra import DEFAULT_GRID, align_to_grid, onset_energy
    X, y, g = synthetic_dataset(n_structures=60, sites_per_structure=8, seed=0)
    e = DEFAULT_GRID.energies  # align to the onset rule, as datasets are (contract 4)
    X = np.stack([align_to_grid(e, x, onset_energy(e, x), DEFAULT_GRID) for x in X])
    return X, y, np.asarray(g), DEFAULT_GRID, "synthetic generator (coreloss.models.synthetic, 480 sites)"


def get_model(args, X, y, groups):
    from coreloss.models.inverse import InverseModel
    from coreloss.models.rows import group_val_split
    if args.model:
        model = InverseModel.load(args.model)
        if model.metadata.get("bench_heldout_groups"):  # saved by this script with --save-model
            test = np.isin(groups, model.metadata["bench_heldout_groups"])
            return model, np.nonzero(test)[0], f"{args.model} (held out: {test.sum()} spectra)"
        split = (model.metadata.get("training_provenance") or {}).get("split") or {}
        if "test_fraction" in split:  # trained by `coreloss train` / bench_models: its fixed test structures
            from coreloss.evaluate import test_mask
            test = test_mask(groups, split["test_fraction"], split.get("seed", 0))
            return model, np.nonzero(test)[0], f"{args.model} (held out: its {test.sum()} test-set spectra)"
        p = model.metadata.get("params", {})
        tr, va = group_val_split(len(X), groups, p.get("val_fraction", 0.15), p.get("seed", 0))
        if model.metadata.get("n_val") != len(va):
            print(f"warning: model's validation size {model.metadata.get('n_val')} != {len(va)} reproduced "
                  "here; the held-out set may overlap its training data")
        return model, va, f"{args.model} (held out: its validation structures)"
    rng = np.random.default_rng(0)
    uniq = np.unique(groups)
    test_groups = rng.choice(uniq, size=max(1, len(uniq) // 5), replace=False)
    test = np.isin(groups, test_groups)
    t0 = time.perf_counter()
    import torch
    torch.set_num_threads(2)
    model = InverseModel(members=args.members, epochs=args.epochs, seed=0)
    model.fit(X[~test], y[~test], groups[~test])
    model.metadata["bench_heldout_groups"] = [str(g) for g in test_groups]
    return model, np.nonzero(test)[0], (f"trained here on {(~test).sum()} spectra / {len(uniq) - len(test_groups)} "
                                        f"structures ({args.members} x MLP, {args.epochs} epochs, "
                                        f"{time.perf_counter() - t0:.0f} s); held out {test.sum()} spectra / "
                                        f"{len(test_groups)} structures")


def throughput(model, X, y, grid, size, batch):
    from coreloss.measured import predict_measured
    from coreloss.measured.synthetic import synthetic_spectrum_image
    t0 = time.perf_counter()
    si, _ = synthetic_spectrum_image(X, y, grid, (size, size), snr=50, layout="field", seed=0)
    t_make = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    res = predict_measured(si, model, batch=batch, progress=True)
    t_all, c_all = time.perf_counter() - t0, time.process_time() - c0
    Xg = np.repeat(X, int(np.ceil(size * size / len(X))), axis=0)[: size * size]
    t0, c0 = time.perf_counter(), time.process_time()
    model.predict(Xg)
    model.ood_score(Xg)
    t_net, c_net = time.perf_counter() - t0, time.process_time() - c0
    n = size * size
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"n_spectra": n, "channels": int(si.energy.size), "synthesis_s": round(t_make, 2),
            "pipeline_s": round(t_all, 2), "network_s": round(t_net, 2),
            "preprocessing_s": round(t_all - t_net, 2), "spectra_per_s": round(n / t_all),
            "pipeline_cpu_s": round(c_all, 2), "network_cpu_s": round(c_net, 2),
            "load_average_1min": round(load, 2), "cpus": os.cpu_count(), "failed": int((~res.valid).sum())}


def recovery(model, X, y, grid, test, snrs, size, seed):
    from coreloss.measured import predict_measured
    from coreloss.measured.synthetic import synthetic_spectrum_image
    Xt, yt = X[test], y[test]
    mean0, _ = model.predict(Xt)
    rows = [{"snr": "direct (clean, aligned)", "mae": np.nanmean(np.abs(mean0 - yt), 0).tolist(),
             "failed": 0.0, "ood": float(model.ood_score(Xt)[1].mean()), "coverage": None}]
    for snr in snrs:
        si, truth = synthetic_spectrum_image(Xt, yt, grid, (size, size), snr=snr, layout="random", seed=seed)
        res = predict_measured(si, model)
        tl = truth["labels"].reshape(-1, yt.shape[1])
        ok = res.valid
        err = np.abs(res.mean[ok] - tl[ok])
        cover = np.nanmean(err <= res.std[ok], 0)
        rows.append({"snr": snr, "mae": np.nanmean(err, 0).tolist(), "failed": float((~ok).mean()),
                     "ood": float(res.ood[ok].mean()) if ok.any() else float("nan"),
                     "coverage": cover.tolist(), "measured_snr_median": float(np.nanmedian(res.snr[ok]))})
    return rows


def example_png(model, X, y, grid, test, path, size=64, snr=40.0, label="bond_length"):
    """README picture: true vs mapped property, its uncertainty, and the OOD / failed mask."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from coreloss.measured import predict_measured
    from coreloss.measured.synthetic import synthetic_spectrum_image
    si, truth = synthetic_spectrum_image(X[test], y[test], grid, (size, size), snr=snr, layout="field",
                                         n_bad=12, seed=3)
    res = predict_measured(si, model)
    j = model.label_names.index(label)
    unit = model.label_units[j]
    true, pred, std = truth["labels"][..., j], res.as_map(res.mean[:, j]), res.as_map(res.std[:, j])
    cat = np.where(~res.as_map(res.valid), 2, np.where(res.as_map(res.ood), 1, 0))
    fig, axs = plt.subplots(1, 4, figsize=(15, 3.6))
    vmin, vmax = np.nanpercentile(true, [1, 99])
    for ax, img, title, cmap in ((axs[0], true, f"true {label} ({unit})", "viridis"),
                                 (axs[1], pred, f"mapped {label} ({unit})", "viridis"),
                                 (axs[2], std, f"uncertainty 1σ ({unit})", "magma")):
        kw = {"vmin": vmin, "vmax": vmax} if cmap == "viridis" else {}
        im = ax.imshow(img, cmap=matplotlib.colormaps[cmap].with_extremes(bad="0.6"), **kw)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.85)
    axs[3].imshow(cat, cmap=matplotlib.colors.ListedColormap(["#4daf4a", "#e41a1c", "0.6"]), vmin=-0.5, vmax=2.5)
    axs[3].set_title("green ok / red OOD / grey failed", fontsize=9)
    fig.suptitle(f"synthetic {size}x{size} EELS spectrum image of held-out spectra, SNR {snr:g}, "
                 "power-law background; `coreloss map`", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="runs/default_xtb.h5")
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=256, help="throughput image is SIZE x SIZE (0: skip)")
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--recovery-size", type=int, default=48, help="recovery images are N x N (0: skip)")
    ap.add_argument("--snrs", default="200,100,50,20,10,5")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--save-model", default=None, help="save the model trained here (reuse with --model)")
    ap.add_argument("--example-png", default=None, help="write the README example picture here")
    args = ap.parse_args()
    X, y, groups, grid, source = load_data(args.dataset)
    model, test, model_desc = get_model(args, X, y, groups)
    print(f"data: {source}; {len(X)} spectra\nmodel: {model_desc}")
    if args.save_model and not args.model:
        model.save(args.save_model)
    out = {"data": source, "model": model_desc}
    if args.size:
        out["throughput"] = tp = throughput(model, X, y, grid, args.size, args.batch)
        print(f"\nthroughput {args.size}x{args.size} = {tp['n_spectra']} spectra x {tp['channels']} channels: "
              f"total {tp['pipeline_s']} s ({tp['spectra_per_s']} spectra/s), network+OOD {tp['network_s']} s, "
              f"pre-processing {tp['preprocessing_s']} s (synthesis {tp['synthesis_s']} s, not counted); "
              f"CPU time: pipeline {tp['pipeline_cpu_s']} s, network+OOD {tp['network_cpu_s']} s; "
              f"load average {tp['load_average_1min']} on {tp['cpus']} cores")
    if args.recovery_size:
        snrs = [float(s) for s in args.snrs.split(",")]
        out["recovery"] = rows = recovery(model, X, y, grid, test, snrs, args.recovery_size, seed=1)
        names = model.label_names
        print(f"\nrecovery on {args.recovery_size}x{args.recovery_size} images of held-out spectra: "
              "MAE per label (units " + ", ".join(model.label_units) + ")")
        print("| SNR | " + " | ".join(names) + " | failed | OOD | within ±1σ |")
        print("|---" * (len(names) + 4) + "|")
        for r in rows:
            cov = "-" if r["coverage"] is None else f"{np.mean(r['coverage']):.2f}"
            print(f"| {r['snr']} | " + " | ".join(f"{v:.3g}" for v in r["mae"])
                  + f" | {r['failed']:.1%} | {r['ood']:.1%} | {cov} |")
    if args.example_png:
        example_png(model, X, y, grid, test, args.example_png)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
