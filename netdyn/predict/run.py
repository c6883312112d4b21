"""The whole prediction stage (:func:`run_prediction`): check every input, build the feature sets, one
task per model group, fit and evaluate the tasks (in parallel), and concatenate their tables."""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import load_schema
from .evaluate import Task, evaluate_task
from .baselines import NO_FIT_SETS
from .features import FeatureContext, build_features, feature_set_parts
from .model import MAX_FEATURES
from .splits import check_transfer, config_groups, within_width_folds
from .tables import IMPORTANCE_COLUMNS, METRIC_COLUMNS, PREDICTION_COLUMNS

log = logging.getLogger(__name__)

RUN_COLUMNS = ["run_id", "arch_label", "dataset", "width", "learning_rate", "dropout", "weight_decay",
               "seed", "status", "final_test_acc"]
IMPORTANCE_SETS = ("graph", "graph+curve")


def resolve_config(cfg: Mapping | None) -> dict:
    """The predict section with the schema's defaults (workflow/schemas/config.schema.yaml, the one source)
    filled in; a config validated by netdyn.config already has them. ValueError naming unknown keys, and
    when ``windows`` is null: netdyn.config.prediction_windows resolves it from ``training.epochs``."""
    schema = load_schema()["properties"]["predict"]["properties"]
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(schema))
    if unknown:
        raise ValueError(f"predict config: unknown key(s) {unknown}; known: {sorted(schema)}")
    out = {k: copy.deepcopy(p["default"]) for k, p in schema.items() if "default" in p} | cfg
    if out.get("windows") is None:
        raise ValueError("predict config: `windows` is null; pass the early windows to predict from "
                         "(netdyn.config.prediction_windows resolves null from training.epochs)")
    return out


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


def _varying(X: np.ndarray) -> np.ndarray:
    """Columns with two states or more (NaN counts as one: trees can split missing from present); the
    others are constant and no split can use them."""
    present = ~np.isnan(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        spread = np.nanmax(X, axis=0) > np.nanmin(X, axis=0)
    return spread | (present.any(0) & ~present.all(0))


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
    (in-fold screening, see netdyn.predict.model.Fitter). The result does not depend on `n_jobs`.
    """
    t0 = time.perf_counter()
    cfg = resolve_config(cfg)
    runs = prepare_runs(runs)
    tables = dict(tables or {})
    if graph_summaries is not None:
        tables["graph"] = graph_summaries
    for spec in cfg["feature_sets"]:
        parts = feature_set_parts(spec)
        if len(parts) > 1 and set(parts) & set(NO_FIT_SETS):
            raise ValueError(f"feature set {spec!r}: no-fit baselines {sorted(set(parts) & set(NO_FIT_SETS))} "
                             "are predictions, not features; they cannot be joined with '+'")
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
                no_fit = spec in NO_FIT_SETS
                if no_fit and X.isna().any().any():
                    raise ValueError(f"no-fit baseline {spec} (E={window}) has no value for run(s) "
                                     f"{list(X.index[X.isna().any(axis=1)])[:5]} of {arch} on {dataset}")
                if not no_fit:
                    X = X.loc[:, _varying(X.to_numpy(float))]
                sub = runs.iloc[idx]
                tasks.append(Task(
                    arch=arch, dataset=dataset, feature_set=spec, window=int(window),
                    X=X.to_numpy(float) if X.shape[1] else np.full((len(idx), 1), np.nan),
                    names=list(X.columns) if X.shape[1] else ["(none)"],
                    sources=[sources[c] for c in X.columns] if X.shape[1] else ["none"],
                    y=sub["final_test_acc"].to_numpy(float), run_ids=sub.index.to_numpy(),
                    widths=sub["width"].to_numpy(int), diverged=sub["diverged"].to_numpy(bool),
                    groups=groups[idx], folds=folds.iloc[idx].to_numpy(int), train_widths=train_widths,
                    test_widths=test_widths.get((arch, dataset), []), fixed=dict(cfg["xgboost"]),
                    tune=dict(cfg["tune"]), seed=int(cfg["seed"]), importance=spec in importance_sets,
                    max_features=max_features, metric_args=metric_args, no_fit=no_fit))
    if empty:
        raise ValueError("feature tables hold no values at all (every column missing) for: " + "; ".join(empty))
    t1 = time.perf_counter()
    log.info("features: %d model groups built in %.1fs", len(tasks), t1 - t0)
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].cost)  # big tasks first: better packing
    if n_jobs > 1 and len(tasks) > 1:
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=n_jobs)(delayed(evaluate_task)(tasks[i]) for i in order)
    else:
        done = [evaluate_task(tasks[i]) for i in order]
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
