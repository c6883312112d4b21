"""Comparisons computed from the predictions table alone (so every number can be recomputed from it):

* :func:`paired_differences` - for two feature sets evaluated on the *same* test runs, the difference in
  Kendall tau and R2 with a paired percentile bootstrap interval: each resample draws test runs with
  replacement and recomputes both sets' metrics on those runs, so the interval is that of the difference,
  not two overlapping intervals. Point values are scipy.stats.kendalltau and sklearn.metrics.r2_score; the
  resamples are computed at once from draw counts (netdyn.predict.metrics.resampled_metrics), equal to
  scipy/sklearn on each explicitly resampled sample (tests/predict/test_leakage.py).
* :func:`classification_metrics` - the temporal-graph paper's framing: is a run good (final accuracy above
  the median of the runs evaluated) or bad? A run is called good when its prediction is in the upper half
  of the predictions (no threshold is fitted; the labels are balanced by construction, so chance accuracy
  is 0.5). Accuracy (sklearn accuracy_score) and ROC AUC of the prediction as a score (roc_auc_score),
  with percentile bootstrap intervals over the runs.

Intervals are percentile intervals at :data:`LEVEL` (the same level as the metrics table's ``_lo``/``_hi``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

from .metrics import LEVEL, percentile_interval, resampled_metrics

KEYS = ["arch", "dataset", "split", "window"]
PAIRED_COLUMNS = KEYS + ["a", "b", "n_test", "tau_a", "tau_b", "d_tau", "d_tau_lo", "d_tau_hi", "p_tau_gt0",
                         "r2_a", "r2_b", "d_r2", "d_r2_lo", "d_r2_hi", "level", "bootstrap"]
CLASS_COLUMNS = KEYS + ["feature_set", "n_test", "n_good", "median_final", "accuracy", "accuracy_lo",
                        "accuracy_hi", "roc_auc", "roc_auc_lo", "roc_auc_hi", "level", "bootstrap"]


def _tau(y, p) -> float:
    if np.ptp(y) == 0 or np.ptp(p) == 0:
        return np.nan
    return float(stats.kendalltau(y, p).statistic)


def _r2(y, p) -> float:
    return float(r2_score(y, p)) if np.ptp(y) > 0 else np.nan


def resample_indices(n: int, bootstrap: int, seed: int) -> np.ndarray:
    """(bootstrap, n) row indices drawn with replacement; the same for every comparison of n runs."""
    return np.random.default_rng(seed).integers(0, n, size=(bootstrap, n))


def resample_counts(n: int, bootstrap: int, seed: int) -> np.ndarray:
    """How often each resample of :func:`resample_indices` draws each row, shape (bootstrap, n)."""
    draw = resample_indices(n, bootstrap, seed)
    return np.bincount((draw + n * np.arange(bootstrap)[:, None]).ravel(),
                       minlength=bootstrap * n).reshape(bootstrap, n)


def weighted_auc(good: np.ndarray, score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """ROC AUC of each resample given by draw counts: the Mann-Whitney statistic over (good, bad) pairs,
    ties counting one half - roc_auc_score on the expanded sample; NaN where a resample has one class."""
    s = np.asarray(score, float)
    m = (s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :])
    w = np.asarray(counts, float)
    wp, wn = w * good, w * ~good
    npos, nneg = wp.sum(1), wn.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((wp @ m) * wn).sum(1) / (npos * nneg)
    auc[(npos == 0) | (nneg == 0)] = np.nan
    return auc


def paired_difference(y, pa, pb, *, bootstrap: int = 1000, seed: int = 0, level: float = LEVEL) -> dict:
    """tau(a) - tau(b) and R2(a) - R2(b) on the same runs, with paired bootstrap intervals."""
    y, pa, pb = (np.asarray(v, float) for v in (y, pa, pb))
    out = {"n_test": len(y), "tau_a": _tau(y, pa), "tau_b": _tau(y, pb), "r2_a": _r2(y, pa), "r2_b": _r2(y, pb)}
    out["d_tau"], out["d_r2"] = out["tau_a"] - out["tau_b"], out["r2_a"] - out["r2_b"]
    dt = dr = np.array([])
    if bootstrap > 0 and len(y) >= 2:
        counts = resample_counts(len(y), bootstrap, seed)
        ra, rb = resampled_metrics(y, pa, counts), resampled_metrics(y, pb, counts)
        dt, dr = ra["kendall_tau"] - rb["kendall_tau"], ra["r2"] - rb["r2"]
    out["d_tau_lo"], out["d_tau_hi"] = percentile_interval(dt, level)
    out["d_r2_lo"], out["d_r2_hi"] = percentile_interval(dr, level)
    ok = np.isfinite(dt)
    out["p_tau_gt0"] = float((dt[ok] > 0).mean()) if ok.any() else np.nan
    out["level"], out["bootstrap"] = level, bootstrap
    return out


def _pair_rows(predictions: pd.DataFrame, a: str, b: str) -> dict:
    """{key: (y, pred_a, pred_b)} for every arch x data set x split x window where both sets exist; the
    runs must be the same (ValueError otherwise)."""
    out = {}
    pa = predictions[predictions["feature_set"] == a]
    pb = predictions[predictions["feature_set"] == b]
    gb = dict(list(pb.groupby(KEYS, sort=True)))
    for key, ga in pa.groupby(KEYS, sort=True):
        if key not in gb:
            continue
        ga = ga.set_index("run_id").sort_index()
        g2 = gb[key].set_index("run_id").sort_index()
        if not ga.index.equals(g2.index):
            raise ValueError(f"{a} and {b} were evaluated on different runs for {dict(zip(KEYS, key))}")
        out[key] = (ga["y_true"].to_numpy(float), ga["y_pred"].to_numpy(float), g2["y_pred"].to_numpy(float))
    return out


def paired_differences(predictions: pd.DataFrame, pairs: Sequence[tuple[str, str]], *, bootstrap: int = 1000,
                       seed: int = 0, level: float = LEVEL) -> pd.DataFrame:
    """One row per pair (a, b) x arch x data set x split x window: tau and R2 of a minus those of b on the
    same test runs (pooled over test widths), with paired bootstrap intervals."""
    rows = []
    for a, b in pairs:
        for key, (y, pa, pb) in _pair_rows(predictions, a, b).items():
            rows.append({**dict(zip(KEYS, key)), "a": a, "b": b,
                         **paired_difference(y, pa, pb, bootstrap=bootstrap, seed=seed, level=level)})
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def good_labels(y_true) -> tuple[np.ndarray, float]:
    """(good, median): good = final accuracy strictly above the median of these runs."""
    y = np.asarray(y_true, float)
    med = float(np.median(y))
    return y > med, med


def called_good(y_pred) -> np.ndarray:
    """The prediction in the upper half of the predictions (strictly above their median)."""
    p = np.asarray(y_pred, float)
    return p > np.median(p)


def classification(y_true, y_pred, *, bootstrap: int = 1000, seed: int = 0, level: float = LEVEL) -> dict:
    """Accuracy of good-vs-bad calls and ROC AUC of the prediction as a score, with bootstrap intervals
    (labels and calls are fixed per run; resamples holding one class only are skipped for the AUC)."""
    y, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    good, med = good_labels(y)
    call = called_good(p)
    out = {"n_test": len(y), "n_good": int(good.sum()), "median_final": med,
           "accuracy": float(accuracy_score(good, call)) if len(y) else np.nan,
           "roc_auc": float(roc_auc_score(good, p)) if 0 < good.sum() < len(y) else np.nan}
    acc = auc = np.array([])
    if bootstrap > 0 and len(y) >= 2:
        counts = resample_counts(len(y), bootstrap, seed)
        acc = counts @ (good == call).astype(float) / len(y)
        auc = weighted_auc(good, p, counts)
    out["accuracy_lo"], out["accuracy_hi"] = percentile_interval(acc, level)
    out["roc_auc_lo"], out["roc_auc_hi"] = percentile_interval(auc, level)
    out["level"], out["bootstrap"] = level, bootstrap
    return out


def classification_metrics(predictions: pd.DataFrame, *, bootstrap: int = 1000, seed: int = 0,
                           level: float = LEVEL) -> pd.DataFrame:
    """One row per arch x data set x split x window x feature set, pooled over test widths."""
    rows = []
    for key, g in predictions.groupby(KEYS + ["feature_set"], sort=True):
        rows.append({**dict(zip(KEYS + ["feature_set"], key)),
                     **classification(g["y_true"], g["y_pred"], bootstrap=bootstrap, seed=seed, level=level)})
    return pd.DataFrame(rows, columns=CLASS_COLUMNS)
