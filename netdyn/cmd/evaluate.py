"""CMD evaluation of one trained run (issue 10 item 4): how well M modes model its weights, and how the
modelled weights test, next to the SGD weights they model.

Per run, M and snapshot: the relative reconstruction error ||w − ŵ|| / ||w|| over the trainable parameters;
the test accuracy of the SGD weights (own evaluation, checked against the run's curves.csv as a control),
of the post-hoc CMD weights ŵ(t) = a_i r_m(t) + b_i, and of the online-CMD weights (modes fixed after a
warm-up of F snapshots, then (a, b) refitted with every new snapshot; evaluated from snapshot F − 1 on).
Per run, M, mode and layer: how many parameters of the layer follow the mode.

Test accuracy is measured exactly as training measured it: the network packed as a pack of one
(:func:`netdyn.packed.pack_models`) and :func:`netdyn.train.evaluate` under the run's precision, on the
run's data set from :func:`netdyn.data.load_dataset`, so the SGD weights give curves.csv's numbers.

BatchNorm: CMD models trainable parameters only; the running statistics a snapshot stores belong to the
SGD weights and mean nothing for modelled ones. For a BatchNorm net every modelled weight vector (and, as
``acc_sgd_bn_recomputed``, the SGD weights too, so the effect of re-estimating can be told from the effect
of CMD) gets its statistics recomputed: running_mean/var reset to 0/1, then forward passes over a fixed
random subset of ``bn_images`` training images — no augmentation, in batches of ``bn_batch_size`` (default:
the run's batch size) — with only the BatchNorm layers in train mode (dropout stays off) and momentum
1/k for the k-th batch, i.e. torch's ``momentum=None`` cumulative average: the mean of the batch means and
of the unbiased batch variances. Then everything goes back to eval mode for the test pass.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .decompose import posthoc
from .online import OnlineCMD
from .result import CMDResult
from .source import CMDError

EPOCH_COLUMNS = ["run_id", "n_modes", "modes_found", "snapshot", "epoch", "rel_error", "acc_curves", "acc_sgd",
                 "acc_sgd_bn_recomputed", "acc_cmd", "acc_online_cmd"]
EMBEDDED_COLUMNS = ["epoch", "acc_embedded_cmd", "trained_fraction"]
MODE_LAYER_COLUMNS = ["run_id", "n_modes", "mode", "layer", "count"]


def modelled_row(row: np.ndarray, result: CMDResult, values: np.ndarray) -> np.ndarray:
    """A copy of a stored snapshot row (all tensors, float64) with the modelled columns replaced by
    ``values`` (in the order of ``result``'s modelled parameter vector); buffers keep their stored values."""
    out = np.array(row, dtype=np.float64)
    for (_, cols), (_, pos) in zip(result.source_layers, result.layers):
        out[cols] = values[pos]
    return out


def online_weights(traj, n_modes: int, warmup: int, *, n_samples: int = 1000, seed: int = 0):
    """(snapshot, online-CMD modelled parameter vector, warm-up result) for every snapshot from
    ``warmup − 1`` on: the warm-up's own fit at its last snapshot, then after each update."""
    online = OnlineCMD.start(traj, n_modes, warmup=warmup, n_samples=n_samples, seed=seed)
    yield warmup - 1, online.reconstruct(), online.warmup
    for t in range(warmup, len(traj)):
        online.update(traj.flat(t))
        yield t, online.reconstruct(), online.warmup


def _batchnorms(model: torch.nn.Module) -> list[torch.nn.Module]:
    from ..packed import PackedBatchNorm2d

    return [m for m in model.modules() if isinstance(m, (PackedBatchNorm2d, torch.nn.modules.batchnorm._BatchNorm))]


@torch.no_grad()
def recompute_bn_stats(model: torch.nn.Module, images: torch.Tensor, batch_size: int, *, packed: bool = True,
                       precision: str = "fp32") -> None:
    """Re-estimate every BatchNorm layer's running statistics of ``model`` from ``images`` (N, C, H, W):
    reset, cumulative average over batches (momentum 1/k for batch k), only BatchNorm in train mode; the
    model is left in eval mode. ``packed``: the model is a pack of one (inputs go through pack_inputs)."""
    from ..packed import pack_inputs
    from ..precision import autocast

    bns = _batchnorms(model)
    if not bns:
        return
    saved = [bn.momentum for bn in bns]
    model.eval()
    for bn in bns:
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.num_batches_tracked.zero_()
        bn.train()
    try:
        for k, i in enumerate(range(0, len(images), batch_size), start=1):
            for bn in bns:
                bn.momentum = 1.0 / k
            x = images[i:i + batch_size]
            with autocast(precision, x.device):
                model(pack_inputs(x[None]) if packed else x)
    finally:
        for bn, m in zip(bns, saved):
            bn.momentum = m
        model.eval()


@dataclass
class RunEvaluator:
    """A run's network (a pack of one on ``device``), test set and BatchNorm images: tests any weight row."""

    traj: object            # netdyn.trajectory.Trajectory
    spec: object            # netdyn.config.RunSpec
    model: torch.nn.Module  # packed, one member
    test: object            # netdyn.data.ImageData on the device, in the run's dtype
    bn_images: torch.Tensor | None
    bn_batch_size: int
    device: torch.device

    @classmethod
    def open(cls, run_dir: str | Path, *, data_root: str | Path = "data", device: str = "cpu",
             bn_images: int = 1024, bn_batch_size: int | None = None, seed: int = 0) -> "RunEvaluator":
        from ..config import RunSpec
        from ..data import ImageData, load_dataset
        from ..packed import pack_models
        from ..rundir import open_trajectory, read_config

        traj = open_trajectory(run_dir)
        spec = RunSpec.from_dict(read_config(run_dir)["run"])
        dev = torch.device(device)
        dtype = getattr(torch, spec.dtype)
        train, test, _ = load_dataset(spec.dataset, data_root, image_size=spec.image_size)
        model = pack_models([traj.model(0).to(dev, dtype)], [spec.seed]).eval()
        images = None
        if _batchnorms(model):
            if bn_images < 1:
                raise CMDError(traj.run_id, "bn_images", f"must be ≥ 1, got {bn_images!r}")
            g = torch.Generator().manual_seed(seed)
            pick = torch.randperm(len(train), generator=g)[:bn_images]
            images = train.x[pick].to(dev, dtype)
        return cls(traj, spec, model, ImageData(test.x.to(dev, dtype), test.y.to(dev)), images,
                   bn_batch_size or spec.batch_size, dev)

    @property
    def has_batchnorm(self) -> bool:
        return self.bn_images is not None

    def load(self, row: np.ndarray) -> None:
        """Put a full snapshot row (all tensors, manifest order) into the network."""
        from ..packed import load_member_state

        dtypes = {t["name"]: getattr(torch, t["dtype"]) for t in self.traj.tensors}
        state = {k: torch.from_numpy(np.array(a)).to(dtypes[k]) for k, a in self.traj.row_tensors(row).items()}
        load_member_state(self.model, 0, state)

    def accuracy(self, row: np.ndarray, *, recompute_bn: bool) -> float:
        """Test accuracy of the weights in ``row``; BatchNorm statistics recomputed first if asked (and the
        net has BatchNorm), else the row's stored ones used."""
        from ..precision import autocast, set_tf32
        from ..train import evaluate

        self.load(row)
        with _tf32_restored():
            set_tf32(self.spec.precision, self.device)
            if recompute_bn and self.has_batchnorm:
                recompute_bn_stats(self.model, self.bn_images, self.bn_batch_size, precision=self.spec.precision)
            with autocast(self.spec.precision, self.device):
                _, acc = evaluate(self.model, self.test, 1)
        self.model.eval()  # evaluate() leaves the model in train mode
        return float(acc[0])


@contextlib.contextmanager
def _tf32_restored():
    """set_tf32 is process-global: give the caller its own settings back."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def mode_layer_table(result: CMDResult, run_id: str, n_modes: int) -> pd.DataFrame:
    """Tidy (run_id, n_modes, mode, layer, count): parameters of each layer in each mode, zeros included."""
    counts = result.mode_layer_counts()  # (layers, modes)
    names = [name for name, _ in result.layers]
    layer_idx, mode_idx = np.meshgrid(np.arange(len(names)), np.arange(counts.shape[1]), indexing="ij")
    return pd.DataFrame({"run_id": run_id, "n_modes": n_modes, "mode": mode_idx.ravel(),
                         "layer": np.array(names, dtype=object)[layer_idx.ravel()],
                         "count": counts.ravel().astype(np.int64)}, columns=MODE_LAYER_COLUMNS)


def embedded_curve(twin_dir: str | Path) -> pd.DataFrame:
    """The embedded-CMD twin of a run (:func:`netdyn.config.variant_runs`): its test accuracy at every snapshot
    (``acc_embedded_cmd``, from its curves.csv) and the share of its parameters trained in the epoch that led to
    the snapshot (``trained_fraction``: 1 up to the first freezing step; a freezing step at the end of epoch e
    counts from epoch e + 1 on)."""
    from ..rundir import read_curves, read_result

    twin_dir = Path(twin_dir)
    log = read_result(twin_dir).get("embedded_cmd")
    if log is None:
        raise CMDError(twin_dir.name, "embedded_cmd", f"{twin_dir} was not trained with embedded CMD")
    after = {int(r["epoch"]): r["trained_fraction"] for r in log["epochs"]}
    curves = read_curves(twin_dir)
    kept = curves[curves["snapshot"] >= 0]
    epochs = kept["epoch"].to_numpy(dtype=float)
    trained = [1.0 if e <= 0 else after.get(int(np.ceil(e)) - 1, np.nan) for e in epochs]
    return pd.DataFrame({"epoch": epochs, "acc_embedded_cmd": kept["test_acc"].to_numpy(dtype=float),
                         "trained_fraction": trained}, columns=EMBEDDED_COLUMNS)


def with_embedded(epochs: pd.DataFrame, twin_dir: str | Path | None) -> pd.DataFrame:
    """:func:`evaluate_run`'s table with the twin's columns joined on the snapshot epoch (NaN without a twin)."""
    if twin_dir is None:
        return epochs.assign(acc_embedded_cmd=np.nan, trained_fraction=np.nan)
    twin = embedded_curve(twin_dir)
    out = epochs.merge(twin, on="epoch", how="left", validate="many_to_one")
    assert len(out) == len(epochs)
    return out


def _curve_accuracy(run_dir: Path) -> dict[int, float]:
    from ..rundir import read_curves

    curves = read_curves(run_dir)
    kept = curves[curves["snapshot"] >= 0]
    return dict(zip(kept["snapshot"].astype(int), kept["test_acc"].astype(float)))


def evaluate_run(run_dir: str | Path, n_modes_list, *, warmup: int, data_root: str | Path = "data",
                 n_samples: int = 1000, seed: int = 0, device: str = "cpu", bn_images: int = 1024,
                 bn_batch_size: int | None = None, sgd_tolerance: float | None = 0.005
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CMD evaluation of a trained run for each M in ``n_modes_list``.

    Returns (per-snapshot table, mode-layer table); columns :data:`EPOCH_COLUMNS` and
    :data:`MODE_LAYER_COLUMNS`. ``acc_curves`` is curves.csv's test_acc; ``acc_sgd`` this module's own
    evaluation of the stored weights with their stored BatchNorm statistics; ``acc_sgd_bn_recomputed`` the
    same weights with recomputed statistics (equal to acc_sgd without BatchNorm); ``acc_cmd`` and
    ``acc_online_cmd`` the modelled weights, always with recomputed statistics (NaN before snapshot
    ``warmup − 1`` for online). ``n_samples`` and ``seed``: CMD's K and sampling seed, the seed also picks
    the BatchNorm images. ``sgd_tolerance``: largest |acc_sgd − acc_curves| accepted (a larger one means
    the wrong data or network, and raises CMDError); the default allows a few test images' worth of
    arithmetic difference between devices; None skips the check (a trajectory curves.csv did not measure).
    """
    run_dir = Path(run_dir)
    ev = RunEvaluator.open(run_dir, data_root=data_root, device=device, bn_images=bn_images,
                           bn_batch_size=bn_batch_size, seed=seed)
    traj, run = ev.traj, ev.traj.run_id
    T = len(traj)
    epochs = traj.snapshots["epoch"].to_numpy(dtype=float)
    curves = _curve_accuracy(run_dir)
    acc_curves = np.array([curves.get(t, np.nan) for t in range(T)])
    acc_sgd = np.array([ev.accuracy(traj.flat(t), recompute_bn=False) for t in range(T)])
    if sgd_tolerance is not None:
        gap = np.abs(acc_sgd - acc_curves)
        if not np.all(gap <= sgd_tolerance):
            t = int(np.nanargmax(np.where(np.isnan(gap), np.inf, gap)))
            raise CMDError(run, "acc_sgd", f"the stored weights of snapshot {t} test at {acc_sgd[t]:.6f}, "
                                           f"curves.csv says {acc_curves[t]:.6f}: wrong data set or network?")
    acc_sgd_bn = (np.array([ev.accuracy(traj.flat(t), recompute_bn=True) for t in range(T)])
                  if ev.has_batchnorm else acc_sgd.copy())
    epoch_tables, layer_tables = [], []
    for n_modes in n_modes_list:
        res = posthoc(traj, n_modes, n_samples=n_samples, seed=seed)
        acc_cmd = np.array([ev.accuracy(modelled_row(traj.flat(t), res, res.reconstruct(rows=t)), recompute_bn=True)
                            for t in range(T)])
        acc_online = np.full(T, np.nan)
        for t, values, warm in online_weights(traj, n_modes, warmup, n_samples=n_samples, seed=seed):
            acc_online[t] = ev.accuracy(modelled_row(traj.flat(t), warm, values), recompute_bn=True)
        epoch_tables.append(pd.DataFrame({
            "run_id": run, "n_modes": n_modes, "modes_found": res.n_modes, "snapshot": np.arange(T),
            "epoch": epochs, "rel_error": res.relative_error, "acc_curves": acc_curves, "acc_sgd": acc_sgd,
            "acc_sgd_bn_recomputed": acc_sgd_bn, "acc_cmd": acc_cmd, "acc_online_cmd": acc_online},
            columns=EPOCH_COLUMNS))
        layer_tables.append(mode_layer_table(res, run, n_modes))
    return pd.concat(epoch_tables, ignore_index=True), pd.concat(layer_tables, ignore_index=True)
