"""One training group's modularity table (rule ``modularity``): each run's snapshots chosen by
``stage.snapshots_for``, Q per layer by ``run.run_curves``. Kept apart from ``stage`` so that the collect
and prediction jobs, which read tables only, import neither torch nor graph-tool."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .stage import TABLE_COLUMNS, snapshots_for


def group_table(runs: Sequence[dict], *, max_epoch: float, k: int, n_per_batch: int, n_batches: int,
                data_root: str = "data", device=None) -> pd.DataFrame:
    """``TABLE_COLUMNS`` (plus ``snapshot``) for one training group: ``runs`` are dicts with ``run_dir``
    and ``every`` (wants_every_epoch); each run's snapshots chosen by :func:`snapshots_for`."""
    from ..rundir import open_trajectory
    from .run import run_curves

    parts = []
    for spec in runs:
        epochs = list(open_trajectory(spec["run_dir"]).snapshots["epoch"])
        indices = snapshots_for(epochs, spec["every"], max_epoch)
        parts.append(run_curves(spec["run_dir"], indices, k=k, n_per_batch=n_per_batch, n_batches=n_batches,
                                data_root=data_root, device=device))
    table = pd.concat(parts, ignore_index=True)
    return table[["run_id", "snapshot", *TABLE_COLUMNS[1:]]]
