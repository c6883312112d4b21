"""The CMD stage's early-window features (netdyn.cmd.stage) on planted trajectories, and which runs the
config's ``cmd.deep`` patterns name."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from netdyn.cmd import CMDError
from netdyn.cmd.stage import FEATURE_PREFIX, deep_runs, window_features, window_rows
from planted_modes import planted

EPOCHS = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])


def test_window_rows_counts_snapshots_up_to_the_window():
    assert window_rows(EPOCHS, 1) == 3 and window_rows(EPOCHS, 2) == 4 and window_rows(EPOCHS, 0.5) == 2
    with pytest.raises(ValueError, match="not in order"):
        window_rows([0.0, 2.0, 1.0], 1)


def test_features_see_only_the_early_window():
    """Rows after the window changed at will: the window's features stay the same; the later window's
    change (a whole-trajectory implementation fails the first, a window-ignoring one the second)."""
    p = planted(T=len(EPOCHS), N=1500, n_modes=3, noise=1e-3, seed=1)
    late = p.W.copy()
    late[5:] = np.random.default_rng(9).normal(size=late[5:].shape)
    kw = dict(n_samples=200, seed=0)
    a = window_features(p.W, EPOCHS, [2, 4], 3, **kw).set_index("window")
    b = window_features(late, EPOCHS, [2, 4], 3, **kw).set_index("window")
    assert np.array_equal(a.loc[2].to_numpy(), b.loc[2].to_numpy())
    assert not np.allclose(a.loc[4].drop("run_id").astype(float), b.loc[4].drop("run_id").astype(float))


def test_features_of_planted_modes():
    """Three planted modes with known shares: the features give those shares (largest fraction, entropy),
    a small error at low noise, finite coefficient statistics; every column is prefixed."""
    p = planted(T=len(EPOCHS), N=3000, n_modes=3, noise=1e-4, seed=2)
    f = window_features(p.W, EPOCHS, [8], 3, n_samples=300, seed=0, run="planted").iloc[0]
    assert f["run_id"] == "planted" and f["window"] == 8
    shares = np.bincount(p.labels, minlength=3) / len(p.labels)
    assert f["cmd.modes_found"] == 3
    assert f["cmd.largest_mode_fraction"] == pytest.approx(shares.max(), abs=0.01)
    assert f["cmd.mode_entropy"] == pytest.approx(-(shares * np.log(shares)).sum() / np.log(3), abs=0.01)
    assert f["cmd.rel_error_last"] < 1e-3 and f["cmd.rel_error_mean"] < 1e-3
    stats = f.drop(["run_id", "window"]).astype(float)
    assert np.isfinite(stats).all() and all(k.startswith(FEATURE_PREFIX) for k in stats.index)
    assert f["cmd.abs_a_q10"] <= f["cmd.abs_a_q50"] <= f["cmd.abs_a_q90"]


def test_one_mode_has_zero_entropy_and_all_parameters():
    p = planted(T=len(EPOCHS), N=500, n_modes=1, noise=1e-4, seed=3)
    f = window_features(p.W, EPOCHS, [3], 1, n_samples=100, seed=0).iloc[0]
    assert f["cmd.largest_mode_fraction"] == 1.0 and f["cmd.mode_entropy"] == 0.0


def test_constant_parameters_give_no_nan():
    p = planted(T=len(EPOCHS), N=1000, n_modes=2, noise=1e-4, seed=4, constant_share=0.4)
    f = window_features(p.W, EPOCHS, [2], 2, n_samples=100, seed=0).iloc[0]
    assert np.isfinite(f.drop(["run_id", "window"]).astype(float)).all()


def test_a_window_of_one_snapshot_stops_naming_the_run():
    p = planted(T=len(EPOCHS), N=100, n_modes=2, seed=5)
    with pytest.raises(CMDError, match="myrun.*window"):
        window_features(p.W, [0.0, 1.0, 2.0] + [3.0] * 7, [0], 2, n_samples=50, seed=0, run="myrun")


def test_deep_patterns_match_run_ids_or_architecture_labels():
    runs = [SimpleNamespace(run_id=f"{a}-digits-w{w}-lr0.1-do0-wd0-s0", arch_label=a)
            for a in ("lenet", "vgg11bn") for w in (1, 2)]
    assert deep_runs(["vgg11bn"], runs) == ["vgg11bn-digits-w1-lr0.1-do0-wd0-s0", "vgg11bn-digits-w2-lr0.1-do0-wd0-s0"]
    assert deep_runs(["*-w1-*"], runs) == ["lenet-digits-w1-lr0.1-do0-wd0-s0", "vgg11bn-digits-w1-lr0.1-do0-wd0-s0"]
    assert deep_runs(["lenet-digits-w2-lr0.1-do0-wd0-s0", "vgg"], runs) == ["lenet-digits-w2-lr0.1-do0-wd0-s0"]
    assert deep_runs([], runs) == []


def test_no_deep_run_gives_tables_with_headers_that_the_figures_read(tmp_path):
    """cmd.deep empty: collect_cmd's epoch table has no row but its header, reads back, and the accuracy figure
    says there is no run instead of crashing (an empty CSV without header raised EmptyDataError)."""
    import pandas as pd

    from netdyn.cmd.evaluate import EMBEDDED_COLUMNS, EPOCH_COLUMNS
    from netdyn.cmd.table import read_all
    from netdyn.figures.cmd import plot_accuracy

    path = tmp_path / "cmd_epochs.csv"
    read_all([], EPOCH_COLUMNS + EMBEDDED_COLUMNS[1:]).to_csv(path, index=False)
    back = pd.read_csv(path)
    assert len(back) == 0 and "acc_online_cmd" in back.columns
    plot_accuracy(back, tmp_path / "acc.png")
    assert (tmp_path / "acc.png").read_bytes()[:4] == b"\x89PNG"
