"""Embedded CMD (netdyn.cmd.embedded, netdyn.cmd.frozen, the trainer's use of them): which parameters are
frozen, that frozen parameters follow a·r + b of their reference exactly, that an embedded member of a pack
equals its solo run, and that a killed embedded run resumes to the same bytes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from netdyn.cmd.embedded import EmbeddedCMD
from netdyn.cmd.frozen import FrozenParameters
from netdyn.cmd.source import CMDError, trajectory_layers
from netdyn.config import ConfigError, embedded_cmd_settings, expand_grid, validate_config, variant_runs
from netdyn.train import train_runs
from netdyn.trajectory import Trajectory

SETTINGS = {"n_modes": 2, "warmup": 2, "every": 1, "fraction": 0.3, "n_samples": 300, "seed": 0}


# ------------------------------------------------------------------------------------------------------
# the decisions, on planted rows

def _planted(n_exact=60, n_drift=40, epochs=6, seed=0):
    """Rows of 1 + n_exact + n_drift parameters over epochs 0..epochs: column 0 is the mode's profile; the
    `exact` ones are a·r + b for all time (their fit never moves), the `drift` ones follow the profile plus a
    growing extra term (their fit moves every epoch)."""
    rng = np.random.default_rng(seed)
    t = np.arange(epochs + 1, dtype=float)
    r = 1.0 - np.exp(-t / 2.0)
    a = rng.uniform(0.5, 2.0, n_exact + n_drift) * rng.choice([-1, 1], n_exact + n_drift)
    b = rng.normal(size=n_exact + n_drift)
    W = np.outer(r, a) + b
    W[:, n_exact:] += np.outer(t ** 2, rng.uniform(0.05, 0.2, n_drift))
    return np.column_stack([r, W])


def _feed(W, settings, epochs=None):
    emb = EmbeddedCMD(settings, [("all", slice(0, W.shape[1]))], W.shape[1], epochs or len(W) - 1, "planted")
    return emb, [emb.observe(e, W[e]) for e in range(len(W))]


def test_least_moved_parameters_are_frozen_first_and_references_never():
    W = _planted()
    settings = {**SETTINGS, "n_modes": 1, "fraction": 0.6}  # 60 of 100 candidates: exactly the `exact` ones
    emb, freezes = _feed(W, settings)
    assert freezes[:3] == [None, None, None]  # warm-up: epochs 0..2
    first = freezes[3]
    ref = emb.reference_positions()
    assert not np.isin(ref, first.positions).any()
    assert len(first.positions) == round(0.6 * (W.shape[1] - 1))
    exact = set(range(1, 61)) - set(ref.tolist())
    assert exact <= set(first.positions.tolist())
    # the frozen coefficients model the exact parameters exactly
    np.testing.assert_allclose(W[:, first.positions], np.outer(W[:, ref[0]], first.a) + first.b, atol=1e-9)


def test_fraction_of_still_trained_is_frozen_each_step_and_never_at_the_last_epoch():
    W = _planted(epochs=7)
    emb, freezes = _feed(W, SETTINGS)
    counts = [len(f.positions) if f is not None else 0 for f in freezes]
    candidates = W.shape[1] - len(emb.reference_positions())
    expected, left = [], candidates
    for e in range(len(W)):
        n = round(0.3 * left) if SETTINGS["warmup"] < e < len(W) - 1 else 0
        expected.append(n)
        left -= n
    assert counts == expected and counts[-1] == 0
    assert [r["frozen"] for r in emb.log] == list(np.cumsum(expected))
    assert emb.log[-1]["trained_fraction"] == pytest.approx(1 - sum(expected) / W.shape[1])


def test_rows_out_of_order_and_warmup_beyond_training_are_refused():
    W = _planted()
    emb = EmbeddedCMD(SETTINGS, [("all", slice(0, W.shape[1]))], W.shape[1], 6, "run-x")
    emb.observe(0, W[0])
    with pytest.raises(CMDError, match="run run-x: epoch: expected the row of epoch 1, got epoch 2"):
        emb.observe(2, W[2])
    with pytest.raises(CMDError, match="run run-x: embedded_cmd.warmup"):
        EmbeddedCMD({**SETTINGS, "warmup": 6}, [("all", slice(0, 5))], 5, 6, "run-x")


def test_frozen_parameters_follow_their_reference_per_member():
    torch.manual_seed(0)
    p1, p2 = torch.randn(2, 3, 4), torch.randn(2, 5)  # two packed tensors, K = 2; row columns 0..11 and 12..16
    fp = FrozenParameters([p1, p2], [0, 12])
    fp.add(1, np.array([1, 13]), np.array([2.0, -1.0]), np.array([0.5, 0.25]), np.array([14, 14]))
    ref = p2[1, 2].item()
    fp.apply()
    assert p1[1].reshape(-1)[1].item() == pytest.approx(2 * ref + 0.5)
    assert p2[1, 1].item() == pytest.approx(-ref + 0.25)
    with torch.no_grad():
        p2[1, 2] = 3.0
    before0 = p1[0].clone()
    fp.apply()
    assert p1[1].reshape(-1)[1].item() == pytest.approx(6.5) and p2[1, 1].item() == pytest.approx(-2.75)
    assert torch.equal(p1[0], before0)  # member 0 has nothing frozen


# ------------------------------------------------------------------------------------------------------
# in training

EPOCHS = 4  # warm-up epochs 0..2, a freezing step at epoch 3, epoch 4 trained with frozen parameters


def _spec(make_spec, embedded=True, **kw):
    spec = make_spec("lenet", lr=0.05, epochs=EPOCHS, subepoch_snapshots=2, subepoch_epochs=1, **kw)
    return dataclasses.replace(spec, run_id=spec.run_id + "-ecmd", embedded_cmd=dict(SETTINGS)) if embedded else spec


@pytest.fixture(scope="module")
def solo(tmp_path_factory, make_spec):
    out = tmp_path_factory.mktemp("embedded-solo")
    spec = _spec(make_spec, dtype="float64")
    (result,) = train_runs([spec], out, pack="never")
    return out, spec, result


def test_frozen_parameters_are_affine_in_their_reference_in_the_stored_trajectory(solo):
    out, spec, result = solo
    traj = Trajectory.open(out / spec.run_id)
    whole = np.flatnonzero(traj.snapshots["epoch"].to_numpy() % 1 == 0)
    emb = EmbeddedCMD(spec.embedded_cmd, trajectory_layers(traj), traj.matrix.shape[1], EPOCHS, spec.run_id)
    freezes = emb.replay((traj.flat(j) for j in whole), traj.snapshots["epoch"].to_numpy()[whole])
    assert len(freezes) == 1  # at epoch 3
    f = freezes[0]
    cols, refs = emb.positions_to_columns(f.positions), emb.positions_to_columns(f.references)
    last = traj.flat(-1)
    np.testing.assert_allclose(last[cols], f.a * last[refs] + f.b, rtol=0, atol=1e-12)
    # ... and the others do not: they were trained (a wrong freezing of everything would pass the line above)
    others = np.setdiff1d(np.arange(emb.n_params), f.positions)
    a, b = emb.online.coefficients()
    resid = np.abs(last[emb.positions_to_columns(others)] - (a[others] * last[emb.positions_to_columns(
        emb.reference_positions()[emb.online.labels[others]])] + b[others]))
    assert np.median(resid) > 1e-6
    # the run's own report of the fraction still trained is the replay's
    assert result["embedded_cmd"]["epochs"] == emb.log
    assert [r["trained_fraction"] for r in emb.log][:3] == [1.0, 1.0, 1.0]
    assert emb.log[3]["trained_fraction"] < 0.75


def test_embedded_member_of_a_pack_equals_its_solo_run(solo, make_spec, tmp_path):
    out, spec, _ = solo
    plain = _spec(make_spec, embedded=False, dtype="float64", seed=1)
    train_runs([spec, plain], tmp_path / "pack", pack="always")
    train_runs([plain], tmp_path / "plain", pack="never")
    for run, ref_out in ((spec, out), (plain, tmp_path / "plain")):
        a, b = Trajectory.open(tmp_path / "pack" / run.run_id), Trajectory.open(ref_out / run.run_id)
        np.testing.assert_allclose(a.matrix, b.matrix, rtol=0, atol=1e-9)
    packed_result = json.loads((tmp_path / "pack" / spec.run_id / "result.json").read_text())
    assert packed_result["embedded_cmd"] == json.loads((out / spec.run_id / "result.json").read_text())["embedded_cmd"]
    assert "embedded_cmd" not in json.loads((tmp_path / "pack" / plain.run_id / "result.json").read_text())


def test_killed_embedded_run_resumes_identically(tmp_path, make_spec, child_env):
    from tests.test_train import _kill_mid_training

    specs = [_spec(make_spec), _spec(make_spec, embedded=False, seed=1)]
    killed = tmp_path / "killed"
    _kill_mid_training(tmp_path, child_env, specs, killed, "always", "snapshot", float(EPOCHS))  # after freezing
    assert json.loads((killed / specs[0].run_id / "checkpoint.json").read_text())["epoch"] == EPOCHS - 1
    train_runs(specs, killed, pack="always")
    train_runs(specs, tmp_path / "reference", pack="always")
    for s in specs:
        for name in ("trajectory.bin", "curves.csv"):
            assert (killed / s.run_id / name).read_bytes() == (tmp_path / "reference" / s.run_id / name).read_bytes()
    log = json.loads((killed / specs[0].run_id / "result.json").read_text())["embedded_cmd"]["epochs"]
    assert log[-1]["frozen"] > 0


# ------------------------------------------------------------------------------------------------------
# config

def test_twins_of_deep_runs_and_a_warmup_that_leaves_no_epoch(make_config):
    config = validate_config(make_config(cmd={"deep": ["lenet"], "embedded": {"enabled": True}},
                                         training={"epochs": 4}))
    runs = expand_grid(config)
    twins = variant_runs(config, runs)
    assert twins and all(t.run_id.endswith("-ecmd") and t.arch_label == "lenet" for t in twins)
    assert all(t.embedded_cmd == embedded_cmd_settings(config) for t in twins)
    assert not {t.run_id for t in twins} & {r.run_id for r in runs}
    with pytest.raises(ConfigError, match=r"`cmd.embedded.warmup`"):
        validate_config(make_config(cmd={"deep": ["lenet"], "embedded": {"enabled": True, "warmup": 4}},
                                    training={"epochs": 4}))


def test_twin_curve_states_the_share_trained_in_the_epoch_before_each_snapshot(solo, tmp_path):
    from netdyn.cmd.evaluate import embedded_curve, with_embedded

    out, spec, result = solo
    curve = embedded_curve(out / spec.run_id)
    assert curve["epoch"].tolist() == [0.0, 0.5, 1.0, 2.0, 3.0, 4.0]
    after = [r["trained_fraction"] for r in result["embedded_cmd"]["epochs"]]  # after the step at each epoch
    assert curve["trained_fraction"].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, after[3]] and after[3] < 1
    curves = pd.read_csv(out / spec.run_id / "curves.csv", float_precision="round_trip")
    assert curve["acc_embedded_cmd"].tolist() == curves["test_acc"].tolist()
    table = pd.DataFrame({"run_id": "r", "n_modes": [2] * 6, "epoch": curve["epoch"]})
    joined = with_embedded(table, out / spec.run_id)
    assert joined["acc_embedded_cmd"].tolist() == curve["acc_embedded_cmd"].tolist()
    assert with_embedded(table, None)["trained_fraction"].isna().all()
