"""Fidelity of the fast xtb engine against the gpaw (PBE core-hole) reference on dense SiO2.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fidelity.py --polymorphs \
        Quartz-alpha Quartz-beta Stishovite Seifertite Coesite --ecut 300 --min-image-distance 4 \
        --empty-ev 20

For each polymorph (``../shared/data/structures/minerals/<name>.cif``), the first
symmetry-inequivalent O site is computed with ``get_engine("xtb")`` (its defaults) and with
``get_engine("gpaw", ...)`` (cached in ``benchmarks/results/gpaw_sites.json``, shared with
``bench_engines_gpaw.py``); both use the same Voigt broadening (Gaussian 1.0 eV, Lorentzian
0.2 eV). Reported: cosine similarity of the onset-aligned, area-normalised spectra on
``coreloss.spectra.DEFAULT_GRID`` (whole grid and the first 15 eV above the onset), and Pearson /
Spearman correlations across polymorphs of Mulliken charge, BOP and excitation energy (engine
scales differ: xtb's excitation energy is a relative Z+1 Delta-SCF). Writes
``benchmarks/results/fidelity.json`` and ``benchmarks/results/fidelity.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engines_gpaw import RESULTS, engine_params, gpaw_site, load_polymorph  # noqa: E402

LABELS = ("mulliken_charge", "bop", "excitation_energy")


def xtb_site(name: str, site: int) -> dict:
    from coreloss.engines import get_engine

    t0 = time.perf_counter()
    r = get_engine("xtb", gaussian_fwhm=1.0, lorentzian_fwhm=0.2).compute_sites(
        load_polymorph(name), [site])[0]
    if isinstance(r, Exception):
        return {"error": str(r)}
    return {"labels": r.labels, "energy": r.energy, "intensity": r.intensity, "onset": r.onset,
            "wall_s": time.perf_counter() - t0}


def _corr(a, b) -> dict:
    from scipy.stats import pearsonr, spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return {"n": int(ok.sum()), "pearson": None, "spearman": None}
    return {"n": int(ok.sum()), "pearson": float(pearsonr(a[ok], b[ok])[0]),
            "spearman": float(spearmanr(a[ok], b[ok])[0])}


def main(argv=None):
    from coreloss.spectra import DEFAULT_GRID, align_to_grid, cosine_similarity

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--polymorphs", nargs="+",
                    default=["Quartz-alpha", "Quartz-beta", "Stishovite", "Seifertite", "Coesite"])
    ap.add_argument("--ecut", type=float, default=300.0)
    ap.add_argument("--min-image-distance", type=float, default=4.0)
    ap.add_argument("--empty-ev", type=float, default=20.0)
    ap.add_argument("--kdensity", type=float, default=None)
    args = ap.parse_args(argv)
    params = engine_params(args)
    from coreloss.sites import o_sites

    grid = DEFAULT_GRID
    window = grid.energies <= 15.0
    rows, spectra = [], {}
    for name in args.polymorphs:
        site = o_sites(load_polymorph(name))[0].index
        g = gpaw_site(name, params, site)
        x = xtb_site(name, site)
        if "error" in g or "error" in x:
            rows.append({"polymorph": name, "site": site, "error": g.get("error") or x.get("error")})
            continue
        sg = align_to_grid(g["energy"], g["intensity"], g["onset"], grid)
        sx = align_to_grid(x["energy"], x["intensity"], x["onset"], grid)
        spectra[name] = (sg, sx)
        rows.append({"polymorph": name, "site": site, "gpaw": g["labels"], "xtb": x["labels"],
                     "cosine": float(cosine_similarity(sg, sx)[0]),
                     "cosine_0_15eV": float(cosine_similarity(sg[window], sx[window])[0]),
                     "gpaw_supercell_atoms": g["supercell_atoms"], "gpaw_wall_s": g["wall_s"],
                     "xtb_wall_s": x["wall_s"]})
        print(json.dumps(rows[-1]), flush=True)
    ok = [r for r in rows if "error" not in r]
    corr = {lab: _corr([r["xtb"][lab] for r in ok], [r["gpaw"][lab] for r in ok]) for lab in LABELS}
    out = {"benchmark": "xtb vs gpaw fidelity on dense SiO2 polymorphs",
           "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fidelity.py "
                      + " ".join(argv if argv is not None else sys.argv[1:]),
           "gpaw_parameters": params, "xtb_parameters": "defaults (GFN2-xTB, 8 Å supercell), "
           "gaussian_fwhm 1.0, lorentzian_fwhm 0.2", "grid": grid.to_dict(),
           "per_polymorph": rows,
           "mean_cosine": float(np.mean([r["cosine"] for r in ok])) if ok else None,
           "mean_cosine_0_15eV": float(np.mean([r["cosine_0_15eV"] for r in ok])) if ok else None,
           "label_correlation_xtb_vs_gpaw": corr}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fidelity.json").write_text(json.dumps(out, indent=1))
    if spectra:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = len(spectra)
        fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), sharey=True, squeeze=False)
        for ax, (name, (sg, sx)) in zip(axes[0], spectra.items()):
            cos = next(r["cosine"] for r in ok if r["polymorph"] == name)
            ax.plot(grid.energies, sg, label="gpaw (PBE, half core hole)")
            ax.plot(grid.energies, sx, label="xtb (GFN2, Z+1)")
            ax.set_title(f"{name}  cos={cos:.2f}", fontsize=9)
            ax.set_xlabel("E - onset (eV)")
        axes[0][0].set_ylabel("normalised intensity (1/eV)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(RESULTS / "fidelity.png", dpi=120)
    print(json.dumps({k: out[k] for k in ("mean_cosine", "mean_cosine_0_15eV",
                                          "label_correlation_xtb_vs_gpaw")}, indent=1))


if __name__ == "__main__":
    main()
