"""The pruning check's figure: final test accuracy of original vs pruned vs control, per architecture × data
set (tables/pruning.csv, tables/pruning_summary.csv; netdyn.modularity.pruning_stats).

One panel per architecture × data set: each seed's three runs joined by a grey line (the differences are
paired by seed), the mean per variant as a black bar, parameter counts under the variant names, and the
mean difference to the original with its t interval in the title. A job that trained nothing shows its note.
Saved through ``netdyn.figures.save_figure`` (PNG + PDF) by rule ``collect_pruning``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..modularity.pruning_stats import VARIANTS
from . import save_figure


def _diff_text(summary: pd.DataFrame, variant: str) -> str:
    row = summary[summary["comparison"] == f"{variant}-original"]
    if row.empty or row.iloc[0]["n_seeds"] == 0:
        return f"{variant}: -"
    r = row.iloc[0]
    ci = "" if np.isnan(r["ci_low"]) else f", {r['confidence']:.0%} CI [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
    return f"{variant} − orig. {r['mean_diff']:+.3f}{ci}"


def plot_pruning(table: pd.DataFrame, summary: pd.DataFrame, out: str | Path) -> None:
    """Original vs pruned vs control final test accuracy (see the module docstring)."""
    keys = list(dict.fromkeys(zip(summary["arch_label"], summary["dataset"])))
    n = max(len(keys), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 3.4), squeeze=False, layout="constrained")
    for ax, (arch, dataset) in zip(axes[0], keys):
        part = table[(table["arch_label"] == arch) & (table["dataset"] == dataset)]
        summ = summary[(summary["arch_label"] == arch) & (summary["dataset"] == dataset)]
        ax.set_title(f"{arch} · {dataset}")
        if part.empty:
            note = summ["note"].iloc[0] if not summ.empty else "no runs"
            ax.text(0.5, 0.5, textwrap.fill(str(note), 36), ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        variants = [v for v in VARIANTS if v in set(part["variant"])]
        x_of = {v: i for i, v in enumerate(variants)}
        for _, runs in part.groupby("seed"):
            runs = runs.sort_values("variant", key=lambda s: s.map(x_of))
            ax.plot(runs["variant"].map(x_of), runs["final_test_acc"], color="0.6", lw=0.8, marker="o", ms=3)
        means = part.groupby("variant")["final_test_acc"].mean()
        params = part.groupby("variant")["n_params"].first()
        for v in variants:
            ax.hlines(means[v], x_of[v] - 0.25, x_of[v] + 0.25, color="black", lw=2)
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels([f"{v}\n{params[v] / 1e3:.1f}k params" for v in variants])
        ax.set_xlim(-0.5, len(variants) - 0.5)
        ax.set_ylabel("final test accuracy")
        ax.set_title(f"{arch} · {dataset} ({part['seed'].nunique()} seeds)\n"
                     + "\n".join(_diff_text(summ, v) for v in ("pruned", "control")))
    save_figure(fig, out)
