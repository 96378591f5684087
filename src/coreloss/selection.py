"""Budgeted O-site selection: which N sites an expensive engine computes first.

Rule (deterministic, no random numbers): every symmetry-unique O site of every structure
(:func:`coreloss.sites.o_sites`) is described by the SOAP vector the forward model uses
(:class:`coreloss.models.descriptors.SoapFeaturizer`, default :class:`SoapParams`), L2-normalised
(so the distance is that of the normalised SOAP kernel). Farthest-point sampling (FPS) then picks
sites one by one: the first is the site farthest from the mean environment (an extreme), each next
one the site farthest from all sites already picked (or already computed, ``done``). Ties go to the
earlier candidate (structures in the given order, sites by index). Every prefix of the pick order
covers the environment space as well as greedy FPS can (covering radius = the distance of the next
pick, at most twice the optimum), so a build cut short has computed the most informative sites.

With ``cost`` (relative compute cost of each site, e.g. the engine's per-site cost of its
supercell: :func:`site_costs`), each next pick maximises distance / cost instead: value per CPU
second, so a budget spent on cheap cells covers more environments sooner (the factor-2 covering
guarantee then no longer holds; extremes in expensive cells come later, not never).

With ``cover_structures`` the FPS runs in two phases: first it picks only among the sites of
structures that have no computed or picked site yet (one pick covers its structure), until every
structure has one; then unrestricted. A budget of at least one site per structure thus reaches
every structure (a dataset from many structures, not many sites of a few), and the first-phase
picks still come in FPS order (most unusual structure first).

The picks are then grouped by structure: one task per structure with all its picked sites (they
share one ground state), tasks ordered by their best (earliest) pick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coreloss.errors import CorelossError


@dataclass
class Selection:
    """Result of :func:`select_sites`.

    picks: ``[(structure_id, site_index)]`` in pick order; radii: FPS distance of each pick (the
    covering radius before it was added); tasks: ``[(structure_id, [site indices])]`` in work order;
    n_candidates: unique O sites considered; groups: structure id -> group id; cost_aware: picks
    weighted by site cost; cover_structures: one site of every structure first.
    """

    picks: list
    radii: list
    tasks: list
    n_candidates: int
    groups: dict = field(default_factory=dict)
    cost_aware: bool = False
    cover_structures: bool = False

    def summary(self) -> dict:
        """JSON-able description (stored in dataset provenance)."""
        return {"rule": "farthest-point sampling on L2-normalised SOAP (coreloss.selection)"
                + (", cost-aware (distance / site cost)" if self.cost_aware else "")
                + (", one site of every structure first" if self.cover_structures else ""),
                "n_picked": len(self.picks), "n_candidates": self.n_candidates,
                "n_structures": len(self.tasks),
                "last_pick_distance": float(self.radii[-1]) if self.radii else None}


def farthest_point_order(X: np.ndarray, n: int, done: np.ndarray | None = None,
                         cost: np.ndarray | None = None,
                         groups: np.ndarray | None = None) -> tuple[list[int], list[float]]:
    """Greedy FPS: ``n`` row indices of ``X`` (Euclidean) and their distances when picked (the
    covering radius of the earlier picks; ``inf`` for a first pick made without ``done``).

    ``done``: boolean mask of rows already covered (never picked, but they cover their neighbours).
    Without ``done`` the first pick is the row farthest from the mean row. ``cost`` (m,) > 0: pick
    the row of largest distance / cost instead (the first one too). ``groups`` (m,): a label per
    row; picks are restricted to rows of groups with no done or picked row until every group has
    one (the module's ``cover_structures``).
    """
    X = np.asarray(X, float)
    m = len(X)
    w = np.ones(m) if cost is None else np.asarray(cost, float)
    if w.shape != (m,) or not np.all(w > 0):
        raise CorelossError("site costs must be positive, one per candidate site")
    done = np.zeros(m, bool) if done is None else np.asarray(done, bool)
    n = int(min(n, m - int(done.sum())))
    if n <= 0:
        return [], []
    if groups is not None:
        groups = np.asarray(groups)
        uncovered = ~np.isin(groups, groups[done])
    else:
        uncovered = np.zeros(m, bool)

    def pick(score):  # first maximum (ties go to the earlier row), uncovered groups first
        if uncovered.any():
            score = np.where(uncovered, score, -np.inf)
        i = int(np.argmax(score))
        if groups is not None:
            uncovered[groups == groups[i]] = False
        return i

    order, radii = [], []
    if done.any():
        dmin = np.full(m, np.inf)
        for j in np.flatnonzero(done):
            dmin = np.minimum(dmin, np.linalg.norm(X - X[j], axis=1))
    else:  # first pick: the most unusual site (farthest from the mean environment)
        first = pick(np.linalg.norm(X - X.mean(axis=0), axis=1) / w)
        order.append(first)
        radii.append(float("inf"))
        dmin = np.linalg.norm(X - X[first], axis=1)
        dmin[first] = -np.inf
    dmin[done] = -np.inf
    while len(order) < n:
        i = pick(dmin / w)
        order.append(i)
        radii.append(float(dmin[i]))
        dmin = np.minimum(dmin, np.linalg.norm(X - X[i], axis=1))
        dmin[i] = -np.inf
        dmin[done] = -np.inf
    return order, radii


def candidate_sites(records) -> list[tuple[str, int, str]]:
    """``[(structure_id, site_index, group)]``: the symmetry-unique O sites of StructureRecords.

    A structure whose site analysis fails is left out with a warning (one bad record never stops
    a build; the build itself records it as failed if it is ever computed)."""
    import warnings

    from coreloss.sites import o_sites

    out = []
    for r in records:
        group = str(r.meta.get("group") or r.id)
        try:
            sites = o_sites(r.structure)
        except CorelossError as exc:
            warnings.warn(f"{r.id}: site analysis failed ({exc}); left out of the budgeted selection",
                          stacklevel=2)
            continue
        out += [(r.id, int(s.index), group) for s in sites]
    return out


def site_costs(records, engine) -> dict[str, float]:
    """Structure id -> relative cost of one more O site with ``engine`` (its :meth:`cost` model on
    the supercell the engine computes), for cost-aware selection."""
    from coreloss.dataset import computed_atoms

    mid = engine.params.get("min_image_distance")
    out = {}
    for r in records:
        n = computed_atoms(r.structure, mid)
        out[r.id] = float(engine.cost(n, 1) - engine.cost(n, 0)) or 1.0
    return out


def select_sites(records, budget: int, done=(), featurizer=None, costs: dict | None = None,
                 cover_structures: bool = False) -> Selection:
    """Pick ``budget`` O sites of ``records`` (StructureRecords) by FPS on SOAP; see the module doc.

    ``done``: ``(structure_id, site_index)`` pairs already computed: they count as covered and are
    not picked again, so a larger budget on a resumed build extends the earlier choice.
    ``costs``: structure id -> relative cost of one site (:func:`site_costs`): cost-aware picks.
    ``cover_structures``: one site of every structure first (module doc).
    """
    from coreloss.models.descriptors import SoapFeaturizer

    if budget < 1:
        raise CorelossError(f"--budget must be a positive number of O sites, got {budget}")
    records = list(records)
    cands = candidate_sites(records)
    if not cands:
        raise CorelossError("no O sites in the selected structures")
    feat = featurizer or SoapFeaturizer()
    by_id = {r.id: r for r in records}
    rows = []
    for sid in dict.fromkeys(c[0] for c in cands):
        idx = [c[1] for c in cands if c[0] == sid]
        rows.append(feat.featurize(by_id[sid].structure, idx))
    X = np.vstack(rows)
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    done_set = {(str(s), int(i)) for s, i in done}
    done_mask = np.array([(c[0], c[1]) in done_set for c in cands])
    cost = None if costs is None else np.array([costs[c[0]] for c in cands], float)
    sids = np.array([c[0] for c in cands]) if cover_structures else None
    order, radii = farthest_point_order(X, budget, done_mask, cost, sids)
    picks = [(cands[i][0], cands[i][1]) for i in order]
    tasks: dict[str, list[int]] = {}
    for sid, idx in picks:
        tasks.setdefault(sid, []).append(idx)
    return Selection(picks, radii, [(sid, sorted(idx)) for sid, idx in tasks.items()], len(cands),
                     {c[0]: c[2] for c in cands}, costs is not None, cover_structures)


def budget_plan(records, budget: int, computed=(), failed=(), costs: dict | None = None,
                cover_structures: bool = False) -> tuple[list, Selection]:
    """Dataset-build plan for a budget: ``([(record dict, [site indices])], Selection)``, best task
    first. ``computed``/``failed``: ``(structure_id, site_index)`` keys already in the dataset (a
    whole-structure failure, index -1, is ignored): they count as covered. ``costs``: see
    :func:`select_sites` (and ``cover_structures``)."""
    done = list(computed) + [k for k in failed if k[1] >= 0]
    sel = select_sites(records, budget, done=done, costs=costs, cover_structures=cover_structures)
    by_id = {r.id: r for r in records}
    return [(by_id[sid].to_dict(), idx) for sid, idx in sel.tasks], sel
