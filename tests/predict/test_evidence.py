"""scripts/evidence.py: the committed evidence and README's prediction blocks come from the predictions
table - every number printed is one of the tables' values, and each verdict follows its interval."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from .synthetic import FAST

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("evidence_script", REPO / "scripts" / "evidence.py")
EV = importlib.util.module_from_spec(_spec)
sys.modules["evidence_script"] = EV
_spec.loader.exec_module(EV)


class _Src:
    def __init__(self, data):
        self.data = data

    def provenance(self):
        return "`summary.json`, committed in abc1234"


@pytest.fixture(scope="module")
def evidence(study, tmp_path_factory):
    import netdyn.predict as P

    runs, root, graphs = study
    cfg = {**FAST, "feature_sets": ["early_acc", "early_acc_nofit", "curve_extrap", "graph", "graph+curve", "curve"],
           "bootstrap": 300}
    res = P.run_prediction(runs, root, graphs, cfg, n_jobs=1)
    full = {"training": {"epochs": 3, "batch_size": 32}, "hyperparameters": {"learning_rate": [0.01, 0.1]},
            "seeds": [0, 1], "widths": [1, 2, 3], "predict": cfg}
    out = tmp_path_factory.mktemp("evidence")
    EV.TABLE_WINDOW, EV.PAPER_WINDOW = 2, 2
    summary = EV.write_evidence(runs, res["predictions"], res["metrics"], full, out, study="synthetic",
                                config_file="config/x.yaml", run_time={"summary": "1 s."})
    return summary, out, res


def test_evidence_files_and_paired_values(evidence):
    summary, out, res = evidence
    for f in ("runs.csv", "predictions.csv", "metrics.csv", "paired.csv", "classification.csv", "summary.json",
              "provenance.json", "tau_summary.png", "tau_summary.pdf", "r2_summary.png", "r2_summary.pdf"):
        assert (out / f).exists(), f
    assert json.loads((out / "summary.json").read_text()) == summary
    pred = pd.read_csv(out / "predictions.csv")
    paired = pd.read_csv(out / "paired.csv")
    row = paired[(paired.a == "graph") & (paired.b == "early_acc_nofit") & (paired.split == "within_width")].iloc[0]
    a = pred[(pred.feature_set == "graph") & (pred.arch == row.arch) & (pred.window == row.window)
             & (pred.split == "within_width")].set_index("run_id").sort_index()
    b = pred[(pred.feature_set == "early_acc_nofit") & (pred.arch == row.arch) & (pred.window == row.window)
             & (pred.split == "within_width")].set_index("run_id").sort_index()
    want = stats.kendalltau(a.y_true, a.y_pred).statistic - stats.kendalltau(b.y_true, b.y_pred).statistic
    assert row.d_tau == pytest.approx(want)


def test_readme_blocks_print_the_summary_values(evidence):
    summary, _, _ = evidence
    src = _Src(summary)
    table = EV.render_metrics(src)
    r = next(m for m in summary["metrics"] if m["arch"] == "lenet" and m["split"] == "within_width"
             and m["window"] == 2 and m["feature_set"] == "graph")
    line = next(ln for ln in table.splitlines() if ln.startswith("| LeNet"))
    assert f"{r['tau']:.2f} [{r['tau_lo']:.2f}, {r['tau_hi']:.2f}] / {r['r2']:.2f}" in line
    for name, fn in EV.README_BLOCKS.items():
        assert fn(src).strip(), name


@pytest.mark.parametrize("lo,hi,verdict", [(0.01, 0.5, "better"), (-0.5, -0.01, "**worse**"),
                                           (-0.1, 0.2, "not distinguishable"), (0.0, 0.3, "not distinguishable")])
def test_verdict_follows_the_interval(lo, hi, verdict):
    assert EV._verdict({"d_tau_lo": lo, "d_tau_hi": hi}) == verdict


def test_stronger_baseline_is_the_higher_tau(evidence):
    summary, _, _ = evidence
    for arch in ("lenet", "vgg11bn"):
        got = EV._stronger_baseline(summary, arch, "within_width", 2)
        taus = {m["feature_set"]: m["tau"] for m in summary["metrics"] if m["arch"] == arch and m["window"] == 2
                and m["split"] == "within_width" and m["feature_set"] in ("early_acc", "early_acc_nofit")}
        assert taus[got] == max(v for v in taus.values() if v is not None and not np.isnan(v))
