"""Rolled graphs: hand-computed small models, the documented size formulas, image-size independence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from netdyn.graphs import graph_sizes, rolled_edge_arrays, rolled_graph
from netdyn.models import build_model

from .golden import make_golden
from .helpers import Net, assert_edges, block_net, edge_dict, set_bn, set_kernels


def tiny_conv_net():
    """2 input channels → conv3x3(3)+BN → pool → conv1x1(2) → flatten(2×2×2) → linear(2); 6×6 input."""
    conv1, bn = nn.Conv2d(2, 3, 3, bias=False), nn.BatchNorm2d(3, eps=0.0)
    conv2, fc = nn.Conv2d(3, 2, 1), nn.Linear(8, 2)
    set_kernels(conv1, [[1, -2], [3, 0.5], [0, 4]])
    set_bn(bn, [2.0, -3.0, 0.5], [4.0, 1.0, 0.25])  # gains 1, 3, 1
    set_kernels(conv2, [[1, 2, -3], [4, 0, 6]])
    with torch.no_grad():  # W[o, c·4 + p]: ‖·‖ over p = 2, 5 | 1, 0
        fc.weight.copy_(torch.tensor([[1, 1, 1, 1, 3, 4, 0, 0], [0, 0, -1, 0, 0, 0, 0, 0]], dtype=torch.float32))
    return Net(nn.Sequential(conv1, bn, nn.ReLU(), nn.MaxPool2d(2), conv2, nn.ReLU()),
               nn.Sequential(nn.Flatten(), nn.Dropout(0.0), fc))


def test_tiny_conv_net_exact():
    model = tiny_conv_net()
    assert model.eval()(torch.zeros(1, 2, 6, 6)).shape == (1, 2)
    g = rolled_graph(model)
    assert list(g.gp["layers"]) == ["input", "features.0", "features.4", "classifier.2"]
    assert list(g.gp["layer_sizes"]) == [2, 3, 2, 2]
    assert list(g.vp["layer"].a) == [0, 0, 1, 1, 1, 2, 2, 3, 3]
    assert [g.vp["layer_name"][v] for v in g.vertices()][2] == "features.0"
    # nodes: input 0,1 | conv1 2,3,4 | conv2 5,6 | linear 7,8
    gain = [1.0, 3.0, 1.0]
    expected = {(j, 2 + i): abs(w) * gain[i] for i, row in enumerate([[1, -2], [3, 0.5], [0, 4]])
                for j, w in enumerate(row)}
    expected.update({(2 + j, 5 + i): abs(w) for i, row in enumerate([[1, 2, -3], [4, 0, 6]])
                     for j, w in enumerate(row)})
    expected.update({(5, 7): 2.0, (6, 7): 5.0, (5, 8): 1.0, (6, 8): 0.0})  # zero edges are kept
    assert_edges(g, expected)
    assert g.num_edges() == 16 and not g.is_directed()


def test_basic_block_identity_exact():
    model, blk = block_net(2, 2, 1)
    set_kernels(blk.conv1, [[1, 2], [3, 4]])
    set_bn(blk.bn1, [1.0, 2.0], [1.0 - 1e-5, 1.0 - 1e-5])  # gains 1, 2
    set_kernels(blk.conv2, [[-5, 6], [7, 0.5]])
    set_bn(blk.bn2, [-0.5, 1.0], [4.0 - 1e-5, 1.0 - 1e-5])  # gains 0.25, 1
    with torch.no_grad():
        model.classifier[2].weight.copy_(torch.tensor([[-2.0, 3.0]]))
    g = rolled_graph(model)
    assert list(g.gp["layers"]) == ["input", "features.0.conv1", "features.0.conv2", "classifier.2"]
    # nodes: input 0,1 | conv1 2,3 | conv2 (block output) 4,5 | linear 6
    expected = {(0, 2): 1, (1, 2): 2, (0, 3): 6, (1, 3): 8,
                (2, 4): 1.25, (3, 4): 1.5, (2, 5): 7, (3, 5): 0.5,
                (0, 4): 1.0, (1, 5): 1.0,  # identity shortcut, weight 1, no BN
                (4, 6): 2.0, (5, 6): 3.0}
    assert_edges(g, expected)


def test_basic_block_projection_exact():
    model, blk = block_net(2, 3, 2)
    assert len(blk.shortcut) == 2
    set_kernels(blk.conv1, np.ones((3, 2)))
    set_kernels(blk.conv2, np.ones((3, 3)))
    set_kernels(blk.shortcut[0], [[1, -2], [3, 4], [0.5, 6]])
    set_bn(blk.shortcut[1], [2.0, 1.0, -1.0], [4.0 - 1e-5, 0.25 - 1e-5, 1.0 - 1e-5])  # gains 1, 2, 1
    g = rolled_graph(model)
    # nodes: input 0,1 | conv1 2,3,4 | conv2 5,6,7 | linear 8
    got = edge_dict(g)
    assert g.num_vertices() == 9 and g.num_edges() == 6 + 9 + 6 + 3
    short = {(0, 5): 1, (1, 5): 2, (0, 6): 6, (1, 6): 8, (0, 7): 0.5, (1, 7): 6}
    for k, w in short.items():
        assert got[k] == pytest.approx(w, rel=1e-6)
    for i in range(3):  # BN at its init: gain 1/sqrt(1 + eps)
        assert got[(0, 2 + i)] == pytest.approx(1 / math.sqrt(1 + 1e-5), rel=1e-6)


def formula(arch, c, w, k):
    """The table of netdyn.graphs.rolled's docstring (resnet8: n = 1)."""
    if arch == "lenet":
        return c + 226 * w + k, 6 * c * w + 12096 * w * w + 84 * k * w
    if arch == "alexnet":
        return c + 400 * w + k, 8 * c * w + 24384 * w * w + 128 * k * w
    if arch in ("vgg", "vgg-nobn"):
        return c + 408 * w + k, 8 * c * w + 20096 * w * w + 64 * k * w
    n = 1
    return c + (16 + 224 * n) * w + k, 16 * c * w + 10752 * n * w * w + (112 * n - 96) * w + 64 * k * w


ARCH_KW = {"lenet": {}, "alexnet": {}, "vgg": {}, "vgg-nobn": {"batchnorm": False}, "resnet8": {"depth": 8}}


@pytest.mark.parametrize("label", list(ARCH_KW))
@pytest.mark.parametrize("width", [1, 2])
def test_rolled_counts_match_formula(label, width):
    arch = label.split("-")[0].removesuffix("8")
    model = build_model(arch, width=width, in_channels=3, num_classes=10, image_size=32, **ARCH_KW[label])
    g = rolled_graph(model)
    assert (g.num_vertices(), g.num_edges()) == formula(label, 3, width, 10)
    sizes = graph_sizes(arch, [width], image_size=32, in_channels=3, **ARCH_KW[label]).iloc[0]
    assert (sizes.rolled_nodes, sizes.rolled_edges) == formula(label, 3, width, 10)
    names = list(g.gp["layers"])
    assert names[0] == "input" and names[1] == "features.0"
    assert np.all(np.diff(g.vp["layer"].a) >= 0)  # nodes in layer order
    if arch == "resnet":
        assert "features.3.conv1" in names and "features.3.conv2" in names


def test_rolled_graph_ignores_image_size():
    a = graph_sizes("vgg", [1], image_size=32).iloc[0]
    b = graph_sizes("vgg", [1], image_size=8, in_channels=3).iloc[0]
    assert (a.rolled_nodes, a.rolled_edges) == (b.rolled_nodes, b.rolled_edges)


GOLDEN = np.load(Path(__file__).with_name("golden") / "rolled_golden.npz")


@pytest.mark.parametrize("key", list(make_golden.ROLLED))
def test_rolled_graph_equals_golden(key):
    """netdyn's own models give the graphs they gave before the torch.fx walk (golden/make_golden.py):
    identical layers, src, dst and init scales; weights equal to 1e-12."""
    arch, kw = make_golden.ROLLED[key]
    model = make_golden.model(arch, **kw)
    n, src, dst, w = rolled_edge_arrays(model)
    g = rolled_graph(model)
    assert n == GOLDEN[f"{key}/n_nodes"]
    assert list(g.gp["layers"]) == list(GOLDEN[f"{key}/layers"])
    assert list(g.gp["layer_sizes"]) == list(GOLDEN[f"{key}/layer_sizes"])
    np.testing.assert_array_equal(src, GOLDEN[f"{key}/src"])
    np.testing.assert_array_equal(dst, GOLDEN[f"{key}/dst"])
    np.testing.assert_array_equal(g.ep["init_scale"].a, GOLDEN[f"{key}/init_scale"])
    np.testing.assert_array_equal(g.ep["weight"].a, w)
    if f"{key}/weight" in GOLDEN:
        np.testing.assert_allclose(w, GOLDEN[f"{key}/weight"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(make_golden.coefficients(w.size) @ w, GOLDEN[f"{key}/weight_sums"], rtol=1e-12)


def test_shape_checked_walk_of_batchnorm_net_whose_maps_reach_one_pixel():
    """VGG-11-BN on 16 px digits ends in 1x1 maps: the shape check must not push a batch of one through
    BatchNorm in training mode (the default study's graph jobs failed so), nor leave the model in eval mode."""
    model = build_model("vgg", width=1, in_channels=1, num_classes=10, image_size=16, depth=11, batchnorm=True)
    g = rolled_graph(model, input_shape=(1, 16, 16))
    assert model.training
    n, src, dst, w = rolled_edge_arrays(model)
    assert (g.num_vertices(), g.num_edges()) == (n, len(src))
