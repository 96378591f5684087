"""The one engine interface, in the spirit of ASE calculators.

An :class:`Engine` takes a pymatgen ``Structure`` and the indices of O sites and returns one
:class:`SiteResult` per site: an O K-edge spectrum on the engine's own absolute energy axis,
its onset, the three electronic labels and provenance. Engines are separate modules registered
in :mod:`coreloss.engines` (or through the ``coreloss.engines`` entry-point group).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from coreloss import __version__
from coreloss.spectra import DEFAULT_GRID, EnergyGrid, align_to_grid

#: keys of SiteResult.labels every engine fills (units: e, e, eV; see coreloss.labels)
ENGINE_LABELS = ("mulliken_charge", "bop", "excitation_energy")


@dataclass
class SiteResult:
    """Output of an engine for one O site.

    energy: absolute energy axis (eV, engine's reference, uniform spacing)
    intensity: broadened O K-edge intensity on ``energy`` (arbitrary units)
    onset: edge onset on the same axis (eV), from :func:`coreloss.spectra.onset_energy`
    labels: ``mulliken_charge`` (e), ``bop`` (e), ``excitation_energy`` (eV)
    provenance: engine name, version, parameters, supercell, timings
    """

    site_index: int
    energy: np.ndarray
    intensity: np.ndarray
    onset: float
    labels: dict[str, float]
    provenance: dict = field(default_factory=dict)

    def aligned(self, grid: EnergyGrid = DEFAULT_GRID) -> np.ndarray:
        """Onset-aligned, area-normalised spectrum on ``grid`` (1/eV)."""
        return align_to_grid(self.energy, self.intensity, self.onset, grid)


class EngineError(RuntimeError):
    """An engine failed on one site (SCF not converged, ...); recorded, never fatal for a build."""


class Engine(ABC):
    """Base class: subclasses set ``name`` and implement :meth:`compute_sites`."""

    name: str = "engine"
    #: cost model (scheduling priority and ETA of a dataset build): a structure task with
    #: ``n_sites`` sites on ``N`` computed atoms costs
    #: ``(ground_state_cost + n_sites * site_cost) * (N / 100) ** cost_exponent`` (relative units)
    cost_exponent: float = 1.7
    ground_state_cost: float = 1.0
    site_cost: float = 1.0
    #: most O sites in one build task (None: all sites of a structure). Sites of a task share its
    #: ground state but reach disk only when the task ends: an expensive engine bounds what a
    #: killed build can lose by splitting a structure's sites into tasks of at most this many.
    sites_per_task: int | None = None

    def __init__(self, **params):
        self.params = dict(params)

    @property
    def version(self) -> str:
        """Version string of the underlying code (e.g. tblite 0.4.0)."""
        return "unknown"

    def provenance(self) -> dict:
        return {"engine": self.name, "engine_version": self.version,
                "parameters": dict(self.params), "coreloss_version": __version__}

    def relative_cost(self, n_atoms: int, n_sites: int) -> float:
        """Relative cost of one structure task (see the class attributes)."""
        return ((self.ground_state_cost + n_sites * self.site_cost)
                * (n_atoms / 100.0) ** self.cost_exponent)

    @abstractmethod
    def compute_sites(self, structure, site_indices: Sequence[int]) -> list[SiteResult | EngineError]:
        """Compute the listed O sites of ``structure``; a failed site yields an :class:`EngineError`."""

    def compute_site(self, structure, site_index: int) -> SiteResult:
        res = self.compute_sites(structure, [site_index])[0]
        if isinstance(res, Exception):
            raise res
        return res
