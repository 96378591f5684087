"""Synthetic O K-edge-like spectra whose peaks depend on the six labels (tests, benchmarks, demos).

Not physics: a fast, seeded generator with a known spectrum <-> label relation, used to exercise
the models without an engine. Each "structure" gets a random base environment; its sites vary
around it, so structure-grouped splits behave like real data.
"""

from __future__ import annotations

import numpy as np

from coreloss.spectra import DEFAULT_GRID, EnergyGrid, normalise_area

#: plausible label ranges for SiO2 O sites (bond_length A, angle deg, volume A^3, bop e, charge e, E eV)
LABEL_RANGES = np.array([[1.58, 1.66], [130.0, 180.0], [10.0, 18.0], [0.5, 0.8], [-1.4, -0.9],
                         [530.0, 536.0]])


def synthetic_dataset(n_structures: int = 20, sites_per_structure: int = 8, grid: EnergyGrid = DEFAULT_GRID,
                      seed: int = 0):
    """Return ``X`` (n, grid.n) unit-area spectra, ``y`` (n, 6) labels and ``groups`` (structure ids)."""
    rng = np.random.default_rng(seed)
    lo, hi = LABEL_RANGES[:, 0], LABEL_RANGES[:, 1]
    base = rng.uniform(0.2, 0.8, size=(n_structures, 6))
    u = np.clip(np.repeat(base, sites_per_structure, axis=0)
                + rng.normal(0, 0.1, size=(n_structures * sites_per_structure, 6)), 0, 1)
    y = lo + u * (hi - lo)
    groups = np.repeat([f"syn-{i:03d}" for i in range(n_structures)], sites_per_structure)
    return synthetic_spectra(u, grid), y, groups


def synthetic_spectra(u: np.ndarray, grid: EnergyGrid = DEFAULT_GRID) -> np.ndarray:
    """Unit-area spectra (n, grid.n) from labels scaled to [0, 1] (``u``, shape (n, 6))."""
    u = np.clip(np.nan_to_num(np.asarray(u, float), nan=0.5), 0, 1)
    e = grid.energies[None, :]
    # peak positions / widths / heights driven by (combinations of) the normalised labels
    p1 = 1.5 + 2.0 * u[:, [0]] + 0.5 * u[:, [4]]
    p2 = 6.0 + 4.0 * u[:, [1]]
    p3 = 14.0 + 5.0 * u[:, [2]] - 1.0 * u[:, [3]]
    w1 = 0.8 + 0.8 * u[:, [3]]
    h2 = 0.4 + 0.6 * u[:, [4]]
    h3 = 0.3 + 0.4 * u[:, [5]]
    step = 1.0 / (1.0 + np.exp(-(e - 0.0) / 0.4))
    spec = (np.exp(-0.5 * ((e - p1) / w1) ** 2) + h2 * np.exp(-0.5 * ((e - p2) / 1.5) ** 2)
            + h3 * np.exp(-0.5 * ((e - p3) / 2.5) ** 2) + 0.15 * step)
    spec *= step
    return normalise_area(spec, grid.step)


def stishovite():
    """The stishovite cell of the synthetic datasets (a=4.178, c=2.666 Å, x(O)=0.3067): 6 atoms,
    one O site (:func:`coreloss.structures.reference.stishovite`)."""
    from coreloss.structures.reference import stishovite as reference_stishovite

    return reference_stishovite(a=4.178, c=2.666, x=0.3067)


def synthetic_structure_dataset(path, n_structures: int = 8, seed: int = 0, grid: EnergyGrid = DEFAULT_GRID,
                                engine: str = "synthetic"):
    """Write a small contract-4 HDF5 dataset of strained/rattled stishovite cells to ``path``
    (``engine``: the name its provenance gives, e.g. to stand in for a second engine).

    Geometric labels are real (:func:`coreloss.sites.o_sites`); electronic labels and spectra are
    synthetic functions of the geometry. Returns the loaded :class:`~coreloss.dataset.Dataset`.
    """
    from pathlib import Path

    from coreloss.dataset_store import Table, write_dataset
    from coreloss.dataset import load_dataset
    from coreloss.sites import o_sites
    from coreloss.structures.record import StructureRecord

    rng = np.random.default_rng(seed)
    lo, hi = LABEL_RANGES[:, 0], LABEL_RANGES[:, 1]
    table = Table()
    for k in range(n_structures):
        s = stishovite()
        s.apply_strain(rng.uniform(-0.04, 0.04, 3))
        if k % 4:
            s.perturb(0.08, min_distance=0.0)
        sid = f"syn-stishovite-{k:03d}"
        rec = StructureRecord(sid, s, "generated", "synthetic test structure", {"seed": seed})
        rows = []
        for site in o_sites(s):
            geo = np.array([site.bond_length, site.bond_angle, site.voronoi_volume])
            elec = np.array([0.65 - 2.0 * (site.bond_length - 1.77), -1.1 + 0.01 * (site.voronoi_volume - 9),
                             533.0 + 3.0 * (site.bond_length - 1.77)]) + rng.normal(0, 0.005, 3)
            yv = np.concatenate([geo, elec])
            u = (yv - lo) / (hi - lo)
            u[:3] = (geo - [1.70, 110.0, 8.0]) / [0.15, 20.0, 3.0]
            x = synthetic_spectra(u[None], grid)[0]
            rows.append({"structure_id": sid, "site_index": site.index, "multiplicity": site.multiplicity,
                         "onset": 530.0 + float(u[5]), "y": yv, "x": x, "raw_start": grid.start,
                         "raw_step": grid.step, "raw": x.astype(np.float32), "info": {"engine": engine}})
        table.add({"structure_id": sid, "record": rec.to_dict(), "sites": rows, "failures": []})
    path = Path(path)
    write_dataset(path, table, grid, {"engine": engine, "engine_version": "0", "parameters": {},
                                      "coreloss_version": "test"})
    return load_dataset(path)
