"""The prediction stage's output tables: split and subset names, and the column order of the
predictions, metrics and importances tables (README's "Outputs" section documents them)."""

from __future__ import annotations

SPLIT_WITHIN = "within_width"
SPLIT_TRANSFER = "transfer"
SUBSETS = ("all", "non-diverged", "diverged")
WIDTH_FEATURE = "run.width"  # the width as a feature of the within-width model

PREDICTION_COLUMNS = ["run_id", "arch", "dataset", "width", "feature_set", "window", "split", "fold",
                      "y_true", "y_pred", "diverged", "train_widths", "n_train"]
METRIC_NAMES = ("r2", "mae", "kendall_tau", "spearman")
METRIC_COLUMNS = (["arch", "dataset", "feature_set", "window", "split", "subset", "train_widths",
                   "test_width", "n_train", "n_test"]
                  + [f"{m}{s}" for m in METRIC_NAMES for s in ("", "_lo", "_hi")]
                  + ["top_k", "top_k_precision"])
IMPORTANCE_COLUMNS = ["arch", "dataset", "feature_set", "window", "feature", "source", "gain", "total_gain",
                      "permutation_mean", "permutation_std"]
