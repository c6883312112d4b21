"""Turning a torch model into graph-relevant steps (:mod:`.steps`): the only place that knows about module
types. Any ``nn.Module`` works, not only netdyn's; the rules reproduce the decisions of :mod:`.rolled`.

The model is traced with ``torch.fx.symbolic_trace`` (a ``forward`` with Python control flow that depends
on tensor values cannot be traced) and its data flow is read node by node:

* ``Conv2d`` (groups 1) and ``Linear`` make node layers (:class:`Conv`, :class:`Linear`); a
  ``BatchNorm2d`` (``BatchNorm1d``) that alone reads a conv (linear) folds into it;
* pooling (max, average, adaptive) becomes a :class:`Pool` (no nodes in the rolled graph);
* element-wise activations, dropout and ``Identity`` pass their input on;
* flatten (``nn.Flatten``, ``torch.flatten``, ``.flatten``, ``.view``/``.reshape`` to ``(N, -1)``) marks
  its input as read by the next linear over ``C·H·W`` features;
* an addition of two tensors (``+``, ``+=``, ``torch.add``) is a residual connection,
  :class:`Shortcut`: one operand is the main branch, whose last layer's nodes are the output; the other
  is the identity (a tensor the main branch was computed from) or a projection (a conv, optionally with
  its BN, reading such a tensor and used only by the addition), which gets no nodes of its own. An
  identity operand is tried first: in ``bn(conv(x)) + x`` the conv is the main branch;
* a conv or linear's layer is made when its output is first read by anything but its BN, so layers
  come in the order the forward uses them (module order for netdyn's models).

Slightly over 300 lines: one rule per kind of operation, each listed above, all in this one place.

Anything else raises :class:`UnsupportedOperation` naming the module path or fx node and the operation.
With ``input_shape`` the walk also propagates shapes (``torch.fx.passes.shape_prop.ShapeProp`` on fake
tensors: nothing is computed) and checks every flatten and every linear's ``in_features`` against them;
a ``.view(-1, k)`` is only accepted then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from .steps import Conv, Input, Layer, Linear, Pool, Shortcut, Step, UnsupportedOperation
from .trace import (ADD_FUNCTIONS, ELEMENTWISE_FUNCTIONS, ELEMENTWISE_METHODS, ELEMENTWISE_MODULES, POOL_FUNCTIONS,
                    POOL_MODULES, call_arg, describe, is_batch_size, pair, trace)

_SHAPE = object()  # state of non-tensor values: sizes, shapes, their items and arithmetic


@dataclass
class _Pending:
    """A conv or linear whose node layer is not made yet, so that a BN reading it alone can fold in."""
    step: Layer
    node: fx.Node  # the fx node whose output it is now (the conv, then its BN)
    src_node: fx.Node
    index: int | None = None  # step index once made


@dataclass
class _Flat:
    """A flattened (N, C, H, W) tensor: index of the step it flattens, C·H·W when shapes are known."""
    index: int
    features: int | None


@dataclass
class _Walker:
    gm: fx.GraphModule
    shapes: bool
    steps: list = field(default_factory=lambda: [Input()])
    state: dict = field(default_factory=dict)
    used: set = field(default_factory=set)
    ancestors: dict = field(default_factory=dict)
    placeholder_seen: bool = False

    def run(self, input_shape: tuple | None) -> list:
        if input_shape is not None:
            self.steps[0] = Input(int(input_shape[0]), len(input_shape) == 3)
        modules = dict(self.gm.named_modules())
        for node in self.gm.graph.nodes:
            inputs = set(node.all_input_nodes)
            self.ancestors[node] = inputs.union(*(self.ancestors[i] for i in inputs))
            if node.op == "placeholder":  # the first is the input; others (defaults) must not be used
                self.state[node] = None if self.placeholder_seen else 0
                self.placeholder_seen = True
            elif node.op == "output":
                self._index(node.args[0], node)
            elif node.op == "get_attr":
                self.state[node] = None
            elif node.op == "call_module":
                self.state[node] = self._module(node, modules[node.target])
            else:
                self.state[node] = self._call(node)
        return self.steps

    # -- values --------------------------------------------------------------------------------------

    def _add_step(self, step: Step) -> int:
        self.steps.append(step)
        return len(self.steps) - 1

    def _index(self, arg, user: fx.Node, where: str | None = None) -> int:
        """Step index of a tensor argument, making a pending layer."""
        s = self.state.get(arg) if isinstance(arg, fx.Node) else None
        if isinstance(s, _Pending):
            if s.index is None:
                s.index = self._add_step(s.step)
            return s.index
        if isinstance(s, int):
            return s
        what = "a flattened tensor" if isinstance(s, _Flat) else f"{arg!r}"
        raise UnsupportedOperation(f"{where or describe(user)}: reads {what}, which the graph builder cannot "
                                   f"follow")

    def _made(self, arg: fx.Node) -> int | None:
        """Step index of a tensor whose layer exists already (None for pending layers and non-tensors)."""
        s = self.state.get(arg)
        return s if isinstance(s, int) else s.index if isinstance(s, _Pending) else None

    def _channels(self, i: int) -> int | None:
        s = self.steps[i]
        if isinstance(s, Input):
            return s.channels
        if isinstance(s, Layer):
            return s.size
        return self._channels(s.src if isinstance(s, Pool) else s.dst)

    def _spatial(self, i: int) -> bool | None:
        """Whether output i is (N, C, H, W) rather than (N, F); None for an input nothing has read yet."""
        s = self.steps[i]
        if isinstance(s, (Input, Conv, Linear)):
            return s.spatial if isinstance(s, Input) else isinstance(s, Conv)
        return self._spatial(s.src if isinstance(s, Pool) else s.dst)

    def _layer(self, i: int) -> int:
        """The step that made the nodes of output i (pools and shortcuts make none)."""
        s = self.steps[i]
        return self._layer(s.src if isinstance(s, Pool) else s.dst) if isinstance(s, (Pool, Shortcut)) else i

    def _reads_input(self, i: int, channels: int, spatial: bool, where: str) -> None:
        """The first conv/linear to read the input fixes its channels; later readers must agree."""
        inp = self.steps[0]
        if i == 0 and inp.channels is None:
            inp.channels, inp.spatial = channels, spatial
        if self._channels(i) != channels:
            raise UnsupportedOperation(f"{where}: expects {channels} input channels, gets {self._channels(i)}")

    def _once(self, node: fx.Node, module: nn.Module) -> None:
        if node.target in self.used:
            raise UnsupportedOperation(f"{describe(node, module)}: called twice (shared weights are not supported)")
        self.used.add(node.target)

    # -- modules -------------------------------------------------------------------------------------

    def _module(self, node: fx.Node, m: nn.Module):
        where = describe(node, m)
        if isinstance(m, nn.Conv2d):
            return self._conv(node, m, where)
        if isinstance(m, nn.Linear):
            return self._linear(node, m, where)
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            return self._batchnorm(node, m, where)
        if isinstance(m, ELEMENTWISE_MODULES):
            return self._elementwise(node)
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise UnsupportedOperation(f"{where}: only Flatten(1, -1) is supported")
            return self._flatten(node)
        kind = next((k for t, k in POOL_MODULES.items() if isinstance(m, t)), None)
        if kind is not None:
            if kind in ("adaptive_avg", "adaptive_max"):
                return self._add_step(Pool(node.target, self._index(node.args[0], node, where), kind,
                                           output_size=pair(m.output_size)))
            k = pair(m.kernel_size)
            return self._add_step(Pool(node.target, self._index(node.args[0], node, where), kind, k,
                                       pair(m.stride if m.stride is not None else k), pair(m.padding),
                                       pair(getattr(m, "dilation", 1)), bool(m.ceil_mode)))
        raise UnsupportedOperation(f"{where}: module type {type(m).__name__} is not supported by the graph builder")

    def _conv(self, node, m: nn.Conv2d, where: str) -> _Pending:
        self._once(node, m)
        if m.groups != 1:
            raise UnsupportedOperation(f"{where}: only convs with groups=1 are supported")
        src = self._index(node.args[0], node, where)
        if self._spatial(src) is False:
            raise UnsupportedOperation(f"{where}: a conv reads a flat (N, F) tensor")
        self._reads_input(src, m.in_channels, True, where)
        pad = m.padding if isinstance(m.padding, str) else pair(m.padding)
        step = Conv(node.target, src, m.in_channels, m.out_channels, pair(m.kernel_size), pair(m.stride), pad,
                    pair(m.dilation), m.padding_mode)
        return _Pending(step, node, node.args[0])

    def _linear(self, node, m: nn.Linear, where: str) -> _Pending:
        self._once(node, m)
        s = self.state.get(node.args[0])
        flat = isinstance(s, _Flat)
        src = s.index if flat else self._index(node.args[0], node, where)
        if src == 0 and self.steps[0].channels is None:
            if flat:
                raise UnsupportedOperation(f"{where}: reads the flattened input; pass input_shape=(C, H, W)")
            self._reads_input(0, m.in_features, False, where)
        c = self._channels(src)
        if flat and self._spatial(src):
            if m.in_features % c or (s.features is not None and s.features != m.in_features):
                raise UnsupportedOperation(f"{where}: {m.in_features} inputs do not split over the {c} channels "
                                           f"it reads" + (f" ({s.features} features)" if s.features else ""))
        elif self._spatial(src):
            raise UnsupportedOperation(f"{where}: a linear reads an (N, C, H, W) tensor; flatten it first")
        elif m.in_features != c:
            raise UnsupportedOperation(f"{where}: expects {m.in_features} inputs, gets {c}")
        return _Pending(Linear(node.target, src, m.in_features, m.out_features, flat and bool(self._spatial(src))),
                        node, node.args[0])

    def _batchnorm(self, node, m, where: str) -> _Pending:
        self._once(node, m)
        p = self.state.get(node.args[0])
        kind, follows = (Conv, "conv") if isinstance(m, nn.BatchNorm2d) else (Linear, "linear")
        if (not isinstance(p, _Pending) or p.index is not None or not isinstance(p.step, kind)
                or p.step.bn is not None or len(p.node.users) != 1 or p.step.size != m.num_features):
            raise UnsupportedOperation(f"{where}: a {type(m).__name__} must directly follow a {follows} with "
                                       f"{m.num_features} channels that nothing else reads")
        if not m.affine or not m.track_running_stats:
            raise UnsupportedOperation(f"{where}: {type(m).__name__} needs affine=True and running statistics")
        p.step.bn, p.step.bn_eps, p.node = node.target, float(m.eps), node
        return p

    def _elementwise(self, node):
        s = self.state.get(node.args[0])
        return s if isinstance(s, _Flat) else self._index(node.args[0], node)

    def _flatten(self, node):
        i = self._index(node.args[0], node)
        if not self._spatial(i):
            return i  # flattening (N, F) changes nothing
        features = None
        if self.shapes:
            shape_in, shape_out = (tuple(n.meta["tensor_meta"].shape) for n in (node.args[0], node))
            features = math.prod(shape_in[1:])
            if shape_out != (shape_in[0], features):
                raise UnsupportedOperation(f"{describe(node)}: reshapes {shape_in} to {shape_out}, not (N, -1)")
        return _Flat(i, features)

    # -- functions and methods -----------------------------------------------------------------------

    def _call(self, node: fx.Node):
        tensors = [a for a in node.all_input_nodes if self.state.get(a) is not _SHAPE]
        target = node.target
        if node.op == "call_method" and target == "size" or \
                node.op == "call_function" and target is getattr and node.args[1] == "shape" or not tensors:
            return _SHAPE
        if target in ADD_FUNCTIONS and len(tensors) == 2 and call_arg(node, 2, "alpha", 1) == 1:
            return self._residual(node)
        if target in ELEMENTWISE_FUNCTIONS or node.op == "call_method" and target in ELEMENTWISE_METHODS:
            return self._elementwise(node)
        if target in POOL_FUNCTIONS:
            return self._add_step(Pool(node.name, self._index(node.args[0], node), POOL_FUNCTIONS[target]))
        if target is torch.flatten or node.op == "call_method" and target == "flatten":
            if call_arg(node, 1, "start_dim", 0) != 1 or call_arg(node, 2, "end_dim", -1) != -1:
                raise UnsupportedOperation(f"{describe(node)}: only flatten(x, 1) is supported")
            return self._flatten(node)
        if node.op == "call_method" and target in ("view", "reshape") or target is torch.reshape:
            dims = node.args[1:] if target != torch.reshape else node.args[1:2]
            dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else tuple(dims)
            if self.shapes or len(dims) == 2 and dims[1] == -1 and is_batch_size(dims[0]):
                return self._flatten(node)
            raise UnsupportedOperation(f"{describe(node)}: cannot tell whether this reshape flattens "
                                       f"(N, C, H, W) to (N, -1); pass input_shape=(C, H, W)")
        raise UnsupportedOperation(f"{describe(node)}: operation not supported by the graph builder")

    def _residual(self, node: fx.Node) -> int:
        a, b = node.args[:2]
        if not all(isinstance(x, fx.Node) for x in (a, b)):
            raise UnsupportedOperation(f"{describe(node)}: adds a constant")

        def identity(x, other):
            return self._made(x) is not None and x in self.ancestors[other]

        def projection(x, other):
            p = self.state.get(x)
            return (isinstance(p, _Pending) and p.index is None and isinstance(p.step, Conv)
                    and len(x.users) == 1 and (p.src_node is other or p.src_node in self.ancestors[other]))

        for test in (identity, projection):
            found = [(x, y) for x, y in ((a, b), (b, a)) if test(x, y)]
            if len(found) == 1:
                short, main = found[0]
                break
        else:
            raise UnsupportedOperation(f"{describe(node)}: cannot tell the main branch from the shortcut of "
                                       f"this addition (neither is an identity or a conv of the block input)")
        dst = self._index(main, node)
        if self._made(short) is None:
            conv = self.state[short].step
            src = conv.src
            if conv.out_channels != self._channels(dst):
                raise UnsupportedOperation(f"{describe(node)}: projection {conv.name} gives {conv.out_channels} "
                                           f"channels, the main branch {self._channels(dst)}")
        else:
            conv, src = None, self._made(short)
            if self._channels(src) != self._channels(dst):
                raise UnsupportedOperation(f"{describe(node)}: identity shortcut between {self._channels(src)} "
                                           f"and {self._channels(dst)} channels")
        if self._layer(src) == self._layer(dst):
            raise UnsupportedOperation(f"{describe(node)}: the main branch of this addition has no conv or linear")
        return self._add_step(Shortcut(node.name, src, dst, conv))


def walk(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> list[Step]:
    """The model as steps; ``steps[0]`` is the :class:`Input`, every other step names the index of the
    step it reads. Layers are made in the order their outputs are first used, which is module order for
    a feed-forward model. ``input_shape`` (without the batch dimension) turns on the shape checks."""
    return _Walker(trace(model, input_shape), input_shape is not None).run(input_shape)
