"""All fits of one model group (arch x data set x feature set x window): within-width CV and width
transfer, their predictions and metrics, and the importance of the features the fold models use.

* ``within_width`` - grouped k-fold CV; all seeds of a configuration share a fold. One model pooled over
  widths, with the width as a feature: a width alone has 16 runs in the default study, too few for
  boosted trees, and pooling lets each fold learn from every width.
* ``transfer`` - fit on ``train_widths``, evaluate on every larger width (no width feature: a tree cannot
  extrapolate in it, and the question is whether the dynamics themselves transfer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.inspection import permutation_importance

from .metrics import metrics_from_predictions
from .model import FittedModel, Fitter, tune_params
from .splits import INNER_FOLDS, group_kfold_splits, neighbour_folds
from .tables import IMPORTANCE_COLUMNS, SPLIT_TRANSFER, SPLIT_WITHIN, WIDTH_FEATURE

log = logging.getLogger(__name__)

PERMUTATION_REPEATS = 5
PERMUTATION_TOP = 20  # permutation importance for this many features per model (largest total gain)


@dataclass
class Task:
    """One model group: its design matrix (width not included) and everything its fits need."""

    arch: str
    dataset: str
    feature_set: str
    window: int
    X: np.ndarray
    names: list[str]
    sources: list[str]
    y: np.ndarray
    run_ids: np.ndarray
    widths: np.ndarray
    diverged: np.ndarray
    groups: np.ndarray
    folds: np.ndarray
    train_widths: list[int]
    test_widths: list[int]
    fixed: dict
    tune: dict
    seed: int
    importance: bool
    max_features: int | None
    metric_args: dict
    no_fit: bool = False  # X's one column is the prediction itself (netdyn.predict.baselines)

    @property
    def cost(self) -> int:
        return min(self.X.shape[1], self.max_features or self.X.shape[1]) + 1


def _prediction_frame(t: Task, rows: np.ndarray, split: str, fold, pred: np.ndarray,
                      train_widths: Sequence[int], n_train) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": t.run_ids[rows], "arch": t.arch, "dataset": t.dataset, "width": t.widths[rows],
        "feature_set": t.feature_set, "window": t.window, "split": split, "fold": fold,
        "y_true": t.y[rows], "y_pred": pred.astype(float), "diverged": t.diverged[rows],
        "train_widths": ",".join(str(w) for w in sorted(train_widths)), "n_train": n_train,
    })


def evaluate_task(t: Task) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All fits of one arch x data set x feature set x window: within-width CV, transfer, importances,
    and the metrics of its predictions (computed here so that they run in the worker processes)."""
    if t.no_fit:
        return _evaluate_no_fit(t)
    t0 = time.perf_counter()
    out = []
    Xw = np.column_stack([t.X, t.widths.astype(float)])
    fw = Fitter(Xw, t.y, t.fixed, t.seed, t.max_features, keep=[Xw.shape[1] - 1], families=list(t.sources) + ["run"])
    k = int(t.folds.max()) + 1
    pred = np.full(len(t.y), np.nan)
    n_train = np.zeros(len(t.y), dtype=int)
    models = []
    for i in range(k):
        test = t.folds == i
        train = ~test
        if k >= 3:
            splits = [(train & (t.folds != j), t.folds == j) for j in neighbour_folds(i, k)]
        else:
            splits = group_kfold_splits(train, t.groups, INNER_FOLDS, t.seed)
        model = fw.fit(train, *tune_params(fw, splits, t.tune))
        pred[test] = model.predict(Xw[test])
        n_train[test] = train.sum()
        models.append((model, test))
    out.append(_prediction_frame(t, np.ones(len(t.y), dtype=bool), SPLIT_WITHIN, t.folds, pred,
                                 sorted(np.unique(t.widths)), n_train))
    n_fits = fw.n_fits
    if t.train_widths:
        train = np.isin(t.widths, t.train_widths)
        ft = Fitter(t.X, t.y, t.fixed, t.seed, t.max_features, families=t.sources)
        splits = group_kfold_splits(train, t.groups, INNER_FOLDS, t.seed)
        model = ft.fit(train, *tune_params(ft, splits, t.tune))
        test = np.isin(t.widths, t.test_widths)
        out.append(_prediction_frame(t, test, SPLIT_TRANSFER, -1, model.predict(t.X[test]),
                                     t.train_widths, int(train.sum())))
        n_fits += ft.n_fits
    t1 = time.perf_counter()
    imp = fold_importance(t, Xw, models) if t.importance else pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    t2 = time.perf_counter()
    predictions = pd.concat(out, ignore_index=True)
    metrics = metrics_from_predictions(predictions, **t.metric_args)
    log.debug("%s/%s %s E=%d: %d features, %d fits %.2fs, importance %.2fs, metrics %.2fs", t.arch,
              t.dataset, t.feature_set, t.window, t.X.shape[1], n_fits, t1 - t0, t2 - t1,
              time.perf_counter() - t2)
    return predictions, metrics, imp


def _evaluate_no_fit(t: Task) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A no-fit baseline on the same rows and splits as the fitted sets: its column is the prediction."""
    pred = t.X[:, 0]
    out = [_prediction_frame(t, np.ones(len(t.y), dtype=bool), SPLIT_WITHIN, t.folds, pred,
                             sorted(np.unique(t.widths)), 0)]
    if t.train_widths:
        test = np.isin(t.widths, t.test_widths)
        out.append(_prediction_frame(t, test, SPLIT_TRANSFER, -1, pred[test], t.train_widths, 0))
    predictions = pd.concat(out, ignore_index=True)
    return predictions, metrics_from_predictions(predictions, **t.metric_args), pd.DataFrame(columns=IMPORTANCE_COLUMNS)


class _BoosterRegressor(RegressorMixin, BaseEstimator):
    """A fitted model as a scikit-learn regressor that sees only some columns of a held-out matrix; the
    others keep their values, so permutation importance is computed only for the columns passed in."""

    def __init__(self, model=None, base=None, columns=None):
        self.model, self.base, self.columns = model, base, columns

    def fit(self, X, y=None):  # pragma: no cover - already fitted
        return self

    def predict(self, X):
        full = self.base.copy()
        full[:, self.columns] = X
        return self.model.predict(full)


def _neg_mae(estimator, X, y) -> float:
    """Scorer: permutation importance in accuracy units (how much the MAE grows); plain numpy because
    sklearn's metric validation costs more than the prediction on ~10 held-out rows."""
    return -float(np.mean(np.abs(estimator.predict(X) - y)))


def fold_importance(t: Task, Xw: np.ndarray, models: list[tuple[FittedModel, np.ndarray]]) -> pd.DataFrame:
    """Gain (mean over the CV fold models, 0 where a model does not use the feature) and permutation
    importance on each fold's held-out rows (mean and std over folds x repeats). A feature no model uses
    has zero importance of both kinds and is left out; permutation importance is computed for the
    PERMUTATION_TOP features of largest total gain (NaN for the rest) to bound the cost."""
    names = list(t.names) + [WIDTH_FEATURE]
    sources = list(t.sources) + ["run"]
    F = len(names)
    gain, total = np.zeros((len(models), F)), np.zeros((len(models), F))
    for m, (model, _) in enumerate(models):
        for kind, arr in (("gain", gain), ("total_gain", total)):
            for f, v in model.booster.get_score(importance_type=kind).items():
                arr[m, model.columns[int(f[1:])]] = v
    used = np.flatnonzero(total.sum(0) > 0)
    if not len(used):
        return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    top = used[np.argsort(-total.sum(0)[used], kind="stable")[:PERMUTATION_TOP]]
    perm = []
    for model, test in models:
        base = Xw[test]
        r = permutation_importance(_BoosterRegressor(model, base, top), base[:, top], t.y[test],
                                   scoring=_neg_mae, n_repeats=PERMUTATION_REPEATS, random_state=t.seed)
        perm.append(r.importances)
    perm = np.concatenate(perm, axis=1)  # (len(top), folds x repeats)
    pm, ps = np.full(F, np.nan), np.full(F, np.nan)
    pm[top], ps[top] = perm.mean(1), perm.std(1)
    return pd.DataFrame({
        "arch": t.arch, "dataset": t.dataset, "feature_set": t.feature_set, "window": t.window,
        "feature": [names[i] for i in used], "source": [sources[i] for i in used],
        "gain": gain.mean(0)[used], "total_gain": total.mean(0)[used],
        "permutation_mean": pm[used], "permutation_std": ps[used],
    }).sort_values("total_gain", ascending=False, kind="stable", ignore_index=True)
