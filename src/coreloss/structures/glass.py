"""Short-range order of a SiO2 network (glass checks): coordination, Si-O bonds, Si-O-Si angles, density.

A pure function in the manner of ``pymatgen.analysis``: :func:`network_stats` counts every Si-O pair
closer than the checks' bond cutoff (``coreloss.structures.checks.BOND_CUTOFF``, 2.05 Å) as a bond
and measures every Si-O-Si angle at every O. :data:`SILICA_GLASS` holds the reference values of
ambient silica glass the amorphous cells are compared with. Lengths Å, angles degrees, g/cm3.
"""

from __future__ import annotations

import collections

import numpy as np
from pymatgen.core import Structure

from coreloss.structures.checks import BOND_CUTOFF

# Ambient vitreous silica: Si-O 1.61-1.63 Å (neutron/X-ray diffraction), Si-O-Si distribution peaked
# near 145-150° (NMR/diffraction), 2.20 g/cm3; Si 4- and O 2-coordinated.
SILICA_GLASS = {"si_o_a": (1.61, 1.63), "si_o_si_peak_deg": (145.0, 150.0), "density_g_cm3": 2.20,
                "citation": "Mozzi & Warren, J. Appl. Cryst. 2, 164 (1969); Grimley, Wright & Sinclair, "
                            "J. Non-Cryst. Solids 119, 49 (1990); Mauri, Pasquarello, Pfrommer, Yoon & "
                            "Louie, Phys. Rev. B 62, R4786 (2000)"}
ANGLE_BINS = np.arange(90.0, 182.0, 5.0)        # degrees, 5° bins (mode = centre of the fullest bin)


def _bonds(structure: Structure, cutoff: float):
    """(Si index, O index, vector O->Si) of every Si-O pair closer than ``cutoff``."""
    sym = np.array([sp.symbol for sp in structure.species])
    c, p, img, d = structure.get_neighbor_list(cutoff)
    keep = (sym[c] == "O") & (sym[p] == "Si")
    cart = structure.cart_coords
    vec = cart[p[keep]] + img[keep] @ structure.lattice.matrix - cart[c[keep]]
    return p[keep], c[keep], vec, sym


def si_o_si_angles(structure: Structure, cutoff: float = BOND_CUTOFF) -> np.ndarray:
    """Every Si-O-Si angle (degrees) at every O (each pair of an O's Si neighbours once)."""
    _, o_idx, vec, _ = _bonds(structure, cutoff)
    out = []
    for o in np.unique(o_idx):
        v = vec[o_idx == o]
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        for a in range(len(v)):
            for b in range(a + 1, len(v)):
                out.append(np.degrees(np.arccos(np.clip(v[a] @ v[b], -1.0, 1.0))))
    return np.asarray(out, float)


def network_stats(structure: Structure, cutoff: float = BOND_CUTOFF) -> dict:
    """Density, Si and O coordination counts, Si-O bond and Si-O-Si angle statistics of one cell.

    Returns density_g_cm3, n_atoms, si_cn / o_cn ({coordination: number of atoms}), si_o_mean,
    si_o_median, si_o_std (Å, all bonds), angle_mean, angle_median, angle_mode (centre of the fullest
    5° bin), angle_std (degrees), angle_hist ({bin centre: count}), n_bonds, n_angles.
    """
    si_idx, o_idx, vec, sym = _bonds(structure, cutoff)
    lengths = np.linalg.norm(vec, axis=1)
    si_cn = collections.Counter(np.bincount(si_idx, minlength=len(sym))[sym == "Si"].tolist())
    o_cn = collections.Counter(np.bincount(o_idx, minlength=len(sym))[sym == "O"].tolist())
    ang = si_o_si_angles(structure, cutoff)
    hist, edges = np.histogram(ang, bins=ANGLE_BINS)
    centres = edges[:-1] + 2.5

    def _stat(f, x):
        return round(float(f(x)), 4) if len(x) else None

    return {"density_g_cm3": round(float(structure.density), 4), "n_atoms": len(structure),
            "si_cn": {int(k): int(v) for k, v in sorted(si_cn.items())},
            "o_cn": {int(k): int(v) for k, v in sorted(o_cn.items())},
            "si_o_mean": _stat(np.mean, lengths), "si_o_median": _stat(np.median, lengths),
            "si_o_std": _stat(np.std, lengths), "n_bonds": int(len(lengths)),
            "angle_mean": _stat(np.mean, ang), "angle_median": _stat(np.median, ang),
            "angle_std": _stat(np.std, ang),
            "angle_mode": float(centres[np.argmax(hist)]) if len(ang) else None,
            "angle_hist": {float(c): int(h) for c, h in zip(centres, hist)}, "n_angles": int(len(ang))}
