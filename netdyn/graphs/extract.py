"""Signatures of a run's early snapshots, read from its trajectory after checks that fail fast.

``snapshot_signatures(traj, max_epoch)`` gives one row per kept snapshot with epoch ≤ max_epoch
(columns run_id, snapshot, epoch, then the signature); snapshots with non-finite weights are skipped
(logged). ``extract_run`` checks a run directory first; ``extract_runs`` concatenates several runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..rundir import TRAJECTORY_DATA, in_window, open_trajectory
from ..trajectory import Trajectory, TrajectoryError
from .columns import META_COLUMNS
from .properties import node_properties
from .rolled import trajectory_plan
from .signatures import signature
from .tensors import flat_getter

log = logging.getLogger(__name__)


def snapshot_signatures(traj: Trajectory, max_epoch: float = 5.0, *, threads: int | None = None,
                        clustering: bool = True) -> pd.DataFrame:
    """One row per snapshot with epoch ≤ max_epoch: run_id, snapshot, epoch, signature columns.

    The graph is built once and only its weights are replaced per snapshot (same structure).
    """
    plan = trajectory_plan(traj)
    snaps = traj.snapshots
    snaps = snaps[in_window(snaps["epoch"], max_epoch)]
    rows, g = [], None
    for idx, epoch in zip(snaps["index"].to_numpy(), snaps["epoch"].to_numpy()):
        row = traj.flat(int(idx))
        if not np.isfinite(row).all():
            log.warning("run %s: snapshot %d (epoch %g) has non-finite weights; skipped", traj.run_id, idx, epoch)
            continue
        w = plan.weights(flat_getter(traj, row))
        if g is None:
            g = plan.graph(w)
        else:
            g.ep["weight"].a = w
        sig = signature(node_properties(g, threads=threads, clustering=clustering))
        rows.append({"run_id": traj.run_id, "snapshot": int(idx), "epoch": float(epoch), **sig})
    return pd.DataFrame(rows, columns=None if rows else list(META_COLUMNS))


def extract_run(run_dir: str | Path, max_epoch: float = 5.0, *, arch: dict | None = None,
                threads: int | None = None, clustering: bool = True) -> pd.DataFrame:
    """snapshot_signatures of one run directory, after checks that fail fast (TrajectoryError naming
    the run and the file, :func:`netdyn.rundir.open_trajectory`): missing/truncated trajectory, another
    snapshot count or size than result.json reports, tensors that do not fit the manifest's architecture,
    or an architecture other than ``arch`` (build_model kwargs) or than the run's config.json."""
    run_dir = Path(run_dir)
    traj = open_trajectory(run_dir, arch=arch)
    if len(traj) == 0:
        raise TrajectoryError(f"run {run_dir.name}: {run_dir / TRAJECTORY_DATA} holds no snapshots")
    return snapshot_signatures(traj, max_epoch, threads=threads, clustering=clustering)


def extract_runs(run_dirs: Iterable[str | Path], max_epoch: float = 5.0, *, threads: int | None = None,
                 clustering: bool = True) -> pd.DataFrame:
    """extract_run over several runs (e.g. one Snakemake group), concatenated."""
    frames = [extract_run(d, max_epoch, threads=threads, clustering=clustering) for d in run_dirs]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(META_COLUMNS))
