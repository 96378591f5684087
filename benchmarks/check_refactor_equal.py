"""Save or compare the outputs of the measured path (pre-processing + predictions) on fixed inputs.

Used to show that a refactor changes no result: run ``--save before.npz`` on the old code and
``--compare before.npz`` on the new one (max abs/rel differences per array are printed; exit 1 if
any exceeds ``--rtol``). Inputs: the ../shared/data/experimental files (with and without their
low-loss), a 64x64 synthetic image from the committed dataset (SNR 40, onset jitter, bad pixels),
the fixture CSVs, and the dataset spectra re-aligned with the training onset rule.

    OMP_NUM_THREADS=1 python benchmarks/check_refactor_equal.py --save /tmp/before.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT.parent / "shared" / "data" / "experimental"
FIX = ROOT / "tests" / "fixtures" / "measured"


def cases():
    from coreloss.dataset import load_dataset
    from coreloss.measured import read_measured
    from coreloss.measured.synthetic import synthetic_spectrum_image
    out = {}
    for name, ll in (("exspy_coreloss_spectrum.msa", "exspy_lowloss_spectrum.msa"),
                     ("LSMO_linescan.hspy", "LSMO_linescan_low_loss.hspy"),
                     ("LSMO_STO_linescan.hspy", "LSMO_STO_linescan_low_loss.hspy")):
        if (EXP / name).exists():
            out[name] = (read_measured(EXP / name), None)
            out[name + "+ll"] = (read_measured(EXP / name), read_measured(EXP / ll))
    for f in sorted(FIX.glob("xas_ok*")):
        out[f.name] = (read_measured(f), None)
    ds = load_dataset(ROOT / "datasets" / "sio2_xtb_gfn2_v2.h5")
    si, _ = synthetic_spectrum_image(ds.X, ds.y, ds.grid, (64, 64), snr=40, onset_jitter_ev=1.0,
                                     n_bad=30, seed=3)
    out["synthetic64"] = (si, None)
    return out, ds


def run():
    from coreloss.measured import load_model, predict_measured
    from coreloss.spectra import onset_energy
    model = load_model()
    res = {}
    cs, ds = cases()
    for name, (m, ll) in cs.items():
        r = predict_measured(m, model, lowloss=ll, keep_inputs=True)
        for key in ("mean", "std", "ood_score", "ood", "onset", "snr", "X"):
            res[f"{name}:{key}"] = np.asarray(getattr(r, key), float)
        res[f"{name}:reasons"] = np.asarray(r.reasons.astype(str))
    e = ds.grid.energies
    res["dataset:onset"] = np.array([onset_energy(e, x) for x in ds.X[:400]])
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save")
    ap.add_argument("--compare")
    ap.add_argument("--rtol", type=float, default=1e-9)
    a = ap.parse_args(argv)
    res = run()
    if a.save:
        np.savez_compressed(a.save, **res)
        print(f"saved {len(res)} arrays to {a.save}")
    if a.compare:
        ref = np.load(a.compare, allow_pickle=False)
        worst = 0.0
        for k in ref.files:
            old, new = ref[k], res.get(k)
            if new is None or old.shape != new.shape:
                print(f"{k}: MISSING or shape {None if new is None else new.shape} != {old.shape}")
                worst = np.inf
                continue
            if old.dtype.kind in "US":
                bad = int((old != new).sum())
                print(f"{k}: {bad} differing strings") if bad else None
                worst = max(worst, np.inf if bad else 0)
                continue
            same_nan = np.array_equal(np.isnan(old), np.isnan(new))
            ok = np.isfinite(old) & np.isfinite(new)
            d = np.abs(old[ok] - new[ok])
            scale = float(np.max(np.abs(old[ok]))) if d.size else 1.0
            rel = float(d.max() / scale) if d.size and scale > 0 else 0.0  # relative to the array's range
            worst = max(worst, rel if same_nan else np.inf)
            print(f"{k}: max abs {float(d.max()) if d.size else 0:.3g}, max rel to range {rel:.3g}, NaN pattern "
                  f"{'same' if same_nan else 'DIFFERS'}")
        print(f"worst relative difference: {worst:.3g}")
        return 0 if worst <= a.rtol else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
