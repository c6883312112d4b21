"""Planning a training job: which of its runs train together (packs), and what they need in device
memory and on disk, known before anything is trained."""

from __future__ import annotations

import logging

import pandas as pd
import torch

from .config import RunSpec, packs_runs
from .data import DatasetInfo
from .member import init_model, model_kwargs
from .models import build_model
from .rundir import snapshots_per_run

log = logging.getLogger(__name__)


def member_memory_bytes(spec: RunSpec, info: DatasetInfo) -> int:
    """Rough per-member device memory of training: weights, grads and momentum (in the run's dtype; bf16 keeps
    float32 masters plus a bfloat16 copy of the weights for autocast) and three times the layer outputs of a
    minibatch (forward output, saved input, gradient), stored in bfloat16 under bf16 autocast.

    The layer outputs are counted by one forward pass of a single image in eval mode (BatchNorm in train mode
    refuses a batch of one at 1x1 spatial size, e.g. VGG-11-BN on 8-pixel images)."""
    model = init_model(spec, info).eval()
    itemsize = torch.finfo(getattr(torch, spec.dtype)).bits // 8
    act_itemsize = 2 if spec.precision == "bf16" else itemsize
    acts = 0

    def hook(_m, _i, out):
        nonlocal acts
        acts += out.numel()

    handles = [mod.register_forward_hook(hook) for mod in model.modules() if not list(mod.children())]
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        model(torch.zeros(1, info.in_channels, info.image_size, info.image_size, dtype=dtype))
    for h in handles:
        h.remove()
    params = sum(p.numel() for p in model.parameters())
    weights = itemsize * 4 * params + (2 * params if spec.precision == "bf16" else 0)
    return weights + act_itemsize * 3 * acts * spec.batch_size


MEMORY_SHARE = 0.5  # of the free device memory a pack may fill (cuDNN workspaces and the allocator's slack need the rest)
PROBE_PACKS = (1, 2)  # pack sizes whose measured peaks give the line peak = fixed + per_member * K


def _probe_pack(spec: RunSpec, info: DatasetInfo, device: torch.device, k: int):
    """A pack of `k` fresh members of `spec`'s kind on `device` (in the CPU's default layout), and a random
    minibatch for it."""
    from .packed import pack_models

    model = pack_models([init_model(spec, info) for _ in range(k)], [spec.seed] * k).to(device).train()
    dtype = next(model.parameters()).dtype
    size, channels = info.image_size, info.in_channels
    x = torch.randn(spec.batch_size, k * channels, size, size, device=device, dtype=dtype)
    y = torch.randint(0, info.num_classes, (k, spec.batch_size), device=device)
    return model, x, y


def _train_step(model, x, y, precision: str, device: torch.device) -> None:
    """Forward, loss and backward of one minibatch, as PackTrainer computes them (its SGD step, the same for
    every layout, left out)."""
    from torch.nn import functional as F

    from .precision import autocast

    with autocast(precision, device):
        loss = F.cross_entropy(model(x).transpose(1, 2), y)
    loss.backward()


def pack_step(spec: RunSpec, info: DatasetInfo, device: torch.device, k: int) -> None:
    """One training step (forward, loss, backward, momentum buffers) and one test forward of a pack of `k` fresh
    members of `spec`'s kind on random data: what a pack of that size holds at its peak in PackTrainer."""
    from .precision import autocast

    model, x, y = _probe_pack(spec, info, device, k)
    buffers = [torch.zeros_like(p) for p in model.parameters()]  # noqa: F841 - held like PackTrainer's momentum
    _train_step(model, x, y, spec.precision, device)
    with torch.no_grad(), autocast(spec.precision, device):  # train.evaluate: 16384 images over the K members
        b = min(max(64, 16384 // k), info.n_test or 16384)
        model.eval()(torch.randn(b, *x.shape[1:], device=device, dtype=x.dtype))


LAYOUT_PROBE_STEPS = (2, 5)  # warm-up steps (cuDNN autotuning happens in the first), then timed steps
# of the device memory free before a layout probe, what the probe's peak plus the momentum buffers may take: the
# rest is for what training holds besides (the padded train split, evaluation chunks) and the allocator's slack
TRAINING_MEMORY_SHARE = 0.8


def layout_step_seconds(model, x: torch.Tensor, y: torch.Tensor, precision: str, device: torch.device,
                        steps: tuple[int, int] = LAYOUT_PROBE_STEPS) -> float:
    """Median seconds of one training step (forward, loss, backward) of the pack `model` in its present
    layout (``model.layout``) on the minibatch `x`, `y`."""
    import statistics
    import time

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)
    times = []
    for i in range(sum(steps)):
        sync(device)
        t0 = time.perf_counter()
        _train_step(model, x, y, precision, device)
        sync(device)
        if i >= steps[0]:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def probe_layouts(spec: RunSpec, info: DatasetInfo, device: torch.device, k: int, candidates,
                  steps: tuple[int, int] = LAYOUT_PROBE_STEPS) -> tuple[dict[str, float], dict[str, str]]:
    """:func:`layout_step_seconds` of each candidate layout, and why each other one was left out: the first line
    of its probe's error (out of memory, say: torch.cuda.OutOfMemoryError is a RuntimeError), or, on cuda, a
    peak that with the momentum buffers would take more than TRAINING_MEMORY_SHARE of the memory free before the
    probe (layouts differ in memory: batched_matmul keeps kh*kw times a convolution's input), so that the
    pack's training does not run out where its probe did not. One fresh pack of `k` is built and switched from
    layout to layout (netdyn.packed.set_layout: the parameters stay as they are) -- building K members again per
    layout cost seconds per wide pack; its gradients are dropped and the device's cache emptied before each
    layout, so one layout's leftovers do not crowd the next."""
    from .packed import set_layout

    cuda = device.type == "cuda"
    times, failed = {}, {}
    if cuda:
        free, base = torch.cuda.mem_get_info(device)[0], torch.cuda.memory_allocated(device)
    try:
        model, x, y = _probe_pack(spec, info, device, k)
    except RuntimeError as err:  # the pack itself does not fit: no layout can be timed
        return times, dict.fromkeys(candidates, str(err).splitlines()[0])
    momentum = sum(p.numel() * p.element_size() for p in model.parameters())
    for cand in candidates:
        model.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            set_layout(model, cand)
            t = layout_step_seconds(model, x, y, spec.precision, device, steps)
        except RuntimeError as err:
            failed[cand] = str(err).splitlines()[0]
            continue
        need = torch.cuda.max_memory_allocated(device) - base + momentum if cuda else 0
        if cuda and need > TRAINING_MEMORY_SHARE * free:
            failed[cand] = (f"needs {need / 2**30:.2f} GiB with its momentum buffers, more than "
                            f"{TRAINING_MEMORY_SHARE:.0%} of the {free / 2**30:.2f} GiB free")
        else:
            times[cand] = t
    del model, x, y
    if cuda:
        torch.cuda.empty_cache()
    return times, failed


def choose_layout(spec: RunSpec, info: DatasetInfo, device: torch.device, k: int, layout: str = "auto",
                  candidates=None, compile: bool = False) -> tuple[str, dict[str, float]]:
    """The pack layout a pack of `k` members of `spec`'s kind trains in, and the probe's step times (seconds
    per layout; empty where nothing was timed). `layout` other than auto is kept as it is; auto on the CPU is
    its default layout (no probe: CPU numbers stay the same from run to run), on cuda the layout whose probe
    steps were fastest among `candidates` (default: all of LAYOUTS, less the side-stream ones for a `compile`d
    pack, which would run them as per_member). The probe steps are eager. A candidate whose probe fails (out
    of memory, say) is left out, with a warning; if all fail, the device's default layout is used."""
    from .packed import LAYOUTS, default_layout, uses_side_streams

    if layout != "auto":
        if layout not in LAYOUTS:
            raise ValueError(f"unknown pack layout {layout!r}; known: auto, {', '.join(LAYOUTS)}")
        return layout, {}
    if device.type != "cuda" and candidates is None:
        return default_layout(device), {}
    candidates = candidates or [name for name in LAYOUTS if not (compile and uses_side_streams(name))]
    times, failed = probe_layouts(spec, info, device, k, candidates)
    for cand, why in failed.items():
        log.warning("pack layout %s for %s, K=%d: probe failed (%s); left out", cand, spec.pack_key, k, why)
    if not times:
        return default_layout(device), {}
    best = min(times, key=times.get)
    log.info("pack layout for %s, K=%d: %s (probe step times: %s)", spec.pack_key, k, best,
             ", ".join(f"{c} {t * 1e3:.2f} ms" for c, t in times.items()))
    return best, times


def pack_step_peak_bytes(spec: RunSpec, info: DatasetInfo, device: torch.device, k: int) -> int:
    """Peak device memory of `pack_step` at pack size `k` above what was allocated before it (CUDA only: the
    caching allocator's peak statistics)."""
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    pack_step(spec, info, device, k)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def measured_pack_line(spec: RunSpec, info: DatasetInfo, device: torch.device) -> tuple[float, float]:
    """(fixed, per_member) bytes of the line through the measured peaks of `pack_step` at the PROBE_PACKS sizes."""
    (k1, k2), (p1, p2) = PROBE_PACKS, [pack_step_peak_bytes(spec, info, device, k) for k in PROBE_PACKS]
    per_member = (p2 - p1) / (k2 - k1)
    return p1 - per_member * k1, per_member


def capacity(fixed: float, per_member: float, budget: float) -> int:
    """The largest pack size K with fixed + per_member * K within `budget` bytes; at least 1."""
    return max(1, int((budget - fixed) // per_member))


def pack_capacity(spec: RunSpec, info: DatasetInfo, device: torch.device, memory: str = "estimate") -> int:
    """How many members of `spec`'s kind one pack on the CUDA `device` may hold: MEMORY_SHARE of the free memory
    over the per-member estimate (`estimate`), or over the line measured by a probe step (`measured`; falls
    back to the estimate, saying so, where the probe itself runs out of memory)."""
    free, _ = torch.cuda.mem_get_info(device)
    budget = MEMORY_SHARE * free
    if memory == "measured":
        try:
            fixed, per_member = measured_pack_line(spec, info, device)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            log.warning("pack size for %s: the probe step ran out of memory; using the estimate", spec.pack_key)
        else:
            if per_member > 0:
                k = capacity(fixed, per_member, budget)
                log.info("pack size for %s: %d (measured %.0f MiB + %.1f MiB per member; %.0f MiB free)",
                         spec.pack_key, k, fixed / 2**20, per_member / 2**20, free / 2**20)
                return k
            log.warning("pack size for %s: the probe's peak did not grow with the pack (%.0f bytes per member); "
                        "using the estimate", spec.pack_key, per_member)
    return capacity(0, member_memory_bytes(spec, info), budget)


def pack_plan(specs: list[RunSpec], info: DatasetInfo, device: torch.device, pack: str,
              resume_epochs: dict[str, int], memory: str = "estimate") -> list[list[RunSpec]]:
    """Split a job's runs into packs: where config.packs_runs says so, runs that share a pack key and resume
    epoch are packed, on a GPU as many as `pack_capacity` allows; otherwise every run trains alone."""
    by_key: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        by_key.setdefault((s.pack_key, resume_epochs.get(s.run_id, 0)), []).append(s)
    use_pack = packs_runs(pack, device.type)
    packs = []
    for group in by_key.values():
        if not use_pack:
            packs += [[s] for s in group]
            continue
        cap = pack_capacity(group[0], info, device, memory) if device.type == "cuda" else len(group)
        packs += [group[i:i + cap] for i in range(0, len(group), cap)]
    return packs


def storage_estimate(specs: list[RunSpec]) -> pd.DataFrame:
    """On-disk trajectory bytes per run and per (architecture, data set, width), without training."""
    from .data import dataset_info

    rows, sizes = [], {}
    for s in specs:
        key = (s.arch_label, s.dataset, s.width)
        if key not in sizes:
            info = dataset_info(s.dataset, s.image_size)
            sizes[key] = sum(t.numel() for t in build_model(**model_kwargs(s, info)).state_dict().values())
        itemsize = 8 if s.dtype == "float64" else 4
        rows.append({"arch": s.arch_label, "dataset": s.dataset, "width": s.width, "values_per_snapshot": sizes[key],
                     "snapshots": snapshots_per_run(s), "bytes": sizes[key] * itemsize * snapshots_per_run(s)})
    return pd.DataFrame(rows)
