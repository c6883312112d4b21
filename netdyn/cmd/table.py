"""The CMD stage's grid-wide tables: one row per run and M (tables/cmd.csv) from the cheap pass over every
run and the deep analysis of the runs the config names, and the fit behind the example figures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .decompose import abs_correlation, posthoc
from .result import CMDResult
from .source import as_source

RUN_COLUMNS = ["run_id", "arch", "arch_label", "dataset", "width", "learning_rate", "dropout", "weight_decay", "seed",
               "status"]
CMD_COLUMNS = [*RUN_COLUMNS, "analysis", "n_modes", "modes_found", "rel_error_final", "rel_error_max", "acc_sgd",
               "acc_sgd_bn_recomputed", "acc_cmd", "acc_online_cmd", "acc_embedded_cmd", "trained_fraction_final", "acc_cmd_best",
               "acc_online_cmd_best"]


def read_all(paths, columns) -> pd.DataFrame:
    """The rows of every CSV in ``paths``; for none (e.g. no run named in cmd.deep) an empty frame with
    ``columns``, so the CSV written from it has its header and reads back (an empty file would not)."""
    frames = [pd.read_csv(p) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def cmd_table(runs: pd.DataFrame, snapshots: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """One row per run and M. ``analysis`` = cheap (every run: error only; acc_sgd is the run's final test
    accuracy from runs.csv, the CMD accuracies are empty) or deep (the runs of cmd.deep: acc_* measured at the
    last snapshot by netdyn.cmd.evaluate_run, *_best the best over the snapshots; acc_sgd_bn_recomputed the SGD
    weights with BatchNorm statistics re-estimated as the CMD weights get them, the fair baseline of acc_cmd and
    acc_online_cmd in a BatchNorm net; acc_embedded_cmd the
    embedded-CMD twin's final test accuracy and trained_fraction_final the share of parameters it still
    trained in its last epoch, empty without a twin)."""
    rows = []
    if len(snapshots):
        last = snapshots.sort_values("snapshot").groupby(["run_id", "n_modes"])
        cheap = last.agg(modes_found=("modes_found", "first"), rel_error_final=("rel_error", "last"),
                         rel_error_max=("rel_error", "max")).reset_index()
        cheap["analysis"] = "cheap"
        cheap = cheap.merge(runs[["run_id", "final_test_acc"]], on="run_id", how="left")
        rows.append(cheap.rename(columns={"final_test_acc": "acc_sgd"}))
    if len(epochs):
        g = epochs.sort_values("snapshot").groupby(["run_id", "n_modes"])
        deep = g.agg(modes_found=("modes_found", "first"), rel_error_final=("rel_error", "last"),
                     rel_error_max=("rel_error", "max"), acc_sgd=("acc_sgd", "last"),
                     acc_sgd_bn_recomputed=("acc_sgd_bn_recomputed", "last"), acc_cmd=("acc_cmd", "last"),
                     acc_online_cmd=("acc_online_cmd", "last"), acc_cmd_best=("acc_cmd", "max"),
                     acc_embedded_cmd=("acc_embedded_cmd", "last"), trained_fraction_final=("trained_fraction", "last"),
                     acc_online_cmd_best=("acc_online_cmd", "max")).reset_index()
        deep["analysis"] = "deep"
        rows.append(deep)
    if not rows:
        return pd.DataFrame(columns=CMD_COLUMNS)
    out = pd.concat(rows, ignore_index=True).merge(runs[RUN_COLUMNS], on="run_id", how="left")
    return out.reindex(columns=CMD_COLUMNS).sort_values(["run_id", "analysis", "n_modes"], ignore_index=True)


@dataclass
class ExampleFit:
    """One run's post-hoc CMD with what the figures draw: snapshot epochs, |ρ| of the sampled trajectories
    and their dendrogram order."""

    result: CMDResult
    epochs: np.ndarray
    corr: np.ndarray
    order: np.ndarray


def example_fit(run_dir, n_modes: int, *, n_samples: int, seed: int) -> ExampleFit:
    from scipy.cluster.hierarchy import leaves_list

    from ..rundir import open_trajectory

    traj = open_trajectory(run_dir)
    res = posthoc(traj, n_modes, n_samples=n_samples, seed=seed)
    corr = abs_correlation(as_source(traj).gather(res.samples))
    return ExampleFit(res, traj.snapshots["epoch"].to_numpy(dtype=float), corr, leaves_list(res.linkage))
