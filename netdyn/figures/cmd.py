"""CMD-stage figures: mode reference trajectories, the clustered |ρ| matrix of the sampled parameters,
test accuracy over epochs (SGD vs post-hoc vs online CMD) and how each mode spreads over the layers."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import save_figure


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def plot_references(result, epochs, out: str | Path, *, title: str = "") -> None:
    """Each mode's reference trajectory r_m(t), standardised (shape, not scale, is what a mode shares),
    labelled with the mode's share of the parameters."""
    fig, ax = plt.subplots(figsize=(5.0, 3.4), layout="constrained")
    sizes = result.mode_sizes() / result.n_params
    for m in np.argsort(-sizes):
        r = result.references[m]
        z = (r - r.mean()) / (r.std() or 1.0)
        ax.plot(epochs, z, marker=".", lw=1, label=f"mode {m} ({sizes[m]:.0%})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("reference, standardised")
    ax.set_title(title or f"{result.run}: {result.n_modes} mode references")
    ax.legend(ncol=2, frameon=False)
    save_figure(fig, out)


def plot_correlation(corr: np.ndarray, order: np.ndarray, sample_labels: np.ndarray, out: str | Path, *,
                     title: str = "") -> None:
    """|ρ| between the sampled trajectories, rows and columns in dendrogram order: modes show as blocks."""
    fig, ax = plt.subplots(figsize=(4.6, 4.0), layout="constrained")
    im = ax.imshow(corr[np.ix_(order, order)], vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
    lab = sample_labels[order]
    for k in np.flatnonzero(np.diff(lab)) + 0.5:
        ax.axhline(k, color="w", lw=0.5)
        ax.axvline(k, color="w", lw=0.5)
    ax.set_xlabel("sampled parameter (clustered order)")
    ax.set_ylabel("sampled parameter")
    ax.set_title(title or "|Pearson ρ| of sampled trajectories")
    fig.colorbar(im, ax=ax, shrink=0.8, label="|ρ|")
    save_figure(fig, out)


def plot_example(run_dir: str | Path, n_modes: int, references_out: str | Path, correlation_out: str | Path, *,
                 n_samples: int, seed: int) -> None:
    """The two figures of one run's post-hoc CMD (``netdyn.cmd.table.example_fit``, read from its trajectory):
    its mode references and the clustered |ρ| matrix of its sampled trajectories."""
    from ..cmd.table import example_fit

    fit = example_fit(run_dir, n_modes, n_samples=n_samples, seed=seed)
    plot_references(fit.result, fit.epochs, references_out)
    plot_correlation(fit.corr, fit.order, fit.result.sample_labels, correlation_out,
                     title=f"{Path(run_dir).name}: |ρ| of {len(fit.order)} sampled trajectories")


def plot_accuracy(epochs: pd.DataFrame, out: str | Path, *, n_modes: int | None = None, max_runs: int = 6) -> None:
    """Test accuracy over epochs of the deeply analysed runs: SGD weights, post-hoc and online CMD weights
    (with ``n_modes`` modes; the largest analysed by default) and, where cmd.embedded trained one, the run's
    embedded-CMD twin with the share of its parameters still trained (shaded, right axis)."""
    runs = sorted(epochs["run_id"].unique())[:max_runs] if len(epochs) else []
    cols = max(1, min(len(runs), 3))
    rows = max(1, int(np.ceil(len(runs) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, layout="constrained")
    if not runs:
        _note(axes[0, 0], "no run named in cmd.deep")
    for ax, run in zip(axes.flat, runs):
        sub = epochs[epochs.run_id == run]
        m = n_modes if n_modes is not None else sub["n_modes"].max()
        sub = sub[sub.n_modes == m].sort_values("snapshot")
        ax.plot(sub.epoch, sub.acc_sgd, "k-", marker=".", label="SGD")
        ax.plot(sub.epoch, sub.acc_cmd, "C0--", marker=".", label=f"post-hoc CMD, M={m}")
        ax.plot(sub.epoch, sub.acc_online_cmd, "C1:", marker=".", label=f"online CMD, M={m}")
        if "acc_embedded_cmd" in sub and sub.acc_embedded_cmd.notna().any():  # the run's embedded-CMD twin
            ax.plot(sub.epoch, sub.acc_embedded_cmd, "C2-.", marker=".", label="embedded CMD (own run)")
            share = ax.twinx()
            share.fill_between(sub.epoch, sub.trained_fraction, step="pre", color="C2", alpha=0.12, lw=0)
            share.set_ylim(0, 1.05)
            share.set_ylabel("share trained (embedded)", fontsize=8, color="C2")
        ax.set_title(run, fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        ax.legend(frameon=False)
    for ax in axes.flat[len(runs):] if runs else []:
        ax.set_visible(False)
    save_figure(fig, out)


def plot_mode_layers(mode_layers: pd.DataFrame, runs: pd.DataFrame, out: str | Path, *,
                     n_modes: int | None = None) -> None:
    """Per architecture: each layer's parameters split over the modes (modes ranked by size within each run,
    summed over runs), as stacked fractions of the layer."""
    m = n_modes if n_modes is not None else (mode_layers["n_modes"].max() if len(mode_layers) else None)
    t = mode_layers[mode_layers.n_modes == m].merge(runs[["run_id", "arch_label"]], on="run_id")
    archs = sorted(t["arch_label"].unique())
    fig, axes = plt.subplots(1, max(1, len(archs)), figsize=(4.4 * max(1, len(archs)), 3.6), squeeze=False,
                             layout="constrained")
    if not archs:
        _note(axes[0, 0], "no CMD results")
    for ax, arch in zip(axes.flat, archs):
        sub = t[t.arch_label == arch].copy()
        size = sub.groupby(["run_id", "mode"])["count"].transform("sum")
        sub["rank"] = sub.assign(size=size).groupby(["run_id", "layer"])["size"].rank(ascending=False, method="first")
        layers = list(dict.fromkeys(sub["layer"]))
        table = sub.pivot_table(index="layer", columns="rank", values="count", aggfunc="sum").reindex(layers)
        frac = table.div(table.sum(axis=1), axis=0).fillna(0.0)
        bottom = np.zeros(len(layers))
        for rank in frac.columns:
            ax.bar(range(len(layers)), frac[rank], bottom=bottom, label=f"mode {int(rank)}")
            bottom += frac[rank].to_numpy()
        ax.set_xticks(range(len(layers)), [s.replace(".weight", ".w").replace(".bias", ".b") for s in layers],
                      rotation=90)
        ax.set_ylabel("fraction of the layer's parameters")
        ax.set_title(f"{arch}: M={m}, modes ranked by size")
    if archs:
        axes.flat[0].legend(frameon=False, ncol=2)
    save_figure(fig, out)
