"""Grid-wide readers of what the training stage leaves per run: settings, outcome, learning curves.

The files themselves are read by :mod:`netdyn.rundir` (torch-free for these three), the one place that
knows a run directory's layout.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .rundir import RunMissingError, read_config, read_curves, read_result, run_dir  # noqa: F401  (re-exported)

RUN_COLUMNS = ["run_id", "arch", "arch_label", "dataset", "width", "learning_rate", "dropout", "weight_decay",
               "seed", "epochs", "status", "diverged_epoch", "final_test_acc", "best_test_acc", "n_snapshots",
               "trajectory_bytes", "wall_seconds"]


def run_record(runs_dir: str | Path, run_id: str) -> dict:
    """Settings and outcome of one finished run, flat."""
    d = run_dir(runs_dir, run_id)
    return {**read_config(d)["run"], **read_result(d)}


def runs_table(runs_dir: str | Path, run_ids: list[str]) -> pd.DataFrame:
    rows = [run_record(runs_dir, r) for r in run_ids]
    df = pd.DataFrame(rows)
    return df[RUN_COLUMNS + [c for c in df.columns if c not in RUN_COLUMNS]]


def curves(runs_dir: str | Path, run_id: str) -> pd.DataFrame:
    """Learning curves of one run: one row per snapshot (snapshot -1 marks a diverged measurement)."""
    return read_curves(run_dir(runs_dir, run_id))
