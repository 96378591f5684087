"""Tree ensembles for the inverse model, behind the interface of :class:`~coreloss.models.ensemble.DeepEnsemble`.

``arch="et"`` (extremely randomised trees) or ``"rf"`` (random forest), grown by scikit-learn on
the clean training inputs plus ``copies`` degraded copies (the inverse model's augmentation).
Per target (standardised units), over the leaves the trees put a spectrum in:

* mean = mean of the leaf means;
* variance = mean of the within-leaf variances of the training targets (aleatoric) + variance of
  the leaf means over the trees (epistemic): the law of total variance of the forest's mixture.

Leaf means and variances are computed from every training row in the leaf (also for ``rf``,
whose trees are grown on bootstrap samples). Labels missing (NaN) in some rows, e.g. the masked
electronic labels of auxiliary xtb rows: one forest per set of labels present in the same rows.
The latent space (for the latent k-nearest-neighbour OOD score) is the first ``n_latent``
principal-component scores of the clean training inputs.

The trees are kept as compact flat arrays (int32 children, int16 split feature, float32 threshold
rounded down so float32 inputs split exactly as in scikit-learn, float32 leaf means, float16 leaf
variances) and walked in numpy, so a model file holds tensors only and loads without unpickling code.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

FOREST_ARCHS = ("et", "rf")


class ForestEnsemble:
    """``n_trees`` trees per label set (``arch`` ``"et"`` or ``"rf"``); ``fit`` / ``predict`` /
    ``predict_full`` / ``state`` / ``from_state`` as :class:`~coreloss.models.ensemble.DeepEnsemble`."""

    def __init__(self, arch: str = "et", n_trees: int = 100, min_samples_leaf: int = 2,
                 max_features: float = 0.3, seed: int = 0, n_latent: int = 16):
        if arch not in FOREST_ARCHS:
            raise ValueError(f"unknown forest {arch!r}; choose from {FOREST_ARCHS}")
        if n_trees < 1:
            raise ValueError("a forest needs at least one tree")
        self.arch, self.members, self.seed = arch, int(n_trees), int(seed)
        self.net_kwargs = {"min_samples_leaf": int(min_samples_leaf), "max_features": float(max_features),
                           "n_latent": int(n_latent)}
        self.forests: list[dict] = []

    def _estimator(self):
        from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

        cls = ExtraTreesRegressor if self.arch == "et" else RandomForestRegressor
        return cls(n_estimators=self.members, min_samples_leaf=self.net_kwargs["min_samples_leaf"],
                   max_features=self.net_kwargs["max_features"], random_state=self.seed, n_jobs=1)

    def fit(self, X: np.ndarray, Y: np.ndarray, *, clean: Callable, augment: Callable | None = None,
            copies: int = 3, progress: Callable[[], None] | None = None, warm: bool = False) -> list[dict]:
        """Grow the trees on ``clean(X)`` and ``copies`` x ``augment(X, rng)`` (both return the
        scaled inputs) against standardised targets ``Y`` (NaN = missing). ``progress()`` is called
        once per forest. Returns one record per forest (its labels and row count)."""
        from sklearn.decomposition import PCA

        if warm:
            raise ValueError("tree ensembles cannot be fine-tuned (init); train them from scratch")
        rng = np.random.default_rng(self.seed)
        Xc = np.asarray(clean(X), np.float32)
        parts = [Xc] + ([np.asarray(augment(X, rng), np.float32) for _ in range(copies)] if augment else [])
        Xf = np.concatenate(parts)
        Yf = np.tile(np.asarray(Y, float), (len(parts), 1))
        self.n_in, self.n_out = Xf.shape[1], Yf.shape[1]
        present = np.isfinite(Yf)
        self.forests, history = [], []
        for cols in label_sets(Y):
            rows = present[:, cols[0]]
            Yr = Yf[rows][:, cols]
            est = self._estimator().fit(Xf[rows], Yr[:, 0] if len(cols) == 1 else Yr)
            self.forests.append(_flatten(est, Xf[rows], Yr, cols))
            history.append({"labels": cols, "n_rows": int(rows.sum()), "val_mse": []})
            if progress:
                progress()
        k = min(self.net_kwargs["n_latent"], *Xc.shape)
        pca = PCA(k, random_state=self.seed).fit(Xc)
        self.pca_mean, self.pca_components = pca.mean_.astype(np.float32), pca.components_.astype(np.float32)
        return history

    def predict(self, X: np.ndarray, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, variance)`` each ``(n, n_out)`` in standardised units."""
        full = self.predict_full(X, batch_size)
        return full["mean"], full["var"]

    def predict_full(self, X: np.ndarray, batch_size: int = 4096) -> dict:
        """``mean``, ``var`` (total), ``epistemic`` (variance of the leaf means over trees), each
        ``(n, n_out)`` standardised; ``latent`` ``(1, n, n_latent)``: PCA scores of the inputs.
        Labels no forest was grown for: mean 0, variance 1 (the training distribution)."""
        X = np.asarray(X, np.float32)
        n = len(X)
        out = {"mean": np.zeros((n, self.n_out)), "var": np.ones((n, self.n_out)),
               "epistemic": np.zeros((n, self.n_out))}
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            for f in self.forests:
                leaf = _leaves(f, X[sl])  # (n_trees, b)
                mu = f["value"][leaf]  # (n_trees, b, k)
                epi = mu.var(axis=0)
                out["mean"][sl, f["cols"]] = mu.mean(axis=0)
                out["epistemic"][sl, f["cols"]] = epi
                out["var"][sl, f["cols"]] = f["var"][leaf].astype(np.float32).mean(axis=0) + epi
        out["latent"] = ((X - self.pca_mean) @ self.pca_components.T)[None].astype(np.float64)
        return out

    def state(self) -> dict:
        import torch

        return {"arch": self.arch, "members": self.members, "net_kwargs": self.net_kwargs, "seed": self.seed,
                "n_in": self.n_in, "n_out": self.n_out,
                "weights": {"pca_mean": torch.as_tensor(self.pca_mean),
                            "pca_components": torch.as_tensor(self.pca_components),
                            "forests": [{k: torch.as_tensor(np.asarray(v)) for k, v in f.items()}
                                        for f in self.forests]}}

    @classmethod
    def from_state(cls, st: dict) -> "ForestEnsemble":
        kw = st["net_kwargs"]
        ens = cls(st["arch"], int(st["members"]), kw["min_samples_leaf"], kw["max_features"], int(st["seed"]),
                  kw["n_latent"])
        ens.n_in, ens.n_out = int(st["n_in"]), int(st["n_out"])
        w = st["weights"]
        ens.pca_mean, ens.pca_components = w["pca_mean"].numpy(), w["pca_components"].numpy()
        ens.forests = [{k: v.numpy() for k, v in f.items()} for f in w["forests"]]
        return ens


def label_sets(Y) -> list[list[int]]:
    """Columns of ``Y`` grouped by the rows in which they are present (not NaN; at least 2 rows):
    one forest is grown per group."""
    present = np.isfinite(np.asarray(Y, float))
    sets: dict[bytes, list[int]] = {}
    for j in range(present.shape[1]):
        if present[:, j].sum() >= 2:
            sets.setdefault(present[:, j].tobytes(), []).append(j)
    return list(sets.values())


def _flatten(est, X: np.ndarray, Y: np.ndarray, cols: list[int]) -> dict:
    """The fitted scikit-learn forest ``est`` as flat node arrays over all its trees (children as
    global node indices, -1 at leaves), with each node's mean and variance of the targets ``Y`` of
    the training rows ``X`` that reach it (leaves only are used)."""
    left, right, feat, thr, value, var, roots = [], [], [], [], [], [], []
    offset = 0
    for tree in (e.tree_ for e in est.estimators_):
        m = tree.node_count
        node = tree.apply(X)
        cnt = np.bincount(node, minlength=m).astype(float)[:, None]
        s1 = np.stack([np.bincount(node, Y[:, j], minlength=m) for j in range(Y.shape[1])], axis=1)
        s2 = np.stack([np.bincount(node, Y[:, j] ** 2, minlength=m) for j in range(Y.shape[1])], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(cnt > 0, s1 / cnt, 0.0)
            v = np.where(cnt > 0, np.maximum(s2 / cnt - mean ** 2, 0.0), 0.0)
        is_leaf = tree.children_left < 0
        left.append(np.where(is_leaf, -1, tree.children_left + offset))
        right.append(np.where(is_leaf, -1, tree.children_right + offset))
        feat.append(np.where(is_leaf, 0, tree.feature))
        thr.append(tree.threshold)
        value.append(mean)
        var.append(v)
        roots.append(offset)
        offset += m
    if offset >= 2**31 or X.shape[1] >= 2**15:
        raise ValueError("forest too large for the compact node arrays")
    return {"left": np.concatenate(left).astype(np.int32), "right": np.concatenate(right).astype(np.int32),
            "feature": np.concatenate(feat).astype(np.int16), "threshold": _float32_below(np.concatenate(thr)),
            "value": np.concatenate(value).astype(np.float32), "var": np.concatenate(var).astype(np.float16),
            "roots": np.asarray(roots, np.int64), "cols": np.asarray(cols, np.int64)}


def _float32_below(t: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold: for float32 inputs ``x <= t`` is unchanged."""
    t32 = t.astype(np.float32)
    return np.where(t32.astype(np.float64) > t, np.nextafter(t32, np.float32(-np.inf)), t32)


def _leaves(f: dict, X: np.ndarray) -> np.ndarray:
    """``(n_trees, n)`` global leaf index of every row of ``X`` (float32) in every tree of ``f``
    (scikit-learn's rule: go left where ``x[feature] <= threshold``)."""
    node = np.repeat(f["roots"][:, None], len(X), axis=1)
    rows = np.broadcast_to(np.arange(len(X)), node.shape)
    while True:
        nxt = f["left"][node]
        inner = nxt >= 0
        if not inner.any():
            return node
        go_left = X[rows, f["feature"][node]] <= f["threshold"][node]
        node = np.where(inner, np.where(go_left, nxt, f["right"][node]), node)
