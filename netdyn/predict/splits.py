"""Which runs a model may learn from: configuration groups (the seeds of one configuration are never
split), the outer within-width folds, the inner tuning splits, and the checks of the width transfer."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

log = logging.getLogger(__name__)

CONFIG_KEYS = ["arch_label", "dataset", "width", "learning_rate", "dropout", "weight_decay"]
INNER_FOLDS = 3  # inner CV where neighbour folds cannot serve (transfer fit, 2 outer folds): few configurations


def config_groups(runs: pd.DataFrame) -> np.ndarray:
    """One integer per configuration (arch, data set, width, lr, dropout, weight decay): its seeds share it."""
    return pd.MultiIndex.from_frame(runs[CONFIG_KEYS].astype(str)).factorize()[0]


def within_width_folds(runs: pd.DataFrame, folds: int, seed: int) -> pd.Series:
    """Outer fold of every run: GroupKFold per arch x data set with configurations as groups, so the seeds
    of a configuration are never split. Fewer folds than asked when there are fewer configurations."""
    out = pd.Series(-1, index=runs.index, dtype=int)
    groups = config_groups(runs)
    for (arch, dataset), idx in runs.groupby(["arch_label", "dataset"], sort=True).indices.items():
        g = groups[idx]
        n_cfg = len(np.unique(g))
        if n_cfg < 2:
            raise ValueError(f"{arch} on {dataset}: only {n_cfg} configuration(s); grouped CV needs >= 2")
        k = min(folds, n_cfg)
        if k < folds:
            log.warning("%s on %s: %d configurations, so %d folds instead of %d", arch, dataset, n_cfg, k, folds)
        for f, (_, test) in enumerate(GroupKFold(k, shuffle=True, random_state=seed).split(idx, groups=g)):
            out.iloc[idx[test]] = f
    return out


def check_transfer(runs: pd.DataFrame, train_widths: Sequence[int]) -> dict[tuple[str, str], list[int]]:
    """Test widths per arch x data set; ValueError naming every arch whose train or test widths are absent."""
    problems, out = [], {}
    for (arch, dataset), sub in runs.groupby(["arch_label", "dataset"], sort=True):
        have = sorted(int(w) for w in sub["width"].unique())
        train = [w for w in train_widths if w in have]
        test = [w for w in have if w > max(train_widths)]
        if not train:
            problems.append(f"{arch} on {dataset} has no runs at train widths {list(train_widths)} "
                            f"(widths present: {have})")
        elif not test:
            problems.append(f"{arch} on {dataset} has no width larger than {max(train_widths)} to test on "
                            f"(widths present: {have})")
        out[(arch, dataset)] = test
    if problems:
        raise ValueError("width transfer impossible: " + "; ".join(problems))
    return out


def neighbour_folds(i: int, k: int) -> list[int]:
    """Inner validation folds of outer fold i: its two cyclic neighbours. Outer folds i and j then share
    the inner fit on all folds but {i, j}, so tuning costs k fits per grid point instead of k(k-1)."""
    return sorted({(i - 1) % k, (i + 1) % k} - {i})


def group_kfold_splits(rows: np.ndarray, groups: np.ndarray, n_splits: int,
                       seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner grouped splits (fit mask, validation mask) of the rows in mask `rows`."""
    idx = np.flatnonzero(rows)
    k = min(n_splits, len(np.unique(groups[idx])))
    if k < 2:
        return []
    out = []
    for a, b in GroupKFold(k, shuffle=True, random_state=seed).split(idx, groups=groups[idx]):
        fit, val = np.zeros_like(rows), np.zeros_like(rows)
        fit[idx[a]], val[idx[b]] = True, True
        out.append((fit, val))
    return out
