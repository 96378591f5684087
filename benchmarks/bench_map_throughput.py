"""Map throughput and peak memory of ``coreloss map`` on synthetic spectrum-image files.

For each SIZE, a SIZE x SIZE x 2048-channel float32 EELS spectrum image (400-604.7 eV at 0.1 eV,
power-law background, O K edges of the committed dataset's spectra, Poisson noise at SNR 50) is
written once as ``.hspy`` under ``--workdir``. Then, in a fresh process each:

* ``map``: the real ``coreloss map FILE --out DIR`` (shipped model): wall time, the stage sums
  recorded in the result's provenance (reading, pre-processing, network + OOD; summed over blocks
  and threads) and the peak resident memory (``ru_maxrss``) of that process;
* ``bare``: one bare numpy pass over the same data: the same energy window read from the same file
  block by block (h5py) and converted to float64 with a sum over channels, in the same process
  kind, for the ratio ``map / bare``.

    OMP_NUM_THREADS=1 nice python benchmarks/bench_map_throughput.py --sizes 64,256,512 \\
        --workdir /tmp/coreloss_bench --json benchmarks/results/map_throughput.json

``--src DIR`` runs the children with ``PYTHONPATH=DIR`` (e.g. an older checkout's ``src``), to
compare code versions under the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
AXIS = (400.0, 0.1, 2048)


def make_image(size: int, path: Path) -> None:
    """Write the SIZE x SIZE synthetic image (``coreloss synthetic-image``'s generator)."""
    import warnings
    warnings.simplefilter("ignore")

    from coreloss.dataset import load_dataset
    from coreloss.measured.synthetic import synthetic_spectrum_image, write_hspy
    ds = load_dataset(ROOT / "datasets" / "sio2_xtb_gfn2_v2.h5")
    si, truth = synthetic_spectrum_image(ds.X, ds.y, ds.grid, (size, size), snr=50, energy_axis=AXIS, seed=0)
    write_hspy(si, path, overwrite=True, compression=None)  # raw float32, as acquired


def peak_rss_mb() -> int:
    """Peak resident memory of this process (VmHWM; ru_maxrss would inherit the parent's across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def child_map(path: str, out: str, workers: str = "") -> dict:
    from coreloss.cli import main
    sys.argv = ["coreloss", "map", path, "--out", out, "--overwrite"] + (["--workers", workers] if workers else [])
    import contextlib
    import io
    import re
    t0, buf = time.perf_counter(), io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            main()
    except SystemExit as exc:
        if exc.code:
            raise
    wall = time.perf_counter() - t0
    found = re.search(r"in ([0-9.]+) s", buf.getvalue())  # "mapped N spectra (...) in X s": read + predict
    pipeline = float(found.group(1)) if found else None
    import h5py
    timing = {}
    props = Path(out) / f"{Path(path).stem}_properties.hspy"
    with h5py.File(props, "r") as fh:
        om = fh["Experiments"][list(fh["Experiments"])[0]]["original_metadata"]["coreloss"]
        prov = json.loads(om.attrs["provenance"])
        timing = prov.get("timing", {})
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2), **timing,
            "pipeline_s": pipeline, "peak_rss_MB": peak_rss_mb()}


def child_bare(path: str) -> dict:
    import h5py
    t0 = time.perf_counter()
    with h5py.File(path, "r") as fh:
        grp = fh["Experiments"][list(fh["Experiments"])[0]]
        d = grp["data"]
        e = AXIS[0] + AXIS[1] * np.arange(AXIS[2])
        lo, hi = np.searchsorted(e, 497.0), np.searchsorted(e, 582.0, side="right")  # the map's read window
        total = 0.0
        rows = max(1, 4096 // d.shape[1])
        for y0 in range(0, d.shape[0], rows):
            total += float(np.asarray(d[y0:y0 + rows, :, lo:hi], np.float64).sum())
    return {"bare_s": round(time.perf_counter() - t0, 3), "channels": int(hi - lo), "checksum": total,
            "peak_rss_MB": peak_rss_mb()}


def run_child(args: list[str], src: str | None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = src or str(ROOT / "src")
    p = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,256,512")
    ap.add_argument("--workdir", default="/tmp/coreloss_bench")
    ap.add_argument("--src", default=None, help="PYTHONPATH of the children (default: this checkout's src)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workers", default="", help="--workers of `coreloss map` (default: its own)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "make":
            make_image(int(rest[0]), Path(rest[1]))
            print("{}")
        else:
            print(json.dumps(child_map(*rest) if kind == "map" else child_bare(*rest)))
        return
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in (int(s) for s in a.sizes.split(",")):
        img = work / f"si_{size}.hspy"
        if not img.exists():
            t0 = time.perf_counter()
            run_child(["--child", "make", str(size), str(img)], None)
            print(f"wrote {img} ({img.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t0:.0f} s")
        for _ in range(a.repeat):
            out = work / f"maps_{size}"
            shutil.rmtree(out, ignore_errors=True)
            bare = run_child(["--child", "bare", str(img)], None)  # also brings the file into the page cache
            m = run_child(["--child", "map", str(img), str(out)] + ([a.workers] if a.workers else []), a.src)
            again = run_child(["--child", "bare", str(img)], None)
            bare = min((bare, again), key=lambda b: b["bare_s"])
            row = {"size": size, "spectra": size * size, "file_GiB": round(img.stat().st_size / 2**30, 3),
                   **m, "bare_s": bare["bare_s"], "channels_read": bare["channels"],
                   "ratio_to_bare": round((m.get("pipeline_s") or m["wall_s"]) / bare["bare_s"], 1),
                   "load_1min": round(os.getloadavg()[0], 2), "src": a.src or "this checkout",
                   "workers": a.workers or "default"}
            rows.append(row)
            print(json.dumps(row))
    print("\n| image | spectra | file | `map` wall (CPU) | read + predict | read | pre-processing | network + OOD "
          "| peak RSS | bare numpy pass | ratio | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']}x{r['size']}x2048 | {r['spectra']:,} | {r['file_GiB']} GiB | {r['wall_s']} s "
              f"({r.get('cpu_s', '-')} s) | {r.get('pipeline_s', '-')} s | {r.get('read_s', '-')} | "
              f"{r.get('preprocess_s', '-')} | {r.get('network_s', '-')} | {r['peak_rss_MB']} MB | {r['bare_s']} s | "
              f"{r['ratio_to_bare']}x | {r['load_1min']} |")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
