"""netdyn.predict.evaluate: the predictor beats the trivial baseline, and importances find the feature
that holds the signal."""

from __future__ import annotations

import netdyn.predict as P

from .synthetic import ARCHS, pooled


def test_predictor_beats_trivial_baseline(result):
    m = pooled(result["metrics"], P.SPLIT_WITHIN)
    for arch in ARCHS:
        base = m.loc[(arch, "early_acc", 1)]
        for fs in ("curve", "graph", "graph+curve"):
            got = m.loc[(arch, fs, 1)]
            assert got["kendall_tau"] > base["kendall_tau"] + 0.3, (arch, fs)
            assert got["r2"] > max(base["r2"], 0) + 0.3, (arch, fs)
            assert got["mae"] < base["mae"], (arch, fs)
    t = pooled(result["metrics"], P.SPLIT_TRANSFER)
    for arch in ARCHS:
        assert t.loc[(arch, "curve", 1), "kendall_tau"] > t.loc[(arch, "early_acc", 1), "kendall_tau"] + 0.3


def test_importances_find_the_informative_graph_feature(result):
    imp = result["importances"]
    assert set(imp["feature_set"]) == {"graph", "graph+curve"}
    g = imp[(imp["feature_set"] == "graph") & (imp["window"] == 2)]
    for arch in ARCHS:
        a = g[g["arch"] == arch]
        top = a.sort_values("permutation_mean", ascending=False)["feature"].iloc[0]
        assert top.startswith("all.strength.mean@e"), (arch, top)
        assert a["gain"].ge(0).all() and a["permutation_std"].dropna().ge(0).all()
