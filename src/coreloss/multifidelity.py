"""Multi-fidelity training rows: a primary dataset (DFT spectra) joined by an auxiliary one (xtb).

The auxiliary engine's geometric labels are exact (they come from the structure), its electronic
labels (BOP, Mulliken charge, excitation energy) mean something else in another engine: they are
masked (NaN, left out of the loss), so those heads learn from the primary engine only. The primary
rows are repeated to about half the auxiliary row count so that neither engine swamps the other.
Auxiliary rows of structure groups held out of a fit (test structures, CV validation folds) are
left out, so nothing held out leaks in through the other engine.

Group CV decides whether this helps (``benchmarks/bench_multifidelity.py``; BENCHMARKS.md).

>>> aux = AuxiliaryRows.from_dataset(load_dataset("datasets/sio2_xtb_gfn2_v2.h5"), primary_engine="gpaw-lcao")
>>> X, y, g, primary = aux.joined(ds.X[tr], ds.y[tr], groups[tr], held_out=groups[te])  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from coreloss.errors import CorelossError
from coreloss.labels import GEOMETRIC_LABELS, LABEL_NAMES

#: labels whose meaning depends on the engine (and basis): masked in rows of another engine
ENGINE_SPECIFIC_LABELS: tuple[str, ...] = tuple(n for n in LABEL_NAMES if n not in GEOMETRIC_LABELS)


@dataclass(frozen=True)
class AuxiliaryRows:
    """Spectra ``X`` (n, grid.n), labels ``y`` (n, 6; engine-specific ones NaN where the engines
    differ) and structure groups of an auxiliary dataset, with its ``engine`` and ``source`` path."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    engine: str
    source: str | None = None

    @classmethod
    def from_dataset(cls, ds, primary_engine: str, grid=None, source=None) -> "AuxiliaryRows":
        """Rows of dataset ``ds``; its engine-specific labels are masked unless its engine is
        ``primary_engine``. With ``grid`` the dataset must be on that energy grid."""
        from coreloss.evaluate import split_groups

        if grid is not None and not grid.matches(ds.grid):
            raise CorelossError(f"the auxiliary dataset's energy grid {ds.grid.to_dict()} differs from "
                                f"the training grid {grid.to_dict()}")
        engine = str(ds.provenance.get("engine", "unknown"))
        y = np.array(ds.y, float)
        if engine != primary_engine:
            y[:, [LABEL_NAMES.index(n) for n in ENGINE_SPECIFIC_LABELS]] = np.nan
        return cls(np.asarray(ds.X, float), y, split_groups(ds), engine, None if source is None else str(source))

    @classmethod
    def load(cls, path, primary) -> "AuxiliaryRows":
        """The rows of the dataset file ``path`` to join dataset ``primary`` (its engine decides what is
        masked; its grid must match)."""
        from coreloss.dataset import load_dataset

        return cls.from_dataset(load_dataset(path), str(primary.provenance.get("engine", "unknown")),
                                grid=primary.grid, source=path)

    def without(self, groups) -> "AuxiliaryRows":
        """These rows less those of structure ``groups`` (e.g. the held-out test structures)."""
        keep = ~np.isin(self.groups, np.unique(np.asarray(groups).astype(str)))
        return replace(self, X=self.X[keep], y=self.y[keep], groups=self.groups[keep])

    def joined(self, X, y, groups, held_out=()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Primary rows (repeated to about half the kept auxiliary row count) followed by the auxiliary
        rows whose group is not in ``held_out``. Returns ``X, y, groups, primary`` (bool mask of the
        primary rows)."""
        X, y = np.asarray(X, float), np.asarray(y, float)
        groups = np.asarray(groups).astype(str)
        if len(X) == 0:
            raise CorelossError("no primary rows to join the auxiliary rows to")
        keep = ~np.isin(self.groups, np.unique(np.asarray(held_out).astype(str)))
        rep = max(1, int(round(keep.sum() / (2 * len(X)))))
        Xj = np.concatenate([np.repeat(X, rep, 0), self.X[keep]])
        yj = np.concatenate([np.repeat(y, rep, 0), self.y[keep]])
        gj = np.concatenate([np.repeat(groups, rep), self.groups[keep]])
        primary = np.arange(len(Xj)) < rep * len(X)
        return Xj, yj, gj, primary

    def record(self, n_kept: int | None = None) -> dict:
        """Provenance entry of a model trained with these rows."""
        return {"source": self.source, "engine": self.engine, "n_sites": int(len(self.X)),
                "n_used": n_kept, "masked_labels": list(ENGINE_SPECIFIC_LABELS),
                "rule": "primary rows repeated to ~half the auxiliary rows; auxiliary rows of held-out "
                        "groups left out; OOD scores fitted on the primary rows only"}
