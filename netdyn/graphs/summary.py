"""Temporal summary: one row per run from the signatures of its early snapshots. Pure pandas/numpy, so
the prediction stage imports it without graph-tool or torch.

``temporal_summary(sigs, window)`` gives one row per run_id: ``{col}@e{epoch:g}`` for each snapshot epoch
≤ window present in any run (sub-epoch ones included), and ``d({col})@e{epoch:g}`` = change since the
previous epoch of that grid. Runs that stopped early (diverged) get NaN for missing epochs; so do
snapshots that extraction skipped (non-finite weights).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .columns import META_COLUMNS

_EPOCH_DECIMALS = 9


def temporal_summary(signatures: pd.DataFrame, window: float, *, epochs: Sequence[float] | None = None
                     ) -> pd.DataFrame:
    """One row per run_id: each signature column at each epoch ≤ window (``{col}@e{epoch:g}``) and its
    change since the previous epoch of the grid (``d({col})@e{epoch:g}``); missing snapshots are NaN.

    The epoch grid is every epoch ≤ window found in ``signatures`` unless ``epochs`` fixes it (do fix
    it when a predictor trained on one set of runs is applied to another).
    """
    cols = [c for c in signatures.columns if c not in META_COLUMNS]
    runs = pd.unique(signatures["run_id"])
    sig = signatures.assign(epoch=signatures["epoch"].astype(float).round(_EPOCH_DECIMALS))
    sig = sig[sig["epoch"] <= window + 1e-9]
    grid = sorted(set(sig["epoch"])) if epochs is None else \
        sorted({round(float(e), _EPOCH_DECIMALS) for e in epochs if e <= window + 1e-9})
    dup = sig.duplicated(["run_id", "epoch"])
    if dup.any():
        bad = sig.loc[dup, ["run_id", "epoch"]].iloc[0]
        raise ValueError(f"run {bad['run_id']}: more than one snapshot at epoch {bad['epoch']:g}")
    if not grid or not cols:
        return pd.DataFrame(index=pd.Index(runs, name="run_id"))
    wide = sig.pivot(index="run_id", columns="epoch", values=cols)
    wide = wide.reindex(index=runs, columns=pd.MultiIndex.from_product([cols, grid]))
    v = wide.to_numpy(dtype=np.float64).reshape(len(runs), len(cols), len(grid)).transpose(0, 2, 1)  # (R, E, K)
    d = np.diff(v, axis=1)
    blocks, names = [v[:, 0]], [f"{c}@e{grid[0]:g}" for c in cols]
    for e in range(1, len(grid)):
        blocks += [v[:, e], d[:, e - 1]]
        names += [f"{c}@e{grid[e]:g}" for c in cols] + [f"d({c})@e{grid[e]:g}" for c in cols]
    return pd.DataFrame(np.hstack(blocks), index=pd.Index(runs, name="run_id"), columns=names)
