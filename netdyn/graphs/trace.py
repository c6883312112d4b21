"""The torch.fx side of the walk: tracing a model, shapes on fake tensors, and which torch operations are
which kind (the walk's rules are in :mod:`.walk`)."""

from __future__ import annotations

import contextlib
import io
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from .steps import UnsupportedOperation

# element-wise (no channel mixing): they add no edges
ELEMENTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
    nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity,
)
ELEMENTWISE_FUNCTIONS = {
    torch.relu, torch.relu_, F.relu, F.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, F.gelu, F.silu,
    F.mish, F.hardswish, F.hardsigmoid, F.hardtanh, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.softplus,
    F.dropout, F.dropout1d, F.dropout2d,
}
ELEMENTWISE_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "contiguous"}
POOL_MODULES = {nn.MaxPool2d: "max", nn.AvgPool2d: "avg", nn.AdaptiveAvgPool2d: "adaptive_avg",
                nn.AdaptiveMaxPool2d: "adaptive_max"}
POOL_FUNCTIONS = {F.max_pool2d: "max", F.avg_pool2d: "avg", F.adaptive_avg_pool2d: "adaptive_avg",
                  F.adaptive_max_pool2d: "adaptive_max"}
ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


def pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def describe(node: fx.Node, module: nn.Module | None = None) -> str:
    """How errors name an operation: the module path and type, or the fx node and its function."""
    if module is not None:
        return f"{node.target} ({type(module).__name__})"
    if node.op == "call_method":
        return f"fx node {node.name} (method .{node.target}())"
    return f"fx node {node.name} ({getattr(node.target, '__name__', node.target)})"


def call_arg(node: fx.Node, i: int, name: str, default):
    """Argument i of a call, given by position or by name."""
    return node.args[i] if len(node.args) > i else node.kwargs.get(name, default)


def is_batch_size(node) -> bool:
    """``x.size(0)`` or ``x.shape[0]``."""
    if not isinstance(node, fx.Node):
        return False
    if node.op == "call_method" and node.target == "size":
        return call_arg(node, 1, "dim", None) == 0
    return node.target is operator.getitem and node.args[1] == 0 and isinstance(node.args[0], fx.Node) \
        and node.args[0].target is getattr and node.args[0].args[1] == "shape"


def trace(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> fx.GraphModule:
    """``symbolic_trace`` of the model; with ``input_shape`` every node's ``meta["tensor_meta"]`` holds its
    shape for a batch of one."""
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001  (tracing errors have many types)
        raise UnsupportedOperation(f"torch.fx cannot trace {type(model).__name__}: {e}") from e
    if input_shape is not None:
        _propagate_shapes(gm, input_shape)
    return gm


def _propagate_shapes(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> None:
    """Shapes of every node on fake tensors (no memory, no compute; the model is not touched)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.passes.shape_prop import ShapeProp

    like = next(gm.parameters(), torch.empty(0))  # the input lives where the weights do
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    training = gm.training
    gm.eval()  # a batch of one through BatchNorm in training mode fails where maps reach 1x1 (VGG on 16 px)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # ShapeProp prints the traceback it raises
            x = mode.from_tensor(torch.empty(1, *input_shape, dtype=like.dtype, device=like.device))
            ShapeProp(gm, fake_mode=mode).propagate(x)
    except RuntimeError as e:
        raise ValueError(f"the model does not run on inputs of shape {tuple(input_shape)}: {e.__cause__ or e}") \
            from None
    finally:
        gm.train(training)
