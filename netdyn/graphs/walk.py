"""Walking a model's module tree: the only place that knows about module types. Turns a model that obeys
the contract of :mod:`netdyn.models` into a list of graph-relevant steps (conv, residual block, pool,
linear); raises TypeError naming an unsupported module."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..models import BasicBlock


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



