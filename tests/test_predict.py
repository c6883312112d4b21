"""Tests for netdyn.predict: features, splits, the predictor, metrics, importances, figures.

A synthetic study (curves.csv files and graph summary tables written here) hides each run's quality u in
one early feature - the training loss at epoch 1 and one graph column - while the early test accuracy
is noise: a working predictor must beat the trivial baseline. Final accuracy = 0.1 + 0.8 u^2.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import xgboost
from scipy import stats
from sklearn.metrics import mean_absolute_error, r2_score

import netdyn.predict as P
from netdyn.models import build_model
from netdyn.trajectory import TrajectoryWriter

ARCHS = ("lenet", "vgg11bn")
WIDTHS = (1, 2, 3)
LRS = (0.01, 0.03, 0.1, 0.3)
EPOCHS = (0.0, 0.5, 1.0, 2.0, 3.0)
FAST = {  # small trees: the tests check behaviour, not accuracy
    "train_widths": [1], "windows": [1, 2], "feature_sets": ["early_acc", "curve", "graph", "graph+curve"],
    "folds": 4, "bootstrap": 200, "top_fraction": 0.1, "seed": 0,
    "xgboost": {"n_estimators": 40, "max_depth": 2, "learning_rate": 0.15, "subsample": 0.8},
    "tune": {"max_depth": [2, 3], "n_estimators": [20, 40]},
}


def _curves_rows(u: float, rng, diverge_at: float | None) -> list[dict]:
    rows = []
    for i, e in enumerate(EPOCHS):
        row = {"snapshot": i, "epoch": e, "step": int(e * 10), "lr": 0.1,
               "train_loss": np.nan if e == 0 else 2.3 - 2.0 * u * min(e, 1.0) + 0.01 * rng.normal(),
               "train_acc": np.nan if e == 0 else rng.uniform(0.1, 0.3),
               "test_loss": 2.3 + 0.05 * rng.normal(), "test_acc": rng.uniform(0.1, 0.3)}
        if diverge_at is not None and e >= diverge_at:
            rows.append({**row, "snapshot": -1, "train_loss": np.nan, "test_loss": np.nan, "test_acc": 0.1})
            break
        rows.append(row)
    return rows


def make_study(root, archs=ARCHS, widths=WIDTHS, seed=0):
    """Runs table, runs directory (curves.csv only) and graph summaries {E: table} of a synthetic study."""
    rng = np.random.default_rng(seed)
    records, quality = [], {}
    for arch, w, lr, do, s in itertools.product(archs, widths, LRS, (0.0, 0.5), (0, 1)):
        run_id = f"{arch}-digits-w{w}-lr{lr:g}-do{do:g}-wd0-s{s}"
        u = rng.uniform()
        diverge_at = 1.0 if (lr == 0.3 and s == 1 and do == 0.0) else None
        rows = _curves_rows(u, rng, diverge_at)
        d = root / run_id
        d.mkdir(parents=True)
        pd.DataFrame(rows).to_csv(d / "curves.csv", index=False)
        final = 0.1 if diverge_at is not None else 0.1 + 0.8 * u ** 2
        quality[run_id] = np.nan if diverge_at is not None else u
        records.append({"run_id": run_id, "arch": {"vgg11bn": "vgg"}.get(arch, arch), "arch_label": arch,
                        "dataset": "digits", "width": w, "learning_rate": lr, "dropout": do, "weight_decay": 0.0,
                        "seed": s, "epochs": 3, "status": "diverged" if diverge_at is not None else "complete",
                        "diverged_epoch": diverge_at, "final_test_acc": final})
    runs = pd.DataFrame(records)
    graphs = {}
    for E in (1, 2, 3):
        cols = {}
        for e in [x for x in EPOCHS if x <= E]:
            q = runs["run_id"].map(quality).to_numpy()
            cols[f"all.strength.mean@e{e:g}"] = q + 0.02 * rng.normal(size=len(runs)) if e >= 1 else \
                rng.normal(size=len(runs))
            for k in range(6):
                cols[f"features.{k}.eigenvector.std@e{e:g}"] = rng.normal(size=len(runs))
            if e > 0:
                cols[f"d(all.strength.mean)@e{e:g}"] = rng.normal(size=len(runs))
        graphs[E] = pd.DataFrame(cols, index=pd.Index(runs["run_id"], name="run_id"))
    return runs, root, graphs


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def result(study):
    runs, root, graphs = study
    return P.run_prediction(runs, root, graphs, FAST, n_jobs=1)


def _pooled(metrics, split=P.SPLIT_WITHIN, subset="all"):
    m = metrics[(metrics["split"] == split) & (metrics["subset"] == subset) & metrics["test_width"].isna()]
    return m.set_index(["arch", "feature_set", "window"])


# ------------------------------------------------------------------------------------------ the predictor

def test_predictor_beats_trivial_baseline(result):
    m = _pooled(result["metrics"])
    for arch in ARCHS:
        base = m.loc[(arch, "early_acc", 1)]
        for fs in ("curve", "graph", "graph+curve"):
            got = m.loc[(arch, fs, 1)]
            assert got["kendall_tau"] > base["kendall_tau"] + 0.3, (arch, fs)
            assert got["r2"] > max(base["r2"], 0) + 0.3, (arch, fs)
            assert got["mae"] < base["mae"], (arch, fs)
    t = _pooled(result["metrics"], split=P.SPLIT_TRANSFER)
    for arch in ARCHS:
        assert t.loc[(arch, "curve", 1), "kendall_tau"] > t.loc[(arch, "early_acc", 1), "kendall_tau"] + 0.3


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
    orig = P._evaluate
    monkeypatch.setattr(P, "_evaluate", lambda t: (tasks.append(t), orig(t))[1])
    seen = []
    fit = P._Fitter.fit

    def spy(self, rows, *a, **k):
        seen.append((self.X, rows.copy()))
        return fit(self, rows, *a, **k)

    monkeypatch.setattr(P._Fitter, "fit", spy)
    P.run_prediction(runs, study[1], study[2], {**FAST, "windows": [1], "feature_sets": ["curve"]})
    for t in tasks:
        rows = [r for X, r in seen if X is t.X]
        assert rows, "no transfer fit recorded"
        assert all(set(t.widths[r]) == {1} for r in rows)


def test_deterministic_and_independent_of_n_jobs(study):
    runs, root, graphs = study
    cfg = {**FAST, "windows": [1], "feature_sets": ["curve", "graph"]}
    a = P.run_prediction(runs, root, graphs, cfg, n_jobs=1)
    b = P.run_prediction(runs, root, graphs, cfg, n_jobs=2)
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k])


def test_fitter_trains_what_xgbregressor_trains():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 6))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = rng.normal(size=40)
    fixed = {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8}
    f = P._Fitter(X, y, fixed, seed=7)
    rows = np.ones(40, dtype=bool)
    model = f.fit(rows, {"max_depth": 2})
    reg = xgboost.XGBRegressor(**{**fixed, "max_depth": 2}, tree_method="hist", n_jobs=1, random_state=7,
                               **f.max_bin).fit(X, y)
    np.testing.assert_allclose(model.predict(X), reg.predict(X), rtol=1e-6, atol=1e-7)
    assert f.fit(rows, {"max_depth": 2}) is model and f.n_fits == 1  # cached


def test_screening_uses_only_the_fit_rows():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 200))
    y = X[:, 17] + 0.1 * rng.normal(size=60)
    assert 17 in P.screen_features(X, y, 10)
    f = P._Fitter(X, y, {"n_estimators": 5}, seed=0, max_features=10, keep=[199])
    rows = np.arange(60) < 40
    cols = f.columns(rows)
    assert 199 in cols and 17 in cols and len(cols) == 11
    y2 = y.copy()
    y2[~rows] = rng.normal(size=20)  # other rows' targets must not matter
    np.testing.assert_array_equal(P._Fitter(X, y2, {}, 0, max_features=10, keep=[199]).columns(rows), cols)


# ------------------------------------------------------------------------------------------------ metrics

def test_metrics_recomputable_from_predictions(result, tmp_path):
    pred = result["predictions"]
    args = {k: FAST[k] for k in ("bootstrap", "top_fraction", "seed")}
    pd.testing.assert_frame_equal(P.metrics_from_predictions(pred, **args), result["metrics"])
    pred.to_csv(tmp_path / "predictions.csv", index=False)  # as the workflow stores it
    again = P.metrics_from_predictions(pd.read_csv(tmp_path / "predictions.csv"), **args)
    pd.testing.assert_frame_equal(again, result["metrics"], check_exact=False, rtol=1e-12)


def test_point_metrics_are_the_library_metrics(result):
    pred = result["predictions"]
    m = result["metrics"]
    row = m[(m["split"] == P.SPLIT_TRANSFER) & (m["subset"] == "non-diverged") & (m["test_width"] == 3)].iloc[0]
    p = pred[(pred["split"] == P.SPLIT_TRANSFER) & (pred["arch"] == row["arch"])
             & (pred["feature_set"] == row["feature_set"]) & (pred["window"] == row["window"])
             & (pred["width"] == 3) & ~pred["diverged"]]
    assert row["n_test"] == len(p)
    assert row["r2"] == pytest.approx(r2_score(p["y_true"], p["y_pred"]))
    assert row["mae"] == pytest.approx(mean_absolute_error(p["y_true"], p["y_pred"]))
    assert row["kendall_tau"] == pytest.approx(stats.kendalltau(p["y_true"], p["y_pred"]).statistic)
    assert row["spearman"] == pytest.approx(stats.spearmanr(p["y_true"], p["y_pred"]).statistic)


def test_resampled_metrics_match_scipy_and_sklearn_on_expanded_samples():
    rng = np.random.default_rng(3)
    y = np.round(rng.random(25), 1)  # ties on purpose
    p = np.round(y + 0.3 * rng.normal(size=25), 1)
    counts = rng.multinomial(25, np.full(25, 1 / 25), size=6)
    got = P.resampled_metrics(y, p, counts)
    for b, c in enumerate(counts):
        ys, ps = np.repeat(y, c), np.repeat(p, c)
        assert got["r2"][b] == pytest.approx(r2_score(ys, ps))
        assert got["mae"][b] == pytest.approx(mean_absolute_error(ys, ps))
        assert got["kendall_tau"][b] == pytest.approx(stats.kendalltau(ys, ps).statistic)
        assert got["spearman"][b] == pytest.approx(stats.spearmanr(ys, ps).statistic)


def test_bootstrap_interval_contains_point_estimate(result):
    rng = np.random.default_rng(4)
    y = rng.random(60)
    m = P.prediction_metrics(y, y + 0.2 * rng.normal(size=60), bootstrap=500, seed=1)
    for k in P.METRIC_NAMES:
        assert m[f"{k}_lo"] < m[k] < m[f"{k}_hi"], k
    big = result["metrics"][(result["metrics"]["n_test"] >= 30) & (result["metrics"]["subset"] == "all")]
    for k in P.METRIC_NAMES:
        ok = big[[k, f"{k}_lo", f"{k}_hi"]].dropna()
        assert len(ok) and ((ok[f"{k}_lo"] <= ok[k]) & (ok[k] <= ok[f"{k}_hi"])).all(), k


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(5)
    y, p = rng.random(30), rng.random(30)
    assert P.prediction_metrics(y, p, seed=2) == P.prediction_metrics(y, p, seed=2)
    assert P.prediction_metrics(y, p, seed=2)["r2_lo"] != P.prediction_metrics(y, p, seed=3)["r2_lo"]


def test_undefined_metrics_are_nan_not_errors():
    for y, p in (([], []), ([0.5], [0.4]), ([0.3, 0.3, 0.3], [0.1, 0.2, 0.3]), ([0.1, 0.2], [0.5, 0.5])):
        m = P.prediction_metrics(y, p, bootstrap=50)
        assert math.isnan(m["kendall_tau"]) and math.isnan(m["spearman"])
    m = P.prediction_metrics([0.3, 0.3, 0.3], [0.1, 0.2, 0.3], bootstrap=50)
    assert math.isnan(m["r2"]) and m["mae"] == pytest.approx(0.1)


def test_top_k_precision_perfect_reversed_and_ties():
    y = np.linspace(0, 1, 50)
    assert P.top_k_precision(y, y, 0.1) == (5, 1.0)
    assert P.top_k_precision(y, -y, 0.1) == (5, 0.0)
    assert P.top_k_precision(y, 2 * y + 3, 0.2) == (10, 1.0)  # only the order matters
    # a constant predictor ranks nobody: expected precision under random tie-breaking = k/n
    assert P.top_k_precision(y, np.zeros(50), 0.1)[1] == pytest.approx(0.1)
    assert P.top_k_precision([], [], 0.1)[1] != P.top_k_precision([], [], 0.1)[1]  # NaN


def test_diverged_subset_reported_separately(result):
    m = result["metrics"]
    pooled = m[m["test_width"].isna() & (m["split"] == P.SPLIT_WITHIN)]
    n = pooled.pivot_table(index=["arch", "feature_set", "window"], columns="subset", values="n_test")
    assert (n["all"] == n["diverged"] + n["non-diverged"]).all()
    assert (n["diverged"] == 3).all()  # lr 0.3, dropout 0, seed 1 diverges, at each of 3 widths
    div = pooled[pooled["subset"] == "diverged"]
    assert div["kendall_tau"].isna().all()  # all diverged runs end at 0.1: a rank metric is undefined


# ----------------------------------------------------------------------------------------------- features

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


def _write_run(root, run_id, epochs, seed):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    model = build_model("lenet", width=1, in_channels=1, image_size=16, num_classes=10)
    arch = {"arch": "lenet", "width": 1, "in_channels": 1, "image_size": 16, "num_classes": 10}
    w = TrajectoryWriter(root / run_id, model.state_dict(), run_id=run_id, arch=arch)
    states = {}
    for i, e in enumerate(epochs):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
        w.append(model.state_dict(), epoch=e, step=i, label=f"epoch {e:g}")
        states[e] = {k: v.clone().numpy() for k, v in model.state_dict().items()}
    rows = [{"snapshot": i, "epoch": e, "step": i, "lr": 0.1, "train_loss": 1.0, "train_acc": 0.5,
             "test_loss": 1.0, "test_acc": 0.5} for i, e in enumerate(epochs)]
    pd.DataFrame(rows).to_csv(root / run_id / "curves.csv", index=False)
    return states


def test_weight_features_from_a_real_trajectory(tmp_path):
    full = _write_run(tmp_path, "lenet-a", [0.0, 0.5, 1.0, 2.0], seed=0)
    _write_run(tmp_path, "lenet-b", [0.0, 0.5], seed=1)  # stopped early (diverged)
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


def test_parse_feature_names():
    p = P.parse_feature_name("features.3.eigenvector.median@e0.5")
    assert (p["source"], p["scope"], p["layer"], p["property"], p["aggregator"], p["epoch"], p["delta"]) == \
        ("graph", "features.3", "features.3", "eigenvector", "median", 0.5, False)
    d = P.parse_feature_name("d(all.strength.mean)@e2")
    assert (d["scope"], d["layer"], d["property"], d["aggregator"], d["epoch"], d["delta"]) == \
        ("all", None, "strength", "mean", 2.0, True)
    assert P.parse_feature_name("curve.test_acc@e1")["property"] == "test_acc"
    w = P.parse_feature_name("w.classifier.2.weight.q25")
    assert (w["source"], w["layer"], w["property"], w["aggregator"]) == ("weights", "classifier.2", "weight", "q25")
    assert P.parse_feature_name("run.width")["source"] == "run"
    assert P.parse_feature_name("something odd")["property"] is None
    assert list(P.feature_name_table(["early_acc", "d(x.y.z)@e1"])["delta"]) == [False, True]


def test_importances_find_the_informative_graph_feature(result):
    imp = result["importances"]
    assert set(imp["feature_set"]) == {"graph", "graph+curve"}
    g = imp[(imp["feature_set"] == "graph") & (imp["window"] == 2)]
    for arch in ARCHS:
        a = g[g["arch"] == arch]
        top = a.sort_values("permutation_mean", ascending=False)["feature"].iloc[0]
        assert top.startswith("all.strength.mean@e"), (arch, top)
        assert a["gain"].ge(0).all() and a["permutation_std"].dropna().ge(0).all()


# ---------------------------------------------------------------------------------------------- bad input

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


def test_transfer_without_training_rows_names_arch_and_widths(study, monkeypatch):
    runs, root, graphs = study
    sub = runs[~((runs["arch_label"] == "vgg11bn") & (runs["width"] == 1))]
    called = []
    monkeypatch.setattr(P, "_evaluate", lambda t: called.append(t))
    with pytest.raises(ValueError, match=r"vgg11bn on digits has no runs at train widths \[1\].*\[2, 3\]"):
        P.run_prediction(sub, root, graphs, FAST)
    assert not called  # raised before any fit
    with pytest.raises(ValueError, match="no width larger than 3"):
        P.run_prediction(runs, root, graphs, {**FAST, "train_widths": [3]})


def test_unknown_feature_set_and_config_key_are_named(study):
    runs, root, graphs = study
    with pytest.raises(ValueError, match="unknown part.*'modularity'"):
        P.run_prediction(runs, root, graphs, {**FAST, "feature_sets": ["graph+modularity"]})
    with pytest.raises(ValueError, match="unknown key.*'fold'"):
        P.run_prediction(runs, root, graphs, {**FAST, "fold": 3})


# ------------------------------------------------------------------------------------------------ figures

def test_figures_are_written(result, tmp_path):
    from netdyn.figures import predict as F

    F.plot_predicted_vs_true(result["predictions"], tmp_path / "a.png")
    F.plot_metrics_vs_window(result["metrics"], tmp_path / "b.png")
    F.plot_transfer_by_width(result["metrics"], tmp_path / "c.png")
    F.plot_feature_importance(result["importances"], tmp_path / "d.png")
    for name in "abcd":
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    # empty selections draw a "no data" panel instead of failing
    F.plot_predicted_vs_true(result["predictions"].iloc[:0], tmp_path / "e.png")
    F.plot_transfer_by_width(result["metrics"][result["metrics"]["split"] == P.SPLIT_WITHIN], tmp_path / "f.png")
    F.plot_feature_importance(result["importances"].iloc[:0], tmp_path / "g.png")
    F.plot_metrics_vs_window(result["metrics"].iloc[:0], tmp_path / "h.png")
    assert all((tmp_path / f"{n}.png").exists() for n in "efgh")
