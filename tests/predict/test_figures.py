"""netdyn.figures.predict: every figure is drawn from the stage's tables, and empty selections give a
"no data" panel."""

from __future__ import annotations

import netdyn.predict as P


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
