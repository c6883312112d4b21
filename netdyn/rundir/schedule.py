"""A run's snapshot schedule, and how later stages pick snapshots from it by epoch.

Training snapshots the initial network, ``subepoch_snapshots`` times per epoch in the first
``subepoch_epochs`` epochs, and at every other epoch end; each snapshot is labelled with its (fractional)
epoch. Later stages select by that label: the snapshots of an early window (epoch <= E) and the snapshot
at one epoch. Labels are fractions like 1/3, so comparisons allow for float rounding in one way, here.
"""

from __future__ import annotations

import numpy as np

WINDOW_SLACK = 1e-9  # an epoch label counts as <= E when it exceeds E by less than this
EPOCH_DECIMALS = 6  # epoch labels that agree to this many decimals are the same epoch


def snapshot_steps(spec, steps_per_epoch: int, epoch: int) -> dict[int, float]:
    """Step (within the epoch, 1-based) -> epoch label of every snapshot taken in `epoch` (1-based)."""
    s = spec.subepoch_snapshots if epoch <= spec.subepoch_epochs else 1
    marks = {}
    for j in range(1, s + 1):
        step = max(1, round(j * steps_per_epoch / s))
        marks[step] = epoch - 1 + j / s
    marks[steps_per_epoch] = float(epoch)
    return marks


def snapshot_epochs(spec, steps_per_epoch: int) -> list[float]:
    """Epoch labels of every snapshot a run that does not diverge keeps, in order (init first)."""
    return [0.0] + [e for epoch in range(1, spec.epochs + 1)
                    for _, e in sorted(snapshot_steps(spec, steps_per_epoch, epoch).items())]


def snapshots_per_run(spec) -> int:
    """Snapshots a run that does not diverge keeps: init, sub-epoch ones, every epoch end (exact when an
    epoch has at least ``subepoch_snapshots`` steps; :func:`snapshot_epochs` counts exactly)."""
    extra = (spec.subepoch_snapshots - 1) * min(spec.subepoch_epochs, spec.epochs) if spec.subepoch_snapshots > 1 else 0
    return 1 + spec.epochs + extra


def in_window(epochs, window: float) -> np.ndarray:
    """Mask of the epoch labels within an early window: epoch <= window."""
    return np.asarray(epochs, dtype=float) <= window + WINDOW_SLACK


def epoch_key(epochs):
    """Epoch labels rounded so that equal epochs compare equal (column names, set members)."""
    return np.round(epochs, EPOCH_DECIMALS) if not isinstance(epochs, float) else round(epochs, EPOCH_DECIMALS)


def snapshot_at(epochs, epoch: float) -> int | None:
    """Position of the last snapshot labelled `epoch` among `epochs`, or None."""
    hit = np.flatnonzero(np.isclose(np.asarray(epochs, dtype=float), epoch, atol=10.0 ** -EPOCH_DECIMALS))
    return int(hit[-1]) if len(hit) else None
