"""Which rows of a training set validate: the group split :class:`~coreloss.models.inverse.InverseModel`
draws (use ``InverseModel.fit_rows`` to rebuild the rows a fitted model used)."""

from __future__ import annotations

import numpy as np


def group_val_split(n: int, groups, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)`` of ``n`` rows: about ``val_fraction`` of the ``groups`` (whole
    groups, drawn with ``seed``) validate; rows without groups are drawn one by one; fewer than 3
    groups or ``val_fraction <= 0``: no validation rows."""
    idx = np.arange(n)
    if val_fraction <= 0:
        return idx, idx[:0]
    if groups is None:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(n)
        k = max(1, int(round(val_fraction * n)))
        return np.sort(perm[k:]), np.sort(perm[:k])
    groups = np.asarray(groups).astype(str)
    uniq = np.unique(groups)
    if len(uniq) < 3:
        return idx, idx[:0]
    rng = np.random.default_rng(seed)
    k = max(1, int(round(val_fraction * len(uniq))))
    val_groups = rng.choice(uniq, size=k, replace=False)
    is_val = np.isin(groups, val_groups)
    return idx[~is_val], idx[is_val]
