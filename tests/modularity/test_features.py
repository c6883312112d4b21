"""The workflow stage's tables (netdyn.modularity.stage): snapshot choice, the early-window `modularity`
feature set and the plateau table, on hand-made Q tables whose answers are worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from netdyn.modularity.stage import (
    PLATEAU_COLUMNS, early_window_features, plateau_table, snapshots_for, wants_every_epoch,
)


def _table(curves: dict) -> pd.DataFrame:
    """{(run_id, epoch): [Q per layer]} -> the stage's tidy table."""
    rows = [{"run_id": r, "epoch": e, "layer_index": i, "layer_name": f"L{i}", "q_mean": q, "q_std": 0.01}
            for (r, e), qs in curves.items() for i, q in enumerate(qs)]
    return pd.DataFrame(rows)


def test_snapshots_final_early_or_all():
    epochs = [0, 0.5, 1, 2, 3, 4]
    assert snapshots_for(epochs, every=False, max_epoch=2) == [0, 1, 2, 3, 5]
    assert snapshots_for(epochs, every=False, max_epoch=0) == [0, 5]
    assert snapshots_for(epochs, every=True, max_epoch=0) == [0, 1, 2, 3, 4, 5]
    assert wants_every_epoch("vgg11bn-digits-w1-lr0.1-do0-wd0-s0", "vgg11bn", ["vgg11bn"])
    assert wants_every_epoch("lenet-digits-w1-lr0.1-do0-wd0-s0", "lenet", ["*-w1-*"])
    assert not wants_every_epoch("lenet-digits-w2-lr0.1-do0-wd0-s0", "lenet", ["*-w1-*", "vgg*"])


def test_early_window_features_hold_only_snapshots_up_to_the_window():
    table = _table({("a", 0.0): [0.1, 0.2], ("a", 0.5): [0.15, 0.3], ("a", 1.0): [0.2, 0.4], ("a", 2.0): [0.9, 0.9],
                    ("b", 0.0): [0.05, 0.06, 0.07], ("b", 0.5): [0.1, 0.2, 0.3], ("b", 1.0): [0.3, 0.4, 0.5],
                    ("b", 2.0): [0.8, 0.8, 0.8]})
    feats = early_window_features(table, 1)
    expected_cols = sorted(f"mod_q_l{layer}_e{e}" for layer in range(3) for e in ("0", "0.5", "1"))
    assert list(feats.columns) == expected_cols
    assert list(feats.index) == ["a", "b"]
    assert feats.loc["a", "mod_q_l1_e0.5"] == 0.3 and feats.loc["b", "mod_q_l2_e1"] == 0.5
    assert math.isnan(feats.loc["a", "mod_q_l2_e0"])  # run a's net has two layers
    assert not any(c.endswith("_e2") for c in feats.columns)  # nothing after the window leaks in
    assert early_window_features(table, 2).loc["a", "mod_q_l0_e2"] == 0.9


def test_early_window_features_refuse_a_run_without_early_snapshots():
    table = _table({("a", 0.0): [0.1], ("b", 3.0): [0.2]})
    with pytest.raises(ValueError, match=r"\['b'\]"):
        early_window_features(table, 1)


def test_plateau_table_applies_the_rule_to_the_mean_final_curve_of_complete_runs():
    # arch x, mean final curve [0.1, 0.4, 0.405, 0.40, 0.7]: dQ = 0.3, 0.005, -0.005, 0.3 -> layers 2-3 flat
    # (a run of 2 = min_run), so candidates L2;L3. The earlier epoch (a plateau at 1-2-3-4 if used), the
    # diverged run x3 and the run x4 that did not learn (accuracy 0.5 < 0.9 x 0.95), each of which would lift
    # the mean out of the plateau, must not count.
    table = _table({("x1", 1.0): [0.1, 0.1, 0.1, 0.1, 0.1], ("x1", 3.0): [0.1, 0.3, 0.31, 0.30, 0.6],
                    ("x2", 3.0): [0.1, 0.5, 0.5, 0.50, 0.8], ("x3", 3.0): [0.0, 0.0, 0.9, 0.95, 0.99],
                    ("x4", 3.0): [0.0, 0.0, 0.9, 0.95, 0.99], ("y1", 3.0): [0.1, 0.2, 0.3, 0.4]})
    runs = pd.DataFrame({"run_id": ["x1", "x2", "x3", "x4", "y1"], "arch_label": ["vgg11bn"] * 4 + ["lenet"],
                         "dataset": "digits", "status": ["complete", "complete", "diverged", "complete", "complete"],
                         "final_test_acc": [0.95, 0.9, 0.99, 0.5, 0.8]})
    plateaus = plateau_table(table, runs, threshold=0.01, min_run=2).set_index("arch_label")
    assert list(plateaus.reset_index().columns) == list(PLATEAU_COLUMNS)
    assert plateaus.loc["vgg11bn", "candidate_layers"] == "L2;L3"
    assert plateaus.loc["vgg11bn", "plateau_runs"] == "2-3"
    assert plateaus.loc["vgg11bn", "n_runs"] == 2 and plateaus.loc["vgg11bn", "n_layers"] == 5
    assert plateaus.loc["lenet", "candidate_layers"] == ""  # a steady rise of 0.1 per layer: no plateau
    # a looser threshold (0.15) makes lenet's 0.1 steps flat too: layers 1-3
    loose = plateau_table(table, runs, threshold=0.15, min_run=2).set_index("arch_label")
    assert loose.loc["lenet", "candidate_layers"] == "L1;L2;L3"
    assert np.isclose(loose.loc["lenet", "threshold"], 0.15)


def test_plateau_table_reads_the_runs_at_the_configured_learned_fraction():
    # the data of the test above: at the default 0.9 runs x1, x2 enter (candidates L2;L3); at 0.5 the run x4
    # (accuracy 0.5 >= 0.5 x 0.95) enters too, and its curve lifts the mean out of the plateau
    # (mean [0.067, 0.267, 0.57, 0.583, 0.797]: dQ 0.2, 0.303, 0.013, 0.213, none below 0.01)
    table = _table({("x1", 3.0): [0.1, 0.3, 0.31, 0.30, 0.6], ("x2", 3.0): [0.1, 0.5, 0.5, 0.50, 0.8],
                    ("x4", 3.0): [0.0, 0.0, 0.9, 0.95, 0.99]})
    runs = pd.DataFrame({"run_id": ["x1", "x2", "x4"], "arch_label": "vgg11bn", "dataset": "digits",
                         "status": "complete", "final_test_acc": [0.95, 0.9, 0.5]})
    default = plateau_table(table, runs, threshold=0.01, min_run=2).iloc[0]
    assert (default.n_runs, default.candidate_layers, default.learned_fraction) == (2, "L2;L3", 0.9)
    loose = plateau_table(table, runs, threshold=0.01, min_run=2, fraction=0.5).iloc[0]
    assert (loose.n_runs, loose.candidate_layers, loose.learned_fraction) == (3, "", 0.5)
    for bad in (0, 1.2, True):
        with pytest.raises(ValueError, match="learned_fraction"):
            plateau_table(table, runs, fraction=bad)
