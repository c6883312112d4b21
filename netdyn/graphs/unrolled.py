"""Unrolled graph (``unrolled_graph``): the neuron-level baseline the rolled graph replaces, and
``graph_sizes``, both sizes by exact arithmetic.

One node per neuron per position: input pixels × channels, every conv output position × channel, every
pool output position × channel, every linear unit. One edge per kernel tap per output position whose
input lies inside the (unpadded) input, weight ``|w| × |BN gain|``; taps that fall on zero padding add
nothing. Max pooling is its own node layer: each pool output joins its window inputs with weight 1
(which input wins the max depends on the data, so every input of the window is kept). A global average
pool joins each channel's H·W positions with weight 1/(H·W); identity shortcuts join equal positions
(weight 1). ``graph_sizes`` gives both sizes from the module tree without building anything (tests check
the arithmetic against built graphs). E.g. LeNet on c×32×32 has ``1024·c + 8084·w + k`` nodes and
``117600·c·w + 6304·w + 298080·w² + 84·k·w`` edges, rolled into ``c + 226·w + k`` nodes and
``6·c·w + 12096·w² + 84·k·w`` edges. ``unrolled_graph`` refuses more than ``max_edges`` edges, and
models with layers it has no rule for (dilated or 'same'-padded convs, average or adaptive pools other
than the global average pool).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import graph_tool as gt
import numpy as np
import pandas as pd
from torch import nn

from .rolled import RolledPlan, make_graph, meta_model
from .steps import Conv, Linear, Pool, Step, UnsupportedOperation
from .tensors import Getter, bn_gain, state_getter
from .walk import walk


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

    def __init__(self, steps: list[Step], image_size: int):
        c = steps[0].channels
        self.names, self.sizes, self.ops = ["input"], [c * image_size * image_size], []
        out: list[_Grid | int] = [_Grid(0, c, image_size, image_size)]  # every step's output nodes
        for s in steps[1:]:
            if isinstance(s, Conv):
                out.append(self._conv(out[s.src], s))
            elif isinstance(s, Pool):
                out.append(self._pool(out[s.src], s))
            elif isinstance(s, Linear):
                out.append(self._linear(out[s.src], s, image_size))
            else:
                inp, cur = out[s.src], out[s.dst]
                if s.conv is not None:
                    self._conv(inp, s.conv, out=cur)
                elif (inp.c, inp.h, inp.w) != (cur.c, cur.h, cur.w):
                    raise UnsupportedOperation(f"{s.name}: identity shortcut between different shapes")
                else:
                    self.ops.append(("identity", inp, cur, None, inp.c * inp.h * inp.w))
                out.append(cur)

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

    def _conv(self, inp: _Grid, s: Conv, out: _Grid | None = None) -> _Grid:
        if s.dilation != (1, 1) or isinstance(s.padding, str) or s.padding_mode != "zeros":
            raise UnsupportedOperation(f"{s.name}: the unrolled graph needs plain convs (dilation 1, numeric "
                                       f"zero padding)")
        ty = _taps(inp.h, s.kernel[0], s.stride[0], s.padding[0])
        tx = _taps(inp.w, s.kernel[1], s.stride[1], s.padding[1])
        if out is None:
            out = self._grid(s.name, s.out_channels, ty[0], tx[0])
        elif (out.h, out.w) != (ty[0], tx[0]):
            raise UnsupportedOperation(f"{s.name}: output {ty[0]}x{tx[0]} does not match the block output "
                                       f"{out.h}x{out.w}")
        self.ops.append(("conv", inp, out, (s, ty, tx), s.out_channels * s.in_channels * ty[1].size * tx[1].size))
        return out

    def _pool(self, inp: _Grid, s: Pool) -> _Grid:
        if s.kind == "adaptive_avg" and s.output_size == (1, 1):
            out = self._grid(s.name, inp.c, 1, 1)
            self.ops.append(("avgpool", inp, out, None, inp.c * inp.h * inp.w))
            return out
        if s.kind != "max" or s.kernel is None or s.dilation != (1, 1) or s.ceil_mode:
            raise UnsupportedOperation(f"{s.name}: the unrolled graph supports max pooling (module, no dilation "
                                       f"or ceil_mode) and global average pooling only, not this {s.kind} pool")
        ty = _taps(inp.h, s.kernel[0], s.stride[0], s.padding[0])
        tx = _taps(inp.w, s.kernel[1], s.stride[1], s.padding[1])
        out = self._grid(s.name, inp.c, ty[0], tx[0])
        self.ops.append(("maxpool", inp, out, (ty, tx), inp.c * ty[1].size * tx[1].size))
        return out

    def _linear(self, inp: _Grid | int, s: Linear, image_size: int) -> int:
        n_in = inp.c * inp.h * inp.w if isinstance(inp, _Grid) else self.sizes[inp]
        if n_in != s.in_features:
            raise UnsupportedOperation(f"{s.name}: expects {s.in_features} inputs, the unrolled graph at "
                                       f"image_size={image_size} has {n_in}")
        src = inp.offset if isinstance(inp, _Grid) else self.offset(inp)
        layer = self._layer(s.name, s.out_features)
        self.ops.append(("linear", (src, n_in), layer, s, n_in * s.out_features))
        return layer

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
                w = np.abs(get(f"{s.name}.weight")) * np.reshape(bn_gain(get, s), (-1, 1, 1, 1))
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
                w = np.abs(get(f"{s.name}.weight")) * np.reshape(bn_gain(get, s), (-1, 1))
                src = src0 + np.tile(np.arange(n_in), s.out_features)
                dst = self.offset(out) + np.repeat(np.arange(s.out_features), n_in)
                wt, scale = w.ravel(), 1.0 / math.sqrt(3 * n_in)
            srcs.append(np.ravel(src))
            dsts.append(np.ravel(dst))
            ws.append(np.ravel(np.broadcast_to(wt, np.shape(src))))
            scales.append(np.full(n, scale))
        return tuple(np.concatenate(a) for a in (srcs, dsts, ws, scales))


def unrolled_graph(model: nn.Module, image_size: int, *, max_edges: int = 20_000_000) -> gt.Graph:
    """Neuron-level graph (module docstring), the baseline the rolled graph replaces; refuses graphs
    above max_edges (use graph_sizes to see why)."""
    plan = _UnrolledPlan(walk(model), image_size)
    if plan.n_edges > max_edges:
        raise ValueError(f"unrolled graph would have {plan.n_edges} edges (> max_edges={max_edges}); "
                         f"use graph_sizes() for its size")
    src, dst, w, scale = plan.edges(state_getter(model.state_dict()))
    layer = np.repeat(np.arange(len(plan.sizes)), plan.sizes)
    return make_graph(layer, plan.names, plan.sizes, src, dst, w, scale)


def graph_sizes(arch: str, widths: Iterable[int] = (1, 2, 4, 8), image_size: int = 32, in_channels: int = 3,
                **model_kwargs) -> pd.DataFrame:
    """Rolled vs unrolled node/edge counts, by exact arithmetic on the module tree (nothing is built,
    so any width is instant); tests check the arithmetic against built graphs."""
    rows = []
    for w in widths:
        steps = walk(meta_model(dict(arch=arch, width=w, image_size=image_size, in_channels=in_channels,
                                     **model_kwargs)))
        r, u = RolledPlan(steps), _UnrolledPlan(steps, image_size)
        rows.append({"arch": arch, "width": w, "image_size": image_size, "in_channels": in_channels,
                     "rolled_nodes": r.n_nodes, "rolled_edges": r.n_edges,
                     "unrolled_nodes": u.n_nodes, "unrolled_edges": u.n_edges,
                     "edge_ratio": u.n_edges / r.n_edges, "method": "exact arithmetic"})
    return pd.DataFrame(rows)


