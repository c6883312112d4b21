"""run_curves on a real (tiny) run: VGG-11-BN width 1 trained 2 epochs on 8×8 digits (float64). Its
Q values equal knn_modularity on layer_outputs computed by hand from the run's test split and the
snapshot's stored weights (BatchNorm buffers included); snapshot selection, epochs and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from netdyn.data import load_dataset
from netdyn.models import build_model
from netdyn.modularity import (RUN_CURVE_COLUMNS, ModularityInputError, knn_modularity, layer_outputs,
                               run_curves)
from netdyn.rundir import read_config
from netdyn.train import train_runs
from netdyn.trajectory import Trajectory

N_PER_BATCH, N_BATCHES = 150, 3  # digits: 450 test images
VGG11_LAYERS = ["features.0", "features.4", "features.8", "features.11", "features.15", "features.18",
                "features.21", "features.24", "classifier.2", "classifier.5"]  # 8×8: pools after 1, 2, 4 convs


@pytest.fixture(scope="module")
def run(make_spec, tmp_path_factory):
    spec = make_spec("vgg11bn", epochs=2)
    out = tmp_path_factory.mktemp("runs")
    train_runs([spec], out)
    return out / spec.run_id


def _curves(run, snapshots, **kw):
    return run_curves(run, snapshots, k=3, n_per_batch=N_PER_BATCH, n_batches=N_BATCHES, device="cpu", **kw)


def _by_hand(run, snapshot: int, layer: str) -> list[float]:
    """Q of one layer on each batch: the network rebuilt from config.json's build_model kwargs and the
    stored state_dict, the test split loaded directly, one knn_modularity per batch."""
    config = read_config(run)
    assert config["run"]["dataset"] == "digits" and config["model"]["image_size"] == 8
    model = build_model(**config["model"]).to(torch.float64)
    model.load_state_dict(Trajectory.open(run).state_dict(snapshot))
    _, test, _ = load_dataset("digits", image_size=8)
    qs = []
    for b in range(N_BATCHES):
        part = slice(b * N_PER_BATCH, (b + 1) * N_PER_BATCH)
        features = layer_outputs(model, test.x[part].to(torch.float64), [layer])[layer]
        qs.append(knn_modularity(features.numpy(), test.y[part].numpy(), k=3))
    return qs


def test_final_snapshot_curve(run):
    curve = _curves(run, "final")
    assert list(curve.columns) == list(RUN_CURVE_COLUMNS)
    assert curve["run_id"].unique().tolist() == [run.name]
    assert curve["snapshot"].unique().tolist() == [2]  # init, epoch 1, epoch 2
    assert curve["epoch"].unique().tolist() == [2.0]
    assert curve["layer_name"].tolist() == VGG11_LAYERS
    assert curve["layer_index"].tolist() == list(range(len(VGG11_LAYERS)))
    assert curve.attrs == {"k": 3, "n_per_batch": N_PER_BATCH, "n_batches": N_BATCHES}
    assert curve["q_mean"].between(-0.5, 1).all() and (curve["q_std"] > 0).all()


@pytest.mark.parametrize("layer", ["features.11", "classifier.5"])
def test_q_equals_knn_modularity_by_hand(run, layer):
    curves = _curves(run, [0, 2])
    hand = {s: _by_hand(run, s, layer) for s in (0, 2)}
    assert not np.allclose(hand[0], hand[2])  # training moved Q: a wrong snapshot could not pass
    for s, qs in hand.items():
        row = curves[(curves["snapshot"] == s) & (curves["layer_name"] == layer)]
        assert len(row) == 1
        np.testing.assert_allclose(row["q_mean"].iloc[0], np.mean(qs), rtol=0, atol=1e-12)
        np.testing.assert_allclose(row["q_std"].iloc[0], np.std(qs, ddof=1), rtol=0, atol=1e-12)


def test_all_snapshots(run):
    curves = _curves(run, "all")
    n_layers = len(VGG11_LAYERS)
    assert curves["snapshot"].tolist() == [s for s in range(3) for _ in range(n_layers)]
    assert curves["epoch"].tolist() == [e for e in (0.0, 1.0, 2.0) for _ in range(n_layers)]
    final = _curves(run, "final")
    last = curves[curves["snapshot"] == 2].reset_index(drop=True)
    assert last.equals(final)
    picked = _curves(run, [-1, 0])  # negative counts from the end; order as given
    assert picked["snapshot"].unique().tolist() == [2, 0]
    assert picked[picked["snapshot"] == 0].reset_index(drop=True).equals(
        curves[curves["snapshot"] == 0].reset_index(drop=True))


def test_fewer_images_than_batches_use_fewer_batches(run):
    curve = run_curves(run, "final", n_per_batch=200, n_batches=5, device="cpu")
    assert curve.attrs["n_batches"] == 2  # 450 // 200


@pytest.mark.parametrize("kw,key", [
    ({"n_per_batch": 451}, "n_images"),  # more than the 450 digits test images in one batch
    ({"n_per_batch": 500, "n_batches": 5}, "n_images"),  # the defaults, on digits
    ({"n_per_batch": 50, "k": 50}, "k"),
    ({"n_per_batch": 50, "n_batches": 0}, "n_batches"),
    ({"snapshots": [3]}, "snapshots"),
    ({"snapshots": [-4]}, "snapshots"),
    ({"snapshots": "last"}, "snapshots"),
    ({"snapshots": []}, "snapshots"),
    ({"snapshots": [1.0]}, "snapshots"),
])
def test_bad_input_names_the_key(run, kw, key):
    kw = {"snapshots": "final", **kw}
    with pytest.raises(ModularityInputError, match=f"^{key}: ") as err:
        run_curves(run, kw.pop("snapshots"), device="cpu", **kw)
    assert err.value.key == key
    if key == "n_images":
        assert run.name in str(err.value) and "450" in str(err.value)
