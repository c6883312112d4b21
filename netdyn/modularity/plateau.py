"""Plateau / degradation detection on a modularity curve: which layers add no class separation.

The paper reads "a degradation or plateau" in Q over layers by eye and removes those layers
(methods.md §3). The rule here, stated once:

    layer l (l ≥ 1) is *flat* when  ΔQ(l) = Q(l) − Q(l−1) < threshold
    (a rise below the threshold, no change, or a fall: a fall is degradation);
    the candidates are the layers of every run of at least ``min_run`` consecutive flat layers.

Layer 0 has no predecessor and is never a candidate. A candidate is the layer whose own output gains
nothing over its input, i.e. the layer one would remove. Defaults (threshold 0.01, min_run 2) are this
study's choice, not the paper's: 0.01 is below the batch-to-batch spread of Q the paper shows, and a run
of two keeps one noisy step from marking a layer. ``removable`` restricts candidates to layers a pruner
can drop (the caller knows, e.g., that the last linear layer must stay).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import ModularityInputError

DEFAULT_THRESHOLD = 0.01
DEFAULT_MIN_RUN = 2


def _checked(q: Sequence[float], threshold: float, min_run: int) -> np.ndarray:
    values = np.asarray(q, dtype=np.float64)
    if values.ndim != 1 or not np.all(np.isfinite(values)):
        raise ModularityInputError("q_mean", f"expected a 1-D curve of finite values, got {values!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ModularityInputError("threshold", f"must be a finite number, got {threshold!r}")
    if isinstance(min_run, bool) or not isinstance(min_run, (int, np.integer)) or min_run < 1:
        raise ModularityInputError("min_run", f"must be an int >= 1, got {min_run!r}")
    return values


def plateau_runs(q: Sequence[float], threshold: float = DEFAULT_THRESHOLD,
                 min_run: int = DEFAULT_MIN_RUN) -> list[tuple[int, int]]:
    """Runs of consecutive flat layers as (first, last) layer indices, inclusive, in order."""
    values = _checked(q, threshold, min_run)
    flat = np.zeros(values.size, dtype=bool)
    flat[1:] = np.diff(values) < threshold
    runs, start = [], None
    for i, is_flat in enumerate(list(flat) + [False]):  # the sentinel closes a run at the end
        if is_flat and start is None:
            start = i
        elif not is_flat and start is not None:
            if i - start >= min_run:
                runs.append((start, i - 1))
            start = None
    return runs


def plateau_layers(q: Sequence[float], threshold: float = DEFAULT_THRESHOLD,
                   min_run: int = DEFAULT_MIN_RUN) -> list[int]:
    """Indices of the candidate layers (members of the plateau runs), ascending."""
    return [i for first, last in plateau_runs(q, threshold, min_run) for i in range(first, last + 1)]


def candidate_layers(curve: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD,
                     min_run: int = DEFAULT_MIN_RUN, removable: Iterable[str] | None = None) -> list[str]:
    """Names of the candidate layers of a ``modularity_curve`` frame (rule on its ``q_mean``, in
    ``layer_index`` order), keeping only ``removable`` names when given."""
    ordered = curve.sort_values("layer_index")
    names = list(ordered["layer_name"])
    chosen = [names[i] for i in plateau_layers(ordered["q_mean"].to_numpy(), threshold, min_run)]
    if removable is None:
        return chosen
    allowed = set(removable)
    return [name for name in chosen if name in allowed]
