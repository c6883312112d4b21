"""netdyn.cmd.posthoc: planted modes and coefficients recovered, every step against plain float64 NumPy,
zero-variance and huge-offset parameters, empty modes, chunking, errors that name run and parameter."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from netdyn import cmd
from netdyn.cmd.decompose import abs_correlation, cluster_modes

from planted_modes import planted


def test_planted_modes_and_coefficients_recovered():
    p = planted(T=30, N=3000, n_modes=3, noise=1e-3, seed=1)
    res = cmd.posthoc(p.W, 3, n_samples=300, seed=0)
    assert res.n_modes == 3
    assert adjusted_rand_score(p.labels, res.labels) >= 0.95
    # a reference is itself a planted parameter r = a_r·p + b_r (+ noise), so the fit can only recover
    # a_i / a_r and b_i − a_i·b_r / a_r: compare with exactly that
    ref = res.reference_columns[res.labels]
    a_exp = p.a / p.a[ref]
    b_exp = p.b - p.a * p.b[ref] / p.a[ref]
    np.testing.assert_allclose(res.a, a_exp, atol=0.02 * np.abs(a_exp).max())
    np.testing.assert_allclose(res.b, b_exp, atol=0.02 * np.abs(b_exp).max())
    assert np.abs(res.reconstruct() - p.clean).max() < 0.02
    assert res.relative_error.max() < 5e-3 and res.relative_error.shape == (30,)
    assert res.mode_sizes().sum() == 3000 and res.references.shape == (3, 30)


def test_steps_equal_plain_float64_numpy():
    p = planted(T=25, N=800, n_modes=3, noise=0.05, seed=2)
    res = cmd.posthoc(p.W, 4, n_samples=200, seed=3)
    X = p.W[:, res.samples]
    corr = np.abs(np.corrcoef(X.T))
    np.testing.assert_allclose(abs_correlation(X), corr, atol=1e-12)
    # references: within each sampled mode, the member of highest mean |ρ| to its cluster
    for m in range(res.n_modes):
        members = np.flatnonzero(res.sample_labels == m)
        best = members[np.argmax(corr[np.ix_(members, members)].mean(axis=1))]
        assert res.reference_columns[m] == res.samples[best]
    np.testing.assert_array_equal(res.references, p.W[:, res.reference_columns].T)
    # modes numbered by the number of samples, largest first
    assert np.all(np.diff(np.bincount(res.sample_labels)) <= 0)
    # assignment: most |ρ|-correlated reference; fit: ordinary least squares of w on (r, 1)
    rho = np.abs(np.corrcoef(np.vstack([res.references, p.W.T])))[:res.n_modes, res.n_modes:]
    np.testing.assert_array_equal(res.labels, rho.argmax(axis=0))
    for i in range(0, 800, 37):
        a, b = np.polyfit(res.references[res.labels[i]], p.W[:, i], 1)
        assert res.a[i] == pytest.approx(a, abs=1e-10) and res.b[i] == pytest.approx(b, abs=1e-10)
    direct = np.linalg.norm(p.W - res.reconstruct(), axis=1) / np.linalg.norm(p.W, axis=1)
    np.testing.assert_allclose(res.relative_error, direct, rtol=1e-10)
    np.testing.assert_allclose(res.reconstruct(rows=[3, 7]), res.reconstruct()[[3, 7]])
    np.testing.assert_allclose(res.reconstruct(rows=-1, positions=slice(10, 20)), res.reconstruct()[-1, 10:20])


def test_clusters_match_scipy_and_number_by_size():
    rng = np.random.default_rng(0)
    corr = abs_correlation(rng.normal(size=(12, 40)).cumsum(axis=0))
    labels, tree = cluster_modes(corr, 5)
    from scipy.cluster.hierarchy import fcluster, linkage

    ours = fcluster(linkage(corr, "complete", metric="euclidean"), 5, "maxclust")
    assert adjusted_rand_score(ours, labels) == 1.0 and labels.max() < 5
    sizes = np.bincount(labels)
    assert np.all(np.diff(sizes) <= 0)


def test_zero_variance_parameters_give_no_nan_and_are_never_references():
    p = planted(T=20, N=2000, n_modes=3, noise=1e-3, seed=4, constant_share=0.6)
    W = p.W.copy()
    W[:, :5] = [0.0, 1e6, -3.5, 1e-30, 7.25]  # exact constants, some far from zero
    const = np.ptp(W, axis=0) == 0
    res = cmd.posthoc(W, 3, n_samples=2000, seed=0)  # K = N: every moving parameter is sampled, no constant
    assert not const[res.reference_columns].any() and not const[res.samples].any()
    assert len(res.samples) == (~const).sum()
    for arr in (res.a, res.b, res.relative_error, res.reconstruct()):
        assert np.isfinite(arr).all()
    assert (res.labels[const] == 0).all() and (res.a[const] == 0).all()
    np.testing.assert_array_equal(res.b[const], W[0, const])
    np.testing.assert_array_equal(res.reconstruct()[:, const], W[:, const])
    assert adjusted_rand_score(p.labels[~const], res.labels[~const]) >= 0.95


def test_huge_offset_tiny_motion_in_float32():
    # the trap: a one-pass float32 Pearson without centring gives |ρ| > 1, 0 or inf for such parameters
    rng = np.random.default_rng(5)
    T = 40
    prof = np.sin(np.linspace(0, 3, T))
    X = (1000.0 + 1e-2 * prof[:, None] * rng.uniform(0.5, 1, 60) + 1e-4 * rng.normal(size=(T, 60))).astype(np.float32)
    n = np.float32(T)
    s, s2 = X.sum(0), (X * X).sum(0)
    with np.errstate(all="ignore"):
        naive = (n * (X.T @ X) - np.outer(s, s)) / np.sqrt(np.outer(n * s2 - s * s, n * s2 - s * s))
    assert not (np.abs(naive) <= 1).all()  # the data do spring the trap (inf / NaN / |ρ| > 1)
    ours = abs_correlation(X)
    assert (ours <= 1).all()
    np.testing.assert_allclose(ours, np.abs(np.corrcoef(X.astype(np.float64).T)), atol=1e-12)
    # and in a whole decomposition: far-off parameters of mode 1 go to mode 1
    p = planted(T=T, N=500, n_modes=2, noise=1e-4, seed=6)
    W = np.hstack([p.W, X]).astype(np.float32)
    res = cmd.posthoc(W, 2, n_samples=300)
    assert adjusted_rand_score(p.labels, res.labels[:500]) >= 0.95
    sine_mode = np.argmax([abs(np.corrcoef(r, prof)[0, 1]) for r in res.references])
    assert (res.labels[500:] == sine_mode).all()
    assert np.isfinite(res.a).all()


def test_empty_mode_leaves_no_nan():
    # posthoc cannot make two modes of one trajectory (equal |ρ| rows are merged first), so give the fit
    # references of which the second duplicates the first: every tie goes to mode 0 and mode 1 is empty
    p = planted(T=12, N=600, n_modes=2, noise=1e-3, seed=7)
    r0, r1 = p.W[:, np.flatnonzero(p.labels == 0)[0]], p.W[:, np.flatnonzero(p.labels == 1)[0]]
    labels, a, b, rel = cmd.fit_all(cmd.as_source(p.W), np.stack([r0, r0, r1]), chunk=100)
    assert np.bincount(labels, minlength=3)[1] == 0
    assert np.isfinite(a).all() and np.isfinite(b).all() and np.isfinite(rel).all()
    assert adjusted_rand_score(p.labels, labels) >= 0.95


def test_chunked_equals_unchunked_and_memmap(tmp_path):
    p = planted(T=15, N=5000, n_modes=3, noise=1e-2, seed=8, constant_share=0.1, dtype=np.float32)
    layers = [("conv", slice(0, 3000)), ("bias", slice(3000, 3010)), ("fc", slice(3010, 5000))]
    whole = cmd.posthoc(p.W, 3, n_samples=400, layers=layers, chunk=5000)
    np.save(tmp_path / "w.npy", p.W)
    mm = np.load(tmp_path / "w.npy", mmap_mode="r")
    for chunk in (7, 1000):
        part = cmd.posthoc(mm, 3, n_samples=400, layers=layers, chunk=chunk)
        np.testing.assert_array_equal(part.samples, whole.samples)
        np.testing.assert_array_equal(part.labels, whole.labels)
        np.testing.assert_allclose(part.a, whole.a, rtol=0, atol=1e-12)
        np.testing.assert_allclose(part.b, whole.b, rtol=0, atol=1e-12)
        np.testing.assert_allclose(part.relative_error, whole.relative_error, rtol=1e-12)


def test_layers_spread_samples_and_subset_columns():
    p = planted(T=12, N=3000, n_modes=2, seed=9)
    layers = [("a", slice(0, 2000)), ("b", slice(2000, 2020)), ("c", slice(2500, 3000))]  # 2020..2500 unmodelled
    res = cmd.posthoc(p.W, 2, n_samples=100, layers=layers)
    assert res.n_params == 2520 and [n for n, _ in res.layers] == ["a", "b", "c"]
    assert res.layers[2][1] == slice(2020, 2520) and res.source_layers[2][1] == slice(2500, 3000)
    per_layer = np.bincount(np.searchsorted([2000, 2020], res.samples, side="right"), minlength=3)
    assert per_layer.sum() == 100 and (per_layer >= 10).all()  # about half evenly: small layer "b" is seen
    cols = np.r_[0:2020, 2500:3000]
    np.testing.assert_allclose(res.reconstruct(), p.W[:, cols], atol=0.05)
    assert res.mode_layer_counts().sum(axis=1).tolist() == [2000, 20, 500]


@pytest.mark.parametrize("kwargs, parameter", [
    ({"n_modes": 6, "n_samples": 5}, "n_modes"),
    ({"n_modes": 0}, "n_modes"),
    ({"n_modes": 2, "n_samples": 0}, "n_samples"),
    ({"n_modes": 2, "chunk": 0}, "chunk"),
    ({"n_modes": 2, "layers": [("x", slice(0, 99))]}, "layers"),
    ({"n_modes": 2, "layers": [("x", slice(5, 9)), ("y", slice(0, 3))]}, "layers"),
])
def test_errors_name_run_and_parameter(kwargs, parameter):
    W = planted(T=6, N=20, seed=10).W
    with pytest.raises(cmd.CMDError, match=f"run r-7: {parameter}") as e:
        cmd.posthoc(W, run="r-7", **kwargs)
    assert e.value.parameter == parameter and e.value.run == "r-7"


def test_too_few_snapshots_or_moving_parameters():
    W = planted(T=2, N=20).W
    with pytest.raises(cmd.CMDError, match="run r1: snapshots: .*at least 3 snapshots, the trajectory has 2"):
        cmd.posthoc(W, 2, run="r1")
    W = np.ones((5, 30))
    W[:, 0] = np.arange(5)
    with pytest.raises(cmd.CMDError, match="run <array>: n_modes: n_modes=2, but only 1 modelled parameters move"):
        cmd.posthoc(W, 2)
