"""Tables of the pruning check (rule ``collect_pruning``): one row per trained run, and per architecture ×
data set the mean accuracy difference pruned − original and control − original over seeds with a t interval.

The difference is paired by seed (same seed: same minibatch order and augmentation; the initialisation
differs with the architecture): d_s = acc(variant, s) − acc(original, s) over the seeds where both runs have
a final test accuracy (a diverged run's is null and drops its pair). Interval: mean(d) ± t_{(1+c)/2, n−1} ·
sd(d)/√n (sample sd, ddof = 1), i.e. the one-sample t interval on d (= a paired t interval); NaN below two
pairs. pandas and SciPy only (no torch): the collect job reads the pruning jobs' JSON records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

PRUNING_COLUMNS = ("arch_label", "dataset", "variant", "run_id", "seed", "drop", "dropped_layers", "n_params",
                   "status", "final_test_acc")
SUMMARY_COLUMNS = ("arch_label", "dataset", "comparison", "n_seeds", "mean_diff", "ci_low", "ci_high",
                   "confidence", "n_params_original", "n_params_variant", "dropped_layers", "candidate_layers",
                   "setting", "note")
VARIANTS = ("original", "pruned", "control")  # the `variant` column
COMPARISONS = VARIANTS[1:]  # each against the original


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the t interval on the mean of `values` at `confidence` (NaN bounds below 2 values)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must lie in (0, 1), got {confidence!r}")
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def _joined(items) -> str:
    return ";".join(str(i) for i in items)


def pruning_table(records: Sequence[dict]) -> pd.DataFrame:
    """``PRUNING_COLUMNS``, one row per run of every pruning job record (``run_pruning``'s output); ``drop``
    as '.'-joined indices, ``dropped_layers`` ';'-joined names (both empty for the original)."""
    rows = [{"arch_label": rec["arch_label"], "dataset": rec["dataset"], "variant": r["variant"],
             "run_id": r["run_id"], "seed": r["seed"], "drop": ".".join(str(i) for i in r["drop"]),
             "dropped_layers": _joined(r["dropped_layers"]), "n_params": r["n_params"], "status": r["status"],
             "final_test_acc": math.nan if r["final_test_acc"] is None else r["final_test_acc"]}
            for rec in records for r in rec["runs"]]
    return pd.DataFrame(rows, columns=list(PRUNING_COLUMNS))


def pruning_summary(records: Sequence[dict], confidence: float = 0.95) -> pd.DataFrame:
    """``SUMMARY_COLUMNS``: per job record and comparison (pruned, control), the mean paired difference to the
    original over seeds and its t interval. A job that trained nothing (or no control) still gets its rows,
    with n_seeds 0 and its ``note``."""
    table = pruning_table(records)
    rows = []
    for rec in records:
        part = table[(table["arch_label"] == rec["arch_label"]) & (table["dataset"] == rec["dataset"])]
        acc = part.pivot_table(index="seed", columns="variant", values="final_test_acc", aggfunc="first")
        params = part.groupby("variant")["n_params"].first()
        for variant in COMPARISONS:
            if variant in acc and "original" in acc:
                d = (acc[variant] - acc["original"]).dropna().to_numpy()
            else:
                d = np.array([])
            mean, low, high = mean_interval(d, confidence)
            layers = rec["dropped_layers"] if variant == "pruned" else rec["control_layers"]
            rows.append({"arch_label": rec["arch_label"], "dataset": rec["dataset"],
                         "comparison": f"{variant}-original", "n_seeds": int(d.size), "mean_diff": mean,
                         "ci_low": low, "ci_high": high, "confidence": confidence,
                         "n_params_original": params.get("original", math.nan),
                         "n_params_variant": params.get(variant, math.nan), "dropped_layers": _joined(layers),
                         "candidate_layers": _joined(rec["candidate_layers"]), "setting": rec["setting"] or "",
                         "note": rec["note"]})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
