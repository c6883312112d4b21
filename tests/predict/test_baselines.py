"""No-fit baselines in the prediction stage: the early accuracy itself and the per-run curve
extrapolation are evaluated on the same rows and splits as the fitted sets, and cannot be joined."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import netdyn.predict as P

from .synthetic import FAST


@pytest.fixture(scope="module")
def nofit(study):
    runs, root, graphs = study
    cfg = {**FAST, "feature_sets": ["early_acc", "early_acc_nofit", "curve_extrap"]}
    return P.run_prediction(runs, root, graphs, cfg, n_jobs=1), runs, root


def test_early_acc_nofit_is_the_early_accuracy_itself(nofit):
    out, runs, root = nofit
    pred = out["predictions"]
    feats = P.build_features("early_acc", runs, window=2, runs_dir=root)["early_acc"]
    p = pred[(pred.feature_set == "early_acc_nofit") & (pred.window == 2)]
    for split, g in p.groupby("split"):
        np.testing.assert_allclose(g["y_pred"].to_numpy(), feats.loc[g["run_id"]].to_numpy())
    fitted = pred[(pred.feature_set == "early_acc") & (pred.window == 2)]
    for split in (P.SPLIT_WITHIN, P.SPLIT_TRANSFER):  # the same test runs as the fitted sets
        a = set(p.loc[p.split == split, "run_id"])
        assert a == set(fitted.loc[fitted.split == split, "run_id"]) and a
    m = out["metrics"]
    row = m[(m.feature_set == "early_acc_nofit") & (m.window == 2) & (m.split == P.SPLIT_WITHIN)
            & (m.subset == "all") & m.test_width.isna()].iloc[0]
    g = p[(p.split == P.SPLIT_WITHIN) & (p.arch == row["arch"])]
    assert row["kendall_tau"] == pytest.approx(stats.kendalltau(g["y_true"], g["y_pred"]).statistic)
    assert (p["n_train"] == 0).all()


def test_curve_extrap_predicts_within_the_unit_interval(nofit):
    out, _, _ = nofit
    p = out["predictions"]
    p = p[p.feature_set == "curve_extrap"]
    assert len(p) and p["y_pred"].between(0, 1).all()


def test_no_fit_baselines_cannot_be_joined(study):
    runs, root, graphs = study
    with pytest.raises(ValueError, match="cannot be joined"):
        P.run_prediction(runs, root, graphs, {**FAST, "feature_sets": ["early_acc_nofit+curve"]})
