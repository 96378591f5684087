"""The six O-site properties coreloss predicts: names, units and exact definitions.

Geometric labels are computed in :mod:`coreloss.sites`, electronic labels by an engine
(:mod:`coreloss.engines`). The order of :data:`LABEL_NAMES` is the column order everywhere
(datasets, models, CSV output).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    name: str
    unit: str
    kind: str  # "geometric" or "electronic"
    description: str


LABELS: tuple[Label, ...] = (
    Label("bond_length", "Å", "geometric",
          "mean O-cation distance over the first shell (see coreloss.sites)"),
    Label("bond_angle", "deg", "geometric",
          "mean cation-O-cation angle over all pairs of first-shell cations"),
    Label("voronoi_volume", "Å^3", "geometric",
          "volume of the O site's cell in a periodic Voronoi tessellation of all atoms"),
    Label("bop", "e", "electronic",
          "bond overlap population: Mulliken overlap population summed over the O-cation first-shell bonds"),
    Label("mulliken_charge", "e", "electronic",
          "Mulliken charge of the O atom (positive = electron deficient)"),
    Label("excitation_energy", "eV", "electronic",
          "core-level transition energy of the O 1s edge (engine-specific; see the engine's provenance)"),
)

LABEL_NAMES: tuple[str, ...] = tuple(lab.name for lab in LABELS)
LABEL_UNITS: dict[str, str] = {lab.name: lab.unit for lab in LABELS}
GEOMETRIC_LABELS: tuple[str, ...] = tuple(lab.name for lab in LABELS if lab.kind == "geometric")
ELECTRONIC_LABELS: tuple[str, ...] = tuple(lab.name for lab in LABELS if lab.kind == "electronic")


def label(name: str) -> Label:
    """Return the :class:`Label` called ``name`` (KeyError if unknown)."""
    for lab in LABELS:
        if lab.name == name:
            return lab
    raise KeyError(name)
