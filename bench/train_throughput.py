#!/usr/bin/env python
"""Training throughput: netdyn's batched trainer against its single-run trainer and a seed-style loop.

Three loops train the same architectures on the same images, in one process, and report images per second
*per model*:

(a) ``batched``   netdyn.train.PackTrainer with K members (different seeds and learning rates), data on
                  the device, augmentation on the device;
(b) ``single``    the same trainer with K = 1 (what netdyn runs for one grid point);
(c) ``seed_loop`` the loop of the original code: torchvision.datasets.CIFAR10 with PIL
                  RandomCrop(32, padding=4) / RandomHorizontalFlip / ToTensor / Normalize, a DataLoader
                  (shuffle, workers, pin_memory on cuda), one nn.Module, torch.optim.SGD with momentum,
                  and the per-step ``loss.item()`` / accuracy ``.item()`` book-keeping of such scripts.

Data: N synthetic CIFAR-10-shaped images (uint8, 10 classes, seeded) written in the real CIFAR-10 python
pickle format; (c) reads them with torchvision's CIFAR10 class, (a)/(b) with netdyn.data.load_dataset.

What is timed (``settings.what_is_timed`` in the JSON says the same):

* (a)/(b): ``PackTrainer.fit()`` of 1 + R epochs over the N images (R = ``--repeats``; test set:
  ``--test-images`` images; one snapshot per epoch). Epoch 1 is the warm-up. Each later epoch is timed from
  the end of the previous epoch's snapshot to the end of its own: the previous epoch's per-member
  checkpoint + curves.csv, the epoch's minibatch streams, ceil(N / 128) training steps, and its snapshot
  (test-set evaluation + one trajectory row per member); the fastest counts (``images_per_s_per_model``).
  Inside it, the span from the end of step 1 to the end of the last step is timed too
  (``steps_only_images_per_s_per_model``: the training loop alone), and the difference is reported as
  ``epoch_overhead_seconds``. Trainer construction is not timed. With ``--profile-steps P`` one more epoch
  runs P steps under torch.profiler (kernel time and kernel count per step, GPU busy fraction).
* (c): one warm-up epoch, then the fastest of R full epochs over the N images, DataLoader worker start
  included (the seed loop does not keep workers alive between epochs).
* projection (``--project``): per (architecture, data set, width) of the config, the packs that
  ``netdyn.config.training_groups`` and ``netdyn.train.pack_plan`` form on this device (at most 128
  members), each timed for a few hundred training steps inside ``PackTrainer.fit`` (after warm-up steps),
  plus its test-set evaluation, snapshot and checkpoint costs; see :func:`project`.

On cuda every timer reads after ``torch.cuda.synchronize()``.

Examples::

    .venv/bin/python bench/train_throughput.py --device cpu --quick --out bench/results/train_throughput_cpu.json
    python bench/train_throughput.py --device cuda --archs lenet vgg --widths 1 4 --ks 1 8 32 128 \\
        --images 20000 --project config/paper.yaml --out train_throughput_cuda.json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import pickle
import platform
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

try:  # netdyn.config imports jsonschema at module level; the bench only needs its grid helpers.
    import jsonschema  # noqa: F401

    JSONSCHEMA_STUB = False
except ImportError:  # e.g. the GPU machine's stock Python, which has torch but not jsonschema
    sys.modules["jsonschema"] = types.ModuleType("jsonschema")
    JSONSCHEMA_STUB = True

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from netdyn.config import RunSpec, expand_grid, group_size, training_groups  # noqa: E402
from netdyn.data import DatasetInfo, ImageData, dataset_info, load_dataset  # noqa: E402
from netdyn.models import build_model  # noqa: E402
from netdyn.train import (PackTrainer, evaluate, member_memory_bytes, model_kwargs,  # noqa: E402
                          pack_plan, snapshot_steps)

ARCHS = {  # benchmark name -> RunSpec architecture fields
    "lenet": dict(arch="lenet", arch_label="lenet", depth=None, batchnorm=None),
    "vgg": dict(arch="vgg", arch_label="vgg11bn", depth=11, batchnorm=True),
}
LEARNING_RATES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)  # members cycle through these
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
GOALS_X_SEED = {"lenet": 30.0, "vgg": 15.0}  # issue's targets on one H100, per model vs the seed loop
GOAL_PAPER_HOURS = 4.0
MAX_PACK = 128
ANCHORS = {  # /work/shared/reference/anchors.md, images/s per model; for comparison only, not measured here
    "source": "shared/reference/anchors.md (other code: torch.func vmap; 'small VGG' is conv 16-16-32-32-64-64, "
              "not netdyn's vgg11bn)",
    "h100_50k_images": {"lenet": {"seed_loop_4_workers": 10829, "seed_loop_12_workers": 32890,
                                  "one_model_on_gpu": 46021, "k8": 200633, "k32": 701503, "k128": 1044472},
                        "small_vgg": {"seed_loop_4_workers": 11250, "seed_loop_12_workers": 28306,
                                      "one_model_on_gpu": 40777, "k8": 169376, "k32": 294208, "k128": 302477}},
    "cpu_2_cores_1347_images": {"lenet": {"one_model": 5968, "k8": 3756, "k32": 2762},
                                "small_vgg": {"one_model": 1027, "k8": 610, "k32": 420}},
}

WHAT_IS_TIMED = {
    "batched/single": "PackTrainer.fit() with epochs=1+repeats over the N images, one snapshot per epoch; each "
                      "epoch after the first is timed from the end of the previous epoch's snapshot to the end "
                      "of its own (previous epoch's checkpoint + curves.csv of every member, the epoch's "
                      "streams, ceil(N/batch) steps, its test evaluation + trajectory rows); the fastest counts. "
                      "Construction and epoch 1 (warm-up) not timed.",
    "seed_loop": "epochs over the N images through DataLoader(shuffle, workers, pin_memory on cuda) with PIL "
                 "transforms, SGD momentum, per-step loss.item() and accuracy .item(); one warm-up epoch, then "
                 "the fastest of `repeats` timed epochs; DataLoader worker start-up included (no persistent "
                 "workers).",
    "projection": "per pack size K: training steps timed inside PackTrainer.fit after warm-up steps (until "
                  "--proj-steps steps or --proj-seconds s); evaluate() on --proj-eval-images test images; one "
                  "_snapshot() (tiny test set: trajectory rows of K members); K _save_checkpoint() calls. "
                  "hours = sum over packs of epochs*(steps_per_epoch*t_step + t_checkpoints) + "
                  "n_snapshots*(n_test/eval_rate + t_snapshot_io). Not included: process start, data loading "
                  "per Snakemake job, the partial last batch (counted as full).",
}


class _Stop(Exception):
    """Raised from a probe hook to end PackTrainer.fit once the measurement is complete."""


class _OverTime(Exception):
    """A measurement ran past its deadline."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def now() -> float:
    return time.perf_counter()


def _cleanup(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------------------- #
# data


def write_cifar10(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """N synthetic images in the CIFAR-10 python format (cifar-10-batches-py/data_batch_1..5, test_batch,
    batches.meta). Rows are channel-major 32x32 planes (R 1024, G 1024, B 1024), as in the real files; keys
    are str because torchvision unpickles with encoding='latin1'. Each class has its own mean colour, so the
    task is learnable (the speed does not depend on it)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    colours = rng.integers(40, 216, size=(10, 3, 1))

    def make(n):
        y = rng.integers(0, 10, size=n)
        x = colours[y] + rng.normal(0, 40, size=(n, 3, 1024))
        return np.clip(x, 0, 255).astype(np.uint8).reshape(n, 3072), y

    x, y = make(n_train)
    for i, (xb, yb) in enumerate(zip(np.array_split(x, 5), np.array_split(y, 5)), start=1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"batch_label": f"synthetic batch {i} of 5", "data": xb, "labels": yb.tolist(),
                         "filenames": [f"img{i}_{j}.png" for j in range(len(yb))]}, f)
    xt, yt = make(n_test)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"batch_label": "synthetic test batch", "data": xt, "labels": yt.tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                     "ship", "truck"], "num_cases_per_batch": math.ceil(n_train / 5),
                     "num_vis": 3072}, f)
    return folder


@contextlib.contextmanager
def md5_check_is_exists():
    """torchvision checks the md5 of the real downloads, which synthetic files can never match; within this
    block its check only asks that the file exists. All parsing stays torchvision's own code. Patching the
    module-level name covers CIFAR10._check_integrity and the meta-file check in _load_meta."""
    import torchvision.datasets.cifar as tv_cifar

    old = tv_cifar.check_integrity
    tv_cifar.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)
    try:
        yield
    finally:
        tv_cifar.check_integrity = old


def synthetic_image_data(n: int, channels: int, size: int, device, seed: int = 0) -> ImageData:
    """Normalised-looking tensors for the projection (speed does not depend on pixel values), made on the
    device."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(n, channels, size, size, generator=g, device=device)
    y = torch.randint(0, 10, (n,), generator=g, device=device)
    return ImageData(x, y)


# --------------------------------------------------------------------------------------------------------- #
# helpers


def bench_specs(arch: str, width: int, k: int, *, epochs: int = 2, dataset: str = "cifar10", image_size: int = 32,
                batch_size: int = 128, crop_padding: int = 4, flip: bool = True, tag: str = "") -> list[RunSpec]:
    """K runs of one pack: seeds 1000.., learning rates cycling through LEARNING_RATES, no dropout."""
    a = ARCHS[arch]
    return [RunSpec(run_id=f"bench{tag}-{a['arch_label']}-w{width}-k{k}-m{i:03d}", arch=a["arch"],
                    arch_label=a["arch_label"], depth=a["depth"], batchnorm=a["batchnorm"], dataset=dataset,
                    image_size=image_size, width=width, learning_rate=LEARNING_RATES[i % len(LEARNING_RATES)],
                    dropout=0.0, weight_decay=0.0, seed=1000 + i, epochs=epochs, batch_size=batch_size,
                    momentum=0.9, crop_padding=crop_padding, flip=flip, subepoch_snapshots=1, subepoch_epochs=1,
                    dtype="float32")
            for i in range(k)]


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


class Probe:
    """Wraps a PackTrainer's ``_snapshot`` and ``_sgd_step`` (instance attributes; the trainer's own code runs
    unchanged) to take timestamps, enforce a deadline and end ``fit`` early."""

    def __init__(self, trainer: PackTrainer, device: torch.device, deadline: float, *, warmup_steps: int | None = None,
                 max_steps: int = 0, max_seconds: float = 0.0, profile_after_snapshots: int | None = None,
                 profile_steps: int = 0, steps_per_epoch: int | None = None, timed_epochs=()):
        self.device, self.deadline = device, deadline
        # epoch mode: the span from the end of step 1 to the end of the last step of each timed epoch
        self.steps_per_epoch, self.timed_epochs = steps_per_epoch, set(timed_epochs)
        self.step_spans: dict[int, list[float]] = {}
        self.snap_times: list[float] = []
        self.steps = 0
        self.warmup_steps, self.max_steps, self.max_seconds = warmup_steps, max_steps, max_seconds
        self.t0 = self.t1 = None
        self.timed_steps = 0
        self.profile_after, self.profile_steps = profile_after_snapshots, profile_steps
        self._prof = None
        self._prof_count = 0
        self.profile: dict | None = None
        orig_snap, orig_sgd = trainer._snapshot, trainer._sgd_step

        def snapshot(*args, **kwargs):
            orig_snap(*args, **kwargs)
            sync(device)
            self.snap_times.append(now())

        def sgd_step():
            orig_sgd()
            self.steps += 1
            self._after_step()

        trainer._snapshot, trainer._sgd_step = snapshot, sgd_step

    def _after_step(self) -> None:
        t = now()
        if t > self.deadline:
            raise _OverTime()
        if self.steps_per_epoch and self.steps_per_epoch > 1:
            epoch, in_epoch = divmod(self.steps - 1, self.steps_per_epoch)
            if epoch + 1 in self.timed_epochs and in_epoch in (0, self.steps_per_epoch - 1):
                sync(self.device)
                self.step_spans.setdefault(epoch + 1, []).append(now())
        if self.warmup_steps is not None:  # steps mode
            if self.steps == self.warmup_steps:
                sync(self.device)
                self.t0 = now()
            elif self.steps > self.warmup_steps:
                n = self.steps - self.warmup_steps
                if n >= self.max_steps or t - self.t0 >= self.max_seconds:
                    sync(self.device)
                    self.t1, self.timed_steps = now(), n
                    raise _Stop()
        if self.profile_after is not None and len(self.snap_times) >= self.profile_after and self.profile_steps:
            if self._prof is None:
                sync(self.device)
                acts = [torch.profiler.ProfilerActivity.CPU]
                if self.device.type == "cuda":
                    acts.append(torch.profiler.ProfilerActivity.CUDA)
                self._prof = torch.profiler.profile(activities=acts)
                self._prof.start()
                self._prof_t0 = now()
            else:
                self._prof_count += 1
                if self._prof_count >= self.profile_steps:
                    sync(self.device)
                    wall = now() - self._prof_t0
                    self._prof.stop()
                    try:
                        self.profile = _kernel_summary(self._prof, self._prof_count)
                        self.profile["profiled_wall_s_per_step"] = wall / self._prof_count
                    except Exception as err:  # profiler APIs move between torch versions
                        self.profile = {"error": repr(err)}
                    raise _Stop()


def _member_est(spec: RunSpec, info: DatasetInfo) -> int:
    return int(member_memory_bytes(spec, info))


# --------------------------------------------------------------------------------------------------------- #
# the three loops


def measure_trainer(specs: list[RunSpec], train: ImageData, test: ImageData, info: DatasetInfo, device: torch.device,
                    deadline: float, *, profile_steps: int = 0, repeats: int = 1) -> dict:
    """Epoch-mode measurement of PackTrainer.fit (see module docstring): epoch 1 warms up, the next `repeats`
    epochs are timed one by one, and the fastest counts (all are kept in ``seconds_all``)."""
    k = len(specs)
    n = len(train)
    steps_per_epoch = math.ceil(n / specs[0].batch_size)
    profile_steps = min(profile_steps, steps_per_epoch - 1) if profile_steps else 0
    epochs = 1 + repeats + (1 if profile_steps else 0)  # the last one profiled for a few steps, if asked
    specs = [RunSpec.from_dict({**s.to_dict(), "epochs": epochs}) for s in specs]
    out = Path(tempfile.mkdtemp(prefix="netdyn-bench-"))
    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        t_build = now()
        trainer = PackTrainer(specs, train, test, info, out, device)
        build_s = now() - t_build
        probe = Probe(trainer, device, deadline, profile_after_snapshots=2 + repeats if profile_steps else None,
                      profile_steps=profile_steps, steps_per_epoch=steps_per_epoch,
                      timed_epochs=range(2, 2 + repeats))
        try:
            trainer.fit()
        except _Stop:
            pass
        t = probe.snap_times  # [initial snapshot, end of epoch 1, end of epoch 2, ...]
        if len(t) < 2 + repeats:
            raise RuntimeError(f"fit() ended after {len(t) - 1} epochs (every member diverged?)")
        all_s = [t[i + 1] - t[i] for i in range(1, 1 + repeats)]
        seconds = min(all_s)
        bs = specs[0].batch_size
        rec = {"k": k, "images_timed_per_model": n, "steps_timed": steps_per_epoch, "seconds": seconds,
               "seconds_all": all_s,
               "images_per_s_per_model": n / seconds, "images_per_s_total": k * n / seconds,
               "build_seconds": build_s, "warmup_epoch_seconds": t[1] - t[0]}
        spans = [v[1] - v[0] for v in probe.step_spans.values() if len(v) == 2]
        if spans:  # steps 2..last of the fastest timed epoch: the training loop without per-epoch work
            steps_s = min(spans)
            rec.update(steps_only_seconds=steps_s, steps_only_images_per_s_per_model=(n - bs) / steps_s,
                       step_seconds=steps_s / (steps_per_epoch - 1),
                       epoch_overhead_seconds=max(0.0, seconds - steps_s * n / (n - bs)))
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
            rec.update(peak_mem_bytes=peak, peak_mem_per_member_bytes=peak / k,
                       peak_mem_above_data_per_member_bytes=(peak - base) / k)
        if probe.profile is not None:
            prof = dict(probe.profile)
            if "kernel_us_per_step" in prof and device.type == "cuda":
                prof["gpu_busy_fraction"] = prof["kernel_us_per_step"] * 1e-6 / (seconds / steps_per_epoch)
            rec["profile"] = prof
        del trainer, probe
        return rec
    finally:
        shutil.rmtree(out, ignore_errors=True)
        _cleanup(device)


def measure_seed_loop(arch: str, width: int, root: Path, device: torch.device, workers: int, deadline: float,
                      batch_size: int = 128, repeats: int = 1) -> dict:
    """The seed-style loop (c): one warm-up epoch, then `repeats` timed epochs; the fastest counts."""
    import torchvision
    import torchvision.transforms as T
    from torch.utils.data import DataLoader

    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(CIFAR_MEAN, CIFAR_STD)])
    with md5_check_is_exists():
        ds = torchvision.datasets.CIFAR10(str(root), train=True, transform=tf, download=False)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda")
    a = ARCHS[arch]
    torch.manual_seed(0)
    model = build_model(a["arch"], width=width, depth=a["depth"], batchnorm=a["batchnorm"], in_channels=3,
                        num_classes=10, image_size=32).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    def epoch() -> int:
        model.train()
        seen, running, correct = 0, 0.0, 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad()
            out = model(x)
            loss = criterion(out, y)
            loss.backward()
            opt.step()
            running += loss.item()
            correct += (out.argmax(1) == y).sum().item()
            seen += y.size(0)
            if now() > deadline:
                raise _OverTime()
        return seen

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t = now()
    epoch()  # warm-up
    warm = now() - t
    all_s = []
    for _ in range(repeats):
        sync(device)
        t0 = now()
        n = epoch()
        sync(device)
        all_s.append(now() - t0)
    seconds = min(all_s)
    rec = {"k": 1, "images_timed_per_model": n, "steps_timed": math.ceil(n / batch_size), "seconds": seconds,
           "seconds_all": all_s,
           "images_per_s_per_model": n / seconds, "images_per_s_total": n / seconds, "workers": workers,
           "warmup_epoch_seconds": warm}
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        rec.update(peak_mem_bytes=peak, peak_mem_per_member_bytes=peak)
    del model, opt, loader, ds
    _cleanup(device)
    return rec


def measure_steps(specs: list[RunSpec], train: ImageData, test: ImageData, eval_data: ImageData, info: DatasetInfo,
                  device: torch.device, deadline: float, *, warmup: int, max_steps: int, max_seconds: float) -> dict:
    """Steps-mode measurement for the projection: time per training step of one pack, plus its evaluation,
    snapshot and checkpoint costs."""
    k = len(specs)
    out = Path(tempfile.mkdtemp(prefix="netdyn-proj-"))
    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t_build = now()
        trainer = PackTrainer(specs, train, test, info, out, device)
        build_s = now() - t_build
        probe = Probe(trainer, device, deadline, warmup_steps=warmup, max_steps=max_steps, max_seconds=max_seconds)
        try:
            trainer.fit()
            raise RuntimeError("fit() ended before the measurement finished: data set too small for the steps")
        except _Stop:
            pass
        step_s = (probe.t1 - probe.t0) / probe.timed_steps
        evaluate(trainer.model, eval_data, k)  # warm-up
        sync(device)
        t = now()
        evaluate(trainer.model, eval_data, k)
        sync(device)
        eval_s = now() - t
        t = now()
        trainer._snapshot(1.0, torch.zeros(2, k, device=device), 1)  # tiny test set: mostly trajectory rows
        snap_s = now() - t
        t = now()
        for i in range(k):
            trainer._save_checkpoint(i)
        ckpt_s = now() - t
        rec = {"k": k, "step_seconds": step_s, "timed_steps": probe.timed_steps,
               "images_per_s_per_model": specs[0].batch_size / step_s,
               "images_per_s_total": k * specs[0].batch_size / step_s,
               "eval_images_per_s_per_model": len(eval_data) / eval_s, "snapshot_io_seconds": snap_s,
               "checkpoint_seconds": ckpt_s, "build_seconds": build_s}
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
            rec.update(peak_mem_bytes=peak, peak_mem_per_member_bytes=peak / k)
        del trainer, probe
        return rec
    finally:
        shutil.rmtree(out, ignore_errors=True)
        _cleanup(device)


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def _reason(why: str, err: BaseException) -> str:
    """A skip reason; the traceback goes to stderr (the GPU log), since a one-shot device run must go on."""
    import traceback

    traceback.print_exception(err, file=sys.stderr)
    return f"{why}: {type(err).__name__}: {err}"[:400]


# --------------------------------------------------------------------------------------------------------- #
# projection of a study config


def _load_study(config) -> tuple[dict, bool]:
    """A study config dict (validated with defaults when jsonschema is available)."""
    import yaml

    if isinstance(config, dict):
        cfg = json.loads(json.dumps(config))
    else:
        with open(config) as f:
            cfg = yaml.safe_load(f)
    if JSONSCHEMA_STUB:
        return cfg, False
    from netdyn.config import validate_config

    return validate_config(cfg), True


def project(config, device: torch.device, *, budget_s: float, warmup: int = 5, max_steps: int = 200,
            max_seconds: float = 1.0, eval_images: int = 2048, log=print, grace_s: float = 60.0,
            strict: bool = False) -> dict:
    """Projected wall time of training every run of `config` on this device, one Snakemake job at a time
    (the workflow asks for resources gpu=1 per training job).

    For each (arch, data set, width): runs -> training groups (group_size for this device) -> packs
    (pack_plan with the config's `pack` setting, then at most 128 members). Each distinct pack size K is
    timed with :func:`measure_steps` on synthetic data of the data set's real shape and size (fashionmnist:
    1x32x32 at image_size 32, mnist-like; tensors built directly, no files). A pack costs
    epochs*(steps_per_epoch*t_step + t_checkpoints) + n_snapshots*(n_test/eval_rate + t_snapshot_io).
    When the budget runs out, a pack size is estimated from the nearest measured K of the same
    (arch, data set, width), else from the same (arch, width) on the other data set; such rows say so.
    """
    cfg, validated = _load_study(config)
    runs = expand_grid(cfg)
    dev_kind = "cuda" if device.type == "cuda" else "cpu"
    groups = training_groups(runs, group_size(cfg, dev_kind))
    pack_mode = cfg["training"].get("pack", "auto")
    combos: dict[tuple, dict] = {}
    for gid, members in groups.items():
        s = members[0]
        key = (s.arch_label, s.dataset, s.width)
        combos.setdefault(key, {"groups": []})["groups"].append(members)
    results: dict[tuple, dict] = {}  # (combo, K) -> measurement
    plans: dict[tuple, list[list[RunSpec]]] = {}
    order = []
    for key, c in combos.items():
        s = c["groups"][0][0]
        info = dataset_info(s.dataset, s.image_size)
        # the data set occupies the device while pack_plan reads the free memory, as in train_runs
        train = torch.empty(info.n_train, info.in_channels, info.image_size, info.image_size, device=device)
        try:
            packs = []
            for g in c["groups"]:
                for p in pack_plan(g, info, device, pack_mode, {}):
                    packs += [p[i:i + MAX_PACK] for i in range(0, len(p), MAX_PACK)]
        finally:
            del train
            _cleanup(device)
        plans[key] = packs
        c["info"] = info
        c["flops"] = train_flops_per_image(s, info)
        sizes = sorted({len(p) for p in packs}, reverse=True)
        for rank, k in enumerate(sizes):
            order.append((rank, -c["flops"] * k, key, k))
    order.sort()
    skipped = []
    end = now() + budget_s  # planning above is not counted
    for _rank, _cost, key, k in order:
        if now() > end:
            skipped.append({"combo": list(key), "k": k, "reason": "projection budget spent"})
            continue
        c = combos[key]
        info = c["info"]
        specs = next(p for p in plans[key] if len(p) == k)
        n_needed = (warmup + max_steps + 2) * specs[0].batch_size
        train = synthetic_image_data(max(info.n_train, n_needed), info.in_channels, info.image_size, device, seed=1)
        test = synthetic_image_data(64, info.in_channels, info.image_size, device, seed=2)
        eval_data = synthetic_image_data(min(eval_images, info.n_test), info.in_channels, info.image_size, device,
                                         seed=3)
        try:
            rec = measure_steps(specs, train, test, eval_data, info, device, end + grace_s, warmup=warmup,
                                max_steps=max_steps, max_seconds=max_seconds)
            results[(key, k)] = rec
            log(f"  projection {key[0]:>9} {key[1]:>12} w{key[2]} K={k:<3} {rec['images_per_s_per_model']:>10.0f} "
                f"img/s/model  step {rec['step_seconds'] * 1e3:.2f} ms")
        except _OverTime:
            skipped.append({"combo": list(key), "k": k, "reason": "projection budget spent mid-measurement"})
        except Exception as err:  # an OOM at the plan's K would also crash real training: keep it visible
            if strict and not _is_oom(err):
                raise
            why = "out of memory at pack_plan's K" if _is_oom(err) else "error"
            skipped.append({"combo": list(key), "k": k, "reason": _reason(why, err)})
        finally:
            del train, test, eval_data
            _cleanup(device)

    rows, total_h = [], 0.0
    for key, c in combos.items():
        info, packs = c["info"], plans[key]
        s0 = packs[0][0]
        steps_per_epoch = math.ceil(info.n_train / s0.batch_size)
        n_snap = 1 + sum(len(snapshot_steps(s0, steps_per_epoch, e)) for e in range(1, s0.epochs + 1))
        hours, sources = 0.0, []
        for p in packs:
            k = len(p)
            rec, scale, src = results.get((key, k)), 1.0, "measured"
            if rec is None:
                # nearest measured K of this combo, else of the same (arch, width) on another data set;
                # conservative: a smaller pack is assumed to take as long per step as the measured one, a
                # larger pack proportionally longer
                cands = sorted((ck != key, abs(kk - k), ck, kk) for (ck, kk) in results
                               if ck == key or (ck[0] == key[0] and ck[2] == key[2]))
                if cands:
                    _, _, ck, kk = cands[0]
                    rec, scale = results[(ck, kk)], max(1.0, k / kk)
                    src = f"estimated from K={kk}" + ("" if ck == key else f" on {ck[1]}")
            if rec is None:
                sources.append({"k": k, "source": "not measured"})
                continue
            step_s = rec["step_seconds"] * scale
            eval_rate = rec["eval_images_per_s_per_model"] / scale
            per_member = k / rec["k"]
            train_s = s0.epochs * (steps_per_epoch * step_s + rec["checkpoint_seconds"] * per_member)
            eval_s = n_snap * (info.n_test / eval_rate + rec["snapshot_io_seconds"] * per_member)
            hours += (train_s + eval_s) / 3600
            sources.append({"k": k, "source": src, "train_hours": train_s / 3600, "eval_hours": eval_s / 3600})
        total_h += hours
        meas = [results[(key, k)] for k in sorted({len(p) for p in packs}) if (key, k) in results]
        rows.append({"arch": key[0], "dataset": key[1], "width": key[2], "runs": sum(len(p) for p in packs),
                     "pack_sizes": [len(p) for p in packs], "epochs": s0.epochs, "n_train": info.n_train,
                     "n_test": info.n_test, "snapshots_per_run": n_snap, "train_flops_per_image": c["flops"],
                     "measured": [{kk: v for kk, v in m.items()} for m in meas], "packs": sources, "hours": hours})
    return {"config": str(config) if not isinstance(config, dict) else "<dict>", "config_validated": validated,
            "device": str(device), "runs": len(runs), "group_size": group_size(cfg, dev_kind), "pack": pack_mode,
            "max_pack": MAX_PACK, "data": "synthetic tensors of each data set's real shape and size (fashionmnist "
            "1x32x32 at the config's image_size 32), no files", "warmup_steps": warmup, "max_steps": max_steps,
            "max_seconds": max_seconds, "eval_images": eval_images, "rows": rows, "skipped": skipped,
            "total_hours": total_h,
            "complete": not any(p["source"] == "not measured" for r in rows for p in r["packs"]),
            "estimated_packs": sum(p["source"].startswith("estimated") for r in rows for p in r["packs"]),
            "goal_hours": GOAL_PAPER_HOURS, "meets_goal": bool(total_h <= GOAL_PAPER_HOURS)}


# --------------------------------------------------------------------------------------------------------- #
# the benchmark


def _loadavg():
    """1/5/15-minute load averages: other processes on the machine slow the CPU numbers down."""
    with contextlib.suppress(OSError, AttributeError):
        return list(os.getloadavg())
    return None


def machine_info(device: torch.device, label: str | None) -> dict:
    import torchvision

    cpu_model = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    info = {"label": label, "platform": platform.platform(), "python": platform.python_version(),
            "cpu_model": cpu_model, "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "torch_threads": torch.get_num_threads(),
            "cuda_version": torch.version.cuda, "device": str(device), "loadavg_start": _loadavg()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=torch.cuda.get_device_name(device), gpu_memory_bytes=props.total_memory,
                    multiprocessors=props.multi_processor_count, cudnn=torch.backends.cudnn.version(),
                    cudnn_benchmark=torch.backends.cudnn.benchmark,
                    tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
    else:
        info["device_name"] = cpu_model
    return info


def _write(result: dict, out: Path | None) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=float))
    tmp.replace(out)


def _finish_ratios(records: list[dict]) -> None:
    seed = {(r["arch"], r["width"]): r["images_per_s_per_model"] for r in records if r["loop"] == "seed_loop"}
    single = {(r["arch"], r["width"]): r["images_per_s_per_model"] for r in records
              if r["loop"] == "single" and not r.get("variant")}
    for r in records:
        key = (r["arch"], r["width"])
        r["ratio_vs_seed_loop"] = r["images_per_s_per_model"] / seed[key] if key in seed else None
        r["ratio_vs_single"] = r["images_per_s_per_model"] / single[key] if key in single else None
        if "steps_only_images_per_s_per_model" in r and key in seed:
            r["steps_only_ratio_vs_seed_loop"] = r["steps_only_images_per_s_per_model"] / seed[key]
        if r.get("train_flops_per_image"):
            r["achieved_tflops"] = r["images_per_s_total"] * r["train_flops_per_image"] / 1e12


def _goals(records: list[dict], device: torch.device) -> dict:
    goals = {}
    for arch, target in GOALS_X_SEED.items():
        rs = [r for r in records if r["arch"] == arch and r["loop"] == "batched" and not r.get("variant")
              and r["ratio_vs_seed_loop"]]
        if not rs:
            continue
        by_width = {}
        for r in rs:
            if r["ratio_vs_seed_loop"] > by_width.get(r["width"], {}).get("ratio_vs_seed_loop", 0):
                by_width[r["width"]] = r
        goals[arch] = {"target_x_seed_loop": target, "applies_to": "one H100 (cuda)", "device": str(device),
                       "best_by_width": {w: {"k": r["k"], "ratio_vs_seed_loop": r["ratio_vs_seed_loop"],
                                             "steps_only_ratio_vs_seed_loop": r.get("steps_only_ratio_vs_seed_loop")}
                                         for w, r in sorted(by_width.items())},
                       "met_at_every_width": all(r["ratio_vs_seed_loop"] >= target for r in by_width.values())}
    return goals


def run_benchmark(*, device: str = "cpu", archs=("lenet", "vgg"), widths=(1,), ks=(1, 4), images: int = 1500,
                  test_images: int = 256, workers: int | None = None, time_budget: float | None = None,
                  config_grace: float = 60.0, seed_loop: bool = True, pack_check: bool | None = None,
                  pack_check_ks=(1, 4, 8), project_config=None, project_budget: float = 180.0,
                  proj_warmup: int = 5, proj_steps: int = 200, proj_seconds: float = 1.0, proj_eval_images: int = 2048,
                  profile_steps: int = 0, ab_flags: bool = False, ab_budget: float = 60.0, out: Path | None = None,
                  machine_label: str | None = None, log=print, extra_settings: dict | None = None,
                  repeats: int = 1, strict: bool = False, ab_widths=None) -> dict:
    """Run the benchmark; returns (and, with `out`, keeps writing) the JSON-ready result."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda, but torch.cuda.is_available() is False")
    workers = (4 if dev.type == "cuda" else 1) if workers is None else workers
    pack_check = (dev.type == "cpu") if pack_check is None else pack_check
    ks = sorted(set(int(k) for k in ks) | {1})
    start = now()
    budget_end = start + time_budget if time_budget else float("inf")
    result = {
        "benchmark": "bench/train_throughput.py",
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine_info(dev, machine_label),
        "settings": {"device": device, "archs": list(archs), "widths": list(widths), "ks": ks, "images": images,
                     "test_images": test_images, "batch_size": 128, "repeats": repeats, "seed_loop_workers": workers,
                     "seed_loop_pin_memory": dev.type == "cuda", "time_budget_s": time_budget,
                     "config_grace_s": config_grace, "profile_steps": profile_steps, "jsonschema_stub": JSONSCHEMA_STUB,
                     "data": "synthetic CIFAR-10-format files (seeded uint8, 10 classes); seed loop via "
                             "torchvision.datasets.CIFAR10, trainer via netdyn.data.load_dataset('cifar10')",
                     "members": "seeds 1000+i, learning rates cycling " + str(LEARNING_RATES) + ", dropout 0, "
                                "momentum 0.9, crop padding 4, flip",
                     "what_is_timed": WHAT_IS_TIMED, **(extra_settings or {})},
        "records": [], "skipped": [], "anchors": ANCHORS,
    }
    records, skipped = result["records"], result["skipped"]
    log(f"device {dev} ({result['machine']['device_name']}), torch {torch.__version__}, "
        f"{result['machine']['cpu_count']} CPUs, {torch.get_num_threads()} torch threads")

    with tempfile.TemporaryDirectory(prefix="netdyn-bench-data-") as tmp:
        root = Path(tmp)
        write_cifar10(root, images, test_images, seed=0)
        with md5_check_is_exists():
            train, test, info = load_dataset("cifar10", root)
        train_d, test_d = train.to(dev), test.to(dev)
        result["settings"]["n_train"], result["settings"]["n_test"] = len(train_d), len(test_d)

        def over_budget() -> bool:
            return now() > budget_end

        def add(rec: dict) -> None:
            records.append(rec)
            _finish_ratios(records)
            result["goals"] = _goals(records, dev)
            result["elapsed_s"] = now() - start
            _write(result, out)
            r = rec
            extra = f"  peak {r['peak_mem_per_member_bytes'] / 2**20:.0f} MiB/member" if "peak_mem_per_member_bytes" \
                in r else ""
            log(f"  {r['loop'] + (('+' + r['variant']) if r.get('variant') else ''):<28} {r['arch']:>5} w{r['width']} "
                f"K={r['k']:<3} {r['images_per_s_per_model']:>10.0f} img/s/model {r['images_per_s_total']:>11.0f} "
                f"img/s total{extra}")

        def skip(loop, arch, width, k, reason):
            skipped.append({"loop": loop, "arch": arch, "width": width, "k": k, "reason": reason})
            _write(result, out)
            log(f"  skipped {loop} {arch} w{width} K={k}: {reason}")

        for width in widths:  # width-major: both architectures at the first width come first
            for arch in archs:
                spec1 = bench_specs(arch, width, 1)[0]
                flops = train_flops_per_image(spec1, info)
                est = _member_est(spec1, info)
                common = {"arch": arch, "arch_label": ARCHS[arch]["arch_label"], "width": width,
                          "train_flops_per_image": flops}
                if seed_loop:
                    if over_budget():
                        skip("seed_loop", arch, width, 1, "time budget spent")
                    else:
                        try:
                            rec = measure_seed_loop(arch, width, root, dev, workers, budget_end + config_grace,
                                                    repeats=repeats)
                            add({"loop": "seed_loop", **common, **rec})
                        except _OverTime:
                            skip("seed_loop", arch, width, 1, "time budget spent mid-measurement")
                        except Exception as err:
                            if strict:
                                raise
                            skip("seed_loop", arch, width, 1, _reason("error", err))
                for k in ks:
                    loop = "single" if k == 1 else "batched"
                    if over_budget():
                        skip(loop, arch, width, k, "time budget spent")
                        continue
                    if dev.type == "cuda":
                        free, _ = torch.cuda.mem_get_info(dev)
                        if k * est > free:
                            skip(loop, arch, width, k, f"memory: pack_plan's estimate {k} x {est / 2**20:.0f} MiB "
                                                       f"> {free / 2**20:.0f} MiB free")
                            continue
                    try:
                        rec = measure_trainer(bench_specs(arch, width, k), train_d, test_d, info, dev,
                                              budget_end + config_grace, profile_steps=profile_steps,
                                              repeats=repeats)
                        add({"loop": loop, **common, "est_member_memory_bytes": est, **rec})
                    except _OverTime:
                        skip(loop, arch, width, k, "time budget spent mid-measurement")
                    except Exception as err:
                        if strict and not _is_oom(err):
                            raise
                        _cleanup(dev)
                        skip(loop, arch, width, k, _reason("out of memory" if _is_oom(err) else "error", err))

        if ab_flags and dev.type == "cuda":
            ab_end = now() + ab_budget
            result["settings"]["ab_flags"] = "re-measure the largest K per (arch, width in ab_widths) with " \
                                             "cudnn.benchmark=True, then also with TF32 matmuls " \
                                             "(set_float32_matmul_precision('high'))"
            for arch in archs:
                for width in (ab_widths or widths[:1]):
                    done = [r for r in records if r["loop"] == "batched" and r["arch"] == arch and r["width"] == width]
                    if not done:
                        continue
                    k = max(r["k"] for r in done)
                    base = next(r for r in done if r["k"] == k)
                    for variant, tf32 in (("cudnn_benchmark", False), ("cudnn_benchmark+tf32_matmul", True)):
                        if now() > ab_end:
                            skip("batched+" + variant, arch, width, k, "A/B budget spent")
                            continue
                        old = (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision())
                        torch.backends.cudnn.benchmark = True
                        torch.set_float32_matmul_precision("high" if tf32 else "highest")
                        try:
                            rec = measure_trainer(bench_specs(arch, width, k), train_d, test_d, info, dev,
                                                  ab_end + config_grace, repeats=repeats)
                            add({"loop": "batched", "variant": variant,
                                 **{kk: base[kk] for kk in ("arch", "arch_label", "width", "train_flops_per_image")},
                                 **rec, "speedup_vs_default": rec["images_per_s_per_model"]
                                 / base["images_per_s_per_model"]})
                        except _OverTime:
                            skip("batched+" + variant, arch, width, k, "A/B budget spent mid-measurement")
                        except Exception as err:
                            if strict:
                                raise
                            _cleanup(dev)
                            skip("batched+" + variant, arch, width, k, _reason("error", err))
                        finally:
                            torch.backends.cudnn.benchmark = old[0]
                            torch.set_float32_matmul_precision(old[1])
        del train_d, test_d
        _cleanup(dev)

    if pack_check:
        result["pack_check"] = cpu_pack_check(dev, archs, pack_check_ks, log=log, repeats=repeats)
        _write(result, out)

    if project_config is not None:
        log(f"projection of {project_config} on {dev} (budget {project_budget:.0f} s)")
        result["projection"] = project(project_config, dev, budget_s=project_budget, warmup=proj_warmup,
                                       max_steps=proj_steps, max_seconds=proj_seconds, eval_images=proj_eval_images,
                                       log=log, grace_s=config_grace, strict=strict)
        p = result["projection"]
        log(f"  projected total: {p['total_hours']:.2f} h for {p['runs']} runs "
            f"({'complete' if p['complete'] else 'INCOMPLETE'}; goal <= {GOAL_PAPER_HOURS} h on one H100)")
    result["elapsed_s"] = now() - start
    result["machine"]["loadavg_end"] = _loadavg()
    _write(result, out)
    return result


def cpu_pack_check(dev: torch.device, archs, ks, log=print, repeats: int = 1) -> dict:
    """Is packing slower per model than training alone on this device? On the default study's data (sklearn
    digits at 16x16, crop padding 2, no flip), K in `ks`, width 1, PackTrainer epoch-mode timing."""
    train, test, info = load_dataset("digits", image_size=16)
    train_d, test_d = train.to(dev), test.to(dev)
    rows = []
    for arch in archs:
        base = None
        for k in ks:
            specs = bench_specs(arch, 1, k, dataset="digits", image_size=16, crop_padding=2, flip=False, tag="-digits")
            rec = measure_trainer(specs, train_d, test_d, info, dev, float("inf"), repeats=repeats)
            base = rec["images_per_s_per_model"] if k == 1 else base
            row = {"arch": arch, "width": 1, "k": k, "images_per_s_per_model": rec["images_per_s_per_model"],
                   "images_per_s_total": rec["images_per_s_total"], "seconds": rec["seconds"],
                   "images_timed_per_model": rec["images_timed_per_model"],
                   "per_model_vs_k1": rec["images_per_s_per_model"] / base if base else None}
            rows.append(row)
            log(f"  pack check (digits 16x16) {arch:>5} K={k:<2} {row['images_per_s_per_model']:>9.0f} img/s/model "
                f"({row['per_model_vs_k1']:.2f}x K=1)")
    slower = {arch: all(r["per_model_vs_k1"] < 1.0 for r in rows if r["arch"] == arch and r["k"] > 1) for arch in archs}
    return {"data": "sklearn digits via netdyn.data.load_dataset('digits', image_size=16): "
                    f"{len(train)} train / {len(test)} test images, crop padding 2, no flip",
            "device": str(dev), "rows": rows, "packing_slower_per_model": slower,
            "conclusion": "packing costs per-model speed on this device" if all(slower.values())
            else "packing does not cost per-model speed for every architecture here"}


def print_table(result: dict) -> None:
    m = result["machine"]
    print(f"\n{m['device_name']} | {m['cpu_count']} CPUs | {m['torch_threads']} torch threads | torch {m['torch']} | "
          f"N={result['settings']['n_train']} images")
    head = f"{'loop':<30}{'arch':>6}{'w':>3}{'K':>5}{'img/s/model':>13}{'img/s total':>13}{'x seed':>8}" \
           f"{'x single':>9}{'steps-only':>12}{'MiB/member':>11}{'TFLOP/s':>9}"
    print(head)
    print("-" * len(head))
    print("(img/s/model: whole timed epoch incl. per-epoch checkpoints/snapshot; steps-only: its training steps; "
          "x seed / x single: per-model ratios)")
    for r in result["records"]:
        loop = r["loop"] + ("+" + r["variant"] if r.get("variant") else "")
        fmt = lambda v, f: (f.format(v) if v is not None else "-")  # noqa: E731
        mem = r.get("peak_mem_per_member_bytes")
        print(f"{loop:<30}{r['arch']:>6}{r['width']:>3}{r['k']:>5}{r['images_per_s_per_model']:>13,.0f}"
              f"{r['images_per_s_total']:>13,.0f}{fmt(r.get('ratio_vs_seed_loop'), '{:.2f}'):>8}"
              f"{fmt(r.get('ratio_vs_single'), '{:.2f}'):>9}"
              f"{fmt(r.get('steps_only_images_per_s_per_model'), '{:,.0f}'):>12}"
              f"{fmt(mem / 2**20 if mem else None, '{:.0f}'):>11}"
              f"{fmt(r.get('achieved_tflops'), '{:.3f}'):>9}")
    for s in result["skipped"]:
        print(f"skipped: {s['loop']} {s['arch']} w{s['width']} K={s['k']}: {s['reason']}")
    if "pack_check" in result:
        print("\npack check (" + result["pack_check"]["data"] + "):")
        for r in result["pack_check"]["rows"]:
            print(f"  {r['arch']:>5} K={r['k']:<2} {r['images_per_s_per_model']:>9,.0f} img/s/model "
                  f"({r['per_model_vs_k1']:.2f}x K=1)")
    if "projection" in result:
        p = result["projection"]
        print(f"\nprojection of {p['config']} on {p['device']}: {p['runs']} runs")
        for r in p["rows"]:
            ks = sorted({x for x in r["pack_sizes"]}, reverse=True)
            rate = ", ".join(f"K={mm['k']}: {mm['images_per_s_per_model']:,.0f}" for mm in r["measured"])
            print(f"  {r['arch']:>9} {r['dataset']:>12} w{r['width']}  packs {ks}  img/s/model [{rate}]  "
                  f"{r['hours']:.3f} h")
        print(f"  total {p['total_hours']:.2f} h ({'complete' if p['complete'] else 'INCOMPLETE'}, "
              f"{p['estimated_packs']} packs estimated from other K); "
              f"goal <= {p['goal_hours']} h: {'met' if p['meets_goal'] else 'not met'}")
        for s in p["skipped"]:
            print(f"  skipped {s['combo']} K={s['k']}: {s['reason']}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--quick", action="store_true", help="CPU/CI sizes: 1500 images, K in {1, 4}, width 1")
    ap.add_argument("--archs", nargs="+", choices=sorted(ARCHS), default=None)
    ap.add_argument("--widths", nargs="+", type=int, default=None)
    ap.add_argument("--ks", nargs="+", type=int, default=None, help="pack sizes (K=1 is always measured)")
    ap.add_argument("--images", type=int, default=None, help="training images = images timed per model")
    ap.add_argument("--test-images", type=int, default=256)
    ap.add_argument("--workers", type=int, default=None, help="seed-loop DataLoader workers (default 4 on cuda, "
                                                              "1 on cpu)")
    ap.add_argument("--time-budget", type=float, default=None,
                    help="seconds for the main table; later configs are skipped (and recorded as such)")
    ap.add_argument("--config-grace", type=float, default=60.0,
                    help="a config begun within the budget is aborted this many seconds after it")
    ap.add_argument("--no-seed-loop", action="store_true")
    ap.add_argument("--pack-check", dest="pack_check", action="store_true", default=None,
                    help="per-model speed of K=1/4/8 packs on 16x16 digits (default: on for cpu)")
    ap.add_argument("--no-pack-check", dest="pack_check", action="store_false")
    ap.add_argument("--project", default=None, help="study config to project, e.g. config/paper.yaml")
    ap.add_argument("--project-budget", type=float, default=180.0, help="seconds for the projection measurements")
    ap.add_argument("--proj-warmup", type=int, default=5)
    ap.add_argument("--proj-steps", type=int, default=200)
    ap.add_argument("--proj-seconds", type=float, default=1.0)
    ap.add_argument("--proj-eval-images", type=int, default=2048)
    ap.add_argument("--profile-steps", type=int, default=0,
                    help="after the timed epoch, profile this many steps (kernel time, kernels per step)")
    ap.add_argument("--ab-flags", action="store_true",
                    help="cuda: re-measure the largest K with cudnn.benchmark, and with TF32 matmuls")
    ap.add_argument("--ab-budget", type=float, default=60.0)
    ap.add_argument("--ab-widths", nargs="+", type=int, default=None, help="widths for --ab-flags (default: the "
                                                                            "first of --widths)")
    ap.add_argument("--strict", action="store_true", help="stop at the first error instead of recording it")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: torch's). The default study trains with 1 thread per job "
                         "(config.yaml training.threads); on a shared, loaded CPU 2 threads can collapse (OpenMP "
                         "oversubscription)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed epochs per config after the warm-up; the fastest counts (default 1, quick 2)")
    ap.add_argument("--machine-label", default=None, help="free text naming the machine, kept in the JSON")
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    quick = a.quick
    res = run_benchmark(
        device=a.device, archs=a.archs or ["lenet", "vgg"], widths=a.widths or ([1] if quick else [1, 4]),
        ks=a.ks or ([1, 4] if quick else [1, 8, 32, 128]), images=a.images or (1500 if quick else 50000),
        test_images=a.test_images, workers=a.workers, time_budget=a.time_budget, config_grace=a.config_grace,
        seed_loop=not a.no_seed_loop, pack_check=a.pack_check, project_config=a.project,
        project_budget=a.project_budget, proj_warmup=a.proj_warmup, proj_steps=a.proj_steps,
        proj_seconds=a.proj_seconds, proj_eval_images=a.proj_eval_images, profile_steps=a.profile_steps,
        ab_flags=a.ab_flags, ab_budget=a.ab_budget, out=a.out, machine_label=a.machine_label,
        repeats=a.repeats or (2 if quick else 1), strict=a.strict, ab_widths=a.ab_widths,
        extra_settings={"quick": quick, "argv": sys.argv[1:] if argv is None else list(argv)})
    print_table(res)
    if a.out:
        print(f"\nwrote {a.out}")
    return res


if __name__ == "__main__":
    main()
