"""Q per layer for one model (any snapshot): the modularity curve, mean ± std over batches of images.

As the paper's code: consecutive, disjoint batches of ``n_per_batch`` images taken in the order given
(it reads the first batches of an unshuffled test loader), each batch one forward pass reading every
layer, one kNN graph and one Q per layer and batch; mean and sample std (ddof = 1, as ``torch.std``
there; NaN with a single batch) over batches. The number of batches is capped by the images available
(5 × 500 needs 2,500 test images; fewer means fewer batches), but one batch larger than all images, or
k ≥ n_per_batch, is refused naming the key (``n_images``, ``k``).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from .errors import ModularityInputError
from .knn import CHUNK_ROWS, check_k, knn_graph
from .readout import layer_outputs
from .score import class_codes, graph_modularity

CURVE_COLUMNS = ("layer_index", "layer_name", "q_mean", "q_std")


def _positive_int(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ModularityInputError(key, f"must be an int >= 1, got {value!r}")
    return int(value)


def batches_used(n_available: int, n_per_batch: int, n_batches: int) -> int:
    """How many whole batches of ``n_per_batch`` the images allow, at most ``n_batches``."""
    n_per_batch = _positive_int("n_images", n_per_batch)
    n_batches = _positive_int("n_batches", n_batches)
    if n_per_batch > n_available:
        raise ModularityInputError("n_images", f"{n_per_batch} images per batch requested, but only "
                                               f"{n_available} are available")
    return min(n_batches, n_available // n_per_batch)


def _timed(profile: dict | None, key: str, start: float, device: torch.device) -> float:
    if profile is None:
        return start
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    now = time.perf_counter()
    profile[key] = profile.get(key, 0.0) + now - start
    return now


def modularity_curve(model: torch.nn.Module, images: torch.Tensor, labels, k: int = 3,
                     n_per_batch: int = 500, n_batches: int = 5, layers: list[str] | None = None,
                     chunk_size: int = CHUNK_ROWS, profile: dict | None = None) -> pd.DataFrame:
    """One row per read-out layer (``CURVE_COLUMNS``), in forward order.

    ``images`` (M, C, H, W) and ``labels`` (M,) ints; the work runs on the model's device. ``profile``,
    when given, accumulates seconds per stage: forward, similarity, topk, symmetrise, modularity.
    ``df.attrs`` records k, n_per_batch and the number of batches used.
    """
    n_available = int(images.shape[0])
    used = batches_used(n_available, n_per_batch, n_batches)
    check_k(k, n_per_batch)
    codes = class_codes(labels, n_available)
    q_by_layer: dict[str, list[float]] = {}
    for b in range(used):
        part = slice(b * n_per_batch, (b + 1) * n_per_batch)
        start = time.perf_counter()
        outputs = layer_outputs(model, images[part], layers)
        device = next(iter(outputs.values())).device
        start = _timed(profile, "forward", start, device)
        for name in list(outputs):
            graph = knn_graph(outputs.pop(name), k, chunk_size, profile)  # frees each layer once used
            start = time.perf_counter()
            q_by_layer.setdefault(name, []).append(graph_modularity(graph, codes[part]))
            start = _timed(profile, "modularity", start, device)
    rows = [(i, name, float(np.mean(qs)), float(np.std(qs, ddof=1)) if len(qs) > 1 else float("nan"))
            for i, (name, qs) in enumerate(q_by_layer.items())]
    curve = pd.DataFrame(rows, columns=list(CURVE_COLUMNS))
    curve.attrs.update(k=k, n_per_batch=n_per_batch, n_batches=used)
    return curve
