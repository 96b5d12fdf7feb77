"""The exact correlation clustering on small hand-made graphs whose optimum is worked out by hand
(and checked by brute force over every partition)."""
import itertools

import numpy as np
import pytest

from spoton.identity.correlation_clustering import ConflictingLinks, SolverLimits, correlation_clustering


def partitions(n):
    """Every clustering of nodes 0..n-1 as a label list."""
    if n == 0:
        yield []
        return
    for rest in partitions(n - 1):
        for label in set(rest) | {max(rest, default=-1) + 1}:
            yield rest + [label]


def value(labels, edges, weights):
    return sum(w for (a, b), w in zip(edges, weights) if labels[a] == labels[b])


def best(n, edges, weights, cannot=()):
    feasible = (p for p in partitions(n) if all(p[a] != p[b] for a, b in cannot))
    return max(value(p, edges, weights) for p in feasible)


def greedy(n, edges, weights, cannot=()):
    """The resolver's greedy rule: merge by descending weight unless a cannot-link forbids it."""
    label = list(range(n))
    for (a, b), w in sorted(zip(edges, weights), key=lambda item: -item[1]):
        if w <= 0 or label[a] == label[b]:
            continue
        la, lb = label[a], label[b]
        members_a = [k for k in range(n) if label[k] == la]
        members_b = [k for k in range(n) if label[k] == lb]
        if any((x, y) in cannot or (y, x) in cannot for x in members_a for y in members_b):
            continue
        label = [la if lab == lb else lab for lab in label]
    return label


def same(labels, a, b):
    return labels[a] == labels[b]


# A strong join 1-2 that greedy takes first blocks two joins 0-1 and 2-3 worth more together:
# 0 and 2 cannot be one person, nor 1 and 3.
BLOCKING = dict(n=4, edges=[(1, 2), (0, 1), (2, 3)], weights=[3.0, 2.0, 2.0], cannot={(0, 2), (1, 3)})


def test_the_optimum_where_greedy_is_blocked_by_its_first_join():
    g = BLOCKING
    greedy_labels = greedy(g["n"], g["edges"], g["weights"], g["cannot"])
    assert value(greedy_labels, g["edges"], g["weights"]) == 3.0
    labels = correlation_clustering(g["n"], g["edges"], g["weights"], sorted(g["cannot"]))
    assert value(labels, g["edges"], g["weights"]) == 4.0 == best(g["n"], g["edges"], g["weights"], g["cannot"])
    assert same(labels, 0, 1) and same(labels, 2, 3) and not same(labels, 1, 2)


def test_a_negative_edge_keeps_a_weak_chain_apart():
    # 0-1 and 1-2 are weak joins; 0 and 2 are strongly different: greedy chains all three
    edges, weights = [(0, 1), (1, 2), (0, 2)], [1.0, 0.8, -5.0]
    assert value(greedy(3, edges, weights), edges, weights) == pytest.approx(-3.2)
    labels = correlation_clustering(3, edges, weights)
    assert value(labels, edges, weights) == pytest.approx(1.0) == best(3, edges, weights)
    assert same(labels, 0, 1) and not same(labels, 1, 2)


def test_random_small_graphs_reach_the_brute_force_optimum():
    rng = np.random.default_rng(7)
    for _ in range(25):
        n = int(rng.integers(3, 7))
        pairs = [p for p in itertools.combinations(range(n), 2) if rng.random() < 0.7]
        weights = list(np.round(rng.normal(0.3, 1.0, len(pairs)), 2))
        cannot = {p for p in itertools.combinations(range(n), 2) if p not in pairs and rng.random() < 0.3}
        labels = correlation_clustering(n, pairs, weights, sorted(cannot))
        assert value(labels, pairs, weights) == pytest.approx(best(n, pairs, weights, cannot))
        assert all(labels[a] != labels[b] for a, b in cannot)


def test_must_links_are_kept_even_against_the_weights():
    edges, weights = [(0, 1), (1, 2)], [-4.0, 2.0]
    labels = correlation_clustering(3, edges, weights, must_link=[(0, 1)])
    assert same(labels, 0, 1) and same(labels, 1, 2)  # 0-1 forced; then 1-2 (+2) still pays
    assert labels.tolist() == [0, 0, 0]


def test_must_links_propagate_cannot_links():
    # 0 and 1 are one person (analyst), 1 and 2 cannot be: 0-2 must stay apart however strong
    labels = correlation_clustering(3, [(0, 2)], [9.0], cannot_link=[(1, 2)], must_link=[(0, 1)])
    assert same(labels, 0, 1) and not same(labels, 0, 2)


def test_contradictory_links_are_refused():
    with pytest.raises(ConflictingLinks, match="must-link chain joins a cannot-link pair"):
        correlation_clustering(3, [], [], cannot_link=[(0, 2)], must_link=[(0, 1), (1, 2)])


def test_bad_input_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="one per edge"):
        correlation_clustering(3, [(0, 1)], [1.0, 2.0])
    with pytest.raises(ValueError, match="outside 0..2"):
        correlation_clustering(3, [(0, 3)], [1.0])
    with pytest.raises(ValueError, match="SolverLimits needs"):
        SolverLimits(max_edges=0)


def test_components_over_the_size_limit_leave_the_answer_to_the_caller():
    edges, weights = [(0, 1), (1, 2), (2, 3)], [1.0, 1.0, 1.0]
    assert correlation_clustering(4, edges, weights, limits=SolverLimits(max_edges=2)) is None
    # two components of two edges each fit under the same limit
    split = correlation_clustering(6, [(0, 1), (1, 2), (3, 4), (4, 5)], [1.0] * 4, limits=SolverLimits(max_edges=2))
    assert split.tolist() == [0, 0, 0, 3, 3, 3]
