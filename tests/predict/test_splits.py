"""netdyn.predict.splits: grouped folds and the width transfer (which rows each fit may see)."""

from __future__ import annotations

import pandas as pd
import pytest

import netdyn.predict as P
import netdyn.predict.run as predict_run

from .synthetic import FAST


def test_grouped_folds_never_split_a_configuration(study, result):
    runs, _, _ = study
    pred = result["predictions"].merge(runs[["run_id", "learning_rate", "dropout", "weight_decay"]], on="run_id")
    cv = pred[pred["split"] == P.SPLIT_WITHIN]
    per_cfg = cv.groupby(["feature_set", "window", "arch", "dataset", "width", "learning_rate", "dropout",
                          "weight_decay"])["fold"].nunique()
    assert (per_cfg == 1).all()
    folds = P.within_width_folds(P.prepare_runs(runs), 5, seed=3)
    key = runs[P.CONFIG_KEYS].astype(str).agg("|".join, axis=1).to_numpy()
    assert (pd.Series(folds.to_numpy()).groupby(key).nunique() == 1).all()
    assert sorted(folds.unique()) == [0, 1, 2, 3, 4]


def test_transfer_fits_only_train_widths_and_tests_every_larger_width(study, result, monkeypatch):
    runs, _, _ = study
    tr = result["predictions"][result["predictions"]["split"] == P.SPLIT_TRANSFER]
    assert set(tr["width"]) == {2, 3}
    assert (tr["fold"] == -1).all() and (tr["train_widths"] == "1").all()
    n_w1 = runs[runs["width"] == 1].groupby("arch_label").size()
    assert (tr.groupby("arch")["n_train"].unique().map(lambda v: list(v)) == n_w1.map(lambda n: [n])).all()
    # spy on the fits themselves: the transfer fitter (the one on the task's own X) only sees width 1
    tasks = []
    orig = predict_run.evaluate_task
    monkeypatch.setattr(predict_run, "evaluate_task", lambda t: (tasks.append(t), orig(t))[1])
    seen = []
    fit = P.Fitter.fit

    def spy(self, rows, *a, **k):
        seen.append((self.X, rows.copy()))
        return fit(self, rows, *a, **k)

    monkeypatch.setattr(P.Fitter, "fit", spy)
    P.run_prediction(runs, study[1], study[2], {**FAST, "windows": [1], "feature_sets": ["curve"]})
    for t in tasks:
        rows = [r for X, r in seen if X is t.X]
        assert rows, "no transfer fit recorded"
        assert all(set(t.widths[r]) == {1} for r in rows)


def test_transfer_without_training_rows_names_arch_and_widths(study, monkeypatch):
    runs, root, graphs = study
    sub = runs[~((runs["arch_label"] == "vgg11bn") & (runs["width"] == 1))]
    called = []
    monkeypatch.setattr(predict_run, "evaluate_task", lambda t: called.append(t))
    with pytest.raises(ValueError, match=r"vgg11bn on digits has no runs at train widths \[1\].*\[2, 3\]"):
        P.run_prediction(sub, root, graphs, FAST)
    assert not called  # raised before any fit
    with pytest.raises(ValueError, match="no width larger than 3"):
        P.run_prediction(runs, root, graphs, {**FAST, "train_widths": [3]})
