"""netdyn.cmd.evaluate on tiny real runs (digits, LeNet and VGG-11-BN, width 1, 4 epochs)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from netdyn.cmd import CMDError, posthoc, trajectory_layers
from netdyn.cmd.decompose import fit_all
from netdyn.cmd.evaluate import RunEvaluator, evaluate_run, modelled_row, online_weights, recompute_bn_stats
from netdyn.cmd.source import Source
from netdyn.rundir import CURVES, open_trajectory
from netdyn.train import train_runs

MODES = [1, 3]
WARMUP = 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory, make_spec):
    """run dir of a trained LeNet and VGG-11-BN, by architecture label."""
    out = tmp_path_factory.mktemp("cmd-eval")
    specs = {arch: make_spec(arch, epochs=4, lr=0.05) for arch in ("lenet", "vgg11bn")}
    train_runs(list(specs.values()), out, pack="never")
    return {arch: out / s.run_id for arch, s in specs.items()}


@pytest.fixture(scope="module")
def tables(runs):
    return {arch: evaluate_run(d, MODES, warmup=WARMUP, n_samples=200, bn_images=256, sgd_tolerance=None)
            for arch, d in runs.items()}


@pytest.mark.parametrize("arch", ["lenet", "vgg11bn"])
def test_own_sgd_accuracy_is_curves_test_acc(tables, arch):
    epochs, _ = tables[arch]
    assert len(epochs) == len(MODES) * 5 and not epochs["acc_sgd"].isna().any()
    assert np.abs(epochs["acc_sgd"] - epochs["acc_curves"]).max() < 1e-6
    assert epochs["acc_sgd"].nunique() > 1  # the run learned something, so the match says something


def test_lenet_has_nothing_to_recompute(tables):
    epochs, _ = tables["lenet"]
    assert (epochs["acc_sgd_bn_recomputed"] == epochs["acc_sgd"]).all()


@pytest.mark.parametrize("arch", ["lenet", "vgg11bn"])
def test_rel_error_is_the_dense_reconstruction_error(runs, tables, arch):
    """The streamed error per snapshot equals ||W − ŵ|| / ||W|| over the trainable columns, computed densely."""
    epochs, _ = tables[arch]
    traj = open_trajectory(runs[arch])
    cols = np.concatenate([np.arange(s.start, s.stop) for _, s in trajectory_layers(traj)])
    W = np.asarray(traj.matrix[:, cols], dtype=np.float64)
    for m in MODES:
        res = posthoc(traj, m, n_samples=200, seed=0)
        dense = np.linalg.norm(W - res.reconstruct(), axis=1) / np.linalg.norm(W, axis=1)
        np.testing.assert_allclose(epochs[epochs.n_modes == m]["rel_error"], dense, rtol=1e-9)
        assert np.all(dense > 1e-4)  # real trajectories are not fitted exactly by a few modes


@pytest.mark.parametrize("arch", ["lenet", "vgg11bn"])
def test_mode_layer_counts_cover_every_parameter_once(runs, tables, arch):
    _, layers = tables[arch]
    traj = open_trajectory(runs[arch])
    sizes = {name: s.stop - s.start for name, s in trajectory_layers(traj)}
    for m in MODES:
        t = layers[layers.n_modes == m]
        assert set(t["mode"]) == set(range(m))
        assert t.groupby("layer")["count"].sum().to_dict() == sizes


def test_online_weights_are_the_batch_fit_on_the_snapshots_seen(runs):
    """At every snapshot t ≥ F − 1 the online weights equal the least-squares fit of snapshots 0..t with the
    warm-up's modes, the references extended by the reference parameters' own values (fit_all, not RLS)."""
    traj = open_trajectory(runs["vgg11bn"])
    seen = []
    for t, values, warm in online_weights(traj, 3, WARMUP, n_samples=200):
        seen.append(t)
        rows = np.asarray(traj.matrix[:t + 1], dtype=np.float64)
        refs = rows[:, warm.reference_columns].T
        src = Source(rows, tuple(warm.source_layers), "x")
        _, a, b, _ = fit_all(src, refs, 4096, labels=warm.labels.copy())
        expected = a * refs[warm.labels, -1] + b
        np.testing.assert_allclose(values, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
    assert seen == list(range(WARMUP - 1, len(traj)))


def test_online_before_warmup_is_missing(tables):
    epochs, _ = tables["vgg11bn"]
    assert epochs[epochs.snapshot < WARMUP - 1]["acc_online_cmd"].isna().all()
    assert not epochs[epochs.snapshot >= WARMUP - 1]["acc_online_cmd"].isna().any()


def test_bn_recompute_is_the_average_of_batch_statistics(runs):
    """First BatchNorm layer after recomputing: running_mean = mean of the per-batch channel means,
    running_var = mean of the unbiased per-batch variances of its input, computed on the plain (unpacked)
    network by hand."""
    ev = RunEvaluator.open(runs["vgg11bn"], bn_images=192, bn_batch_size=64)
    traj = ev.traj
    ev.load(traj.flat(4))
    recompute_bn_stats(ev.model, ev.bn_images, 64)
    plain = traj.model(4)
    conv = plain.features[0]
    assert isinstance(plain.features[1], torch.nn.BatchNorm2d)
    with torch.no_grad():
        h = [conv(ev.bn_images[i:i + 64]) for i in range(0, 192, 64)]
    mean = torch.stack([x.mean((0, 2, 3)) for x in h]).mean(0)
    var = torch.stack([x.transpose(0, 1).reshape(x.shape[1], -1).var(1, unbiased=True) for x in h]).mean(0)
    bn = ev.model.features[1]
    torch.testing.assert_close(bn.running_mean[0], mean, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(bn.running_var[0], var, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(bn.running_mean[0], plain.features[1].running_mean)  # stored stats differ


def test_modelled_row_replaces_trainable_columns_only(runs):
    traj = open_trajectory(runs["vgg11bn"])
    res = posthoc(traj, 3, n_samples=200)
    stored = traj.flat(3)
    row = modelled_row(stored, res, res.reconstruct(rows=3))
    trainable = np.zeros(stored.size, dtype=bool)
    for _, s in trajectory_layers(traj):
        trainable[s] = True
    assert (~trainable).sum() > 0  # BatchNorm buffers
    np.testing.assert_array_equal(row[~trainable], stored[~trainable])
    expected = np.concatenate([res.a[p] * res.references[res.labels[p], 3] + res.b[p] for _, p in res.layers])
    np.testing.assert_allclose(row[trainable], expected, rtol=1e-12)


def test_recomputed_accuracy_ignores_the_stored_statistics(runs, tables):
    """With recomputation the row's own running_mean/var do not matter (garbage in them changes nothing),
    and for these fast-moving tiny runs they do matter without it (else this test would say nothing)."""
    ev = RunEvaluator.open(runs["vgg11bn"], bn_images=256)
    row = np.array(ev.traj.flat(3), dtype=np.float64)
    garbage = row.copy()
    for t in ev.traj.tensors:
        if t["name"].endswith(("running_mean", "running_var")):
            garbage[t["offset"]:t["offset"] + t["numel"]] = 1e3
    assert ev.accuracy(garbage, recompute_bn=True) == ev.accuracy(row, recompute_bn=True)
    assert ev.accuracy(garbage, recompute_bn=False) != ev.accuracy(row, recompute_bn=False)
    epochs, _ = tables["vgg11bn"]
    assert (epochs["acc_sgd_bn_recomputed"] != epochs["acc_sgd"]).any()


def _plant_one_mode(run_dir, dest):
    """A copy of the run whose trainable parameters move on one profile: w(t) = w0 + s(t) (w_T − w0)."""
    shutil.copytree(run_dir, dest)
    traj = open_trajectory(dest)
    s = np.array([0.0, 0.3, 0.5, 0.9, 1.0])
    W = np.memmap(traj.path / "trajectory.bin", dtype=traj.matrix.dtype, mode="r+", shape=traj.matrix.shape)
    for _, c in trajectory_layers(traj):
        w0, wT = np.array(W[0, c]), np.array(W[-1, c])
        W[:, c] = w0 + s[:, None] * (wT - w0)
    W.flush()
    del W
    return dest


@pytest.mark.parametrize("arch", ["lenet", "vgg11bn"])
def test_exactly_modelled_weights_test_as_the_weights(runs, tmp_path, arch):
    """On a trajectory that one mode models exactly, CMD and online CMD weights test exactly as the stored
    weights (with recomputed statistics: the same recomputation on both sides)."""
    planted = _plant_one_mode(runs[arch], tmp_path / runs[arch].name)
    epochs, _ = evaluate_run(planted, [1, 2], warmup=WARMUP, n_samples=200, bn_images=256, sgd_tolerance=None)
    assert epochs["rel_error"].max() < 1e-9
    assert (epochs["acc_cmd"] == epochs["acc_sgd_bn_recomputed"]).all()
    online = epochs.dropna(subset=["acc_online_cmd"])
    assert len(online) == 2 * (5 - WARMUP + 1)
    assert (online["acc_online_cmd"] == online["acc_sgd_bn_recomputed"]).all()
    assert epochs["acc_cmd"].nunique() > 1


def test_sgd_control_stops_on_a_mismatch(runs, tmp_path):
    """The built-in control: a curves.csv that disagrees with the weights stops the evaluation, naming the run."""
    copy = tmp_path / runs["lenet"].name
    shutil.copytree(runs["lenet"], copy)
    curves = pd.read_csv(copy / CURVES)
    evaluate_run(copy, [1], warmup=WARMUP, n_samples=200)  # untouched: within the default tolerance
    curves.loc[curves.snapshot == 2, "test_acc"] += 0.01
    curves.to_csv(copy / CURVES, index=False, float_format="%.17g")
    with pytest.raises(CMDError, match=f"run {copy.name}: acc_sgd: .*snapshot 2"):
        evaluate_run(copy, [1], warmup=WARMUP, n_samples=200)
