"""netdyn.predict.metrics: point metrics are the libraries' own, the bootstrap matches scipy/sklearn on
expanded samples, and every metrics row can be recomputed from the predictions table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error, r2_score

import netdyn.predict as P

from .synthetic import FAST


def test_metrics_recomputable_from_predictions(result, tmp_path):
    pred = result["predictions"]
    args = {k: FAST[k] for k in ("bootstrap", "top_fraction", "seed")}
    pd.testing.assert_frame_equal(P.metrics_from_predictions(pred, **args), result["metrics"])
    pred.to_csv(tmp_path / "predictions.csv", index=False)  # as the workflow stores it
    again = P.metrics_from_predictions(pd.read_csv(tmp_path / "predictions.csv"), **args)
    pd.testing.assert_frame_equal(again, result["metrics"], check_exact=False, rtol=1e-12)


def test_point_metrics_are_the_library_metrics(result):
    pred = result["predictions"]
    m = result["metrics"]
    row = m[(m["split"] == P.SPLIT_TRANSFER) & (m["subset"] == "non-diverged") & (m["test_width"] == 3)].iloc[0]
    p = pred[(pred["split"] == P.SPLIT_TRANSFER) & (pred["arch"] == row["arch"])
             & (pred["feature_set"] == row["feature_set"]) & (pred["window"] == row["window"])
             & (pred["width"] == 3) & ~pred["diverged"]]
    assert row["n_test"] == len(p)
    assert row["r2"] == pytest.approx(r2_score(p["y_true"], p["y_pred"]))
    assert row["mae"] == pytest.approx(mean_absolute_error(p["y_true"], p["y_pred"]))
    assert row["kendall_tau"] == pytest.approx(stats.kendalltau(p["y_true"], p["y_pred"]).statistic)
    assert row["spearman"] == pytest.approx(stats.spearmanr(p["y_true"], p["y_pred"]).statistic)


def test_resampled_metrics_match_scipy_and_sklearn_on_expanded_samples():
    rng = np.random.default_rng(3)
    y = np.round(rng.random(25), 1)  # ties on purpose
    p = np.round(y + 0.3 * rng.normal(size=25), 1)
    counts = rng.multinomial(25, np.full(25, 1 / 25), size=6)
    got = P.resampled_metrics(y, p, counts)
    for b, c in enumerate(counts):
        ys, ps = np.repeat(y, c), np.repeat(p, c)
        assert got["r2"][b] == pytest.approx(r2_score(ys, ps))
        assert got["mae"][b] == pytest.approx(mean_absolute_error(ys, ps))
        assert got["kendall_tau"][b] == pytest.approx(stats.kendalltau(ys, ps).statistic)
        assert got["spearman"][b] == pytest.approx(stats.spearmanr(ys, ps).statistic)


def test_bootstrap_interval_contains_point_estimate(result):
    rng = np.random.default_rng(4)
    y = rng.random(60)
    m = P.prediction_metrics(y, y + 0.2 * rng.normal(size=60), bootstrap=500, seed=1)
    for k in P.METRIC_NAMES:
        assert m[f"{k}_lo"] < m[k] < m[f"{k}_hi"], k
    big = result["metrics"][(result["metrics"]["n_test"] >= 30) & (result["metrics"]["subset"] == "all")]
    for k in P.METRIC_NAMES:
        ok = big[[k, f"{k}_lo", f"{k}_hi"]].dropna()
        assert len(ok) and ((ok[f"{k}_lo"] <= ok[k]) & (ok[k] <= ok[f"{k}_hi"])).all(), k


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(5)
    y, p = rng.random(30), rng.random(30)
    assert P.prediction_metrics(y, p, seed=2) == P.prediction_metrics(y, p, seed=2)
    assert P.prediction_metrics(y, p, seed=2)["r2_lo"] != P.prediction_metrics(y, p, seed=3)["r2_lo"]


def test_undefined_metrics_are_nan_not_errors():
    for y, p in (([], []), ([0.5], [0.4]), ([0.3, 0.3, 0.3], [0.1, 0.2, 0.3]), ([0.1, 0.2], [0.5, 0.5])):
        m = P.prediction_metrics(y, p, bootstrap=50)
        assert math.isnan(m["kendall_tau"]) and math.isnan(m["spearman"])
    m = P.prediction_metrics([0.3, 0.3, 0.3], [0.1, 0.2, 0.3], bootstrap=50)
    assert math.isnan(m["r2"]) and m["mae"] == pytest.approx(0.1)


def test_top_k_precision_perfect_reversed_and_ties():
    y = np.linspace(0, 1, 50)
    assert P.top_k_precision(y, y, 0.1) == (5, 1.0)
    assert P.top_k_precision(y, -y, 0.1) == (5, 0.0)
    assert P.top_k_precision(y, 2 * y + 3, 0.2) == (10, 1.0)  # only the order matters
    # a constant predictor ranks nobody: expected precision under random tie-breaking = k/n
    assert P.top_k_precision(y, np.zeros(50), 0.1)[1] == pytest.approx(0.1)
    assert P.top_k_precision([], [], 0.1)[1] != P.top_k_precision([], [], 0.1)[1]  # NaN


def test_diverged_subset_reported_separately(result):
    m = result["metrics"]
    pooled = m[m["test_width"].isna() & (m["split"] == P.SPLIT_WITHIN)]
    n = pooled.pivot_table(index=["arch", "feature_set", "window"], columns="subset", values="n_test")
    assert (n["all"] == n["diverged"] + n["non-diverged"]).all()
    assert (n["diverged"] == 3).all()  # lr 0.3, dropout 0, seed 1 diverges, at each of 3 widths
    div = pooled[pooled["subset"] == "diverged"]
    assert div["kendall_tau"].isna().all()  # all diverged runs end at 0.1: a rank metric is undefined
