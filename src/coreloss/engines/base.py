"""The one engine interface, in the spirit of ASE calculators.

An :class:`Engine` takes a pymatgen ``Structure`` and the indices of O sites and returns one
:class:`SiteResult` per site: an O K-edge spectrum on the engine's own absolute energy axis,
its onset, the electronic labels it implements and provenance. Engines are separate modules
registered in :mod:`coreloss.engines` (or through the ``coreloss.engines`` entry-point group).

The contract every engine follows (checked for each registered engine in tests/test_engines_contract.py):

* ``name`` and ``implemented_labels`` (the :data:`coreloss.labels.ELECTRONIC_LABELS` it fills);
* ``default_parameters``: the keyword parameters and their defaults, read from the subclass's
  ``__init__`` signature; the base class rejects any other name with one :class:`CorelossError`
  before the subclass runs; ``params`` (provenance) holds the parameters after construction;
* :meth:`Engine.cost`: the one cost hook the dataset builder uses (scheduling order and ETA),
  with ``sites_per_task`` bounding the O sites of one build task;
* :meth:`Engine.compute_sites` -> one :class:`SiteResult` or :class:`EngineError` per site; its
  input is checked by :meth:`Engine.check_sites` (the one rule for structure and O-site indices).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np

from coreloss import __version__
from coreloss.errors import CorelossError
from coreloss.labels import ELECTRONIC_LABELS
from coreloss.spectra import DEFAULT_GRID, EnergyGrid, align_to_grid


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
    """Base class: subclasses set ``name``, take their parameters as keywords with defaults in
    ``__init__`` (passing them all to ``super().__init__``) and implement :meth:`compute_sites`."""

    name: str = "engine"
    #: keys of SiteResult.labels this engine fills (units: e, e, eV; see coreloss.labels)
    implemented_labels: tuple[str, ...] = ELECTRONIC_LABELS
    #: parameter name -> default, from the subclass's ``__init__`` signature (set per subclass)
    default_parameters: ClassVar[dict[str, Any]] = {}
    _open_parameters: ClassVar[bool] = True
    #: cost model of :meth:`cost` (relative units; see there)
    cost_exponent: float = 1.7
    ground_state_cost: float = 1.0
    site_cost: float = 1.0
    #: most O sites in one build task (None: all sites of a structure). Sites of a task share its
    #: ground state but reach disk only when the task ends: an expensive engine bounds what a
    #: killed build can lose by splitting a structure's sites into tasks of at most this many.
    sites_per_task: int | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        sig = inspect.signature(cls.__init__)
        cls.default_parameters = {
            k: p.default for k, p in sig.parameters.items()
            if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        # an ``__init__(**params)`` engine checks its parameters itself
        cls._open_parameters = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())

    def __new__(cls, *args, **params):
        if args:
            raise CorelossError(f"{cls.name} engine parameters are keywords (name=value), "
                                f"got {len(args)} positional argument(s)")
        unknown = [] if cls._open_parameters else sorted(set(params) - set(cls.default_parameters))
        if unknown:
            known = ", ".join(cls.default_parameters) or "none"
            raise CorelossError(f"unknown {cls.name} engine parameter(s): {', '.join(unknown)}; "
                                f"known: {known}")
        return super().__new__(cls)

    def __init__(self, **params):
        self.params = dict(params)

    @property
    def version(self) -> str:
        """Version string of the underlying code (e.g. tblite 0.4.0)."""
        return "unknown"

    def provenance(self) -> dict:
        return {"engine": self.name, "engine_version": self.version,
                "parameters": dict(self.params), "coreloss_version": __version__}

    def cost(self, n_atoms: int, n_sites: int) -> float:
        """Relative cost of one build task: ``n_sites`` O sites of a structure whose calculation
        holds ``n_atoms`` atoms (after any supercell), ``(ground_state_cost + n_sites * site_cost)
        * (n_atoms / 100) ** cost_exponent``. The dataset builder orders tasks by it (largest
        first) and turns it into its ETA; an engine sets the three numbers or overrides this."""
        return ((self.ground_state_cost + n_sites * self.site_cost)
                * (n_atoms / 100.0) ** self.cost_exponent)

    @staticmethod
    def check_sites(structure, site_indices: Sequence[int]) -> tuple:
        """``(structure, sites)``: ``structure`` as a pymatgen ``Structure`` (ASE ``Atoms`` converted)
        and ``site_indices`` as ints; :class:`CorelossError` if one is not an O atom of it."""
        from pymatgen.core import Structure
        if not isinstance(structure, Structure):
            try:
                from pymatgen.io.ase import AseAtomsAdaptor
                structure = AseAtomsAdaptor.get_structure(structure)
            except Exception as exc:
                raise CorelossError(f"expected a pymatgen Structure or ASE Atoms, "
                                    f"got {type(structure).__name__}") from exc
        sites = [int(i) for i in site_indices]
        for i in sites:
            if not 0 <= i < len(structure) or structure[i].specie.symbol != "O":
                raise CorelossError(f"site {i} is not an O atom of this "
                                    f"{structure.composition.reduced_formula} structure")
        return structure, sites

    @abstractmethod
    def compute_sites(self, structure, site_indices: Sequence[int]) -> list[SiteResult | EngineError]:
        """Compute the listed O sites of ``structure``; a failed site yields an :class:`EngineError`."""

    def compute_site(self, structure, site_index: int) -> SiteResult:
        res = self.compute_sites(structure, [site_index])[0]
        if isinstance(res, Exception):
            raise res
        return res
