"""Correlation clustering of a sparse signed graph, solved to optimality as a multicut MILP.

Nodes are joined or separated as a whole: the clustering maximises the summed weight of the
edges it keeps inside clusters (positive: evidence for one person, negative: against), with
hard cannot-links (never in one cluster) and must-links (always in one cluster). A greedy merge by
descending weight can take an early join that blocks two better ones through a cannot-link; the
optimum cannot.

Formulation (the multicut of Andres et al., as used for tracklet graphs in multi-camera tracking):
one binary ``y_e`` per edge, 1 when the edge is cut; minimise ``sum w_e y_e``. A 0/1 vector is a
clustering exactly when no cycle has a single cut edge, i.e. for every cut edge ``uv`` and every
path between u and v, ``y_uv <= sum of y on the path``. Those cycle inequalities are added lazily:
solve, find cut edges whose ends the kept edges still connect, add the inequality of the shortest
such path, solve again. Pairs with no edge weigh 0, so only edges need variables, and components
joined by no positive edge are solved apart (separating them never costs anything).

SciPy's ``milp`` (HiGHS) solves each round; :func:`correlation_clustering` returns None when a
component has more edges than ``max_edges`` or the time runs out, and the caller falls back to
its greedy answer.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix


@dataclass(frozen=True)
class SolverLimits:
    """How far the exact solver goes before the caller's greedy answer is used instead."""

    max_edges: int = 4000  # per component
    time_limit_s: float = 20.0  # over all components and rounds
    max_rounds: int = 200  # lazy constraint rounds per component

    def __post_init__(self):
        if self.max_edges < 1 or self.time_limit_s <= 0 or self.max_rounds < 1:
            raise ValueError(f"SolverLimits needs max_edges >= 1, time_limit_s > 0, max_rounds >= 1; got {self}")


class ConflictingLinks(ValueError):
    """Must-links that join a cannot-link pair: no clustering satisfies both."""


class _UnionFind:
    def __init__(self, n: int):
        self.parent = np.arange(n)

    def find(self, k: int) -> int:
        parent = self.parent
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return int(k)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def labels(self) -> np.ndarray:
        return np.array([self.find(k) for k in range(len(self.parent))])


def _pairs(pairs, name: str, n: int) -> np.ndarray:
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= n):
        raise ValueError(f"{name} name nodes outside 0..{n - 1}")
    return pairs


def correlation_clustering(n: int, edges, weights, cannot_link=(), must_link=(),
                           limits: SolverLimits = SolverLimits()) -> np.ndarray | None:
    """Cluster labels (node -> smallest node of its cluster) of the optimal clustering, or None
    when the limits are reached. ``edges`` (E, 2) node pairs with ``weights`` (E,): the gain of
    keeping the pair in one cluster (negative: a loss). Raises :class:`ConflictingLinks` when a
    must-link chain joins a cannot-link pair."""
    edges, weights = _pairs(edges, "edges", n), np.asarray(weights, np.float64).reshape(-1)
    if len(weights) != len(edges) or not np.isfinite(weights).all():
        raise ValueError(f"weights must be {len(edges)} finite numbers, one per edge")
    cannot, must = _pairs(cannot_link, "cannot_link", n), _pairs(must_link, "must_link", n)
    groups = _UnionFind(n)
    for a, b in must:
        groups.union(a, b)
    group = groups.labels()
    if np.any(group[cannot[:, 0]] == group[cannot[:, 1]]):
        raise ConflictingLinks("a must-link chain joins a cannot-link pair: no clustering satisfies both")

    # one node per must-link group; parallel edges summed, a cannot-link overrides any weight
    merged: dict[tuple[int, int], float] = {}
    for (a, b), w in zip(group[edges], weights):
        if a != b:
            key = (min(a, b), max(a, b))
            merged[key] = merged.get(key, 0.0) + w
    hard = {(min(a, b), max(a, b)) for a, b in group[cannot]}
    for key in hard:
        merged[key] = -np.inf
    deadline = time.monotonic() + limits.time_limit_s

    attract = _UnionFind(n)
    for (a, b), w in merged.items():
        if w > 0:
            attract.union(a, b)
    component = attract.labels()
    by_component: dict[int, list[tuple[int, int]]] = {}
    for key in merged:
        if component[key[0]] == component[key[1]]:
            by_component.setdefault(int(component[key[0]]), []).append(key)

    result = _UnionFind(n)
    for a, b in must:
        result.union(a, b)
    for keys in by_component.values():
        kept = _solve_component(keys, np.array([merged[k] for k in keys]), limits, deadline)
        if kept is None:
            return None
        for a, b in kept:
            result.union(a, b)
    return result.labels()


def _solve_component(keys: list[tuple[int, int]], weights: np.ndarray, limits: SolverLimits,
                     deadline: float) -> list[tuple[int, int]] | None:
    """The edges the optimal multicut of one component keeps, or None past the limits."""
    if len(keys) > limits.max_edges:
        return None
    m = len(keys)
    fixed_cut = ~np.isfinite(weights)
    cost = np.where(fixed_cut, 0.0, weights)
    lower = fixed_cut.astype(float)
    rows: list[list[tuple[int, float]]] = []
    adjacency: dict[int, list[tuple[int, int]]] = {}
    for e, (a, b) in enumerate(keys):
        adjacency.setdefault(a, []).append((b, e))
        adjacency.setdefault(b, []).append((a, e))
    for _ in range(limits.max_rounds):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        constraints = ()
        if rows:
            data = [(r, e, v) for r, row in enumerate(rows) for e, v in row]
            r, c, v = zip(*data)
            matrix = coo_matrix((v, (r, c)), shape=(len(rows), m)).tocsr()
            constraints = (LinearConstraint(matrix, -np.inf, 0.0),)
        solved = milp(cost, integrality=np.ones(m), bounds=Bounds(lower, np.ones(m)),
                      constraints=constraints, options={"time_limit": remaining})
        if solved.status != 0 or solved.x is None:
            return None
        cut = solved.x > 0.5
        violated = _violated_cycles(keys, cut, adjacency)
        if not violated:
            return [key for key, c in zip(keys, cut) if not c]
        rows.extend(violated)
    return None


def _violated_cycles(keys, cut: np.ndarray, adjacency) -> list[list[tuple[int, float]]]:
    """For each cut edge whose ends the kept edges connect: ``y_uv - sum y(path) <= 0`` over the
    shortest kept path (breadth first)."""
    kept = _UnionFind(max(max(k) for k in keys) + 1)
    for (a, b), c in zip(keys, cut):
        if not c:
            kept.union(a, b)
    out = []
    for e in np.flatnonzero(cut):
        a, b = keys[e]
        if kept.find(a) != kept.find(b):
            continue
        path = _kept_path(a, b, cut, adjacency)
        out.append([(int(e), 1.0)] + [(f, -1.0) for f in path])
    return out


def _kept_path(source: int, target: int, cut: np.ndarray, adjacency) -> list[int]:
    """Edge indices of a shortest path of kept edges from ``source`` to ``target``."""
    previous: dict[int, tuple[int, int]] = {source: (source, -1)}
    queue = deque([source])
    while queue:
        node = queue.popleft()
        if node == target:
            break
        for other, e in adjacency.get(node, ()):
            if not cut[e] and other not in previous:
                previous[other] = (node, e)
                queue.append(other)
    path, node = [], target
    while node != source:
        node, e = previous[node]
        path.append(e)
    return path
