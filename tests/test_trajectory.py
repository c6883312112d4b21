"""Tests for netdyn.trajectory: the appendable (T, P) snapshot store and its reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from netdyn.models import build_model
from netdyn.trajectory import DATA_FILE, MANIFEST_FILE, Trajectory, TrajectoryError, TrajectoryWriter

RUN = "vgg11bn-digits-w1-lr0.1-do0-wd0-s0"
VGG = {"arch": "vgg", "width": 1, "depth": 11, "batchnorm": True, "in_channels": 1, "num_classes": 10,
       "image_size": 8, "dropout": 0.0}  # build_model keyword arguments, as train.model_kwargs records them
LENET = {"arch": "lenet", "width": 1, "depth": None, "batchnorm": None, "in_channels": 1, "num_classes": 10,
         "image_size": 16, "dropout": 0.0}


def _model(kwargs, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return build_model(**kwargs).to(dtype)


def _step(model, seed):
    """Change every parameter and BatchNorm buffer (running stats, num_batches_tracked)."""
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype))
        x = torch.randn(8, VGG["in_channels"], VGG["image_size"], VGG["image_size"], generator=g,
                        dtype=torch.float64)
        model(x.to(next(model.parameters()).dtype))


def _clone(state):
    return {k: v.detach().clone() for k, v in state.items()}


def _write(run_dir, model, n=3, dtype="float64", arch=VGG):
    """Write n snapshots of `model` (changing it between them); returns the states written."""
    w = TrajectoryWriter(run_dir, model.state_dict(), run_id=run_dir.name, arch=arch, dtype=dtype)
    states = []
    for i in range(n):
        if i:
            _step(model, i)
        states.append(_clone(model.state_dict()))
        w.append(model.state_dict(), epoch=float(i), step=10 * i, label="init" if i == 0 else f"epoch {i}")
    return w, states


def test_round_trip_restores_values_and_dtypes(tmp_path):
    model = _model(VGG)
    _, states = _write(tmp_path / RUN, model)
    traj = Trajectory.open(tmp_path / RUN)
    assert len(traj) == 3 and traj.run_id == RUN and traj.arch == VGG
    assert traj.names == list(states[0])
    assert any(k.endswith("num_batches_tracked") for k in traj.names)
    for i, state in enumerate(states):
        sd = traj.state_dict(i)
        assert list(sd) == list(state)
        for k, v in state.items():
            assert sd[k].dtype == v.dtype, k
            assert sd[k].shape == v.shape, k
            assert torch.equal(sd[k], v), (i, k)
    # the BatchNorm counters really moved (so the int64 round trip is not all zeros)
    nbt = [k for k in traj.names if k.endswith("num_batches_tracked")][0]
    assert [int(traj.state_dict(i)[nbt]) for i in range(3)] == [0, 1, 2]
    assert traj.state_dict(2)[nbt].dtype == torch.int64
    # a subset of names
    name = traj.names[0]
    assert list(traj.state_dict(1, names=[name])) == [name]


def test_float32_store_keeps_int64_buffers_exact(tmp_path):
    model = _model(VGG, dtype=torch.float32)
    _, states = _write(tmp_path / RUN, model, dtype="float32")
    traj = Trajectory.open(tmp_path / RUN)
    assert traj.matrix.dtype == np.float32
    assert (tmp_path / RUN / DATA_FILE).stat().st_size == 3 * traj.matrix.shape[1] * 4
    for i, state in enumerate(states):
        for k, v in traj.state_dict(i).items():
            assert v.dtype == state[k].dtype and torch.equal(v, state[k]), k


def test_tensor_history_flat_and_snapshots(tmp_path):
    model = _model(VGG)
    _, states = _write(tmp_path / RUN, model)
    traj = Trajectory.open(tmp_path / RUN)
    name = "features.0.weight"
    hist = traj.tensor(name)
    assert hist.shape == (3, *states[0][name].shape)
    for i in range(3):
        np.testing.assert_array_equal(hist[i], states[i][name].numpy())
        flat = traj.flat(i)
        assert flat.shape == (sum(v.numel() for v in states[i].values()),)
        np.testing.assert_array_equal(
            flat, np.concatenate([v.reshape(-1).double().numpy() for v in states[i].values()]))
    assert traj.flat(-1).tolist() == traj.flat(2).tolist()
    snaps = traj.snapshots
    assert list(snaps.columns) == ["index", "epoch", "step", "label"]
    assert snaps["index"].tolist() == [0, 1, 2]
    assert snaps["epoch"].tolist() == [0.0, 1.0, 2.0]
    assert snaps["step"].tolist() == [0, 10, 20]
    assert snaps["label"].tolist() == ["init", "epoch 1", "epoch 2"]
    with pytest.raises(KeyError, match="no tensor"):
        traj.tensor("features.99.weight")


def test_manifest_offsets_let_other_tools_read_the_file(tmp_path):
    """The manifest alone (offsets, shapes, dtype) is enough to read any tensor from the raw bytes."""
    model = _model(VGG)
    _, states = _write(tmp_path / RUN, model)
    manifest = json.loads((tmp_path / RUN / MANIFEST_FILE).read_text())
    raw = np.fromfile(tmp_path / RUN / DATA_FILE, dtype=manifest["dtype"])
    row = sum(t["numel"] for t in manifest["tensors"])
    for t in manifest["tensors"]:
        got = raw.reshape(-1, row)[1, t["offset"]:t["offset"] + t["numel"]].reshape(t["shape"])
        np.testing.assert_array_equal(got, states[1][t["name"]].double().numpy())


def test_model_rebuilds_the_stored_network(tmp_path):
    model = _model(VGG)
    _, states = _write(tmp_path / RUN, model)
    traj = Trajectory.open(tmp_path / RUN)
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    for i in (0, 2):
        rebuilt = traj.model(i)
        assert not rebuilt.training
        got = rebuilt.state_dict()
        assert list(got) == list(states[i])
        for k, v in states[i].items():
            assert got[k].dtype == v.dtype and torch.equal(got[k], v), k
        ref = _model(VGG)
        ref.load_state_dict(states[i])
        ref = ref.eval()
        with torch.no_grad():
            torch.testing.assert_close(rebuilt(x), ref(x), rtol=0, atol=0)


def test_truncated_file_names_file_and_run(tmp_path):
    _write(tmp_path / RUN, _model(VGG))
    data = tmp_path / RUN / DATA_FILE
    data.write_bytes(data.read_bytes()[:-5])
    with pytest.raises(TrajectoryError) as err:
        Trajectory.open(tmp_path / RUN)
    assert RUN in str(err.value) and str(data) in str(err.value)


def test_overlong_file_is_rejected(tmp_path):
    _write(tmp_path / RUN, _model(VGG))
    data = tmp_path / RUN / DATA_FILE
    with open(data, "ab") as f:
        f.write(b"\0" * 16)
    with pytest.raises(TrajectoryError, match=RUN):
        Trajectory.open(tmp_path / RUN)


@pytest.mark.parametrize("remove", [DATA_FILE, MANIFEST_FILE, "both"])
def test_missing_files(tmp_path, remove):
    _write(tmp_path / RUN, _model(VGG), n=1)
    for f in ([DATA_FILE, MANIFEST_FILE] if remove == "both" else [remove]):
        (tmp_path / RUN / f).unlink()
    with pytest.raises(TrajectoryError) as err:
        Trajectory.open(tmp_path / RUN)
    assert RUN in str(err.value)


def test_missing_run_dir(tmp_path):
    with pytest.raises(TrajectoryError, match="never-trained"):
        Trajectory.open(tmp_path / "never-trained")


def test_corrupt_manifest(tmp_path):
    _write(tmp_path / RUN, _model(VGG), n=1)
    (tmp_path / RUN / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(TrajectoryError) as err:
        Trajectory.open(tmp_path / RUN)
    assert RUN in str(err.value) and MANIFEST_FILE in str(err.value)


def test_other_architecture_is_rejected(tmp_path):
    _write(tmp_path / RUN, _model(VGG), n=1)
    traj = Trajectory.open(tmp_path / RUN)
    traj.check_model(_model(VGG))  # its own architecture passes
    for other in (LENET, {**VGG, "width": 2}, {**VGG, "batchnorm": False}):
        with pytest.raises(TrajectoryError) as err:
            traj.check_model(_model(other))
        assert RUN in str(err.value) and DATA_FILE in str(err.value)
    # a manifest whose recorded architecture is not the one its tensors came from
    mpath = tmp_path / RUN / MANIFEST_FILE
    manifest = json.loads(mpath.read_text())
    manifest["arch"] = {**VGG, "depth": 13}
    mpath.write_text(json.dumps(manifest))
    with pytest.raises(TrajectoryError, match=RUN):
        Trajectory.open(tmp_path / RUN).model(0)


def test_empty_trajectory_opens(tmp_path):
    TrajectoryWriter(tmp_path / RUN, _model(VGG).state_dict(), run_id=RUN, arch=VGG, dtype="float64")
    traj = Trajectory.open(tmp_path / RUN)
    assert len(traj) == 0 and traj.snapshots.empty


def test_new_writer_starts_over(tmp_path):
    _write(tmp_path / RUN, _model(VGG), n=3)
    w = TrajectoryWriter(tmp_path / RUN, _model(VGG).state_dict(), run_id=RUN, arch=VGG, dtype="float64")
    assert w.n_snapshots == 0
    assert len(Trajectory.open(tmp_path / RUN)) == 0


def test_writer_resume_drops_half_written_row(tmp_path):
    """A kill during append leaves bytes past the manifest; reopening with resume drops them."""
    model = _model(VGG)
    _, states = _write(tmp_path / RUN, model, n=2)
    data = tmp_path / RUN / DATA_FILE
    good = data.read_bytes()
    with open(data, "ab") as f:
        f.write(b"\x7f" * 100)  # part of a third row whose manifest entry was never written
    with pytest.raises(TrajectoryError):
        Trajectory.open(tmp_path / RUN)
    w = TrajectoryWriter(tmp_path / RUN, model.state_dict(), run_id=RUN, arch=VGG, dtype="float64", resume=True)
    assert w.n_snapshots == 2
    assert data.read_bytes() == good
    _step(model, 7)
    states.append(_clone(model.state_dict()))
    w.append(model.state_dict(), epoch=2.0, step=20, label="epoch 2")
    traj = Trajectory.open(tmp_path / RUN)
    assert len(traj) == 3
    for i, state in enumerate(states):
        for k, v in traj.state_dict(i).items():
            assert torch.equal(v, state[k]), (i, k)


def test_writer_truncate_keeps_first_rows(tmp_path):
    model = _model(VGG)
    w, states = _write(tmp_path / RUN, model, n=3)
    w.truncate(1)
    traj = Trajectory.open(tmp_path / RUN)
    assert len(traj) == 1 and traj.snapshots["label"].tolist() == ["init"]
    for k, v in traj.state_dict(0).items():
        assert torch.equal(v, states[0][k])
    w2 = TrajectoryWriter(tmp_path / RUN, model.state_dict(), run_id=RUN, arch=VGG, dtype="float64", resume=True)
    assert w2.n_snapshots == 1


def test_stored_rows_counts_whole_listed_rows(tmp_path):
    from netdyn.trajectory import stored_rows

    assert stored_rows(tmp_path / RUN) == 0  # nothing there
    _write(tmp_path / RUN, _model(VGG), n=3)
    assert stored_rows(tmp_path / RUN) == 3
    data = tmp_path / RUN / DATA_FILE
    data.write_bytes(data.read_bytes()[:-1])  # the last row is no longer whole
    assert stored_rows(tmp_path / RUN) == 2
    with open(data, "ab") as f:
        f.write(b"\0" * 10_000)  # bytes past the manifest are not rows it lists
    assert stored_rows(tmp_path / RUN) == 3


def test_writer_refuses_to_keep_rows_the_file_lost(tmp_path):
    """Resuming to more snapshots than the data file holds whole must fail, not pad the file with zeros."""
    model = _model(VGG)
    w, _ = _write(tmp_path / RUN, model, n=3)
    data = tmp_path / RUN / DATA_FILE
    cut = data.read_bytes()[:-8]
    data.write_bytes(cut)
    with pytest.raises(TrajectoryError) as err:
        w.truncate(3)
    assert RUN in str(err.value) and str(data) in str(err.value)
    assert data.read_bytes() == cut
    w.truncate(2)
    assert len(Trajectory.open(tmp_path / RUN)) == 2


def test_row_tensor_is_the_manifest_slice(tmp_path):
    from netdyn.trajectory import row_tensor

    model = _model(VGG)
    _, states = _write(tmp_path / RUN, model, n=2)
    traj = Trajectory.open(tmp_path / RUN)
    raw = np.fromfile(tmp_path / RUN / DATA_FILE, dtype=np.float64).reshape(2, -1)  # independent of the reader
    for t in traj.tensors:
        got = row_tensor(raw[1], t)
        assert got.shape == tuple(t["shape"])
        np.testing.assert_array_equal(got, states[1][t["name"]].double().numpy())
        assert row_tensor(raw, t).shape == (2, *t["shape"])  # the whole history at once
    assert list(traj.row_tensors(traj.flat(1), names=["features.0.weight"])) == ["features.0.weight"]
