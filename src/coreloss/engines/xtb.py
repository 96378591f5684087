"""The default engine: periodic GFN2-xTB / GFN1-xTB (tblite) with a Z+1 core hole.

For each structure, one supercell is built (:func:`coreloss.engines._supercell.make_supercell`,
images of every site >= ``min_image_distance`` apart; tblite is Gamma-point only, so the cell
itself would fold a bond and its image onto one matrix element). Then:

Ground state (one SCF per structure, shared by its sites)
    Neutral, closed shell. ``mulliken_charge`` = Mulliken charge of the O atom (tblite's
    ``charges``); ``bop`` = sum of Mulliken overlap populations ``n_OB = sum 2 P S`` over the
    O-cation bonds of the first shell (:func:`coreloss.sites.first_shell` on the supercell, so
    every bond is a distinct atom pair). See :mod:`coreloss.engines._projection`.

Core-excited state (one SCF per site)
    Z+1 (equivalent-core) approximation: the excited O becomes F. The supercell stays *neutral*:
    F brings one more valence electron than O, which plays the excited electron (XCH-like final
    state: core hole + excited electron in the lowest free level). With an even ground state this
    is one unpaired electron (``uhf=1``, restricted orbitals). Neutral rather than charge +1
    (full core hole without the electron) because a charged periodic cell adds a
    cell-size-dependent background-charge energy to the Delta-SCF difference, and because only
    the neutral choice reproduces the DFT ordering of quartz vs stishovite with GFN2 (see
    ``docs/engines.md``).
    ``excitation_energy`` = ``E(Z+1) - E(ground)`` (eV): a relative Delta-SCF-style transition
    energy, comparable only within one engine/method, not an absolute 530 eV edge position.

Spectrum
    Final states: all orbitals of the Z+1 calculation from the one holding the excited electron
    upwards. Stick weight: Loewdin population of the orbital on the p AOs (l = 1) of the excited
    atom (F 2p ~ O 2p, the dipole-allowed 1s -> p channel). Sticks are broadened with a Voigt
    profile (``gaussian_fwhm`` instrument, ``lorentzian_fwhm`` lifetime; eV) on a uniform
    absolute axis (tblite orbital energies, eV) from ``e_min - 5`` to ``e_min + 35`` eV at
    ``energy_step``. The xTB minimal valence basis has few high-lying states: the spectrum is
    meaningful over the first ~10-20 eV above the onset and decays to zero beyond.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from ase.units import Bohr, Hartree, kB

from coreloss.engines._blas import blas_in_use
from coreloss.engines._projection import (ao_maps, bond_overlap_population, loewdin_weights,
                                          mulliken_populations)
from coreloss.engines._supercell import make_supercell
from coreloss.engines.base import Engine, EngineError, SiteResult
from coreloss.errors import CorelossError
from coreloss.spectra import broaden_sticks, onset_energy

# atomic units of tblite's API from ase.units, as tblite's own ASE calculator uses them
BOHR_PER_ANGSTROM = 1.0 / Bohr
EV_PER_HARTREE = Hartree
HARTREE_PER_KELVIN = kB / Hartree
METHODS = ("GFN2-xTB", "GFN1-xTB")
CHARGE_SPIN = ("Z+1 equivalent core (excited O -> F) in a neutral supercell: the extra F valence "
               "electron is the excited electron (XCH-like); unpaired-electron count = parity of "
               "the electron count, restricted orbitals. Ground state neutral, closed shell.")
PROJECTION = ("Loewdin (S^1/2 C) population on the l=1 AOs of the excited atom, final states from "
              "the level holding the excited electron upwards")


def _tblite():
    try:
        from tblite.interface import Calculator
    except ImportError as exc:  # pragma: no cover - tblite is a hard dependency
        raise CorelossError(f"the xtb engine needs tblite: {exc}") from exc
    return Calculator


def _first_shell(structure, index):
    from coreloss.sites import first_shell
    return [j for j, _ in first_shell(structure, index)]


class XTBEngine(Engine):
    """GFN-xTB O K-edge engine (see the module docstring for the physics and conventions).

    Parameters: ``method`` ("GFN2-xTB" or "GFN1-xTB", the faster), ``min_image_distance`` (Å),
    ``gaussian_fwhm`` / ``lorentzian_fwhm`` (eV), ``electronic_temperature`` (K), ``accuracy``
    (tblite SCC accuracy, smaller = tighter), ``max_iterations`` (SCC cycles), ``energy_step`` (eV).
    Only plain parameters are stored, so the engine pickles (Dask).
    """

    name = "xtb"

    def __init__(self, method: str = "GFN2-xTB", min_image_distance: float = 8.0,
                 gaussian_fwhm: float = 1.0, lorentzian_fwhm: float = 0.2,
                 electronic_temperature: float = 300.0, accuracy: float = 1.0,
                 max_iterations: int = 250, energy_step: float = 0.05):
        if method not in METHODS:
            raise CorelossError(f"unknown xTB method {method!r}; choose one of {', '.join(METHODS)}")
        try:
            params = dict(min_image_distance=float(min_image_distance), gaussian_fwhm=float(gaussian_fwhm),
                          lorentzian_fwhm=float(lorentzian_fwhm),
                          electronic_temperature=float(electronic_temperature), accuracy=float(accuracy),
                          max_iterations=int(max_iterations), energy_step=float(energy_step))
        except (TypeError, ValueError) as exc:
            raise CorelossError(f"bad xtb engine parameter: {exc}") from exc
        if not 0 < params["energy_step"] <= 0.05:
            raise CorelossError("energy_step must be in (0, 0.05] eV")
        g, lor = params["gaussian_fwhm"], params["lorentzian_fwhm"]
        if g < 0 or lor < 0 or g + lor <= 0:
            raise CorelossError("broadening FWHMs must be >= 0 and not both zero")
        if params["min_image_distance"] <= 0 or params["max_iterations"] < 1 or params["accuracy"] <= 0:
            raise CorelossError("min_image_distance, max_iterations and accuracy must be positive")
        if params["electronic_temperature"] < 0:
            raise CorelossError("electronic_temperature must be >= 0 K")
        super().__init__(method=method, **params)

    @property
    def version(self) -> str:
        try:
            from importlib.metadata import version
            return f"tblite {version('tblite')}"
        except Exception:  # pragma: no cover
            return "tblite unknown"

    # -- one SCF ---------------------------------------------------------------------------
    def _singlepoint(self, structure, charge: int = 0, uhf: int = 0):
        """Run one periodic SCF; returns ``(calculator, result)`` (tblite objects, never stored)."""
        Calculator = _tblite()
        p = self.params
        calc = Calculator(p["method"], np.asarray(structure.atomic_numbers),
                          structure.cart_coords * BOHR_PER_ANGSTROM, charge=float(charge), uhf=int(uhf),
                          lattice=structure.lattice.matrix * BOHR_PER_ANGSTROM,
                          periodic=np.array([True, True, True]))
        calc.set("verbosity", 0)
        calc.set("save-integrals", 1)
        calc.set("accuracy", p["accuracy"])
        calc.set("max-iter", p["max_iterations"])
        calc.set("temperature", p["electronic_temperature"] * HARTREE_PER_KELVIN)
        return calc, calc.singlepoint()

    def ground_state(self, supercell) -> dict:
        """Neutral ground state of ``supercell``: energy (eV), charges, P, S, AO maps, N electrons."""
        calc, res = self._singlepoint(supercell)
        ao_atom, ao_l = ao_maps(calc.get("angular-momenta"), calc.get("orbital-map"), calc.get("shell-map"))
        density, overlap = res.get("density-matrix"), res.get("overlap-matrix")
        if density.shape != (len(ao_atom), len(ao_atom)) or overlap.shape != density.shape:
            raise EngineError(f"tblite AO map ({len(ao_atom)}) does not match its matrices {density.shape}")
        return {"energy": float(res.get("energy")) * EV_PER_HARTREE, "charges": np.asarray(res.get("charges")),
                "density": density, "overlap": overlap, "ao_atom": ao_atom, "ao_l": ao_l,
                "n_electrons": int(round(float(np.sum(res.get("orbital-occupations")))))}

    def excited_state(self, supercell, index: int, n_electrons_ground: int) -> dict:
        """Z+1 (O -> F) neutral SCF; final-state energies (eV) and Loewdin p weights."""
        zp1 = supercell.copy()
        zp1.replace(index, "F")
        n_el = n_electrons_ground + 1
        calc, res = self._singlepoint(zp1, charge=0, uhf=n_el % 2)
        ao_atom, ao_l = ao_maps(calc.get("angular-momenta"), calc.get("orbital-map"), calc.get("shell-map"))
        eps = np.asarray(res.get("orbital-energies"), float).reshape(-1, len(ao_atom))[0] * EV_PER_HARTREE
        coeff = np.asarray(res.get("orbital-coefficients"), float).reshape(-1, len(ao_atom), len(ao_atom))[0]
        order = np.argsort(eps, kind="stable")
        eps, coeff = eps[order], coeff[:, order]
        weights = loewdin_weights(coeff, res.get("overlap-matrix"), (ao_atom == index) & (ao_l == 1))
        first = n_el // 2  # lowest level that holds (or can hold) the excited electron
        return {"energy": float(res.get("energy")) * EV_PER_HARTREE,
                "final_energies": eps[first:], "final_weights": weights[first:]}

    def spectrum(self, stick_energies, stick_weights) -> tuple[np.ndarray, np.ndarray, float]:
        """Broadened spectrum on the absolute axis: ``(energy eV, intensity, onset eV)``."""
        p = self.params
        step = p["energy_step"]
        e0 = np.floor((float(np.min(stick_energies)) - 5.0) / step) * step
        energy = e0 + step * np.arange(int(round(40.0 / step)) + 1)
        intensity = broaden_sticks(stick_energies, stick_weights, energy,
                                   gaussian_fwhm=p["gaussian_fwhm"], lorentzian_fwhm=p["lorentzian_fwhm"])
        return energy, intensity, onset_energy(energy, intensity)

    # -- public API ------------------------------------------------------------------------
    def compute_sites(self, structure, site_indices: Sequence[int]) -> list[SiteResult | EngineError]:
        """Spectra and electronic labels of the O sites ``site_indices`` of ``structure``."""
        structure, site_indices = self.check_sites(structure, site_indices)
        if not site_indices:
            return []
        supercell, _, scale = make_supercell(structure, site_indices[0], self.params["min_image_distance"])
        n_cells = int(np.prod(scale))  # site i of the cell is atom i * n_cells of the supercell
        t0 = time.perf_counter()
        try:
            gs = self.ground_state(supercell)
        except Exception as exc:
            err = f"xtb ground-state SCF failed ({type(exc).__name__}: {exc})".replace("\n", " ")
            return [EngineError(err) for _ in site_indices]
        t_ground = time.perf_counter() - t0
        base = {**self.provenance(), "method": self.params["method"], "charge_spin": CHARGE_SPIN,
                "linear_algebra": blas_in_use(),
                "projection": PROJECTION, "supercell_matrix": np.diag(scale).tolist(),
                "supercell_atoms": len(supercell), "ground_state_energy_eV": gs["energy"],
                "ground_state_wall_s": t_ground,
                "broadening": {"profile": "voigt", "gaussian_fwhm_eV": self.params["gaussian_fwhm"],
                               "lorentzian_fwhm_eV": self.params["lorentzian_fwhm"]},
                "energy_axis": {"unit": "eV", "step": self.params["energy_step"],
                                "reference": "tblite orbital energies of the Z+1 supercell (absolute)"},
                "excitation_energy": "E(Z+1 neutral) - E(ground), eV, relative Delta-SCF",
                "bop": "sum over first-shell cations of Mulliken overlap populations 2*sum(P*S), e",
                "mulliken_charge": "Mulliken charge of the O atom in the ground state, e"}
        return [self._one_site(supercell, i, i * n_cells, gs, base) for i in site_indices]

    def _one_site(self, supercell, site_index: int, index: int, gs: dict, base: dict):
        t0 = time.perf_counter()
        try:
            neighbors = _first_shell(supercell, index)
            bop = bond_overlap_population(gs["density"], gs["overlap"], gs["ao_atom"], index, neighbors)
            pops = mulliken_populations(gs["density"], gs["overlap"], gs["ao_atom"], len(supercell))
            ex = self.excited_state(supercell, index, gs["n_electrons"])
            energy, intensity, onset = self.spectrum(ex["final_energies"], ex["final_weights"])
        except Exception as exc:
            return EngineError(f"xtb site {site_index}: {type(exc).__name__}: {exc}".replace("\n", " "))
        labels = {"mulliken_charge": float(gs["charges"][index]), "bop": bop,
                  "excitation_energy": ex["energy"] - gs["energy"]}
        prov = {**base, "site_index": site_index, "supercell_index": index,
                "coordination": len(neighbors), "mulliken_population": float(pops[index]),
                "excited_state_energy_eV": ex["energy"], "wall_s": time.perf_counter() - t0}
        return SiteResult(site_index, energy, intensity, onset, labels, prov)
