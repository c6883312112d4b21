"""The committed evidence (evidence/digits_evidence) is what its predictions give: metrics rows, paired
differences and the summary README prints are recomputed here from the committed predictions.csv."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import netdyn.predict as P
from netdyn.predict.compare import classification_metrics, paired_differences

EV = Path(__file__).resolve().parents[2] / "evidence" / "digits_evidence"
pytestmark = pytest.mark.skipif(not (EV / "predictions.csv").exists(), reason="no committed evidence")
WINDOW = 3


@pytest.fixture(scope="module")
def committed():
    pred = pd.read_csv(EV / "predictions.csv")
    return (pred[pred["window"] == WINDOW], pd.read_csv(EV / "metrics.csv"), pd.read_csv(EV / "paired.csv"),
            pd.read_csv(EV / "classification.csv"), json.loads((EV / "summary.json").read_text()))


def test_metrics_rows_recompute_from_predictions(committed):
    pred, metrics, *_ = committed
    sub = pred[pred["feature_set"].isin(["graph", "early_acc_nofit"])]
    again = P.metrics_from_predictions(sub, bootstrap=1000, seed=0)
    keys = ["arch", "feature_set", "window", "split", "subset", "test_width"]
    want = metrics.merge(again[keys], on=keys).sort_values(keys, ignore_index=True)
    got = again.sort_values(keys, ignore_index=True)
    assert len(got) == len(want) > 0
    for c in ("kendall_tau", "kendall_tau_lo", "kendall_tau_hi", "r2", "r2_lo", "r2_hi", "n_test"):
        np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-9, atol=1e-12,
                                   err_msg=c)


def test_paired_and_classification_recompute_from_predictions(committed):
    pred, _, paired, cls, _ = committed
    again = paired_differences(pred, [("graph", "early_acc_nofit")], bootstrap=1000, seed=0)
    keys = ["arch", "split", "window", "a", "b"]
    want = paired.merge(again[keys], on=keys).sort_values(keys, ignore_index=True)
    got = again.sort_values(keys, ignore_index=True)
    for c in ("d_tau", "d_tau_lo", "d_tau_hi", "d_r2"):
        np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-9, err_msg=c)
    g = classification_metrics(pred[pred["feature_set"] == "graph"], bootstrap=1000, seed=0)
    k2 = ["arch", "split", "window", "feature_set"]
    w2 = cls.merge(g[k2], on=k2).sort_values(k2, ignore_index=True)
    g = g.sort_values(k2, ignore_index=True)
    for c in ("accuracy", "accuracy_lo", "accuracy_hi", "roc_auc", "roc_auc_lo", "roc_auc_hi"):
        np.testing.assert_allclose(g[c].to_numpy(float), w2[c].to_numpy(float), rtol=1e-9, err_msg=c)


def test_summary_holds_the_tables_values(committed):
    _, metrics, paired, _, summary = committed
    m = metrics[(metrics["subset"] == "all") & metrics["test_width"].isna()].set_index(
        ["arch", "split", "window", "feature_set"])
    for r in summary["metrics"]:
        row = m.loc[(r["arch"], r["split"], r["window"], r["feature_set"])]
        assert r["tau"] == (None if np.isnan(row["kendall_tau"]) else round(row["kendall_tau"], 2))
    p = paired.set_index(["arch", "split", "window", "a", "b"])
    for r in summary["paired"]:
        assert r["d_tau"] == round(p.loc[(r["arch"], r["split"], r["window"], r["a"], r["b"]), "d_tau"], 2)
