"""xtb linear algebra: one GFN2 ground-state SCF with tblite's bundled reference BLAS vs OpenBLAS.

Each (structure, library) pair runs in a fresh process (a shared library can only be swapped at
process start): ``CORELOSS_BLAS=bundled`` keeps tblite's own reference BLAS/LAPACK, the other run
gets the environment of ``coreloss.engines._blas.preload_environ`` (what Dask workers get). The
supercell is the engine's (8 Å). Prints a markdown table (seconds, speed-up, total-energy
difference) and writes ``benchmarks/results/xtb_blas.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_xtb_blas.py [--zeolites zeo-CHA zeo-SFH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {bench!r})
from bench_engines_xtb import zeolite
from coreloss.engines._blas import blas_in_use
from coreloss.engines._supercell import make_supercell
from coreloss.engines.xtb import XTBEngine
from coreloss.structures.reference import alpha_quartz, stishovite
name = {name!r}
def from_default_set(sid):
    from coreloss.structures import default_set_path
    from coreloss.structures.io import read_structure
    return read_structure(default_set_path(), sid)[1]
s = {{"alpha-quartz": alpha_quartz, "stishovite": stishovite}}.get(
    name, lambda: from_default_set(name) if name.startswith("zeo-") else zeolite(name))()
sc, _, _ = make_supercell(s, 0, 8.0)
eng = XTBEngine(method="GFN2-xTB")
t0 = time.perf_counter()
gs = eng.ground_state(sc)
print(json.dumps({{"atoms": len(s), "supercell_atoms": len(sc), "seconds": time.perf_counter() - t0,
                  "energy_eV": gs["energy"], "blas": blas_in_use()}}))
"""


def run_one(name: str, preload: bool) -> dict:
    from coreloss.engines._blas import preload_environ
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("LD_PRELOAD", None)
    if preload:
        extra = preload_environ(env)
        if not extra:
            raise SystemExit("no OpenBLAS to preload (or tblite does not bundle the reference BLAS)")
        env.update(extra)
    else:
        env["CORELOSS_BLAS"] = "bundled"
    code = CHILD.format(bench=str(ROOT / "benchmarks"), name=name)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"{name}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'failed'}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zeolites", nargs="*", default=["zeo-CHA", "zeo-SFH"],
                    help="ids of the embedded default set (zeo-XXX) or IZA codes (zeose database cell)")
    args = ap.parse_args()
    rows = []
    for name in ["alpha-quartz", *args.zeolites]:
        ref, fast = run_one(name, preload=False), run_one(name, preload=True)
        rows.append({"structure": name, "bundled": ref, "openblas": fast,
                     "speedup": ref["seconds"] / fast["seconds"],
                     "energy_difference_eV": abs(ref["energy_eV"] - fast["energy_eV"])})
        print(f"{name}: {ref['seconds']:.1f} s -> {fast['seconds']:.1f} s", flush=True)
    print("\n| structure | atoms (supercell) | reference BLAS s | OpenBLAS s | speed-up | |dE| (eV) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['structure']} | {r['bundled']['atoms']} ({r['bundled']['supercell_atoms']}) | "
              f"{r['bundled']['seconds']:.1f} | {r['openblas']['seconds']:.1f} | {r['speedup']:.1f}x | "
              f"{r['energy_difference_eV']:.1e} |")
    out = ROOT / "benchmarks" / "results" / "xtb_blas.json"
    out.write_text(json.dumps({"rows": rows, "method": "GFN2-xTB", "min_image_distance": 8.0,
                               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
