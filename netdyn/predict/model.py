"""The predictor: gradient-boosted trees (XGBoost, ``hist``) with fixed parameters from the config plus a
small grid (``tune``) chosen inside the training rows only, and in-fold screening of wide feature sets."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    import xgboost

MAX_FEATURES = 64  # wider sets are screened to this many columns inside each fit (see Fitter)


def xgb_params(fixed: Mapping, seed: int, **override) -> tuple[dict, int]:
    """Native booster parameters and number of rounds, exactly as ``xgboost.XGBRegressor(**params).fit``
    would train them (``hist`` unless the config says otherwise; one thread: we parallelise over models)."""
    import xgboost  # here, not at the top: the config check reads this package's feature-set registry, also
    # where xgboost is not installed (training on a GPU image; bench/gpu_checks.sh)

    kw = {"tree_method": "hist", **fixed, **override, "n_jobs": 1, "random_state": seed}
    reg = xgboost.XGBRegressor(**kw)
    rounds = reg.get_params()["n_estimators"] or 100
    return {k: v for k, v in reg.get_xgb_params().items() if v is not None}, int(rounds)


def param_grid(tune: Mapping) -> tuple[list[dict], list[int] | None]:
    """Grid points to fit (everything but n_estimators) and the n_estimators values, which are read off
    one fit with the most rounds (the first n trees of a longer fit are the n-round model)."""
    rounds = sorted(int(n) for n in tune["n_estimators"]) if "n_estimators" in tune else None
    keys = [k for k in tune if k != "n_estimators"]
    combos = [dict(zip(keys, vals)) for vals in itertools.product(*(tune[k] for k in keys))]
    return combos, rounds


def _abs_spearman(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|Spearman rho| of every column with y; a column's missing rows are left out of its correlation (y
    keeps its ranks over all rows: a screen, not a test); constant columns and those present in < 3 rows
    score 0."""
    R = pd.DataFrame(X).rank().to_numpy()  # average ranks, NaN kept
    ry = stats.rankdata(y)[:, None]
    M = ~np.isnan(R)
    cnt = M.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = np.where(M, R - np.nansum(R, 0) / cnt, 0.0)
        dy = np.where(M, ry - (M * ry).sum(0) / cnt, 0.0)
        r = np.abs((dx * dy).sum(0) / np.sqrt((dx * dx).sum(0) * (dy * dy).sum(0)))
    r[~np.isfinite(r) | (cnt < 3)] = 0.0
    return r


def family_quota(sizes: Sequence[int], m: int) -> list[int]:
    """Columns each family keeps out of m: an equal share (the remainder to the earlier families), and the
    share a small family cannot use passed on to the others. Every non-empty family keeps at least one
    column when m >= the number of families."""
    quota = [0] * len(sizes)
    left, open_ = m, [i for i, n in enumerate(sizes) if n > 0]
    while left > 0 and open_:
        share, extra = divmod(left, len(open_))
        for j, i in enumerate(open_):
            quota[i] += min(share + (j < extra), sizes[i] - quota[i])
        left = m - sum(quota)
        open_ = [i for i in open_ if quota[i] < sizes[i]]
    return quota


def screen_features(X: np.ndarray, y: np.ndarray, m: int, families: Sequence[str] | None = None) -> np.ndarray:
    """Indices of the m columns with the largest |Spearman rho| with y, sorted; ties keep column order.

    With ``families`` (one label per column, e.g. the feature set a column came from), each family keeps
    its quota (:func:`family_quota`) of its own best columns, so that a wide family (graph summaries:
    thousands of columns) cannot crowd a narrow one (curves: tens) out of ``graph+curve``."""
    r = _abs_spearman(X, y)
    if families is None:
        return np.sort(np.argsort(-r, kind="stable")[:m])
    fam = np.asarray(families)
    names = list(dict.fromkeys(fam))
    cols = [np.flatnonzero(fam == f) for f in names]
    keep = [c[np.argsort(-r[c], kind="stable")[:q]] for c, q in zip(cols, family_quota([len(c) for c in cols], m))]
    return np.sort(np.concatenate(keep)) if keep else np.array([], dtype=int)


@dataclass
class FittedModel:
    booster: xgboost.Booster
    columns: np.ndarray  # columns of the design matrix the booster was trained on
    rounds: int

    def predict(self, X: np.ndarray, rounds: int | None = None) -> np.ndarray:
        return self.booster.inplace_predict(X[:, self.columns], iteration_range=(0, rounds or self.rounds))


class Fitter:
    """Boosters fitted on row subsets of one design matrix, cached by (rows, params) so the inner fits that
    two outer folds share are done once.

    Wide feature sets (graph summaries: thousands of columns on ~40 training rows) are first screened to
    the `max_features` columns of largest |Spearman rho| with the target *on the fit's own rows* - never on
    validation or test rows. XGBoost's cost grows linearly with the columns, and trees on 40 rows cannot
    use thousands of them; `keep` columns (the width) always stay. With `families` (the feature set of each
    column) every family keeps its share of the screened columns (see :func:`screen_features`): without
    it, screening 64 of thousands of graph+curve columns on 14 rows kept no curve column, and the transfer
    model of graph+curve gave exactly the graph predictions (issue 14).

    Trains with ``xgboost.train`` on a plain DMatrix: ``XGBRegressor.fit`` builds a QuantileDMatrix per fit,
    which on 40-row tables costs more than the trees (measured ~25 ms a fit); the boosters are identical
    (tests/predict/test_model.py checks it).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, fixed: Mapping, seed: int,
                 max_features: int | None = None, keep: Sequence[int] = (),
                 families: Sequence[str] | None = None):
        self.X, self.y, self.fixed, self.seed = X, y, dict(fixed), seed
        self.families = None if families is None else np.asarray(families)
        self.max_features, self.keep = max_features, np.asarray(keep, dtype=int)
        # a feature has at most n distinct values: more bins than ~n/2 only cost time on these tiny tables
        self.max_bin = {} if "max_bin" in fixed else {"max_bin": int(np.clip(len(y) // 2, 16, 256))}
        self.cache: dict = {}
        self.screens: dict = {}
        self.n_fits = 0

    def columns(self, rows: np.ndarray) -> np.ndarray:
        F = self.X.shape[1]
        if self.max_features is None or F - len(self.keep) <= self.max_features:
            return np.arange(F)
        key = rows.tobytes()
        if key not in self.screens:
            free = np.setdiff1d(np.arange(F), self.keep)
            fam = None if self.families is None else self.families[free]
            sel = free[screen_features(self.X[np.ix_(rows, free)], self.y[rows], self.max_features, fam)]
            self.screens[key] = np.union1d(sel, self.keep)
        return self.screens[key]

    def fit(self, rows: np.ndarray, combo: Mapping, rounds: int | None = None) -> FittedModel:
        import xgboost  # see xgb_params

        params, n = xgb_params(self.fixed, self.seed, **self.max_bin, **combo)
        n = rounds or n
        key = (rows.tobytes(), tuple(sorted(combo.items())), n)
        if key not in self.cache:
            cols = self.columns(rows)
            d = xgboost.DMatrix(self.X[np.ix_(rows, cols)], label=self.y[rows], nthread=1)
            self.cache[key] = FittedModel(xgboost.train(params, d, num_boost_round=n), cols, n)
            self.n_fits += 1
        return self.cache[key]


def tune_params(fitter: Fitter, splits: list[tuple[np.ndarray, np.ndarray]],
                tune: Mapping) -> tuple[dict, int | None]:
    """Grid point with the least pooled squared error over the inner splits (fit rows, validation rows);
    ties go to the earlier grid point. Without usable splits or with a single grid point: no search."""
    combos, rounds = param_grid(tune)
    splits = [(a, b) for a, b in splits if a.any() and b.any()]
    default = (combos[0] if combos else {}), (rounds[0] if rounds else None)
    if not splits or len(combos) * len(rounds or [0]) <= 1:
        return default
    best, best_err = default, np.inf
    for combo in combos:
        sse = np.zeros(len(rounds or [0]))
        for fit_rows, val_rows in splits:
            model = fitter.fit(fit_rows, combo, max(rounds) if rounds else None)
            for i, r in enumerate(rounds or [None]):
                sse[i] += np.sum((model.predict(fitter.X[val_rows], r) - fitter.y[val_rows]) ** 2)
        for i, r in enumerate(rounds or [None]):
            if sse[i] < best_err - 1e-12:
                best, best_err = (combo, r), sse[i]
    return best
