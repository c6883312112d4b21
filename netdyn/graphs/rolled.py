"""Rolled graph (``rolled_graph``, ``rolled_graph_from_trajectory``, ``rolled_edge_arrays``).

Works on any model :mod:`.walk` can trace (e.g. torchvision's ``resnet18`` and ``vgg11_bn``). Nodes, in
this order: one per input channel (layer ``"input"``), then one per output channel of every conv layer
and one per output unit of every linear layer, in the order the forward uses them (module order). A
node layer is named by its module path (``"features.0"``, ``"features.3.conv1"``, ``"classifier.2"``).
Edges join a layer to the one it reads from; the weight (edge property ``weight``, double) is

* conv, out-channel i ← in-channel j: ``‖W[i, j, :, :]‖₂`` (the kernel slice's L2 norm);
* linear: ``|W[i, j]|``; the first linear after a flatten reads ``C·H·W`` features: W is reshaped to
  ``(out, C, H·W)`` and L2-normed over positions, so its edges go to the C channel nodes before it
  (after a global average pool H·W = 1 and this is ``|W|``);
* BatchNorm2d after a conv (BatchNorm1d after a linear): its per-channel gain
  ``|γ / sqrt(running_var + eps)|`` multiplies every incoming edge of that channel (the shift β and
  biases carry no edge and are ignored);
* residual addition (e.g. a ResNet ``BasicBlock``): the main branch's last layer (conv2) gives the
  block output's nodes. An identity shortcut adds weight-1 edges block-input channel c → conv2 channel
  c; a projection shortcut (a conv + BN used only by the addition) has no nodes and adds
  ``‖w[i, j]‖₂ × |BN gain_i|`` edges block-input j → conv2 i. These make the graph non-bipartite
  (triangles input → conv1 → conv2 → input). A main branch of one conv that reads the block input
  itself gives identity edges parallel to its own (two edges; the adjacency sums them);
* activations, pooling, dropout, Identity add nothing. Zero-weight edges are kept, so the node/edge
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

(resnet8: n = 1; the (112n − 96)·w term is the identity shortcuts.) netdyn's own models give exactly the
graphs of the pre-fx walk (tests/graphs/golden).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache

import graph_tool as gt
import numpy as np
import torch
from torch import nn

from ..models import build_model
from ..rundir.manifest import tensor_architecture
from ..trajectory import MANIFEST_FILE, Trajectory, TrajectoryError
from .steps import Layer, Pool, Step, UnsupportedOperation
from .tensors import Getter, bn_gain, flat_getter, state_getter
from .walk import walk


def make_graph(layer: np.ndarray, names: list[str], sizes: list[int], src: np.ndarray, dst: np.ndarray,
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
    step: Layer | None  # whose weight (and BN) give the edges; None: identity shortcut
    src: np.ndarray
    dst: np.ndarray
    init_scale: float


class RolledPlan:
    """Layer list and edge index arrays of a rolled graph: fixed per architecture, so built once per
    architecture; only the weights change between snapshots."""

    def __init__(self, steps: list[Step]):
        if steps[0].channels is None:
            raise UnsupportedOperation("no conv or linear reads the model's input")
        self.names, self.sizes, self.blocks = ["input"], [steps[0].channels], []
        layer_of = [0]  # node layer of every step's output
        for s in steps[1:]:
            if isinstance(s, Layer):
                layer = self._dense(layer_of[s.src], self._layer(s.name, s.size), s)
            elif isinstance(s, Pool):
                layer = layer_of[s.src]
            else:
                inp, layer = layer_of[s.src], layer_of[s.dst]
                if s.conv is not None:
                    self._dense(inp, layer, s.conv)
                else:
                    n = self.sizes[layer]
                    self.blocks.append(_EdgeBlock(inp, layer, None, self.offset(inp) + np.arange(n),
                                                  self.offset(layer) + np.arange(n), 1.0))
            layer_of.append(layer)
        self.layer = np.repeat(np.arange(len(self.sizes)), self.sizes)
        self.src = np.concatenate([b.src for b in self.blocks])
        self.dst = np.concatenate([b.dst for b in self.blocks])
        self.init_scale = np.concatenate([np.full(b.src.size, b.init_scale) for b in self.blocks])

    @classmethod
    def from_model(cls, model: nn.Module, input_shape: tuple[int, ...] | None = None) -> "RolledPlan":
        return cls(walk(model, input_shape))

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

    def _dense(self, src: int, dst: int, step: Layer) -> int:
        """All n_dst × n_src edges, dst-major (matches W[i, j] raveled)."""
        ns, nd = self.sizes[src], self.sizes[dst]
        self.blocks.append(_EdgeBlock(src, dst, step, self.offset(src) + np.tile(np.arange(ns), nd),
                                      self.offset(dst) + np.repeat(np.arange(nd), ns), 1.0 / math.sqrt(3 * ns)))
        return dst

    def weights(self, get: Getter) -> np.ndarray:
        """Edge weights in edge order from tensors fetched by name."""
        out = []
        for b in self.blocks:
            if b.step is None:
                out.append(np.ones(b.src.size))
                continue
            w = get(f"{b.step.name}.weight")
            w = w.reshape(w.shape[0], self.sizes[b.src_layer], -1)  # conv taps or flattened positions last
            norm = np.sqrt(np.einsum("ijk,ijk->ij", w, w))
            if b.step.bn is not None:
                norm = norm * bn_gain(get, b.step)[:, None]
            out.append(norm.ravel())
        return np.concatenate(out)

    def graph(self, weight: np.ndarray) -> gt.Graph:
        return make_graph(self.layer, self.names, self.sizes, self.src, self.dst, weight, self.init_scale)


def rolled_graph(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> gt.Graph:
    """The rolled graph of a model (module docstring): channel/unit nodes, kernel-norm edges.
    ``input_shape`` (C, H, W) turns on the walk's shape checks; the graph does not depend on it."""
    plan = RolledPlan.from_model(model, input_shape)
    return plan.graph(plan.weights(state_getter(model.state_dict())))


def rolled_edge_arrays(model: nn.Module, input_shape: tuple[int, ...] | None = None
                       ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(n_nodes, src, dst, weight) of the rolled graph, in its edge order: for other graph libraries."""
    plan = RolledPlan.from_model(model, input_shape)
    return plan.n_nodes, plan.src, plan.dst, plan.weights(state_getter(model.state_dict()))


def meta_model(arch: dict) -> nn.Module:
    """The module tree of build_model(**arch) without allocating or initialising weights."""
    with torch.device("meta"):
        return build_model(**arch)


@lru_cache(maxsize=32)
def _architecture_plan(arch_json: str) -> tuple[nn.Module, RolledPlan]:
    """(meta model, plan) of one architecture: the walk runs once per architecture in a process."""
    arch = json.loads(arch_json)
    model = meta_model(arch)
    shape = (arch["in_channels"], arch["image_size"], arch["image_size"]) \
        if "in_channels" in arch and "image_size" in arch else None
    return model, RolledPlan.from_model(model, shape)


def trajectory_plan(traj: Trajectory) -> RolledPlan:
    """Plan of a trajectory's architecture; raises TrajectoryError if the tensors do not fit it."""
    try:
        model, plan = _architecture_plan(json.dumps(tensor_architecture(traj.arch), sort_keys=True))
    except (TypeError, ValueError) as e:
        raise TrajectoryError(f"run {traj.run_id}: {traj.path / MANIFEST_FILE} describes an architecture "
                              f"that cannot be built ({e})") from None
    traj.check_model(model)
    return plan


def rolled_graph_from_trajectory(traj: Trajectory, i: int) -> gt.Graph:
    """Rolled graph of snapshot i read straight from the memory map (no nn.Module with weights)."""
    plan = trajectory_plan(traj)
    return plan.graph(plan.weights(flat_getter(traj, traj.flat(i))))
