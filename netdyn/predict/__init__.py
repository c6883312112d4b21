"""Prediction stage: does what a network shows in its first E epochs predict its final test accuracy?

Pipeline, per early window E (epochs 0..E), feature set and architecture x data set:

1. **Features** (:mod:`.features`, :mod:`.feature_sets`; one row per run) from a registry of builders,
   combined with ``+`` (``graph+curve``). Built-ins: ``early_acc`` (the trivial baseline), ``curve``,
   ``weights`` (Unterthiner et al. 2020) and ``graph`` (the temporal graph summary, an input table).
   No-fit baselines (:mod:`.baselines`): ``early_acc_nofit`` (the early accuracy as the prediction) and
   ``curve_extrap`` (each run's early curve extrapolated to its final epoch). Later stages add theirs
   with :func:`register_feature_set` or :func:`register_table_feature_set`.
2. **Model** (:mod:`.model`): gradient-boosted trees (XGBoost, ``hist``), fixed parameters from the config
   plus a small grid (``tune``) chosen inside the training rows only.
3. **Evaluation** (:mod:`.evaluate`, folds in :mod:`.splits`), two splits: ``within_width`` (grouped
   k-fold CV, one model pooled over widths with the width as a feature; metrics pooled and per width) and
   ``transfer`` (fit on ``train_widths``, evaluate on every larger width).
4. **Metrics** (:mod:`.metrics`): R2, MAE, Kendall tau, Spearman rho with bootstrap 95% intervals, and
   top-k precision, for all / non-diverged / diverged runs.
5. **Importance** of graph features: XGBoost gain and permutation importance on held-out folds.

:func:`run_prediction` (:mod:`.run`) does it all. Everything is deterministic given ``seed``; the result
does not depend on ``n_jobs``.
"""

from . import baselines, feature_sets  # noqa: F401  (register the built-in feature sets and baselines)
from .baselines import NO_FIT_SETS, extrapolate, saturation
from .evaluate import Task, evaluate_task
from .feature_sets import WEIGHT_STATS, weight_statistics
from .features import (CURVE_METRICS, FEATURE_BUILDERS, FeatureContext, build_features, feature_set_parts,
                       register_feature_set, register_table_feature_set)
from .metrics import (metrics_from_predictions, point_metrics, prediction_metrics, resampled_metrics,
                      top_k_precision)
from .model import MAX_FEATURES, Fitter, screen_features
from .names import feature_name_table, parse_feature_name
from .run import RUN_COLUMNS, prepare_runs, resolve_config, run_prediction
from .splits import CONFIG_KEYS, check_transfer, config_groups, within_width_folds
from .tables import (IMPORTANCE_COLUMNS, METRIC_COLUMNS, METRIC_NAMES, PREDICTION_COLUMNS, SPLIT_TRANSFER,
                     SPLIT_WITHIN, SUBSETS, WIDTH_FEATURE)

__all__ = [
    "CONFIG_KEYS", "CURVE_METRICS", "FEATURE_BUILDERS", "IMPORTANCE_COLUMNS", "MAX_FEATURES", "METRIC_COLUMNS",
    "METRIC_NAMES", "NO_FIT_SETS", "PREDICTION_COLUMNS", "RUN_COLUMNS", "SPLIT_TRANSFER", "SPLIT_WITHIN", "SUBSETS",
    "WEIGHT_STATS", "WIDTH_FEATURE", "FeatureContext", "Fitter", "Task", "build_features", "check_transfer",
    "config_groups", "evaluate_task", "feature_name_table", "feature_set_parts", "metrics_from_predictions",
    "parse_feature_name", "point_metrics", "prediction_metrics", "prepare_runs", "register_feature_set",
    "register_table_feature_set", "resampled_metrics", "resolve_config", "run_prediction", "screen_features",
    "top_k_precision", "weight_statistics", "within_width_folds", "extrapolate", "saturation",
]
