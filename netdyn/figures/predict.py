"""Prediction-stage figures: how well each feature set predicts final accuracy, and from what.

Every function takes the stage's tables (netdyn.predict.run_prediction) and an output path, and draws a
"no data" panel rather than failing when its selection is empty (a study without graph summaries, without
a transfer split, ...).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..predict import SPLIT_TRANSFER, SPLIT_WITHIN, feature_name_table
from . import MIN_FONT, save_figure

GLOSSARY = (
    "Feature names: {scope}.{property}.{aggregator}@e{E} = a graph property of a layer (scope; 'all' = whole graph)\n"
    "summarised over its nodes (mean, std, ...) at epoch E; d(...)@eE = its change since the previous snapshot;\n"
    "curve.{metric}@eE = loss/accuracy at epoch E; w.{tensor}.{stat} = weight statistic; run.width = the width.\n"
    "Grey hatched bars: permutation importance within one s.d. of zero (cannot be told from zero).")
BASELINES = ("early_acc_nofit", "early_acc", "curve_extrap")  # drawn emphasised (squares, black / grey)
SPLIT_TITLES = {SPLIT_WITHIN: "within width (grouped CV)", SPLIT_TRANSFER: "width transfer"}


def _grid(rows: int, cols: int, size=(4.0, 3.2)):
    fig, axes = plt.subplots(max(rows, 1), max(cols, 1), figsize=(size[0] * max(cols, 1), size[1] * max(rows, 1)),
                             squeeze=False)
    return fig, axes


def _empty(ax, text="no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.5")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, out) -> None:
    fig.tight_layout()
    save_figure(fig, out)


def _pick(values, preferred):
    """The preferred value when present, else the last one (largest window, richest feature set)."""
    values = list(values)
    return preferred if preferred in values else (values[-1] if values else None)


def _panels(table: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(table.groupby(["arch", "dataset"]).groups) if len(table) else []


def _feature_sets(table: pd.DataFrame) -> list[str]:
    return list(pd.unique(table["feature_set"])) if len(table) else []


def _stats_text(ax, y, p) -> None:
    """Kendall tau, R2 and n of one panel's predictions, printed in its lower right corner."""
    from ..predict import point_metrics

    m = point_metrics(y, p)
    ax.text(0.98, 0.03, f"τ = {m['kendall_tau']:.2f}\nR² = {m['r2']:.2f}\nn = {len(y)}", transform=ax.transAxes,
            ha="right", va="bottom", fontsize=MIN_FONT, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})


def plot_predicted_vs_true(predictions: pd.DataFrame, out: str | Path, *, feature_set: str | None = None,
                           window: int | None = None) -> None:
    """Predicted vs true final test accuracy: one row per architecture x data set, columns within-width
    and transfer for the feature set, and beside them the early test accuracy itself (``early_acc_nofit``,
    else the fitted ``early_acc``) within width; tau / R2 / n in every panel; colour = width, crosses =
    diverged runs; one legend. Defaults: graph+curve (else the last feature set) at the largest window."""
    feature_set = feature_set or _pick(_feature_sets(predictions), "graph+curve")
    window = window if window is not None else (predictions["window"].max() if len(predictions) else None)
    sets = _feature_sets(predictions)
    base = next((b for b in ("early_acc_nofit", "early_acc") if b in sets and b != feature_set), None)
    sel = predictions[predictions["window"] == window] if len(predictions) else predictions
    panels = _panels(sel[sel["feature_set"] == feature_set]) if len(sel) else []
    panels = panels or [("", "")]
    columns = [(feature_set, SPLIT_WITHIN), (feature_set, SPLIT_TRANSFER)] + ([(base, SPLIT_WITHIN)] if base else [])
    fig, axes = _grid(len(panels), len(columns), size=(3.4, 3.2))
    widths = sorted(sel["width"].unique()) if len(sel) else []
    cmap = plt.get_cmap("viridis", max(len(widths), 2))
    handles = {}
    for r, (arch, dataset) in enumerate(panels):
        for c, (fs, split) in enumerate(columns):
            ax = axes[r, c]
            s = sel[(sel["feature_set"] == fs) & (sel["arch"] == arch) & (sel["dataset"] == dataset)
                    & (sel["split"] == split)] if len(sel) else sel
            if s.empty:
                _empty(ax, f"{arch} {dataset}\n{SPLIT_TITLES[split]}: no predictions")
                continue
            for i, w in enumerate(widths):
                for div, marker in ((False, "o"), (True, "x")):
                    p = s[(s["width"] == w) & (s["diverged"] == div)]
                    if len(p):
                        label = f"width {w}" + (" (diverged)" if div else "")
                        handles[label] = ax.scatter(p["y_true"], p["y_pred"], s=14, marker=marker, color=cmap(i),
                                                    alpha=0.8, label=label)
            lo = min(s["y_true"].min(), s["y_pred"].min())
            hi = max(s["y_true"].max(), s["y_pred"].max())
            ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--")
            _stats_text(ax, s["y_true"].to_numpy(float), s["y_pred"].to_numpy(float))
            ax.set_title(f"{arch}: {fs}\n{SPLIT_TITLES[split]}", fontsize=MIN_FONT + 1)
            ax.set_xlabel("true final test accuracy")
            ax.set_ylabel("predicted" if fs != "early_acc_nofit" else f"test accuracy at epoch {window}")
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(len(handles), 6),
                   fontsize=MIN_FONT, frameon=False)
    fig.suptitle(f"window E={window}: {feature_set}" + (f", beside it {base} (no fit)" if base == "early_acc_nofit"
                                                         else f", beside it {base}" if base else ""), fontsize=10)
    fig.tight_layout(rect=(0, 0.05 if handles else 0, 1, 0.97))
    save_figure(fig, out)


METRIC_PANELS = (("kendall_tau", "Kendall τ"), ("r2", "R²"))  # the two columns of a metrics figure


def _colors(sets) -> dict:
    """The trivial baselines in black / greys, every other feature set a tab10 colour."""
    fixed = {"early_acc_nofit": "black", "early_acc": "0.5", "curve_extrap": "0.3"}
    others = iter(plt.get_cmap("tab10")(i % 10) for i in range(len(sets) + 10))
    return {fs: fixed[fs] if fs in fixed else next(others) for fs in sets}


def _metric_panels(sel: pd.DataFrame, out, draw, *, xlabel: str, title, empty: str = "no data") -> None:
    """One row per architecture x data set of `sel`, Kendall tau and R2 side by side: ``draw(ax, rows,
    metric, arch, dataset)`` draws a panel's lines; the axes, zero line and legend are shared here."""
    panels = _panels(sel) or [("", "")]
    fig, axes = _grid(len(panels), 2)
    for r, (arch, dataset) in enumerate(panels):
        s = sel[(sel["arch"] == arch) & (sel["dataset"] == dataset)] if len(sel) else sel
        for c, (metric, label) in enumerate(METRIC_PANELS):
            ax = axes[r, c]
            if s.empty:
                _empty(ax, empty)
                continue
            draw(ax, s, metric, arch, dataset)
            ax.axhline(0, color="0.6", lw=0.6)
            if metric == "r2":  # R2 is unbounded below when the test accuracies barely vary: keep it readable
                lo = np.nanmin(s[metric].to_numpy(float)) if s[metric].notna().any() else 0.0
                ax.set_ylim(max(lo - 0.1, -1.0), 1.0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
            ax.set_title(title(arch, dataset), fontsize=9)
    handles, labels = [], []
    for ax in axes.ravel():  # one legend for the figure: every entry once, in drawing order
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(handles), 3), fontsize=MIN_FONT, frameon=False)
    rows = -(-len(handles) // 3)  # legend rows; reserve their height (inches) below the panels
    fig.tight_layout(rect=(0, min(0.5, (0.2 * rows + 0.3) / fig.get_figheight()) if handles else 0, 1, 1))
    save_figure(fig, out)


def plot_metrics_vs_window(metrics: pd.DataFrame, out: str | Path, *, split: str = SPLIT_WITHIN,
                           subset: str = "all") -> None:
    """Kendall tau and R2 (95% bootstrap bands) against the early window E, one line per feature set;
    rows = architecture x data set. Metrics pooled over test widths."""
    sel = metrics[(metrics["split"] == split) & (metrics["subset"] == subset) & metrics["test_width"].isna()] \
        if len(metrics) else metrics
    sets = _feature_sets(sel)
    colors = _colors(sets)

    def draw(ax, s, m, arch, dataset):
        for fs in sets:
            f = s[s["feature_set"] == fs].sort_values("window")
            if f.empty:
                continue
            ax.plot(f["window"], f[m], marker="o", ms=3, color=colors[fs], label=fs)
            ax.fill_between(f["window"], f[f"{m}_lo"], f[f"{m}_hi"], color=colors[fs], alpha=0.12)

    _metric_panels(sel, out, draw, xlabel="early window E (epochs)",
                   title=lambda arch, dataset: f"{arch} on {dataset}: {SPLIT_TITLES.get(split, split)}")


def plot_transfer_by_width(metrics: pd.DataFrame, out: str | Path, *, window: int | None = None,
                           subset: str = "all") -> None:
    """Width transfer: Kendall tau and R2 per test width, an offset dot and interval per feature set (no lines
    joining widths), at one window (default: the largest); the within-width CV value at the same width is a
    short bar beside it for comparison."""
    m = metrics[metrics["subset"] == subset] if len(metrics) else metrics
    window = window if window is not None else (m["window"].max() if len(m) else None)
    m = m[(m["window"] == window) & m["test_width"].notna()] if len(m) else m
    tr = m[m["split"] == SPLIT_TRANSFER] if len(m) else m
    sets = _feature_sets(tr)
    colors = _colors(sets)

    widths = sorted(tr["test_width"].astype(int).unique()) if len(tr) else []
    offsets = dict(zip(sets, np.linspace(-0.3, 0.3, max(len(sets), 1))))

    def draw(ax, s, k, arch, dataset):
        pos = {w: i for i, w in enumerate(widths)}  # widths as categories: offset dots, no lines between them
        for fs in sets:
            f = s[s["feature_set"] == fs].sort_values("test_width")
            x = f["test_width"].astype(int).map(pos).to_numpy(float) + offsets[fs]
            # a percentile bootstrap interval need not contain the point estimate (small n): clip at 0
            yerr = [(f[k] - f[f"{k}_lo"]).clip(lower=0), (f[f"{k}_hi"] - f[k]).clip(lower=0)]
            ax.errorbar(x, f[k], yerr=yerr, fmt="s" if fs in BASELINES else "o", ms=4, capsize=0, color=colors[fs],
                        label=f"{fs} (from widths {f['train_widths'].iloc[0]})" if len(f) else fs)
            w = m[(m["split"] == SPLIT_WITHIN) & (m["arch"] == arch) & (m["dataset"] == dataset)
                  & (m["feature_set"] == fs) & m["test_width"].isin(f["test_width"])].sort_values("test_width")
            ax.scatter(w["test_width"].astype(int).map(pos).to_numpy(float) + offsets[fs], w[k], marker="_", s=40,
                       color=colors[fs], lw=1.2)
        ax.set_xticks(range(len(widths)), [str(w) for w in widths])

    _metric_panels(tr, out, draw, xlabel="test width", empty="no transfer split",
                   title=lambda arch, dataset: f"{arch} on {dataset}, E={window} (bars: within-width CV)")


def plot_feature_importance(importances: pd.DataFrame, out: str | Path, *, feature_set: str | None = None,
                            window: int | None = None, top: int = 12) -> None:
    """What the graph predictor uses: per architecture x data set, the top features by permutation
    importance (gain where permutation was not computed), and the summed permutation importance per graph
    property and per layer (scope)."""
    feature_set = feature_set or _pick(_feature_sets(importances), "graph+curve")
    window = window if window is not None else (importances["window"].max() if len(importances) else None)
    sel = importances[(importances["feature_set"] == feature_set) & (importances["window"] == window)] \
        if len(importances) else importances
    panels = _panels(sel) or [("", "")]
    fig, axes = _grid(len(panels), 3, size=(4.6, 3.6))
    for r, (arch, dataset) in enumerate(panels):
        s = sel[(sel["arch"] == arch) & (sel["dataset"] == dataset)] if len(sel) else sel
        if s.empty:
            for ax in axes[r]:
                _empty(ax, "no importances")
            continue
        s = s.merge(feature_name_table(s["feature"]).drop(columns="source"), on="feature", how="left")
        score = s["permutation_mean"].where(s["permutation_mean"].notna(), np.nan)
        key = "permutation_mean" if score.notna().any() else "gain"
        t = s.sort_values(key, ascending=False, na_position="last").head(top).iloc[::-1]
        ax = axes[r, 0]
        xerr = t["permutation_std"] if key == "permutation_mean" else None
        # importances that cannot be told from zero (mean within one s.d. of folds x repeats) drawn grey, hatched
        zero = (t["permutation_mean"] - t["permutation_std"] <= 0).to_numpy() if key == "permutation_mean" \
            else np.zeros(len(t), dtype=bool)
        ax.barh(range(len(t)), t[key], xerr=xerr, color=np.where(zero, "0.75", "tab:blue"), alpha=0.8,
                hatch=None)
        for i in np.flatnonzero(zero):
            ax.barh(i, t[key].iloc[i], color="none", edgecolor="0.4", hatch="//", lw=0)
        ax.set_yticks(range(len(t)))
        ax.set_yticklabels(t["feature"], fontsize=MIN_FONT)
        ax.set_xlabel("permutation importance (MAE increase)" if key == "permutation_mean" else "gain")
        ax.set_title(f"{arch} on {dataset}: top features", fontsize=9)
        imp = s[key].clip(lower=0).fillna(0)
        for ax, col, title in ((axes[r, 1], "property", "by property"), (axes[r, 2], "layer", "by layer")):
            grp = s[col].fillna(s["scope"]) if col == "layer" else s[col]  # global graph scope: "all"
            g = s.assign(v=imp, grp=grp.fillna(s["source"]))
            g = g.groupby("grp")["v"].sum().sort_values().tail(top)
            if g.empty or not (g > 0).any():
                _empty(ax)
                continue
            ax.barh(range(len(g)), g.to_numpy(), color="tab:orange", alpha=0.8)
            ax.set_yticks(range(len(g)))
            ax.set_yticklabels(g.index, fontsize=MIN_FONT)
            ax.set_xlabel(f"summed {key.replace('_', ' ')}")
            ax.set_title(f"{arch} on {dataset}: {title}", fontsize=9)
    fig.suptitle(f"feature importance: {feature_set}, window E={window} (within-width CV folds)", fontsize=10)
    fig.text(0.01, 0.005, GLOSSARY, fontsize=MIN_FONT, va="bottom", ha="left")
    fig.tight_layout(rect=(0, 0.09 * 3 / max(len(panels), 1) + 0.02, 1, 0.97))
    save_figure(fig, out)



def plot_tau_summary(metrics: pd.DataFrame, out: str | Path, *, feature_sets=None, metric: str = "kendall_tau",
                     subset: str = "all") -> None:
    """The evidence at a glance: rows = architecture x data set, columns = within width / transfer; per
    early window E, one offset dot with its bootstrap interval per feature set (pooled over test widths).
    The trivial baselines are emphasised (black and grey, larger markers); one legend for the figure."""
    sel = metrics[(metrics["subset"] == subset) & metrics["test_width"].isna()] if len(metrics) else metrics
    sets = list(feature_sets or _feature_sets(sel))
    sets = [fs for fs in sets if fs in set(sel["feature_set"])] if len(sel) else sets
    panels = _panels(sel) or [("", "")]
    splits = [SPLIT_WITHIN, SPLIT_TRANSFER]
    fig, axes = plt.subplots(len(panels), 2, figsize=(9.0, 2.3 * len(panels) + 0.9), squeeze=False,
                             sharex=True, sharey=True)
    palette = iter(plt.get_cmap("tab10")(i) for i in range(10))
    style = {}
    for fs in sets:
        if fs == "early_acc_nofit":
            style[fs] = {"color": "black", "marker": "s", "ms": 5.5, "lw": 1.6}
        elif fs == "early_acc":
            style[fs] = {"color": "0.45", "marker": "s", "ms": 4.5, "lw": 1.2}
        elif fs == "curve_extrap":
            style[fs] = {"color": "0.3", "marker": "D", "ms": 4.0, "lw": 1.2}
        else:
            style[fs] = {"color": next(palette), "marker": "o", "ms": 3.5, "lw": 0.9}
    offsets = dict(zip(sets, np.linspace(-0.36, 0.36, max(len(sets), 1))))
    handles = {}
    for r, (arch, dataset) in enumerate(panels):
        for c, split in enumerate(splits):
            ax = axes[r, c]
            s = sel[(sel["arch"] == arch) & (sel["dataset"] == dataset) & (sel["split"] == split)] if len(sel) else sel
            if s.empty:
                _empty(ax, "no data")
                continue
            for fs in sets:
                f = s[s["feature_set"] == fs].sort_values("window")
                if f.empty:
                    continue
                st = style[fs]
                yerr = [(f[metric] - f[f"{metric}_lo"]).clip(lower=0), (f[f"{metric}_hi"] - f[metric]).clip(lower=0)]
                h = ax.errorbar(f["window"] + offsets[fs], f[metric], yerr=yerr, fmt=st["marker"], ms=st["ms"],
                                color=st["color"], elinewidth=st["lw"], capsize=0, label=fs)
                handles.setdefault(fs, h)
            base = s[s["feature_set"] == "early_acc_nofit"].sort_values("window")
            for _, b in base.iterrows():  # the no-fit baseline's value as a line across its window
                ax.hlines(b[metric], b["window"] - 0.45, b["window"] + 0.45, color="black", lw=0.8, ls="--")
            ax.axhline(0, color="0.7", lw=0.6)
            ax.set_title(f"{arch} on {dataset}: {SPLIT_TITLES[split]}", fontsize=9)
            if c == 0:
                ax.set_ylabel("Kendall τ" if metric == "kendall_tau" else metric)
            if r == len(panels) - 1:
                ax.set_xlabel("early window E (epochs seen)")
            ax.set_xticks(sorted(s["window"].unique()))
    if handles:
        fig.legend([handles[k] for k in sets if k in handles], [k for k in sets if k in handles],
                   loc="lower center", ncol=min(len(handles), 5), fontsize=MIN_FONT, frameon=False)
    fig.suptitle("Final-accuracy ranking from the first E epochs: point and 95% bootstrap interval "
                 "(dashed: early accuracy itself, no fit)", fontsize=9)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(sets) > 5), 1, 0.97))
    save_figure(fig, out)
