"""netdyn.plan: the per-member estimate and the measured line behind GPU pack sizes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from netdyn.data import dataset_info
from netdyn.member import model_kwargs
from netdyn.models import build_model
from netdyn import plan
from netdyn.plan import PROBE_PACKS, member_memory_bytes, pack_step


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


# --------------------------------------------------------------------------------------------------------
# pack sizes from measured memory (training.pack_memory: measured). The peaks come from CUDA's allocator, so
# the CPU tests run the probe step itself for real and give the allocator's counters from a planted line.

@pytest.mark.parametrize("arch", ["lenet", "vgg11bn", "resnet8"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_probe_step_runs_for_every_architecture_and_precision(make_spec, arch, precision):
    spec = dataclasses.replace(make_spec(arch, dtype="float32"), precision=precision)
    info = dataset_info("digits", spec.image_size)
    for k in PROBE_PACKS:
        pack_step(spec, info, torch.device("cpu"), k)


class _FakeAllocator:
    """torch.cuda's memory counters, planted: `before` bytes allocated, `free` free (if given); `peak` is what
    max_memory_allocated reports, back to `before` at each reset. With `fixed` and `per_member`, pack_step peaks at
    fixed + per_member * K above `before`."""

    def __init__(self, monkeypatch, fixed=None, per_member=None, before=1000, free=None):
        self.peak = before
        for name in ("synchronize", "empty_cache"):
            monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
        monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: setattr(self, "peak", before))
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: before)
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: self.peak)
        if free is not None:
            monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (free, free + before))
        if fixed is not None:
            monkeypatch.setattr(plan, "pack_step", lambda spec, info, device, k: setattr(
                self, "peak", before + fixed + per_member * k))


def test_measured_line_is_the_probe_peaks_above_what_was_there(monkeypatch, make_spec):
    _FakeAllocator(monkeypatch, fixed=300, per_member=50)
    spec = make_spec("lenet")
    assert plan.measured_pack_line(spec, dataset_info("digits", spec.image_size), torch.device("cuda")) == (300, 50)


def test_capacity_is_the_largest_pack_within_the_budget():
    assert plan.capacity(300, 50, 1000) == 14  # 300 + 50 * 14 = 1000
    assert plan.capacity(300, 50, 999) == 13
    assert plan.capacity(300, 50, 100) == 1  # not even one fits: one member, and CUDA will say if it fails


def test_pack_capacity_measured_uses_half_the_free_memory_and_falls_back_where_the_probe_cannot_tell(monkeypatch, make_spec):
    spec = make_spec("lenet")
    info = dataset_info("digits", spec.image_size)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (10_000, 80_000))
    _FakeAllocator(monkeypatch, fixed=1000, per_member=400)
    assert plan.pack_capacity(spec, info, torch.device("cuda"), "measured") == 10  # (0.5 * 10000 - 1000) // 400
    monkeypatch.setattr(plan, "member_memory_bytes", lambda spec, info: 1000)
    assert plan.pack_capacity(spec, info, torch.device("cuda"), "estimate") == 5

    def oom(*a):
        raise torch.cuda.OutOfMemoryError("probe")
    monkeypatch.setattr(plan, "measured_pack_line", oom)
    assert plan.pack_capacity(spec, info, torch.device("cuda"), "measured") == 5
    # a peak that does not grow with K says nothing about larger packs: the estimate again, not "everything fits"
    monkeypatch.setattr(plan, "measured_pack_line", lambda *a: (3000, 0.0))
    assert plan.pack_capacity(spec, info, torch.device("cuda"), "measured") == 5


def test_pack_plan_splits_a_gpu_job_by_the_capacity_of_the_chosen_sizing(monkeypatch, make_spec):
    specs = [make_spec("lenet", seed=s) for s in range(5)]
    info = dataset_info("digits", specs[0].image_size)
    seen = []
    monkeypatch.setattr(plan, "pack_capacity", lambda spec, info, device, memory: seen.append(memory) or 2)
    packs = plan.pack_plan(specs, info, torch.device("cuda"), "auto", {}, "measured")
    assert [len(p) for p in packs] == [2, 2, 1] and seen == ["measured"]
    assert [s.seed for p in packs for s in p] == list(range(5))


# --------------------------------------------------------------------------------------------------------
# pack layout (training.pack_layout): a named layout is kept; auto probes on cuda, keeps the default on the CPU

def test_named_layouts_are_kept_and_auto_on_the_cpu_needs_no_probe(make_spec, monkeypatch):
    spec, info = make_spec("lenet", dtype="float32"), dataset_info("digits", 16)
    monkeypatch.setattr(plan, "layout_step_seconds", lambda *a, **k: pytest.fail("probed"))
    assert plan.choose_layout(spec, info, torch.device("cpu"), 4, "per_member") == ("per_member", {})
    assert plan.choose_layout(spec, info, torch.device("cpu"), 4, "auto") == ("grouped_channels_last", {})
    with pytest.raises(ValueError, match="unknown pack layout 'streams'"):
        plan.choose_layout(spec, info, torch.device("cpu"), 4, "streams")


def test_auto_takes_the_fastest_probe_and_leaves_out_a_failing_one(make_spec, monkeypatch):
    """Planted step times: the fastest wins, whatever its place in the list; a probe that runs out of
    memory is left out; if every probe fails the device's default is used."""
    spec, info = make_spec("lenet", dtype="float32"), dataset_info("digits", 16)
    planted = {"grouped": 3.0, "grouped_channels_last": 2.0, "per_member": 1.0, "per_member_channels_last": None}

    def fake(model, *_):
        assert model.members == 4
        if planted[model.layout] is None:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (planted)")
        return planted[model.layout]

    monkeypatch.setattr(plan, "layout_step_seconds", fake)
    best, times = plan.choose_layout(spec, info, torch.device("cpu"), 4, "auto", candidates=list(planted))
    assert best == "per_member" and times == {"grouped": 3.0, "grouped_channels_last": 2.0, "per_member": 1.0}
    planted.update(per_member=5.0)
    assert plan.choose_layout(spec, info, torch.device("cpu"), 4, "auto", candidates=list(planted))[0] == \
        "grouped_channels_last"
    planted.update(dict.fromkeys(planted))
    assert plan.choose_layout(spec, info, torch.device("cpu"), 4, "auto", candidates=list(planted)) == \
        ("grouped_channels_last", {})


def fake_cuda_pack(monkeypatch, free: int, base: int) -> _FakeAllocator:
    """Probes "on cuda" without a GPU: the pack is built on the CPU, the memory counters planted (`free` bytes free,
    `base` allocated); a timed step raises the returned allocator's peak."""
    on_cpu = plan._probe_pack
    monkeypatch.setattr(plan, "_probe_pack", lambda spec, info, _device, k: on_cpu(spec, info, torch.device("cpu"), k))
    return _FakeAllocator(monkeypatch, before=base, free=free)


def test_auto_on_cuda_probes_every_layout_and_no_side_streams_for_a_compiled_pack(make_spec, monkeypatch):
    """On cuda auto times every layout of netdyn.packed.LAYOUTS (planted times; no GPU needed); a compiled pack
    would run per_member_streams as per_member, so its probe leaves that layout out."""
    from netdyn.packed import LAYOUTS

    spec, info = make_spec("lenet", dtype="float32"), dataset_info("digits", 16)
    planted = dict(zip(LAYOUTS, range(len(LAYOUTS), 0, -1)), per_member_streams=0.5)
    probed = []

    def fake(model, *_):
        probed.append(model.layout)
        return planted[model.layout]

    monkeypatch.setattr(plan, "layout_step_seconds", fake)
    fake_cuda_pack(monkeypatch, free=2**40, base=0)
    assert plan.choose_layout(spec, info, torch.device("cuda"), 4, "auto")[0] == "per_member_streams"
    assert probed == list(LAYOUTS)
    probed.clear()
    best, times = plan.choose_layout(spec, info, torch.device("cuda"), 4, "auto", compile=True)
    assert best == "batched_matmul" and "per_member_streams" not in times
    assert probed == [name for name in LAYOUTS if name != "per_member_streams"]


def test_layout_probe_builds_one_pack_and_times_each_layout_in_its_own_kernels(make_spec, monkeypatch):
    """probe_layouts builds the pack once and switches its layout: each timing sees every packed convolution in the
    layout it is timed for, no gradient left from the layout before, and the weights of the pack as built (the
    probe takes no optimiser step); its timed steps really run (gradients appear)."""
    from netdyn.packed import LAYOUTS, PackedConv2d

    spec, info = make_spec("lenet", dtype="float32"), dataset_info("digits", 16)
    builds, seen, first = [], [], {}
    real_pack, real_time = plan._probe_pack, plan.layout_step_seconds
    monkeypatch.setattr(plan, "_probe_pack", lambda *a: builds.append(a[3]) or real_pack(*a))

    def timed(model, x, y, precision, device, steps):
        convs = [m for m in model.modules() if isinstance(m, PackedConv2d)]
        assert convs and {(m.conv, m.channels_last) for m in convs} == {LAYOUTS[model.layout]}
        assert all(p.grad is None for p in model.parameters()), "gradients carried over from the last layout"
        state = {n: t.clone() for n, t in model.state_dict().items()}
        if first:
            assert all(torch.equal(state[n], first[n]) for n in first), "the probe changed the weights"
        first.update(state)
        t = real_time(model, x, y, precision, device, (0, 1))
        assert all(p.grad is not None for p in model.parameters())
        seen.append(model.layout)
        return t

    monkeypatch.setattr(plan, "layout_step_seconds", timed)
    times, failed = plan.probe_layouts(spec, info, torch.device("cpu"), 3, list(LAYOUTS))
    assert builds == [3] and seen == list(LAYOUTS) and set(times) == set(LAYOUTS) and not failed


def test_a_layout_whose_probe_would_not_leave_room_for_training_is_left_out(make_spec, monkeypatch):
    """On cuda (faked: counters planted, pack built on the CPU) a layout whose probe peak above what was allocated
    before, plus the momentum buffers (one more copy of the parameters), exceeds TRAINING_MEMORY_SHARE of the
    free memory is left out, naming the sizes; the others are kept. Every layout's peak is measured from its own
    reset."""
    spec, info = make_spec("lenet", dtype="float32"), dataset_info("digits", 16)
    gib = 2**30
    momentum = sum(p.numel() * 4 for p in plan._probe_pack(spec, info, torch.device("cpu"), 3)[0].parameters())
    free, base = 10 * gib, 3 * gib  # 8 GiB may be taken
    planted = {"grouped": 2 * gib, "per_member": 8 * gib - momentum, "batched_matmul": 8 * gib - momentum + 1}
    memory = fake_cuda_pack(monkeypatch, free, base)

    def step(model, *_):
        memory.peak = max(memory.peak, base + planted[model.layout])
        return 1.0

    monkeypatch.setattr(plan, "layout_step_seconds", step)
    times, failed = plan.probe_layouts(spec, info, torch.device("cuda"), 3, ["batched_matmul", "grouped", "per_member"])
    assert set(times) == {"grouped", "per_member"}
    assert failed == {"batched_matmul": "needs 8.00 GiB with its momentum buffers, more than 80% of the 10.00 GiB free"}


def test_a_pack_too_large_to_build_fails_every_layout_probe(make_spec, monkeypatch):
    spec, info = make_spec("lenet", dtype="float32"), dataset_info("digits", 16)

    def too_big(*_):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB (planted)\nmore")

    monkeypatch.setattr(plan, "_probe_pack", too_big)
    times, failed = plan.probe_layouts(spec, info, torch.device("cpu"), 3, ["grouped", "per_member"])
    assert times == {} and failed == dict.fromkeys(["grouped", "per_member"],
                                                   "CUDA out of memory. Tried to allocate 2 GiB (planted)")


@pytest.mark.parametrize("arch", ["lenet", "resnet8"])
def test_layout_probe_times_real_steps_on_the_cpu(make_spec, arch):
    """The probe itself (not planted): real training steps of a fresh pack in each layout, timed."""
    spec = make_spec(arch, dtype="float32")
    info = dataset_info("digits", spec.image_size)
    best, times = plan.choose_layout(spec, info, torch.device("cpu"), 2, "auto",
                                     candidates=["grouped", "per_member_channels_last"])
    assert set(times) == {"grouped", "per_member_channels_last"} and best in times
    assert all(0 < t < 10 for t in times.values())
