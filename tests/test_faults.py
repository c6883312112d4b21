"""Fault injection at the trainer: a second writer, orphans, kills at the worst moments, a full disk, damaged
checkpoints and manifests, and a run that diverges while its loss stays finite. Each case ends with a clear
message naming run and file, or with an automatic recovery whose files equal those of an uninterrupted
run: nothing already computed is lost. (Snakemake-level cases are in the workflow tests.)"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

import netdyn.rundir as R
import netdyn.train as T
import netdyn.trajectory as TJ
from netdyn.rundir.checkpoint import resume_point
from netdyn.train import train_runs
from netdyn.trajectory import Trajectory, TrajectoryError

SCHEDULE = dict(epochs=3, subepoch_snapshots=2, subepoch_epochs=2)  # snapshots at 0, .5, 1, 1.5, 2, 3
EPOCHS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
GOOD = [dict(lr=0.05, seed=0), dict(lr=0.1, dropout=0.5, wd=1e-3, seed=1)]
# float64, lr 1: the minibatch loss passes DIVERGED_LOSS in epoch 1 (~7e10 by its end) without overflowing
FINITE_DIVERGER = dict(lr=1.0, seed=3)
TAME = dict(lr=0.01, seed=3)

CHILD = r"""
import json, os, pathlib, signal, sys, time
import torch
torch.set_num_threads(1)
from netdyn.config import RunSpec
from netdyn import train as T
import netdyn.rundir.checkpoint as C

specs_file, out, pack, how, *where = sys.argv[1:]
specs = [RunSpec.from_dict(d) for d in json.load(open(specs_file))]
flag = lambda name: pathlib.Path(out, name)

def pause():  # everything so far is on disk: wait to be killed, or told to go on
    flag("PAUSED").write_text(str(os.getpid()))
    while not flag("GO").exists():
        time.sleep(0.02)

if how == "pause":  # right after the snapshot with this epoch label
    snapshot = T.PackTrainer._snapshot
    def paused(self, label, *args, **kwargs):
        snapshot(self, label, *args, **kwargs)
        if label == float(where[0]):
            pause()
    T.PackTrainer._snapshot = paused
elif how == "kill_rename":  # SIGKILL itself just before the nth rename of a file called where[0]
    replace, calls = pathlib.Path.replace, []
    def killing_replace(self, target):
        if self.name == where[0]:
            calls.append(1)
            if len(calls) == int(where[1]):
                os.kill(os.getpid(), signal.SIGKILL)
        return replace(self, target)
    pathlib.Path.replace = killing_replace
elif how == "kill_writing":  # SIGKILL itself half-way through writing the nth checkpoint file
    real_open, calls = open, []
    class Half:
        def __init__(self, f):
            self.f = f
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.f.close()
        def write(self, data):
            calls.append(1)
            if len(calls) == int(where[0]):
                self.f.write(data[:len(data) // 2])
                self.f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return self.f.write(data)
    C.open = lambda *a, **k: Half(real_open(*a, **k))

T.train_runs(specs, out, pack=pack)
flag("FINISHED").touch()
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(specs, pack) -> directory of the same runs trained without interruption (trained once)."""
    cache = {}

    def get(specs, pack):
        key = (tuple(s.run_id for s in specs), pack)
        if key not in cache:
            cache[key] = tmp_path_factory.mktemp("reference")
            train_runs(specs, cache[key], pack=pack)
        return cache[key]

    return get


def _specs(make_spec, members, dtype="float32"):
    return [make_spec("lenet", **m, dtype=dtype, **SCHEDULE) for m in members]


def _child(tmp_path, child_env, specs, out, pack, *how) -> subprocess.Popen:
    out.mkdir(exist_ok=True)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    specs_file = tmp_path / "specs.json"
    specs_file.write_text(json.dumps([s.to_dict() for s in specs]))
    return subprocess.Popen([sys.executable, str(script), str(specs_file), str(out), pack, *map(str, how)],
                            env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_paused(proc, out):
    deadline = time.monotonic() + 180  # a guard against hanging, not a timing assertion
    while not (out / "PAUSED").exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the child never reached its pause point"
        time.sleep(0.05)


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _files(out, specs):
    return {(s.run_id, p.name): p.read_bytes() for s in specs for p in sorted((out / s.run_id).iterdir())}


def _assert_identical(out, ref, specs):
    """Byte-equal trajectories and curves, equal manifests, configs and results (but for wall time); no
    training state or lock left."""
    for s in specs:
        a, b = out / s.run_id, ref / s.run_id
        assert sorted(p.name for p in a.iterdir()) == sorted(R.RUN_OUTPUTS), s.run_id
        for name in (R.TRAJECTORY_DATA, R.CURVES):
            assert (a / name).read_bytes() == (b / name).read_bytes(), (s.run_id, name)
        for name in (R.TRAJECTORY_MANIFEST, R.CONFIG):
            assert json.loads((a / name).read_text()) == json.loads((b / name).read_text()), (s.run_id, name)
        ra, rb = R.read_result(a), R.read_result(b)
        ra.pop("wall_seconds"), rb.pop("wall_seconds")
        assert ra == rb, s.run_id
        assert Trajectory.open(a).snapshots["epoch"].tolist() == EPOCHS or ra["status"] == "diverged"


# ------------------------------------------------------------------------------------------------------
# one writer per run

def test_a_second_writer_stops_at_once_and_the_first_finishes(tmp_path, make_spec, child_env, reference):
    specs = _specs(make_spec, GOOD)
    out = tmp_path / "out"
    first = _child(tmp_path, child_env, specs, out, "always", "pause", 1.5)
    try:
        _wait_paused(first, out)
        before = _files(out, specs)
        t = time.monotonic()
        second = _child(tmp_path, child_env, specs, out, "always", "plain")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 1 and time.monotonic() - t < 60, err[-3000:]
        run = specs[0].run_id
        assert "RunLockedError" in err and f"run {run}" in err and str(out / run / R.LOCK) in err
        assert f"pid {first.pid} on host {socket.gethostname()}" in err
        assert _files(out, specs) == before  # the second process wrote nothing
        (out / "GO").touch()
        first.communicate(timeout=180)
        assert first.returncode == 0 and (out / "FINISHED").exists()
    finally:
        if first.poll() is None:
            _kill(first)
    _assert_identical(out, reference(specs, "always"), specs)


def test_an_orphan_keeps_the_run_until_it_dies_then_the_rerun_resumes(tmp_path, make_spec, child_env, reference):
    """kill -9 of the workflow leaves its training process running (an orphan); a rerun must not write the
    same run. Once the orphan is killed too, its lock is taken over and the run resumes from its checkpoint."""
    specs = _specs(make_spec, GOOD)
    out = tmp_path / "out"
    orphan = _child(tmp_path, child_env, specs, out, "always", "pause", 1.5)
    try:
        _wait_paused(orphan, out)
        before = _files(out, specs)
        with pytest.raises(R.RunLockedError) as err:
            train_runs(specs, out, pack="always")
        assert f"pid {orphan.pid}" in str(err.value) and str(out / specs[0].run_id / R.LOCK) in str(err.value)
        assert _files(out, specs) == before
    finally:
        _kill(orphan)
    for s in specs:
        assert json.loads((out / s.run_id / R.LOCK).read_text())["pid"] == orphan.pid  # stale: taken over below
        assert resume_point(out / s.run_id).meta["epoch"] == 1  # epoch 1 is kept, not recomputed
    train_runs(specs, out, pack="always")
    _assert_identical(out, reference(specs, "always"), specs)


# ------------------------------------------------------------------------------------------------------
# divergence

def test_a_finite_loss_past_the_threshold_is_divergence_and_pack_mates_are_unaffected(
        tmp_path, make_spec, reference, monkeypatch):
    good0, bad, good1 = specs = _specs(make_spec, [GOOD[0], FINITE_DIVERGER, GOOD[1]], dtype="float64")
    control = _specs(make_spec, [GOOD[0], TAME, GOOD[1]], dtype="float64")
    out, ctrl = reference(specs, "always"), reference(control, "always")
    res = R.read_result(out / bad.run_id)
    assert res["status"] == "diverged" and res["diverged_epoch"] == 1.0 and res["epochs_completed"] == 0
    curves = R.read_curves(out / bad.run_id)
    assert curves["snapshot"].tolist() == [0, 1, -1]  # measured at divergence, weights not kept
    assert curves["test_loss"].notna().all() and (curves["test_loss"].abs() < float("inf")).all()  # finite
    assert len(Trajectory.open(out / bad.run_id)) == res["n_snapshots"] == 2
    for s in (good0, good1):
        assert R.read_result(out / s.run_id)["status"] == "complete"
        for name in (R.TRAJECTORY_DATA, R.CURVES):  # exactly what they compute next to a tame member
            assert (out / s.run_id / name).read_bytes() == (ctrl / s.run_id / name).read_bytes(), name
    # the threshold is what stopped it: without one, the same run trains on with finite losses above it
    threshold = T.DIVERGED_LOSS
    monkeypatch.setattr(T, "DIVERGED_LOSS", float("inf"))
    train_runs([bad], tmp_path / "no-threshold", pack="never")
    free = R.read_curves(tmp_path / "no-threshold" / bad.run_id)
    assert R.read_result(tmp_path / "no-threshold" / bad.run_id)["status"] == "complete"
    losses = free["train_loss"].dropna()
    assert (losses < float("inf")).all() and (losses > threshold).any()


def test_a_pack_killed_after_a_member_diverged_resumes_to_the_same_result(
        tmp_path, make_spec, child_env, reference, caplog):
    specs = _specs(make_spec, [GOOD[0], FINITE_DIVERGER, GOOD[1]], dtype="float64")
    out = tmp_path / "out"
    proc = _child(tmp_path, child_env, specs, out, "always", "pause", 3.0)  # epoch 2 checkpointed, 3.0 not
    try:
        _wait_paused(proc, out)
    finally:
        _kill(proc)
    metas = [resume_point(out / s.run_id).meta for s in specs]
    assert [m["epoch"] for m in metas] == [2, 2, 2]  # the diverged member checkpoints with its pack
    assert [m["diverged_at"] for m in metas] == [None, 1.0, None]
    with caplog.at_level("INFO", logger="netdyn.train"):
        train_runs(specs, out, pack="always")
    assert "training 3 run(s) together" in caplog.text  # resumed as the same pack
    _assert_identical(out, reference(specs, "always"), specs)


# ------------------------------------------------------------------------------------------------------
# a full disk

class _Disk:
    """Appends to trajectory.bin that succeed until `budget` bytes are written, then fail like a full disk."""

    def __init__(self, budget):
        self.left = budget

    def open(self, path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        return self.File(self, f) if str(path).endswith(R.TRAJECTORY_DATA) and "a" in mode else f

    class File:
        def __init__(self, disk, f):
            self.disk, self.f = disk, f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def __getattr__(self, name):
            return getattr(self.f, name)

        def write(self, data):
            n = min(len(data), self.disk.left)
            self.f.write(data[:n])
            self.disk.left -= n
            if n < len(data):
                self.f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            return n


def _row_bytes(spec):
    from netdyn.data import dataset_info
    from netdyn.member import init_model

    return sum(t.numel() for t in init_model(spec, dataset_info(spec.dataset, spec.image_size)).state_dict().values()) * 4


def test_disk_full_while_appending_a_snapshot(tmp_path, make_spec, reference, monkeypatch):
    specs = _specs(make_spec, GOOD)
    out = tmp_path / "out"
    row = _row_bytes(specs[0])
    disk = _Disk(int(6.5 * row))  # snapshots 0, .5, 1 of both members fit; member 0's 1.5 is cut half-way
    monkeypatch.setattr(TJ, "open", disk.open, raising=False)
    with pytest.raises(OSError) as err:
        train_runs(specs, out, pack="always")
    msg = str(err.value)
    run = out / specs[0].run_id
    assert err.value.errno == errno.ENOSPC and f"run {specs[0].run_id}" in msg
    assert str(run / R.TRAJECTORY_DATA) in msg and "snapshot 3 (epoch 1.5)" in msg and "disk is full" in msg
    assert (run / R.TRAJECTORY_DATA).stat().st_size == 3 * row  # the half row was cut off again
    for s in specs:
        assert len(Trajectory.open(out / s.run_id)) == 3
        assert resume_point(out / s.run_id).meta["epoch"] == 1
        assert not (out / s.run_id / R.LOCK).exists()
    monkeypatch.undo()  # space freed
    train_runs(specs, out, pack="always")
    _assert_identical(out, reference(specs, "always"), specs)


def _mount_tmpfs(path, size):
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a real small file system needs root (mount -t tmpfs)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode:
        pytest.skip(f"mount -t tmpfs failed: {r.stderr.decode().strip()}")


def test_disk_full_on_a_real_small_file_system(tmp_path, make_spec, reference, monkeypatch):
    """The same on a tmpfs: after epoch 1's checkpoints, a filler takes all but half a row of the space."""
    specs = _specs(make_spec, GOOD)
    row = _row_bytes(specs[0])
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "8m")
    try:
        out, filler = disk / "runs", disk / "filler"
        save, saved = T.save_checkpoint, []

        def save_then_fill(run_dir, state, meta):
            save(run_dir, state, meta)
            saved.append(run_dir)
            if len(saved) == len(specs):
                with open(filler, "wb", buffering=0) as f:
                    try:
                        while True:
                            f.write(b"\0" * 65536)
                    except OSError:
                        pass
                    f.truncate(filler.stat().st_size - row // 2 - 8192)  # curves.csv still fits, a row does not

        monkeypatch.setattr(T, "save_checkpoint", save_then_fill)
        with pytest.raises(OSError) as err:
            train_runs(specs, out, pack="always")
        monkeypatch.undo()
        msg = str(err.value)
        assert err.value.errno == errno.ENOSPC and f"run {specs[0].run_id}" in msg
        assert str(out / specs[0].run_id / R.TRAJECTORY_DATA) in msg and "(epoch 1.5)" in msg
        filler.unlink()  # space freed
        for s in specs:
            assert resume_point(out / s.run_id).meta["epoch"] == 1
        train_runs(specs, out, pack="always")
        _assert_identical(out, reference(specs, "always"), specs)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# ------------------------------------------------------------------------------------------------------
# damaged training state

@pytest.mark.parametrize("members,pack,how", [
    (1, "never", ("kill_rename", R.CHECKPOINT + ".tmp", 2)),  # epoch 2 written, epoch 1 moved aside, not committed
    (1, "never", ("kill_rename", R.CHECKPOINT, 1)),  # epoch 2 written, epoch 1 not yet moved aside
    (1, "never", ("kill_writing", 2)),  # epoch 2 half written
    (2, "always", ("kill_rename", R.CHECKPOINT + ".tmp", 3)),  # member 0's epoch 2 not committed, member 1's not begun
], ids=["before-commit", "before-moving-previous", "mid-write", "pack-before-commit"])
def test_sigkill_during_a_checkpoint_write(tmp_path, make_spec, child_env, reference, members, pack, how):
    specs = _specs(make_spec, GOOD[:members])
    out = tmp_path / "out"
    proc = _child(tmp_path, child_env, specs, out, pack, *how)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    run = out / specs[0].run_id
    assert (run / (R.CHECKPOINT + ".tmp")).exists()  # the kill really fell inside the write
    assert not (run / R.RESULT).exists()
    for s in specs:
        assert resume_point(out / s.run_id).meta["epoch"] == 1
    train_runs(specs, out, pack=pack)
    _assert_identical(out, reference(specs, pack), specs)


@pytest.mark.parametrize("cut", ["current", "both"])
def test_a_truncated_checkpoint_falls_back(tmp_path, make_spec, child_env, reference, caplog, cut):
    """Cut checkpoints (a damaged disk): the previous epoch's is used, or with none left the run starts over."""
    specs = _specs(make_spec, GOOD if cut == "current" else GOOD[:1])
    pack = "always" if len(specs) > 1 else "never"
    out = tmp_path / "out"
    proc = _child(tmp_path, child_env, specs, out, pack, "pause", 3.0)
    try:
        _wait_paused(proc, out)
    finally:
        _kill(proc)
    for s in specs:
        names = [R.CHECKPOINT] + ([R.CHECKPOINT_PREVIOUS] if cut == "both" else [])
        for name in names:
            data = (out / s.run_id / name).read_bytes()
            (out / s.run_id / name).write_bytes(data[:len(data) // 3])
    with caplog.at_level("WARNING", logger="netdyn.rundir"):
        for s in specs:  # resumed from epoch 1's checkpoint, or from the start
            ckpt = resume_point(out / s.run_id)
            assert (ckpt.path.name, ckpt.meta["epoch"]) == (R.CHECKPOINT_PREVIOUS, 1) if cut == "current" else ckpt is None
        train_runs(specs, out, pack=pack)
    for s in specs:
        assert f"run {s.run_id}: checkpoint {out / s.run_id / R.CHECKPOINT} is unusable" in caplog.text
    assert ("starts over" in caplog.text) == (cut == "both")
    _assert_identical(out, reference(specs, pack), specs)


# ------------------------------------------------------------------------------------------------------
# damaged finished runs

def _finished_copy(tmp_path, specs, ref):
    out = tmp_path / "out"
    for s in specs:
        shutil.copytree(ref / s.run_id, out / s.run_id)
    return out


def test_a_manifest_with_a_wrong_offset_fails_at_open(tmp_path, make_spec, reference):
    specs = _specs(make_spec, GOOD[:1])
    out = _finished_copy(tmp_path, specs, reference(specs, "never"))
    run = out / specs[0].run_id
    manifest = json.loads((run / R.TRAJECTORY_MANIFEST).read_text())
    name = manifest["tensors"][2]["name"]
    manifest["tensors"][2]["offset"] += 3
    (run / R.TRAJECTORY_MANIFEST).write_text(json.dumps(manifest))
    pattern = rf"run {specs[0].run_id}: tensor '{name}' of {run / R.TRAJECTORY_MANIFEST} has offset"
    with pytest.raises(TrajectoryError, match=pattern):
        R.open_trajectory(run)
    import netdyn.predict as P

    with pytest.raises(TrajectoryError, match=pattern):  # a stage reading weights
        P.build_features("weights", pd.DataFrame({"run_id": [specs[0].run_id]}), 1, runs_dir=out)
    before = _files(out, specs)
    with pytest.raises(TrajectoryError, match=pattern + r".*not kept; delete .*result\.json"):
        train_runs(specs, out, pack="never")
    assert _files(out, specs) == before


@pytest.mark.parametrize("damage", ["appended", "truncated", "no-result"])
def test_a_finished_run_with_inconsistent_files_is_not_kept(tmp_path, make_spec, reference, damage):
    """What two writers left in the issue (a trajectory longer than its manifest, result.json 'complete'),
    or a cut file: refused with run and file named; deleting result.json retrains the run."""
    specs = _specs(make_spec, GOOD[:1])
    ref = reference(specs, "never")
    out = _finished_copy(tmp_path, specs, ref)
    run = out / specs[0].run_id
    data = run / R.TRAJECTORY_DATA
    if damage == "appended":
        with open(data, "ab") as f:
            f.write(data.read_bytes()[:_row_bytes(specs[0])])
    elif damage == "truncated":
        data.write_bytes(data.read_bytes()[:-100])
    if damage != "no-result":
        before = _files(out, specs)
        with pytest.raises(TrajectoryError, match=rf"run {specs[0].run_id}: {data} holds .* bytes.*not kept"):
            train_runs(specs, out, pack="never")
        assert _files(out, specs) == before
    (run / R.RESULT).unlink()  # how a run is redone
    train_runs(specs, out, pack="never")
    _assert_identical(out, ref, specs)
