"""Layer-aware choice of the K sampled trajectories that CMD clusters (methods.md §2, step 2).

About half of K is spread evenly over the layers (tensors) and half in proportion to their sizes, so a
small tensor (a BatchNorm bias) is seen as well as a large one. Only parameters that move and stay finite
over the trajectory are candidates: a constant parameter correlates with nothing (its |ρ| row is all zero),
so if sampled it would waste a mode and, as a reference, leave every parameter of its mode unfitted.
A layer with fewer such parameters than its share gives the rest to the other layers.
"""

from __future__ import annotations

import numpy as np

from .source import Source

DENSE_LAYER_FACTOR = 4  # a layer up to this many times K is read whole to find its moving parameters


def allocate(weights: np.ndarray, caps: np.ndarray, total: int) -> np.ndarray:
    """Integers q ≤ caps summing to min(total, caps.sum()), as near to total·weights as the caps allow:
    the share of a capped layer goes to the others in proportion to their weights."""
    weights = np.asarray(weights, dtype=np.float64)
    caps = np.asarray(caps, dtype=np.int64)
    q = np.zeros(len(caps), dtype=np.int64)
    total = int(min(total, caps.sum()))
    while (left := total - int(q.sum())) > 0:
        active = np.flatnonzero(q < caps)
        w = weights[active] if weights[active].sum() > 0 else np.ones(len(active))
        share = left * w / w.sum()
        add = np.floor(share).astype(np.int64)
        if add.sum() == 0:  # every share below one: one each to the largest shares
            add[np.argsort(-share, kind="stable")[:left]] = 1
        q[active] = np.minimum(caps[active], q[active] + add)
    return q


def _moving(block: np.ndarray) -> np.ndarray:
    """Columns of a (T, c) block that are finite and not constant."""
    hi, lo = block.max(axis=0), block.min(axis=0)
    return np.isfinite(hi) & np.isfinite(lo) & (hi > lo)


def moving_candidates(source: Source, layer: int, want: int, rng: np.random.Generator,
                      chunk: int) -> np.ndarray:
    """Up to ``want`` modelled positions of one layer's moving parameters, in random order; fewer only if
    the layer has fewer. Reads 2·``want`` columns, or the whole layer when it is small or mostly constant."""
    p0, p1 = int(source.layer_starts[layer]), int(source.layer_starts[layer + 1])
    size = p1 - p0
    if size > DENSE_LAYER_FACTOR * want:
        draw = p0 + rng.choice(size, 2 * want, replace=False)  # twice: a few constant ones are no matter
        order = np.argsort(draw)  # read in column order, keep the random order
        ok = np.empty(len(draw), dtype=bool)
        ok[order] = _moving(source.gather(draw[order]))
        if ok.sum() >= want:
            return draw[ok][:want]
    c0 = source.layers[layer][1].start
    moving = np.concatenate([np.flatnonzero(_moving(source.read(c0 + b, c0 + min(b + chunk, size)))) + b
                             for b in range(0, size, chunk)])
    return p0 + rng.permutation(moving)[:want]


def sample_positions(source: Source, n_samples: int, rng: np.random.Generator, chunk: int) -> np.ndarray:
    """Sorted modelled positions of at most ``n_samples`` moving parameters, spread over the layers."""
    sizes = np.diff(source.layer_starts)
    n_layers = len(sizes)
    weights = 0.5 / n_layers + 0.5 * sizes / sizes.sum()
    found = [moving_candidates(source, i, int(min(sizes[i], n_samples)), rng, chunk) for i in range(n_layers)]
    quota = allocate(weights, np.array([len(f) for f in found]), n_samples)
    return np.sort(np.concatenate([f[:q] for f, q in zip(found, quota)]).astype(np.int64))
