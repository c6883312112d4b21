"""netdyn.cmd.OnlineCMD: recursive least squares equals the batch fit of the same snapshots (1e-9,
float64), also far from zero; warm-up fixes the modes; errors name run and parameter."""

from __future__ import annotations

import numpy as np
import pytest

from netdyn import cmd

from planted_modes import planted


def _batch(W: np.ndarray, online: cmd.OnlineCMD):
    """Independent batch fit: np.polyfit of every parameter on its reference over all rows of W."""
    refs = W[:, online.reference_columns]
    a, b = np.empty(W.shape[1]), np.empty(W.shape[1])
    for m in range(online.n_modes):
        members = np.flatnonzero(online.labels == m)
        if len(members):
            a[members], b[members] = np.polyfit(refs[:, m], W[:, members], 1)
    return a, b


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_online_equals_batch(offset):
    p = planted(T=40, N=1500, n_modes=3, noise=1e-2, seed=11, constant_share=0.05)
    W = p.W + offset  # far from zero too: the centred statistics must not cancel
    on = cmd.OnlineCMD.start(W, 3, warmup=8, n_samples=300, chunk=100)
    warm = cmd.posthoc(W[:8], 3, n_samples=300, chunk=100)
    np.testing.assert_array_equal(on.labels, warm.labels)  # the warm-up modes, then fixed
    for t in range(8, 40):
        on.update(W[t])
        if t in (8, 20, 39):
            a, b = _batch(W[:t + 1], on)
            scale = np.abs(a) * np.abs(W[:t + 1, on.reference_columns]).max() + np.abs(b)
            assert np.max(np.abs(on.a - a) / scale) < 1e-9 and np.max(np.abs(on.b - b) / scale) < 1e-9
    np.testing.assert_array_equal(on.labels, warm.labels)
    # the same as the library's batch fit with these modes and references
    labels, a, b, _ = cmd.fit_all(cmd.as_source(W), W[:, on.reference_columns].T, chunk=999, labels=on.labels.copy())
    np.testing.assert_allclose(on.a, a, rtol=0, atol=1e-9 * np.abs(a).max())
    np.testing.assert_allclose(on.b, b, rtol=0, atol=1e-9 * np.abs(b).max())
    np.testing.assert_allclose(on.reconstruct(), a * W[-1, on.reference_columns][on.labels] + b, rtol=1e-12)
    assert np.isfinite(on.a).all() and np.isfinite(on.b).all()


def test_online_on_a_memmap_with_layers(tmp_path):
    p = planted(T=20, N=900, n_modes=2, noise=1e-3, seed=12, dtype=np.float32)
    np.save(tmp_path / "w.npy", p.W)
    mm = np.load(tmp_path / "w.npy", mmap_mode="r")
    layers = [("x", slice(100, 400)), ("y", slice(500, 900))]
    on = cmd.OnlineCMD.start(mm, 2, warmup=5, n_samples=100, layers=layers)
    for t in range(5, 20):
        on.update(mm[t])
    cols = np.r_[100:400, 500:900]
    refs = p.W[:, on.reference_columns].astype(np.float64)
    for i in (0, 299, 300, 699):
        a, b = np.polyfit(refs[:, on.labels[i]], p.W[:, cols[i]].astype(np.float64), 1)
        assert on.a[i] == pytest.approx(a, rel=1e-9, abs=1e-12) and on.b[i] == pytest.approx(b, rel=1e-9, abs=1e-12)


def test_errors_name_run_and_parameter():
    W = planted(T=6, N=30).W
    with pytest.raises(cmd.CMDError, match="run r9: warmup: warmup=7 snapshots, but the trajectory has only 6"):
        cmd.OnlineCMD.start(W, 2, warmup=7, run="r9")
    with pytest.raises(cmd.CMDError, match="run r9: warmup: must be an integer ≥ 3"):
        cmd.OnlineCMD.start(W, 2, warmup=2, run="r9")
    with pytest.raises(cmd.CMDError, match="run r9: n_modes"):
        cmd.OnlineCMD.start(W, 9, warmup=4, n_samples=8, run="r9")
    on = cmd.OnlineCMD.start(W, 2, warmup=4, run="r9")
    with pytest.raises(cmd.CMDError, match="run r9: row: expected one snapshot of 30 values"):
        on.update(W[4, :10])
