"""Tests that fail under leakage and wrong statistics (issue 14, item 7).

* every fit, outer and inner, is spied on: no row of the outer test fold reaches a within-width fit or its
  tuning splits, no wider run reaches the transfer fit, and the outer model is fitted on exactly the
  training folds;
* interval bounds equal the percentiles at (1 -/+ 0.95)/2 of explicitly resampled scipy/sklearn metrics, so
  a 90% interval labelled 95% fails;
* tuning picks the grid point of least validation error, computed here independently with XGBRegressor.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xgboost
from scipy import stats
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

import netdyn.predict as P
import netdyn.predict.compare as C
import netdyn.predict.evaluate as E
from netdyn.predict.metrics import LEVEL


def _task(k: int, seed: int = 0) -> E.Task:
    """60 runs: 20 configurations x 3 seeds over widths 1-3, k outer folds by configuration."""
    rng = np.random.default_rng(seed)
    n_cfg, n_seed = 20, 3
    groups = np.repeat(np.arange(n_cfg), n_seed)
    widths = 1 + groups % 3
    X = rng.normal(size=(len(groups), 5))
    y = X[:, 0] + 0.1 * rng.normal(size=len(groups))
    return E.Task(arch="lenet", dataset="digits", feature_set="curve", window=1, X=X,
                  names=[f"curve.f{i}" for i in range(5)], sources=["curve"] * 5, y=y,
                  run_ids=np.array([f"r{i}" for i in range(len(y))]), widths=widths,
                  diverged=np.zeros(len(y), dtype=bool), groups=groups, folds=groups % k, train_widths=[1],
                  test_widths=[2, 3], fixed={"n_estimators": 10, "max_depth": 2, "learning_rate": 0.3},
                  tune={"max_depth": [1, 2], "n_estimators": [5, 10]}, seed=0, importance=False,
                  max_features=None, metric_args={"bootstrap": 0, "top_fraction": 0.1, "seed": 0})


@pytest.mark.parametrize("k", [2, 5])  # k = 2: inner grouped CV; k >= 3: neighbour folds
def test_no_test_fold_row_reaches_any_fit(monkeypatch, k):
    t = _task(k)
    phase = {"i": -1}
    tuned, fits = [], []
    orig_tune, orig_fit = E.tune_params, P.Fitter.fit

    def spy_tune(fitter, splits, tune):
        phase["i"] += 1
        tuned.append((phase["i"], fitter, [(a.copy(), b.copy()) for a, b in splits]))
        return orig_tune(fitter, splits, tune)

    def spy_fit(self, rows, combo, rounds=None):
        fits.append((phase["i"], self, rows.copy()))
        return orig_fit(self, rows, combo, rounds)

    monkeypatch.setattr(E, "tune_params", spy_tune)
    monkeypatch.setattr(P.Fitter, "fit", spy_fit)
    pred, _, _ = E.evaluate_task(t)
    assert phase["i"] == k  # k outer folds, then the transfer fit
    for i in range(k):
        test = t.folds == i
        inner = [s for p, _, s in tuned if p == i][0]
        assert inner, f"fold {i}: no tuning split (the test would not see inner leakage)"
        for fit_rows, val_rows in inner:
            assert not (fit_rows & test).any() and not (val_rows & test).any(), f"fold {i}: tuning sees the test fold"
        mine = [rows for p, _, rows in fits if p == i]
        assert len(mine) > 1  # inner fits and the outer fit
        for rows in mine:
            assert not (rows & test).any(), f"fold {i}: a fit saw a test-fold row"
        np.testing.assert_array_equal(mine[-1], ~test)  # the outer model: every training fold, nothing else
    train = np.isin(t.widths, t.train_widths)
    transfer = [rows for p, _, rows in fits if p == k]
    assert transfer and all(not (rows & ~train).any() for rows in transfer)
    np.testing.assert_array_equal(transfer[-1], train)
    for _, _, splits in [x for x in tuned if x[0] == k]:
        for a, b in splits:
            assert not ((a | b) & ~train).any()
    # the within-width predictions of fold i are the outer model's on fold i's rows
    cv = pred[pred["split"] == P.SPLIT_WITHIN]
    assert (cv["fold"].to_numpy() == t.folds).all()
    assert (cv["n_train"].to_numpy() == (t.folds[:, None] != t.folds[None, :]).sum(1)).all()


def test_no_fit_baseline_fits_nothing(monkeypatch):
    t = _task(5)
    t.no_fit = True
    t.X = t.X[:, :1]
    monkeypatch.setattr(P.Fitter, "fit", lambda *a, **k: pytest.fail("a no-fit baseline was fitted"))
    pred, m, _ = E.evaluate_task(t)
    cv = pred[pred["split"] == P.SPLIT_WITHIN]
    np.testing.assert_array_equal(cv["y_pred"].to_numpy(), t.X[:, 0])
    tr = pred[pred["split"] == P.SPLIT_TRANSFER]
    np.testing.assert_array_equal(tr["y_pred"].to_numpy(), t.X[t.widths > 1, 0])
    assert (pred["n_train"] == 0).all()


def _explicit(y, p, B, seed, fn):
    draws = np.random.default_rng(seed).integers(0, len(y), size=(B, len(y)))
    return np.array([fn(y[i], p[i]) for i in draws])


def test_interval_bounds_are_percentiles_of_explicitly_resampled_scipy_metrics():
    assert LEVEL == 0.95
    rng = np.random.default_rng(11)
    y = rng.random(30)
    p = y + 0.3 * rng.normal(size=30)
    B, seed = 400, 5
    m = P.prediction_metrics(y, p, bootstrap=B, seed=seed)
    taus = _explicit(y, p, B, seed, lambda a, b: stats.kendalltau(a, b).statistic)
    r2s = _explicit(y, p, B, seed, r2_score)
    for name, d in (("kendall_tau", taus), ("r2", r2s)):
        lo, hi = np.percentile(d, [2.5, 97.5])
        assert m[f"{name}_lo"] == pytest.approx(lo, abs=1e-12) and m[f"{name}_hi"] == pytest.approx(hi, abs=1e-12)
        lo90, hi90 = np.percentile(d, [5, 95])
        assert not (np.isclose(m[f"{name}_lo"], lo90) and np.isclose(m[f"{name}_hi"], hi90)), "a 90% interval"


def test_paired_and_classification_intervals_are_explicit_percentiles():
    rng = np.random.default_rng(12)
    y = rng.random(40)
    pa, pb = y + 0.2 * rng.normal(size=40), y + 0.6 * rng.normal(size=40)
    B, seed = 300, 3
    d = C.paired_difference(y, pa, pb, bootstrap=B, seed=seed)
    draws = np.random.default_rng(seed).integers(0, 40, size=(B, 40))
    dt = [stats.kendalltau(y[i], pa[i]).statistic - stats.kendalltau(y[i], pb[i]).statistic for i in draws]
    dr = [r2_score(y[i], pa[i]) - r2_score(y[i], pb[i]) for i in draws]
    assert (d["d_tau_lo"], d["d_tau_hi"]) == pytest.approx(tuple(np.percentile(dt, [2.5, 97.5])), abs=1e-12)
    assert (d["d_r2_lo"], d["d_r2_hi"]) == pytest.approx(tuple(np.percentile(dr, [2.5, 97.5])), abs=1e-12)
    assert d["d_tau"] == pytest.approx(stats.kendalltau(y, pa).statistic - stats.kendalltau(y, pb).statistic)
    assert d["level"] == 0.95
    c = C.classification(y, pa, bootstrap=B, seed=seed)
    good = y > np.median(y)
    call = pa > np.median(pa)
    assert c["accuracy"] == pytest.approx(accuracy_score(good, call))
    assert c["roc_auc"] == pytest.approx(roc_auc_score(good, pa))
    acc = [accuracy_score(good[i], call[i]) for i in draws]
    auc = [roc_auc_score(good[i], pa[i]) for i in draws if 0 < good[i].sum() < 40]
    assert (c["accuracy_lo"], c["accuracy_hi"]) == pytest.approx(tuple(np.percentile(acc, [2.5, 97.5])))
    assert (c["roc_auc_lo"], c["roc_auc_hi"]) == pytest.approx(tuple(np.percentile(auc, [2.5, 97.5])))


def test_classification_of_perfect_and_reversed_predictions():
    y = np.linspace(0.1, 0.9, 20)
    assert C.classification(y, y, bootstrap=0)["accuracy"] == 1.0
    assert C.classification(y, y, bootstrap=0)["roc_auc"] == 1.0
    assert C.classification(y, -y, bootstrap=0)["roc_auc"] == 0.0


def test_tuning_picks_the_best_grid_point():
    """y = sign(x0) sign(x1): stumps (depth 1) cannot represent it, depth 3 can, so the grid's best point is
    known; the test also recomputes every point's pooled validation error with XGBRegressor."""
    rng = np.random.default_rng(0)
    n = 150
    X = rng.uniform(-1, 1, size=(n, 4))
    y = np.sign(X[:, 0]) * np.sign(X[:, 1]) + 0.05 * rng.normal(size=n)
    fixed = {"learning_rate": 0.3, "subsample": 1.0}
    tune = {"max_depth": [1, 3], "n_estimators": [3, 60]}
    groups = np.arange(n) % 30
    splits = []
    for j in range(3):
        val = groups % 3 == j
        splits.append((~val, val))
    f = P.Fitter(X, y, fixed, seed=0)
    combo, rounds = P.model.tune_params(f, splits, tune)
    sse = {}
    for d, r in itertools.product(tune["max_depth"], tune["n_estimators"]):
        e = 0.0
        for a, b in splits:
            reg = xgboost.XGBRegressor(**fixed, max_depth=d, n_estimators=r, tree_method="hist", n_jobs=1,
                                       random_state=0, **f.max_bin).fit(X[a], y[a])
            e += float(np.sum((reg.predict(X[b]) - y[b]) ** 2))
        sse[(d, r)] = e
    best = min(sse, key=sse.get)
    assert (combo["max_depth"], rounds) == best == (3, 60)
    assert sse[best] < 0.5 * max(sse.values())  # the grid's points differ clearly: picking the worst fails


def test_family_screening_keeps_every_family():
    rng = np.random.default_rng(3)
    n = 16
    y = rng.random(n)
    graph = y[:, None] + 0.01 * rng.normal(size=(n, 500))  # strongly correlated, many columns
    curve = y[:, None] + 1.0 * rng.normal(size=(n, 10))  # weaker, few columns
    X = np.column_stack([graph, curve])
    fam = ["graph"] * 500 + ["curve"] * 10
    plain = P.screen_features(X, y, 64)
    assert (plain < 500).all()  # the old screen drops the whole curve family
    kept = P.screen_features(X, y, 64, fam)
    assert len(kept) == 64 and (kept >= 500).sum() == 10
    assert set(kept[kept < 500]) <= set(np.argsort(-np.abs([stats.spearmanr(g, y).statistic
                                                             for g in graph.T]), kind="stable")[:54])


def test_extrapolation_recovers_a_saturating_curve_and_falls_back():
    e = np.array([0, 0.5, 1, 2, 3])
    acc = P.saturation(e, 0.9, 0.8, 0.7)
    v, fitted = P.extrapolate(e, acc, 10)
    assert fitted and v == pytest.approx(0.9 - 0.8 * np.exp(-7), abs=1e-3)
    assert P.extrapolate([0, 1], [0.1, 0.5], 10) == (0.5, False)  # two points: the last one
    assert P.extrapolate([0, 1, 2], [np.nan, 0.3, np.nan], 10) == (0.3, False)
