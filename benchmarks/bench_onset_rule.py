"""How much the onset rule's ``sustain_ev`` (crossing must hold that long) changes onsets.

Training spectra: the raw engine spectra stored in a dataset (``raw/*``), onset recomputed with
``sustain_ev`` 0 (the engines' former rule) and 0.5 eV (the measured path's former rule); also the
stored onsets. Measured-like spectra: synthetic images at several SNRs through ``preprocess_block``
with both values. Prints max/mean |difference| in eV and the share of spectra that move > 0.01 eV.

    OMP_NUM_THREADS=1 python benchmarks/bench_onset_rule.py --dataset datasets/sio2_xtb_gfn2_v2.h5
"""

from __future__ import annotations

import argparse
import dataclasses

import h5py
import numpy as np


def training(path):
    from coreloss.spectra import onset_energy
    with h5py.File(path, "r") as fh:
        start, step = fh["raw/energy_start"][:], fh["raw/energy_step"][:]
        raw = fh["raw/intensity"][:]
        stored = fh["onset"][:]
    d0, d5 = [], []
    for s, st, y in zip(start, step, raw):
        e = s + st * np.arange(len(y))
        a, b = onset_energy(e, y, sustain_ev=0.0), onset_energy(e, y, sustain_ev=0.5)
        d0.append(a)
        d5.append(b)
    d0, d5 = np.array(d0), np.array(d5)
    diff = np.abs(d5 - d0)
    print(f"training raw spectra (n={len(d0)}): |onset(sustain 0.5) - onset(sustain 0)| max {diff.max():.3g} eV, "
          f"mean {diff.mean():.3g} eV, > 0.01 eV: {np.mean(diff > 0.01):.2%}; "
          f"stored onsets vs sustain 0: max {np.abs(stored - d0).max():.3g} eV")


def measured(path, snrs):
    from coreloss.dataset import load_dataset
    from coreloss.measured import PreprocessConfig, load_model, predict_measured
    from coreloss.measured.synthetic import synthetic_spectrum_image
    ds = load_dataset(path)
    model = load_model()
    for snr in snrs:
        si, _ = synthetic_spectrum_image(ds.X, ds.y, ds.grid, (32, 32), snr=snr, onset_jitter_ev=1.0, seed=4)
        r = {}
        for sus in (0.0, 0.5):
            cfg = dataclasses.replace(PreprocessConfig(), onset_sustain_ev=sus)
            r[sus] = predict_measured(si, model, cfg)
        ok = r[0.0].valid & r[0.5].valid
        diff = np.abs(r[0.5].onset[ok] - r[0.0].onset[ok])
        dm = np.abs(r[0.5].mean[ok] - r[0.0].mean[ok]) / np.nanstd(ds.y, 0)
        print(f"synthetic 32x32 SNR {snr:g}: onset max {diff.max():.3g} eV, > 0.01 eV {np.mean(diff > 0.01):.2%}; "
              f"label change max {dm.max():.3g} training std; failed {(~r[0.0].valid).sum()} vs "
              f"{(~r[0.5].valid).sum()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="datasets/sio2_xtb_gfn2_v2.h5")
    ap.add_argument("--snrs", default="200,50,20,10")
    a = ap.parse_args()
    training(a.dataset)
    measured(a.dataset, [float(s) for s in a.snrs.split(",")])


if __name__ == "__main__":
    main()
