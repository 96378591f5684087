"""The ``gpaw-lcao`` engine: PBE DFT in an LCAO basis with an O 1s core hole (the default engine).

Per structure, on a supercell whose periodic images of the excited O are >= ``min_image_distance``
apart (Gamma point), one spin-paired LCAO ground state gives ``E_gs`` (+ GPAW's reference energy),
the Mulliken charges and the O-cation overlap populations (BOP; :func:`coreloss.engines.gpaw.populations`).

Per O site, ``scheme``:

* ``"hch+xch"`` (default, two SCFs a site): full core hole (``fch1s`` setup) on the site with the
  excited electron kept in the cell (``charge=-1``: "XCH"). Its total energy gives the absolute
  Delta-KS excitation energy ``E_xch - E_gs`` (eV). ``xch_spinpol=True``: spin-polarised, magnetic
  moment fixed at 1 (GPAW's Delta-KS recipe); ``False`` (default): spin-paired, half the cost,
  minus the constant :data:`PAIRED_XCH_OFFSET_EV` (site to site it follows the spin-polarised
  energy within 0.01 eV), minus the egg-box correction of :mod:`coreloss.engines._eggbox` (the
  excited atom's grid error, up to ~0.25 eV site to site at h 0.25 Å). The spectrum comes from a half-core-hole (``hch1s``, transition
  potential) calculation: O 1s -> empty-state dipole sticks from :class:`gpaw.xas.XAS`, first
  transition placed at the excitation energy;
* ``"xch"`` (one SCF a site): energy and spectrum from the XCH calculation (its spin-0 states
  from the one holding the excited electron up). Cheaper, further from the half-core-hole
  plane-wave reference (docs/engines.md).

Open frameworks (zeolite cages, the channels of quartz) hold diffuse final states that atom-centred
functions cannot represent. With ``ghost_min_distance`` > 0 the half-core-hole calculation carries
ghost atoms (GPAW setup ``'ghost'``: the ``ghost_element``'s basis functions, no nucleus, no
electrons) at the void centres of the supercell (:func:`coreloss.engines._voids.void_centres`:
points >= ``ghost_min_distance`` Å from every atom, >= ``ghost_min_separation`` Å apart). The
ghosts are part of the basis of every SCF of the structure (ground state, XCH, half core hole):
they bring the spectra and the Delta-KS polymorph shift closer to plane waves
(benchmarks/bench_lcao_ghosts.py; BENCHMARKS.md "Ghost functions in voids"); Mulliken
charges and BOP are those of the real atoms (the ghosts hold ~0.01 e).

LCAO states far above the first transition are artefacts of the finite basis: sticks more than
``empty_cut_ev`` above the first transition are dropped; the limit reached is recorded
(``spectrum_max_eV``). Sticks are Voigt-broadened on a uniform absolute energy axis (eV).
Bases other than the shipped ``dzp`` are generated on first use (:mod:`coreloss.engines.gpaw_basis`).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from coreloss.engines._eggbox import PROVENANCE_NOTE as EGGBOX_NOTE
from coreloss.engines._eggbox import eggbox_correction
from coreloss.engines._supercell import make_supercell
from coreloss.engines._voids import void_centres
from coreloss.engines.base import Engine, EngineError, SiteResult
from coreloss.engines.gpaw import (_calc, _import_gpaw, gpaw_atoms, gpaw_version, log_file, populations,
                                   total_energy)
from coreloss.errors import CorelossError
from coreloss.spectra import DEFAULT_GRID, EnergyGrid, align_to_grid, broaden_sticks, onset_energy

SCHEMES = ("xch", "hch+xch")

#: eV: spin-paired XCH total energies lie this far above the spin-polarised ones of GPAW's Delta-KS
#: recipe, the same on every site measured (9.056-9.064 eV on alpha-quartz, stishovite, CHA and
#: disordered cells: benchmarks/bench_lcao_speedups.py energies, BENCHMARKS.md "Cheaper settings");
#: with ``xch_spinpol=False`` the engine subtracts it, so both settings give one energy scale
PAIRED_XCH_OFFSET_EV = 9.06


def lcao_ground_state(atoms, ghosts: dict | None = None, **calc_kw):
    """Spin-paired LCAO ground state: ``(E_gs eV incl. reference energy, charges, pops, valence)``
    (per atom, ghosts included: a ghost's charge is minus the population its functions hold)."""
    atoms = atoms.copy()
    atoms.set_initial_magnetic_moments(None)
    atoms.calc = _calc(**({"setups": dict(ghosts)} if ghosts else {}), **calc_kw)
    e = total_energy(atoms)
    return (e, *populations(atoms.calc))


def xch_state(atoms, index: int, spinpol: bool = False, setup: str = "fch1s", ghosts: dict | None = None,
              **calc_kw):
    """Full core hole on ``index``, excited electron kept (``charge=-1``); returns ``(E eV, calc)``.

    Spin-paired by default (the electron half-fills the lowest empty level of both spins);
    ``spinpol=True``: spin-polarised with the magnetic moment fixed at 1 (GPAW's Delta-KS recipe).
    Zero-width Fermi-Dirac occupations either way.
    """
    from gpaw import FermiDirac

    atoms = atoms.copy()
    if spinpol:
        magmoms = np.zeros(len(atoms))
        magmoms[index] = 1.0
        atoms.set_initial_magnetic_moments(magmoms)
        extra = {"spinpol": True, "occupations": FermiDirac(0.0, fixmagmom=True)}
    else:
        atoms.set_initial_magnetic_moments(None)
        extra = {"occupations": FermiDirac(0.0)}
    atoms.calc = _calc(charge=-1, setups={index: setup, **(ghosts or {})}, **extra, **calc_kw)
    return total_energy(atoms), atoms.calc


def with_ghosts(atoms, positions, element: str = "H"):
    """``atoms`` + ghost atoms of ``element`` at ``positions`` (Å): ``(atoms, {index: 'ghost'})``."""
    from ase import Atoms

    if len(positions) == 0:
        return atoms, {}
    n = len(atoms)
    out = atoms + Atoms(element * len(positions), positions=positions, cell=atoms.cell, pbc=atoms.pbc)
    return out, {n + k: "ghost" for k in range(len(positions))}


def hch_state(atoms, index: int, setup: str = "hch1s", ghosts: dict | None = None, **calc_kw):
    """Half core hole on ``index`` (neutral, spin-paired; transition potential); returns the calc.
    ``ghosts``: ``{atom index: 'ghost'}`` of ghost atoms already in ``atoms`` (:func:`with_ghosts`)."""
    atoms = atoms.copy()
    atoms.set_initial_magnetic_moments(None)
    atoms.calc = _calc(setups={index: setup, **(ghosts or {})}, **calc_kw)
    atoms.get_potential_energy()
    return atoms.calc


def xas_sticks(calc, index: int, first: float, include_excited: bool = False):
    """O 1s -> empty-state sticks of a core-hole ``calc``: ``(energies eV, strengths, e_top eV)``.

    Strengths summed over x, y, z; the first stick sits at ``first``; ``include_excited``: the
    calculation is a spin-polarised XCH whose spin-0 channel already holds the excited electron,
    so its highest occupied state is the first final state. ``e_top``: the highest state on that axis.
    """
    from gpaw.xas import XAS

    xas = XAS(calc, mode="xas", center=index, spin=0,
              relative_index_lumo=-1 if include_excited else 0)
    energies, f_cn = xas.get_oscillator_strength(dks=first)
    shift = first - float(np.min(xas.eps_kn))
    return np.asarray(energies, float), np.asarray(f_cn).sum(axis=0), float(np.max(xas.eps_kn)) + shift


def kept_sticks(e_st, f_st, first: float, e_top: float, empty_cut_ev: float = 28.0):
    """``(energies, strengths, e_max)``: the sticks at or below ``e_max = min(first + empty_cut_ev,
    e_top)`` (those above are basis artefacts, or beyond the highest state)."""
    e_st, f_st = np.asarray(e_st, float), np.asarray(f_st, float)
    e_max = min(first + empty_cut_ev, e_top)
    keep = e_st <= e_max
    return e_st[keep], f_st[keep], e_max


def sticks_to_spectrum(e_st, f_st, first: float, e_top: float, empty_cut_ev: float = 28.0,
                       gaussian_fwhm: float = 1.0, lorentzian_fwhm: float = 0.2, de: float = 0.05):
    """The engine's one rule from sticks to a spectrum: ``(energy eV, intensity, e_max eV, n_kept)``.

    The :func:`kept_sticks` are Voigt-broadened (FWHM in eV) on a uniform axis from ``first - 8``
    to ``e_max + 5`` eV with step ``de``.
    """
    e_st, f_st, e_max = kept_sticks(e_st, f_st, first, e_top, empty_cut_ev)
    energy = np.arange(first - 8.0, e_max + 5.0, de)
    return (energy, broaden_sticks(e_st, f_st, energy, gaussian_fwhm, lorentzian_fwhm), e_max, len(e_st))


def sticks_record(e_st, f_st, first: float, e_top: float, empty_cut_ev: float) -> dict:
    """The kept sticks of a site as its provenance stores them (energies relative to the first
    transition, 0.1 meV; strengths relative to the largest, 7 digits), so that the spectrum can be
    broadened again later (:func:`spectrum_from_sticks`)."""
    e, f, e_max = kept_sticks(e_st, f_st, first, e_top, empty_cut_ev)
    scale = float(f.max()) if len(f) and f.max() > 0 else 1.0
    return {"energy_eV": np.round(e - first, 4).tolist(), "strength": [float(f"{v:.7g}") for v in f / scale],
            "energy_reference": "first transition (the site's excitation energy)",
            "strength_units": "relative to the largest stick", "e_max_eV": round(e_max - first, 4)}


def spectrum_from_sticks(sticks: dict, first: float, gaussian_fwhm: float = 1.0, lorentzian_fwhm: float = 0.2,
                         de: float = 0.05):
    """``(energy eV, intensity)`` of a stored :func:`sticks_record` broadened with other widths
    (FWHM, eV), on the engine's absolute axis (``first``: the site's excitation energy, eV)."""
    e = np.asarray(sticks["energy_eV"], float) + first
    f = np.asarray(sticks["strength"], float)
    top = first + float(sticks["e_max_eV"])
    energy, inten, _, _ = sticks_to_spectrum(e, f, first, top, np.inf, gaussian_fwhm, lorentzian_fwhm, de)
    return energy, inten


def rebroadened_spectra(site_provenance, excitation_energies, gaussian_fwhm: float,
                        lorentzian_fwhm: float = 0.2, grid: EnergyGrid = DEFAULT_GRID, de: float = 0.05):
    """Dataset rows broadened again: onset-aligned, area-normalised spectra ``(n, grid.n)`` (1/eV)
    from the sticks each row's provenance stores (``Dataset.site_provenance``, the rows' excitation
    energies in eV), with the engine's onset rule; NaN rows where a site has no stored sticks."""
    X = np.full((len(site_provenance), grid.n), np.nan)
    for k, (info, e_x) in enumerate(zip(site_provenance, excitation_energies)):
        st = ((info or {}).get("engine") or {}).get("sticks")
        if st:
            energy, inten = spectrum_from_sticks(st, float(e_x), gaussian_fwhm, lorentzian_fwhm, de)
            X[k] = align_to_grid(energy, inten, onset_energy(energy, inten), grid)
    return X


class GPAWLCAOEngine(Engine):
    """LCAO PBE core-hole engine (see module docstring).

    basis: LCAO basis type (``tzdp`` default; ``dzp`` ships with gpaw-data); h: real-space grid
    spacing (Å; 0.30 would give the spectra of 0.25 at ~19 % less CPU but moves the Delta-KS energy
    site-dependently: alpha-quartz -> stishovite shift -0.02 eV instead of +0.29, bench_lcao_speedups.py); scheme: ``xch`` or ``hch+xch``; xch_spinpol: spin-polarised XCH (2x cost; see module doc);
    scf_density: SCF stops when the density changes by less than this (electrons per valence
    electron; against GPAW's default 1e-4 on alpha-quartz: Delta-KS 2e-4 eV, spectrum cosine
    0.9999999, ~15 % less time; benchmarks/bench_lcao_speedups.py); empty_cut_ev: sticks kept up to this many eV above the first transition; min_image_distance:
    Å between periodic images of the excited O; gaussian_fwhm, lorentzian_fwhm: Voigt broadening
    (eV); de: output axis step (eV); ghost_min_distance, ghost_min_separation (Å; 0 turns ghosts
    off), ghost_element: ghost basis functions in the voids (module docstring); eggbox_correction:
    remove the grid (egg-box) error of the excited atom from the Delta-KS energy (:mod:`._eggbox`);
    log_dir: folder for GPAW text logs (default: silent).
    """

    name = "gpaw-lcao"
    #: cost model (Engine.cost): CPU seconds of 36-288-atom supercells (benchmarks/bench_lcao_cost.py;
    #: BENCHMARKS.md "Cost with the current defaults"): exponent 2.04 per site, 2.1 ground state
    cost_exponent = 2.05

    def __init__(self, basis: str = "tzdp", h: float = 0.25, xc: str = "PBE", scheme: str = "hch+xch",
                 xch_spinpol: bool = False, empty_cut_ev: float = 28.0,
                 min_image_distance: float = 8.0, gaussian_fwhm: float = 1.0,
                 lorentzian_fwhm: float = 0.2, de: float = 0.05, maxiter: int = 300,
                 scf_density: float = 1e-3, ghost_min_distance: float = 2.0,
                 ghost_min_separation: float = 2.5, ghost_element: str = "H", eggbox_correction: bool = True,
                 log_dir: str | None = None):
        if scheme not in SCHEMES:
            raise CorelossError(f"gpaw-lcao engine: scheme must be one of {SCHEMES}, not {scheme!r}")
        if not (h > 0 and empty_cut_ev > 0 and min_image_distance > 0 and scf_density > 0):
            raise CorelossError("gpaw-lcao engine: h, empty_cut_ev, min_image_distance and scf_density must be > 0")
        if ghost_min_distance < 0 or (ghost_min_distance > 0 and ghost_min_separation <= 0):
            raise CorelossError("gpaw-lcao engine: ghost_min_distance must be >= 0 (0: no ghosts) and "
                                "ghost_min_separation > 0")
        # per site: XCH (spin-polarised, ~2-2.5 ground states) plus hch (~1)
        self.site_cost = (1.0 + (2.0 if xch_spinpol else 1.0)) if scheme == "hch+xch" else 2.3
        self.sites_per_task = 6  # ~30 min of work at most in flight per worker (72 atoms)
        super().__init__(basis=str(basis), h=float(h), xc=xc, scheme=scheme,
                         xch_spinpol=bool(xch_spinpol), empty_cut_ev=float(empty_cut_ev),
                         min_image_distance=float(min_image_distance),
                         gaussian_fwhm=float(gaussian_fwhm), lorentzian_fwhm=float(lorentzian_fwhm),
                         de=float(de), maxiter=int(maxiter), scf_density=float(scf_density),
                         ghost_min_distance=float(ghost_min_distance),
                         ghost_min_separation=float(ghost_min_separation), ghost_element=str(ghost_element),
                         eggbox_correction=bool(eggbox_correction), log_dir=log_dir)

    @property
    def version(self) -> str:
        return gpaw_version()

    def _kw(self, tag: str) -> dict:
        p = self.params
        return {"mode": "lcao", "basis": p["basis"], "h": p["h"], "xc": p["xc"], "kpts": (1, 1, 1),
                "maxiter": p["maxiter"], "nbands": "nao", "convergence": {"density": p["scf_density"]},
                "txt": log_file(p["log_dir"], tag)}

    def _cell(self, structure):
        """``(supercell, scale, n_cells, voids, atoms, ghosts)``: the cell every SCF of ``structure``
        uses. Site i of ``structure`` is atom ``i * n_cells`` of the supercell and of ``atoms``;
        ghost atoms (at ``voids``, Å) are appended after the supercell's atoms."""
        p = self.params
        sc, _, scale = make_supercell(structure, 0, p["min_image_distance"])
        voids = (void_centres(sc, p["ghost_min_distance"], p["ghost_min_separation"])
                 if p["ghost_min_distance"] > 0 else np.zeros((0, 3)))
        atoms, ghosts = with_ghosts(gpaw_atoms(sc), voids, p["ghost_element"])
        return sc, scale, int(np.prod(scale)), voids, atoms, ghosts

    def eggbox(self, structure, site_index: int) -> tuple[float, list[float]]:
        """``(correction eV, sub-grid offset)`` the engine subtracts from the Delta-KS energy of
        ``site_index`` (geometry only: two SCFs of the isolated atom; :mod:`._eggbox`)."""
        from coreloss.engines import gpaw_basis, gpaw_setups

        _import_gpaw()
        structure, (site,) = self.check_sites(structure, [site_index])
        p = self.params
        gpaw_setups.activate(self._core_holes(), p["xc"])
        gpaw_basis.ensure_bases(["O"], p["basis"], self._core_holes(), p["xc"])
        *_, n_cells, _, atoms, _ = self._cell(structure)
        j = site * n_cells
        return eggbox_correction(atoms.cell.array, atoms.positions[j], p["h"], atoms[j].symbol,
                                 "fch1s", p["basis"], p["xc"])

    def _core_holes(self) -> tuple[str, ...]:
        return ("fch1s",) if self.params["scheme"] == "xch" else ("hch1s", "fch1s")

    def compute_sites(self, structure, site_indices: Sequence[int]) -> list[SiteResult | EngineError]:
        from coreloss.engines import gpaw_basis, gpaw_setups

        _import_gpaw()
        structure, sites = self.check_sites(structure, site_indices)
        if not sites:
            return []
        p = self.params
        setup_dir = gpaw_setups.activate(self._core_holes(), p["xc"])
        ghost_on = p["ghost_min_distance"] > 0
        bases = gpaw_basis.ensure_bases([s.specie.symbol for s in structure]
                                        + ([p["ghost_element"]] if ghost_on else []), p["basis"],
                                        self._core_holes(), p["xc"])
        sc, scale, n_cells, voids, atoms, ghosts = self._cell(structure)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            e_gs, charges, pops, valence = lcao_ground_state(atoms, ghosts, **self._kw("ground_state"))
        except Exception as exc:  # SCF failure etc.: every site of this structure fails
            msg = f"gpaw-lcao ground state failed: {type(exc).__name__}: {exc}".replace("\n", " ")
            return [EngineError(msg) for _ in sites]
        t_gs = (time.perf_counter() - t0, time.process_time() - c0)
        base = self.provenance()
        base.update({"supercell_matrix": np.diag(scale).tolist(), "supercell_atoms": len(sc),
                     "setups": {"excited": list(self._core_holes()), "others": "gpaw-data standard",
                                "cache": str(setup_dir)},
                     "bases": bases, "kpts": "Gamma (supercell)", "nbands": "nao (all LCAO states)",
                     "occupied_bands": int(round(valence.sum() / 2.0)),
                     "excitation_energy": "Delta-KS E(XCH: fch1s, charge -1, "
                     + ("spin-polarised, fixed magmom 1" if p["xch_spinpol"] else
                        f"spin-paired, minus {PAIRED_XCH_OFFSET_EV} eV to the spin-polarised scale")
                     + ") - E(ground state), both + GPAW reference energies"
                     + (", " + EGGBOX_NOTE if p["eggbox_correction"] else ""),
                     "spectrum": "XCH final state (fch1s, electron kept)" if p["scheme"] == "xch"
                     else "half core hole (hch1s, transition potential)",
                     "broadening": {"profile": "voigt", "gaussian_fwhm_eV": p["gaussian_fwhm"],
                                    "lorentzian_fwhm_eV": p["lorentzian_fwhm"]},
                     "energy_reference": "Delta-KS excitation energy at the first transition",
                     "mulliken_basis": p["basis"],
                     "ghosts": {"n": len(voids), "element": p["ghost_element"], "used_in": "every SCF (basis)",
                                "rule": f"void centres >= {p['ghost_min_distance']} A from every atom, "
                                        f">= {p['ghost_min_separation']} A apart" if ghost_on else "off"},
                     "units": {"energy": "eV", "mulliken_charge": "e", "bop": "e"}})
        out: list[SiteResult | EngineError] = []
        for i in sites:
            try:
                out.append(self._site(sc, atoms, ghosts, i, i * n_cells, e_gs, charges, pops, t_gs, base))
            except Exception as exc:  # noqa: BLE001 - one failed site never stops the others
                out.append(EngineError(f"gpaw-lcao site {i}: {type(exc).__name__}: {exc}"
                                       .replace("\n", " ")))
        return out

    def _site(self, sc, atoms, ghosts, i, j, e_gs, charges, pops, t_gs, base) -> SiteResult:
        from coreloss.sites import first_shell

        p = self.params
        timings, cpu = {"ground_state_s": t_gs[0]}, {"ground_state_s": t_gs[1]}
        t0, c0 = time.perf_counter(), time.process_time()
        e_x, calc = xch_state(atoms, j, p["xch_spinpol"], ghosts=ghosts, **self._kw(f"xch_{i}"))
        timings["xch_s"], cpu["xch_s"] = time.perf_counter() - t0, time.process_time() - c0
        dks_raw = e_x - e_gs - (0.0 if p["xch_spinpol"] else PAIRED_XCH_OFFSET_EV)
        eggbox, offset = 0.0, None
        if p["eggbox_correction"]:
            t0, c0 = time.perf_counter(), time.process_time()
            eggbox, offset = eggbox_correction(atoms.cell.array, atoms.positions[j], p["h"],
                                               atoms[j].symbol, "fch1s", p["basis"], p["xc"])
            timings["eggbox_s"], cpu["eggbox_s"] = time.perf_counter() - t0, time.process_time() - c0
        dks = dks_raw - eggbox
        if p["scheme"] == "xch":
            e_st, f_st, e_top = xas_sticks(calc, j, dks, include_excited=p["xch_spinpol"])
        else:
            t0, c0 = time.perf_counter(), time.process_time()
            calc = hch_state(atoms, j, ghosts=ghosts, **self._kw(f"hch_{i}"))
            timings["hch_s"], cpu["hch_s"] = time.perf_counter() - t0, time.process_time() - c0
            e_st, f_st, e_top = xas_sticks(calc, j, dks)
        energy, inten, e_max, n_kept = sticks_to_spectrum(e_st, f_st, dks, e_top, p["empty_cut_ev"],
                                                          p["gaussian_fwhm"], p["lorentzian_fwhm"], p["de"])
        shell = first_shell(sc, j)  # distinct atoms in the supercell
        bop = float(sum(pops[j, c] for c in dict.fromkeys(c for c, _ in shell)))
        prov = dict(base)
        prov.update({"timings_s": timings, "cpu_timings_s": cpu, "supercell_index": j, "first_shell": shell,
                     "spectrum_max_eV": e_max, "highest_state_eV": e_top,
                     "empty_reach_eV": e_max - dks, "E_gs_eV": e_gs, "E_xch_eV": e_x,
                     "dks_uncorrected_eV": dks_raw, "eggbox_correction_eV": eggbox, "grid_offset": offset,
                     "n_sticks": n_kept, "sticks": sticks_record(e_st, f_st, dks, e_top, p["empty_cut_ev"])})
        return SiteResult(i, energy, inten, onset_energy(energy, inten),
                          {"mulliken_charge": float(charges[j]), "bop": bop,
                           "excitation_energy": float(dks)}, prov)
