"""Unrolled graphs: the documented LeNet formula, size arithmetic against built graphs, a hand-computed net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from netdyn.graphs import graph_sizes, rolled_graph, unrolled_graph
from netdyn.models import build_model

from .golden import make_golden
from .helpers import Net, assert_edges


def test_unrolled_lenet_formula_and_build():
    sizes = graph_sizes("lenet", [1, 2], image_size=32, in_channels=3)
    for w, row in zip((1, 2), sizes.itertuples()):
        assert row.unrolled_nodes == 1024 * 3 + 8084 * w + 10
        assert row.unrolled_edges == 117600 * 3 * w + 6304 * w + 298080 * w * w + 84 * 10 * w
    torch.manual_seed(0)
    g = unrolled_graph(build_model("lenet", width=1, in_channels=3, image_size=32), 32)
    assert (g.num_vertices(), g.num_edges()) == (sizes.unrolled_nodes[0], sizes.unrolled_edges[0])


@pytest.mark.parametrize("arch,kw", [("vgg", {}), ("resnet", {"depth": 8}), ("alexnet", {})])
def test_unrolled_arithmetic_matches_built_graph(arch, kw):
    model = build_model(arch, width=1, in_channels=1, image_size=8, **kw)
    g = unrolled_graph(model, 8)
    row = graph_sizes(arch, [1], image_size=8, in_channels=1, **kw).iloc[0]
    assert (g.num_vertices(), g.num_edges()) == (row.unrolled_nodes, row.unrolled_edges)
    assert np.all(g.ep["weight"].a >= 0)


def test_unrolled_tiny_exact():
    """1×3×3 input, 2×2 conv (valid) → 2×2, max-pool 2 → 1×1, linear 1 → 1."""
    conv, fc = nn.Conv2d(1, 1, 2, bias=False), nn.Linear(1, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, -2.0], [3.0, -4.0]]]]))
        fc.weight.fill_(-7.0)
    model = Net(nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2)), nn.Sequential(nn.Flatten(), fc))
    g = unrolled_graph(model, 3)
    assert list(g.gp["layers"]) == ["input", "features.0", "features.2", "classifier.1"]
    expected = {}
    k = [[1, 2], [3, 4]]
    for oy in range(2):
        for ox in range(2):
            for ky in range(2):
                for kx in range(2):
                    expected[((oy + ky) * 3 + ox + kx, 9 + oy * 2 + ox)] = k[ky][kx]
            expected[(9 + oy * 2 + ox, 13)] = 1.0  # pool window
    expected[(13, 14)] = 7.0
    assert_edges(g, expected)


def test_unrolled_padding_skips_taps():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    model = Net(nn.Sequential(conv), nn.Sequential(nn.Flatten(), nn.Linear(4, 1)))
    g = unrolled_graph(model, 2)
    assert g.num_edges() == 4 * 4 + 4  # each output of a 2×2 map sees 2×2 real pixels


def test_unrolled_refuses_huge():
    with pytest.raises(ValueError, match="max_edges"):
        unrolled_graph(build_model("lenet", width=1), 32, max_edges=1000)


GOLDEN = np.load(Path(__file__).with_name("golden") / "rolled_golden.npz")


@pytest.mark.parametrize("key", list(make_golden.UNROLLED))
def test_unrolled_graph_equals_golden(key):
    """Unrolled graphs of netdyn's models as before the torch.fx walk: counts and weighted sums of src,
    dst and weight in edge order (golden/make_golden.py)."""
    arch, kw, size = make_golden.UNROLLED[key]
    g = unrolled_graph(make_golden.model(arch, image_size=size, **kw), size)
    e = g.get_edges([g.edge_index])
    e = e[np.argsort(e[:, 2])]
    c = make_golden.coefficients(len(e))
    assert [g.num_vertices(), g.num_edges()] == list(GOLDEN[f"unrolled/{key}/counts"])
    got = np.vstack([c @ e[:, 0], c @ e[:, 1], c @ np.array(g.ep["weight"].a)])
    np.testing.assert_allclose(got, GOLDEN[f"unrolled/{key}/sums"], rtol=1e-12)


def test_unrolled_refuses_what_it_has_no_rule_for():
    """The rolled graph takes these (pooling adds no nodes there); the unrolled one names the layer."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2, 1))
    assert rolled_graph(model).num_edges() == 2 + 2
    with pytest.raises(TypeError, match=r"^1: the unrolled graph supports max pooling"):
        unrolled_graph(model, 4)
    with pytest.raises(TypeError, match=r"^0: the unrolled graph needs plain convs"):
        unrolled_graph(nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2)), 5)
