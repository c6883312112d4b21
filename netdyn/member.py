"""One run inside a pack (see :class:`netdyn.train.PackTrainer`): what defines its network and its data
stream, and its book-keeping between the pack and its run directory (through :mod:`netdyn.rundir`)."""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__
from .config import RunSpec
from .data import DatasetInfo
from .models import build_model
from .rundir import check_same_run, trajectory_writer, write_config, write_curves, write_result
from .rundir.checkpoint import Checkpoint, clear_checkpoint, resume_point
from .trajectory import TrajectoryWriter


def versions() -> dict:
    import sklearn  # noqa: F401  (recorded because later stages use it)

    return {"netdyn": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "platform": platform.platform()}


def model_kwargs(spec: RunSpec, info: DatasetInfo) -> dict:
    """build_model arguments of a run (also stored in its trajectory manifest; ``drop`` only where a layer is
    dropped, so the manifests of full networks read as before)."""
    kwargs = {"arch": spec.arch, "width": spec.width, "depth": spec.depth, "batchnorm": spec.batchnorm,
              "in_channels": info.in_channels, "num_classes": info.num_classes, "image_size": info.image_size,
              "dropout": spec.dropout}
    return {**kwargs, "drop": list(spec.drop)} if spec.drop else kwargs


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


@dataclass
class MemberState:
    """Book-keeping of one run inside a pack."""

    spec: RunSpec
    dir: Path
    writer: TrajectoryWriter
    curves: list[dict] = field(default_factory=list)
    n_snapshots: int = 0  # snapshots taken (the trajectory file may still be catching up: writes are queued)
    epoch: int = 0  # completed epochs
    step: int = 0  # optimisation steps taken
    diverged_at: float | None = None
    started: float = field(default_factory=time.time)
    elapsed: float = 0.0  # seconds spent before a resume
    checkpoint: Checkpoint | None = None  # resumed from
    embedded: object | None = None  # its netdyn.cmd.embedded.EmbeddedCMD, if it trains with embedded CMD
    pack: dict | None = None  # how its pack trains (size, layout, compile), recorded in result.json


def open_member(spec: RunSpec, run_dir: Path, info: DatasetInfo, study: dict | None
                ) -> tuple[torch.nn.Module, MemberState]:
    """A member's initial network, and its run directory resumed from its checkpoint or started afresh."""
    check_same_run(run_dir, spec)
    model = init_model(spec, info)
    ckpt = resume_point(run_dir)
    if ckpt is None:
        clear_checkpoint(run_dir)  # an unusable one, if any (resume_point logged why)
        write_config(run_dir, run_config(spec, info, study))
    writer = trajectory_writer(run_dir, model.state_dict(), run_id=spec.run_id, arch=model_kwargs(spec, info),
                               dtype=spec.dtype, resume=ckpt is not None)
    if ckpt is not None:
        writer.truncate(ckpt.meta["n_snapshots"])
    return model, _member_state(spec, run_dir, writer, ckpt)


def _member_state(spec: RunSpec, run_dir: Path, writer: TrajectoryWriter, ckpt: Checkpoint | None) -> MemberState:
    if ckpt is None:
        return MemberState(spec, run_dir, writer, n_snapshots=writer.n_snapshots)
    meta = ckpt.meta  # "epoch" and "step" are the pack's; a diverged member stopped counting before
    return MemberState(spec, run_dir, writer, meta["curves"], writer.n_snapshots,
                       meta.get("epochs_completed", meta["epoch"]), meta["step"], meta.get("diverged_at"),
                       elapsed=meta["elapsed"], checkpoint=ckpt)


def run_config(spec: RunSpec, info: DatasetInfo, study: dict | None) -> dict:
    return {"run": spec.to_dict(), "model": model_kwargs(spec, info), "study_config": study,
            "versions": versions()}


def checkpoint_meta(m: MemberState, epoch: int, step: int) -> dict:
    """Book-keeping saved with a member's state at the end of the pack's `epoch` (`step` steps taken): a copy,
    since training goes on appending to the curves while the checkpoint waits to be written."""
    return {"epoch": epoch, "step": step, "n_snapshots": m.n_snapshots, "curves": list(m.curves),
            "elapsed": m.elapsed + time.time() - m.started, "diverged_at": m.diverged_at,
            "epochs_completed": m.epoch}


def finish(m: MemberState, device: torch.device) -> None:
    """Write a member's curves and result.json (last: from then on the run counts as finished), and drop
    its training state."""
    last = m.curves[-1]
    kept = [c for c in m.curves if c["snapshot"] >= 0]
    result = {
        "run_id": m.spec.run_id, "status": "diverged" if m.diverged_at is not None else "complete",
        "diverged_epoch": m.diverged_at, "epochs_completed": m.epoch,
        "final_test_acc": last["test_acc"], "final_test_loss": last["test_loss"],
        "best_test_acc": max(c["test_acc"] for c in m.curves if math.isfinite(c["test_acc"])),
        "n_snapshots": m.writer.n_snapshots, "last_snapshot_epoch": kept[-1]["epoch"],
        "trajectory_bytes": m.writer.data_path.stat().st_size,
        "wall_seconds": round(m.elapsed + time.time() - m.started, 3), "device": str(device),
    }
    if m.pack is not None:
        result["pack"] = m.pack
    if m.embedded is not None:  # the share of parameters still trained after each whole epoch
        result["embedded_cmd"] = {"settings": m.embedded.settings, "epochs": m.embedded.log}
    write_curves(m.dir, m.curves)
    write_result(m.dir, result)
    clear_checkpoint(m.dir)
