"""netdyn.cmd.sampling: the layer quotas (hand-computed), moving candidates only, spread over layers."""

from __future__ import annotations

import numpy as np

from netdyn.cmd import as_source
from netdyn.cmd.sampling import allocate, moving_candidates, sample_positions


def test_allocate_by_hand():
    # weights 0.5/3 + 0.5·size/1000 for sizes 100, 300, 600: 0.2167, 0.3167, 0.4667 of 60 = 13, 19, 28
    w = 0.5 / 3 + 0.5 * np.array([100, 300, 600]) / 1000
    np.testing.assert_array_equal(allocate(w, np.array([100, 300, 600]), 60), [13, 19, 28])
    # the first layer holds only 4: its other 9 go to the rest in proportion 19:28 → 19+3.6, 28+5.4
    q = allocate(w, np.array([4, 300, 600]), 60)
    assert q.sum() == 60 and q[0] == 4 and q[1] in (22, 23) and q[2] in (33, 34)
    np.testing.assert_array_equal(allocate(w, np.array([1, 2, 3]), 60), [1, 2, 3])  # fewer than asked: all
    np.testing.assert_array_equal(allocate(np.array([0.5, 0.5]), np.array([9, 9]), 1), [1, 0])


def test_only_moving_parameters_in_random_order():
    rng = np.random.default_rng(0)
    W = np.ones((6, 5000))
    moving = rng.random(5000) < 0.02  # a mostly constant layer: the sparse draw fails, the whole layer is read
    W[:, moving] += rng.normal(size=(6, moving.sum()))
    W[2, 7] = np.nan  # non-finite: never a candidate
    moving[7] = False
    src = as_source(W)
    got = moving_candidates(src, 0, 50, np.random.default_rng(1), chunk=333)
    assert len(got) == 50 and moving[got].all() and len(set(got)) == 50 and not np.all(np.diff(got) > 0)
    everything = moving_candidates(src, 0, 5000, np.random.default_rng(1), chunk=333)
    np.testing.assert_array_equal(np.sort(everything), np.flatnonzero(moving))


def test_samples_spread_over_layers_and_repeat_with_the_seed():
    rng = np.random.default_rng(2)
    W = rng.normal(size=(5, 10_000))
    W[:, 9000:9100] = 3.0  # a constant tensor
    layers = [("big", slice(0, 8000)), ("small", slice(8000, 8050)), ("dead", slice(9000, 9100)),
              ("mid", slice(9100, 10_000))]
    src = as_source(W, layers)
    s = sample_positions(src, 200, np.random.default_rng(3), chunk=1000)
    assert len(s) == 200 and np.all(np.diff(s) > 0)
    per_layer = np.bincount(np.searchsorted(src.layer_starts[1:], s, side="right"), minlength=4)
    assert per_layer[2] == 0  # nothing from the constant tensor
    # quotas: 0.5/4 + 0.5·size/9050 → big 0.567, small 0.128, dead 0.131, mid 0.175 of 200; dead's share
    # goes to the others in proportion
    assert 125 <= per_layer[0] <= 135 and 27 <= per_layer[1] <= 31 and 38 <= per_layer[3] <= 42
    np.testing.assert_array_equal(s, sample_positions(src, 200, np.random.default_rng(3), chunk=77))
    assert not np.array_equal(s, sample_positions(src, 200, np.random.default_rng(4), chunk=1000))
