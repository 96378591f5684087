"""Same site, two engines: is the LCAO -> plane-wave spectral difference systematic, and what does
it do to a model's predictions?

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_engine_pairs.py \
        [--model src/coreloss/data/inverse_model.pt ...]

Pairs: the plane-wave reference sites (``datasets/sio2_pw_reference.h5``, no training set holds
them) and the default gpaw-lcao engine's spectra of the same sites, cached by
``bench_lcao_fidelity.py`` in ``benchmarks/results/fidelity_sites.json`` (nothing is recomputed;
a site with no cached spectrum at the current engine defaults is an error). Both onset-aligned and
area-normalised on the dataset grid (``coreloss.spectra``).

Reported:

* the difference ``D = PW - LCAO`` per site, the cosine between the sites' differences (a
  systematic difference points the same way everywhere), and how much of ``|D|^2`` the
  leave-one-structure-out mean difference removes;
* per model: the geometric labels predicted from each site's LCAO spectrum and from its PW
  spectrum, MAE against the truth for both, the mean |LCAO - PW| change of the prediction (what
  the engine alone moves) and the OOD flags; and the same with the PW spectra corrected by the
  leave-one-structure-out mean difference (``PW - mean D``: the spectrum moved onto the LCAO scale
  the model learned, never using the site's own structure).

Writes ``benchmarks/results/engine_pairs.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_lcao_fidelity import CACHE, aligned, reference_rows  # noqa: E402

GEOMETRIC = ("bond_length", "bond_angle", "voronoi_volume")


def lcao_key_params() -> dict:
    """The default gpaw-lcao parameters as the fidelity cache keys them."""
    from coreloss.engines import get_engine
    return {k: v for k, v in get_engine("gpaw-lcao").params.items() if k != "log_dir"}


def pairs() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, dict]:
    """``(site names, LCAO X, PW X, geometric labels y, structure id per site)`` on DEFAULT_GRID."""
    from coreloss.labels import LABEL_NAMES
    from coreloss.spectra import DEFAULT_GRID, normalise_area

    cache = json.loads(CACHE.read_text())
    params = lcao_key_params()
    names, xl, xp, y, sid = [], [], [], [], []
    for (s, i), row in sorted(reference_rows().items()):
        key = json.dumps(["gpaw-lcao", params, s, int(i)], sort_keys=True)
        if key not in cache or "energy" not in cache[key]:
            raise SystemExit(f"error: no cached gpaw-lcao spectrum of {s}#{i} at the engine defaults; "
                             "run benchmarks/bench_lcao_fidelity.py first")
        c = cache[key]
        xl.append(aligned(c["energy"], c["intensity"], c["onset"]))
        e = row["raw_start"] + row["raw_step"] * np.arange(len(row["raw"]))
        xp.append(aligned(e, row["raw"], row["onset"]))
        y.append([float(row["y"][list(LABEL_NAMES).index(n)]) for n in GEOMETRIC])
        names.append(f"{s}#{i}")
        sid.append(s)
    step = DEFAULT_GRID.step
    return (names, normalise_area(np.array(xl), step), normalise_area(np.array(xp), step), np.array(y),
            np.array(sid))


def loo_mean_difference(D: np.ndarray, sid: np.ndarray) -> np.ndarray:
    """Per site, the mean difference over the sites of the *other* structures."""
    return np.array([D[sid != s].mean(axis=0) for s in sid])


def cos(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def score(model, X, y, grid) -> dict:
    """Geometric predictions of ``model`` on spectra ``X``: per-site values, MAE, OOD flags."""
    from coreloss.labels import LABEL_NAMES
    full = model.predict_full(X, grid=grid)
    cols = [list(LABEL_NAMES).index(n) for n in GEOMETRIC]
    p = full["mean"][:, cols]
    return {"pred": p, "std": full["std"][:, cols], "ood": full["ood"], "ood_score": full["ood_score"],
            "mae": {n: float(np.mean(np.abs(p[:, j] - y[:, j]))) for j, n in enumerate(GEOMETRIC)}}


def main(argv=None) -> None:
    from coreloss.models.inverse import InverseModel
    from coreloss.spectra import DEFAULT_GRID, normalise_area

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, nargs="*",
                    default=[ROOT / "src/coreloss/data/inverse_model.pt"])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/engine_pairs.json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    names, XL, XP, y, sid = pairs()
    grid = DEFAULT_GRID
    D = XP - XL
    Dm = loo_mean_difference(D, sid)
    n = len(names)
    pair_cos = [[cos(D[a], D[b]) for b in range(n)] for a in range(n)]
    off = [pair_cos[a][b] for a in range(n) for b in range(n) if sid[a] != sid[b]]
    removed = 1.0 - float(np.sum((D - Dm) ** 2) / np.sum(D ** 2))
    XPc = normalise_area(np.clip(XP - Dm, 0.0, None), grid.step)
    res = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "command": "benchmarks/bench_engine_pairs.py " + " ".join(argv or sys.argv[1:]),
           "sites": names, "grid": grid.to_dict(), "lcao_parameters": lcao_key_params(),
           "difference": {"cosine_between_sites_median": float(np.median(off)),
                          "cosine_between_sites_min": float(np.min(off)),
                          "cosine_between_sites_max": float(np.max(off)),
                          "loo_mean_removes_fraction_of_D2": removed,
                          "cosine_lcao_pw": [cos(XL[k], XP[k]) for k in range(n)],
                          "cosine_lcao_pw_corrected": [cos(XL[k], XPc[k]) for k in range(n)]},
           "models": {}}
    print(f"{n} paired sites; cosine between the sites' PW - LCAO differences (other structures): "
          f"median {np.median(off):.2f} (min {np.min(off):.2f}, max {np.max(off):.2f}); the leave-one-"
          f"structure-out mean difference removes {100 * removed:.0f} % of |D|^2")
    print("cosine LCAO vs PW per site: " + ", ".join(f"{c:.3f}" for c in res["difference"]["cosine_lcao_pw"]))
    print("cosine LCAO vs corrected PW: " + ", ".join(f"{c:.3f}" for c in res["difference"]["cosine_lcao_pw_corrected"]))
    for path in args.model:
        model = InverseModel.load(path)
        out = {}
        for tag, X in (("lcao", XL), ("pw", XP), ("pw_corrected", XPc)):
            out[tag] = score(model, X, y, grid)
        shift = {g: float(np.mean(np.abs(out["lcao"]["pred"][:, j] - out["pw"]["pred"][:, j])))
                 for j, g in enumerate(GEOMETRIC)}
        rec = {"mae": {t: out[t]["mae"] for t in out}, "ood_flags": {t: int(out[t]["ood"].sum()) for t in out},
               "mean_abs_change_lcao_to_pw": shift,
               "per_site": [{"site": names[k], "true": dict(zip(GEOMETRIC, y[k].tolist())),
                             **{t: {"pred": dict(zip(GEOMETRIC, out[t]["pred"][k].tolist())),
                                    "ood_score": float(out[t]["ood_score"][k]), "ood": bool(out[t]["ood"][k])}
                                for t in out}} for k in range(n)]}
        res["models"][str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)] = rec
        print(f"\n{path.name}: MAE angle / bond (flagged)")
        for t in out:
            print(f"  {t:13s} {out[t]['mae']['bond_angle']:6.1f} deg  {out[t]['mae']['bond_length']:.4f} A  "
                  f"({int(out[t]['ood'].sum())} of {n})")
        print(f"  |LCAO - PW| change of the prediction: {shift['bond_angle']:.1f} deg, {shift['bond_length']:.4f} A")
        print("  site: true angle | LCAO | PW | PW corrected")
        for k in range(n):
            print(f"  {names[k]:28s} {y[k, 1]:6.1f} | {out['lcao']['pred'][k, 1]:6.1f} | "
                  f"{out['pw']['pred'][k, 1]:6.1f} | {out['pw_corrected']['pred'][k, 1]:6.1f}")
    res["seconds"] = time.perf_counter() - t0
    args.out.write_text(json.dumps(res, indent=1))
    print(f"\nwrote {args.out} ({res['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
