"""CHGNet primitives for realistic SiO2 structures: relaxation under pressure, thermal MD snapshots,
melt-quench amorphous cells.

CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023); weights inside its wheel, no download) as an
ASE calculator on the CPU with one torch thread. Relaxations: FIRE on a ``FrechetCellFilter`` with
``scalar_pressure`` (GPa). MD: ASE Langevin (NVT) with a seeded random generator, so a run is
reproducible on one machine (floating-point order may differ elsewhere). Lengths Å, times fs,
temperatures K, pressures GPa, energies eV.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings

import numpy as np
from pymatgen.core import Lattice, Structure

from coreloss.structures.generate import _init_worker, _model

SI_MASS, O_MASS = 28.0855, 15.999          # g/mol
AVOGADRO = 6.02214076e23


def chgnet_version() -> str:
    import chgnet
    return str(getattr(chgnet, "__version__", "unknown"))


def _atoms(structure: Structure):
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    _init_worker()
    atoms = AseAtomsAdaptor.get_atoms(structure)
    with contextlib.redirect_stdout(io.StringIO()):
        atoms.calc = CHGNetCalculator(model=_model(), use_device="cpu")
    return atoms


def _structure(atoms) -> Structure:
    from pymatgen.io.ase import AseAtomsAdaptor
    s = AseAtomsAdaptor.get_structure(atoms)
    return Structure(s.lattice, s.species, s.frac_coords % 1.0)


def _pressure_gpa(atoms) -> float:
    from ase import units
    return float(-np.trace(atoms.get_stress(voigt=False)) / 3.0 / units.GPa)


def relax_at_pressure(structure: Structure, pressure_gpa: float = 0.0, fmax: float = 0.05,
                      steps: int = 600, relax_cell: bool = True) -> dict:
    """FIRE relaxation of positions (and cell, under ``pressure_gpa``) until max force < ``fmax`` eV/Å.

    Returns structure, energy_per_atom (eV), pressure_gpa (the residual pressure of the final cell),
    steps, converged, fmax_final, seconds.
    """
    from ase import units
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    t0 = time.perf_counter()
    atoms = _atoms(structure)
    target = FrechetCellFilter(atoms, scalar_pressure=pressure_gpa * units.GPa) if relax_cell else atoms
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = FIRE(target, logfile=None)
        converged = bool(opt.run(fmax=fmax, steps=steps))
    forces = atoms.get_forces()
    return {"structure": _structure(atoms), "energy_per_atom": float(atoms.get_potential_energy() / len(atoms)),
            "pressure_gpa": _pressure_gpa(atoms), "steps": int(opt.nsteps), "converged": converged,
            "fmax_final": float(np.linalg.norm(forces, axis=1).max()),
            "seconds": time.perf_counter() - t0}


def _langevin(atoms, temperature: float, timestep: float, seed: int, friction: float = 0.02):
    """Langevin NVT integrator (``friction`` in 1/fs) with a seeded generator."""
    from ase import units
    from ase.md.langevin import Langevin

    return Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=friction / units.fs,
                    rng=np.random.RandomState(seed), logfile=None)


def _init_velocities(atoms, temperature: float, seed: int) -> None:
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.RandomState(seed))
    Stationary(atoms)


def md_snapshots(structure: Structure, temperature: float, seed: int, equil_steps: int = 150,
                 n_snapshots: int = 1, interval: int = 100, timestep: float = 2.0) -> dict:
    """NVT Langevin MD at fixed cell; snapshots after ``equil_steps`` and then every ``interval`` steps.

    Returns snapshots [(structure, step, potential energy per atom, instantaneous T)], seconds.
    """
    t0 = time.perf_counter()
    atoms = _atoms(structure)
    _init_velocities(atoms, temperature, seed)
    dyn = _langevin(atoms, temperature, timestep, seed)
    snaps, step = [], 0
    for k in range(n_snapshots):
        n = equil_steps if k == 0 else interval
        dyn.run(n)
        step += n
        snaps.append((_structure(atoms), step, float(atoms.get_potential_energy() / len(atoms)),
                      float(atoms.get_temperature())))
    return {"snapshots": snaps, "seconds": time.perf_counter() - t0}


def cubic_box_length(n_sio2: int, density: float) -> float:
    """Edge (Å) of the cubic cell holding ``n_sio2`` SiO2 units at ``density`` g/cm3."""
    mass_g = n_sio2 * (SI_MASS + 2 * O_MASS) / AVOGADRO
    return float((mass_g / density * 1e24) ** (1.0 / 3.0))


def random_sio2(n_sio2: int, density: float, seed: int, max_tries: int = 20000) -> Structure:
    """Random SiO2 packing in a cubic box: Si-Si >= 2.9, O-O >= 2.3, Si-O >= 1.6 Å, all scaled by
    (2.2/density)^(1/3) (the melt erases the start)."""
    rng = np.random.default_rng(seed)
    length = cubic_box_length(n_sio2, density)
    f = min(1.0, (2.2 / density) ** (1.0 / 3.0))
    dmin = {("Si", "Si"): 2.9 * f, ("O", "O"): 2.3 * f, ("Si", "O"): 1.6 * f, ("O", "Si"): 1.6 * f}
    lat = Lattice.cubic(length)
    species, coords = [], []
    for sp in ["Si"] * n_sio2 + ["O"] * (2 * n_sio2):
        for _ in range(max_tries):
            x = rng.random(3)
            if not coords:
                break
            d = lat.get_all_distances([x], coords)[0]
            limits = np.array([dmin[(sp, s)] for s in species])
            if (d >= limits).all():
                break
        else:
            raise RuntimeError(f"random packing failed at {density} g/cm3")
        species.append(sp)
        coords.append(x)
    return Structure(lat, species, coords)


def quartz_network(n_sio2: int, density: float) -> Structure:
    """An alpha-quartz supercell of ``n_sio2`` SiO2 units (3 per cell: 24 -> 2x2x2), scaled
    isotropically to ``density`` g/cm3: a fully 4:2-coordinated start for a melt-quench."""
    from coreloss.structures.reference import alpha_quartz

    for scale in ([2, 2, 2], [2, 2, 1], [3, 3, 2], [3, 3, 3], [4, 4, 3]):
        if 3 * int(np.prod(scale)) == n_sio2:
            s = alpha_quartz()
            s.make_supercell(scale)
            s.scale_lattice(s.volume * float(s.density) / density)
            return s
    raise ValueError(f"no alpha-quartz supercell with {n_sio2} SiO2 units")


def _msd(atoms, pos0) -> float:
    """Mean square displacement (Å^2) of all atoms from unwrapped positions ``pos0``."""
    return float(np.mean(np.sum((atoms.get_positions(wrap=False) - pos0) ** 2, axis=1)))


def melt_quench(n_sio2: int, density: float, seed: int, t_melt: float = 4000.0, melt_ps: float = 0.3,
                quench_ps: float = 1.0, t_final: float = 300.0, anneal_ps: float = 0.1,
                timestep: float = 1.5, relax_cell: bool = False, fmax: float = 0.05,
                relax_steps: int = 400, prerelax_steps: int = 60, start: str = "random") -> dict:
    """Melt-quench an amorphous cell: start (``random`` packing, or a ``quartz`` network scaled to the
    density, :func:`quartz_network`) -> liquid at ``t_melt`` for ``melt_ps`` ->
    linear quench to ``t_final`` over ``quench_ps`` -> ``anneal_ps`` at ``t_final`` -> FIRE relaxation
    (positions, and the cell at 0 GPa when ``relax_cell``). Quench rate = (t_melt - t_final)/quench_ps.

    Returns structure, energy_per_atom, pressure_gpa, msd_melt (Å^2: mean square displacement
    during the melt, > ~5 shows a liquid), msd_curve ([(ps, Å^2)] every 0.25 ps of the melt: linear
    growth = diffusion, a plateau = a solid), quench_rate_k_per_s, md_steps, relax info, seconds.
    """
    t0 = time.perf_counter()
    first = quartz_network(n_sio2, density) if start == "quartz" else random_sio2(n_sio2, density, seed)
    atoms = _atoms(first)
    # remove the worst contacts of the random start before MD
    start = relax_at_pressure(_structure(atoms), fmax=0.5, steps=prerelax_steps, relax_cell=False)
    atoms = _atoms(start["structure"])
    _init_velocities(atoms, t_melt, seed)
    dyn = _langevin(atoms, t_melt, timestep, seed)
    melt_steps = int(round(melt_ps * 1000 / timestep))
    pos0 = atoms.get_positions(wrap=False).copy()
    curve, done, every = [], 0, max(1, int(round(250 / timestep)))  # MSD every 0.25 ps
    while done < melt_steps:
        n = min(every, melt_steps - done)
        dyn.run(n)
        done += n
        curve.append((round(done * timestep / 1000, 3), _msd(atoms, pos0)))
    msd = curve[-1][1] if curve else 0.0
    quench_steps = int(round(quench_ps * 1000 / timestep))
    chunk = 10
    for k in range(0, quench_steps, chunk):
        temp = t_melt + (t_final - t_melt) * min(1.0, (k + chunk) / quench_steps)
        dyn.set_temperature(temperature_K=temp)
        dyn.run(min(chunk, quench_steps - k))
    dyn.set_temperature(temperature_K=t_final)
    anneal_steps = int(round(anneal_ps * 1000 / timestep))
    dyn.run(anneal_steps)
    rel = relax_at_pressure(_structure(atoms), 0.0, fmax=fmax, steps=relax_steps, relax_cell=relax_cell)
    return {**rel, "msd_melt": msd, "msd_curve": curve, "quench_rate_k_per_s": (t_melt - t_final) / (quench_ps * 1e-12),
            "md_steps": melt_steps + quench_steps + anneal_steps, "seconds": time.perf_counter() - t0}
