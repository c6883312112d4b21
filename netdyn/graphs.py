"""Temporal graph summaries of training (methods.md §1): one weighted graph per snapshot, node
properties, a size-independent "graph signature", and the early-epoch summary a predictor reads.

Public API (works on any model that obeys the contract of :mod:`netdyn.models`, e.g. your own
checkpoint loaded into ``build_model(...)``)::

    g = rolled_graph(model)                 # graph_tool.Graph, undirected, weighted
    props = node_properties(g)              # DataFrame, one row per node
    sig = signature(props)                  # {"features.0.eigenvector.mean": ..., "all.strength.std": ...}
    sigs = snapshot_signatures(traj)        # one row per snapshot of a Trajectory (epoch <= 5)
    X = temporal_summary(sigs, window=3)    # one row per run: every signature at every early epoch + changes
    extract_run(run_dir, max_epoch)         # checks a run's trajectory, then snapshot_signatures
    extract_runs(run_dirs, max_epoch)       # the same for a list of runs, concatenated

Also: ``rolled_graph_from_trajectory(traj, i)``, ``rolled_edge_arrays(model)`` (for other graph
libraries), ``perron_vector(A)``, ``unrolled_graph(model, image_size)`` and ``graph_sizes(...)``.
``node_properties(g, threads=k)`` sets graph-tool's OpenMP threads (process-wide). On a shared,
oversubscribed CPU, set ``OMP_WAIT_POLICY=PASSIVE`` before graph_tool is imported: spinning OpenMP
barriers then cost more than the work at small widths (measured: up to 30× slower node_properties).

Rolled graph (``rolled_graph``, ``rolled_graph_from_trajectory``)
------------------------------------------------------------------
Nodes, in this order: one per input channel (layer ``"input"``), then one per output channel of every
conv layer and one per output unit of every linear layer, in module order. A node layer is named by its
module path (``"features.0"``, ``"features.3.conv1"``, ``"classifier.2"``). Edges join a layer to the
one it reads from; the weight (edge property ``weight``, double) is

* conv, out-channel i ← in-channel j: ``‖W[i, j, :, :]‖₂`` (the kernel slice's L2 norm);
* linear: ``|W[i, j]|``; the first linear after ``Flatten`` reads ``C·H·W`` features: W is reshaped to
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
see "Normalisation"); graph properties ``layers`` (vector<string>) and ``layer_sizes`` (vector<int>).

Counts, with c input channels, k classes, width w (tests check these):

=============  ==============================  ==================================================
arch           nodes                           edges
=============  ==============================  ==================================================
lenet          c + 226·w + k                   6·c·w + 12096·w² + 84·k·w
alexnet        c + 400·w + k                   8·c·w + 24384·w² + 128·k·w
vgg11 (±BN)    c + 408·w + k                   8·c·w + 20096·w² + 64·k·w
resnet 6n+2    c + (16 + 224·n)·w + k          16·c·w + 10752·n·w² + (112·n − 96)·w + 64·k·w
=============  ==============================  ==================================================

(resnet8: n = 1, so c + 240·w + k nodes and 16·c·w + 10752·w² + 16·w + 64·k·w edges; the (112n − 96)·w
term is the identity shortcuts.)

Unrolled graph (``unrolled_graph``, baseline for LeNet-size nets; refuses more than ``max_edges``)
--------------------------------------------------------------------------------------------------
One node per neuron per position: input pixels × channels, every conv output position × channel, every
pool output position × channel, every linear unit. One edge per kernel tap per output position whose
input lies inside the (unpadded) input, weight ``|w| × |BN gain|``; taps that fall on zero padding add
nothing. Max pooling is its own node layer: each pool output joins its window inputs with weight 1
(which input wins the max depends on the data, so every input of the window is kept). A global average
pool joins each channel's H·W positions with weight 1/(H·W); identity shortcuts join equal positions
(weight 1). ``graph_sizes`` gives both sizes by exact arithmetic from the module tree (never by
building; tests check the arithmetic against built graphs). E.g. LeNet on c×32×32 has
``1024·c + 8084·w + k`` nodes and ``117600·c·w + 6304·w + 298080·w² + 84·k·w`` edges, rolled into
``c + 226·w + k`` nodes and ``6·c·w + 12096·w² + 84·k·w`` edges.

Node properties (``node_properties``)
------------------------------------
``eigenvector``: the Perron vector of the weighted adjacency A, unit L2 norm, non-negative. Layered
graphs are (near-)bipartite, so A has eigenvalues ±λ and plain power iteration oscillates (graph-tool's
``eigenvector()`` without ``max_iter`` never returns): we take the largest *algebraic* eigenpair with
``scipy.sparse.linalg.eigsh`` (Lanczos, start vector all ones), which is exact on bipartite graphs and
always returns; if ARPACK ever fails to converge, a shifted power iteration with an iteration cap takes
over. Because the start vector is all ones the result equals the limit of the shifted power iteration
``(A + cI)^t 1``: on a disconnected graph the component(s) of largest spectral radius carry the mass
and the rest get 0; a graph with no (non-zero) edges gets the uniform vector 1/sqrt(n) and λ = 0.
``strength``: weighted degree (row sums of the same adjacency). ``pagerank``: graph-tool's, damping 0.85,
weighted (sums to 1). ``katz``: graph-tool's, weighted, α = 0.5/λ_max (half the convergence bound, so the
series converges geometrically with ratio 0.5; α = 0 when λ = 0), unit L2 norm. ``clustering``:
graph-tool's weighted local clustering. Measured on 2.45: it treats weights as multiplicities,
c_i = Σ_{j<k} (w_ij + w_ik)·w_jk / (s_i(s_i − 1)), so it is not scale-invariant and gives 0 or values > 1
when s_i < 1 (our weights are ~0.1). We call it with the weights in units of 1e-9 × the smallest positive
strength, which yields its scale-free limit Σ_{j<k} (w_ij + w_ik)·w_jk / s_i² (relative error ≤ 1e-9). It costs
O(Σ deg²) (about 1 s at VGG width 8) and is 0 on the bipartite lenet/alexnet/vgg graphs, informative on
ResNets; ``clustering=False`` skips it. Not included: closeness (all-pairs Dijkstra: 2.8 s at VGG width
4, ~20 s extrapolated at width 8), betweenness (same cost), HITS (on a bipartite graph A² has a
degenerate top eigenvalue, so hubs/authorities are not unique). ``strength_init``: the strength the node
would have at PyTorch's default init (Σ of ``init_scale`` over its edges).

Signature (``signature``) and normalisation
-------------------------------------------
For every node layer and for the whole graph (scope ``"all"``), each property is aggregated over the
scope's nodes with mean, median, std (population), skewness and excess kurtosis (scipy.stats, biased
estimators); skewness and kurtosis are NaN where they are undefined (1-node layers, constant values).
Keys are ``{scope}.{property}.{aggregator}``; scopes contain dots, so split keys from the right.
Before aggregating, properties are put on a width-free scale (N = nodes in the whole graph):

* ``eigenvector × sqrt(N)`` and ``katz × sqrt(N)``: unit-norm vectors, so their mean square becomes 1;
* ``pagerank × N``: mean exactly 1;
* ``strength / strength_init``. Under default init (kaiming-uniform, a = √5) a weight is U(−b, b) with
  b = 1/sqrt(fan_in), so an edge from a layer of n_src nodes has RMS ``1/sqrt(3·n_src)`` (conv:
  k² taps of fan_in = n_src·k² under the L2 norm; linear: fan_in = n_src; flattened linear:
  H·W positions of fan_in = n_src·H·W); BN gains start at ≈ 1 and identity edges are 1. Raw strengths
  therefore grow like sqrt(width); the ratio is ≈ 0.9–1 at init at any width and measures how far
  training has moved a node's weights;
* clustering (as computed here) is already scale-free.

Eigenvector, pagerank, katz and clustering do not change when all weights are multiplied by a
constant, so only strength needs the fan-in scale. "Close" across widths means: for the same
architecture at widths 1 and 4 with default init (mean over 3 seeds), every whole-graph mean and
median agrees within 15% relative difference (tested for lenet, vgg, alexnet; observed ≤ 5%). ResNet8
agrees within 4% except the eigenvector median (~16%). Spreads of eigenvector/pagerank/katz agree
within ~10% too, but those of the strength ratio shrink with width (per-node fluctuations average
over more inputs), and skewness/kurtosis move by up to 2×: those are not claimed to transfer.

Temporal summary
----------------
``snapshot_signatures(traj, max_epoch)`` gives one row per kept snapshot with epoch ≤ max_epoch
(columns run_id, snapshot, epoch, then the signature). ``temporal_summary(sigs, window)`` gives one
row per run_id: ``{col}@e{epoch:g}`` for each snapshot epoch ≤ window present in any run (sub-epoch
ones included), and ``d({col})@e{epoch:g}`` = change since the previous epoch of that grid. Runs that
stopped early (diverged) get NaN for missing epochs. Snapshots with non-finite weights are skipped
(logged) and so also end up NaN.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import graph_tool as gt
import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import scipy.stats
import torch
from graph_tool import centrality as gt_centrality
from graph_tool import clustering as gt_clustering
from graph_tool import spectral as gt_spectral
from torch import nn

from .models import BasicBlock, build_model
from .trajectory import DATA_FILE, MANIFEST_FILE, Trajectory, TrajectoryError

__all__ = [
    "PROPERTIES",
    "AGGREGATORS",
    "KATZ_FRACTION",
    "rolled_graph",
    "rolled_graph_from_trajectory",
    "rolled_edge_arrays",
    "unrolled_graph",
    "graph_sizes",
    "perron_vector",
    "node_properties",
    "signature",
    "snapshot_signatures",
    "temporal_summary",
    "extract_run",
    "extract_runs",
]

log = logging.getLogger(__name__)

PROPERTIES = ("eigenvector", "strength", "pagerank", "katz", "clustering")
AGGREGATORS = ("mean", "median", "std", "skew", "kurtosis")
KATZ_FRACTION = 0.5  # alpha = KATZ_FRACTION / lambda_max
META_COLUMNS = ("run_id", "snapshot", "epoch")
_EPOCH_DECIMALS = 9
_CLUSTERING_UNITS = 1e9

Getter = Callable[[str], np.ndarray]


# --------------------------------------------------------------------------------------------------
# Walking the module tree: the only place that knows about module types.
# --------------------------------------------------------------------------------------------------

@dataclass
class _Conv:
    name: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    bn: str | None = None
    bn_eps: float = 1e-5


@dataclass
class _Block:
    name: str
    conv1: _Conv
    conv2: _Conv
    shortcut: _Conv | None  # None: identity


@dataclass
class _Pool:
    name: str
    kind: str  # "max" or "avg" (global)
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)


@dataclass
class _Linear:
    name: str
    in_features: int
    out_features: int


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _conv_step(m: nn.Conv2d, name: str) -> _Conv:
    if m.groups != 1 or _pair(m.dilation) != (1, 1) or isinstance(m.padding, str) or m.padding_mode != "zeros":
        raise TypeError(f"{name}: only plain convs (groups 1, dilation 1, numeric zero padding) are supported")
    return _Conv(name, m.in_channels, m.out_channels, _pair(m.kernel_size), _pair(m.stride), _pair(m.padding))


def _attach_bn(conv: _Conv | None, m: nn.BatchNorm2d, name: str) -> None:
    """BN folds into the conv right before it, so it must follow one with matching channels."""
    if conv is None or conv.bn is not None or conv.out_channels != m.num_features:
        raise TypeError(f"{name}: a BatchNorm2d must directly follow a conv with {m.num_features} channels")
    if not m.affine or not m.track_running_stats:
        raise TypeError(f"{name}: BatchNorm2d needs affine=True and running statistics")
    conv.bn, conv.bn_eps = name, float(m.eps)


_NO_EDGES = (nn.ReLU, nn.Dropout, nn.Identity)


def _walk(model: nn.Module) -> list:
    """The model as a list of graph-relevant steps; raises TypeError naming an unsupported module."""
    if not hasattr(model, "features") or not hasattr(model, "classifier"):
        raise TypeError("model must have `features` and `classifier` (see netdyn.models)")
    steps: list = []
    last_conv: _Conv | None = None
    for name, m in model.features.named_children():
        path = f"features.{name}"
        if isinstance(m, nn.Conv2d):
            last_conv = _conv_step(m, path)
            steps.append(last_conv)
        elif isinstance(m, nn.BatchNorm2d):
            _attach_bn(last_conv, m, path)
        elif isinstance(m, BasicBlock):
            c1, c2 = _conv_step(m.conv1, f"{path}.conv1"), _conv_step(m.conv2, f"{path}.conv2")
            _attach_bn(c1, m.bn1, f"{path}.bn1")
            _attach_bn(c2, m.bn2, f"{path}.bn2")
            short = None
            if len(m.shortcut) > 0:
                short = _conv_step(m.shortcut[0], f"{path}.shortcut.0")
                _attach_bn(short, m.shortcut[1], f"{path}.shortcut.1")
            steps.append(_Block(path, c1, c2, short))
            last_conv = None
        elif isinstance(m, nn.MaxPool2d):
            if _pair(m.dilation) != (1, 1) or m.ceil_mode:
                raise TypeError(f"{path}: MaxPool2d with dilation or ceil_mode is not supported")
            k = _pair(m.kernel_size)
            steps.append(_Pool(path, "max", k, _pair(m.stride if m.stride is not None else k), _pair(m.padding)))
            last_conv = None
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            if _pair(m.output_size) != (1, 1):
                raise TypeError(f"{path}: only AdaptiveAvgPool2d(1) is supported")
            steps.append(_Pool(path, "avg"))
            last_conv = None
        elif isinstance(m, _NO_EDGES):
            continue
        else:
            raise TypeError(f"{path}: module type {type(m).__name__} is not supported by the graph builder")
    children = list(model.classifier.named_children())
    if not children or not isinstance(children[0][1], nn.Flatten):
        raise TypeError("classifier must start with nn.Flatten (see netdyn.models)")
    for name, m in children[1:]:
        path = f"classifier.{name}"
        if isinstance(m, nn.Linear):
            steps.append(_Linear(path, m.in_features, m.out_features))
        elif not isinstance(m, _NO_EDGES):
            raise TypeError(f"{path}: module type {type(m).__name__} is not supported in the classifier")
    return steps


def _in_channels(steps: list) -> int:
    first = steps[0]
    if isinstance(first, _Block):
        return first.conv1.in_channels
    return first.in_channels if isinstance(first, _Conv) else first.in_features


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


# --------------------------------------------------------------------------------------------------
# Rolled graph
# --------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------
# Unrolled graph
# --------------------------------------------------------------------------------------------------

def _taps(n_in: int, k: int, s: int, p: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """1-D im2col: (n_out, out position, kernel offset, input position) of every tap inside the input."""
    n_out = (n_in + 2 * p - k) // s + 1
    o, kk = np.meshgrid(np.arange(n_out), np.arange(k), indexing="ij")
    i = o * s - p + kk
    ok = (i >= 0) & (i < n_in)
    return n_out, o[ok], kk[ok], i[ok]


@dataclass
class _Grid:
    """A spatial node layer: node id of (c, y, x) is offset + (c·H + y)·W + x (= flatten order)."""
    offset: int
    c: int
    h: int
    w: int

    def ids(self, c, y, x):
        return self.offset + (c * self.h + y) * self.w + x


class _UnrolledPlan:
    """Unrolled layers and edge ops; counts by arithmetic, edges only on request."""

    def __init__(self, steps: list, image_size: int):
        c = _in_channels(steps)
        self.names, self.sizes, self.ops = ["input"], [c * image_size * image_size], []
        cur: _Grid | int = _Grid(0, c, image_size, image_size)
        for s in steps:
            if isinstance(s, _Conv):
                cur = self._conv(cur, s, s.name)
            elif isinstance(s, _Block):
                inp = cur
                mid = self._conv(inp, s.conv1, s.conv1.name)
                cur = self._conv(mid, s.conv2, s.conv2.name)
                if s.shortcut is None:
                    if (inp.c, inp.h, inp.w) != (cur.c, cur.h, cur.w):
                        raise TypeError(f"{s.name}: identity shortcut between different shapes")
                    self.ops.append(("identity", inp, cur, None, inp.c * inp.h * inp.w))
                else:
                    self._conv(inp, s.shortcut, s.shortcut.name, out=cur)
            elif isinstance(s, _Pool):
                cur = self._pool(cur, s)
            elif isinstance(s, _Linear):
                n_in = cur.c * cur.h * cur.w if isinstance(cur, _Grid) else self.sizes[cur]
                if n_in != s.in_features:
                    raise TypeError(f"{s.name}: expects {s.in_features} inputs, the unrolled graph at "
                                    f"image_size={image_size} has {n_in}")
                src = cur.offset if isinstance(cur, _Grid) else self.offset(cur)
                layer = self._layer(s.name, s.out_features)
                self.ops.append(("linear", (src, n_in), layer, s, n_in * s.out_features))
                cur = layer

    def offset(self, layer: int) -> int:
        return int(sum(self.sizes[:layer]))

    def _layer(self, name: str, size: int) -> int:
        self.names.append(name)
        self.sizes.append(size)
        return len(self.sizes) - 1

    def _grid(self, name: str, c: int, h: int, w: int) -> _Grid:
        off = self.offset(len(self.sizes))
        self._layer(name, c * h * w)
        return _Grid(off, c, h, w)

    def _conv(self, inp: _Grid, s: _Conv, name: str, out: _Grid | None = None) -> _Grid:
        ty = _taps(inp.h, s.kernel[0], s.stride[0], s.padding[0])
        tx = _taps(inp.w, s.kernel[1], s.stride[1], s.padding[1])
        if out is None:
            out = self._grid(name, s.out_channels, ty[0], tx[0])
        elif (out.h, out.w) != (ty[0], tx[0]):
            raise TypeError(f"{name}: output {ty[0]}x{tx[0]} does not match the block output {out.h}x{out.w}")
        self.ops.append(("conv", inp, out, (s, ty, tx), s.out_channels * s.in_channels * ty[1].size * tx[1].size))
        return out

    def _pool(self, inp: _Grid, s: _Pool) -> _Grid:
        if s.kind == "avg":
            out = self._grid(s.name, inp.c, 1, 1)
            self.ops.append(("avgpool", inp, out, None, inp.c * inp.h * inp.w))
            return out
        ty = _taps(inp.h, s.kernel[0], s.stride[0], s.padding[0])
        tx = _taps(inp.w, s.kernel[1], s.stride[1], s.padding[1])
        out = self._grid(s.name, inp.c, ty[0], tx[0])
        self.ops.append(("maxpool", inp, out, (ty, tx), inp.c * ty[1].size * tx[1].size))
        return out

    @property
    def n_nodes(self) -> int:
        return int(sum(self.sizes))

    @property
    def n_edges(self) -> int:
        return int(sum(op[4] for op in self.ops))

    def edges(self, get: Getter) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        srcs, dsts, ws, scales = [], [], [], []
        for kind, inp, out, info, n in self.ops:
            if kind == "conv":
                s, (_, oy, ky, iy), (_, ox, kx, ix) = info
                co = np.arange(out.c)[:, None, None, None]
                ci = np.arange(inp.c)[None, :, None, None]
                oy, ky, iy = (a[None, None, :, None] for a in (oy, ky, iy))
                ox, kx, ix = (a[None, None, None, :] for a in (ox, kx, ix))
                w = np.abs(get(f"{s.name}.weight")) * np.reshape(_bn_gain(get, s), (-1, 1, 1, 1))
                shape = (out.c, inp.c, oy.shape[2], ox.shape[3])
                src = np.broadcast_to(inp.ids(ci, iy, ix), shape)
                dst = np.broadcast_to(out.ids(co, oy, ox), shape)
                wt = w[co, ci, ky, kx]
                scale = 1.0 / math.sqrt(3 * s.in_channels * s.kernel[0] * s.kernel[1])
            elif kind == "maxpool":
                (_, oy, _, iy), (_, ox, _, ix) = info
                c = np.arange(inp.c)[:, None, None]
                src = inp.ids(c, iy[None, :, None], ix[None, None, :])
                dst = out.ids(c, oy[None, :, None], ox[None, None, :])
                wt, scale = np.ones(src.shape), 1.0
            elif kind == "avgpool":
                src = inp.offset + np.arange(n)
                dst = out.offset + np.arange(n) // (inp.h * inp.w)
                wt = np.full(n, 1.0 / (inp.h * inp.w))
                scale = 1.0 / (inp.h * inp.w)
            elif kind == "identity":
                src, dst, wt, scale = inp.offset + np.arange(n), out.offset + np.arange(n), np.ones(n), 1.0
            else:  # linear
                (src0, n_in), s = inp, info
                w = get(f"{s.name}.weight")
                src = src0 + np.tile(np.arange(n_in), s.out_features)
                dst = self.offset(out) + np.repeat(np.arange(s.out_features), n_in)
                wt, scale = np.abs(w).ravel(), 1.0 / math.sqrt(3 * n_in)
            srcs.append(np.ravel(src))
            dsts.append(np.ravel(dst))
            ws.append(np.ravel(np.broadcast_to(wt, np.shape(src))))
            scales.append(np.full(n, scale))
        return tuple(np.concatenate(a) for a in (srcs, dsts, ws, scales))


def unrolled_graph(model: nn.Module, image_size: int, *, max_edges: int = 20_000_000) -> gt.Graph:
    """Neuron-level graph (module docstring), the baseline the rolled graph replaces; refuses graphs
    above max_edges (use graph_sizes to see why)."""
    plan = _UnrolledPlan(_walk(model), image_size)
    if plan.n_edges > max_edges:
        raise ValueError(f"unrolled graph would have {plan.n_edges} edges (> max_edges={max_edges}); "
                         f"use graph_sizes() for its size")
    src, dst, w, scale = plan.edges(_state_getter(model.state_dict()))
    layer = np.repeat(np.arange(len(plan.sizes)), plan.sizes)
    return _make_graph(layer, plan.names, plan.sizes, src, dst, w, scale)


def graph_sizes(arch: str, widths: Iterable[int] = (1, 2, 4, 8), image_size: int = 32, in_channels: int = 3,
                **model_kwargs) -> pd.DataFrame:
    """Rolled vs unrolled node/edge counts, by exact arithmetic on the module tree (nothing is built,
    so any width is instant); tests check the arithmetic against built graphs."""
    rows = []
    for w in widths:
        steps = _walk(_meta_model(dict(arch=arch, width=w, image_size=image_size, in_channels=in_channels,
                                       **model_kwargs)))
        r, u = _RolledPlan(steps), _UnrolledPlan(steps, image_size)
        rows.append({"arch": arch, "width": w, "image_size": image_size, "in_channels": in_channels,
                     "rolled_nodes": r.n_nodes, "rolled_edges": r.n_edges,
                     "unrolled_nodes": u.n_nodes, "unrolled_edges": u.n_edges,
                     "edge_ratio": u.n_edges / r.n_edges, "method": "exact arithmetic"})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# Node properties
# --------------------------------------------------------------------------------------------------

def _adjacency(g: gt.Graph, weight) -> sp.csr_matrix:
    """Weighted adjacency, built by graph-tool in C++ (symmetric for an undirected graph)."""
    return gt_spectral.adjacency(g, weight=weight).tocsr()


def _project_ones(vecs: np.ndarray) -> np.ndarray:
    """Projection of the all-ones vector on span(vecs): the non-negative representative of a
    (possibly degenerate) top eigenspace."""
    x = vecs @ (vecs.T @ np.ones(vecs.shape[0]))
    return x if np.linalg.norm(x) > 0 else vecs[:, 0]


def _finish(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)  # Perron vector: non-negative (flips the sign and clears -1e-17 noise)
    return x / np.linalg.norm(x)


def perron_vector(a: sp.spmatrix, *, max_iter: int = 100_000) -> tuple[float, np.ndarray]:
    """(λ_max, unit non-negative eigenvector) of a symmetric non-negative matrix; always returns.

    Lanczos for the largest algebraic eigenvalue is exact on bipartite graphs where power iteration
    oscillates; see the module docstring for the disconnected and all-zero cases.
    """
    n = a.shape[0]
    if n == 0:
        return 0.0, np.zeros(0)
    a = sp.csr_matrix(a, dtype=np.float64)
    a.eliminate_zeros()
    if a.nnz == 0:
        return 0.0, np.full(n, 1.0 / math.sqrt(n))
    if n < 3:  # ARPACK needs k < n - 1 room
        vals, vecs = np.linalg.eigh(a.toarray())
        top = vals >= vals[-1] - 1e-12 * max(abs(vals[-1]), 1.0)
        return float(vals[-1]), _finish(_project_ones(vecs[:, top]))
    try:
        vals, vecs = spla.eigsh(a, k=1, which="LA", v0=np.ones(n), tol=0)
        return float(vals[0]), _finish(vecs[:, 0])
    except spla.ArpackNoConvergence:
        log.warning("ARPACK did not converge on a %d-node graph; using shifted power iteration", n)
    shift = float(abs(a).sum(axis=1).max())  # ≥ |every eigenvalue|: A + shift·I is positive semi-definite
    x = np.full(n, 1.0 / math.sqrt(n))
    for _ in range(max_iter):
        y = a @ x + shift * x
        y /= np.linalg.norm(y)
        if np.abs(y - x).max() < 1e-13:
            x = y
            break
        x = y
    return float(x @ (a @ x)), _finish(x)


def _values(prop) -> np.ndarray:
    """Copy of a property map's values while the map is alive: ``.a`` is a view into the map's
    memory, which is freed with a temporary map (reading it afterwards returns garbage)."""
    return np.array(prop.a, dtype=np.float64)


def _clustering(g: gt.Graph, weight, strength: np.ndarray) -> np.ndarray:
    """graph-tool's weighted local clustering in its scale-free limit (module docstring): 2.45 treats
    weights as multiplicities, c = Σ_{j<k}(w_ij+w_ik)w_jk / (s(s−1)), which is 0 or > 1 when s < 1;
    in units where every strength is ≥ 1e9 it becomes Σ_{j<k}(w_ij+w_ik)w_jk / s² (error ≤ 1e-9)."""
    pos = strength[strength > 0]
    if pos.size == 0:
        return np.zeros(g.num_vertices())
    scaled = g.new_ep("double")
    scaled.a = weight.a * (_CLUSTERING_UNITS / pos.min())
    return _values(gt_clustering.local_clustering(g, weight=scaled))


def node_properties(g: gt.Graph, *, threads: int | None = None, clustering: bool = True) -> pd.DataFrame:
    """One row per node: layer, layer_name and the properties in PROPERTIES, plus strength_init.

    ``threads`` sets graph-tool's OpenMP threads (process-wide) when given. ``clustering=False``
    skips the one O(Σ deg²) property (column then NaN). ``df.attrs["lambda_max"]`` holds λ_max.
    """
    if threads is not None:
        gt.openmp_set_num_threads(int(threads))
    n = g.num_vertices()
    w = g.ep["weight"]
    adj = _adjacency(g, w)
    strength = np.asarray(adj.sum(axis=1)).ravel()
    lam, eig = perron_vector(adj)
    if "layer" in g.vp:
        layer = np.array(g.vp["layer"].a, dtype=np.int64)
        names = np.asarray(list(g.gp["layers"]), dtype=object)[layer] if "layers" in g.gp else \
            np.asarray([g.vp["layer_name"][v] for v in g.vertices()], dtype=object)
    else:
        layer, names = np.zeros(n, dtype=np.int64), np.full(n, "graph", dtype=object)
    init = (_values(g.degree_property_map("out", weight=g.ep["init_scale"])) if "init_scale" in g.ep
            else np.full(n, np.nan))
    df = pd.DataFrame({
        "layer": layer,
        "layer_name": names,
        "eigenvector": eig,
        "strength": strength,
        "pagerank": _values(gt_centrality.pagerank(g, weight=w)),
        "katz": _values(gt_centrality.katz(g, alpha=KATZ_FRACTION / lam if lam > 0 else 0.0, weight=w)),
        "clustering": _clustering(g, w, strength) if clustering else np.full(n, np.nan),
        "strength_init": init,
    })
    df.index.name = "node"
    df.attrs["lambda_max"] = lam
    return df


# --------------------------------------------------------------------------------------------------
# Signatures
# --------------------------------------------------------------------------------------------------

def _normalised(props: pd.DataFrame) -> np.ndarray:
    """Properties on a width-free scale (module docstring), columns in PROPERTIES order."""
    n = len(props)
    cols = {
        "eigenvector": props["eigenvector"].to_numpy() * math.sqrt(n),
        "strength": props["strength"].to_numpy() / props["strength_init"].to_numpy()
        if "strength_init" in props else np.full(n, np.nan),
        "pagerank": props["pagerank"].to_numpy() * n,
        "katz": props["katz"].to_numpy() * math.sqrt(n),
        "clustering": props["clustering"].to_numpy(),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack([np.asarray(cols[p], dtype=np.float64) for p in PROPERTIES])


def _aggregate(x: np.ndarray) -> np.ndarray:
    """(5, P) mean, median, std, skew, kurtosis over rows; skew/kurtosis NaN where the spread is 0."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    flat = ~(std > 1e-12 * np.maximum(np.abs(mean), 1e-300))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        skew = scipy.stats.skew(x, axis=0, bias=True)
        kurt = scipy.stats.kurtosis(x, axis=0, fisher=True, bias=True)
    skew = np.where(flat, np.nan, skew)
    kurt = np.where(flat, np.nan, kurt)
    return np.vstack([mean, np.median(x, axis=0), std, skew, kurt])


def signature(props: pd.DataFrame) -> dict[str, float]:
    """``{scope}.{property}.{aggregator}`` for scope "all" and every layer (in layer order)."""
    x = _normalised(props)
    layer = props["layer"].to_numpy()
    names = props["layer_name"].to_numpy()
    order = np.unique(layer)
    scopes = [("all", np.ones(len(props), dtype=bool))]
    scopes += [(str(names[np.argmax(layer == l)]), layer == l) for l in order]
    out: dict[str, float] = {}
    for scope, mask in scopes:
        agg = _aggregate(x[mask]) if mask.any() else np.full((len(AGGREGATORS), len(PROPERTIES)), np.nan)
        for j, p in enumerate(PROPERTIES):
            for i, a in enumerate(AGGREGATORS):
                out[f"{scope}.{p}.{a}"] = float(agg[i, j])
    return out


# --------------------------------------------------------------------------------------------------
# Snapshots, runs, temporal summary
# --------------------------------------------------------------------------------------------------

def snapshot_signatures(traj: Trajectory, max_epoch: float = 5.0, *, threads: int | None = None,
                        clustering: bool = True) -> pd.DataFrame:
    """One row per snapshot with epoch ≤ max_epoch: run_id, snapshot, epoch, signature columns.

    The graph is built once and only its weights are replaced per snapshot (same structure).
    """
    plan = _trajectory_plan(traj)
    snaps = traj.snapshots
    snaps = snaps[snaps["epoch"] <= max_epoch + 1e-9]
    rows, g = [], None
    for idx, epoch in zip(snaps["index"].to_numpy(), snaps["epoch"].to_numpy()):
        row = traj.flat(int(idx))
        if not np.isfinite(row).all():
            log.warning("run %s: snapshot %d (epoch %g) has non-finite weights; skipped", traj.run_id, idx, epoch)
            continue
        w = plan.weights(_flat_getter(traj, row))
        if g is None:
            g = plan.graph(w)
        else:
            g.ep["weight"].a = w
        sig = signature(node_properties(g, threads=threads, clustering=clustering))
        rows.append({"run_id": traj.run_id, "snapshot": int(idx), "epoch": float(epoch), **sig})
    return pd.DataFrame(rows, columns=None if rows else list(META_COLUMNS))


def temporal_summary(signatures: pd.DataFrame, window: float, *, epochs: Sequence[float] | None = None
                     ) -> pd.DataFrame:
    """One row per run_id: each signature column at each epoch ≤ window (``{col}@e{epoch:g}``) and its
    change since the previous epoch of the grid (``d({col})@e{epoch:g}``); missing snapshots are NaN.

    The epoch grid is every epoch ≤ window found in ``signatures`` unless ``epochs`` fixes it (do fix
    it when a predictor trained on one set of runs is applied to another).
    """
    cols = [c for c in signatures.columns if c not in META_COLUMNS]
    runs = pd.unique(signatures["run_id"])
    sig = signatures.assign(epoch=signatures["epoch"].astype(float).round(_EPOCH_DECIMALS))
    sig = sig[sig["epoch"] <= window + 1e-9]
    grid = sorted(set(sig["epoch"])) if epochs is None else \
        sorted({round(float(e), _EPOCH_DECIMALS) for e in epochs if e <= window + 1e-9})
    dup = sig.duplicated(["run_id", "epoch"])
    if dup.any():
        bad = sig.loc[dup, ["run_id", "epoch"]].iloc[0]
        raise ValueError(f"run {bad['run_id']}: more than one snapshot at epoch {bad['epoch']:g}")
    if not grid or not cols:
        return pd.DataFrame(index=pd.Index(runs, name="run_id"))
    wide = sig.pivot(index="run_id", columns="epoch", values=cols)
    wide = wide.reindex(index=runs, columns=pd.MultiIndex.from_product([cols, grid]))
    v = wide.to_numpy(dtype=np.float64).reshape(len(runs), len(cols), len(grid)).transpose(0, 2, 1)  # (R, E, K)
    d = np.diff(v, axis=1)
    blocks, names = [v[:, 0]], [f"{c}@e{grid[0]:g}" for c in cols]
    for e in range(1, len(grid)):
        blocks += [v[:, e], d[:, e - 1]]
        names += [f"{c}@e{grid[e]:g}" for c in cols] + [f"d({c})@e{grid[e]:g}" for c in cols]
    return pd.DataFrame(np.hstack(blocks), index=pd.Index(runs, name="run_id"), columns=names)


def _arch_key(arch: dict) -> dict:
    return {k: v for k, v in arch.items() if k != "dropout"}  # dropout changes no tensor


def extract_run(run_dir: str | Path, max_epoch: float = 5.0, *, arch: dict | None = None,
                threads: int | None = None, clustering: bool = True) -> pd.DataFrame:
    """snapshot_signatures of one run directory, after checks that fail fast (TrajectoryError naming
    the run and the file): missing/truncated trajectory, fewer snapshots than result.json reports,
    tensors that do not fit the manifest's architecture, or an architecture other than ``arch``
    (build_model kwargs) or than the run's config.json."""
    run_dir = Path(run_dir)
    run = run_dir.name
    traj = Trajectory.open(run_dir)  # truncated / missing files raise here, naming run and file
    if len(traj) == 0:
        raise TrajectoryError(f"run {run}: {run_dir / DATA_FILE} holds no snapshots")
    expected = [("the requested architecture", arch)]
    cfg = run_dir / "config.json"
    if cfg.exists():
        expected.append((str(cfg), json.loads(cfg.read_text()).get("model")))
    for source, want in expected:
        if want is not None and _arch_key(want) != _arch_key(traj.arch):
            raise TrajectoryError(f"run {run}: trajectory {run_dir / MANIFEST_FILE} belongs to architecture "
                                  f"{traj.arch}, not {want} ({source})")
    res = run_dir / "result.json"
    if res.exists():
        n = json.loads(res.read_text()).get("n_snapshots")
        if n is not None and n > len(traj):
            raise TrajectoryError(f"run {run}: {run_dir / DATA_FILE} holds {len(traj)} snapshots but {res} "
                                  f"reports {n}: the trajectory is truncated")
    return snapshot_signatures(traj, max_epoch, threads=threads, clustering=clustering)


def extract_runs(run_dirs: Iterable[str | Path], max_epoch: float = 5.0, *, threads: int | None = None,
                 clustering: bool = True) -> pd.DataFrame:
    """extract_run over several runs (e.g. one Snakemake group), concatenated."""
    frames = [extract_run(d, max_epoch, threads=threads, clustering=clustering) for d in run_dirs]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(META_COLUMNS))
