"""The workflow's modularity stage: which snapshots a run gets (its table: ``group``), the grid-wide
tables, the plateau table and the early-window feature set for prediction.

Snapshots per run (``snapshots_for``): the final one always; every snapshot up to the largest prediction
window (the ``modularity`` feature set reads them); every snapshot of runs named in
``modularity.epochs_for`` (``fnmatch`` patterns matched against the run id and the architecture label).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatch

import numpy as np
import pandas as pd

from .plateau import DEFAULT_MIN_RUN, DEFAULT_THRESHOLD, plateau_runs

TABLE_COLUMNS = ("run_id", "epoch", "layer_index", "layer_name", "q_mean", "q_std")
# the runs plateau detection reads: >= this fraction of the best final test accuracy of their architecture x
# data set (`modularity.learned_fraction`; the schema's default is the same number)
LEARNED_FRACTION = 0.9
PLATEAU_COLUMNS = ("arch_label", "dataset", "n_runs", "n_layers", "plateau_runs", "candidate_layers",
                   "threshold", "min_run", "learned_fraction")


def wants_every_epoch(run_id: str, arch_label: str, patterns: Iterable[str]) -> bool:
    """Whether a run's every snapshot gets a curve: a pattern matches its run id or architecture label."""
    return any(fnmatch(run_id, p) or fnmatch(arch_label, p) for p in patterns)


def snapshots_for(epochs: Sequence[float], every: bool, max_epoch: float) -> list[int]:
    """Snapshot indices: all when `every`, else those with epoch <= `max_epoch` and the final one."""
    n = len(epochs)
    if every:
        return list(range(n))
    chosen = [i for i, e in enumerate(epochs) if e <= max_epoch + 1e-9]
    return sorted(set(chosen) | {n - 1})


def early_window_features(table: pd.DataFrame, window: float) -> pd.DataFrame:
    """The ``modularity`` feature set for window E: Q (``q_mean``) of every layer at every snapshot with
    epoch <= E, one row per run (index run_id), columns ``mod_q_l<layer index>_e<epoch>``. Layers a run's
    architecture lacks are NaN (prediction fits one architecture at a time and drops empty columns)."""
    early = table[table["epoch"] <= window + 1e-9]
    if early.empty:
        raise ValueError(f"modularity table holds no snapshot with epoch <= {window}")
    wide = early.pivot_table(index="run_id", columns=["layer_index", "epoch"], values="q_mean", aggfunc="first")
    wide.columns = [f"mod_q_l{int(layer)}_e{epoch:g}" for layer, epoch in wide.columns]
    missing = sorted(set(table["run_id"]) - set(wide.index))
    if missing:
        raise ValueError(f"modularity table: run(s) {missing[:5]} have no snapshot with epoch <= {window}")
    return wide.sort_index(axis=1)


def final_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Each run's curve at its last tabled epoch."""
    last = table.groupby("run_id")["epoch"].transform("max")
    return table[table["epoch"] == last]


def learned_runs(runs: pd.DataFrame, fraction: float = LEARNED_FRACTION) -> pd.DataFrame:
    """The runs that trained: complete (not diverged) and with a final test accuracy of at least
    `fraction` × the best of their architecture × data set. A grid holds learning rates too small or too
    large to learn anything; their near-chance curves would otherwise read as a degradation at every layer.
    `fraction` is `modularity.learned_fraction` (0 < fraction <= 1; 1 keeps the best run(s) only)."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"learned_fraction: must be a number in (0, 1], got {fraction!r}")
    done = runs[runs["status"] == "complete"]
    best = done.groupby(["arch_label", "dataset"])["final_test_acc"].transform("max")
    return done[done["final_test_acc"] >= fraction * best]


def plateau_table(table: pd.DataFrame, runs: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD,
                  min_run: int = DEFAULT_MIN_RUN, fraction: float = LEARNED_FRACTION) -> pd.DataFrame:
    """Candidate layers per architecture × data set: the plateau rule (netdyn.modularity.plateau) applied
    to the mean over that group's :func:`learned_runs` (at ``fraction``) of their final-snapshot Q per layer.
    ``plateau_runs`` and ``candidate_layers`` are ';'-joined (layer index ranges / layer names); the rule's
    settings (threshold, min_run, learned_fraction) are recorded beside them."""
    final = final_curves(table).merge(learned_runs(runs, fraction)[["run_id", "arch_label", "dataset"]],
                                      on="run_id")
    rows = []
    for (arch, dataset), part in final.groupby(["arch_label", "dataset"], sort=True):
        mean = part.groupby(["layer_index", "layer_name"], as_index=False)["q_mean"].mean().sort_values("layer_index")
        found = plateau_runs(mean["q_mean"].to_numpy(np.float64), threshold, min_run)
        names = list(mean["layer_name"])
        rows.append({"arch_label": arch, "dataset": dataset, "n_runs": part["run_id"].nunique(),
                     "n_layers": len(names), "plateau_runs": ";".join(f"{a}-{b}" for a, b in found),
                     "candidate_layers": ";".join(names[i] for a, b in found for i in range(a, b + 1)),
                     "threshold": threshold, "min_run": min_run, "learned_fraction": fraction})
    return pd.DataFrame(rows, columns=list(PLATEAU_COLUMNS))

