"""Temporal-graph figures: signature trajectories over the early epochs, rolled vs unrolled sizes."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import MIN_FONT, save_figure

TRAJECTORY_COLUMNS = {"all.eigenvector.std": "eigenvector centrality × √N, std over nodes",
                      "all.strength.mean": "strength / init scale, mean over nodes"}


def plot_signature_trajectories(signatures: pd.DataFrame, runs: pd.DataFrame, out: str | Path,
                                columns: dict[str, str] = TRAJECTORY_COLUMNS) -> None:
    """One line per run and signature over the early snapshots, colour = the run's final test accuracy."""
    df = signatures.merge(runs[["run_id", "arch_label", "dataset", "final_test_acc"]], on="run_id")
    keys = sorted(df.groupby(["arch_label", "dataset"]).groups)
    fig, axes = plt.subplots(len(columns), len(keys), figsize=(3.6 * len(keys), 3.0 * len(columns)),
                             squeeze=False, layout="constrained")
    cmap, norm = plt.get_cmap("plasma"), plt.Normalize(0, 1)
    for j, (arch, dataset) in enumerate(keys):
        sub = df[(df.arch_label == arch) & (df.dataset == dataset)]
        for i, (col, label) in enumerate(columns.items()):
            ax = axes[i, j]
            for _, run in sub.groupby("run_id"):
                run = run.sort_values("epoch")
                ax.plot(run["epoch"], run[col], color=cmap(norm(run["final_test_acc"].iloc[0])), lw=0.8, alpha=0.7)
            ax.set_title(f"{arch} on {dataset}" if i == 0 else "")
            ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel(label, fontsize=MIN_FONT)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), label="final test accuracy")
    save_figure(fig, out)


def plot_graph_sizes(sizes: pd.DataFrame, out: str | Path) -> None:
    """Edges of the rolled and the unrolled graph against width, log scale, one line pair per arch."""
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for (arch, sub), color in zip(sizes.groupby("arch"), plt.get_cmap("tab10").colors):
        ax.plot(sub["width"], sub["rolled_edges"], "o-", color=color, label=f"{arch} rolled")
        ax.plot(sub["width"], sub["unrolled_edges"], "s--", color=color, label=f"{arch} unrolled")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width multiplier")
    ax.set_ylabel("edges")
    ax.set_title(f"graph size, {int(sizes['image_size'].iloc[0])}×{int(sizes['image_size'].iloc[0])} inputs")
    ax.legend(fontsize=MIN_FONT, ncol=2)
    ax.grid(alpha=0.3, which="both")
    save_figure(fig, out)
