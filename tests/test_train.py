"""Tests for netdyn.train: a packed run equals the same run trained alone, a diverging member disturbs
nobody, a killed job resumes to the same bytes, training is deterministic, finished runs are kept, and
each run leaves the documented files."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from netdyn.data import load_dataset
from netdyn.member import augment, epoch_stream, init_model
from netdyn.plan import pack_plan
from netdyn.rundir import RunMismatchError, snapshots_per_run
from netdyn.train import train_runs
from netdyn.trajectory import Trajectory

# what netdyn/train.py documents per run directory
RUN_FILES = ["config.json", "curves.csv", "trajectory.bin", "trajectory.json", "result.json"]
CHECKPOINT_FILES = ["checkpoint.safetensors", "checkpoint.previous.safetensors", "checkpoint.json"]
CURVE_COLUMNS = ["snapshot", "epoch", "step", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]

# Packed and solo training are compared in float64 to atol 1e-9. Both go through the same packed code
# (a solo run is a pack of one); the only difference is that a grouped convolution / batched matmul over
# K members may sum in another order than the same op over one member. In float64 those rounding
# differences are ~1e-16 per op and stay far below 1e-9 over the few dozen SGD steps trained here, while any
# real coupling between members (shared statistics, masks, learning rates) shows up at 1e-3 or more.
ATOL = 1e-9

# three members that differ in seed, learning rate, dropout, weight decay and momentum
MEMBERS = [
    dict(lr=0.05, dropout=0.0, wd=0.0, seed=0),
    dict(lr=0.1, dropout=0.5, wd=5e-3, seed=1, momentum=0.8),
    dict(lr=0.02, dropout=0.3, wd=0.0, seed=2),
]
EPOCHS = {"lenet": 2, "vgg11bn": 1, "resnet8": 1}
SUBEPOCH = dict(subepoch_snapshots=2, subepoch_epochs=1)


def _specs(make_spec, arch, members=MEMBERS, **training):
    kw = dict(epochs=EPOCHS[arch], **SUBEPOCH)
    kw.update(training)
    return [make_spec(arch, **m, **kw) for m in members]


def _curves(out, spec):
    return pd.read_csv(out / spec.run_id / "curves.csv", float_precision="round_trip")


def _result(out, spec):
    return json.loads((out / spec.run_id / "result.json").read_text())


def _assert_same_run(out_a, out_b, spec, atol=ATOL, rtol=0.0):
    a, b = Trajectory.open(out_a / spec.run_id), Trajectory.open(out_b / spec.run_id)
    assert a.matrix.shape == b.matrix.shape
    assert a.snapshots.equals(b.snapshots)
    np.testing.assert_allclose(a.matrix, b.matrix, rtol=0, atol=atol)
    ca, cb = _curves(out_a, spec), _curves(out_b, spec)
    assert list(ca.columns) == list(cb.columns) == CURVE_COLUMNS
    assert len(ca) == len(cb)
    np.testing.assert_allclose(ca.to_numpy(float), cb.to_numpy(float), rtol=rtol, atol=atol)  # NaN == NaN
    ra, rb = _result(out_a, spec), _result(out_b, spec)
    for key in ("status", "diverged_epoch", "epochs_completed", "n_snapshots", "trajectory_bytes"):
        assert ra[key] == rb[key], key


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_spec):
    """(arch, "packed" | "solo") -> (out dir, specs): the MEMBERS trained as one pack, or one by one."""
    cache = {}

    def get(arch, mode):
        if (arch, mode) not in cache:
            specs = _specs(make_spec, arch)
            out = tmp_path_factory.mktemp(f"{arch}-{mode}")
            train_runs(specs, out, pack="always" if mode == "packed" else "never")
            cache[arch, mode] = (out, specs)
        return cache[arch, mode]

    return get


# ------------------------------------------------------------------------------------------------------
# (a) a packed run equals the run trained alone

@pytest.mark.parametrize("arch", ["lenet", "vgg11bn", "resnet8"])
def test_packed_equals_solo(trained, arch):
    packed_out, specs = trained(arch, "packed")
    solo_out, _ = trained(arch, "solo")
    _, _, info = load_dataset("digits", image_size=specs[0].image_size)
    assert [len(p) for p in pack_plan(specs, info, torch.device("cpu"), "always", {})] == [3]
    assert [len(p) for p in pack_plan(specs, info, torch.device("cpu"), "never", {})] == [1, 1, 1]
    for spec in specs:
        _assert_same_run(packed_out, solo_out, spec)
        assert _result(packed_out, spec)["status"] == "complete"
    # the members really are different runs, and they really trained
    finals = [Trajectory.open(packed_out / s.run_id).flat(-1) for s in specs]
    assert not np.allclose(finals[0], finals[1]) and not np.allclose(finals[1], finals[2])
    for s in specs:
        traj = Trajectory.open(packed_out / s.run_id)
        assert not np.allclose(traj.flat(0), traj.flat(-1))


@pytest.mark.parametrize("layout", ["per_member", "batched_matmul"])
@pytest.mark.parametrize("arch", ["lenet", "resnet8"])
def test_other_layouts_pack_equals_solo_and_records_its_layout(trained, tmp_path, arch, layout):
    """The per-member and im2col-matmul convolution layouts (netdyn.packed.LAYOUTS) train each member as its
    solo run, and each run's result.json says how its pack trained."""
    solo_out, specs = trained(arch, "solo")
    train_runs(specs, tmp_path, pack="always", pack_layout=layout)
    for spec in specs:
        _assert_same_run(tmp_path, solo_out, spec)
        assert _result(tmp_path, spec)["pack"] == {"size": 3, "layout": layout, "compile": False}
        assert _result(solo_out, spec)["pack"] == {"size": 1, "layout": "grouped_channels_last", "compile": False}


def test_train_runs_trains_each_pack_in_the_chosen_layout_and_records_the_probe(tmp_path, make_spec, monkeypatch):
    """What train_runs does with training.pack_layout: auto on a GPU, without one: choose_layout's answer (here
    planted, as its probe gives it on cuda) is the layout the pack trains in, asked once per kind of pack,
    and its probe times reach every run's result.json."""
    import netdyn.train

    asked = []

    def planted(spec, info, device, k, layout, compile):
        asked.append((spec.pack_key, k, layout, compile))
        return "per_member", {"per_member": 0.001, "grouped": 0.0025}

    monkeypatch.setattr(netdyn.train, "choose_layout", planted)
    specs = [make_spec("lenet", lr=0.05, seed=s, epochs=1) for s in (0, 1)]
    train_runs(specs, tmp_path, pack="always", pack_layout="auto")
    assert asked == [(specs[0].pack_key, 2, "auto", False)]
    for spec in specs:
        assert _result(tmp_path, spec)["pack"] == {"size": 2, "layout": "per_member", "compile": False,
                                                   "layout_probe_ms_per_step": {"per_member": 1.0, "grouped": 2.5}}


def test_compiled_pack_follows_the_eager_one_without_recompiling_per_step(tmp_path, make_spec):
    """training.compile: the packed model through torch.compile (inductor on the CPU) trains the same runs as
    eager PyTorch to float32 rounding, and compiles a handful of graphs (full and last minibatch, test pass,
    SGD update), not one per step: dropout's step is a device tensor, not a Python int a graph would specialise on.
    Tolerance: inductor fuses and reorders float32 sums (~1e-7 relative per op); 44 SGD steps keep the
    weights within 1e-5 of eager, while a wrong mask or step shows at 1e-2."""
    from torch._dynamo.utils import counters

    specs = [make_spec("lenet", lr=0.05, dropout=0.3, seed=s, epochs=2, dtype="float32") for s in (0, 1)]
    train_runs(specs, tmp_path / "eager", pack="always")
    torch._dynamo.reset()
    counters.clear()
    train_runs(specs, tmp_path / "compiled", pack="always", compile=True)
    assert 1 <= counters["stats"]["unique_graphs"] <= 6  # forward (full, last batch), test pass, SGD update
    for spec in specs:
        _assert_same_run(tmp_path / "compiled", tmp_path / "eager", spec, atol=1e-5)
        assert _result(tmp_path / "compiled", spec)["pack"]["compile"] is True


# ------------------------------------------------------------------------------------------------------
# (b) a diverging member does not disturb the others

def test_divergence_is_isolated(make_spec, tmp_path):
    """lr 1e4 overflows to inf/NaN within a few steps. This runs in float32, the study's default: in float64
    the same run reaches a train loss of ~1e287 without ever overflowing, so it never counts as diverged."""
    kw = dict(epochs=2, dtype="float32", **SUBEPOCH)
    m0 = make_spec("lenet", lr=0.05, seed=0, **kw)
    m2 = make_spec("lenet", lr=0.02, dropout=0.3, seed=2, **kw)
    bad = make_spec("lenet", lr=1e4, seed=3, **kw)
    tame = make_spec("lenet", lr=0.01, seed=3, **kw)  # the same pack shape, without the blow-up
    out, control, solo = tmp_path / "pack", tmp_path / "control", tmp_path / "solo"
    train_runs([m0, bad, m2], out, pack="always")
    train_runs([m0, tame, m2], control, pack="always")
    train_runs([m0, bad, m2], solo, pack="never")

    res = _result(out, bad)
    assert res["status"] == "diverged"
    assert res["diverged_epoch"] is not None and res["diverged_epoch"] > 0
    assert isinstance(res["final_test_acc"], float) and math.isfinite(res["final_test_acc"])
    assert 0.0 <= res["final_test_acc"] <= 1.0
    curves = _curves(out, bad)
    assert curves["snapshot"].iloc[-1] == -1  # measured at divergence, weights not kept
    assert curves["epoch"].iloc[-1] == res["diverged_epoch"]
    assert curves["test_acc"].iloc[-1] == res["final_test_acc"]
    traj = Trajectory.open(out / bad.run_id)
    assert len(traj) == res["n_snapshots"] == (curves["snapshot"] >= 0).sum()
    assert np.isfinite(traj.matrix).all()
    assert not any((out / bad.run_id / f).exists() for f in CHECKPOINT_FILES)
    assert _result(control, tame)["status"] == "complete"

    for good in (m0, m2):
        assert _result(out, good)["status"] == "complete"
        assert _result(out, good)["epochs_completed"] == 2
        # next to a diverging member, exactly what it computes next to a tame one (same kernels and shapes)
        for f in ("trajectory.bin", "curves.csv"):
            assert (out / good.run_id / f).read_bytes() == (control / good.run_id / f).read_bytes(), f
        # and what it computes alone; float32, so only to the rounding that the other summation order of
        # the grouped ops leaves after 44 steps (~1e-7 here); leaked NaN/inf or coupling would be O(1)
        _assert_same_run(out, solo, good, atol=1e-5)
    # the diverging run alone diverges the same way (its last test loss is ~1e12: float32 rounding there is
    # relative, ~1e-7, so the curves get a relative tolerance too)
    _assert_same_run(out, solo, bad, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------------
# (c) a killed job resumes to the same bytes as an uninterrupted one

CHILD = r"""
import json, os, pathlib, sys, time
import torch
torch.set_num_threads(1)
from netdyn.config import RunSpec
from netdyn import train as T

specs_file, out, pack, how, *where = sys.argv[1:]
specs = [RunSpec.from_dict(d) for d in json.load(open(specs_file))]

def pause():  # everything so far is on disk; wait for SIGKILL
    open(os.path.join(out, "PAUSED"), "w").close()
    time.sleep(600)

if how == "snapshot":  # right after the snapshot with this epoch label, once the writer thread has written it
    snapshot = T.PackTrainer._snapshot
    def paused_snapshot(self, epoch_label, *args, **kwargs):
        snapshot(self, epoch_label, *args, **kwargs)
        if epoch_label == float(where[0]):
            self.io.drain()
            pause()
    T.PackTrainer._snapshot = paused_snapshot
else:  # just before the nth call on file `name` in run directory `run` of the patched writer:
    run, name, nth = where  # "json": netdyn.trajectory's JSON writes (manifest), "replace": file renames
    def paused_before_nth(write):
        calls = []
        def paused(path, *args):
            if path.parent.name == run and path.name == name:
                calls.append(1)
                if len(calls) == int(nth):
                    pause()
            return write(path, *args)
        return paused
    if how == "json":
        import netdyn.trajectory as TJ
        TJ._atomic_write_json = paused_before_nth(TJ._atomic_write_json)
    else:
        pathlib.Path.replace = paused_before_nth(pathlib.Path.replace)

T.train_runs(specs, out, pack=pack)
open(os.path.join(out, "FINISHED"), "w").close()
"""


def _kill_mid_training(tmp_path, child_env, specs, out, pack, *pause_at):
    """Train in a child process and SIGKILL it once every run has checkpointed epoch 1 and the child has
    reached its pause point (see CHILD)."""
    out.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    specs_file = tmp_path / "specs.json"
    specs_file.write_text(json.dumps([s.to_dict() for s in specs]))
    log = open(tmp_path / "child.log", "w")
    proc = subprocess.Popen([sys.executable, str(script), str(specs_file), str(out), pack, *map(str, pause_at)],
                            env=child_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120  # a guard against hanging, not a timing assertion
        while True:
            ckpts = [out / s.run_id / "checkpoint.json" for s in specs]
            epochs = [json.loads(c.read_text())["epoch"] if c.exists() else 0 for c in ckpts]
            if min(epochs) >= 1 and (out / "PAUSED").exists():
                break
            assert proc.poll() is None, (tmp_path / "child.log").read_text()
            assert time.monotonic() < deadline, "child never reached its pause point"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "FINISHED").exists()
    for s in specs:
        assert not (out / s.run_id / "result.json").exists()


RESUME_MEMBERS = [dict(lr=0.05, dropout=0.0, wd=0.0, seed=0), dict(lr=0.1, dropout=0.5, wd=1e-3, seed=1)]
RESUME_EPOCHS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


def _resume_specs(make_spec, n, dtype="float32"):
    return [make_spec("lenet", **m, epochs=3, subepoch_snapshots=2, subepoch_epochs=2, dtype=dtype)
            for m in RESUME_MEMBERS[:n]]


def _assert_identical_runs(out_a, out_b, specs):
    for s in specs:
        a, b = out_a / s.run_id, out_b / s.run_id
        assert json.loads((a / "result.json").read_text())["status"] == "complete"
        assert (a / "trajectory.bin").read_bytes() == (b / "trajectory.bin").read_bytes()
        assert (a / "curves.csv").read_text() == (b / "curves.csv").read_text()
        assert json.loads((a / "trajectory.json").read_text()) == json.loads((b / "trajectory.json").read_text())
        assert not any((a / f).exists() for f in CHECKPOINT_FILES)
        assert Trajectory.open(a).snapshots["epoch"].tolist() == RESUME_EPOCHS


@pytest.mark.parametrize("n_members", [1, 2], ids=["solo", "pack2"])
def test_killed_run_resumes_identically(tmp_path, make_spec, child_env, n_members):
    specs = _resume_specs(make_spec, n_members)
    pack = "always" if n_members > 1 else "never"
    killed = tmp_path / "killed"
    _kill_mid_training(tmp_path, child_env, specs, killed, pack, "snapshot", 1.5)  # half-way through epoch 2
    for s in specs:
        ckpt = json.loads((killed / s.run_id / "checkpoint.json").read_text())
        assert ckpt["epoch"] == 1
        # the snapshot at epoch 1.5 was written after the checkpoint: resuming must drop it
        assert len(Trajectory.open(killed / s.run_id).snapshots) == ckpt["n_snapshots"] + 1

    resumed = train_runs(specs, killed, pack=pack)
    assert [r["epochs_completed"] for r in resumed] == [3] * n_members
    reference = tmp_path / "reference"
    train_runs(specs, reference, pack=pack)
    _assert_identical_runs(killed, reference, specs)


def test_kill_between_checkpoint_files(tmp_path, make_spec, child_env):
    """Killed after epoch 2's weights were renamed into place but before checkpoint.json was."""
    specs = _resume_specs(make_spec, 1)
    (spec,) = specs
    killed = tmp_path / "killed"
    _kill_mid_training(tmp_path, child_env, specs, killed, "never", "replace", spec.run_id, "checkpoint.json.tmp", 2)
    d = killed / spec.run_id
    assert json.loads((d / "checkpoint.json").read_text())["epoch"] == 1  # the window really was hit
    assert json.loads((d / "checkpoint.json.tmp").read_text())["epoch"] == 2
    train_runs(specs, killed, pack="never")
    reference = tmp_path / "reference"
    train_runs(specs, reference, pack="never")
    _assert_identical_runs(killed, reference, specs)


def test_kill_between_a_trajectory_row_and_its_manifest_entry(tmp_path, make_spec, child_env):
    """Killed while the writer thread had appended epoch 1.5's row to trajectory.bin but not yet listed it in
    trajectory.json (its 5th write: creation, then snapshots 0, 0.5, 1, 1.5): the trajectory is not readable
    as it stands, and resuming drops the unlisted row and ends where the uninterrupted pack ends."""
    from netdyn.trajectory import TrajectoryError

    specs = _resume_specs(make_spec, 2)
    killed = tmp_path / "killed"
    _kill_mid_training(tmp_path, child_env, specs, killed, "always", "json", specs[0].run_id, "trajectory.json", 5)
    with pytest.raises(TrajectoryError, match="truncated or was overwritten"):  # the window really was hit
        Trajectory.open(killed / specs[0].run_id)
    train_runs(specs, killed, pack="always")
    reference = tmp_path / "reference"
    train_runs(specs, reference, pack="always")
    _assert_identical_runs(killed, reference, specs)


def test_kill_between_pack_members_checkpoints(tmp_path, make_spec, child_env):
    """Killed while a pack saved its checkpoints: member 0 has epoch 2, member 1 only epoch 1. Each resumes
    from its own checkpoint (in separate packs) and ends where the uninterrupted pack ends. float64: the
    resumed members no longer share a pack, so this compares packed with solo training (see ATOL)."""
    specs = _resume_specs(make_spec, 2, dtype="float64")
    killed = tmp_path / "killed"
    _kill_mid_training(tmp_path, child_env, specs, killed, "always", "replace", specs[1].run_id,
                       "checkpoint.safetensors.tmp", 2)
    assert [json.loads((killed / s.run_id / "checkpoint.json").read_text())["epoch"] for s in specs] == [2, 1]
    train_runs(specs, killed, pack="always")
    reference = tmp_path / "reference"
    train_runs(specs, reference, pack="always")
    for s in specs:
        _assert_same_run(killed, reference, s)
        assert Trajectory.open(killed / s.run_id).snapshots["epoch"].tolist() == RESUME_EPOCHS


# ------------------------------------------------------------------------------------------------------
# (d) determinism

def test_same_config_and_seed_give_identical_bytes(tmp_path, make_spec):
    spec = make_spec("lenet", lr=0.05, dropout=0.5, seed=4, epochs=1, dtype="float32")
    train_runs([spec], tmp_path / "a", pack="never")
    train_runs([spec], tmp_path / "b", pack="never")
    a = (tmp_path / "a" / spec.run_id / "trajectory.bin").read_bytes()
    assert a == (tmp_path / "b" / spec.run_id / "trajectory.bin").read_bytes()
    assert _curves(tmp_path / "a", spec).equals(_curves(tmp_path / "b", spec))
    other = make_spec("lenet", lr=0.05, dropout=0.5, seed=5, epochs=1, dtype="float32")
    train_runs([other], tmp_path / "c", pack="never")
    assert a != (tmp_path / "c" / other.run_id / "trajectory.bin").read_bytes()


def test_background_writes_leave_the_bytes_of_writes_in_place(tmp_path, make_spec, monkeypatch):
    """Files written on the background thread (netdyn.rundir.background) are byte for byte those of a trainer
    that writes each in place."""
    from netdyn.train import PackTrainer

    specs = _specs(make_spec, "lenet")
    train_runs(specs, tmp_path / "queued", pack="always")
    monkeypatch.setattr(PackTrainer, "background_writes", False)
    train_runs(specs, tmp_path / "in_place", pack="always")
    for spec in specs:
        for name in ("trajectory.bin", "trajectory.json", "curves.csv"):
            assert (tmp_path / "queued" / spec.run_id / name).read_bytes() == \
                (tmp_path / "in_place" / spec.run_id / name).read_bytes(), name


def test_a_failed_background_write_stops_training_and_the_run_resumes(tmp_path, make_spec, monkeypatch):
    """A trajectory write that fails on the writer thread (disk full at the 5th row) ends the job with that
    write's error, after the writes queued before it landed; the next job resumes to the same bytes as an
    uninterrupted run."""
    import errno

    from netdyn.trajectory import TrajectoryWriter

    specs = _specs(make_spec, "lenet")
    train_runs(specs, tmp_path / "ref", pack="always")
    real, calls = TrajectoryWriter.append_row, []

    def full_disk(self, row, **kw):
        calls.append(1)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, f"No space left on device: appending to {self.data_path}")
        return real(self, row, **kw)

    monkeypatch.setattr(TrajectoryWriter, "append_row", full_disk)
    with pytest.raises(OSError, match="No space left on device: appending to .*trajectory.bin"):
        train_runs(specs, tmp_path / "run", pack="always")
    assert not any((tmp_path / "run" / s.run_id / "result.json").exists() for s in specs)
    monkeypatch.setattr(TrajectoryWriter, "append_row", real)
    train_runs(specs, tmp_path / "run", pack="always")
    for spec in specs:
        _assert_same_run(tmp_path / "run", tmp_path / "ref", spec, atol=0.0)


# ------------------------------------------------------------------------------------------------------
# (e) finished runs are kept; a run id with other settings is refused

def test_finished_run_is_skipped(trained):
    out, specs = trained("lenet", "solo")
    spec = specs[0]
    d = out / spec.run_id
    old = 1_000_000_000
    for f in RUN_FILES:
        os.utime(d / f, (old, old))
    before = {f: (d / f).read_bytes() for f in RUN_FILES}
    results = train_runs([spec], out, pack="never")
    assert results == [json.loads(before["result.json"])]
    for f in RUN_FILES:
        assert (d / f).stat().st_mtime == old, f
        assert (d / f).read_bytes() == before[f], f


def test_other_settings_under_same_run_id_are_refused(trained, tmp_path):
    out, specs = trained("lenet", "solo")
    spec = specs[0]
    before = (out / spec.run_id / "trajectory.bin").read_bytes()
    changed = dataclasses.replace(spec, epochs=spec.epochs + 1)
    with pytest.raises(RunMismatchError) as err:  # finished run
        train_runs([changed], out, pack="never")
    assert spec.run_id in str(err.value) and "epochs" in str(err.value)
    assert (out / spec.run_id / "trajectory.bin").read_bytes() == before
    # an unfinished run directory (no result.json) is refused as well, and left as it was
    partial = tmp_path / "partial"
    (partial / spec.run_id).mkdir(parents=True)
    config = (out / spec.run_id / "config.json").read_text()
    (partial / spec.run_id / "config.json").write_text(config)
    with pytest.raises(RunMismatchError, match=spec.run_id):
        train_runs([dataclasses.replace(spec, momentum=0.5)], partial, pack="never")
    assert sorted(p.name for p in (partial / spec.run_id).iterdir()) == ["config.json"]
    assert (partial / spec.run_id / "config.json").read_text() == config


# ------------------------------------------------------------------------------------------------------
# (f) the documented files

def test_run_files_and_curves(trained):
    out, specs = trained("lenet", "solo")
    spec = specs[1]
    d = out / spec.run_id
    assert sorted(p.name for p in d.iterdir()) == sorted(RUN_FILES)  # no checkpoint, lock or .tmp left
    config = json.loads((d / "config.json").read_text())
    assert config["run"] == spec.to_dict()
    traj = Trajectory.open(d)
    assert traj.arch == config["model"]

    curves = _curves(out, spec)
    assert list(curves.columns) == CURVE_COLUMNS
    # 22 steps per epoch (1347 digits, batch 64); two snapshots in epoch 1, then one per epoch
    assert curves["epoch"].tolist() == [0.0, 0.5, 1.0, 2.0]
    assert curves["step"].tolist() == [0, 11, 22, 44]
    assert curves["snapshot"].tolist() == list(range(len(traj))) == traj.snapshots["index"].tolist()
    assert traj.snapshots["epoch"].tolist() == curves["epoch"].tolist()
    assert traj.snapshots["step"].tolist() == curves["step"].tolist()
    assert len(traj) == snapshots_per_run(spec)
    assert (curves["lr"] == spec.learning_rate).all()
    assert math.isnan(curves["train_loss"][0]) and math.isnan(curves["train_acc"][0])  # nothing trained yet
    later = curves.iloc[1:]
    assert later[["train_loss", "train_acc", "test_loss", "test_acc"]].notna().all().all()
    assert ((later["train_acc"] >= 0) & (later["train_acc"] <= 1)).all()
    assert curves["test_acc"].iloc[-1] > curves["test_acc"].iloc[0]  # it learned something

    # snapshot 0 is the initial network
    assert traj.snapshots["label"][0] == "init"
    _, test, info = load_dataset("digits", image_size=spec.image_size)
    init = init_model(spec, info).state_dict()
    for name, v in traj.state_dict(0).items():
        assert torch.equal(v, init[name]), name
    # the stored last snapshot reproduces the recorded test accuracy
    with torch.no_grad():
        acc = (traj.model(-1)(test.x.double()).argmax(1) == test.y).double().mean().item()
    assert acc == pytest.approx(curves["test_acc"].iloc[-1], abs=1e-12)

    res = _result(out, spec)
    assert res["run_id"] == spec.run_id and res["status"] == "complete" and res["diverged_epoch"] is None
    assert res["epochs_completed"] == spec.epochs
    assert res["n_snapshots"] == len(traj)
    assert res["trajectory_bytes"] == (d / "trajectory.bin").stat().st_size == traj.matrix.nbytes
    assert res["final_test_acc"] == curves["test_acc"].iloc[-1]
    assert res["best_test_acc"] == curves["test_acc"].max()
    assert res["last_snapshot_epoch"] == 2.0


# ------------------------------------------------------------------------------------------------------
# (g) what one run computes: torch.optim.SGD on the documented minibatch stream

@pytest.mark.parametrize("arch", ["lenet", "vgg11bn"])
def test_solo_run_is_plain_sgd(make_spec, tmp_path, arch):
    """A run (a pack of one) ends where torch.optim.SGD ends on the same init, minibatches, crops and loss
    (float64, no dropout: nn.Dropout draws from another generator than the hashed masks)."""
    spec = make_spec(arch, lr=0.1, wd=5e-3, momentum=0.8, seed=6, epochs=1)
    train_runs([spec], tmp_path, pack="never")
    train, test, info = load_dataset("digits", image_size=spec.image_size)
    model = init_model(spec, info).train()
    opt = torch.optim.SGD(model.parameters(), lr=spec.learning_rate, momentum=spec.momentum,
                          weight_decay=spec.weight_decay)
    pad = spec.crop_padding
    padded = torch.nn.functional.pad(train.x.double(), (pad,) * 4)
    perm, oy, ox, flip = epoch_stream(spec, 1, len(train))
    loss_sum = correct = 0.0
    for start in range(0, len(train), spec.batch_size):
        sl = slice(start, start + spec.batch_size)
        x = augment(padded, perm[sl], oy[sl], ox[sl], flip[sl], spec.image_size)
        y = train.y[perm[sl]]
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(y)
        correct += (out.argmax(1) == y).sum().item()
    traj = Trajectory.open(tmp_path / spec.run_id)
    final = traj.state_dict(-1)
    for name, v in model.state_dict().items():
        torch.testing.assert_close(final[name], v, rtol=0, atol=ATOL)
    curves = _curves(tmp_path, spec)
    assert curves["train_loss"].iloc[-1] == pytest.approx(loss_sum / len(train), abs=ATOL)
    assert curves["train_acc"].iloc[-1] == pytest.approx(correct / len(train), abs=1e-12)
    model.eval()
    with torch.no_grad():
        out = model(test.x.double())
    assert curves["test_acc"].iloc[-1] == pytest.approx((out.argmax(1) == test.y).double().mean().item(), abs=1e-12)
    assert curves["test_loss"].iloc[-1] == pytest.approx(
        torch.nn.functional.cross_entropy(out, test.y).item(), abs=ATOL)


def test_epoch_stream_depends_on_seed_and_epoch_only(make_spec):
    a = make_spec("lenet", seed=1)
    same_seed_other_run = make_spec("lenet", seed=1, lr=0.3, dropout=0.5)
    n = 100
    s1 = epoch_stream(a, 1, n)
    for x, y in zip(s1, epoch_stream(same_seed_other_run, 1, n)):
        assert torch.equal(x, y)
    assert sorted(s1[0].tolist()) == list(range(n))
    assert 0 <= int(s1[1].min()) and int(s1[1].max()) <= 2 * a.crop_padding
    assert not s1[3].any()  # flip is off in the tiny config
    assert not torch.equal(s1[0], epoch_stream(a, 2, n)[0])
    assert not torch.equal(s1[0], epoch_stream(make_spec("lenet", seed=2), 1, n)[0])


# ------------------------------------------------------------------------------------------------------
# (h) trainer hooks (the benchmark's way in): called where documented, training unchanged

def test_trainer_hooks_are_called_in_order_and_change_nothing(tmp_path, make_spec):
    from netdyn.train import PackTrainer, TrainerHooks

    spec = make_spec("lenet", lr=0.05, seed=3, epochs=2, dtype="float32", subepoch_snapshots=2, subepoch_epochs=1)
    train, test, info = load_dataset("digits", image_size=16)
    steps_per_epoch = math.ceil(len(train) / spec.batch_size)

    class Record(TrainerHooks):
        def __init__(self):
            self.calls = []

        def on_step_end(self, step):
            self.calls.append(("step", step))

        def on_snapshot_end(self, epoch):
            self.calls.append(("snapshot", epoch))

        def on_epoch_end(self, epoch):
            self.calls.append(("epoch", epoch))

    rec = Record()
    PackTrainer([spec], train, test, info, tmp_path / "hooked", torch.device("cpu"), hooks=rec).fit()
    half = round(steps_per_epoch / 2)
    expected = [("snapshot", 0.0)]
    for epoch in (1, 2):
        for step in range(1, steps_per_epoch + 1):
            expected.append(("step", (epoch - 1) * steps_per_epoch + step))
            if epoch == 1 and step == half:
                expected.append(("snapshot", 0.5))
        expected += [("snapshot", float(epoch)), ("epoch", epoch)]
    assert rec.calls == expected

    train_runs([spec], tmp_path / "plain", pack="never")
    for name in ("trajectory.bin", "curves.csv"):
        assert (tmp_path / "hooked" / spec.run_id / name).read_bytes() == \
            (tmp_path / "plain" / spec.run_id / name).read_bytes()
