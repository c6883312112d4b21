"""Training: many grid points at once, each identical to its own run.

One loop trains a *pack* of K runs that share architecture, width and data set (they may differ in seed,
learning rate, dropout, weight decay and momentum); a single run is a pack of one. Each member draws its
own initialisation, minibatch order, crop offsets, flips and dropout masks from its own seed alone, so
its trajectory does not depend on who it was packed with. The data set lives on the device and
augmentation runs there.

Per run, under ``<out>/<run id>/``: ``config.json`` (run settings, study config, versions),
``curves.csv`` (one row per snapshot), ``trajectory.bin`` + ``trajectory.json`` (see
:mod:`netdyn.trajectory`), ``result.json`` once finished. While training, ``checkpoint.safetensors`` +
``checkpoint.json`` hold the last completed epoch (weights, buffers, momentum, curves) so a killed job
resumes there and ends with the same numbers as an uninterrupted run.

A run whose minibatch loss turns NaN/inf (or exceeds ``DIVERGED_LOSS``) is *diverged*: it stops updating at once (without disturbing the others)
and is recorded with the accuracy measured at that point.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from . import __version__
from .config import RunSpec, default_precision, packs_runs
from .data import DatasetInfo, ImageData, load_dataset
from .models import build_model
from .packed import load_member_state, member_state, pack_inputs, pack_models
from .precision import autocast, set_tf32
from .trajectory import TrajectoryWriter

log = logging.getLogger("netdyn.train")

DIVERGED_LOSS = 1e6  # a minibatch loss above this (or NaN/inf) marks a run diverged; chance level is ~2.3

CURVE_COLUMNS = ["snapshot", "epoch", "step", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]


class RunMismatchError(RuntimeError):
    """A run directory holds results of different settings under the same run id."""


def versions() -> dict:
    import sklearn  # noqa: F401  (recorded because later stages use it)

    return {"netdyn": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "platform": platform.platform()}


def model_kwargs(spec: RunSpec, info: DatasetInfo) -> dict:
    """build_model arguments of a run (also stored in its trajectory manifest)."""
    return {"arch": spec.arch, "width": spec.width, "depth": spec.depth, "batchnorm": spec.batchnorm,
            "in_channels": info.in_channels, "num_classes": info.num_classes, "image_size": info.image_size,
            "dropout": spec.dropout}


def init_model(spec: RunSpec, info: DatasetInfo) -> torch.nn.Module:
    """The run's initial network: PyTorch's default init under the run's seed, on the CPU."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = build_model(**model_kwargs(spec, info))
    return model.to(getattr(torch, spec.dtype))


def epoch_stream(spec: RunSpec, epoch: int, n: int) -> tuple[torch.Tensor, ...]:
    """Minibatch order, crop offsets and flips of one epoch: a function of (seed, epoch) only."""
    g = torch.Generator().manual_seed(spec.seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    offsets = torch.randint(0, 2 * spec.crop_padding + 1, (2, n), generator=g)
    flips = torch.rand(n, generator=g) < 0.5 if spec.flip else torch.zeros(n, dtype=torch.bool)
    return perm, offsets[0], offsets[1], flips


def augment(padded: torch.Tensor, idx, oy, ox, flip, size: int) -> torch.Tensor:
    """Random crop (from pre-padded images) and horizontal flip, by one gather on the device."""
    ar = torch.arange(size, device=padded.device)
    rows = oy[:, None] + ar
    cols = ox[:, None] + ar
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    ch = torch.arange(padded.shape[1], device=padded.device)
    return padded[idx[:, None, None, None], ch[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]


def snapshot_steps(spec: RunSpec, steps_per_epoch: int, epoch: int) -> dict[int, float]:
    """Step (within the epoch, 1-based) -> epoch label of every snapshot taken in `epoch` (1-based)."""
    s = spec.subepoch_snapshots if epoch <= spec.subepoch_epochs else 1
    marks = {}
    for j in range(1, s + 1):
        step = max(1, round(j * steps_per_epoch / s))
        marks[step] = epoch - 1 + j / s
    marks[steps_per_epoch] = float(epoch)
    return marks


@dataclass
class MemberState:
    """Book-keeping of one run inside a pack."""

    spec: RunSpec
    dir: Path
    writer: TrajectoryWriter
    curves: list[dict] = field(default_factory=list)
    epoch: int = 0  # completed epochs
    step: int = 0  # optimisation steps taken
    diverged_at: float | None = None
    started: float = field(default_factory=time.time)
    elapsed: float = 0.0  # seconds spent before a resume


def _run_config(spec: RunSpec, info: DatasetInfo, study: dict | None) -> dict:
    return {"run": spec.to_dict(), "model": model_kwargs(spec, info), "study_config": study,
            "versions": versions()}


def _check_same_run(run_dir: Path, spec: RunSpec) -> None:
    cfg = run_dir / "config.json"
    if cfg.exists():
        old = json.loads(cfg.read_text())["run"]
        old.setdefault("precision", default_precision(old.get("dtype", "float32")))  # made before the key existed
        diff = {k: (old.get(k), v) for k, v in spec.to_dict().items() if old.get(k) != v}
        if diff:
            raise RunMismatchError(
                f"run {spec.run_id}: {run_dir} was made with other settings {diff} (old, new); move or delete "
                "that directory to retrain it - nothing was overwritten")


@torch.no_grad()
def evaluate(model, test: ImageData, k: int, chunk: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """Test loss and accuracy of every member, on the device: shapes (K,), (K,).

    It runs in the caller's autocast context: PackTrainer evaluates under the run's precision (bf16 runs
    under bfloat16 autocast), so a run is tested in the arithmetic it trains in, and on a GPU the test pass
    gets bf16's speed too."""
    model.eval()
    loss = torch.zeros(k, device=test.x.device, dtype=torch.float64)
    correct = torch.zeros(k, device=test.x.device, dtype=torch.float64)
    b = max(64, chunk // k)  # images per forward: chunk in total over the K members
    for i in range(0, len(test), b):
        x, y = test.x[i:i + b], test.y[i:i + b]
        out = model(x.repeat(1, k, 1, 1))  # (K, b, classes)
        yk = y.expand(k, -1)
        loss += F.cross_entropy(out.transpose(1, 2), yk, reduction="none").sum(1).double()
        correct += (out.argmax(-1) == yk).sum(1).double()
    model.train()
    return loss / len(test), correct / len(test)


class TrainerHooks:
    """Callbacks of :meth:`PackTrainer.fit`, for measuring it from outside (``bench/``) without touching its
    internals. Subclass and override what you need; every method is a no-op here.

    They run on the host between the trainer's own operations, at these points of ``fit``:

    * ``on_step_end(step)``: after each optimisation step has been queued (``step`` counts all steps taken
      by the pack, 1-based), before that step's snapshot, if any;
    * ``on_snapshot_end(epoch)``: after each snapshot (test evaluation + trajectory rows; ``epoch`` is its
      label: 0.0 for the initial one, fractional for sub-epoch ones) has been written;
    * ``on_epoch_end(epoch)``: after the epoch's checkpoints and ``curves.csv`` files have been written.

    Device work may still be running when a hook is called (nothing is synchronised for it): a hook that
    reads a clock around device work calls ``torch.cuda.synchronize()`` itself. Hooks must not change the
    trainer's state; then trajectories are the same as without hooks. An exception raised in a hook ends
    ``fit`` and propagates; the run directories are then left as a killed job leaves them (resumable from
    the last checkpoint) -- this is how a benchmark stops after the steps it times.
    """

    def on_step_end(self, step: int) -> None:
        pass

    def on_snapshot_end(self, epoch: float) -> None:
        pass

    def on_epoch_end(self, epoch: int) -> None:
        pass


class PackTrainer:
    """Trains runs with equal `RunSpec.pack_key` together; see the module docstring.

    ``hooks`` (optional, a :class:`TrainerHooks`) is called at the points of ``fit`` it documents; without
    it ``fit`` makes no hook calls at all. Hooks do not change what is trained.
    """

    def __init__(self, specs: list[RunSpec], train: ImageData, test: ImageData, info: DatasetInfo,
                 out_dir: Path, device: torch.device, study: dict | None = None,
                 hooks: TrainerHooks | None = None):
        assert len({s.pack_key for s in specs}) == 1, "a pack needs equal pack keys"
        self.specs, self.info, self.device = specs, info, device
        self.k = len(specs)
        self.hooks = hooks
        self.dtype = getattr(torch, specs[0].dtype)
        self.precision = specs[0].precision  # see netdyn/precision.py
        self.members: list[MemberState] = []
        models = []
        for spec in specs:
            run_dir = out_dir / spec.run_id
            _check_same_run(run_dir, spec)
            model = init_model(spec, info)
            models.append(model)
            template = model.state_dict()
            meta = _checkpoint_meta(run_dir)
            if meta is not None:
                writer = TrajectoryWriter(run_dir, template, run_id=spec.run_id,
                                          arch=model_kwargs(spec, info), dtype=spec.dtype, resume=True)
                writer.truncate(meta["n_snapshots"])
                m = MemberState(spec, run_dir, writer, meta["curves"], meta["epoch"], meta["step"],
                                elapsed=meta["elapsed"])
            else:
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "config.json").write_text(json.dumps(_run_config(spec, info, study), indent=1))
                writer = TrajectoryWriter(run_dir, template, run_id=spec.run_id,
                                          arch=model_kwargs(spec, info), dtype=spec.dtype)
                m = MemberState(spec, run_dir, writer)
            self.members.append(m)
        epochs = {m.epoch for m in self.members}
        assert len(epochs) == 1, "members of a pack resume from the same epoch"
        self.model = pack_models([mod.to(device) for mod in models], [s.seed for s in specs]).train()
        self.params = [p for p in self.model.parameters()]
        self.momentum_bufs = [torch.zeros_like(p) for p in self.params]
        for i, m in enumerate(self.members):
            if m.epoch > 0:
                self._load_checkpoint(i)
        as_t = lambda v: torch.tensor(v, device=device, dtype=self.dtype)  # noqa: E731
        self.lr = as_t([s.learning_rate for s in specs])
        self.mom = as_t([s.momentum for s in specs])
        self.wd = as_t([s.weight_decay for s in specs])
        self.any_wd = any(s.weight_decay for s in specs)
        self.active = torch.ones(self.k, dtype=torch.bool, device=device)
        # per-parameter broadcast views, made once (the tensors behind them are updated in place)
        shapes = [(self.k,) + (1,) * (p.dim() - 1) for p in self.params]
        self._views = [(self.active.view(sh), self.lr.view(sh), self.mom.view(sh), self.wd.view(sh)) for sh in shapes]
        self.step = self.members[0].step
        names = list(self.model.state_dict())
        assert names == [t["name"] for t in self.members[0].writer.manifest["tensors"]]
        pad = specs[0].crop_padding
        self.padded = F.pad(train.x, (pad,) * 4) if pad else train.x
        self.train_y, self.test = train.y, test
        self.n = len(train)

    # -- checkpoints ---------------------------------------------------------------------------------
    def _names(self):
        return [n for n, _ in self.model.named_parameters()]

    def _save_checkpoint(self, i: int) -> None:
        m = self.members[i]
        state = {k: v.contiguous().cpu() for k, v in member_state(self.model, i).items()}
        for name, buf in zip(self._names(), self.momentum_bufs):
            state[f"momentum::{name}"] = buf[i].contiguous().cpu()
        meta = {"epoch": m.epoch, "step": m.step, "n_snapshots": m.writer.n_snapshots, "curves": m.curves,
                "elapsed": m.elapsed + time.time() - m.started}
        # the weights file carries its own book-keeping, so one rename commits both (see _checkpoint_meta)
        save_file(state, m.dir / "checkpoint.safetensors.tmp", metadata={"meta": json.dumps(meta)})
        (m.dir / "checkpoint.safetensors.tmp").replace(m.dir / "checkpoint.safetensors")
        tmp = m.dir / "checkpoint.json.tmp"
        tmp.write_text(json.dumps(meta))
        tmp.replace(m.dir / "checkpoint.json")

    def _load_checkpoint(self, i: int) -> None:
        m = self.members[i]
        state = load_file(m.dir / "checkpoint.safetensors", device=str(self.device))
        load_member_state(self.model, i, state)
        with torch.no_grad():
            for name, buf in zip(self._names(), self.momentum_bufs):
                buf[i].copy_(state[f"momentum::{name}"])

    # -- the loop ------------------------------------------------------------------------------------
    def _sgd_step(self) -> None:
        """SGD with momentum as torch.optim.SGD computes it (dampening 0, L2 weight decay added to the gradient), with a
        per-member learning rate, momentum and weight decay; diverged members are frozen."""
        with torch.no_grad():
            for p, buf, (act, lr, mom, wd) in zip(self.params, self.momentum_bufs, self._views):
                g = torch.where(act, p.grad, 0.0)
                buf.mul_(mom).add_(g + wd * p if self.any_wd else g)
                p.sub_(torch.where(act, lr * buf, 0.0))
                p.grad = None

    def _member_rows(self) -> np.ndarray:
        """Every member's whole state as one (K, P) array, in manifest order: one device-to-host copy."""
        row_dtype = torch.float64 if self.dtype == torch.float64 else torch.float32
        flat = torch.cat([t.reshape(self.k, -1).to(row_dtype) for t in self.model.state_dict().values()], 1)
        return flat.cpu().numpy()

    def _snapshot(self, epoch_label: float, sums: torch.Tensor, counts: int) -> None:
        with autocast(self.precision, self.device):
            test_loss, test_acc = evaluate(self.model, self.test, self.k)
        stats = torch.stack([test_loss, test_acc, sums[0], sums[1]]).cpu().numpy()
        active = self.active.cpu().numpy()
        rows = None
        for i, m in enumerate(self.members):
            if m.diverged_at is not None:
                continue
            m.step = self.step
            train_loss, train_acc = (stats[2, i] / counts, stats[3, i] / counts) if counts else (np.nan, np.nan)
            row = {"snapshot": m.writer.n_snapshots, "epoch": epoch_label, "step": m.step,
                   "lr": m.spec.learning_rate, "train_loss": train_loss, "train_acc": train_acc,
                   "test_loss": stats[0, i], "test_acc": stats[1, i]}
            if not active[i] or not math.isfinite(row["test_loss"]):
                m.diverged_at = epoch_label
                self.active[i] = False
                m.curves.append({**row, "snapshot": -1})  # measured, but its weights are not kept
                log.info("[%s] diverged at epoch %.2f (loss not finite); test_acc %.4f", m.spec.run_id,
                         epoch_label, row["test_acc"])
                continue
            rows = self._member_rows() if rows is None else rows
            m.writer.append_row(rows[i], epoch=epoch_label, step=m.step,
                                label="init" if m.step == 0 else f"epoch {epoch_label:g}")
            m.curves.append(row)

    def fit(self) -> None:
        spec0 = self.specs[0]
        set_tf32(self.precision, self.device)  # process-global: set for this pack, whatever trained before it
        steps_per_epoch = math.ceil(self.n / spec0.batch_size)
        start = self.members[0].epoch
        if start == 0:
            self._snapshot(0.0, torch.zeros(2, self.k, device=self.device), 0)
            if self.hooks:
                self.hooks.on_snapshot_end(0.0)
        size = self.info.image_size
        for epoch in range(start + 1, spec0.epochs + 1):
            t0 = time.time()
            streams = [epoch_stream(s, epoch, self.n) for s in self.specs]
            perm, oy, ox, flip = (torch.stack([st[j] for st in streams]).to(self.device) for j in range(4))
            marks = snapshot_steps(spec0, steps_per_epoch, epoch)
            sums = torch.zeros(2, self.k, device=self.device, dtype=torch.float64)
            seen = 0
            for step in range(1, steps_per_epoch + 1):
                sl = slice((step - 1) * spec0.batch_size, step * spec0.batch_size)
                idx = perm[:, sl]
                b = idx.shape[1]
                x = augment(self.padded, idx.reshape(-1), oy[:, sl].reshape(-1), ox[:, sl].reshape(-1),
                            flip[:, sl].reshape(-1), size).view(self.k, b, *self.padded.shape[1:2], size, size)
                y = self.train_y[idx]
                self.model.randomness.step = self.step
                with autocast(self.precision, self.device):  # bf16: forward and loss only; the step stays float32
                    out = self.model(pack_inputs(x))
                    losses = F.cross_entropy(out.transpose(1, 2), y, reduction="none").mean(1)
                finite = torch.isfinite(losses) & (losses < DIVERGED_LOSS)
                self.active &= finite
                torch.where(self.active, losses, 0.0).sum().backward()
                self._sgd_step()
                with torch.no_grad():
                    sums[0] += torch.where(finite, losses, torch.nan).double() * b
                    sums[1] += (out.argmax(-1) == y).sum(1).double()
                seen += b
                self.step += 1
                if self.hooks:
                    self.hooks.on_step_end(self.step)
                if step in marks:
                    self._snapshot(marks[step], sums, seen)
                    if self.hooks:
                        self.hooks.on_snapshot_end(marks[step])
            for i, m in enumerate(self.members):
                if m.diverged_at is None:
                    m.epoch = epoch
                    self._save_checkpoint(i)
                    last = m.curves[-1]
                    log.info("[%s] epoch %d/%d train_loss %.4f train_acc %.4f test_loss %.4f test_acc %.4f "
                             "(%.1fs)", m.spec.run_id, epoch, spec0.epochs, last["train_loss"], last["train_acc"],
                             last["test_loss"], last["test_acc"], time.time() - t0)
                pd.DataFrame(m.curves, columns=CURVE_COLUMNS).to_csv(m.dir / "curves.csv", index=False, float_format="%.17g")
            if self.hooks:
                self.hooks.on_epoch_end(epoch)
            if not self.active.any():
                break
        for m in self.members:
            self._finish(m)

    def _finish(self, m: MemberState) -> None:
        last = m.curves[-1]
        kept = [c for c in m.curves if c["snapshot"] >= 0]
        result = {
            "run_id": m.spec.run_id, "status": "diverged" if m.diverged_at is not None else "complete",
            "diverged_epoch": m.diverged_at, "epochs_completed": m.epoch,
            "final_test_acc": last["test_acc"], "final_test_loss": last["test_loss"],
            "best_test_acc": max(c["test_acc"] for c in m.curves if math.isfinite(c["test_acc"])),
            "n_snapshots": m.writer.n_snapshots, "last_snapshot_epoch": kept[-1]["epoch"],
            "trajectory_bytes": m.writer.data_path.stat().st_size,
            "wall_seconds": round(m.elapsed + time.time() - m.started, 3), "device": str(self.device),
        }
        pd.DataFrame(m.curves, columns=CURVE_COLUMNS).to_csv(m.dir / "curves.csv", index=False, float_format="%.17g")
        result = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
        (m.dir / "result.json").write_text(json.dumps(result, indent=1))  # strict JSON: NaN -> null
        for f in ("checkpoint.safetensors", "checkpoint.json"):
            (m.dir / f).unlink(missing_ok=True)


def _checkpoint_meta(run_dir: Path) -> dict | None:
    """Book-keeping of a run's last checkpoint (None if it has none), read from the weights file's metadata.
    checkpoint.json is only a readable copy: written after the weights, it lags one epoch behind when a kill
    falls between the two writes."""
    path = run_dir / "checkpoint.safetensors"
    if not path.exists():
        return None
    with safe_open(path, "pt") as f:
        return json.loads(f.metadata()["meta"])


def _resume_epoch(run_dir: Path) -> int:
    meta = _checkpoint_meta(run_dir)
    return meta["epoch"] if meta is not None else 0


def member_memory_bytes(spec: RunSpec, info: DatasetInfo) -> int:
    """Rough per-member device memory of training: weights, grads, momentum and saved activations."""
    model = init_model(spec, info)
    itemsize = torch.finfo(getattr(torch, spec.dtype)).bits // 8
    acts = 0

    def hook(_m, _i, out):
        nonlocal acts
        acts += out.numel()

    handles = [mod.register_forward_hook(hook) for mod in model.modules() if not list(mod.children())]
    with torch.no_grad():
        model(torch.zeros(1, info.in_channels, info.image_size, info.image_size, dtype=model.classifier[-1].weight.dtype))
    for h in handles:
        h.remove()
    params = sum(p.numel() for p in model.parameters())
    return itemsize * (4 * params + 3 * acts * spec.batch_size)


def pack_plan(specs: list[RunSpec], info: DatasetInfo, device: torch.device, pack: str,
              resume_epochs: dict[str, int]) -> list[list[RunSpec]]:
    """Split a job's runs into packs: where config.packs_runs says so, runs that share a pack key and resume
    epoch are packed, on a GPU as many as fit in about half the free memory; otherwise every run trains alone."""
    by_key: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        by_key.setdefault((s.pack_key, resume_epochs.get(s.run_id, 0)), []).append(s)
    use_pack = packs_runs(pack, device.type)
    packs = []
    for group in by_key.values():
        if not use_pack:
            packs += [[s] for s in group]
            continue
        cap = len(group)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            cap = max(1, int(0.5 * free // member_memory_bytes(group[0], info)))
        packs += [group[i:i + cap] for i in range(0, len(group), cap)]
    return packs


def train_runs(specs: list[RunSpec], out_dir: str | Path, *, device: str = "cpu", data_root: str | Path = "data",
               download: bool = False, pack: str = "auto", study: dict | None = None) -> list[dict]:
    """Train (or resume, or skip if finished) every run in `specs`; returns their result records."""
    out_dir = Path(out_dir)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest grouped-conv kernels
    results, todo, resume_epochs = [], [], {}
    for s in specs:
        done = out_dir / s.run_id / "result.json"
        if done.exists():
            _check_same_run(out_dir / s.run_id, s)
            log.info("[%s] already trained, kept", s.run_id)
        else:
            resume_epochs[s.run_id] = _resume_epoch(out_dir / s.run_id)
            todo.append(s)
    by_data: dict[tuple, list[RunSpec]] = {}
    for s in todo:
        by_data.setdefault((s.dataset, s.image_size), []).append(s)
    for (dataset, image_size), group in by_data.items():
        train, test, info = load_dataset(dataset, data_root, download=download, image_size=image_size)
        dtype = getattr(torch, group[0].dtype)
        train_d = ImageData(train.x.to(dev, dtype), train.y.to(dev))
        test_d = ImageData(test.x.to(dev, dtype), test.y.to(dev))
        for members in pack_plan(group, info, dev, pack, resume_epochs):
            log.info("training %d run(s) together on %s: %s", len(members), dev,
                     ", ".join(s.run_id for s in members))
            PackTrainer(members, train_d, test_d, info, out_dir, dev, study).fit()
    for s in specs:
        results.append(json.loads((out_dir / s.run_id / "result.json").read_text()))
    return results


def snapshots_per_run(spec: RunSpec) -> int:
    """Snapshots a run that does not diverge keeps: init, sub-epoch ones, every epoch end."""
    extra = (spec.subepoch_snapshots - 1) * min(spec.subepoch_epochs, spec.epochs) if spec.subepoch_snapshots > 1 else 0
    return 1 + spec.epochs + extra


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
