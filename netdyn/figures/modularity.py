"""Modularity figures: Q over layers at the final snapshot, Q over epochs for chosen layers, per
architecture × data set, mean over the runs that trained (``learned_runs``) with a ± one std band.

Saved through ``netdyn.figures.save_figure`` (PNG + PDF). They live in ``results/<study>/modularity/figures/``
and are drawn by rule ``figures`` from ``tables/modularity.csv``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..modularity.stage import LEARNED_FRACTION, final_curves, learned_runs

from . import save_figure


def _complete(table: pd.DataFrame, runs: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """The rows of the runs that trained (``learned_runs`` at ``fraction``: the plateau table's runs)."""
    return table.merge(learned_runs(runs, fraction)[["run_id", "arch_label", "dataset"]], on="run_id")


def _band(ax, x, mean, std, label=None) -> None:
    line, = ax.plot(x, mean, marker="o", ms=3, lw=1.2, label=label)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.25, lw=0)


def _panels(keys):
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(3.6 * max(len(keys), 1), 3.0), squeeze=False,
                             layout="constrained")
    return fig, axes[0]


def plot_q_by_layer(table: pd.DataFrame, runs: pd.DataFrame, out: str | Path, *,
                    fraction: float = LEARNED_FRACTION) -> None:
    """One panel per architecture × data set: final-snapshot Q per layer, mean ± std over the runs that
    trained (``modularity.learned_fraction`` = ``fraction``)."""
    df = _complete(final_curves(table), runs, fraction)
    keys = sorted(df.groupby(["arch_label", "dataset"]).groups)
    fig, axes = _panels(keys)
    for ax, (arch, dataset) in zip(axes, keys):
        part = df[(df.arch_label == arch) & (df.dataset == dataset)]
        stats = part.groupby("layer_index")["q_mean"].agg(["mean", "std"]).fillna(0.0)
        _band(ax, stats.index, stats["mean"], stats["std"])
        ax.set(title=f"{arch} · {dataset} ({part.run_id.nunique()} runs)", xlabel="layer index",
               ylabel="modularity Q", ylim=(-0.1, 1.0))
    save_figure(fig, out)


def chosen_layers(layer_indices) -> list[int]:
    """First, middle and last layer (fewer when the net has fewer layers)."""
    idx = sorted(set(int(i) for i in layer_indices))
    return sorted({idx[0], idx[len(idx) // 2], idx[-1]})


def plot_q_over_epochs(table: pd.DataFrame, runs: pd.DataFrame, out: str | Path, *,
                       fraction: float = LEARNED_FRACTION) -> None:
    """One panel per architecture × data set: Q over snapshot epochs for ``chosen_layers``, mean ± std over
    the runs that trained (at ``fraction``) and have that snapshot."""
    df = _complete(table, runs, fraction)
    keys = sorted(df.groupby(["arch_label", "dataset"]).groups)
    fig, axes = _panels(keys)
    for ax, (arch, dataset) in zip(axes, keys):
        part = df[(df.arch_label == arch) & (df.dataset == dataset)]
        names = part.drop_duplicates("layer_index").set_index("layer_index")["layer_name"]
        for layer in chosen_layers(part["layer_index"]):
            stats = part[part.layer_index == layer].groupby("epoch")["q_mean"].agg(["mean", "std"]).fillna(0.0)
            _band(ax, stats.index, stats["mean"], stats["std"], label=f"{layer}: {names[layer]}")
        ax.set(title=f"{arch} · {dataset}", xlabel="epoch", ylabel="modularity Q", ylim=(-0.1, 1.0))
        ax.legend(loc="lower right")
    save_figure(fig, out)
