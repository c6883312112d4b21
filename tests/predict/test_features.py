"""netdyn.predict.features and .feature_sets: the built-in sets, the registry, input tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import netdyn.predict as P

from .synthetic import FAST, write_run


def test_curve_features_pick_early_snapshots_and_nan_after_divergence(study):
    runs, root, _ = study
    f = P.build_features("curve", runs, 2, runs_dir=root)
    epochs = sorted({float(c.split("@e")[1]) for c in f.columns})
    assert epochs == [0.0, 0.5, 1.0, 2.0]
    assert "curve.train_loss@e0" not in f.columns  # never measured at init
    div = runs.loc[runs["status"] == "diverged", "run_id"].iloc[0]
    ok = runs.loc[runs["status"] == "complete", "run_id"].iloc[0]
    assert f.loc[div, [c for c in f.columns if c.endswith("@e2")]].isna().all()
    assert f.loc[div, "curve.test_acc@e1"] == pytest.approx(0.1)  # the divergence measurement itself
    assert f.loc[ok].notna().all()
    c = pd.read_csv(root / ok / "curves.csv")
    assert f.loc[ok, "curve.train_loss@e1"] == pytest.approx(c.loc[c.epoch == 1.0, "train_loss"].item())
    e = P.build_features("early_acc", runs, 2, runs_dir=root)
    assert e.loc[ok, "early_acc"] == pytest.approx(c.loc[c.epoch == 2.0, "test_acc"].item())
    assert e.loc[div, "early_acc"] == pytest.approx(0.1)  # last measured by E


def test_weight_features_from_a_real_trajectory(tmp_path):
    full = write_run(tmp_path, "lenet-a", [0.0, 0.5, 1.0, 2.0], seed=0)
    write_run(tmp_path, "lenet-b", [0.0, 0.5], seed=1)  # stopped early (diverged)
    runs = pd.DataFrame({"run_id": ["lenet-a", "lenet-b"]})
    f = P.build_features("weights", runs, 1, runs_dir=tmp_path)
    w = full[1.0]["features.0.weight"].ravel().astype(np.float64)
    expect = [w.mean(), w.var(), *np.quantile(w, [0, 0.25, 0.5, 0.75, 1])]
    got = [f.loc["lenet-a", f"w.features.0.weight.{s}"] for s in P.WEIGHT_STATS]
    np.testing.assert_allclose(got, expect, rtol=1e-6)
    names = [k for k in full[1.0] if k.endswith(("weight", "bias"))]
    assert f.shape[1] == 7 * len(names) == 7 * 10
    assert f.loc["lenet-b"].isna().all()  # no epoch-1 snapshot: NaN, not an earlier snapshot
    g = P.build_features("weights", runs, 2, runs_dir=tmp_path)
    assert g.loc["lenet-a", "w.features.0.weight.mean"] == pytest.approx(full[2.0]["features.0.weight"].mean())


def test_weight_statistics_skip_buffers_and_match_numpy():
    rng = np.random.default_rng(6)
    a = rng.normal(size=1001).astype(np.float32)
    s = P.weight_statistics({"bn.weight": a, "bn.running_mean": a, "bn.num_batches_tracked": np.array([3])})
    assert set(s) == {f"w.bn.weight.{k}" for k in P.WEIGHT_STATS}
    np.testing.assert_allclose([s[f"w.bn.weight.q{q}"] for q in (0, 25, 50, 75, 100)],
                               np.quantile(a.astype(np.float64), [0, .25, .5, .75, 1]), rtol=1e-6)


def test_registry_combines_sets_and_records_sources(study):
    runs, root, graphs = study
    f = P.build_features("graph+curve", runs, 1, runs_dir=root, tables={"graph": graphs})
    src = f.attrs["source"]
    assert set(src.values()) == {"graph", "curve"}
    assert src["all.strength.mean@e1"] == "graph" and src["curve.test_acc@e1"] == "curve"

    @P.register_feature_set("const_for_test")
    def const(ctx, window):
        return pd.DataFrame({"k": float(window)}, index=ctx.runs.index)

    try:
        g = P.build_features("early_acc+const_for_test", runs, 2, runs_dir=root)
        assert list(g.columns) == ["early_acc", "k"] and (g["k"] == 2).all()
    finally:
        del P.FEATURE_BUILDERS["const_for_test"]


def test_table_feature_set_reads_its_table_per_window(study):
    runs, root, graphs = study
    P.register_table_feature_set("table_for_test")
    try:
        f = P.build_features("table_for_test", runs, 2, tables={"table_for_test": graphs})
        pd.testing.assert_frame_equal(f, graphs[2].loc[runs["run_id"]].set_axis(runs["run_id"].to_numpy()),
                                      check_names=False)
    finally:
        del P.FEATURE_BUILDERS["table_for_test"]


def test_graph_table_missing_runs_is_named(study):
    runs, root, graphs = study
    bad = {E: g.drop(index=runs["run_id"].iloc[[3, 7]]) for E, g in graphs.items()}
    with pytest.raises(ValueError, match=runs["run_id"].iloc[3]):
        P.run_prediction(runs, root, bad, FAST)


def test_graph_table_without_feature_columns_or_window_is_named(study):
    runs, root, graphs = study
    empty = {E: pd.DataFrame({"note": "x"}, index=g.index) for E, g in graphs.items()}
    with pytest.raises(ValueError, match="no numeric feature columns.*note"):
        P.run_prediction(runs, root, empty, FAST)
    with pytest.raises(ValueError, match="window E=2"):
        P.run_prediction(runs, root, {1: graphs[1]}, FAST)
    with pytest.raises(ValueError, match="needs the graph summary"):
        P.run_prediction(runs, root, None, FAST)


def test_unknown_feature_set_is_named(study):
    runs, root, graphs = study
    with pytest.raises(ValueError, match="unknown part.*'bogus'"):
        P.run_prediction(runs, root, graphs, {**FAST, "feature_sets": ["graph+bogus"]})


def test_a_registered_table_set_without_its_table_is_named(study):
    runs, root, graphs = study
    with pytest.raises(ValueError, match="'modularity' needs the modularity summary table"):
        P.run_prediction(runs, root, graphs, {**FAST, "feature_sets": ["graph+modularity"]})
