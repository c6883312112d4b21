"""How good the predictions are: R2, MAE, Kendall tau and Spearman rho with percentile bootstrap 95%
intervals, and top-k precision, for all / non-diverged / diverged runs - computed from the predictions
table alone (:func:`metrics_from_predictions`), so any metrics row can be recomputed from what is stored."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import mean_absolute_error, r2_score
from threadpoolctl import threadpool_limits

from .tables import METRIC_COLUMNS, METRIC_NAMES, PREDICTION_COLUMNS, SUBSETS

LEVEL = 0.95  # every interval of the stage: the metrics' _lo/_hi, paired differences, classification


def percentile_interval(draws, level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval at `level` (bounds at (1 - level)/2 and (1 + level)/2) of the finite
    draws; (NaN, NaN) when there are none."""
    d = np.asarray(draws, float)
    d = d[np.isfinite(d)]
    if not len(d):
        return np.nan, np.nan
    lo, hi = np.percentile(d, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def top_k_precision(y_true, y_pred, fraction: float) -> tuple[int, float]:
    """(k, precision): of the k = ceil(fraction n) runs ranked highest by the predictor, the share that is
    truly in the top k (true ties at the k-th value count as top). Predictions tied across the cut count
    by their expected share under random tie-breaking, so the result does not depend on row order."""
    y, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    n = len(y)
    if n == 0:
        return 0, np.nan
    k = max(1, math.ceil(round(fraction * n, 9)))
    k = min(k, n)
    true_top = y >= np.sort(y)[::-1][k - 1]
    cut = np.sort(p)[::-1][k - 1]
    above, tied = p > cut, p == cut
    hits = true_top[above].sum() + (k - above.sum()) * true_top[tied].mean()
    return k, float(hits / k)


def resampled_metrics(y_true, y_pred, counts: np.ndarray) -> dict[str, np.ndarray]:
    """R2, MAE, Kendall tau-b and Spearman rho of many bootstrap resamples at once.

    A resample is given by how often it draws each row (``counts``, shape (B, n)); every statistic is then a
    weighted sum over rows or row pairs, i.e. a matrix product, instead of B calls to scipy (which would
    take minutes over the study's ~2,000 metric rows). Copies of one row form pairs tied in both variables,
    which tau-b and average ranks treat exactly as scipy does on the expanded sample (tested).
    """
    y, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    w = np.asarray(counts, float)
    n = w.sum(1)
    sy, sp = np.sign(y[:, None] - y[None, :]), np.sign(p[:, None] - p[None, :])

    def quad(m):  # sum over ordered row pairs of c_i c_j m_ij
        return ((w @ m) * w).sum(1)

    ny, npred = quad(np.abs(sy)), quad(np.abs(sp))  # pairs not tied in y / in p (x2)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = quad(sy * sp) / np.sqrt(ny * npred)
        mae = w @ np.abs(y - p) / n
        ybar = w @ y / n
        sst = (w * (y[None, :] - ybar[:, None]) ** 2).sum(1)
        r2 = 1 - (w @ (y - p) ** 2) / sst

        def ranks(v):  # average ranks of each row's value inside the resample
            less = w @ (v[:, None] < v[None, :]).astype(float)
            eq = w @ (v[:, None] == v[None, :]).astype(float)
            return less + (eq + 1) / 2

        ry, rp = ranks(y), ranks(p)
        my, mp = (w * ry).sum(1) / n, (w * rp).sum(1) / n
        dy, dp = ry - my[:, None], rp - mp[:, None]
        rho = (w * dy * dp).sum(1) / np.sqrt((w * dy * dy).sum(1) * (w * dp * dp).sum(1))
    const_y, const_p = ny == 0, npred == 0
    r2[const_y] = np.nan
    tau[const_y | const_p] = np.nan
    rho[const_y | const_p] = np.nan
    return {"r2": r2, "mae": mae, "kendall_tau": tau, "spearman": rho}


def point_metrics(y_true, y_pred) -> dict[str, float]:
    """R2 and MAE (sklearn), Kendall tau-b and Spearman rho (scipy); NaN where undefined (n < 2, constant)."""
    y, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    out = dict.fromkeys(METRIC_NAMES, np.nan)
    if len(y) >= 1:
        out["mae"] = mean_absolute_error(y, p)
    if len(y) >= 2 and np.ptp(y) > 0:
        out["r2"] = r2_score(y, p)
        if np.ptp(p) > 0:
            out["kendall_tau"] = stats.kendalltau(y, p).statistic
            out["spearman"] = stats.spearmanr(y, p).statistic
    return {k: float(v) for k, v in out.items()}


def prediction_metrics(y_true, y_pred, *, bootstrap: int = 1000, top_fraction: float = 0.1,
                       seed: int = 0) -> dict[str, float]:
    """Point metrics with percentile bootstrap 95% intervals and top-k precision for one set of runs.

    Every call with the same n draws the same resamples (``default_rng(seed)``): intervals of feature sets
    compared on the same runs use common random numbers, and any row can be recomputed on its own.
    """
    y, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    n = len(y)
    out = {}
    point = point_metrics(y, p)
    draws = None
    if bootstrap > 0 and n >= 2:
        draw = np.random.default_rng(seed).integers(0, n, size=(bootstrap, n))
        counts = np.bincount((draw + n * np.arange(bootstrap)[:, None]).ravel(),
                             minlength=bootstrap * n).reshape(bootstrap, n)
        draws = resampled_metrics(y, p, counts)
    for m in METRIC_NAMES:
        out[m] = point[m]
        lo = hi = np.nan
        if draws is not None and np.isfinite(point[m]):
            lo, hi = percentile_interval(draws[m], LEVEL)
        out[f"{m}_lo"], out[f"{m}_hi"] = float(lo), float(hi)
    out["top_k"], out["top_k_precision"] = top_k_precision(y, p, top_fraction)
    return out


def metrics_from_predictions(predictions: pd.DataFrame, *, bootstrap: int = 1000, top_fraction: float = 0.1,
                             seed: int = 0) -> pd.DataFrame:
    """The prediction_metrics table from the predictions table alone.

    One row per arch x data set x feature set x window x split x test width (each width, and <NA> for all
    widths pooled) x subset (all / non-diverged / diverged, with n_test; metrics NaN where undefined).
    ``n_train`` is the mean training-set size of the models behind the rows (CV folds differ slightly).
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions table lacks column(s) {missing}")
    p = predictions.assign(train_widths=predictions["train_widths"].astype(str),
                           diverged=predictions["diverged"].astype(bool))
    rows = []
    keys = ["arch", "dataset", "feature_set", "window", "split", "train_widths"]
    with threadpool_limits(1):  # small matrix products: a second BLAS thread only adds contention (2x)
        for key, g in p.groupby(keys, sort=False):
            levels = [(pd.NA, g)] + [(int(w), g[g["width"] == w]) for w in sorted(g["width"].unique())]
            for tw, gw in levels:
                for subset in SUBSETS:
                    gs = gw if subset == "all" else gw[gw["diverged"] == (subset == "diverged")]
                    m = prediction_metrics(gs["y_true"], gs["y_pred"], bootstrap=bootstrap,
                                           top_fraction=top_fraction, seed=seed)
                    rows.append({**dict(zip(keys, key)), "subset": subset, "test_width": tw,
                                 "n_train": int(round(gs["n_train"].mean())) if len(gs) else pd.NA,
                                 "n_test": len(gs), **m})
    out = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    if len(out):
        out = out.astype({"test_width": "Int64", "n_train": "Int64", "n_test": int, "window": int,
                          "top_k": int})
    return out
