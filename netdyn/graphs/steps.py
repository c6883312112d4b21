"""What the walk (:mod:`.walk`) makes of a model: its graph-relevant steps, in the order their node layers
are made. The rolled and unrolled graphs are built from these alone."""

from __future__ import annotations

from dataclasses import dataclass, field


class UnsupportedOperation(TypeError):
    """An operation the graph builder cannot turn into nodes and edges."""


@dataclass
class Input:
    channels: int | None = None  # None until a conv or linear reads the input
    spatial: bool | None = None  # (N, C, H, W) rather than (N, F)


@dataclass
class Layer:
    """A step that makes a node layer (a conv or a linear), with the BatchNorm folded into it."""
    name: str  # module path; its tensors are name.weight (and bn.weight, bn.running_var)
    src: int  # index of the step whose output it reads
    bn: str | None = field(default=None, kw_only=True)
    bn_eps: float = field(default=1e-5, kw_only=True)

    @property
    def size(self) -> int:
        """Nodes of the layer: output channels or units."""
        raise NotImplementedError


@dataclass
class Conv(Layer):
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] | str
    dilation: tuple[int, int]
    padding_mode: str

    @property
    def size(self) -> int:
        return self.out_channels


@dataclass
class Linear(Layer):
    in_features: int
    out_features: int
    flattened: bool  # reads a flattened (N, C, H, W) output: in_features = C·H·W

    @property
    def size(self) -> int:
        return self.out_features


@dataclass
class Pool:
    name: str
    src: int
    kind: str  # "max", "avg", "adaptive_avg", "adaptive_max"
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] | None = None
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False
    output_size: tuple | None = None  # adaptive pools


@dataclass
class Shortcut:
    name: str  # the fx node of the addition
    src: int  # the block input
    dst: int  # the main branch: its last layer's nodes are the output
    conv: Conv | None  # projection reading src (no nodes of its own); None: identity


Step = Input | Conv | Linear | Pool | Shortcut
