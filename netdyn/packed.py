"""K networks of one architecture packed into one module, so one device trains them together.

Packing swaps every layer of a model from :mod:`netdyn.models` for a version that holds K members:
every parameter and buffer gets a leading member dimension (shape ``(K, *original)``), and
activations travel as ``(B, K*C, H, W)`` through the convolutional part (member k owns channel block k)
and as ``(K, B, F)`` through the classifier. Then

* a convolution is one grouped convolution (``groups=K``), K ordinary ones on the members' channel blocks
  (on cuda optionally spread over CUDA streams), or im2col and one batched matmul (the *pack layout*,
  :data:`LAYOUTS`: which is faster depends on the device and the width); a linear layer is one batched
  matmul;
* BatchNorm over K·C channels keeps exactly the per-member, per-channel statistics;
* ReLU, pooling and residual additions act channel by channel and need no change;
* dropout masks come from a counter-based hash of (member seed, step, layer, element), so every member
  draws the same masks whether it is trained alone or in a pack of any size, on any device.

Why not ``torch.func.vmap``: vmap's dropout draws from one global generator, so a member's masks would
depend on its pack; with the hash they are a function of the run alone, which is what makes a packed run
equal to the same run trained alone (tests/test_train.py).
"""

from __future__ import annotations

import contextlib
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .models import ALLOWED_MODULES, BasicBlock

_M32 = 0xFFFFFFFF


def mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (bijective on [0, 2**32)); int64 arithmetic, so no overflow."""
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _M32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _M32
    return (x >> 16) ^ x


def hashed_uniform(keys: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Uniform numbers in [0, 1) of shape (K, *shape), a pure function of each member's key."""
    idx = torch.arange(math.prod(shape), device=keys.device,
                       dtype=torch.int64).view(1, *shape)
    x = mix32(mix32(idx) ^ keys.view(-1, *([1] * len(shape))))
    return (x >> 8).to(dtype) * (1.0 / (1 << 24))


class MemberRandomness:
    """Per-member keys for the current step, shared by all dropout layers of a packed model.

    The step is held in a device tensor, not a Python int: a compiled model (``training.compile``) would
    otherwise specialise on its value and recompile at every step."""

    def __init__(self, seeds: list[int], device):
        self.seeds = mix32(torch.tensor(seeds, dtype=torch.int64, device=device) & _M32)
        self._step = torch.zeros((), dtype=torch.int64, device=device)

    @property
    def step(self) -> int:
        return int(self._step)

    @step.setter
    def step(self, value: int) -> None:
        self._step.fill_(value)

    def keys(self, layer: int) -> torch.Tensor:
        return mix32((self.seeds + self._step * 0x9E3779B1 + (layer + 1) * 0x85EBCA77) & _M32)


# pack layout -> (how the convolutions run, channels-last memory). "grouped": one grouped convolution over
# the members; "per_member": one ordinary convolution per member on its channel block; "streams": the same,
# on cuda spread over SIDE_STREAMS CUDA streams so that small convolutions can run side by side (elsewhere,
# and inside torch.compile, it is per_member); "matmul": im2col (F.unfold) and one batched matmul over the
# members, each member's a GEMM of (C_out) x (C_in*kh*kw) x (batch*H*W) -- large GEMMs where cuDNN's
# grouped kernels are slow, at kh*kw times the input's memory. Same parameters and arithmetic per member;
# only the kernels differ (on the CPU a member of a per-member or grouped pack is bit for bit its solo run).
# netdyn.plan.choose_layout picks one per job on a GPU by timing probe steps; on the CPU "auto" is
# CPU_LAYOUT (oneDNN's NHWC kernels are ~10% faster there).
LAYOUTS = {"grouped": ("grouped", False), "grouped_channels_last": ("grouped", True),
           "per_member": ("per_member", False), "per_member_channels_last": ("per_member", True),
           "per_member_streams": ("streams", False), "batched_matmul": ("matmul", False)}
CPU_LAYOUT, CUDA_LAYOUT = "grouped_channels_last", "grouped"  # without a choice: what training always did
SIDE_STREAMS = 8  # CUDA's default number of hardware work queues (CUDA_DEVICE_MAX_CONNECTIONS)
_side_streams: dict[int, list] = {}


def uses_side_streams(layout: str) -> bool:
    """Whether `layout` puts the members' convolutions on side streams (which a compiled pack does not use);
    False for anything that is not a layout (auto)."""
    return LAYOUTS.get(layout, (None,))[0] == "streams"


def side_streams(device: torch.device) -> list:
    """SIDE_STREAMS CUDA streams of `device`, made once per process."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _side_streams:
        _side_streams[index] = [torch.cuda.Stream(index) for _ in range(SIDE_STREAMS)]
    return _side_streams[index]


def default_layout(device) -> str:
    return CPU_LAYOUT if torch.device(device).type == "cpu" else CUDA_LAYOUT


def set_layout(packed: nn.Module, layout: str) -> None:
    """Switch every packed convolution of `packed` to `layout` (a key of LAYOUTS); parameters are untouched."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown pack layout {layout!r}; known: {', '.join(LAYOUTS)}")
    conv, channels_last = LAYOUTS[layout]
    for m in packed.modules():
        if isinstance(m, PackedConv2d):
            m.conv, m.channels_last = conv, channels_last
    packed.layout = layout


class PackedConv2d(nn.Module):
    def __init__(self, convs: list[nn.Conv2d]):
        super().__init__()
        c = convs[0]
        self.stride, self.padding, self.dilation = c.stride, c.padding, c.dilation
        assert c.groups == 1 and c.padding_mode == "zeros" and not isinstance(c.padding, str)  # netdyn.models'
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in convs]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in convs])) if c.bias is not None else None

    conv, channels_last = "grouped", False  # the pack layout: see LAYOUTS and set_layout

    def forward(self, x):
        k = self.weight.shape[0]
        if self.conv == "matmul":
            return self._batched_matmul(x)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.contiguous(memory_format=fmt)
        if self.conv in ("per_member", "streams") and k > 1:  # one member: the grouped call is its own convolution
            return self._per_member(x, fmt)
        bias = self.bias.reshape(-1) if self.bias is not None else None
        weight = self.weight.reshape(-1, *self.weight.shape[2:]).contiguous(memory_format=fmt)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups=k)

    def _per_member(self, x, fmt):
        """One convolution per member on its channel block; with conv "streams" on cuda (eager), member k's on
        side stream k % SIDE_STREAMS, joined to the current stream before the concatenation. Autograd runs
        each backward kernel on its forward's stream and synchronises the streams itself."""
        k = self.weight.shape[0]
        bias = [None] * k if self.bias is None else self.bias
        streams = (side_streams(x.device)[:k] if self.conv == "streams" and x.is_cuda
                   and not torch.compiler.is_compiling() else [])
        main = torch.cuda.current_stream(x.device) if streams else None
        for s in streams:
            s.wait_stream(main)  # x and the weights are ready
            x.record_stream(s)  # x's memory is not reused before the side streams are done with it
        outs = []
        for i, (xk, w, b) in enumerate(zip(x.chunk(k, 1), self.weight, bias)):
            with torch.cuda.stream(streams[i % len(streams)]) if streams else contextlib.nullcontext():
                outs.append(F.conv2d(xk, w.contiguous(memory_format=fmt), b, self.stride, self.padding,
                                     self.dilation))
        if streams:
            for s in streams:
                main.wait_stream(s)
            for out in outs:
                out.record_stream(main)  # made on a side stream, read by the concatenation on this one
        return torch.cat(outs, 1)

    def _batched_matmul(self, x):
        """(B, K*C, H, W) -> (B, K*O, H', W') as K GEMMs (O, C*kh*kw) @ (C*kh*kw, B*H'*W') in one bmm."""
        k, o, _, kh, kw = self.weight.shape
        b, _, h, w = x.shape
        h_out, w_out = (
            (size + 2 * pad - dil * (kernel - 1) - 1) // stride + 1
            for size, pad, dil, kernel, stride in zip((h, w), self.padding, self.dilation, (kh, kw), self.stride))
        # x keeps its dtype under autocast (bmm casts the columns): unfold's backward sums the kh*kw overlapping
        # gradients in x's dtype, and in bfloat16 that is less accurate than a bf16 convolution (tests/test_packed.py)
        cols = F.unfold(x, (kh, kw), self.dilation, self.padding, self.stride)  # (B, K*C*kh*kw, H'*W')
        cols = cols.view(b, k, -1, h_out * w_out).permute(1, 2, 0, 3).reshape(k, -1, b * h_out * w_out)
        weight = self.weight.reshape(k, o, -1)
        out = torch.bmm(weight, cols) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(-1), weight, cols)
        return out.view(k, o, b, h_out, w_out).permute(2, 0, 1, 3, 4).reshape(b, k * o, h_out, w_out)


class PackedBatchNorm2d(nn.Module):
    def __init__(self, bns: list[nn.BatchNorm2d]):
        super().__init__()
        b = bns[0]
        self.eps, self.momentum = b.eps, b.momentum
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in bns]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in bns]))
        self.register_buffer("running_mean", torch.stack([m.running_mean for m in bns]))
        self.register_buffer("running_var", torch.stack([m.running_var for m in bns]))
        self.register_buffer("num_batches_tracked", torch.stack([m.num_batches_tracked for m in bns]))

    def forward(self, x):
        if self.training:
            self.num_batches_tracked.add_(1)
        # views share storage, so batch_norm's in-place running-stat update lands in the (K, C) buffers
        return F.batch_norm(x, self.running_mean.view(-1), self.running_var.view(-1), self.weight.reshape(-1),
                            self.bias.reshape(-1), self.training, self.momentum, self.eps)


class PackedFlatten(nn.Module):
    """(B, K*C, H, W) -> (K, B, C*H*W): each member's features flattened as nn.Flatten would."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x.reshape(x.shape[0], self.k, -1).transpose(0, 1)


class PackedLinear(nn.Module):
    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in linears]))

    def forward(self, x):  # (K, B, in) -> (K, B, out)
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class PackedDropout(nn.Module):
    """Inverted dropout with each member's own rate and hashed masks."""

    def __init__(self, drops: list[nn.Dropout], layer: int, randomness: MemberRandomness):
        super().__init__()
        self.layer = layer
        self.randomness = randomness
        # float64, so float64 training drops at exactly rate p and scales by exactly 1/(1-p)
        self.register_buffer("p", torch.tensor([float(m.p) for m in drops], dtype=torch.float64), persistent=False)
        self.any_dropout = any(m.p > 0 for m in drops)

    def forward(self, x):  # (K, B, F)
        if not self.training or not self.any_dropout:
            return x
        # bfloat16 activations (autocast) still draw float32 numbers and scale by a float32 1/(1-p): a bfloat16
        # u would round the 24-bit draw to 8 bits and a bfloat16 p is off by up to 0.4%; this way a bf16
        # run drops exactly the units its fp32 twin drops
        udtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        u = hashed_uniform(self.randomness.keys(self.layer), tuple(x.shape[1:]), udtype)
        p = self.p.to(udtype).view(-1, *([1] * (x.dim() - 1)))
        return (x * (u >= p).to(x.dtype) / (1 - p)).to(x.dtype)


def pack_models(models: list[nn.Module], seeds: list[int], layout: str | None = None) -> nn.Module:
    """One module computing all `models` at once. Inputs: (B, K*C, H, W); outputs: (K, B, classes).
    `layout`: a key of LAYOUTS; None = the device's default (:func:`default_layout`).

    Its state_dict has the members' own names with a leading member dimension; see :func:`member_state`.
    """
    k = len(models)
    device = next(models[0].parameters()).device
    randomness = MemberRandomness(seeds, device)
    packed = copy.deepcopy(models[0])
    tables = [dict(m.named_modules()) for m in models]
    n_dropout = 0
    for name, module in list(packed.named_modules()):
        group = [t[name] for t in tables]
        if isinstance(module, nn.Conv2d):
            new = PackedConv2d(group)
        elif isinstance(module, nn.BatchNorm2d):
            new = PackedBatchNorm2d(group)
        elif isinstance(module, nn.Linear):
            new = PackedLinear(group)
        elif isinstance(module, nn.Flatten):
            new = PackedFlatten(k)
        elif isinstance(module, nn.Dropout):
            new = PackedDropout(group, n_dropout, randomness)
            n_dropout += 1
        elif isinstance(module, (*ALLOWED_MODULES, BasicBlock)) or name == "":
            continue
        else:
            raise TypeError(f"cannot pack module {name!r} of type {type(module).__name__}")
        parent, _, child = name.rpartition(".")
        setattr(packed.get_submodule(parent) if parent else packed, child, new)
    packed.randomness = randomness
    packed.members = k
    set_layout(packed, layout or default_layout(device))
    return packed.to(device)


def member_state(packed: nn.Module, k: int) -> dict[str, torch.Tensor]:
    """Member k's state_dict, with the names and shapes of the unpacked model (views, not copies)."""
    return {name: t[k] for name, t in packed.state_dict().items()}


def load_member_state(packed: nn.Module, k: int, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, t in packed.state_dict().items():
            t[k].copy_(state[name])


def pack_inputs(x: torch.Tensor) -> torch.Tensor:
    """(K, B, C, H, W) member batches -> (B, K*C, H, W) packed input."""
    k, b = x.shape[:2]
    return x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:])
