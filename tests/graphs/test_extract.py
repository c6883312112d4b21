"""Extraction of a run: signatures of its snapshots from the trajectory (graph reused, weights swapped),
and the checks that fail fast on truncated, foreign or diverged trajectories."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from netdyn.graphs import (extract_run, node_properties, rolled_graph, rolled_graph_from_trajectory, signature,
                           snapshot_signatures, temporal_summary)
from netdyn.models import build_model
from netdyn.trajectory import Trajectory, TrajectoryError, TrajectoryWriter

ARCH = {"arch": "lenet", "width": 1, "depth": None, "batchnorm": None, "in_channels": 1, "num_classes": 10,
        "image_size": 16, "dropout": 0.0}


def write_run(tmp_path, name="lenet-run", epochs=(0.0, 0.5, 1.0, 2.0, 6.0), arch=ARCH, template=None):
    torch.manual_seed(0)
    model = build_model(**arch)
    state = template if template is not None else model.state_dict()
    run_dir = tmp_path / name
    writer = TrajectoryWriter(run_dir, state, run_id=name, arch=arch)
    for i, e in enumerate(epochs):
        with torch.no_grad():
            for p in state.values():
                if p.is_floating_point():
                    p.mul_(1.05)
        writer.append(state, epoch=e, step=i, label=f"epoch {e:g}")
    (run_dir / "config.json").write_text(json.dumps({"run": {"run_id": name}, "model": arch}))
    (run_dir / "result.json").write_text(json.dumps({"run_id": name, "n_snapshots": len(epochs)}))
    return run_dir


def test_extract_run_and_snapshot_reuse(tmp_path):
    run_dir = write_run(tmp_path)
    sigs = extract_run(run_dir, max_epoch=5.0)
    assert list(sigs.columns[:3]) == ["run_id", "snapshot", "epoch"]
    assert list(sigs["epoch"]) == [0.0, 0.5, 1.0, 2.0] and list(sigs["snapshot"]) == [0, 1, 2, 3]
    traj = Trajectory.open(run_dir)
    # the reused graph (weights swapped in place) equals a fresh graph of the rebuilt model
    g_model = rolled_graph(traj.model(3))
    g_traj = rolled_graph_from_trajectory(traj, 3)
    np.testing.assert_allclose(g_model.ep["weight"].a, g_traj.ep["weight"].a, rtol=1e-6)
    fresh = signature(node_properties(g_model))
    row = sigs.iloc[3]
    for k in ("all.eigenvector.mean", "features.3.strength.median", "classifier.2.katz.std"):
        assert row[k] == pytest.approx(fresh[k], rel=1e-5)
    assert row["all.strength.mean"] > sigs.iloc[0]["all.strength.mean"]  # weights grew
    summary = temporal_summary(sigs, window=1)
    assert summary.shape == (1, (3 + 2) * (len(sigs.columns) - 3))


def test_extract_run_truncated(tmp_path):
    run_dir = write_run(tmp_path, "cut-run")
    data = run_dir / "trajectory.bin"
    data.write_bytes(data.read_bytes()[:-100])
    with pytest.raises(TrajectoryError, match=r"cut-run.*trajectory\.bin.*truncated"):
        extract_run(run_dir)


def test_extract_run_fewer_snapshots_than_result(tmp_path):
    run_dir = write_run(tmp_path, "short-run")
    (run_dir / "result.json").write_text(json.dumps({"n_snapshots": 9}))
    with pytest.raises(TrajectoryError, match=r"short-run.*trajectory\.bin.*truncated"):
        extract_run(run_dir)


def test_extract_run_wrong_architecture(tmp_path):
    vgg = build_model("vgg", width=1, in_channels=1, image_size=16)
    run_dir = write_run(tmp_path, "mixed-run", template=vgg.state_dict())  # lenet manifest, vgg tensors
    with pytest.raises(TrajectoryError, match=r"mixed-run.*trajectory\.bin.*does not belong"):
        extract_run(run_dir)
    run_dir = write_run(tmp_path, "lenet-ok")
    with pytest.raises(TrajectoryError, match=r"lenet-ok.*trajectory\.json.*requested"):
        extract_run(run_dir, arch={**ARCH, "arch": "vgg", "depth": 11, "batchnorm": True})
    (run_dir / "config.json").write_text(json.dumps({"model": {**ARCH, "width": 2}}))
    with pytest.raises(TrajectoryError, match=r"lenet-ok.*config\.json"):
        extract_run(run_dir)


def test_diverged_snapshots_are_skipped(tmp_path):
    run_dir = write_run(tmp_path, "nan-run", epochs=(0.0, 1.0))
    traj = Trajectory.open(run_dir)
    state = traj.state_dict(1)
    state["features.0.weight"][0, 0, 0, 0] = float("nan")
    TrajectoryWriter(run_dir, state, run_id="nan-run", arch=ARCH, resume=True).append(
        state, epoch=2.0, step=2, label="epoch 2")
    sigs = snapshot_signatures(Trajectory.open(run_dir), max_epoch=5)
    assert list(sigs["epoch"]) == [0.0, 1.0]


def test_walk_runs_once_per_architecture(tmp_path, monkeypatch):
    """The fx walk (and shape propagation) runs once per architecture, not per snapshot or per run."""
    import netdyn.graphs.rolled as rolled

    calls = []
    real_walk = rolled.walk
    monkeypatch.setattr(rolled, "walk", lambda *a, **k: calls.append(a) or real_walk(*a, **k))
    rolled._architecture_plan.cache_clear()
    first = extract_run(write_run(tmp_path, "run-a"))
    second = extract_run(write_run(tmp_path, "run-b"))
    third = extract_run(write_run(tmp_path, "run-d", arch={**ARCH, "dropout": 0.5}))  # the same tensors
    rolled_graph_from_trajectory(Trajectory.open(tmp_path / "run-a"), 2)
    assert len(first) == len(second) == len(third) == 4 and len(calls) == 1
    extract_run(write_run(tmp_path, "run-c", arch={**ARCH, "width": 2}))
    assert len(calls) == 2
