"""Prediction stage: does what a network shows in its first E epochs predict its final test accuracy?

Pipeline, per early window E (epochs 0..E), feature set and architecture x data set:

1. **Features** (one row per run) from a registry of builders, combined with ``+`` (``graph+curve``).
   Built-ins: ``early_acc`` (the trivial baseline), ``curve`` (train/test loss and accuracy at every early
   snapshot), ``weights`` (per-tensor weight statistics, Unterthiner et al. 2020) and ``graph`` (the
   temporal graph summary, an input table). Later stages add theirs with :func:`register_feature_set` or
   :func:`register_table_feature_set`. A diverged run keeps its measured final accuracy; what it never
   reached is NaN, which XGBoost treats as missing.
2. **Model**: gradient-boosted trees (XGBoost, ``hist``), fixed parameters from the config plus a small
   grid (``tune``) chosen inside the training rows only.
3. **Evaluation**, two splits:
   * ``within_width`` - grouped k-fold CV; all seeds of a configuration share a fold. One model pooled
     over widths, with the width as a feature: a width alone has 16 runs in the default study, too few
     for boosted trees, and pooling lets each fold learn from every width. The metrics are reported both
     pooled and per width.
   * ``transfer`` - fit on ``train_widths``, evaluate on every larger width (no width feature: a tree
     cannot extrapolate in it, and the question is whether the dynamics themselves transfer).
4. **Metrics** (:func:`metrics_from_predictions`): R2, MAE, Kendall tau, Spearman rho with bootstrap 95%
   intervals, and top-k precision, for all / non-diverged / diverged runs.
5. **Importance** of graph features: XGBoost gain and permutation importance on held-out folds.

Everything is deterministic given ``seed``; the result does not depend on ``n_jobs``.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost
from scipy import stats
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.inspection import permutation_importance
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from .results import curves as read_curves

log = logging.getLogger(__name__)

SPLIT_WITHIN = "within_width"
SPLIT_TRANSFER = "transfer"
SUBSETS = ("all", "non-diverged", "diverged")
CONFIG_KEYS = ["arch_label", "dataset", "width", "learning_rate", "dropout", "weight_decay"]
RUN_COLUMNS = ["run_id", "arch_label", "dataset", "width", "learning_rate", "dropout", "weight_decay",
               "seed", "status", "final_test_acc"]
CURVE_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
WEIGHT_STATS = ("mean", "var", "q0", "q25", "q50", "q75", "q100")
WIDTH_FEATURE = "run.width"
DEFAULTS = {
    "train_widths": [], "windows": [1, 2, 3, 4, 5],
    "feature_sets": ["early_acc", "curve", "weights", "graph", "graph+curve"],
    "folds": 5, "bootstrap": 1000, "top_fraction": 0.1, "seed": 0,
    "xgboost": {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8},
    "tune": {"max_depth": [2, 4], "n_estimators": [100, 300]},
}
IMPORTANCE_SETS = ("graph", "graph+curve")
TRANSFER_INNER_FOLDS = 3  # inner CV of the transfer fit: its training set has few configurations
PERMUTATION_REPEATS = 5
PERMUTATION_TOP = 20  # permutation importance for this many features per model (largest total gain)
MAX_FEATURES = 64  # wider sets are screened to this many columns inside each fit (see _Fitter)

PREDICTION_COLUMNS = ["run_id", "arch", "dataset", "width", "feature_set", "window", "split", "fold",
                      "y_true", "y_pred", "diverged", "train_widths", "n_train"]
METRIC_NAMES = ("r2", "mae", "kendall_tau", "spearman")
METRIC_COLUMNS = (["arch", "dataset", "feature_set", "window", "split", "subset", "train_widths",
                   "test_width", "n_train", "n_test"]
                  + [f"{m}{s}" for m in METRIC_NAMES for s in ("", "_lo", "_hi")]
                  + ["top_k", "top_k_precision"])
IMPORTANCE_COLUMNS = ["arch", "dataset", "feature_set", "window", "feature", "source", "gain", "total_gain",
                      "permutation_mean", "permutation_std"]


# ---------------------------------------------------------------------------------------------- features

@dataclass
class FeatureContext:
    """What feature builders read: the runs (indexed by run_id), their directory and input tables.

    Caches curves and built feature sets, so a window's ``graph+curve`` reuses its ``curve``.
    ``tables`` maps a table name to one DataFrame per window (``{E: df}``) or to one DataFrame for all.
    """

    runs: pd.DataFrame
    runs_dir: Path | None = None
    tables: Mapping[str, Mapping[int, pd.DataFrame] | pd.DataFrame] = field(default_factory=dict)
    n_jobs: int = 1
    _curves: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _built: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict, repr=False)

    def curves(self, run_id: str) -> pd.DataFrame:
        if run_id not in self._curves:
            if self.runs_dir is None:
                raise ValueError("curve-based feature sets need runs_dir (where results/runs/<run id> live)")
            c = read_curves(self.runs_dir, run_id)
            missing = [k for k in ("snapshot", "epoch", *CURVE_METRICS) if k not in c.columns]
            if missing:
                raise ValueError(f"run {run_id}: curves.csv lacks column(s) {missing}")
            self._curves[run_id] = c.replace([np.inf, -np.inf], np.nan)
        return self._curves[run_id]

    def early_curves(self, run_id: str, window: float) -> pd.DataFrame:
        """Rows measured by epoch `window` (a diverged measurement included), in epoch order."""
        c = self.curves(run_id)
        return c[c["epoch"] <= window + 1e-9].sort_values("epoch", kind="stable")

    def table(self, name: str, window: int) -> pd.DataFrame:
        """Input table `name` for `window`, numeric columns only, one row per run in runs order."""
        if name not in self.tables or self.tables[name] is None:
            raise ValueError(f"feature set {name!r} needs the {name} summary table, which was not given")
        t = self.tables[name]
        if not isinstance(t, pd.DataFrame):
            keys = {int(k): k for k in t}  # {1: df} or {"1": df}
            if window not in keys:
                raise ValueError(f"{name} summary: no table for window E={window} (have windows "
                                 f"{sorted(keys)})")
            t = t[keys[window]]
        if "run_id" in t.columns:  # read from a CSV without index_col
            t = t.set_index("run_id")
        if t.index.has_duplicates:
            dup = sorted(set(t.index[t.index.duplicated()]))[:5]
            raise ValueError(f"{name} summary (E={window}): duplicate rows for run(s) {dup}")
        missing = [r for r in self.runs.index if r not in t.index]
        if missing:
            raise ValueError(f"{name} summary (E={window}) lacks {len(missing)} of {len(self.runs)} runs: "
                             f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
        num = t.select_dtypes(include=["number", "bool"])
        if num.shape[1] == 0:
            raise ValueError(f"{name} summary (E={window}) has no numeric feature columns "
                             f"(columns: {list(t.columns)[:8]})")
        return num.loc[self.runs.index].astype(float).replace([np.inf, -np.inf], np.nan)

    def schedule(self, window: float) -> list[float]:
        """Snapshot epochs <= window over all runs (the grid shares one schedule; a union is safe)."""
        ep = set()
        for r in self.runs.index:
            ep.update(self.early_curves(r, window)["epoch"].round(6))
        return sorted(ep)


FeatureBuilder = Callable[[FeatureContext, int], pd.DataFrame]
FEATURE_BUILDERS: dict[str, FeatureBuilder] = {}


def register_feature_set(name: str) -> Callable[[FeatureBuilder], FeatureBuilder]:
    """Decorator: ``builder(ctx, window) -> DataFrame`` indexed like ``ctx.runs``, numeric columns whose
    names are unique across sets (prefix them)."""
    if "+" in name:
        raise ValueError(f"feature set name {name!r} must not contain '+' (it joins sets)")

    def deco(fn: FeatureBuilder) -> FeatureBuilder:
        FEATURE_BUILDERS[name] = fn
        return fn

    return deco


def register_table_feature_set(name: str, table: str | None = None) -> FeatureBuilder:
    """A feature set that is an input table as it is (graph summaries; later cmd, modularity):
    ``tables[table or name]`` is ``{window: DataFrame indexed by run_id}`` or one DataFrame."""

    def builder(ctx: FeatureContext, window: int) -> pd.DataFrame:
        return ctx.table(table or name, window)

    builder.__doc__ = f"Columns of the {table or name} summary table for the window."
    return register_feature_set(name)(builder)


def feature_set_parts(spec: str) -> list[str]:
    parts = [p.strip() for p in spec.split("+")]
    unknown = [p for p in parts if p not in FEATURE_BUILDERS]
    if unknown or not all(parts):
        raise ValueError(f"feature set {spec!r}: unknown part(s) {unknown or ['']}; "
                         f"known: {sorted(FEATURE_BUILDERS)} (combine with '+')")
    return parts


def build_features(spec: str, runs: pd.DataFrame | None = None, window: int = 1, *,
                   runs_dir: str | Path | None = None, tables: Mapping | None = None,
                   context: FeatureContext | None = None) -> pd.DataFrame:
    """Features of set `spec` (e.g. ``graph+curve``) for window E, one row per run (index run_id).

    ``df.attrs["source"]`` maps each column to the set it came from.
    """
    if context is None:
        if runs is None:
            raise ValueError("build_features needs runs or a context")
        runs = runs.set_index("run_id", drop=False) if "run_id" in runs.columns else runs
        context = FeatureContext(runs, Path(runs_dir) if runs_dir is not None else None, dict(tables or {}))
    frames, source = [], {}
    for part in feature_set_parts(spec):
        key = (part, window)
        if key not in context._built:
            df = FEATURE_BUILDERS[part](context, window)
            if list(df.index) != list(context.runs.index):
                raise ValueError(f"feature set {part!r} returned rows that do not match the runs")
            context._built[key] = df
        df = context._built[key]
        clash = [c for c in df.columns if c in source]
        if clash:
            raise ValueError(f"feature set {spec!r}: column(s) {clash[:5]} come from both "
                             f"{source[clash[0]]!r} and {part!r}")
        source.update({c: part for c in df.columns})
        frames.append(df)
    out = pd.concat(frames, axis=1) if len(frames) > 1 else frames[0].copy()
    out.attrs["source"] = source
    return out


@register_feature_set("early_acc")
def early_acc_features(ctx: FeatureContext, window: int) -> pd.DataFrame:
    """Test accuracy last measured by epoch E (a divergence measurement counts: it is what one sees)."""
    vals = []
    for r in ctx.runs.index:
        c = ctx.early_curves(r, window)["test_acc"].dropna()
        vals.append(c.iloc[-1] if len(c) else np.nan)
    return pd.DataFrame({"early_acc": vals}, index=ctx.runs.index)


def _epoch_label(e: float) -> str:
    return f"{e:g}"


@register_feature_set("curve")
def curve_features(ctx: FeatureContext, window: int) -> pd.DataFrame:
    """Train/test loss and accuracy at every snapshot epoch <= E; NaN after a run stopped (diverged)."""
    sched = ctx.schedule(window)
    cols = [f"curve.{m}@e{_epoch_label(e)}" for e in sched for m in CURVE_METRICS]
    out = pd.DataFrame(np.nan, index=ctx.runs.index, columns=cols)
    for r in ctx.runs.index:
        c = ctx.early_curves(r, window).drop_duplicates("epoch", keep="last")
        for _, row in c.iterrows():
            e = _epoch_label(round(row["epoch"], 6))
            for m in CURVE_METRICS:
                out.at[r, f"curve.{m}@e{e}"] = row[m]
    return out.dropna(axis=1, how="all")  # train_* at init are never measured


def weight_statistics(state: Mapping[str, np.ndarray], prefix: str = "w.") -> dict[str, float]:
    """Mean, variance and quantiles 0/25/50/75/100 of every weight and bias tensor (Unterthiner et al.);
    BatchNorm running statistics and counters are buffers, not weights, and are skipped."""
    out = {}
    for name, a in state.items():
        if name.rsplit(".", 1)[-1] not in ("weight", "bias"):
            continue
        a = np.asarray(a).ravel()
        if not a.size:
            out.update({f"{prefix}{name}.{s}": np.nan for s in WEIGHT_STATS})
            continue
        vals = [a.mean(dtype=np.float64), a.var(dtype=np.float64), *_quantiles(a, (0.0, 0.25, 0.5, 0.75, 1.0))]
        out.update({f"{prefix}{name}.{s}": float(v) for s, v in zip(WEIGHT_STATS, vals)})
    return out


def _quantiles(a: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """np.quantile's default (linear) quantiles from one sort in the stored dtype: 3-4x faster than
    np.quantile on the ~10^5-element tensors of ~1,000 snapshots (it partitions in float64 per call)."""
    s = np.sort(a)
    h = (len(s) - 1) * np.asarray(qs, dtype=np.float64)
    lo = np.floor(h).astype(int)
    hi = np.minimum(lo + 1, len(s) - 1)
    return s[lo].astype(np.float64) + (h - lo) * (s[hi].astype(np.float64) - s[lo])


@register_feature_set("weights")
def weight_features(ctx: FeatureContext, window: int) -> pd.DataFrame:
    """Weight statistics at the last snapshot epoch <= E of the grid's schedule. A run without that
    snapshot (diverged earlier) gets NaN rather than an earlier snapshot's statistics, so that one column
    always means one epoch."""
    from .trajectory import Trajectory  # torch import only where weights are needed

    if ctx.runs_dir is None:
        raise ValueError("feature set 'weights' needs runs_dir")
    kept = set()
    for r in ctx.runs.index:
        c = ctx.early_curves(r, window)
        kept.update(c.loc[c["snapshot"] >= 0, "epoch"].round(6))
    if not kept:
        return pd.DataFrame(index=ctx.runs.index)
    ref = max(kept)

    def one(run_id: str) -> dict:
        traj = Trajectory.open(Path(ctx.runs_dir) / run_id)
        hit = np.flatnonzero(np.isclose(traj.snapshots["epoch"].to_numpy(), ref, atol=1e-6))
        if not len(hit):
            return {}
        flat = traj.flat(int(hit[-1]))
        return weight_statistics({t["name"]: flat[t["offset"]:t["offset"] + t["numel"]] for t in traj.tensors})

    if ctx.n_jobs > 1:  # numpy's sort releases the GIL: threads are enough
        from joblib import Parallel, delayed

        rows = Parallel(n_jobs=ctx.n_jobs, prefer="threads")(delayed(one)(r) for r in ctx.runs.index)
    else:
        rows = [one(r) for r in ctx.runs.index]
    return pd.DataFrame(rows, index=ctx.runs.index, dtype=float)


register_table_feature_set("graph")


# ----------------------------------------------------------------------------------------- feature names

_GLOBAL_SCOPES = {"global", "all", "graph", "net", "network", "total", "whole"}
_EPOCH = r"@e(?P<epoch>[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?)"


def parse_feature_name(name: str) -> dict:
    """Split a feature name into its parts so figures can group importances.

    Graph summaries: ``{scope}.{property}.{aggregator}@e{epoch}`` and ``d({...})@e{epoch}`` (a change;
    an ``@e`` inside the parentheses is ignored). The scope may itself contain dots (``features.3``);
    a global scope (``global``, ``all``, ...) has no layer. Built-in sets: ``curve.{metric}@e{epoch}``,
    ``w.{tensor}.{stat}``, ``early_acc``, ``run.width``. Unknown shapes return what could be read.
    """
    out = {"feature": name, "source": None, "scope": None, "layer": None, "property": None,
           "aggregator": None, "epoch": np.nan, "delta": False}
    if name == "early_acc":
        return {**out, "source": "early_acc", "property": "test_acc"}
    if name == WIDTH_FEATURE:
        return {**out, "source": "run", "property": "width"}
    if name.startswith("w."):
        tensor, _, stat = name[2:].rpartition(".")
        layer, _, kind = tensor.rpartition(".")
        return {**out, "source": "weights", "scope": layer, "layer": layer, "property": kind, "aggregator": stat}
    m = re.match(rf"^curve\.(?P<metric>[^@]+){_EPOCH}$", name)
    if m:
        return {**out, "source": "curve", "property": m["metric"], "epoch": float(m["epoch"])}
    body, delta = name, False
    m = re.match(rf"^d\((?P<inner>.*)\){_EPOCH}$", name)
    if m:
        body, delta = re.sub(rf"{_EPOCH}$", "", m["inner"]) + f"@e{m['epoch']}", True
    m = re.match(rf"^(?P<body>.+){_EPOCH}$", body)
    if not m:
        return out
    parts = m["body"].split(".")
    out.update(source="graph", epoch=float(m["epoch"]), delta=delta)
    if len(parts) >= 3:
        scope = ".".join(parts[:-2])
        out.update(scope=scope, property=parts[-2], aggregator=parts[-1],
                   layer=None if scope.lower() in _GLOBAL_SCOPES else scope)
    elif len(parts) == 2:
        out.update(property=parts[0], aggregator=parts[1])
    return out


def feature_name_table(names: Sequence[str]) -> pd.DataFrame:
    """:func:`parse_feature_name` of many names, as a table."""
    return pd.DataFrame([parse_feature_name(n) for n in names],
                        columns=["feature", "source", "scope", "layer", "property", "aggregator", "epoch",
                                 "delta"])


# ------------------------------------------------------------------------------------------------ splits

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


# ------------------------------------------------------------------------------------------------- model

def xgb_params(fixed: Mapping, seed: int, **override) -> tuple[dict, int]:
    """Native booster parameters and number of rounds, exactly as ``xgboost.XGBRegressor(**params).fit``
    would train them (``hist`` unless the config says otherwise; one thread: we parallelise over models)."""
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


def screen_features(X: np.ndarray, y: np.ndarray, m: int) -> np.ndarray:
    """Indices of the m columns with the largest |Spearman rho| with y, sorted; ties keep column order.
    A column's missing rows are left out of its correlation (y keeps its ranks over all rows: a screen,
    not a test); constant columns and those present in < 3 rows score 0."""
    R = pd.DataFrame(X).rank().to_numpy()  # average ranks, NaN kept
    ry = stats.rankdata(y)[:, None]
    M = ~np.isnan(R)
    cnt = M.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = np.where(M, R - np.nansum(R, 0) / cnt, 0.0)
        dy = np.where(M, ry - (M * ry).sum(0) / cnt, 0.0)
        r = np.abs((dx * dy).sum(0) / np.sqrt((dx * dx).sum(0) * (dy * dy).sum(0)))
    r[~np.isfinite(r) | (cnt < 3)] = 0.0
    return np.sort(np.argsort(-r, kind="stable")[:m])


@dataclass
class _Model:
    booster: xgboost.Booster
    columns: np.ndarray  # columns of the design matrix the booster was trained on
    rounds: int

    def predict(self, X: np.ndarray, rounds: int | None = None) -> np.ndarray:
        return self.booster.inplace_predict(X[:, self.columns], iteration_range=(0, rounds or self.rounds))


class _Fitter:
    """Boosters fitted on row subsets of one design matrix, cached by (rows, params) so the inner fits that
    two outer folds share are done once.

    Wide feature sets (graph summaries: thousands of columns on ~40 training rows) are first screened to
    the `max_features` columns of largest |Spearman rho| with the target *on the fit's own rows* - never on
    validation or test rows. XGBoost's cost grows linearly with the columns, and trees on 40 rows cannot
    use thousands of them; `keep` columns (the width) always stay.

    Trains with ``xgboost.train`` on a plain DMatrix: ``XGBRegressor.fit`` builds a QuantileDMatrix per fit,
    which on 40-row tables costs more than the trees (measured ~25 ms a fit); the boosters are identical
    (tests/test_predict.py checks it).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, fixed: Mapping, seed: int,
                 max_features: int | None = None, keep: Sequence[int] = ()):
        self.X, self.y, self.fixed, self.seed = X, y, dict(fixed), seed
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
            sel = free[screen_features(self.X[np.ix_(rows, free)], self.y[rows], self.max_features)]
            self.screens[key] = np.union1d(sel, self.keep)
        return self.screens[key]

    def fit(self, rows: np.ndarray, combo: Mapping, rounds: int | None = None) -> _Model:
        params, n = xgb_params(self.fixed, self.seed, **self.max_bin, **combo)
        n = rounds or n
        key = (rows.tobytes(), tuple(sorted(combo.items())), n)
        if key not in self.cache:
            cols = self.columns(rows)
            d = xgboost.DMatrix(self.X[np.ix_(rows, cols)], label=self.y[rows], nthread=1)
            self.cache[key] = _Model(xgboost.train(params, d, num_boost_round=n), cols, n)
            self.n_fits += 1
        return self.cache[key]


def _tune(fitter: _Fitter, splits: list[tuple[np.ndarray, np.ndarray]], tune: Mapping) -> tuple[dict, int | None]:
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


# -------------------------------------------------------------------------------------------- evaluation

@dataclass
class _Task:
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

    @property
    def cost(self) -> int:
        return min(self.X.shape[1], self.max_features or self.X.shape[1]) + 1


def _neighbour_folds(i: int, k: int) -> list[int]:
    """Inner validation folds of outer fold i: its two cyclic neighbours. Outer folds i and j then share
    the inner fit on all folds but {i, j}, so tuning costs k fits per grid point instead of k(k-1)."""
    return sorted({(i - 1) % k, (i + 1) % k} - {i})


def _group_kfold_splits(rows: np.ndarray, groups: np.ndarray, n_splits: int, seed: int):
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


def _prediction_frame(t: _Task, rows: np.ndarray, split: str, fold, pred: np.ndarray,
                      train_widths: Sequence[int], n_train) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": t.run_ids[rows], "arch": t.arch, "dataset": t.dataset, "width": t.widths[rows],
        "feature_set": t.feature_set, "window": t.window, "split": split, "fold": fold,
        "y_true": t.y[rows], "y_pred": pred.astype(float), "diverged": t.diverged[rows],
        "train_widths": ",".join(str(w) for w in sorted(train_widths)), "n_train": n_train,
    })


def _evaluate(t: _Task) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All fits of one arch x data set x feature set x window: within-width CV, transfer, importances,
    and the metrics of its predictions (computed here so that they run in the worker processes)."""
    t0 = time.perf_counter()
    out = []
    Xw = np.column_stack([t.X, t.widths.astype(float)])
    fw = _Fitter(Xw, t.y, t.fixed, t.seed, t.max_features, keep=[Xw.shape[1] - 1])
    k = int(t.folds.max()) + 1
    pred = np.full(len(t.y), np.nan)
    n_train = np.zeros(len(t.y), dtype=int)
    models = []
    for i in range(k):
        test = t.folds == i
        train = ~test
        if k >= 3:
            splits = [(train & (t.folds != j), t.folds == j) for j in _neighbour_folds(i, k)]
        else:
            splits = _group_kfold_splits(train, t.groups, TRANSFER_INNER_FOLDS, t.seed)
        model = fw.fit(train, *_tune(fw, splits, t.tune))
        pred[test] = model.predict(Xw[test])
        n_train[test] = train.sum()
        models.append((model, test))
    out.append(_prediction_frame(t, np.ones(len(t.y), dtype=bool), SPLIT_WITHIN, t.folds, pred,
                                 sorted(np.unique(t.widths)), n_train))
    n_fits = fw.n_fits
    if t.train_widths:
        train = np.isin(t.widths, t.train_widths)
        ft = _Fitter(t.X, t.y, t.fixed, t.seed, t.max_features)
        splits = _group_kfold_splits(train, t.groups, TRANSFER_INNER_FOLDS, t.seed)
        model = ft.fit(train, *_tune(ft, splits, t.tune))
        test = np.isin(t.widths, t.test_widths)
        out.append(_prediction_frame(t, test, SPLIT_TRANSFER, -1, model.predict(t.X[test]),
                                     t.train_widths, int(train.sum())))
        n_fits += ft.n_fits
    t1 = time.perf_counter()
    imp = _importance(t, Xw, models) if t.importance else pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    t2 = time.perf_counter()
    predictions = pd.concat(out, ignore_index=True)
    metrics = metrics_from_predictions(predictions, **t.metric_args)
    log.debug("%s/%s %s E=%d: %d features, %d fits %.2fs, importance %.2fs, metrics %.2fs", t.arch,
              t.dataset, t.feature_set, t.window, t.X.shape[1], n_fits, t1 - t0, t2 - t1,
              time.perf_counter() - t2)
    return predictions, metrics, imp


def _importance(t: _Task, Xw: np.ndarray, models: list[tuple[_Model, np.ndarray]]) -> pd.DataFrame:
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


# ----------------------------------------------------------------------------------------------- metrics

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
        if draws is not None and np.isfinite(point[m]) and np.isfinite(draws[m]).any():
            lo, hi = np.nanpercentile(draws[m], [2.5, 97.5])
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


# ------------------------------------------------------------------------------------------------ driver

def _varying(X: np.ndarray) -> np.ndarray:
    """Columns with two states or more (NaN counts as one: trees can split missing from present); the
    others are constant and no split can use them."""
    present = ~np.isnan(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        spread = np.nanmax(X, axis=0) > np.nanmin(X, axis=0)
    return spread | (present.any(0) & ~present.all(0))


def resolve_config(cfg: Mapping | None) -> dict:
    """The predict section with schema defaults filled in (a config validated by netdyn.config has them)."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"predict config: unknown key(s) {unknown}; known: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **cfg}


def prepare_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs indexed by run_id with a boolean `diverged`; ValueError naming missing columns; runs without a
    measured final accuracy cannot be targets and are dropped with a warning."""
    missing = [c for c in RUN_COLUMNS if c not in runs.columns]
    if missing:
        raise ValueError(f"runs table lacks column(s) {missing}")
    if runs["run_id"].duplicated().any():
        raise ValueError(f"runs table repeats run(s) {sorted(runs.loc[runs.run_id.duplicated(), 'run_id'])[:5]}")
    runs = runs.set_index("run_id", drop=False)
    runs.index.name = None
    bad = runs["final_test_acc"].isna()
    if bad.any():
        log.warning("dropping %d run(s) without a final test accuracy: %s", bad.sum(), list(runs.index[bad])[:5])
        runs = runs[~bad]
    return runs.assign(diverged=runs["status"].eq("diverged").to_numpy(), width=runs["width"].astype(int))


def run_prediction(runs: pd.DataFrame, runs_dir: str | Path | None,
                   graph_summaries: Mapping[int, pd.DataFrame] | None = None, cfg: Mapping | None = None,
                   n_jobs: int = 1, *, tables: Mapping | None = None,
                   importance_sets: Sequence[str] = IMPORTANCE_SETS,
                   max_features: int | None = MAX_FEATURES) -> dict[str, pd.DataFrame]:
    """The whole prediction stage: ``{"predictions", "metrics", "importances"}``.

    `runs` is netdyn.results.runs_table; `graph_summaries` maps window E to the graph summary table
    (index run_id); `tables` adds other summary tables by feature-set name (cmd, modularity); `cfg` is the
    config's ``predict`` section. Every input is checked - missing runs, columns, windows, transfer
    widths - before the first model is fitted. `max_features` (None: off) bounds the columns a model sees
    (in-fold screening, see _Fitter). The result does not depend on `n_jobs`.
    """
    t0 = time.perf_counter()
    cfg = resolve_config(cfg)
    runs = prepare_runs(runs)
    tables = dict(tables or {})
    if graph_summaries is not None:
        tables["graph"] = graph_summaries
    for spec in cfg["feature_sets"]:
        feature_set_parts(spec)
    train_widths = [int(w) for w in cfg["train_widths"]]
    test_widths = check_transfer(runs, train_widths) if train_widths else {}
    folds = within_width_folds(runs, cfg["folds"], cfg["seed"])
    groups = config_groups(runs)
    ctx = FeatureContext(runs, Path(runs_dir) if runs_dir is not None else None, tables, n_jobs=n_jobs)
    by_arch = runs.groupby(["arch_label", "dataset"], sort=True).indices
    metric_args = {"bootstrap": int(cfg["bootstrap"]), "top_fraction": float(cfg["top_fraction"]),
                   "seed": int(cfg["seed"])}
    tasks, empty = [], []
    for window in cfg["windows"]:
        for spec in cfg["feature_sets"]:
            feats = build_features(spec, window=window, context=ctx)
            sources = feats.attrs["source"]
            for (arch, dataset), idx in by_arch.items():
                X = feats.iloc[idx]
                if X.isna().all().all():
                    empty.append(f"{spec} (E={window}) for {arch} on {dataset}")
                X = X.loc[:, _varying(X.to_numpy(float))]
                sub = runs.iloc[idx]
                tasks.append(_Task(
                    arch=arch, dataset=dataset, feature_set=spec, window=int(window),
                    X=X.to_numpy(float) if X.shape[1] else np.full((len(idx), 1), np.nan),
                    names=list(X.columns) if X.shape[1] else ["(none)"],
                    sources=[sources[c] for c in X.columns] if X.shape[1] else ["none"],
                    y=sub["final_test_acc"].to_numpy(float), run_ids=sub.index.to_numpy(),
                    widths=sub["width"].to_numpy(int), diverged=sub["diverged"].to_numpy(bool),
                    groups=groups[idx], folds=folds.iloc[idx].to_numpy(int), train_widths=train_widths,
                    test_widths=test_widths.get((arch, dataset), []), fixed=dict(cfg["xgboost"]),
                    tune=dict(cfg["tune"]), seed=int(cfg["seed"]), importance=spec in importance_sets,
                    max_features=max_features, metric_args=metric_args))
    if empty:
        raise ValueError("feature tables hold no values at all (every column missing) for: " + "; ".join(empty))
    t1 = time.perf_counter()
    log.info("features: %d model groups built in %.1fs", len(tasks), t1 - t0)
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].cost)  # big tasks first: better packing
    if n_jobs > 1 and len(tasks) > 1:
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=n_jobs)(delayed(_evaluate)(tasks[i]) for i in order)
    else:
        done = [_evaluate(tasks[i]) for i in order]
    results = [None] * len(tasks)
    for i, r in zip(order, done):
        results[i] = r
    log.info("models and metrics: %.1fs on %d job(s)", time.perf_counter() - t1, n_jobs)
    predictions = pd.concat([r[0] for r in results], ignore_index=True)[PREDICTION_COLUMNS]
    metrics = pd.concat([r[1] for r in results], ignore_index=True)[METRIC_COLUMNS]
    imps = [r[2] for r in results if len(r[2])]
    importances = (pd.concat(imps, ignore_index=True) if imps
                   else pd.DataFrame(columns=IMPORTANCE_COLUMNS))[IMPORTANCE_COLUMNS]
    return {"predictions": predictions, "metrics": metrics, "importances": importances}
