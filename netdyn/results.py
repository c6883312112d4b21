"""Readers of what the training stage leaves per run: settings, outcome, learning curves.

Later stages read runs only through here and :mod:`netdyn.trajectory`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

RUN_COLUMNS = ["run_id", "arch", "arch_label", "dataset", "width", "learning_rate", "dropout", "weight_decay",
               "seed", "epochs", "status", "diverged_epoch", "final_test_acc", "best_test_acc", "n_snapshots",
               "trajectory_bytes", "wall_seconds"]


class RunMissingError(FileNotFoundError):
    """A run the caller expects has not (fully) been trained."""


def read_json(path: Path, run_id: str) -> dict:
    if not path.exists():
        raise RunMissingError(f"run {run_id}: {path} is missing; train the run first (snakemake ... train)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"run {run_id}: {path} is not valid JSON ({e})") from None


def run_record(runs_dir: str | Path, run_id: str) -> dict:
    """Settings and outcome of one finished run, flat."""
    d = Path(runs_dir) / run_id
    cfg = read_json(d / "config.json", run_id)["run"]
    res = read_json(d / "result.json", run_id)
    return {**{k: v for k, v in cfg.items()}, **res}


def runs_table(runs_dir: str | Path, run_ids: list[str]) -> pd.DataFrame:
    rows = [run_record(runs_dir, r) for r in run_ids]
    df = pd.DataFrame(rows)
    return df[RUN_COLUMNS + [c for c in df.columns if c not in RUN_COLUMNS]]


def curves(runs_dir: str | Path, run_id: str) -> pd.DataFrame:
    """Learning curves of one run: one row per snapshot (snapshot -1 marks a diverged measurement)."""
    path = Path(runs_dir) / run_id / "curves.csv"
    if not path.exists():
        raise RunMissingError(f"run {run_id}: {path} is missing")
    return pd.read_csv(path, float_precision="round_trip")  # exactly the values training wrote
