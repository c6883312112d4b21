"""A run's directory, ``<runs dir>/<run id>/``: the only code that reads or writes its files.

    config.json        run settings, study config, versions            (files: read/write_config)
    curves.csv         one row per measured snapshot                   (files: read/write_curves)
    trajectory.bin     every kept snapshot, one row each                (netdyn.trajectory, verify)
    trajectory.json    its manifest: tensor table, snapshot table       (open_trajectory, trajectory_writer)
    result.json        outcome, written last: the run is finished       (files: read/write_result)
    checkpoint.*       training state while unfinished                  (checkpoint)
    train.lock         held by the one process training the run         (lock: RunLocks)

Also here: the snapshot schedule of a run and how stages pick snapshots by epoch (schedule). File names
(``CONFIG``, ``RESULT``, ...) and the torch-free readers import without torch; the trajectory and
checkpoint functions load torch when first used (PEP 562), so Snakefiles can import this package.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .files import (CURVE_COLUMNS, RunFileError, RunMismatchError, RunMissingError, atomic_write,  # noqa: F401
                    check_same_run, has_result, read_config, read_curves, read_result, store_error,
                    write_config, write_curves, write_result)
from .lock import RunLockedError, RunLocks, holds  # noqa: F401
from .names import (CHECKPOINT, CHECKPOINT_INFO, CHECKPOINT_PREVIOUS, CONFIG, CURVES, LOCK, RESULT,  # noqa: F401
                    RUN_OUTPUTS, TMP_SUFFIX, TRAINING_STATE, TRAJECTORY_DATA, TRAJECTORY_MANIFEST)
from .schedule import (epoch_key, in_window, snapshot_at, snapshot_epochs, snapshot_steps,  # noqa: F401
                       snapshots_per_run)

_LAZY = {
    "verify": ("open_trajectory", "verify_finished"),
    "checkpoint": ("Checkpoint", "CheckpointError", "clear_checkpoint", "resume_point", "save_checkpoint"),
    "manifest": ("TrajectoryError",),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def run_dir(runs_dir: str | Path, run_id: str) -> Path:
    """Where run `run_id` of a study lives."""
    return Path(runs_dir) / run_id


def trajectory_writer(run_dir: str | Path, template, *, run_id: str, arch: dict, dtype: str,
                      resume: bool = False):
    """The run's trajectory opened for appending (new, or resumed: rows past the manifest dropped)."""
    from ..trajectory import TrajectoryWriter

    return TrajectoryWriter(run_dir, template, run_id=run_id, arch=arch, dtype=dtype, resume=resume)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
