"""Training-stage figures: learning curves of the whole grid."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..results import curves
from . import save_figure


def _panels(n: int, size=(4.0, 3.2)):
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def plot_learning_curves(runs_dir: str | Path, runs: pd.DataFrame, out: str | Path) -> None:
    """Test accuracy vs epoch, one panel per architecture x data set, colour = log learning rate."""
    keys = sorted(runs.groupby(["arch_label", "dataset"]).groups)
    fig, axes = _panels(len(keys))
    lrs = np.log10(runs["learning_rate"])
    norm = plt.Normalize(lrs.min(), lrs.max() + 1e-12)
    cmap = plt.get_cmap("viridis")
    for ax, (arch, dataset) in zip(axes, keys):
        sub = runs[(runs.arch_label == arch) & (runs.dataset == dataset)]
        for _, r in sub.iterrows():
            c = curves(runs_dir, r.run_id)
            ax.plot(c["epoch"], c["test_acc"], color=cmap(norm(np.log10(r.learning_rate))), lw=0.8,
                    alpha=0.7, ls="--" if r.status == "diverged" else "-")
        ax.set_title(f"{arch} on {dataset} ({len(sub)} runs)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=axes[: len(keys)], label="log10 learning rate")
    save_figure(fig, out)
