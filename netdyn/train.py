"""Training: many grid points at once, each identical to its own run.

One loop trains a *pack* of K runs that share architecture, width and data set (they may differ in seed,
learning rate, dropout, weight decay and momentum); a single run is a pack of one. Each member draws its
own initialisation, minibatch order, crop offsets, flips and dropout masks from its own seed alone, so
its trajectory does not depend on who it was packed with. The data set lives on the device and
augmentation runs there.

Per run, under ``<out>/<run id>/`` (its files are read and written by :mod:`netdyn.rundir` only):
``config.json`` (run settings, study config, versions), ``curves.csv`` (one row per snapshot),
``trajectory.bin`` + ``trajectory.json`` (see :mod:`netdyn.trajectory`), ``result.json`` once finished.
While training, the checkpoint holds every member's last completed epoch (weights, buffers, momentum,
curves, divergence) so a killed job resumes there and ends with the same bytes as an uninterrupted run;
and the process holds each run's lock, so no second process (an orphan of a killed job) writes it too.
A finished run is checked (trajectory against manifest, result and curves) before it is kept. The files are
written on a background thread in the order the loop queues them (:mod:`netdyn.rundir.background`), so
the device trains on meanwhile; a kill leaves a prefix of those writes, as if it had come earlier.

A run with ``embedded_cmd`` settings trains with embedded CMD (:mod:`netdyn.cmd.embedded`): from its warm-up on,
a growing share of its parameters is frozen to follow its CMD modes; its state is its own inside a pack, and a
resumed run rebuilds it from the rows its trajectory holds.

A run whose minibatch loss turns NaN/inf (or exceeds ``DIVERGED_LOSS``) is *diverged*: it stops updating at
once (without disturbing the others) and is recorded with the accuracy measured at that point. It stays in
its pack, frozen, until the pack ends, so a resumed pack has the same members as before the kill.

Over 300 lines: the pack's loop, snapshots and checkpoints are one piece (a resume must see exactly what the
loop wrote), and the hook contract is documented where the hooks are called.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .cmd.frozen import EmbeddedPack
from .config import RunSpec
from .data import DatasetInfo, ImageData, load_dataset
from .member import (MemberState, augment, checkpoint_meta, epoch_stream, finish, init_model,  # noqa: F401
                     model_kwargs, open_member)
from .packed import load_member_state, member_state, pack_inputs, pack_models
from .plan import choose_layout, member_memory_bytes, pack_plan, storage_estimate  # noqa: F401
from .precision import autocast, set_tf32
from .rundir import (RunLocks, RunMismatchError, check_same_run, has_result, read_result,  # noqa: F401
                     snapshot_steps, snapshots_per_run, write_curves)
from .rundir.background import BackgroundWrites
from .rundir.checkpoint import resume_point, save_checkpoint
from .rundir.verify import verify_finished

log = logging.getLogger("netdyn.train")

DIVERGED_LOSS = 1e6  # a minibatch loss above this (or NaN/inf) marks a run diverged; chance level is ~2.3
# torch.compile's options per device type (training.compile): on cuda CUDA graphs replay a step's kernels in
# one launch; on the CPU inductor's fused C++ kernels
COMPILE_OPTIONS = {"cuda": {"mode": "reduce-overhead"}, "cpu": {}}


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
    it ``fit`` makes no hook calls at all. Hooks do not change what is trained. ``layout`` is the pack layout
    (netdyn.packed.LAYOUTS; None: the device's default) and ``layout_probe`` the probe step times it was chosen
    by, if any; ``compile`` runs the packed model (COMPILE_OPTIONS) and the SGD update through torch.compile.
    Each finished run records them (result.json's ``pack``). ``background_writes`` (None: the class default)
    says whether its files are written on the writer thread or in the loop.

    It takes the locks of its runs (unless this process holds them: ``train_runs`` does) and lets go of
    them when ``fit`` ends, however it ends, after the writes it queued are done.
    """

    background_writes = True  # False: every file written in place, in the loop (bench/epoch_overhead.py compares)

    def __init__(self, specs: list[RunSpec], train: ImageData, test: ImageData, info: DatasetInfo,
                 out_dir: Path, device: torch.device, study: dict | None = None,
                 hooks: TrainerHooks | None = None, layout: str | None = None,
                 layout_probe: dict[str, float] | None = None, compile: bool = False,
                 background_writes: bool | None = None):
        assert len({s.pack_key for s in specs}) == 1, "a pack needs equal pack keys"
        self.specs, self.info, self.device = specs, info, device
        self.k = len(specs)
        self.hooks = hooks
        self.dtype = getattr(torch, specs[0].dtype)
        self.precision = specs[0].precision  # see netdyn/precision.py
        self.members: list[MemberState] = []
        out_dir = Path(out_dir)
        self._locks = RunLocks([out_dir / s.run_id for s in specs]).acquire()
        try:
            models = []
            for spec in specs:
                model, member = open_member(spec, out_dir / spec.run_id, info, study)
                models.append(model)
                self.members.append(member)
        except BaseException:
            self._locks.release()
            raise
        starts = {m.checkpoint.meta["epoch"] if m.checkpoint else 0 for m in self.members}
        assert len(starts) == 1, "members of a pack resume from the same epoch"
        self.start_epoch = starts.pop()
        self.model = pack_models([mod.to(device) for mod in models], [s.seed for s in specs], layout).train()
        # what runs the forward passes and the SGD update: the eager ones, or their compiled twins (same tensors)
        self.forward = torch.compile(self.model, **COMPILE_OPTIONS[device.type]) if compile else self.model
        self.update = torch.compile(self._sgd_update) if compile else self._sgd_update
        pack = {"size": self.k, "layout": self.model.layout, "compile": compile}
        if layout_probe:
            pack["layout_probe_ms_per_step"] = {c: round(t * 1e3, 3) for c, t in layout_probe.items()}
        for m in self.members:
            m.pack = pack
        self.params = [p for p in self.model.parameters()]
        self.momentum_bufs = [torch.zeros_like(p) for p in self.params]
        for i, m in enumerate(self.members):
            if m.checkpoint is not None:
                self._load_checkpoint(i)
        as_t = lambda v: torch.tensor(v, device=device, dtype=self.dtype)  # noqa: E731
        self.lr = as_t([s.learning_rate for s in specs])
        self.mom = as_t([s.momentum for s in specs])
        self.wd = as_t([s.weight_decay for s in specs])
        self.any_wd = any(s.weight_decay for s in specs)
        self.active = torch.tensor([m.diverged_at is None for m in self.members], device=device)
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
        self._last_rows = None  # (epoch label, every member's row) of the latest snapshot: embedded CMD reads it
        self.embedded = EmbeddedPack.start(self.members, self.params, self._names())  # None: no member embeds CMD
        queued = self.background_writes if background_writes is None else background_writes
        self.io = BackgroundWrites(queued, max_pending=2 * self.k + 8)  # ~two snapshots queued

    # -- checkpoints ---------------------------------------------------------------------------------
    def _names(self):
        return [n for n, _ in self.model.named_parameters()]

    def _save_checkpoint(self, i: int, epoch: int) -> None:
        """Copy member i's state to the host now (training goes on changing it) and queue its saving."""
        m = self.members[i]
        state = {k: v.detach().to("cpu", copy=True) for k, v in member_state(self.model, i).items()}
        for name, buf in zip(self._names(), self.momentum_bufs):
            state[f"momentum::{name}"] = buf[i].to("cpu", copy=True)
        self.io.submit(save_checkpoint, m.dir, state, checkpoint_meta(m, epoch, self.step))

    def _load_checkpoint(self, i: int) -> None:
        m = self.members[i]
        state = m.checkpoint.load(self.device)
        load_member_state(self.model, i, state)
        with torch.no_grad():
            for name, buf in zip(self._names(), self.momentum_bufs):
                buf[i].copy_(state[f"momentum::{name}"])

    # -- the loop ------------------------------------------------------------------------------------
    def _sgd_update(self) -> None:
        """SGD with momentum as torch.optim.SGD computes it (dampening 0, L2 weight decay added to the gradient), with a
        per-member learning rate, momentum and weight decay; diverged members are frozen."""
        with torch.no_grad():
            for p, buf, (act, lr, mom, wd) in zip(self.params, self.momentum_bufs, self._views):
                g = torch.where(act, p.grad, 0.0)
                buf.mul_(mom).add_(g + wd * p if self.any_wd else g)
                p.sub_(torch.where(act, lr * buf, 0.0))

    def _sgd_step(self) -> None:
        self.update()  # _sgd_update, or its compiled twin: a few fused kernels instead of ~7 per parameter
        for p in self.params:
            p.grad = None

    def _member_rows(self) -> np.ndarray:
        """Every member's whole state as one (K, P) array, in manifest order: one device-to-host copy."""
        row_dtype = torch.float64 if self.dtype == torch.float64 else torch.float32
        flat = torch.cat([t.reshape(self.k, -1).to(row_dtype) for t in self.model.state_dict().values()], 1)
        return flat.cpu().numpy()

    def _snapshot(self, epoch_label: float, sums: torch.Tensor, counts: int) -> None:
        with autocast(self.precision, self.device):
            test_loss, test_acc = evaluate(self.forward, self.test, self.k)
        stats = torch.stack([test_loss, test_acc, sums[0], sums[1]]).cpu().numpy()
        active = self.active.cpu().numpy()
        rows = None
        for i, m in enumerate(self.members):
            if m.diverged_at is not None:
                continue
            m.step = self.step
            train_loss, train_acc = (stats[2, i] / counts, stats[3, i] / counts) if counts else (np.nan, np.nan)
            row = {"snapshot": m.n_snapshots, "epoch": epoch_label, "step": m.step,
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
            self._last_rows = (epoch_label, rows)
            self.io.submit(m.writer.append_row, rows[i], epoch=epoch_label, step=m.step,
                           label="init" if m.step == 0 else f"epoch {epoch_label:g}")
            m.n_snapshots += 1
            m.curves.append(row)

    def fit(self) -> None:
        try:
            self._fit()
        except BaseException:
            self.io.close(raise_errors=False)  # what was queued before the failure still lands, then the error
            raise
        else:
            self.io.close()
        finally:
            self._locks.release()

    def _fit(self) -> None:
        spec0 = self.specs[0]
        set_tf32(self.precision, self.device)  # process-global: set for this pack, whatever trained before it
        steps_per_epoch = math.ceil(self.n / spec0.batch_size)
        start = self.start_epoch
        if start == 0:
            self._snapshot(0.0, torch.zeros(2, self.k, device=self.device), 0)
            if self.hooks:
                self.hooks.on_snapshot_end(0.0)
            if self.embedded:
                self.embedded.epoch_end(0, self._last_rows)
        size = self.info.image_size
        for epoch in range(start + 1, spec0.epochs + 1):
            if not self.active.any():
                break
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
                if self.forward is not self.model and self.device.type == "cuda":
                    torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs are done with
                with autocast(self.precision, self.device):  # bf16: forward and loss only; the step stays float32
                    out = self.forward(pack_inputs(x))
                    losses = F.cross_entropy(out.transpose(1, 2), y, reduction="none").mean(1)
                finite = torch.isfinite(losses) & (losses < DIVERGED_LOSS)
                self.active &= finite
                torch.where(self.active, losses, 0.0).sum().backward()
                self._sgd_step()
                if self.embedded:
                    self.embedded.after_step()
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
            if self.embedded:
                self.embedded.epoch_end(epoch, self._last_rows)
            for i, m in enumerate(self.members):
                if m.diverged_at is None:
                    m.epoch = epoch
                self._save_checkpoint(i, epoch)  # diverged members too: a resumed pack keeps its members
                if m.diverged_at is None:
                    last = m.curves[-1]
                    log.info("[%s] epoch %d/%d train_loss %.4f train_acc %.4f test_loss %.4f test_acc %.4f "
                             "(%.1fs)", m.spec.run_id, epoch, spec0.epochs, last["train_loss"], last["train_acc"],
                             last["test_loss"], last["test_acc"], time.time() - t0)
                self.io.submit(write_curves, m.dir, list(m.curves))
            if self.hooks:
                self.hooks.on_epoch_end(epoch)
        self.io.drain()  # every row and checkpoint on disk before any run counts as finished
        for m in self.members:
            finish(m, self.device)


def train_runs(specs: list[RunSpec], out_dir: str | Path, *, device: str = "cpu", data_root: str | Path = "data",
               download: bool = False, pack: str = "auto", study: dict | None = None,
               pack_memory: str = "estimate", pack_layout: str = "auto", compile: bool = False) -> list[dict]:
    """Train (or resume, or skip if finished) every run in `specs`; returns their result records.
    `pack`, `pack_memory`, `pack_layout` and `compile` are the config's training keys of those names
    (netdyn.config.job_options; see netdyn.plan.pack_plan and netdyn.plan.choose_layout)."""
    out_dir = Path(out_dir)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest grouped-conv kernels
    with RunLocks([out_dir / s.run_id for s in specs]):  # all or none: a second writer stops here at once
        todo, resume_epochs = [], {}
        for s in specs:
            run_dir = out_dir / s.run_id
            check_same_run(run_dir, s)
            if has_result(run_dir):
                verify_finished(run_dir, s)  # inconsistent files stop the job, naming run and file
                log.info("[%s] already trained, kept", s.run_id)
            else:
                ckpt = resume_point(run_dir)
                resume_epochs[s.run_id] = ckpt.meta["epoch"] if ckpt else 0
                todo.append(s)
        by_data: dict[tuple, list[RunSpec]] = {}
        for s in todo:
            by_data.setdefault((s.dataset, s.image_size), []).append(s)
        for (dataset, image_size), group in by_data.items():
            train, test, info = load_dataset(dataset, data_root, download=download, image_size=image_size)
            dtype = getattr(torch, group[0].dtype)
            train_d = ImageData(train.x.to(dev, dtype), train.y.to(dev))
            test_d = ImageData(test.x.to(dev, dtype), test.y.to(dev))
            layouts = {}  # (pack key, K) -> (layout, probe step times): one probe per kind of pack
            for members in pack_plan(group, info, dev, pack, resume_epochs, pack_memory):
                key = (members[0].pack_key, len(members))
                if key not in layouts:
                    layouts[key] = choose_layout(members[0], info, dev, len(members), pack_layout, compile=compile)
                layout, probe = layouts[key]
                log.info("training %d run(s) together on %s (layout %s%s): %s", len(members), dev, layout,
                         ", compiled" if compile else "", ", ".join(s.run_id for s in members))
                PackTrainer(members, train_d, test_d, info, out_dir, dev, study, layout=layout, layout_probe=probe,
                            compile=compile).fit()
        return [read_result(out_dir / s.run_id) for s in specs]

