"""The torch.fx walk: models it accepts (torchvision's resnet18 and vgg11_bn, plain nn.Sequential, functional
forwards) give the rolled graph the documented rules give, computed here from the weights directly; what
it refuses is named."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from netdyn.graphs import rolled_edge_arrays, rolled_graph
from netdyn.graphs.rolled import RolledPlan
from netdyn.graphs.steps import Conv, Linear, Pool, Shortcut, UnsupportedOperation
from netdyn.graphs.walk import walk

from .helpers import Net


def gain(bn: nn.modules.batchnorm._BatchNorm) -> np.ndarray:
    return (bn.weight.detach().double().abs() / torch.sqrt(bn.running_var.double() + bn.eps)).numpy()


def kernel_norms(w: torch.Tensor, n_src: int) -> np.ndarray:
    """(out, n_src) L2 norms of W over everything but the (out, in-channel) pair."""
    return w.detach().double().reshape(w.shape[0], n_src, -1).norm(dim=2).numpy()


def edge_matrix(model, input_shape=None) -> sp.csr_matrix:
    """Rolled graph as a matrix, [dst, src] = weight (explicit zeros kept)."""
    n, src, dst, w = rolled_edge_arrays(model, input_shape)
    a = sp.coo_matrix((w, (dst, src)), shape=(n, n)).tocsr()
    assert a.nnz == src.size  # no parallel edges
    return a


def randomise_bn(model: nn.Module) -> None:
    """BN gains away from 1, so that a missing or misplaced fold changes the weights."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.1)


def dense_block(a: sp.csr_matrix, src_off: int, dst_off: int, expected: np.ndarray) -> None:
    """Every edge src_off + j → dst_off + i has weight expected[i, j] (and is stored, even if 0)."""
    nd, ns = expected.shape
    block = a[dst_off:dst_off + nd, src_off:src_off + ns]
    assert block.nnz == nd * ns
    np.testing.assert_allclose(block.toarray(), expected, rtol=1e-12)


def diagonal(a: sp.csr_matrix, src_off: int, dst_off: int, n: int) -> list[float]:
    """Weights of the edges src_off + c → dst_off + c."""
    return [a[dst_off + c, src_off + c] for c in range(n)]


# ----------------------------------------------------------------------------------------------
# torchvision models (architectures only, no weights downloaded)
# ----------------------------------------------------------------------------------------------

def test_torchvision_resnet18():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    randomise_bn(model)
    plan = RolledPlan.from_model(model)
    stages = [("layer1", 64, 64), ("layer2", 64, 128), ("layer3", 128, 256), ("layer4", 256, 512)]
    names = ["input", "conv1"] + [f"{s}.{b}.conv{k}" for s, _, _ in stages for b in (0, 1) for k in (1, 2)] + ["fc"]
    assert plan.names == names  # downsample convs have no nodes
    assert plan.sizes == [3, 64] + [c for _, _, c in stages for _ in range(4)] + [10]
    edges = 3 * 64 + 10 * 512
    for _, cin, c in stages:
        edges += cin * c + 3 * c * c + (cin * c if cin != c else c) + c  # convs, first shortcut, second (identity)
    assert plan.n_edges == edges
    weights = edge_matrix(model)
    assert weights.shape[0] == sum(plan.sizes) and weights.nnz == plan.n_edges
    off = dict(zip(plan.names, np.cumsum([0] + plan.sizes[:-1]).tolist()))
    dense_block(weights, 0, off["conv1"], kernel_norms(model.conv1.weight, 3) * gain(model.bn1)[:, None])
    blk = model.layer2[0]
    dense_block(weights, off["layer2.0.conv1"], off["layer2.0.conv2"],
                kernel_norms(blk.conv2.weight, 128) * gain(blk.bn2)[:, None])
    # projection shortcut: block input (the output of layer1.1, i.e. its conv2 nodes) → layer2.0.conv2
    dense_block(weights, off["layer1.1.conv2"], off["layer2.0.conv2"],
                kernel_norms(blk.downsample[0].weight, 64) * gain(blk.downsample[1])[:, None])
    # identity shortcuts: channel c → c, weight 1, from the block input (stem output is conv1's nodes)
    for src, dst, c in (("conv1", "layer1.0.conv2", 64), ("layer1.0.conv2", "layer1.1.conv2", 64),
                        ("layer3.0.conv2", "layer3.1.conv2", 256)):
        assert diagonal(weights, off[src], off[dst], c) == [1.0] * c
    # fc after the global average pool: |W|
    dense_block(weights, off["layer4.1.conv2"], off["fc"], model.fc.weight.detach().double().abs().numpy())


def test_torchvision_vgg11_bn():
    """The full model's walk, then its rolled graph with a small classifier (the full one has 23M edges);
    torchvision's own forward is traced (adaptive pool to 7×7, torch.flatten)."""
    with torch.device("meta"):
        steps = walk(torchvision.models.vgg11_bn(weights=None), (3, 224, 224))
    convs = [s for s in steps if isinstance(s, Conv)]
    assert [c.name for c in convs] == [f"features.{i}" for i in (0, 4, 8, 11, 15, 18, 22, 25)]
    assert all(c.bn == f"features.{int(c.name.split('.')[1]) + 1}" for c in convs)
    assert [s.kind for s in steps if isinstance(s, Pool)] == ["max"] * 5 + ["adaptive_avg"]
    lin = [s for s in steps if isinstance(s, Linear)]
    assert [(s.name, s.in_features, s.flattened) for s in lin] == \
        [("classifier.0", 512 * 49, True), ("classifier.3", 4096, False), ("classifier.6", 4096, False)]

    torch.manual_seed(0)
    with torch.device("meta"):  # initialising the full classifier takes seconds
        model = torchvision.models.vgg11_bn(weights=None)
    model.features.to_empty(device="cpu")
    for m in model.features:
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    model.classifier = nn.Sequential(nn.Linear(512 * 49, 6), nn.ReLU(), nn.Dropout(), nn.Linear(6, 4))
    randomise_bn(model)
    plan = RolledPlan.from_model(model, (3, 32, 32))
    assert plan.names == ["input"] + [c.name for c in convs] + ["classifier.0", "classifier.3"]
    weights = edge_matrix(model)
    off = dict(zip(plan.names, np.cumsum([0] + plan.sizes[:-1]).tolist()))
    dense_block(weights, off["features.4"], off["features.8"],
                kernel_norms(model.features[8].weight, 128) * gain(model.features[9])[:, None])
    # the first linear reads 512·7·7 features: L2 over the 49 positions of each channel
    dense_block(weights, off["features.25"], off["classifier.0"], kernel_norms(model.classifier[0].weight, 512))
    assert plan.n_edges == 3 * 64 + 64 * 128 + 128 * 256 + 256 ** 2 + 256 * 512 + 3 * 512 ** 2 + 512 * 6 + 6 * 4


# ----------------------------------------------------------------------------------------------
# plain and functional models
# ----------------------------------------------------------------------------------------------

def test_plain_sequential_with_batchnorm1d():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 3 * 3, 5), nn.BatchNorm1d(5), nn.GELU(), nn.Linear(5, 2))
    randomise_bn(model)
    assert model.eval()(torch.zeros(1, 3, 8, 8)).shape == (1, 2)
    g = rolled_graph(model, (3, 8, 8))
    assert list(g.gp["layers"]) == ["input", "0", "5", "8"] and list(g.gp["layer_sizes"]) == [3, 4, 5, 2]
    weights = edge_matrix(model)
    assert weights.shape[0] == 14 and weights.nnz == 12 + 20 + 10
    dense_block(weights, 0, 3, kernel_norms(model[0].weight, 3) * gain(model[1])[:, None])
    dense_block(weights, 3, 7, kernel_norms(model[5].weight, 4) * gain(model[6])[:, None])  # L2 over 9 positions
    dense_block(weights, 7, 12, model[8].weight.detach().double().abs().numpy())


class Functional(nn.Module):
    """A residual block written with functional calls, ``+=``, ``torch.add`` and ``.view(x.size(0), -1)``."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 3, 3, padding=1)
        self.a, self.b = nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)
        self.c, self.d = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        x = F.relu(self.stem(x))
        out = self.b(torch.relu(self.a(x)))
        out += x
        x = F.max_pool2d(out.relu(), 2)
        x = torch.add(self.d(torch.sigmoid(self.c(x))), x)
        return self.fc(x.view(x.size(0), -1))


def test_functional_forward():
    torch.manual_seed(0)
    model = Functional()
    assert model(torch.zeros(1, 2, 8, 8)).shape == (1, 2)
    g = rolled_graph(model)
    assert list(g.gp["layers"]) == ["input", "stem", "a", "b", "c", "d", "fc"]
    weights = edge_matrix(model)
    # input 0-1 | stem 2-4 | a 5-7 | b 8-10 | c 11-13 | d 14-16 | fc 17-18
    assert weights.shape[0] == 19 and weights.nnz == 6 + 9 + 9 + 3 + 9 + 9 + 3 + 6
    assert diagonal(weights, 2, 8, 3) == [1.0] * 3  # out += x: stem → b
    assert diagonal(weights, 8, 14, 3) == [1.0] * 3  # torch.add(d(...), x): b → d (x: pooled b)
    dense_block(weights, 8, 11, kernel_norms(model.c.weight, 3))
    dense_block(weights, 14, 17, kernel_norms(model.fc.weight, 3))
    assert rolled_graph(model, (2, 8, 8)).num_edges() == g.num_edges()  # shapes only check


def test_reshape_needs_input_shape():
    class ViewNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(2 * 2 * 2, 1)

        def forward(self, x):
            return self.fc(self.conv(x).view(-1, 8))

    with pytest.raises(UnsupportedOperation, match=r"fx node view.*input_shape"):
        rolled_graph(ViewNet())
    assert rolled_graph(ViewNet(), (1, 4, 4)).num_edges() == 2 + 2
    with pytest.raises(ValueError, match=r"shape \(1, 5, 5\)"):
        rolled_graph(ViewNet(), (1, 5, 5))


def test_bottleneck_projection_is_found():
    """resnet50: the main branch and the projection both end in a 1×1 conv + BN; the projection is the
    one that reads the block input."""
    with torch.device("meta"):
        steps = walk(torchvision.models.resnet50(weights=None))
    short = [s for s in steps if isinstance(s, Shortcut)]
    assert len(short) == 16
    assert [s.conv.name for s in short if s.conv is not None] == [f"layer{i}.0.downsample.0" for i in (1, 2, 3, 4)]
    assert all(steps[s.dst].name.endswith("conv3") for s in short)
    assert not any(isinstance(s, Conv) and "downsample" in s.name for s in steps)


# ----------------------------------------------------------------------------------------------
# refusals
# ----------------------------------------------------------------------------------------------

class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


class Parallel(Concat):
    def forward(self, x):
        return self.a(x) + self.b(x)


class Branchy(nn.Module):
    def forward(self, x):
        return x[0] if x.sum() > 0 else x


@pytest.mark.parametrize("model,match", [
    (Net(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softmax(dim=1)), nn.Sequential(nn.Flatten(), nn.Linear(2, 1))),
     r"features\.1 \(Softmax\): module type Softmax"),
    (Concat(), r"fx node cat \(cat\)"),
    (Parallel(), r"fx node add \(add\): cannot tell the main branch"),
    (nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), r"^0 \(Conv2d\): .*groups"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.BatchNorm2d(2)), r"^2 \(BatchNorm2d\): .*directly follow a conv"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(2, 1)), r"^1 \(Linear\): .*flatten it first"),
    (Branchy(), r"torch.fx cannot trace Branchy"),
])
def test_unsupported_operation_is_named(model, match):
    with pytest.raises(UnsupportedOperation, match=match) as err:
        rolled_graph(model)
    assert isinstance(err.value, TypeError)


def test_identity_channels_must_match():
    class Mismatch(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 3, 3, padding=1)

        def forward(self, x):
            x = self.a(x).relu()
            return self.b(x) + x

    with pytest.raises(UnsupportedOperation, match="identity shortcut between 2 and 3 channels"):
        rolled_graph(Mismatch())


def test_init_scale_of_flattened_linear():
    """init_scale is the RMS of a default-init edge: 1/sqrt(3·n_src) for conv and flattened linear alike."""
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 4, 2))
    g = rolled_graph(model)
    np.testing.assert_allclose(g.ep["init_scale"].a, [1 / math.sqrt(6)] * 6 + [1 / 3] * 6)


def test_single_conv_residual_gives_parallel_edges():
    """``bn(conv(x)) + x``: the conv is the main branch (the identity is tried first); its edges and the
    identity's join the same nodes, and the adjacency sums them."""
    class OneConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.conv, self.bn = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)

        def forward(self, x):
            x = self.stem(x).relu()
            return self.bn(self.conv(x)) + x

    torch.manual_seed(0)
    model = OneConv()
    randomise_bn(model)
    n, src, dst, w = rolled_edge_arrays(model)
    assert n == 1 + 2 + 2 and src.size == 2 + 4 + 2
    a = sp.coo_matrix((w, (dst, src)), shape=(n, n)).toarray()
    expected = kernel_norms(model.conv.weight, 2) * gain(model.bn)[:, None] + np.eye(2)
    np.testing.assert_allclose(a[3:5, 1:3], expected, rtol=1e-12)
