"""Small models with hand-set weights and graph comparisons shared by the graph tests."""

from __future__ import annotations

import math

import graph_tool as gt
import numpy as np
import pytest
import torch
from torch import nn

from netdyn.models import BasicBlock


class Net(nn.Module):
    """Minimal model with the netdyn.models layout (features, classifier)."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, x):
        return self.classifier(self.features(x))


def set_kernels(conv: nn.Conv2d, norms) -> None:
    """Every k×k slice constant, so that ‖W[i, j]‖₂ = |norms[i][j]| and the sign is kept."""
    norms = torch.as_tensor(norms, dtype=torch.float32)
    kh, kw = conv.kernel_size
    with torch.no_grad():
        conv.weight.copy_((norms / math.sqrt(kh * kw))[:, :, None, None].expand_as(conv.weight))


def set_bn(bn: nn.BatchNorm2d, gamma, var) -> None:
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma, dtype=torch.float32))
        bn.running_var.copy_(torch.tensor(var, dtype=torch.float32))


def edge_dict(g) -> dict:
    e = g.get_edges([g.ep["weight"]])
    return {(int(min(a, b)), int(max(a, b))): w for a, b, w in e}


def assert_edges(g, expected: dict) -> None:
    got = edge_dict(g)
    assert sorted(got) == sorted(expected)
    for k, w in expected.items():
        assert got[k] == pytest.approx(w, rel=1e-6), k


def dense_adjacency(g) -> np.ndarray:
    """Symmetric weighted adjacency from the edge list, without graph-tool's matrix builders."""
    a = np.zeros((g.num_vertices(),) * 2)
    e = g.get_edges([g.ep["weight"]])
    np.add.at(a, (e[:, 0].astype(int), e[:, 1].astype(int)), e[:, 2])
    np.add.at(a, (e[:, 1].astype(int), e[:, 0].astype(int)), e[:, 2])
    return a


def dense_perron(g) -> tuple[float, np.ndarray]:
    vals, vecs = np.linalg.eigh(dense_adjacency(g))
    v = vecs[:, -1] * np.sign(vecs[:, -1].sum())
    return vals[-1], v


def plain_graph(edges, n, weights=None):
    g = gt.Graph(directed=False)
    g.add_vertex(n)
    g.ep["weight"] = g.new_ep("double")
    w = np.ones(len(edges)) if weights is None else np.asarray(weights, float)
    g.add_edge_list(np.column_stack([np.asarray(edges, float).reshape(-1, 2), w]), eprops=[g.ep["weight"]])
    return g


def block_net(in_planes, planes, stride):
    blk = BasicBlock(in_planes, planes, stride)
    return Net(nn.Sequential(blk, nn.AdaptiveAvgPool2d(1)),
               nn.Sequential(nn.Flatten(), nn.Dropout(0.0), nn.Linear(planes, 1, bias=False))), blk
