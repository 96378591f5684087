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
    return normalise_area(spec, grid.step), y, groups
