"""Egg-box correction of the LCAO Delta-KS excitation energy (eV).

At the engine's grid spacing (h 0.25 Å) the real-space grid does not resolve the compact densities
of the core-hole setup, so the total energy of the excited atom depends on where the atom sits
between grid points (the "egg-box" effect). For an isolated O atom, ``E(fch1s, electron kept) -
E(O)`` moves by 0.23 eV over sub-grid positions at h 0.25 Å, 0.009 eV at 0.20 and < 0.001 eV at
0.15; a crystal's Delta-KS moves with it (α-quartz translated by half a grid step: 0.044 eV;
stishovite: 0.25 eV). That scatter is larger than the polymorph shifts the label has to carry
(benchmarks/bench_lcao_eggbox.py; BENCHMARKS.md "Egg-box correction").

The correction is the same difference for the isolated atom at the site's own sub-grid offset,
in a box spanned by whole steps of the crystal's own grid vectors (so the grid is the same),
minus its grid-converged value (h 0.10 Å, cubic box). Subtracting it from the crystal's
Delta-KS removes the egg-box and the atomic part of the grid error; what remains is the
environment's. Two SCFs of one atom, a few CPU seconds a site.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from coreloss.fileio import atomic_write_bytes

#: Å: the isolated atom's box is at least this wide in every direction
BOX_WIDTH = 8.0
#: Å: grid spacing of the converged reference (the atomic difference moves < 0.005 eV below 0.12)
CONVERGED_H = 0.10
#: how the correction is named in a site's provenance (``excitation_energy`` definition)
PROVENANCE_NOTE = ("minus the excited atom's egg-box correction (isolated atom at the site's "
                   f"sub-grid offset, against h {CONVERGED_H:.2f} A)")


def grid_vectors(cell, h: float) -> np.ndarray:
    """Grid step vectors (rows, Å) GPAW uses for ``cell`` (3x3, Å) at spacing ``h``: ``cell / N``."""
    from gpaw.utilities import h2gpts

    cell = np.asarray(cell, float)
    return cell / np.asarray(h2gpts(h, cell), float)[:, None]


def grid_offset(position, steps: np.ndarray) -> np.ndarray:
    """Fractional position (0..1) of ``position`` (Å) within its grid cell of step vectors ``steps``."""
    return np.linalg.solve(np.asarray(steps, float).T, np.asarray(position, float)) % 1.0


def atom_excitation(steps, offset, symbol: str = "O", setup: str = "fch1s", basis: str = "tzdp",
                    xc: str = "PBE") -> float:
    """``E(setup, charge -1) - E(ground state)`` (eV) of one ``symbol`` atom at sub-grid ``offset``.

    The box is whole multiples (of 4) of the step vectors ``steps`` (rows, Å), >= :data:`BOX_WIDTH`
    wide; both SCFs spin-paired with 0.1 eV Fermi smearing (the open-shell atom). ``charge -1``
    keeps the excited electron: the system is neutral, like the engine's XCH.
    """
    from ase import Atoms
    from gpaw import FermiDirac

    from coreloss.engines.gpaw import _calc, total_energy

    g = np.asarray(steps, float)
    vol = abs(np.linalg.det(g))
    widths = np.array([vol / np.linalg.norm(np.cross(g[(c + 1) % 3], g[(c + 2) % 3])) for c in range(3)])
    m = (np.ceil(BOX_WIDTH / widths / 4.0) * 4).astype(int)
    position = (m // 2 + np.asarray(offset, float)) @ g
    energies = []
    for atom_setup, charge in (("paw", 0), (setup, -1)):
        atoms = Atoms(symbol, positions=[position], cell=g * m[:, None], pbc=True)
        atoms.calc = _calc(mode="lcao", basis=basis, xc=xc, kpts=(1, 1, 1), maxiter=300, nbands="nao",
                           convergence={"density": 1e-3}, txt=None, charge=charge,
                           gpts=tuple(int(x) for x in m), setups={0: atom_setup},
                           occupations=FermiDirac(0.1))
        energies.append(total_energy(atoms))
    return energies[1] - energies[0]


def converged_atom_excitation(symbol: str = "O", setup: str = "fch1s", basis: str = "tzdp",
                              xc: str = "PBE") -> float:
    """:func:`atom_excitation` at h :data:`CONVERGED_H` (eV), cached on disk next to the setups."""
    from coreloss.engines.gpaw_setups import cache_dir

    return _converged(symbol, setup, basis, xc, CONVERGED_H, str(cache_dir()))


@lru_cache(maxsize=None)
def _converged(symbol: str, setup: str, basis: str, xc: str, h: float, folder: str) -> float:
    path = Path(folder) / f"{symbol}.{setup}.{basis}.{xc}.atom_excitation_h{h:.3f}.json"
    if path.is_file():
        return float(json.loads(path.read_text())["eV"])
    value = atom_excitation(np.eye(3) * h, np.zeros(3), symbol, setup, basis, xc)
    atomic_write_bytes(path, json.dumps({"eV": value, "h": h, "symbol": symbol, "setup": setup,
                                         "basis": basis, "xc": xc}).encode())
    return value


def eggbox_correction(cell, position, h: float, symbol: str = "O", setup: str = "fch1s",
                      basis: str = "tzdp", xc: str = "PBE") -> tuple[float, list[float]]:
    """``(correction eV, sub-grid offset)`` of an excited atom at ``position`` (Å) in ``cell``
    (3x3, Å) at spacing ``h``: subtract the correction from the crystal's Delta-KS."""
    steps = grid_vectors(cell, h)
    offset = grid_offset(position, steps)
    here = atom_excitation(steps, offset, symbol, setup, basis, xc)
    return here - converged_atom_excitation(symbol, setup, basis, xc), [round(float(x), 4) for x in offset]
