"""netdyn.plan.member_memory_bytes: the per-member estimate behind GPU pack sizes."""

from __future__ import annotations

import dataclasses

import pytest

from netdyn.data import dataset_info
from netdyn.member import model_kwargs
from netdyn.models import build_model
from netdyn.plan import member_memory_bytes


@pytest.mark.parametrize("arch, size", [("vgg11bn", 8), ("resnet8", 8), ("lenet", 16)])
def test_estimate_works_at_the_smallest_image_size_batchnorm_included(make_spec, arch, size):
    spec = make_spec(arch, image_size=size, dtype="float32")
    info = dataset_info("digits", size)
    params = sum(p.numel() for p in build_model(**model_kwargs(spec, info)).parameters())
    est = member_memory_bytes(spec, info)
    assert est > 4 * 4 * params  # weights, grads, momentum, plus activations


def test_activations_scale_with_the_batch_and_halve_under_bf16(make_spec):
    info = dataset_info("digits", 16)
    base = make_spec("vgg11bn", image_size=16, dtype="float32", batch_size=64)
    double = dataclasses.replace(base, batch_size=128)
    bf16 = dataclasses.replace(base, precision="bf16")
    bf16_double = dataclasses.replace(bf16, batch_size=128)
    acts32 = member_memory_bytes(double, info) - member_memory_bytes(base, info)  # activations of 64 images
    acts16 = member_memory_bytes(bf16_double, info) - member_memory_bytes(bf16, info)
    assert acts32 > 0 and acts16 * 2 == acts32
    # what stays: float32 weights, grads, momentum (+ a bfloat16 copy under bf16), i.e. the batch-free part
    fixed32 = member_memory_bytes(base, info) - acts32
    fixed16 = member_memory_bytes(bf16, info) - acts16
    params = fixed32 // 16
    assert fixed16 == fixed32 + 2 * params
