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


def test_evidence_figures_are_written(result, tmp_path):
    from netdyn.figures import predict as F

    F.plot_tau_summary(result["metrics"], tmp_path / "t.png")
    F.plot_tau_summary(result["metrics"].iloc[:0], tmp_path / "u.png")
    assert (tmp_path / "t.png").stat().st_size > 10_000 and (tmp_path / "t.pdf").exists()
    assert (tmp_path / "u.png").exists()
    colors = F._colors(["graph", "early_acc_nofit", "early_acc"])
    assert colors["early_acc_nofit"] == "black" and colors["graph"] not in ("black", "0.5")
