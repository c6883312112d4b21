"""netdyn.predict.run: the stage's tables, determinism, config defaults from the schema, and inputs that
are checked before the first fit."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import netdyn.predict as P
import netdyn.predict.run as predict_run
from netdyn.config import load_schema

from .synthetic import ARCHS, FAST


def test_tables_have_the_documented_columns(result):
    assert list(result["predictions"].columns) == P.PREDICTION_COLUMNS
    assert list(result["metrics"].columns) == P.METRIC_COLUMNS
    assert list(result["importances"].columns) == P.IMPORTANCE_COLUMNS
    pred = result["predictions"]
    # every run is predicted exactly once per feature set x window in the CV split
    cv = pred[pred["split"] == P.SPLIT_WITHIN]
    assert (cv.groupby(["feature_set", "window", "run_id"]).size() == 1).all()
    assert cv.groupby(["feature_set", "window"]).size().eq(len(ARCHS) * 96 // 2).all()
    assert set(result["metrics"]["subset"]) == set(P.SUBSETS)


def test_deterministic_and_independent_of_n_jobs(study):
    runs, root, graphs = study
    cfg = {**FAST, "windows": [1], "feature_sets": ["curve", "graph"]}
    a = P.run_prediction(runs, root, graphs, cfg, n_jobs=1)
    b = P.run_prediction(runs, root, graphs, cfg, n_jobs=2)
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k])


def test_config_defaults_come_from_the_schema(monkeypatch):
    schema = load_schema()
    props = schema["properties"]["predict"]["properties"]
    got = P.resolve_config({"windows": [2]})
    assert got == {**{k: p["default"] for k, p in props.items()}, "windows": [2]}
    assert got["folds"] == 5 and got["tune"] == {"max_depth": [2, 4], "n_estimators": [100, 300]}
    # the schema is the only source: change a default there and the stage follows
    changed = copy.deepcopy(schema)
    changed["properties"]["predict"]["properties"]["folds"]["default"] = 7
    monkeypatch.setattr(predict_run, "load_schema", lambda: changed)
    assert P.resolve_config({"windows": [2]})["folds"] == 7
    got["tune"]["max_depth"].append(9)  # defaults are copies: filling one config cannot change another
    assert P.resolve_config({"windows": [2]})["tune"]["max_depth"] == [2, 4]


def test_unknown_config_key_and_null_windows_are_named(study):
    runs, root, graphs = study
    with pytest.raises(ValueError, match="unknown key.*'fold'"):
        P.run_prediction(runs, root, graphs, {**FAST, "fold": 3})
    with pytest.raises(ValueError, match="`windows` is null.*prediction_windows"):
        P.run_prediction(runs, root, graphs, {**FAST, "windows": None})
    with pytest.raises(ValueError, match="`windows` is null"):
        P.resolve_config({})


def test_graph_table_without_values_for_an_arch_is_named(study):
    runs, root, graphs = study
    vgg = runs.loc[runs["arch_label"] == "vgg11bn", "run_id"]
    bad = {E: g.copy() for E, g in graphs.items()}
    for g in bad.values():
        g.loc[g.index.isin(vgg)] = np.nan
    with pytest.raises(ValueError, match=r"graph \(E=1\) for vgg11bn on digits"):
        P.run_prediction(runs, root, bad, FAST)


def test_runs_table_missing_columns_is_named(study):
    runs, root, graphs = study
    with pytest.raises(ValueError, match=r"\['dropout', 'final_test_acc'\]"):
        P.run_prediction(runs.drop(columns=["dropout", "final_test_acc"]), root, graphs, FAST)
