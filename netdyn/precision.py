"""Arithmetic precision of training (`training.precision`) turned into torch settings.

* ``fp32``: exact float32 (on cuda TF32 is switched off for matmuls and cuDNN convolutions). The
  reference: on the CPU it is bit for bit what training did before the key existed.
* ``tf32``: on cuda, matmuls and cuDNN convolutions round their float32 inputs to TF32 (10-bit mantissa)
  and accumulate in float32 -- what training on cuda did before the key existed. The CPU has no TF32, so
  there it is exactly ``fp32``.
* ``bf16``: the forward pass and the loss run under ``torch.autocast(<device type>, torch.bfloat16)``:
  convolutions and matmuls take bfloat16 inputs (8-bit mantissa); what autocast keeps in float32
  (cross-entropy, log-softmax) stays float32. Parameters, gradients, momentum buffers and the SGD step stay
  float32 (master weights), so trajectories are float32 too. bfloat16 has float32's exponent range, so no
  loss scaling is needed. TF32 is allowed for whatever float32 matmul is left, since the forward pass is
  coarser than TF32 anyway.

Packed equals solo, per precision. On the CPU (one thread) a bf16 member of a pack is bit for bit its
solo run for LeNet and ResNet-8 (tests/test_precision.py). On cuda (measured on an H200, torch 2.11) the
kernels of a grouped convolution / batched matmul round differently from the single-model ones under tf32
and bf16: one forward/backward of a member agrees with its solo run only to the precision's own rounding
(bf16: VGG-11-BN and ResNet-8 forward bit-identical, gradients 1e-5 .. 1.5e-3 apart; tf32: ~3e-4 apart in
the forward), and training amplifies that into 0.07-17% relative weight distance after 1-2 epochs of the
tiny test nets -- as fp32 on cuda amplifies its nondeterministic cuDNN backward (two identical solo runs of
VGG-11-BN end 4% apart). Bit-exact packing is a property of the CPU and of float64.

torch's TF32 switches are process-global: :func:`set_tf32` sets them for the pack about to train, so
packs of different precision can train one after another in one process. They use the legacy
``allow_tf32`` flags, which ``bench/`` reads; mixing them with torch's newer ``fp32_precision`` settings
makes torch refuse to report the flags.
"""

from __future__ import annotations

import contextlib

import torch

from .config import PRECISIONS


def set_tf32(precision: str, device: torch.device) -> None:
    """Allow TF32 on cuda for tf32 and bf16, forbid it for fp32; nothing on other devices (no TF32 there)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        allow = precision != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow


def autocast(precision: str, device: torch.device):
    """The context the forward pass and loss run in: bfloat16 autocast for bf16, nothing otherwise."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
