"""A run's training checkpoint: the state at its last completed epoch, and the one before as a fallback.

``checkpoint.safetensors`` holds the member's weights, buffers and momentum, and in its metadata the
book-keeping (epoch, step, snapshots kept, curves, divergence), so one rename commits both. Each save
writes ``checkpoint.safetensors.tmp``, moves the current checkpoint to ``checkpoint.previous.safetensors``
and renames the new one into place; ``checkpoint.json`` is a readable copy of the book-keeping, written
after and never read back.

Resuming takes the newest checkpoint that can be used: readable (safetensors checks that the file covers
its header, so a cut file is refused) and with all the snapshots it counts still in the trajectory. A
damaged checkpoint thus costs one epoch, recomputed to the same numbers; with neither usable the run
starts over. Each fallback is logged with the run, the file and the reason.
"""

from __future__ import annotations

import errno
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from ..trajectory import stored_rows
from .files import atomic_write, store_error
from .names import CHECKPOINT, CHECKPOINT_INFO, CHECKPOINT_PREVIOUS, TMP_SUFFIX

log = logging.getLogger("netdyn.rundir")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    meta: dict  # epoch (of the pack), step, n_snapshots, curves, elapsed, diverged_at, epochs_completed

    def load(self, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        try:
            return load_file(self.path, device=str(device))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"run {self.path.parent.name}: checkpoint {self.path} cannot be read ({e}); "
                                  f"delete it to resume from {CHECKPOINT_PREVIOUS} or to start over") from None


class CheckpointError(RuntimeError):
    """A checkpoint chosen for resuming that cannot be loaded."""


def save_checkpoint(run_dir: str | Path, state: dict[str, torch.Tensor], meta: dict) -> None:
    """Commit `state` (CPU tensors) and its book-keeping `meta` as the run's checkpoint."""
    run_dir = Path(run_dir)
    path, tmp = run_dir / CHECKPOINT, run_dir / (CHECKPOINT + TMP_SUFFIX)
    try:
        data = save(state, metadata={"meta": json.dumps(meta)})
    except SafetensorError as e:
        raise store_error(OSError(errno.EINVAL, str(e)), path, "serialising") from e
    try:
        with open(tmp, "wb") as f:
            f.write(data)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise store_error(e, path, "writing") from e
    if path.exists():
        path.replace(run_dir / CHECKPOINT_PREVIOUS)
    tmp.replace(path)
    atomic_write(run_dir / CHECKPOINT_INFO, json.dumps(meta))


def _read_meta(path: Path) -> dict:
    with safe_open(path, "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    for key in ("epoch", "step", "n_snapshots", "curves"):
        if key not in meta:
            raise KeyError(f"its book-keeping lacks {key!r}")
    return meta


def resume_point(run_dir: str | Path) -> Checkpoint | None:
    """The newest usable checkpoint of a run (see the module docstring), or None: start from scratch."""
    run_dir = Path(run_dir)
    candidates = [run_dir / CHECKPOINT, run_dir / CHECKPOINT_PREVIOUS]
    rows = None
    for path in candidates:
        if not path.exists():
            continue
        try:
            meta = _read_meta(path)
        except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
            log.warning("run %s: checkpoint %s is unusable (%s); falling back to an older state",
                        run_dir.name, path, e)
            continue
        rows = stored_rows(run_dir) if rows is None else rows
        if meta["n_snapshots"] > rows:
            log.warning("run %s: checkpoint %s counts %d snapshots but the trajectory holds %d; falling back "
                        "to an older state", run_dir.name, path, meta["n_snapshots"], rows)
            continue
        return Checkpoint(path, meta)
    if any(p.exists() for p in candidates):
        log.warning("run %s: no usable checkpoint; the run starts over", run_dir.name)
    return None


def clear_checkpoint(run_dir: str | Path) -> None:
    """Remove the training state of a finished run."""
    run_dir = Path(run_dir)
    for name in (CHECKPOINT, CHECKPOINT_PREVIOUS, CHECKPOINT_INFO):
        for path in (run_dir / name, run_dir / (name + TMP_SUFFIX)):
            path.unlink(missing_ok=True)

