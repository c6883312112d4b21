"""netdyn.predict.model: the fitter trains what XGBRegressor trains; screening sees only the fit rows."""

from __future__ import annotations

import numpy as np
import xgboost

import netdyn.predict as P


def test_fitter_trains_what_xgbregressor_trains():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 6))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = rng.normal(size=40)
    fixed = {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8}
    f = P.Fitter(X, y, fixed, seed=7)
    rows = np.ones(40, dtype=bool)
    model = f.fit(rows, {"max_depth": 2})
    reg = xgboost.XGBRegressor(**{**fixed, "max_depth": 2}, tree_method="hist", n_jobs=1, random_state=7,
                               **f.max_bin).fit(X, y)
    np.testing.assert_allclose(model.predict(X), reg.predict(X), rtol=1e-6, atol=1e-7)
    assert f.fit(rows, {"max_depth": 2}) is model and f.n_fits == 1  # cached


def test_screening_uses_only_the_fit_rows():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 200))
    y = X[:, 17] + 0.1 * rng.normal(size=60)
    assert 17 in P.screen_features(X, y, 10)
    f = P.Fitter(X, y, {"n_estimators": 5}, seed=0, max_features=10, keep=[199])
    rows = np.arange(60) < 40
    cols = f.columns(rows)
    assert 199 in cols and 17 in cols and len(cols) == 11
    y2 = y.copy()
    y2[~rows] = rng.normal(size=20)  # other rows' targets must not matter
    np.testing.assert_array_equal(P.Fitter(X, y2, {}, 0, max_features=10, keep=[199]).columns(rows), cols)
