"""The ``gpaw`` engine: plane-wave PBE DFT with an O 1s core hole (fidelity reference).

Per structure (shared by all its O sites), on a supercell whose periodic images of the excited
atom are at least ``min_image_distance`` apart:

* ground state, plane waves, spin-paired: ``E_gs`` (+ GPAW reference energy);
* LCAO (``basis``, default dzp), Gamma point: Mulliken charges and O-cation overlap populations
  from the LCAO density matrix ``P`` and overlap ``S``; BOP = sum over the O's first-shell cations
  (:func:`coreloss.sites.first_shell`) of ``2 sum_{mu in O, nu in cation} P_mu,nu S_mu,nu``.

Per O site:

* excitation energy, Delta-Kohn-Sham (GPAW XAS tutorial): full core hole setup ``fch1s`` on the
  site, ``charge=-1`` (the excited electron stays in the cell), spin-polarised, magnetic moment 1
  on the site fixed; ``(E_exc + ref_exc) - (E_gs + ref_gs)`` in eV;
* spectrum: half core hole ``hch1s`` on the site, dipole matrix elements from
  :class:`gpaw.xas.XAS` summed over x, y, z, first transition placed at the excitation energy,
  Voigt-broadened on a uniform absolute axis (eV). Empty bands reach ``empty_ev`` above the
  conduction band minimum; sticks above the last converged band are dropped.

Serial GPAW (``OMP_NUM_THREADS=1`` recommended). Core-hole setups: :mod:`coreloss.engines.gpaw_setups`.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
from ase.units import Bohr, Hartree

from coreloss.engines._supercell import make_supercell
from coreloss.engines.base import Engine, EngineError, SiteResult
from coreloss.errors import CorelossError
from coreloss.spectra import broaden_sticks, onset_energy



def _import_gpaw():
    try:
        import gpaw  # noqa: F401
        from gpaw import GPAW
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CorelossError(f"the gpaw engine needs GPAW (pip install gpaw gpaw-data): {exc}") from exc
    return GPAW


def _calc(**kw):
    GPAW = _import_gpaw()
    return GPAW(legacy_gpaw=True, **kw)


def gpaw_atoms(structure):
    """ASE ``Atoms`` of a pymatgen structure for GPAW: the same lattice and Cartesian positions,
    with cell vectors of a diagonal (orthorhombic) cell turned to point along +x, +y, +z.

    GPAW's text log draws orthorhombic cells from the cell's diagonal and fails ("negative
    dimensions are not allowed") when a diagonal element is negative, which pymatgen's reduced
    cells can have; flipping a lattice vector changes no physics.
    """
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    cell = atoms.cell.array.copy()
    if atoms.cell.orthorhombic and np.any(np.diag(cell) < 0):
        cell[np.diag(cell) < 0] *= -1.0
        atoms.set_cell(cell, scale_atoms=False)
        atoms.wrap()
    return atoms


def total_energy(atoms) -> float:
    """Potential energy plus GPAW's reference (all-electron atomic) energy, eV."""
    e = atoms.get_potential_energy()
    return float(e + atoms.calc.get_reference_energy())


def ground_state_energy(atoms, **calc_kw) -> float:
    """Spin-paired ground-state total energy (eV, with reference energy) of ``atoms``."""
    atoms = atoms.copy()
    atoms.set_initial_magnetic_moments(None)
    atoms.calc = _calc(**calc_kw)
    return total_energy(atoms)


def dks_excited_energy(atoms, index: int, setup: str = "fch1s", **calc_kw) -> float:
    """Total energy (eV) with a full core hole on atom ``index``, the electron kept in the cell.

    ``charge=-1``, spin-polarised, magnetic moment 1 on ``index`` held fixed (GPAW XAS tutorial).
    ``setup`` is a setup name or a :class:`gpaw.setup_data.SetupData`.
    """
    from gpaw import FermiDirac

    atoms = atoms.copy()
    magmoms = np.zeros(len(atoms))
    magmoms[index] = 1.0
    atoms.set_initial_magnetic_moments(magmoms)
    atoms.calc = _calc(charge=-1, setups={index: setup}, spinpol=True,
                       occupations=FermiDirac(0.0, fixmagmom=True), **calc_kw)
    return total_energy(atoms)


def core_hole_sticks(atoms, index: int, nbands: int, converge_bands: int, dks: float = 0.0,
                     setup: str = "hch1s", **calc_kw):
    """O 1s -> empty-state transitions with a (half) core hole on ``index``.

    Returns ``(energies_eV, strengths, e_max_eV)``: stick energies (first transition at ``dks``),
    oscillator strengths summed over x, y, z, and the highest converged energy on the same axis.
    """
    from gpaw.xas import XAS

    atoms = atoms.copy()
    atoms.set_initial_magnetic_moments(None)
    atoms.calc = _calc(setups={index: setup}, nbands=nbands,
                       convergence={"bands": converge_bands}, **calc_kw)
    atoms.get_potential_energy()
    xas = XAS(atoms.calc, mode="xas", center=index)
    energies, f_cn = xas.get_oscillator_strength(dks=dks)
    strength = np.asarray(f_cn).sum(axis=0)
    shift = dks - float(np.min(xas.eps_kn))
    eps_kn = np.array([atoms.calc.get_eigenvalues(kpt=k)
                       for k in range(len(atoms.calc.get_ibz_k_points()))])
    e_max = float(np.min(eps_kn[:, converge_bands - 1])) + shift
    return np.asarray(energies, float), strength, e_max


def lcao_populations(atoms, basis: str = "dzp", xc: str = "PBE", kpts=(1, 1, 1), **calc_kw):
    """Mulliken charges and the atom-pair overlap-population matrix from a Gamma-point LCAO run.

    Returns ``(charges (n_atoms,), overlap_population (n_atoms, n_atoms), valence (n_atoms,))``
    in e (see :func:`populations`).
    """
    atoms = atoms.copy()
    atoms.set_initial_magnetic_moments(None)
    atoms.calc = _calc(mode="lcao", basis=basis, xc=xc, kpts=kpts, **calc_kw)
    atoms.get_potential_energy()
    return populations(atoms.calc)


def populations(calc):
    """Mulliken charges, pair overlap populations and setup valences of a converged LCAO ``calc``.

    The overlap population of atoms A, B is ``2 Re sum_{mu in A, nu in B} P_mu,nu S_nu,mu``
    (symmetrised; the diagonal is twice the net population); the charge is the setup's valence
    minus the gross population; ``valence`` is the number of valence electrons of each setup (e).
    """
    wfs = calc.wfs
    n = len(wfs.setups)
    owner = np.empty(wfs.setups.nao, int)
    for a in range(n):
        m0 = wfs.basis_functions.M_a[a]
        owner[m0:m0 + wfs.setups[a].nao] = a
    onehot = np.zeros((wfs.setups.nao, n))
    onehot[np.arange(owner.size), owner] = 1.0
    pop = np.zeros((n, n))
    for kpt in wfs.kpt_u:
        S = _full_hermitian(np.array(wfs.S_qMM[kpt.q]))
        C = np.asarray(kpt.C_nM)
        rho = (C.conj().T * np.asarray(kpt.f_n)) @ C  # P_mu,nu = sum_n f_n C*_n,mu C_n,nu
        PS = (rho * S.T).real  # P_mu,nu S_nu,mu
        pop += onehot.T @ PS @ onehot
    pop = pop + pop.T  # symmetrised pair populations; diagonal = 2x on-site
    gross = pop.sum(axis=1) / 2.0
    valence = np.array([wfs.setups[a].Nv for a in range(n)], float)
    return valence - gross, pop, valence


def _full_hermitian(S):
    """GPAW may fill only the lower triangle of S_MM; complete it."""
    if np.allclose(np.triu(S, 1), 0.0) and not np.allclose(np.tril(S, -1), 0.0):
        S = np.tril(S) + np.tril(S, -1).conj().T
    return S


def gpaw_version() -> str:
    """``"gpaw <version>"`` (provenance of the GPAW engines)."""
    try:
        import gpaw
    except ImportError:
        return "gpaw not installed"
    return f"gpaw {gpaw.__version__}"


def log_file(log_dir: str | None, tag: str) -> str | None:
    """GPAW ``txt`` for one calculation: ``<log_dir>/<tag>.txt`` (folder created), None: silent."""
    if not log_dir:
        return None
    from pathlib import Path
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    return str(Path(log_dir) / f"{tag}.txt")


def n_empty_bands(volume_A3: float, empty_ev: float) -> int:
    """Free-electron estimate (x1.3, +8) of the bands per spin up to ``empty_ev`` above the CBM."""
    v = volume_A3 / Bohr**3
    k = math.sqrt(2.0 * empty_ev / Hartree)
    return int(math.ceil(1.3 * v * k**3 / (6 * math.pi**2))) + 8


class GPAWEngine(Engine):
    """Plane-wave PBE core-hole engine (see module docstring).

    ecut: plane-wave cutoff (eV); kpts: GPAW k-point spec for the supercell (default Gamma),
    or kdensity (k-points per Å^-1); min_image_distance: Å between periodic images of the excited O;
    nbands_above: empty bands for the spectrum (default: free-electron estimate for ``empty_ev``
    eV); converge_fraction: share of the empty bands converged; gaussian_fwhm, lorentzian_fwhm:
    broadening (eV); de: output axis step (eV); basis: LCAO basis for Mulliken/BOP;
    log_dir: folder for GPAW text logs (default: silent); delta_ks: False skips the full-core-hole
    SCF (excitation energy NaN, the first transition placed at 0 eV: a relative axis).
    """

    name = "gpaw"

    def __init__(self, mode: str = "pw", ecut: float = 400.0, xc: str = "PBE", kpts=None,
                 kdensity: float | None = None, min_image_distance: float = 8.0,
                 nbands_above: int | None = None, empty_ev: float = 30.0,
                 converge_fraction: float = 0.8, gaussian_fwhm: float = 1.0,
                 lorentzian_fwhm: float = 0.2, de: float = 0.05, basis: str = "dzp",
                 maxiter: int = 300, log_dir: str | None = None, delta_ks: bool = True):
        if mode not in ("pw", "fd"):
            raise CorelossError(f"gpaw engine: mode must be 'pw' or 'fd', not {mode!r}")
        if not 0 < converge_fraction <= 1:
            raise CorelossError("gpaw engine: converge_fraction must be in (0, 1]")
        super().__init__(mode=mode, ecut=float(ecut), xc=xc, kpts=kpts, kdensity=kdensity,
                         min_image_distance=float(min_image_distance), nbands_above=nbands_above,
                         empty_ev=float(empty_ev), converge_fraction=float(converge_fraction),
                         gaussian_fwhm=float(gaussian_fwhm), lorentzian_fwhm=float(lorentzian_fwhm),
                         de=float(de), basis=basis, maxiter=int(maxiter), log_dir=log_dir,
                         **({} if delta_ks else {"delta_ks": False}))

    @property
    def version(self) -> str:
        return gpaw_version()

    # -- calculator parameters -------------------------------------------------------------
    def _kpts(self):
        p = self.params
        if p["kdensity"] is not None:
            return {"density": float(p["kdensity"]), "gamma": True}
        return p["kpts"] if p["kpts"] is not None else (1, 1, 1)

    def _common(self, tag: str) -> dict:
        p = self.params
        mode = {"name": "pw", "ecut": p["ecut"]} if p["mode"] == "pw" else "fd"
        return {"mode": mode, "xc": p["xc"], "kpts": self._kpts(), "maxiter": p["maxiter"],
                "txt": log_file(p["log_dir"], tag)}

    # -- the engine ----------------------------------------------------------------------
    def compute_sites(self, structure, site_indices: Sequence[int]) -> list[SiteResult | EngineError]:
        from pymatgen.io.ase import AseAtomsAdaptor

        from coreloss.engines import gpaw_setups
        from coreloss.sites import first_shell

        _import_gpaw()
        structure, sites = self.check_sites(structure, site_indices)
        if not sites:
            return []
        setup_dir = gpaw_setups.activate(("hch1s", "fch1s"), self.params["xc"])
        sc, _, scale = make_supercell(structure, sites[0], self.params["min_image_distance"])
        n_cells = int(np.prod(scale))  # site i of the cell is atom i * n_cells of the supercell
        atoms = gpaw_atoms(sc)
        timings: dict[str, float] = {}
        try:
            t0 = time.perf_counter()
            e_gs = (ground_state_energy(atoms, **self._common("ground_state"))
                    if self.params.get("delta_ks", True) else float("nan"))  # only for Delta-KS
            timings["ground_state_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            charges, pops, valence = lcao_populations(atoms, self.params["basis"],
                                                      self.params["xc"],
                                                      txt=self._common("lcao")["txt"])
            timings["lcao_s"] = time.perf_counter() - t0
        except Exception as exc:  # SCF failure etc.: every site of this structure fails
            msg = f"gpaw ground state failed: {type(exc).__name__}: {exc}".replace("\n", " ")
            return [EngineError(msg) for _ in sites]

        n_occ = int(math.ceil(valence.sum() / 2.0))
        n_empty = self.params["nbands_above"] or n_empty_bands(atoms.get_volume(),
                                                               self.params["empty_ev"])
        nbands = n_occ + int(n_empty)
        conv = n_occ + max(1, int(self.params["converge_fraction"] * n_empty))
        base = self.provenance()
        base.update({"supercell_matrix": np.diag(scale).tolist(), "supercell_atoms": len(atoms),
                     "setups": {"excited_spectrum": "hch1s", "excited_energy": "fch1s",
                                "others": "gpaw-data standard", "cache": str(setup_dir)},
                     "kpts": self._kpts(), "nbands": nbands, "occupied_bands": n_occ,
                     "convergence": {"bands": conv, "other": "GPAW defaults"},
                     "lcao": {"basis": self.params["basis"], "kpts": "Gamma (supercell)"},
                     "dks": "fch1s, charge -1, spin-polarised, fixed magmom 1 on the site",
                     "broadening": {"profile": "voigt",
                                    "gaussian_fwhm_eV": self.params["gaussian_fwhm"],
                                    "lorentzian_fwhm_eV": self.params["lorentzian_fwhm"]},
                     "energy_reference": "DKS excitation energy at the first transition",
                     "units": {"energy": "eV", "mulliken_charge": "e", "bop": "e"}})
        out: list[SiteResult | EngineError] = []
        for i in sites:
            j = i * n_cells
            try:
                t_site = dict(timings)
                t0 = time.perf_counter()
                if self.params.get("delta_ks", True):
                    e_exc = dks_excited_energy(atoms, j, "fch1s", **self._common(f"fch_{i}"))
                    t_site["fch_s"] = time.perf_counter() - t0
                    dks = e_exc - e_gs
                else:  # spectrum only: relative axis, first transition at 0 eV
                    e_exc, dks, t_site["fch_s"] = float("nan"), 0.0, 0.0
                t0 = time.perf_counter()
                e_st, f_st, e_max = core_hole_sticks(atoms, j, nbands, conv, dks, "hch1s",
                                                     **self._common(f"hch_{i}"))
                t_site["hch_s"] = time.perf_counter() - t0
                keep = e_st <= e_max
                energy = np.arange(e_st[keep].min() - 8.0, e_max + 5.0, self.params["de"])
                inten = broaden_sticks(e_st[keep], f_st[keep], energy, self.params["gaussian_fwhm"],
                                       self.params["lorentzian_fwhm"])
                # first shell on the supercell: distinct atoms; in a cell too small for that, a
                # cation seen twice is one atom whose Gamma pair population sums all its images
                shell = first_shell(sc, j)
                bop = float(sum(pops[j, c] for c in dict.fromkeys(c for c, _ in shell)))
                prov = dict(base)
                prov.update({"timings_s": t_site, "supercell_index": j, "first_shell": shell,
                             "spectrum_max_eV": e_max, "E_gs_eV": e_gs, "E_fch_eV": e_exc})
                out.append(SiteResult(i, energy, inten, onset_energy(energy, inten),
                                      {"mulliken_charge": float(charges[j]), "bop": bop,
                                       "excitation_energy": float(e_exc - e_gs)}, prov))
            except Exception as exc:
                msg = f"gpaw site {i}: {type(exc).__name__}: {exc}".replace("\n", " ")
                out.append(EngineError(msg))
        return out
