"""Measuring ``netdyn.train.PackTrainer`` from outside, through its documented hooks (``TrainerHooks``).

Two modes:

* epoch mode (:func:`measure_trainer`, the main table): ``fit()`` of 1 + R epochs over the N images, one
  snapshot per epoch. Epoch 1 warms up; each later epoch is timed from the end of the previous epoch's
  snapshot to the end of its own (so it holds the previous epoch's checkpoints + curves.csv, the epoch's
  minibatch streams, its steps and its snapshot); the fastest counts. Inside it the span from the end of
  step 1 to the end of the last step is timed too (the training loop alone).
* step mode (:func:`measure_steps`, the projection): one short epoch of warm-up + timed steps, then that
  epoch's snapshot (tiny test set: mostly trajectory rows) and its K checkpoints, each timed; test-set
  evaluation is timed with ``netdyn.train.evaluate`` on the trained pack, in the runs' precision.

Every clock read that covers device work follows ``torch.cuda.synchronize()``; hooks synchronise only at the
steps they time, so the other steps run as they do in training.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from netdyn.config import RunSpec
from netdyn.data import DatasetInfo, ImageData
from netdyn.models import build_model
from netdyn.precision import autocast
from netdyn.train import PackTrainer, TrainerHooks, evaluate, model_kwargs

from .common import OverTime, Stop, cleanup, now, sync
from .data import synthetic_image_data

ARCHS = {  # benchmark name -> RunSpec architecture fields
    "lenet": dict(arch="lenet", arch_label="lenet", depth=None, batchnorm=None),
    "vgg": dict(arch="vgg", arch_label="vgg11bn", depth=11, batchnorm=True),
    "alexnet": dict(arch="alexnet", arch_label="alexnet", depth=None, batchnorm=None),
    "resnet20": dict(arch="resnet", arch_label="resnet20", depth=20, batchnorm=True),
}
LEARNING_RATES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)  # members cycle through these
HAS_PRECISION = "precision" in {f.name for f in dataclasses.fields(RunSpec)}  # training.precision landed?


def bench_specs(arch: str, width: int, k: int, *, epochs: int = 2, dataset: str = "cifar10", image_size: int = 32,
                batch_size: int = 128, crop_padding: int = 4, flip: bool = True, tag: str = "",
                precision: str | None = None) -> list[RunSpec]:
    """K runs of one pack: seeds 1000.., learning rates cycling through LEARNING_RATES, no dropout; precision
    None is RunSpec's default (tf32 for float32: what training on cuda did before the key existed)."""
    a = ARCHS[arch]
    return [RunSpec.from_dict(dict(  # from_dict drops `precision` where RunSpec has no such field
        run_id=f"bench{tag}-{a['arch_label']}-w{width}-k{k}-m{i:03d}", **a, dataset=dataset, image_size=image_size,
        width=width, learning_rate=LEARNING_RATES[i % len(LEARNING_RATES)], dropout=0.0, weight_decay=0.0,
        seed=1000 + i, epochs=epochs, batch_size=batch_size, momentum=0.9, crop_padding=crop_padding, flip=flip,
        subepoch_snapshots=1, subepoch_epochs=1, dtype="float32", precision=precision))
        for i in range(k)]


def with_fields(specs: list[RunSpec], **changes) -> list[RunSpec]:
    return [RunSpec.from_dict({**s.to_dict(), **changes}) for s in specs]


def train_flops_per_image(spec: RunSpec, info: DatasetInfo) -> float:
    """Approximate training FLOPs per image: 3 x (2 x multiply-adds of conv and linear layers)."""
    model = build_model(**model_kwargs(spec, info))
    macs = 0

    def hook(m, _i, out):
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            macs += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs += out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, info.in_channels, info.image_size, info.image_size))
    for h in hs:
        h.remove()
    return 6.0 * macs


def _kernel_summary(prof, n_steps: int) -> dict:
    """Device kernel time and count per step from a torch.profiler run (cuda only)."""
    from torch.autograd import DeviceType

    total_us, count, by_name = 0.0, 0, {}
    for e in prof.events():
        if getattr(e, "device_type", None) == DeviceType.CUDA:
            us = e.time_range.elapsed_us()
            total_us += us
            count += 1
            by_name[e.name] = by_name.get(e.name, 0.0) + us
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:6]
    return {"profiled_steps": n_steps, "kernel_us_per_step": total_us / n_steps, "kernels_per_step": count / n_steps,
            "top_kernels": [{"name": n[:140], "us_per_step": round(v / n_steps, 2)} for n, v in top]}


class EpochProbe(TrainerHooks):
    """Epoch mode: snapshot end times, step-loop spans of the timed epochs, an optional profile of P steps of
    the epoch after them, and a deadline."""

    def __init__(self, device: torch.device, deadline: float, steps_per_epoch: int, timed_epochs,
                 profile_epoch: int | None = None, profile_steps: int = 0):
        self.device, self.deadline, self.spe = device, deadline, steps_per_epoch
        self.timed_epochs = set(timed_epochs)
        self.profile_epoch, self.profile_steps = profile_epoch, profile_steps
        self.snap_times: list[float] = []  # [initial snapshot, end of epoch 1, end of epoch 2, ...]
        self.step_spans: dict[int, list[float]] = {}  # epoch -> [end of step 1, end of last step]
        self.profile: dict | None = None
        self._prof = self._prof_t0 = None

    def on_snapshot_end(self, epoch: float) -> None:
        sync(self.device)
        self.snap_times.append(now())

    def on_step_end(self, step: int) -> None:
        if now() > self.deadline:
            raise OverTime()
        epoch, in_epoch = divmod(step - 1, self.spe)
        epoch += 1
        if epoch in self.timed_epochs and self.spe > 1 and in_epoch in (0, self.spe - 1):
            sync(self.device)
            self.step_spans.setdefault(epoch, []).append(now())
        if epoch == self.profile_epoch and self.profile_steps:
            if in_epoch == 0:
                self._start_profile()
            elif in_epoch == self.profile_steps:
                self._stop_profile(in_epoch)
                raise Stop()

    def _start_profile(self) -> None:
        sync(self.device)
        acts = [torch.profiler.ProfilerActivity.CPU]
        if self.device.type == "cuda":
            acts.append(torch.profiler.ProfilerActivity.CUDA)
        self._prof = torch.profiler.profile(activities=acts)
        self._prof.start()
        self._prof_t0 = now()

    def _stop_profile(self, n_steps: int) -> None:
        sync(self.device)
        wall = now() - self._prof_t0
        self._prof.stop()
        try:
            self.profile = _kernel_summary(self._prof, n_steps)
            self.profile["profiled_wall_s_per_step"] = wall / n_steps
        except Exception as err:  # profiler APIs move between torch versions
            self.profile = {"error": repr(err)}


class StepProbe(TrainerHooks):
    """Step mode: the span of steps warmup+1..last, then the end of the epoch's snapshot and of its
    checkpoints; stops ``fit`` there (before the runs are finished)."""

    def __init__(self, device: torch.device, deadline: float, warmup: int, last_step: int):
        self.device, self.deadline, self.warmup, self.last = device, deadline, warmup, last_step
        self.t0 = self.t1 = self.t_snapshot = self.t_checkpoints = None

    def on_step_end(self, step: int) -> None:
        if now() > self.deadline:
            raise OverTime()
        if step in (self.warmup, self.last):
            sync(self.device)
            if step == self.warmup:
                self.t0 = now()
            else:
                self.t1 = now()

    def on_snapshot_end(self, epoch: float) -> None:
        if epoch > 0:
            sync(self.device)
            self.t_snapshot = now()

    def on_epoch_end(self, epoch: int) -> None:
        self.t_checkpoints = now()  # measure_steps writes in place: the checkpoints are on disk
        raise Stop()


def _peak_memory(device: torch.device, k: int, base: int = 0) -> dict:
    if device.type != "cuda":
        return {}
    peak = torch.cuda.max_memory_allocated(device)
    return {"peak_mem_bytes": peak, "peak_mem_per_member_bytes": peak / k,
            "peak_mem_above_data_per_member_bytes": (peak - base) / k}


def _fit(specs, train, test, info, device, probe, options: dict | None) -> tuple[PackTrainer, float]:
    """Build a pack trainer with `probe` as its hooks (and `options`: PackTrainer's layout / compile keywords)
    in a scratch directory and run fit() until the probe stops it; returns the trainer and its construction
    time (not timed otherwise)."""
    out = Path(tempfile.mkdtemp(prefix="netdyn-bench-"))
    try:
        t = now()
        trainer = PackTrainer(specs, train, test, info, out, device, hooks=probe, **(options or {}))
        build_s = now() - t
        try:
            trainer.fit()
        except Stop:
            pass
        return trainer, build_s
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _applied(trainer: PackTrainer) -> dict:
    """What the trainer applied (not what was asked for): precision, pack layout, compiled or not."""
    return {"trainer_precision": getattr(trainer, "precision", None),
            "trainer_layout": getattr(trainer.model, "layout", None),
            "trainer_compile": getattr(trainer, "forward", trainer.model) is not trainer.model}


def measure_trainer(specs: list[RunSpec], train: ImageData, test: ImageData, info: DatasetInfo, device: torch.device,
                    deadline: float, *, profile_steps: int = 0, repeats: int = 1, options: dict | None = None) -> dict:
    """Epoch mode (see the module docstring); all timed epochs are kept in ``seconds_all``. `options`:
    PackTrainer's ``layout`` / ``compile`` keywords (a compiled pack compiles in its warm-up epoch)."""
    k, n = len(specs), len(train)
    bs = specs[0].batch_size
    spe = math.ceil(n / bs)
    profile_steps = min(profile_steps, spe - 1) if profile_steps else 0
    epochs = 1 + repeats + (1 if profile_steps else 0)  # the last one profiled for a few steps, if asked
    specs = with_fields(specs, epochs=epochs)
    base = 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    probe = EpochProbe(device, deadline, spe, range(2, 2 + repeats),
                       profile_epoch=2 + repeats if profile_steps else None, profile_steps=profile_steps)
    try:
        trainer, build_s = _fit(specs, train, test, info, device, probe, options)
        t = probe.snap_times
        if len(t) < 2 + repeats:
            raise RuntimeError(f"fit() ended after {len(t) - 1} epochs (every member diverged?)")
        all_s = [t[i + 1] - t[i] for i in range(1, 1 + repeats)]
        seconds = min(all_s)
        rec = {"k": k, "images_timed_per_model": n, "steps_timed": spe, "seconds": seconds, "seconds_all": all_s,
               "images_per_s_per_model": n / seconds, "images_per_s_total": k * n / seconds,
               "build_seconds": build_s, "warmup_epoch_seconds": t[1] - t[0], **_applied(trainer)}
        spans = [v[1] - v[0] for v in probe.step_spans.values() if len(v) == 2]
        if spans:  # steps 2..last of the fastest timed epoch: the training loop without per-epoch work
            steps_s = min(spans)
            rec.update(steps_only_seconds=steps_s, steps_only_images_per_s_per_model=(n - bs) / steps_s,
                       step_seconds=steps_s / (spe - 1),
                       epoch_overhead_seconds=max(0.0, seconds - steps_s * n / (n - bs)))
        rec.update(_peak_memory(device, k, base))
        if probe.profile is not None:
            prof = dict(probe.profile)
            if "kernel_us_per_step" in prof and device.type == "cuda":
                prof["gpu_busy_fraction"] = prof["kernel_us_per_step"] * 1e-6 / (seconds / spe)
            rec["profile"] = prof
        del trainer
        return rec
    finally:
        cleanup(device)


def measure_steps(specs: list[RunSpec], info: DatasetInfo, device: torch.device, deadline: float, *, warmup: int,
                  steps: int, eval_images: int, options: dict | None = None) -> dict:
    """Step mode (see the module docstring) on synthetic tensors of the data set's shape: one epoch of
    warmup + `steps` steps (one snapshot, at its end), then ``evaluate`` on `eval_images` test images. While
    it runs, a placeholder keeps the device memory of the data set's full train split taken. `options`:
    PackTrainer's ``layout`` / ``layout_probe`` / ``compile`` keywords. Its files are written in place, not on
    the writer thread, so the snapshot and checkpoint times hold their whole cost (an upper bound: training
    overlaps that cost with the next steps)."""
    k, bs = len(specs), specs[0].batch_size
    n = (warmup + steps) * bs
    specs = with_fields(specs, epochs=1, subepoch_snapshots=1)
    train = synthetic_image_data(n, info.in_channels, info.image_size, device, seed=1)
    test = synthetic_image_data(64, info.in_channels, info.image_size, device, seed=2)
    eval_data = synthetic_image_data(min(eval_images, info.n_test), info.in_channels, info.image_size, device, seed=3)
    rest = max(0, info.n_train - n)
    placeholder = torch.empty(rest, info.in_channels, info.image_size, info.image_size, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    probe = StepProbe(device, deadline, warmup, warmup + steps)
    try:
        trainer, build_s = _fit(specs, train, test, info, device, probe,
                                {**(options or {}), "background_writes": False})
        if probe.t_checkpoints is None:
            raise RuntimeError("fit() ended before the measurement finished (every member diverged?)")
        step_s = (probe.t1 - probe.t0) / steps
        with autocast(specs[0].precision, device):  # as PackTrainer evaluates: in the run's precision
            evaluate(trainer.forward, eval_data, k)  # warm-up
            sync(device)
            t = now()
            evaluate(trainer.forward, eval_data, k)
            sync(device)
            eval_s = now() - t
        rec = {"k": k, "step_seconds": step_s, "timed_steps": steps,
               "images_per_s_per_model": bs / step_s, "images_per_s_total": k * bs / step_s,
               "eval_images_per_s_per_model": len(eval_data) / eval_s,
               "snapshot_io_seconds": probe.t_snapshot - probe.t1,
               "checkpoint_seconds": probe.t_checkpoints - probe.t_snapshot, "build_seconds": build_s,
               **_applied(trainer)}
        rec.update(_peak_memory(device, k))
        del trainer
        return rec
    finally:
        del train, test, eval_data, placeholder
        cleanup(device)
