"""Save or compare one xtb engine site (alpha-quartz O 4, GFN1-xTB, defaults otherwise).

Shows that a refactor of the engine code (e.g. physical constants taken from ``ase.units``) changes
its results only at numerical precision: ``--save a.npz`` on the old code, ``--compare a.npz`` on
the new one prints the max abs / rel difference of the spectrum, onset and each label.

    OMP_NUM_THREADS=1 python benchmarks/check_engine_equal.py --save /tmp/xtb_before.npz
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def run() -> dict:
    from coreloss.engines import get_engine
    from coreloss.structures.reference import alpha_quartz
    r = get_engine("xtb", method="GFN1-xTB").compute_site(alpha_quartz(), 4)
    out = {"energy": r.energy, "intensity": r.intensity, "onset": np.array(r.onset)}
    out.update({f"label:{k}": np.array(v) for k, v in r.labels.items()})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save")
    g.add_argument("--compare")
    ap.add_argument("--rtol", type=float, default=1e-6)
    a = ap.parse_args()
    res = run()
    if a.save:
        np.savez(a.save, **res)
        print(f"saved {len(res)} arrays to {a.save}")
        return 0
    ref = np.load(a.compare)
    worst = 0.0
    for k, v in res.items():
        old = ref[k]
        if old.shape != v.shape:
            print(f"{k}: shape {old.shape} -> {v.shape}")
            worst = np.inf
            continue
        d = float(np.max(np.abs(v - old))) if v.size else 0.0
        rel = d / max(float(np.max(np.abs(old))), 1e-300)
        worst = max(worst, rel)
        print(f"{k:28s} max abs {d:.3e}  rel {rel:.3e}")
    print(f"worst relative difference {worst:.3e} (rtol {a.rtol:g})")
    return 0 if worst <= a.rtol else 1


if __name__ == "__main__":
    sys.exit(main())
