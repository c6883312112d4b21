"""Tests for netdyn.rundir: file names, atomic writes, readers, the snapshot schedule, the checks made when a
trajectory is opened, finished-run verification, per-run locks and checkpoints with their fallback."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

import netdyn.rundir as R
from netdyn.models import build_model
from netdyn.rundir import checkpoint as C
from netdyn.rundir import lock as L
from netdyn.trajectory import Trajectory, TrajectoryError, TrajectoryWriter

RUN = "vgg11bn-digits-w1-lr0.1-do0-wd0-s0"
VGG = {"arch": "vgg", "width": 1, "depth": 11, "batchnorm": True, "in_channels": 1, "num_classes": 10,
       "image_size": 8, "dropout": 0.0}


def _write_run(root, n=3, dtype="float32", name=RUN):
    """A run directory as training leaves it: trajectory, config.json, curves.csv, result.json."""
    torch.manual_seed(0)
    model = build_model(**VGG).to(getattr(torch, dtype))
    d = root / name
    w = TrajectoryWriter(d, model.state_dict(), run_id=name, arch=VGG, dtype=dtype)
    curves = []
    for i in range(n):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)
        w.append(model.state_dict(), epoch=float(i), step=10 * i, label=f"epoch {i}")
        curves.append({"snapshot": i, "epoch": float(i), "step": 10 * i, "lr": 0.1, "train_loss": 1.0 / (i + 1),
                       "train_acc": 0.5, "test_loss": 1.0, "test_acc": 0.5})
    R.write_config(d, {"run": {"run_id": name}, "model": VGG})
    R.write_curves(d, curves)
    R.write_result(d, {"run_id": name, "status": "complete", "n_snapshots": n,
                       "trajectory_bytes": (d / R.TRAJECTORY_DATA).stat().st_size})
    return d


class _Spec:
    """The RunSpec fields verify_finished and check_same_run read."""

    def __init__(self, **fields):
        self.fields = fields
        self.run_id = fields.get("run_id", RUN)
        self.epochs = fields.get("epochs", 2)

    def to_dict(self):
        return dict(self.fields)


# ------------------------------------------------------------------------------------------------------
# names and the torch-free part

def test_file_names_are_the_documented_ones():
    assert set(R.RUN_OUTPUTS) == {"config.json", "curves.csv", "trajectory.bin", "trajectory.json", "result.json"}
    assert (R.CHECKPOINT, R.CHECKPOINT_PREVIOUS, R.CHECKPOINT_INFO, R.LOCK) == (
        "checkpoint.safetensors", "checkpoint.previous.safetensors", "checkpoint.json", "train.lock")
    assert R.run_dir("results/tiny/runs", RUN) == R.run_dir("results/tiny/runs", RUN).parent / RUN


def test_names_and_small_readers_import_without_torch(tmp_path):
    """Snakefiles and the prediction stage import netdyn.rundir; torch loads only for trajectories."""
    d = tmp_path / RUN
    d.mkdir()
    (d / "result.json").write_text('{"status": "complete"}')
    (d / "curves.csv").write_text("snapshot,epoch\n0,0.0\n")
    code = "\n".join([
        "import sys", "sys.modules['torch'] = None",
        "import netdyn.rundir as R",
        f"d = R.run_dir({str(tmp_path)!r}, {RUN!r})",
        "assert R.read_result(d) == {'status': 'complete'}, R.read_result(d)",
        "assert R.read_curves(d)['epoch'].tolist() == [0.0]",
        "assert R.RESULT == 'result.json' and R.LOCK == 'train.lock'",
        "assert R.in_window([0.5, 1.0, 2.0], 1).tolist() == [True, True, False]",
        "try:\n    R.open_trajectory\nexcept ImportError:\n    print('torch needed')",
        "print('ok')"])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(__file__)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["torch", "needed", "ok"]  # blocking torch was effective


# ------------------------------------------------------------------------------------------------------
# small files

def test_atomic_write_keeps_the_old_file_when_the_disk_is_full(tmp_path, monkeypatch):
    d = tmp_path / RUN
    d.mkdir()
    R.write_result(d, {"status": "complete", "n_snapshots": 3})
    before = (d / "result.json").read_bytes()
    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:5])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(R.files, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)
    with pytest.raises(OSError) as err:
        R.write_result(d, {"status": "diverged"})
    assert err.value.errno == errno.ENOSPC
    assert RUN in str(err.value) and str(d / "result.json") in str(err.value) and "disk is full" in str(err.value)
    assert (d / "result.json").read_bytes() == before
    assert sorted(p.name for p in d.iterdir()) == ["result.json"]  # no .tmp left behind


def test_result_json_is_strict_and_curves_round_trip_exactly(tmp_path):
    d = tmp_path / RUN
    d.mkdir()
    R.write_result(d, {"final_test_loss": float("nan"), "best": float("inf"), "acc": 0.1 + 0.2, "n": 3})
    text = (d / "result.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"final_test_loss": None, "best": None, "acc": 0.1 + 0.2, "n": 3}
    rows = [{"snapshot": 0, "epoch": 0.0, "step": 0, "lr": 0.1, "train_loss": math.nan, "train_acc": math.nan,
             "test_loss": 2.302585092994046, "test_acc": 1 / 3},
            {"snapshot": -1, "epoch": 1 / 3, "step": 7, "lr": 0.1, "train_loss": 1e300, "train_acc": 0.1 + 0.2,
             "test_loss": math.inf, "test_acc": 0.1}]
    R.write_curves(d, rows)
    back = R.read_curves(d)
    assert list(back.columns) == R.CURVE_COLUMNS
    expected = pd.DataFrame(rows, columns=R.CURVE_COLUMNS)
    np.testing.assert_array_equal(back.to_numpy(float), expected.to_numpy(float))  # bit-exact, NaN == NaN


def test_read_errors_name_run_and_file(tmp_path):
    d = tmp_path / RUN
    with pytest.raises(R.RunMissingError) as err:
        R.read_result(d)
    assert RUN in str(err.value) and str(d / "result.json") in str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(R.RunMissingError, match=RUN):
        R.read_curves(d)
    d.mkdir()
    (d / "config.json").write_text('{"run": ')
    with pytest.raises(R.RunFileError) as err:
        R.read_config(d)
    assert RUN in str(err.value) and str(d / "config.json") in str(err.value)


def test_check_same_run(tmp_path):
    d = tmp_path / RUN
    spec = _Spec(run_id=RUN, epochs=2, dtype="float32", precision="tf32")
    R.check_same_run(d, spec)  # nothing there: nothing to compare
    d.mkdir()
    R.write_config(d, {"run": {"run_id": RUN, "epochs": 2, "dtype": "float32"}})  # before the precision key
    R.check_same_run(d, spec)
    with pytest.raises(R.RunMismatchError) as err:
        R.check_same_run(d, _Spec(run_id=RUN, epochs=3, dtype="float32", precision="tf32"))
    assert RUN in str(err.value) and "epochs" in str(err.value) and "(2, 3)" in str(err.value)


# ------------------------------------------------------------------------------------------------------
# the snapshot schedule

def test_snapshot_steps_and_epochs(make_spec):
    spec = make_spec("lenet", epochs=3, subepoch_snapshots=4, subepoch_epochs=2)
    assert R.snapshot_steps(spec, 22, 1) == {6: 0.25, 11: 0.5, 16: 0.75, 22: 1.0}  # round(j * 22 / 4)
    assert R.snapshot_steps(spec, 22, 2) == {6: 1.25, 11: 1.5, 16: 1.75, 22: 2.0}
    assert R.snapshot_steps(spec, 22, 3) == {22: 3.0}
    assert R.snapshot_epochs(spec, 22) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 3.0]
    assert R.snapshots_per_run(spec) == 10
    # an epoch of fewer steps than sub-epoch snapshots: steps coincide, and only snapshot_epochs counts them
    assert R.snapshot_epochs(spec, 2) == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


def test_window_and_epoch_picking():
    thirds = [0.0, 1 / 3, 2 / 3, 1.0, 1 / 3 + 1 / 3 + 1 / 3 + 1e-12, 2.0]
    assert R.in_window(thirds, 1).tolist() == [True, True, True, True, True, False]
    assert R.in_window(thirds, 0.5).tolist() == [True, True, False, False, False, False]
    assert R.epoch_key(2 / 3) == 0.666667 and list(R.epoch_key(pd.Series([1 / 3]))) == [0.333333]
    assert R.snapshot_at(thirds, 1.0) == 4  # the last of the equal labels
    assert R.snapshot_at(thirds, 0.666667) == 2
    assert R.snapshot_at(thirds, 1.5) is None


# ------------------------------------------------------------------------------------------------------
# opening a trajectory: every tensor checked before anything is read

def _edit_manifest(d, edit):
    path = d / R.TRAJECTORY_MANIFEST
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))
    return path


def _tensor(m, name):
    return next(t for t in m["tensors"] if t["name"] == name)


def _shift(m, name, by):
    _tensor(m, name)["offset"] += by


CORRUPTIONS = {  # what is changed -> (edit, words the message must hold besides run and file)
    "offset": (lambda m: _shift(m, "features.4.weight", 1), ["'features.4.weight'", "offset"]),
    "offset of the last": (lambda m: _shift(m, "classifier.5.bias", -10), ["'classifier.5.bias'", "offset"]),
    "shape": (lambda m: _tensor(m, "features.0.weight").update(shape=[4, 2, 3, 3]), ["'features.0.weight'", "shape"]),
    "numel": (lambda m: _tensor(m, "features.1.bias").update(numel=7), ["'features.1.bias'", "numel"]),
    "float dtype": (lambda m: _tensor(m, "features.0.weight").update(dtype="float64"), ["'features.0.weight'", "dtype"]),
    "int dtype": (lambda m: _tensor(m, "features.1.num_batches_tracked").update(dtype="float32"),
                  ["'features.1.num_batches_tracked'", "dtype"]),
    "name": (lambda m: _tensor(m, "features.0.weight").update(name="features.0.kernel"), ["features.0.kernel"]),
    "missing tensor": (lambda m: m["tensors"].pop(3), ["missing"]),
    "architecture": (lambda m: m.update(arch={**VGG, "depth": 13}), ["does not belong"]),
    "unbuildable": (lambda m: m.update(arch={**VGG, "arch": "transformer"}), ["cannot be built"]),
    "row dtype": (lambda m: m.update(dtype="float16"), ["float16"]),
    "snapshot index": (lambda m: m["snapshots"][1].update(index=5), ["snapshot table"]),
    "no tensors key": (lambda m: m.pop("tensors"), ["corrupt"]),
}


@pytest.mark.parametrize("what", list(CORRUPTIONS))
def test_a_wrong_manifest_fails_at_open_naming_run_file_and_tensor(tmp_path, what):
    d = _write_run(tmp_path)
    Trajectory.open(d)  # intact, it opens
    edit, words = CORRUPTIONS[what]
    mpath = _edit_manifest(d, edit)
    for opener in (Trajectory.open, R.open_trajectory):
        with pytest.raises(TrajectoryError) as err:
            opener(d)
        msg = str(err.value)
        assert RUN in msg and (str(mpath) in msg or str(d / R.TRAJECTORY_DATA) in msg), msg
        for w in words:
            assert w in msg, (w, msg)


def test_wrong_offset_that_keeps_the_file_size_is_caught(tmp_path):
    """Two tensors' offsets swapped: sizes and total agree, only the slicing would be wrong."""
    d = _write_run(tmp_path)

    def swap(m):
        a, b = _tensor(m, "features.1.weight"), _tensor(m, "features.1.bias")  # both 8 values
        a["offset"], b["offset"] = b["offset"], a["offset"]

    mpath = _edit_manifest(d, swap)
    with pytest.raises(TrajectoryError, match=rf"{RUN}.*'features.1.weight' of {mpath}.*offset"):
        R.open_trajectory(d)


def test_float64_store_and_int_buffers_pass(tmp_path):
    d = _write_run(tmp_path, dtype="float64")
    traj = R.open_trajectory(d)
    assert traj.matrix.dtype == np.float64 and len(traj) == 3
    sd = traj.state_dict(2)
    assert sd["features.1.num_batches_tracked"].dtype == torch.int64
    np.testing.assert_array_equal(traj.row_tensors(traj.flat(1))["features.1.bias"], traj.tensor("features.1.bias")[1])


@pytest.mark.parametrize("change", ["fewer", "more", "bytes"])
def test_result_disagreeing_with_the_trajectory_is_named(tmp_path, change):
    d = _write_run(tmp_path)
    res = R.read_result(d)
    if change == "fewer":
        res["n_snapshots"] = 4
    elif change == "more":
        res["n_snapshots"] = 2
    else:
        res["trajectory_bytes"] += 4
    R.write_result(d, res)
    with pytest.raises(TrajectoryError) as err:
        R.open_trajectory(d)
    msg = str(err.value)
    assert RUN in msg and str(d / "trajectory.bin") in msg and str(d / "result.json") in msg, msg
    if change == "fewer":
        assert "truncated" in msg


def test_config_or_caller_architecture_must_match(tmp_path):
    d = _write_run(tmp_path)
    R.open_trajectory(d, arch={**VGG, "dropout": 0.5})  # dropout shapes no tensor
    with pytest.raises(TrajectoryError, match=rf"{RUN}.*trajectory\.json.*requested"):
        R.open_trajectory(d, arch={**VGG, "width": 2})
    R.write_config(d, {"model": {**VGG, "batchnorm": False}})
    with pytest.raises(TrajectoryError, match=rf"{RUN}.*config\.json"):
        R.open_trajectory(d)


# ------------------------------------------------------------------------------------------------------
# a finished run is verified before it is kept

def test_verify_finished(tmp_path):
    d = _write_run(tmp_path)
    assert R.verify_finished(d, _Spec(epochs=2))["status"] == "complete"
    with pytest.raises(TrajectoryError, match=rf"{RUN}.*result\.json says complete.*epoch 5.*delete"):
        R.verify_finished(d, _Spec(epochs=5))
    curves = R.read_curves(d)
    R.write_curves(d, curves.iloc[:-1].to_dict("records"))
    with pytest.raises(TrajectoryError) as err:
        R.verify_finished(d)
    assert RUN in str(err.value) and str(d / "curves.csv") in str(err.value)
    assert str(d / "result.json") in str(err.value)  # how to retrain it
    (d / "curves.csv").unlink()
    with pytest.raises(TrajectoryError, match=rf"{RUN}.*curves\.csv is missing"):
        R.verify_finished(d)


# ------------------------------------------------------------------------------------------------------
# one writer per run

HOLDER = r"""
import sys, time
from netdyn.rundir import RunLocks
locks = RunLocks(sys.argv[1:]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def _holder(child_env, *dirs):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, *map(str, dirs)], env=child_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "locked", proc.stderr.read()
    return proc


def test_lock_is_exclusive_between_processes_and_freed_by_death(tmp_path, child_env):
    a, b = tmp_path / "run-a", tmp_path / "run-b"
    proc = _holder(child_env, b)
    try:
        info = json.loads((b / R.LOCK).read_text())
        assert info["pid"] == proc.pid and info["host"] == socket.gethostname()
        t = time.monotonic()
        with pytest.raises(R.RunLockedError) as err:
            R.RunLocks([a, b]).acquire()
        assert time.monotonic() - t < 5  # it does not wait for the holder
        msg = str(err.value)
        assert "run-b" in msg and str(b / R.LOCK) in msg and f"pid {proc.pid}" in msg and socket.gethostname() in msg
        assert not R.holds(a) and not (a / R.LOCK).exists()  # all or none: run-a was let go again
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (b / R.LOCK).exists()  # a killed holder leaves its file behind ...
    with R.RunLocks([a, b]):  # ... and its lock is free: taken over
        assert R.holds(a) and R.holds(b)
        assert json.loads((b / R.LOCK).read_text())["pid"] == os.getpid()
        with R.RunLocks([b]):  # held by this process already: a no-op, and it stays held
            pass
        assert R.holds(b)
    assert not R.holds(b) and not (b / R.LOCK).exists()


def test_lock_file_replaced_between_open_and_flock_is_locked_again(tmp_path, monkeypatch):
    """A holder letting go deletes the file; a taker that opened it just before must not keep the stale inode."""
    d = tmp_path / RUN
    d.mkdir()
    real_flock, calls = L.fcntl.flock, []

    def racing_flock(fd, op):
        calls.append(fd)
        if len(calls) == 1:  # the previous holder deletes the file, a third process creates a new one
            (d / R.LOCK).unlink()
            (d / R.LOCK).write_text("")
        return real_flock(fd, op)

    monkeypatch.setattr(L.fcntl, "flock", racing_flock)
    with R.RunLocks([d]):
        assert len(calls) == 2
        fd = L._HELD[L.Path(os.path.abspath(d)) / R.LOCK]
        assert os.path.samestat(os.fstat(fd), os.stat(d / R.LOCK))


# ------------------------------------------------------------------------------------------------------
# checkpoints

def _state(v):
    return {"w": torch.full((4, 3), float(v)), "momentum::w": torch.full((4, 3), -float(v))}


def test_checkpoint_falls_back_to_the_previous_epoch(tmp_path, caplog):
    d = _write_run(tmp_path, n=3)
    C.save_checkpoint(d, _state(1), {"epoch": 1, "step": 10, "n_snapshots": 2, "curves": [], "elapsed": 1.0})
    assert C.resume_point(d).meta["epoch"] == 1 and not (d / R.CHECKPOINT_PREVIOUS).exists()
    C.save_checkpoint(d, _state(2), {"epoch": 2, "step": 20, "n_snapshots": 3, "curves": [], "elapsed": 2.0})
    ckpt = C.resume_point(d)
    assert ckpt.path == d / R.CHECKPOINT and ckpt.meta["epoch"] == 2
    assert torch.equal(ckpt.load()["w"], _state(2)["w"])
    assert json.loads((d / R.CHECKPOINT_INFO).read_text())["epoch"] == 2
    data = (d / R.CHECKPOINT).read_bytes()
    (d / R.CHECKPOINT).write_bytes(data[:len(data) // 2])  # cut
    with caplog.at_level("WARNING", logger="netdyn.rundir"):
        ckpt = C.resume_point(d)
    assert ckpt.path == d / R.CHECKPOINT_PREVIOUS and ckpt.meta["epoch"] == 1
    assert torch.equal(ckpt.load()["momentum::w"], _state(1)["momentum::w"])
    assert RUN in caplog.text and str(d / R.CHECKPOINT) in caplog.text
    # a checkpoint that counts more snapshots than the trajectory holds is not used either
    (d / R.CHECKPOINT).write_bytes(data)
    TrajectoryWriter(d, {}, run_id=RUN, arch=VGG, resume=True).truncate(2)
    assert C.resume_point(d).meta["epoch"] == 1
    (d / R.CHECKPOINT_PREVIOUS).write_bytes(b"\0" * 7)
    assert C.resume_point(d) is None  # nothing usable: the run starts over
    assert "starts over" in caplog.text
    C.clear_checkpoint(d)
    assert not any((d / n).exists() for n in R.TRAINING_STATE)


def test_checkpoint_write_failure_names_run_and_file(tmp_path, monkeypatch):
    d = tmp_path / RUN
    d.mkdir()
    C.save_checkpoint(d, _state(1), {"epoch": 1, "step": 10, "n_snapshots": 0, "curves": [], "elapsed": 1.0})
    before = (d / R.CHECKPOINT).read_bytes()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(C, "open", full, raising=False)
    with pytest.raises(OSError) as err:
        C.save_checkpoint(d, _state(2), {"epoch": 2, "step": 20, "n_snapshots": 0, "curves": [], "elapsed": 2.0})
    assert err.value.errno == errno.ENOSPC and RUN in str(err.value) and str(d / R.CHECKPOINT) in str(err.value)
    assert (d / R.CHECKPOINT).read_bytes() == before and not (d / (R.CHECKPOINT + ".tmp")).exists()


# --------------------------------------------------------------------------------------------------------
# background writes (netdyn.rundir.background): order kept, queue bounded, failures raised in the caller

def test_background_writes_keep_their_order_and_a_bounded_queue():
    import threading

    from netdyn.rundir.background import BackgroundWrites

    done, gate = [], threading.Event()
    io = BackgroundWrites(max_pending=3)
    io.submit(gate.wait)  # the writer thread blocks here until released
    for i in range(2):
        io.submit(done.append, i)
    assert done == []  # nothing passes the blocked first write
    released = threading.Timer(0.2, gate.set)
    released.start()
    t = time.perf_counter()
    io.submit(done.append, 2)  # a fourth write: the caller waits for the queue to shrink to max_pending
    assert time.perf_counter() - t > 0.1 and len(io._pending) <= 3
    io.close()
    assert done == [0, 1, 2]


def test_a_failed_background_write_is_raised_in_the_caller_and_ends_the_sequence():
    """The writes queued after a failed one are dropped: what is on disk is a prefix of the sequence, as a kill
    leaves it (a later row of the same run must not land in the failed row's place)."""
    import threading

    from netdyn.rundir.background import BackgroundWrites

    def fail():
        raise OSError(errno.ENOSPC, "No space left on device: run r1, file trajectory.bin")

    done = []

    def queue_a_failure(io):  # the writer is held until all three are queued, so none fails early
        gate = threading.Event()
        io.submit(gate.wait)
        io.submit(fail)
        io.submit(done.append, "after the failure")
        gate.set()
        return io

    io = queue_a_failure(BackgroundWrites())
    with pytest.raises(OSError, match="run r1, file trajectory.bin"):
        io.drain()
    io.close()
    queue_a_failure(BackgroundWrites()).close(raise_errors=False)  # another error is on its way: logged only
    assert done == []
    inline = BackgroundWrites(enabled=False)  # off: each write at once, in the caller
    with pytest.raises(OSError):
        inline.submit(fail)
