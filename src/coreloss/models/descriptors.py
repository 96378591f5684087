"""Local-environment descriptors of O sites: SOAP (dscribe) centred on the O atom.

SOAP (Bartók et al., PRB 87, 184115 (2013)) as implemented by DScribe (Himanen et al., CPC 247,
106949 (2020)); periodic, ``r_cut`` in Å, Gaussian width ``sigma`` in Å, GTO radial basis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from coreloss.errors import CorelossError


@dataclass
class SoapParams:
    """Parameters of the SOAP descriptor (lengths in Å)."""

    species: list[str] = field(default_factory=lambda: ["O", "Si"])
    r_cut: float = 5.5
    n_max: int = 6
    l_max: int = 4
    sigma: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)


def species_of(structures) -> list[str]:
    """Sorted element symbols present in an iterable of pymatgen Structures."""
    return sorted({el.symbol for s in structures for el in s.composition.elements})


class SoapFeaturizer:
    """``featurize(structure, site_indices) -> (n_sites, n_features)`` float array."""

    def __init__(self, params: SoapParams | None = None):
        self.params = params or SoapParams()
        try:
            from dscribe.descriptors import SOAP
        except ImportError as exc:  # pragma: no cover - dscribe is a dependency
            raise CorelossError(f"the forward model needs dscribe: {exc}") from exc
        p = self.params
        self._soap = SOAP(species=list(p.species), periodic=True, r_cut=p.r_cut, n_max=p.n_max,
                          l_max=p.l_max, sigma=p.sigma, sparse=False)

    @property
    def n_features(self) -> int:
        return int(self._soap.get_number_of_features())

    def featurize(self, structure, site_indices: Sequence[int]) -> np.ndarray:
        from pymatgen.io.ase import AseAtomsAdaptor

        unknown = sorted({el.symbol for el in structure.composition.elements} - set(self.params.species))
        if unknown:
            raise CorelossError(f"structure contains {', '.join(unknown)}, but the forward model only "
                                f"knows {', '.join(self.params.species)}")
        atoms = AseAtomsAdaptor.get_atoms(structure)
        out = self._soap.create(atoms, centers=[int(i) for i in site_indices])
        return np.atleast_2d(np.asarray(out, float))
