"""Node properties: the Perron vector against dense eigh (bipartite, non-bipartite, degenerate graphs),
clustering's scale-free limit, strength, pagerank and katz."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from netdyn.graphs import KATZ_FRACTION, PROPERTIES, node_properties, perron_vector, rolled_graph
from netdyn.graphs.properties import adjacency
from netdyn.models import build_model

from .helpers import Net, block_net, dense_adjacency, dense_perron, plain_graph


def _check_against_dense(g):
    lam_d, v_d = dense_perron(g)
    props = node_properties(g)
    assert props.attrs["lambda_max"] == pytest.approx(lam_d, rel=1e-9)
    np.testing.assert_allclose(props["eigenvector"].to_numpy(), v_d, atol=1e-6)
    assert np.all(props["eigenvector"] >= 0)
    assert np.linalg.norm(props["eigenvector"]) == pytest.approx(1.0)
    return props


def test_eigenvector_bipartite_two_layer_net():
    torch.manual_seed(1)
    model = Net(nn.Sequential(nn.Conv2d(3, 8, 3)), nn.Sequential(nn.Flatten(), nn.Linear(8 * 4, 5)))
    g = rolled_graph(model)  # layers 3 | 8 | 5: bipartite (odd vs even layers)
    lam, _ = dense_perron(g)
    a = np.linalg.eigvalsh(adjacency(g, g.ep["weight"]).toarray())
    assert a[0] == pytest.approx(-lam)  # spectrum symmetric: power iteration would oscillate
    _check_against_dense(g)


@pytest.mark.parametrize("arch,kw", [("lenet", {}), ("resnet", {"depth": 8})])
def test_eigenvector_real_nets(arch, kw):
    torch.manual_seed(0)
    _check_against_dense(rolled_graph(build_model(arch, width=1, **kw)))


def test_eigenvector_resnet_block_non_bipartite():
    torch.manual_seed(0)
    model, _ = block_net(3, 4, 2)
    g = rolled_graph(model)
    lam, _ = dense_perron(g)
    a = np.linalg.eigvalsh(adjacency(g, g.ep["weight"]).toarray())
    assert a[0] > -lam + 1e-6  # triangles: not bipartite
    props = _check_against_dense(g)
    assert props["clustering"].max() > 0


@pytest.mark.parametrize("n", [3, 4, 9, 50])
def test_eigenvector_terminates_on_path(n):
    g = plain_graph([(i, i + 1) for i in range(n - 1)], n)
    props = _check_against_dense(g)
    assert props.attrs["lambda_max"] == pytest.approx(2 * math.cos(math.pi / (n + 1)))


def test_eigenvector_terminates_on_star():
    n = 30
    g = plain_graph([(0, i) for i in range(1, n)], n, weights=np.linspace(0.5, 2, n - 1))
    props = _check_against_dense(g)
    assert props["eigenvector"][0] == pytest.approx(1 / math.sqrt(2))  # centre holds half the mass


def test_eigenvector_degenerate_graphs():
    g = plain_graph([(0, 1), (1, 2)], 5, weights=[0.0, 0.0])  # all-zero weights
    props = node_properties(g)
    assert props.attrs["lambda_max"] == 0.0
    np.testing.assert_allclose(props["eigenvector"], 1 / math.sqrt(5))
    assert np.isfinite(props[["pagerank", "katz", "strength"]].to_numpy()).all()
    assert set(props["layer_name"]) == {"graph"} and props["strength_init"].isna().all()
    # two components: a triangle (λ = 2) and an edge (λ = 1): the triangle takes all the mass
    g = plain_graph([(0, 1), (1, 2), (0, 2), (3, 4)], 6)
    v = node_properties(g)["eigenvector"].to_numpy()
    np.testing.assert_allclose(v, [1 / math.sqrt(3)] * 3 + [0, 0, 0], atol=1e-9)
    assert perron_vector(sp.csr_matrix((0, 0)))[1].size == 0


def test_clustering_is_scale_free_limit():
    """Triangle 0-1-2 (weights 2, 3, 5) plus a pendant edge 0-3 (7): Σ_{j<k}(w_ij+w_ik)w_jk / s_i²,
    at any scale (graph-tool's own weighted formula breaks down when strengths are < 1)."""
    expected = [25 / 144, 21 / 49, 16 / 64, 0.0]
    for scale in (1e-3, 1.0, 1e3):
        g = plain_graph([(0, 1), (0, 2), (1, 2), (0, 3)], 4, weights=np.array([2, 3, 5, 7]) * scale)
        np.testing.assert_allclose(node_properties(g)["clustering"], expected, rtol=1e-7)


def test_node_properties_columns_and_strength():
    torch.manual_seed(0)
    g = rolled_graph(build_model("lenet", width=1))
    props = node_properties(g)
    assert list(props.columns) == ["layer", "layer_name", *PROPERTIES, "strength_init"]
    a = adjacency(g, g.ep["weight"])
    np.testing.assert_allclose(props["strength"], np.asarray(a.sum(axis=1)).ravel())
    assert props["pagerank"].sum() == pytest.approx(1.0)
    assert np.linalg.norm(props["katz"]) == pytest.approx(1.0)
    # katz with alpha = 0.5/λ solves x = αAx + 1 (up to normalisation)
    x = np.linalg.solve(np.eye(a.shape[0]) - 0.5 / props.attrs["lambda_max"] * a.toarray(), np.ones(a.shape[0]))
    np.testing.assert_allclose(props["katz"], x / np.linalg.norm(x), rtol=1e-4)
    assert (props["clustering"] == 0).all()  # bipartite
    assert props.groupby("layer_name", sort=False).size().to_dict()["input"] == 3


# ----------------------------------------------------------------------------------------------
# PageRank and Katz against dense linear algebra on a small weighted graph
# ----------------------------------------------------------------------------------------------

WEIGHTED_EDGES = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 5), (5, 6), (6, 3), (1, 5)]
WEIGHTS = [5.0, 0.2, 1.0, 3.0, 0.5, 2.0, 0.1, 4.0, 0.7]  # unequal, so that ignoring them shows
CENTRALITY_ATOL = 1e-6  # graph-tool iterates to a total change of 1e-6


def pagerank_reference(a: np.ndarray, damping: float = 0.85) -> np.ndarray:
    """x_v = (1 − d)/N + d Σ_u a_vu x_u / s_u with s the weighted degree: (I − d·A·D⁻¹) x = (1 − d)/N·1."""
    n = a.shape[0]
    return np.linalg.solve(np.eye(n) - damping * a / a.sum(axis=0)[None, :], np.full(n, (1 - damping) / n))


def katz_reference(a: np.ndarray, fraction: float) -> np.ndarray:
    """x = (I − αA)⁻¹ 1 with α = fraction/λ_max, scaled to unit L2 norm (graph-tool's norm=True)."""
    alpha = fraction / np.linalg.eigvalsh(a)[-1]
    x = np.linalg.solve(np.eye(a.shape[0]) - alpha * a, np.ones(a.shape[0]))
    return x / np.linalg.norm(x)


def test_weighted_pagerank_and_katz_against_dense():
    g = plain_graph(WEIGHTED_EDGES, 7, WEIGHTS)
    a = dense_adjacency(g)
    props = node_properties(g)
    pr, katz = pagerank_reference(a), katz_reference(a, KATZ_FRACTION)
    np.testing.assert_allclose(props["pagerank"], pr, atol=CENTRALITY_ATOL, rtol=0)
    np.testing.assert_allclose(props["katz"], katz, atol=CENTRALITY_ATOL, rtol=0)
    assert KATZ_FRACTION == 0.5  # the documented α = 0.5/λ_max
    # the references tell the weighted centralities from unweighted ones and from another α
    unweighted = (a > 0).astype(float)
    assert np.abs(pagerank_reference(unweighted) - pr).max() > 100 * CENTRALITY_ATOL
    assert np.abs(katz_reference(unweighted, KATZ_FRACTION) - katz).max() > 100 * CENTRALITY_ATOL
    assert np.abs(katz_reference(a, KATZ_FRACTION / 2) - katz).max() > 100 * CENTRALITY_ATOL
    np.testing.assert_allclose(props["strength"], a.sum(axis=1), rtol=1e-12)
