"""The workflow's CMD stage per run: the cheap pass every run gets (post-hoc CMD for a few M: relative error
per snapshot, mode sizes per layer; no test evaluation), the early-window features of the prediction stage,
and which runs the config names for the deeper analysis (:func:`netdyn.cmd.evaluate_run`).

Early-window features see only snapshots with epoch ≤ E (the same window as every other feature set):
post-hoc CMD with M modes on those rows alone, then its reconstruction error, how the parameters spread
over the modes, and statistics of the fitted slopes a and offsets b.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import numpy as np
import pandas as pd

from .decompose import posthoc
from .evaluate import mode_layer_table
from .source import CMDError, trajectory_layers

SNAPSHOT_COLUMNS = ["run_id", "n_modes", "modes_found", "snapshot", "epoch", "rel_error"]
FEATURE_PREFIX = "cmd."


def run_modes(traj, n_modes_list, *, n_samples: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Post-hoc CMD of a run's whole trajectory for each M: (per-snapshot relative error, mode-layer counts)."""
    epochs = traj.snapshots["epoch"].to_numpy(dtype=float)
    snaps, layers = [], []
    for m in n_modes_list:
        res = posthoc(traj, m, n_samples=n_samples, seed=seed)
        snaps.append(pd.DataFrame({"run_id": traj.run_id, "n_modes": m, "modes_found": res.n_modes,
                                   "snapshot": np.arange(len(traj)), "epoch": epochs,
                                   "rel_error": res.relative_error}, columns=SNAPSHOT_COLUMNS))
        layers.append(mode_layer_table(res, traj.run_id, m))
    return pd.concat(snaps, ignore_index=True), pd.concat(layers, ignore_index=True)


def window_rows(epochs, window: float) -> int:
    """Snapshots with epoch ≤ window (:func:`netdyn.rundir.in_window`, as every feature set counts them):
    a leading block of rows, snapshots being stored in epoch order."""
    from ..rundir import in_window

    mask = in_window(epochs, window)
    k = int(mask.sum())
    if not mask[:k].all():
        raise ValueError(f"snapshot epochs {list(epochs)} are not in order")
    return k


def result_features(res) -> dict[str, float]:
    """Scalar summary of a CMD fit: error, mode-size distribution, coefficient statistics."""
    sizes = res.mode_sizes() / res.n_params
    p = sizes[sizes > 0]
    a, b = np.abs(res.a), res.b
    q10, q50, q90 = np.quantile(a, [0.1, 0.5, 0.9])
    f = {"rel_error_last": res.relative_error[-1], "rel_error_mean": float(np.mean(res.relative_error)),
         "modes_found": res.n_modes, "largest_mode_fraction": float(sizes.max()),
         "mode_entropy": float(-(p * np.log(p)).sum() / np.log(res.n_modes)) if res.n_modes > 1 else 0.0,
         "abs_a_mean": float(a.mean()), "abs_a_std": float(a.std()), "abs_a_q10": q10, "abs_a_q50": q50,
         "abs_a_q90": q90, "b_std": float(b.std())}
    return {FEATURE_PREFIX + k: float(v) for k, v in f.items()}


def window_features(W, epochs, windows, n_modes: int, *, n_samples: int, seed: int, layers=None,
                    run: str = "<array>") -> pd.DataFrame:
    """One row per window E (run_id, window, cmd.* features) of a (T, N) array (or memmap) whose row t was
    taken at ``epochs[t]``, from the rows with epoch ≤ E only."""
    rows = []
    for e in windows:
        k = window_rows(epochs, e)
        if k < 2:
            raise CMDError(run, "window", f"E={e} holds {k} snapshot(s); CMD needs at least 2")
        res = posthoc(W[:k], n_modes, n_samples=n_samples, seed=seed, layers=layers, run=run)
        rows.append({"run_id": run, "window": e, **result_features(res)})
    return pd.DataFrame(rows)


def early_features(traj, windows, n_modes: int, *, n_samples: int, seed: int) -> pd.DataFrame:
    """:func:`window_features` of a run's trainable parameters."""
    return window_features(traj.matrix, traj.snapshots["epoch"].to_numpy(dtype=float), windows, n_modes,
                           n_samples=n_samples, seed=seed, layers=trajectory_layers(traj), run=traj.run_id)


def deep_runs(patterns, runs) -> list[str]:
    """Run ids the config's ``cmd.deep`` names: a pattern matches a run id (shell-style, e.g.
    ``lenet-digits-w1-*``) or equals its architecture label (``vgg11bn``). ``runs``: RunSpec-likes."""
    return [r.run_id for r in runs if any(p == r.arch_label or fnmatchcase(r.run_id, p) for p in patterns)]
