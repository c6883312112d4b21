"""The chunked cosine kNN graph against the dense brute-force construction: edge sets and weights,
ties to the lower index, chunked = unchunked, array/tensor inputs, and refusals naming the key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from netdyn.modularity import ModularityInputError, cosine_topk, knn_graph, symmetrise

from .helpers import brute_force_knn_adjacency


@pytest.mark.parametrize("n, d, k", [(30, 5, 1), (57, 8, 3), (40, 3, 7)])
def test_graph_equals_brute_force(n, d, k):
    x = np.random.default_rng(n).normal(size=(n, d))  # float64: compared to 1e-12
    graph = knn_graph(x, k=k, chunk_size=16)
    expected = brute_force_knn_adjacency(x, k)
    got = graph.dense()
    np.testing.assert_array_equal(got != 0, expected != 0)  # the same edges
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)  # the same weights
    assert np.all(graph.src < graph.dst) and len(set(zip(graph.src, graph.dst))) == len(graph.src)


def test_mutual_pairs_weigh_s_and_one_sided_pairs_half_s():
    # on a line: 0 and 1 are each other's nearest (mutual); 2's nearest is 1, but 1's is 0 (one-sided)
    x = np.array([[1.0, 0.0], [1.0, 0.1], [1.0, 0.5]])
    s01 = x[0] @ x[1] / np.linalg.norm(x[0]) / np.linalg.norm(x[1])
    s12 = x[1] @ x[2] / np.linalg.norm(x[1]) / np.linalg.norm(x[2])
    a = knn_graph(x, k=1).dense()
    np.testing.assert_allclose(a, [[0, s01, 0], [s01, 0, s12 / 2], [0, s12 / 2, 0]], rtol=1e-12)


def test_ties_go_to_the_lower_index():
    # four identical points (similarity 1 to each other), k = 2: each takes the two lowest other indices
    x = np.tile([[1.0, 2.0, 3.0]], (4, 1))
    neighbours, similarity = cosine_topk(x, k=2)
    assert neighbours.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1]]
    np.testing.assert_allclose(similarity, 1.0, rtol=1e-12)
    # three groups of duplicates interleaved, float32 as a model gives them: brute force with stable sort
    base = np.random.default_rng(1).normal(size=(3, 6))
    xs = base[np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 1])].astype(np.float32)
    for k in (1, 2, 3, 5):
        expected = brute_force_knn_adjacency(xs, k)
        for chunk in (1, 5, 12):
            np.testing.assert_array_equal(knn_graph(xs, k=k, chunk_size=chunk).dense() != 0, expected != 0)


def test_chunked_equals_unchunked_float32_tensor():
    x = torch.randn(203, 50, generator=torch.Generator().manual_seed(0))
    whole_n, whole_s = cosine_topk(x, k=4, chunk_size=203)
    for chunk in (1, 7, 64, 500):
        n, s = cosine_topk(x, k=4, chunk_size=chunk)
        np.testing.assert_array_equal(n, whole_n)
        np.testing.assert_allclose(s, whole_s, rtol=0, atol=1e-6)
    # float32 result against the float64 brute force: same edges, weights to float32 precision
    expected = brute_force_knn_adjacency(x.double().numpy(), 4)
    got = knn_graph(x, k=4, chunk_size=7).dense()
    np.testing.assert_array_equal(got != 0, expected != 0)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_zero_rows_have_similarity_zero_and_negative_similarities_stay_weights():
    x = np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.1], [-1.0, -0.1]])
    neighbours, similarity = cosine_topk(x, k=1)
    # row 0's others: zero row (0), two nearly opposite (negative) -> the zero row wins
    assert neighbours[0, 0] == 1 and similarity[0, 0] == 0.0
    # the zero row ties at 0 with every other: the lowest index
    assert neighbours[1, 0] == 0
    assert neighbours[2, 0] == 3 and similarity[2, 0] > 0.98
    # k = 2 for row 0 must take a negative similarity as a weight, as the paper's code does
    n2, s2 = cosine_topk(x, k=2)
    assert n2[0].tolist() == [1, 2] and s2[0, 1] < -0.99


def test_symmetrise_sums_both_directions_over_two():
    neighbours = np.array([[1], [0], [0]])
    similarity = np.array([[0.8], [0.6], [0.5]])  # deliberately asymmetric to see each direction's share
    g = symmetrise(neighbours, similarity)
    assert (g.src.tolist(), g.dst.tolist()) == ([0, 0], [1, 2])
    np.testing.assert_allclose(g.weight, [(0.8 + 0.6) / 2, 0.5 / 2])


@pytest.mark.parametrize("k", [0, -1, 5, 6, 2.0, True])
def test_bad_k_is_refused_naming_k(k):
    with pytest.raises(ModularityInputError, match=r"^k: ") as err:
        cosine_topk(np.ones((5, 3)), k=k)
    assert err.value.key == "k"


def test_bad_features_are_refused_naming_features():
    with pytest.raises(ModularityInputError, match=r"^features: .*shape"):
        knn_graph(np.ones((2, 3, 4)), k=1)
    x = np.ones((4, 3))
    x[2, 1] = np.nan
    with pytest.raises(ModularityInputError, match=r"^features: .*NaN"):
        knn_graph(x, k=1)
    with pytest.raises(ModularityInputError, match=r"^chunk_size: "):
        knn_graph(np.ones((4, 3)), k=1, chunk_size=0)


def test_float32_near_ties_are_decided_in_float64():
    # offset-dominated features (as linear outputs of an untrained net): all cosines within ~1e-6 of 1, so
    # float32 rounding alone would reorder neighbours; the graph must be the exact-cosine one
    rng = np.random.default_rng(7)
    x = (1.0 + 1e-3 * rng.normal(size=(120, 10))).astype(np.float32)
    expected = brute_force_knn_adjacency(x.astype(np.float64), 3)
    profile = {}
    got = knn_graph(x, k=3, chunk_size=32, profile=profile).dense()
    np.testing.assert_array_equal(got != 0, expected != 0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)  # refined rows carry float64 weights
    assert profile["refined_rows"] == 120


def test_well_separated_rows_are_not_refined():
    x = np.random.default_rng(8).normal(size=(100, 64)).astype(np.float32)
    profile = {}
    cosine_topk(x, k=3, profile=profile)
    assert profile["refined_rows"] < 10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu():
    x = torch.randn(700, 300, generator=torch.Generator().manual_seed(3))
    cpu = cosine_topk(x, k=3, chunk_size=128)
    gpu = cosine_topk(x.cuda(), k=3, chunk_size=128)
    np.testing.assert_array_equal(gpu[0], cpu[0])
    np.testing.assert_allclose(gpu[1], cpu[1], atol=1e-6)


def test_matmul_precision_is_full_inside_and_restored():
    seen = []
    original = torch.Tensor.__matmul__

    def spy(a, b):
        seen.append(torch.get_float32_matmul_precision())
        return original(a, b)

    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        torch.Tensor.__matmul__ = spy
        cosine_topk(torch.randn(20, 5), k=2)
    finally:
        torch.Tensor.__matmul__ = original
        after = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(before)
    assert seen and set(seen) == {"highest"} and after == "high"
