"""Modularity with graph-tool against networkx and the dense formula; the planted-partition values
(1 − Σ_c (s_c/2W)² when all edges lie inside classes: 0.5 for two equal classes, 0.75 for four),
shuffled labels near 0, and refusals naming the key."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from netdyn.modularity import ModularityInputError, edge_modularity, knn_graph, knn_modularity

from .helpers import brute_force_knn_adjacency, dense_modularity, planted_clusters


def _random_graph(rng, n, p, low):
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < p]
    src, dst = np.array(pairs).T
    return src, dst, rng.uniform(low, 1.0, size=len(pairs))


@pytest.mark.parametrize("seed, n, p, n_classes, low", [(0, 30, 0.2, 3, 0.1), (1, 60, 0.05, 5, 0.01),
                                                         (2, 25, 0.5, 2, -0.3)])
def test_equals_networkx_on_random_weighted_graphs(seed, n, p, n_classes, low):
    rng = np.random.default_rng(seed)
    src, dst, w = _random_graph(rng, n, p, low)  # seed 2 has some negative weights, as kNN graphs may
    labels = rng.integers(0, n_classes, size=n) * 7 - 3  # arbitrary integer labels, some negative
    h = nx.Graph()
    h.add_nodes_from(range(n))  # isolated nodes included
    h.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist()))
    communities = [set(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)]
    expected = nx.algorithms.community.modularity(h, communities, weight="weight")
    assert edge_modularity(n, src, dst, w, labels) == pytest.approx(expected, abs=1e-9, rel=0)
    a = np.zeros((n, n))
    a[src, dst] = a[dst, src] = w
    assert dense_modularity(a, labels) == pytest.approx(expected, abs=1e-9, rel=0)


def test_knn_modularity_equals_the_dense_original_style():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(80, 12)), rng.integers(0, 4, size=80)
    x[y == 1, 0] += 1.5  # some structure, so Q is not ~0
    a = brute_force_knn_adjacency(x, 3)
    h = nx.from_numpy_array(a)
    communities = [set(np.flatnonzero(y == c).tolist()) for c in range(4)]
    expected = nx.algorithms.community.modularity(h, communities, weight="weight")
    assert knn_modularity(x, y, k=3) == pytest.approx(expected, abs=1e-9, rel=0)
    assert knn_modularity(torch.from_numpy(x).float(), torch.from_numpy(y), k=3) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_planted_classes_give_the_analytic_value(n_classes):
    rng = np.random.default_rng(n_classes)
    x, y = planted_clusters(rng, n_per_class=100, n_classes=n_classes)
    graph = knn_graph(x, k=3)
    assert np.all(y[graph.src] == y[graph.dst])  # precondition: every edge inside a class
    # all weight inside classes: Q = 1 − Σ_c (s_c / 2W)²; equal classes with weights ~1: 1 − 1/C
    strength = np.bincount(graph.src, graph.weight, len(y)) + np.bincount(graph.dst, graph.weight, len(y))
    share = np.bincount(y, strength) / strength.sum()
    q = knn_modularity(x, y, k=3)
    assert q == pytest.approx(1.0 - np.sum(share ** 2), abs=1e-12)
    assert q == pytest.approx(1.0 - 1.0 / n_classes, abs=1e-4)


def test_shuffled_labels_give_q_near_zero():
    rng = np.random.default_rng(5)
    x, y = planted_clusters(rng, n_per_class=500, n_classes=2)
    shuffled = [knn_modularity(x, rng.permutation(y), k=3) for _ in range(5)]
    # random labels: E[Q] = O(1/N), spread about 1/sqrt(N·k) ≈ 0.013 at N = 1,000
    assert abs(np.mean(shuffled)) < 0.02 and max(abs(q) for q in shuffled) < 0.05
    assert knn_modularity(x, y, k=3) > 0.49


def test_refusals_name_the_key():
    x = np.random.default_rng(0).normal(size=(6, 3))
    with pytest.raises(ModularityInputError, match=r"^k: ") as err:
        knn_modularity(x, np.zeros(6, dtype=int), k=6)
    assert err.value.key == "k"
    with pytest.raises(ModularityInputError, match=r"^labels: .*\(6,\)"):
        knn_modularity(x, np.zeros(5, dtype=int))
    with pytest.raises(ModularityInputError, match=r"^labels: .*integer"):
        knn_modularity(x, np.zeros(6))
    # three unit vectors 120° apart: every similarity is −0.5, total weight negative, Q undefined
    angles = np.array([0, 2, 4]) * np.pi / 3
    with pytest.raises(ModularityInputError, match=r"^features: .*not positive"):
        knn_modularity(np.column_stack([np.cos(angles), np.sin(angles)]), np.array([0, 1, 1]), k=1)
