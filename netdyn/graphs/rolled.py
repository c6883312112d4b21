"""Rolled graph (``rolled_graph``, ``rolled_graph_from_trajectory``, ``rolled_edge_arrays``).

Nodes, in this order: one per input channel (layer ``"input"``), then one per output channel of every
conv layer and one per output unit of every linear layer, in module order. A node layer is named by its
module path (``"features.0"``, ``"features.3.conv1"``, ``"classifier.2"``). Edges join a layer to the
one it reads from; the weight (edge property ``weight``, double) is

* conv, out-channel i ← in-channel j: ``‖W[i, j, :, :]‖₂`` (the kernel slice's L2 norm);
* linear: ``|W[i, j]|``; the first linear after a flatten reads ``C·H·W`` features: W is reshaped to
  ``(out, C, H·W)`` and L2-normed over positions, so its edges go to the C channel nodes before it
  (after a global average pool H·W = 1 and this is ``|W|``);
* BatchNorm2d after a conv: its per-channel gain ``|γ / sqrt(running_var + eps)|`` multiplies every
  incoming conv edge of that channel (the shift β and biases carry no edge and are ignored);
* ResNet ``BasicBlock``: conv1 and conv2 are node layers; conv2's nodes are the block output. The
  identity shortcut adds weight-1 edges block-input channel c → conv2 channel c; a projection
  shortcut adds ``|w[i, j, 0, 0]| × |BN gain_i|`` edges block-input j → conv2 i. These make the graph
  non-bipartite (triangles input → conv1 → conv2 → input);
* ReLU, max/avg pooling, Dropout, Identity add nothing. Zero-weight edges are kept, so the node/edge
  counts depend only on the architecture, never on the weights (and never on the image size).

Vertex properties ``layer`` (int, index into the layer list) and ``layer_name`` (string); edge
properties ``weight`` and ``init_scale`` (the RMS of that edge's weight under PyTorch's default init,
see :mod:`.signatures`); graph properties ``layers`` (vector<string>) and ``layer_sizes`` (vector<int>).

Counts, with c input channels, k classes, width w (tests check these):

=============  ==============================  ==================================================
arch           nodes                           edges
=============  ==============================  ==================================================
lenet          c + 226·w + k                   6·c·w + 12096·w² + 84·k·w
alexnet        c + 400·w + k                   8·c·w + 24384·w² + 128·k·w
vgg11 (±BN)    c + 408·w + k                   8·c·w + 20096·w² + 64·k·w
resnet 6n+2    c + (16 + 224·n)·w + k          16·c·w + 10752·n·w² + (112·n − 96)·w + 64·k·w
=============  ==============================  ==================================================

(resnet8: n = 1; the (112n − 96)·w term is the identity shortcuts.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import graph_tool as gt
import numpy as np
import torch
from torch import nn

from ..models import build_model
from ..trajectory import MANIFEST_FILE, Trajectory, TrajectoryError
from .walk import _Block, _Conv, _in_channels, _Linear, _walk

Getter = Callable[[str], np.ndarray]


def _bn_gain(get: Getter, conv: _Conv) -> np.ndarray | float:
    if conv.bn is None:
        return 1.0
    return np.abs(get(f"{conv.bn}.weight")) / np.sqrt(get(f"{conv.bn}.running_var") + conv.bn_eps)


def _state_getter(state: dict[str, torch.Tensor]) -> Getter:
    return lambda name: state[name].detach().cpu().numpy().astype(np.float64)


def _flat_getter(traj: Trajectory, row: np.ndarray) -> Getter:
    entries = {t["name"]: t for t in traj.tensors}

    def get(name: str) -> np.ndarray:
        t = entries[name]
        return np.asarray(row[t["offset"]:t["offset"] + t["numel"]], dtype=np.float64).reshape(t["shape"])
    return get


def _make_graph(layer: np.ndarray, names: list[str], sizes: list[int], src: np.ndarray, dst: np.ndarray,
                weight: np.ndarray, init_scale: np.ndarray) -> gt.Graph:
    """One add_edge_list call; edge index = position in the arrays (snapshot_signatures relies on it)."""
    g = gt.Graph(directed=False)
    g.add_vertex(len(layer))
    g.ep["weight"] = g.new_ep("double")
    g.ep["init_scale"] = g.new_ep("double")
    g.add_edge_list(np.column_stack([src, dst, weight, init_scale]), eprops=[g.ep["weight"], g.ep["init_scale"]])
    g.vp["layer"] = g.new_vp("int")
    g.vp["layer"].a = layer
    g.vp["layer_name"] = g.new_vp("string", vals=np.asarray(names, dtype=object)[layer])
    g.gp["layers"] = g.new_gp("vector<string>", list(names))
    g.gp["layer_sizes"] = g.new_gp("vector<int>", list(sizes))
    return g


@dataclass
class _EdgeBlock:
    src_layer: int
    dst_layer: int
    weight: str | None  # tensor name; None: identity shortcut
    conv: _Conv | None  # for the BN gain
    src: np.ndarray
    dst: np.ndarray
    init_scale: float


class _RolledPlan:
    """Layer list and edge index arrays of a rolled graph: fixed per architecture, so built once per
    trajectory; only the weights change between snapshots."""

    def __init__(self, steps: list):
        self.names, self.sizes, self.blocks = ["input"], [_in_channels(steps)], []
        cur = 0
        for s in steps:
            if isinstance(s, _Conv):
                cur = self._dense(cur, self._layer(s.name, s.out_channels), f"{s.name}.weight", s)
            elif isinstance(s, _Block):
                inp = cur
                mid = self._dense(inp, self._layer(s.conv1.name, s.conv1.out_channels), f"{s.conv1.name}.weight",
                                  s.conv1)
                cur = self._dense(mid, self._layer(s.conv2.name, s.conv2.out_channels), f"{s.conv2.name}.weight",
                                  s.conv2)
                if s.shortcut is None:
                    if self.sizes[inp] != self.sizes[cur]:
                        raise TypeError(f"{s.name}: identity shortcut between {self.sizes[inp]} and "
                                        f"{self.sizes[cur]} channels")
                    n = self.sizes[cur]
                    self.blocks.append(_EdgeBlock(inp, cur, None, None, self.offset(inp) + np.arange(n),
                                                  self.offset(cur) + np.arange(n), 1.0))
                else:
                    self._dense(inp, cur, f"{s.shortcut.name}.weight", s.shortcut)
            elif isinstance(s, _Linear):
                if s.in_features % self.sizes[cur]:
                    raise TypeError(f"{s.name}: {s.in_features} inputs do not split over the "
                                    f"{self.sizes[cur]} nodes of {self.names[cur]}")
                cur = self._dense(cur, self._layer(s.name, s.out_features), f"{s.name}.weight", None)
        self.layer = np.repeat(np.arange(len(self.sizes)), self.sizes)
        self.src = np.concatenate([b.src for b in self.blocks])
        self.dst = np.concatenate([b.dst for b in self.blocks])
        self.init_scale = np.concatenate([np.full(b.src.size, b.init_scale) for b in self.blocks])

    @classmethod
    def from_model(cls, model: nn.Module) -> "_RolledPlan":
        return cls(_walk(model))

    def offset(self, layer: int) -> int:
        return int(sum(self.sizes[:layer]))

    @property
    def n_nodes(self) -> int:
        return int(sum(self.sizes))

    @property
    def n_edges(self) -> int:
        return int(self.src.size)

    def _layer(self, name: str, size: int) -> int:
        self.names.append(name)
        self.sizes.append(size)
        return len(self.sizes) - 1

    def _dense(self, src: int, dst: int, weight: str, conv: _Conv | None) -> int:
        """All n_dst × n_src edges, dst-major (matches W[i, j] raveled)."""
        ns, nd = self.sizes[src], self.sizes[dst]
        self.blocks.append(_EdgeBlock(src, dst, weight, conv, self.offset(src) + np.tile(np.arange(ns), nd),
                                      self.offset(dst) + np.repeat(np.arange(nd), ns), 1.0 / math.sqrt(3 * ns)))
        return dst

    def weights(self, get: Getter) -> np.ndarray:
        """Edge weights in edge order from tensors fetched by name."""
        out = []
        for b in self.blocks:
            if b.weight is None:
                out.append(np.ones(b.src.size))
                continue
            w = get(b.weight)
            w = w.reshape(w.shape[0], self.sizes[b.src_layer], -1)
            norm = np.sqrt(np.einsum("ijk,ijk->ij", w, w))
            if b.conv is not None and b.conv.bn is not None:
                norm = norm * _bn_gain(get, b.conv)[:, None]
            out.append(norm.ravel())
        return np.concatenate(out)

    def graph(self, weight: np.ndarray) -> gt.Graph:
        return _make_graph(self.layer, self.names, self.sizes, self.src, self.dst, weight, self.init_scale)


def rolled_graph(model: nn.Module) -> gt.Graph:
    """The rolled graph of a model (module docstring): channel/unit nodes, kernel-norm edges."""
    plan = _RolledPlan.from_model(model)
    return plan.graph(plan.weights(_state_getter(model.state_dict())))


def rolled_edge_arrays(model: nn.Module) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(n_nodes, src, dst, weight) of the rolled graph, in its edge order: for other graph libraries."""
    plan = _RolledPlan.from_model(model)
    return plan.n_nodes, plan.src, plan.dst, plan.weights(_state_getter(model.state_dict()))


def _meta_model(arch: dict) -> nn.Module:
    """The module tree without allocating or initialising weights."""
    with torch.device("meta"):
        return build_model(**arch)


def _trajectory_plan(traj: Trajectory) -> _RolledPlan:
    """Plan of a trajectory's architecture; raises TrajectoryError if the tensors do not fit it."""
    try:
        model = _meta_model(traj.arch)
    except (TypeError, ValueError) as e:
        raise TrajectoryError(f"run {traj.run_id}: {traj.path / MANIFEST_FILE} describes an architecture "
                              f"that cannot be built ({e})") from None
    traj.check_model(model)
    return _RolledPlan.from_model(model)


def rolled_graph_from_trajectory(traj: Trajectory, i: int) -> gt.Graph:
    """Rolled graph of snapshot i read straight from the memory map (no nn.Module with weights)."""
    plan = _trajectory_plan(traj)
    return plan.graph(plan.weights(_flat_getter(traj, traj.flat(i))))


