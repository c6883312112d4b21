"""netdyn.cmd.source: blocks and column maps, memory-mapped reading that leaves no file pages resident,
copy-on-write maps left intact, and a run's Trajectory (trainable parameters, run id in errors)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from netdyn import cmd
from netdyn.models import build_model
from netdyn.rundir import trajectory_writer
from netdyn.trajectory import Trajectory

from planted_modes import planted


def test_blocks_merge_adjacent_layers_and_map_columns():
    src = cmd.as_source(np.zeros((3, 100)), [("a", slice(0, 10)), ("b", slice(10, 25)), ("c", slice(40, 47))])
    assert list(src.blocks(8)) == [(0, 8, 0), (8, 16, 8), (16, 24, 16), (24, 25, 24), (40, 47, 25)]
    np.testing.assert_array_equal(src.source_columns([0, 24, 25, 31]), [0, 24, 40, 46])
    assert src.n_params == 32 and src.layer_slices()[2] == ("c", slice(25, 32))


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    pytest.skip(f"no {key} in /proc/self/status")


@pytest.mark.skipif(sys.platform != "linux", reason="madvise page release is measured through /proc")
def test_memmap_pages_leave_the_resident_set(tmp_path):
    rng = np.random.default_rng(0)
    T, N = 10, 2_000_000  # an 80 MB file
    np.save(tmp_path / "w.npy", (rng.normal(size=(T, 1)) * rng.normal(size=N) + rng.normal(size=N)).astype(np.float32))
    mm = np.load(tmp_path / "w.npy", mmap_mode="r")
    before, rss = _status("RssFile"), _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS now
    res = cmd.posthoc(mm, 2, n_samples=200, chunk=50_000)
    assert _status("RssFile") - before < 8 * 2**20, "file pages of the trajectory stayed mapped"
    # peak: the 40 MB of outputs (20 B/param), 4 MB float64 blocks, one row's pages; not the 80 MB file
    peak = _status("VmHWM") - rss
    assert peak < N * cmd.BYTES_PER_PARAMETER + 25 * 2**20, peak / 2**20
    np.testing.assert_array_equal(res.labels, cmd.posthoc(np.array(mm), 2, n_samples=200, chunk=50_000).labels)
    # what is left mapped is nothing to do with correctness: reading again gives the same numbers
    np.testing.assert_array_equal(mm[:, :5], np.load(tmp_path / "w.npy")[:, :5])


def test_copy_on_write_map_keeps_its_changes(tmp_path):
    p = planted(T=8, N=3000, n_modes=2, seed=1, dtype=np.float32)
    np.save(tmp_path / "w.npy", p.W)
    cow = np.load(tmp_path / "w.npy", mmap_mode="c")
    cow[:, 0] = np.arange(8) * 100.0  # a private change, in memory only
    res = cmd.posthoc(cow, 2, n_samples=300, chunk=100)
    assert (cow[:, 0] == np.arange(8) * 100.0).all()
    plain = cmd.posthoc(np.array(cow), 2, n_samples=300, chunk=100)
    np.testing.assert_array_equal(res.a, plain.a)


def test_trajectory_models_trainable_parameters_and_names_its_run(tmp_path):
    arch = {"arch": "lenet", "width": 1, "in_channels": 1, "num_classes": 10, "image_size": 16}
    model = build_model(**arch)
    run_dir = tmp_path / "lenet-run-7"
    writer = trajectory_writer(run_dir, model.state_dict(), run_id="lenet-run-7", arch=arch, dtype="float32")
    rng = np.random.default_rng(2)
    flat0 = torch.cat([p.detach().reshape(-1) for p in model.state_dict().values()]).numpy()
    drift = rng.normal(size=flat0.size)
    for t in range(5):
        writer.append_row(flat0 + 0.01 * t * drift + 0.001 * t * t, epoch=t, step=t, label=f"e{t}")
    traj = Trajectory.open(run_dir)
    res = cmd.posthoc(traj, 2, n_samples=100)
    params = [n for n, _ in model.named_parameters()]
    assert [n for n, _ in res.layers] == params
    assert res.n_params == sum(p.numel() for p in model.parameters())
    on = cmd.OnlineCMD.start(traj, 2, warmup=3, n_samples=100)
    on.update(traj.matrix[3])
    with pytest.raises(cmd.CMDError, match="run lenet-run-7: warmup"):
        cmd.OnlineCMD.start(traj, 2, warmup=6)
    writer.truncate(2)
    with pytest.raises(cmd.CMDError, match="run lenet-run-7: snapshots"):
        cmd.posthoc(Trajectory.open(run_dir), 2)


def test_refuses_what_is_not_a_matrix():
    with pytest.raises(cmd.CMDError, match="W: expected shape"):
        cmd.posthoc(np.zeros(10), 1)
    with pytest.raises(cmd.CMDError, match="W: expected floating values"):
        cmd.posthoc(np.zeros((4, 10), dtype=int), 1)
    with pytest.raises(cmd.CMDError, match="W: expected a"):
        cmd.posthoc([[1.0, 2.0]], 1)
