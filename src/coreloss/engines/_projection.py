"""Population analysis and orbital projections in a non-orthogonal atomic-orbital basis.

Conventions (as tblite returns them; verified in ``tests/test_engine_xtb.py``):

* ``P`` (density matrix) counts electrons: it already includes the occupation (2 for a doubly
  occupied orbital), so ``trace(P S) = N_electrons``.
* Mulliken gross population of atom A: ``N_A = sum_{mu in A} sum_nu P_mu,nu S_mu,nu``;
  Mulliken charge ``q_A = Z_valence(A) - N_A`` (tblite's ``charges`` are exactly these).
* Mulliken overlap population between atoms A != B:
  ``n_AB = sum_{mu in A, nu in B} 2 P_mu,nu S_mu,nu`` (the 2 collects the AB and BA blocks), so
  ``N_A = net_A + 1/2 sum_B n_AB``.
* Loewdin projection of orbital ``n`` on a set of AOs: ``w_n = sum_{mu in set} |(S^1/2 C)_mu,n|^2``
  with coefficients ``C[ao, mo]``; weights are in [0, 1] and sum to 1 over all AOs.
"""

from __future__ import annotations

import numpy as np


def ao_maps(angular_momenta, orbital_map, shell_map) -> tuple[np.ndarray, np.ndarray]:
    """Per-AO atom index and angular momentum from a code's shell tables.

    ``angular_momenta[shell]``: l of each shell; ``orbital_map[ao]``: shell of each AO;
    ``shell_map[shell]``: atom of each shell (all 0-based, as tblite's calculator reports them).
    """
    om = np.asarray(orbital_map, int)
    return np.asarray(shell_map, int)[om], np.asarray(angular_momenta, int)[om]


def mulliken_populations(density, overlap, ao_atom, n_atoms: int) -> np.ndarray:
    """Mulliken gross electron population of every atom (e)."""
    gross = np.einsum("ij,ij->i", density, overlap)
    return np.bincount(ao_atom, weights=gross, minlength=n_atoms)


def overlap_populations(density, overlap, ao_atom, atom: int, partners) -> np.ndarray:
    """Mulliken overlap populations ``n_AB`` (e) between ``atom`` and each atom in ``partners``."""
    rows = np.asarray(ao_atom) == atom
    ps = (np.asarray(density) * np.asarray(overlap))[rows]
    per_atom = np.bincount(np.asarray(ao_atom), weights=ps.sum(axis=0), minlength=max(ao_atom) + 1)
    return 2.0 * per_atom[np.asarray(partners, int)]


def bond_overlap_population(density, overlap, ao_atom, atom: int, neighbors) -> float:
    """BOP (e): sum of Mulliken overlap populations of ``atom`` with its listed neighbour atoms.

    ``neighbors`` are atom indices (one entry per bond; a repeated index counts that bond again,
    which is why the engines work in supercells where every neighbour is a distinct atom).
    """
    if len(neighbors) == 0:
        return float("nan")
    return float(np.sum(overlap_populations(density, overlap, ao_atom, atom, neighbors)))


def sqrt_overlap(overlap) -> np.ndarray:
    """Symmetric square root ``S^1/2`` of the (positive definite) overlap matrix."""
    w, v = np.linalg.eigh(np.asarray(overlap, float))
    if w.min() <= 0:
        raise np.linalg.LinAlgError("overlap matrix is not positive definite")
    return (v * np.sqrt(w)) @ v.T


def loewdin_weights(coefficients, overlap, ao_mask) -> np.ndarray:
    """Loewdin weight of every MO (columns of ``coefficients[ao, mo]``) on the AOs in ``ao_mask``."""
    half = sqrt_overlap(overlap)[np.asarray(ao_mask, bool)]
    return np.sum((half @ np.asarray(coefficients, float)) ** 2, axis=0)
