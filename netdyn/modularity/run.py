"""Modularity curves of a trained run: Q per layer at chosen snapshots, read from its run directory.

The images are the run's own test split: ``netdyn.data.load_dataset`` of the data set and image size in
the run's config.json (so the same normalisation as in training), in their stored order; the first
``n_per_batch × n_batches`` of them form the batches (see ``curve``: consecutive, disjoint). The network
of each snapshot is rebuilt from the trajectory (``netdyn.rundir.open_trajectory``, checked against
config.json), BatchNorm running statistics as stored, read in eval mode, one forward pass per batch for
all layers. Images are cast to the trajectory's dtype (float64 runs stay float64).

Batch sizes follow ``modularity_curve``: fewer images than ``n_per_batch × n_batches`` means fewer
batches (mean and std over those, ``df.attrs["n_batches"]``), and one batch larger than the test set is
refused naming ``n_images``. The digits test set has 450 images, so the defaults (500 × 5) are refused
there; a digits study needs e.g. ``n_per_batch=150, n_batches=3``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from .curve import CURVE_COLUMNS, modularity_curve
from .errors import ModularityInputError
from .knn import CHUNK_ROWS

RUN_CURVE_COLUMNS = ("run_id", "snapshot", "epoch") + CURVE_COLUMNS


def snapshot_indices(snapshots, n_snapshots: int) -> list[int]:
    """``"final"``, ``"all"`` or a list of indices (negative ones count from the end) -> indices 0..T-1,
    in the order given. Raises ModularityInputError (key ``snapshots``)."""
    if n_snapshots == 0:
        raise ModularityInputError("snapshots", "the run's trajectory holds no snapshot")
    if isinstance(snapshots, str):
        if snapshots == "final":
            return [n_snapshots - 1]
        if snapshots == "all":
            return list(range(n_snapshots))
        raise ModularityInputError("snapshots", f"expected 'final', 'all' or a list of indices, got {snapshots!r}")
    try:
        items = list(snapshots)
    except TypeError:
        raise ModularityInputError("snapshots", f"expected 'final', 'all' or a list of indices, "
                                                f"got {snapshots!r}") from None
    if not items or any(isinstance(i, bool) or not isinstance(i, int) for i in items):
        raise ModularityInputError("snapshots", f"expected a non-empty list of int indices, got {snapshots!r}")
    bad = [i for i in items if not -n_snapshots <= i < n_snapshots]
    if bad:
        raise ModularityInputError("snapshots", f"indices {bad} out of range: the run has {n_snapshots} "
                                                f"snapshots (0..{n_snapshots - 1})")
    return [i % n_snapshots for i in items]


def run_test_data(run_dir: str | Path, data_root: str | Path = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """The run's test images (M, C, H, W) and labels (M,), as its training evaluated them."""
    from ..data import load_dataset
    from ..rundir import read_config

    config = read_config(run_dir)
    run, model = config["run"], config.get("model", {})
    image_size = model.get("image_size", run.get("image_size"))
    _, test, _ = load_dataset(run["dataset"], data_root, image_size=image_size)
    return test.x, test.y


def _device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def run_curves(run_dir: str | Path, snapshots="final", *, k: int = 3, n_per_batch: int = 500,
               n_batches: int = 5, data_root: str | Path = "data", device=None,
               chunk_size: int = CHUNK_ROWS) -> pd.DataFrame:
    """Tidy table ``RUN_CURVE_COLUMNS``: one row per (snapshot, layer) of the run at ``run_dir``.

    ``snapshots``: ``"final"`` (the last kept snapshot: the end of training, or the last before a
    divergence), ``"all"``, or a list of snapshot indices. ``device``: where the forward passes and the
    kNN graphs run (default: the GPU when present). ``df.attrs`` records k, n_per_batch, n_batches used.
    Raises ModularityInputError naming the key (``snapshots``, ``n_images``, ``n_batches``, ``k``), and
    netdyn.rundir's errors for a run that is missing or whose files disagree.
    """
    from ..rundir import open_trajectory

    run_dir = Path(run_dir)
    traj = open_trajectory(run_dir)
    indices = snapshot_indices(snapshots, len(traj))
    images, labels = run_test_data(run_dir, data_root)
    dev = _device(device)
    model = traj.model(indices[0]).to(dev)
    images = images.to(dev, next(model.parameters()).dtype)
    epochs = traj.snapshots["epoch"]
    parts, attrs = [], {}
    for i in indices:
        model.load_state_dict(traj.state_dict(i))  # parameters and BatchNorm buffers, onto the model's device
        try:
            curve = modularity_curve(model, images, labels, k=k, n_per_batch=n_per_batch, n_batches=n_batches,
                                     chunk_size=chunk_size)
        except ModularityInputError as e:
            raise ModularityInputError(e.key, f"run {traj.run_id} (test set of {len(labels)} images): "
                                              f"{e.detail}") from None
        attrs = dict(curve.attrs)
        curve.insert(0, "epoch", float(epochs.iloc[i]))
        curve.insert(0, "snapshot", i)
        curve.insert(0, "run_id", traj.run_id)
        parts.append(curve)
    table = pd.concat(parts, ignore_index=True)
    table.attrs.update(attrs)
    return table
