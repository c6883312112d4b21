"""Post-hoc correlation mode decomposition (Brokman et al., ICLR 2024; methods.md §2), streamed over N.

Steps: sample K moving trajectories over the layers (:mod:`.sampling`); |Pearson ρ| between them, centred
in float64; complete-linkage clustering of the rows of |ρ| (Euclidean) into at most M modes, numbered by
their number of samples (largest first); per mode the reference is the sample with the highest mean |ρ|
to its cluster; then one pass over all N parameters in blocks: each goes to the mode whose reference it
correlates with most (|ρ|) and gets the least-squares affine fit w_i(t) ≈ a_i r_m(t) + b_i.

Memory, for T snapshots, N modelled parameters, K samples, M modes and blocks of B columns (``chunk``):
  outputs          20·N bytes (labels int32, a and b float64) + M·T floats
  sampling         8 bytes per parameter of the largest layer (index draws) + 2·K·T·8 bytes
  clustering       K·T·8 (trajectories) + about 1.5·K²·8 bytes (|ρ| and scipy's condensed distances)
  per block        about (2·T + 4·M)·B·8 bytes (the block in float64, its residual, M×B correlations)
  file pages       a memory-mapped W is read a row of a block at a time, and what that row mapped is
                   dropped from the process before the next (:mod:`.source`): B values + 4 MiB at most
Nothing else grows with N. Default B = 2^19 / T (4 MiB per T×B float64 array). Measured on ResNet-20
layouts (T = 50, K = 1000, M = 10; bench/results/cmd_posthoc_cpu.json): peak RSS above the imports about
95 MiB at w4 (N = 4.33 M), 83 MiB of it the outputs; the rest about 12 MiB at w2, w4 and w8 alike.

Conventions: a parameter that never moves (zero variance) has |ρ| = 0 to every reference; it goes to
mode 0 (the first of the ties) with a = 0, b = its value. NaN correlations (non-finite values) count as
0. Coefficients live per parameter, never per mode, so a mode that ends up with no parameter (possible
only through rounding ties between references that move alike: equal |ρ| rows cluster together first)
leaves nothing undefined.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from .result import CMDResult
from .sampling import sample_positions
from .source import CMDError, Source, as_source

MIN_SNAPSHOTS = 3  # with 2 snapshots every pair of moving parameters has |ρ| = 1: no modes to find


def default_chunk(n_snapshots: int) -> int:
    """Columns per block: about 4 MiB per (T, B) float64 array (small enough to stay in cache)."""
    return max(1024, 2**19 // max(n_snapshots, 1))


def abs_correlation(X: np.ndarray) -> np.ndarray:
    """|Pearson ρ| between the columns of X (T, K), centred in float64 (a one-pass formula in float32
    loses everything to cancellation for a parameter far from zero that barely moves); NaN → 0."""
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(axis=0)
    norm = np.sqrt(np.einsum("tk,tk->k", Xc, Xc))
    Z = np.divide(Xc, norm, out=np.zeros_like(Xc), where=norm > 0)
    corr = np.abs(Z.T @ Z)
    np.nan_to_num(corr, copy=False, nan=0.0)
    return np.minimum(corr, 1.0, out=corr)


def cluster_modes(corr: np.ndarray, n_modes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mode of each sample (complete linkage, Euclidean distance between rows of |ρ|, at most n_modes
    clusters; modes numbered by size, ties by the first sample) and the linkage tree."""
    if len(corr) == 1:
        return np.zeros(1, dtype=np.int64), np.zeros((0, 4))
    tree = linkage(corr, method="complete", metric="euclidean")
    clusters = fcluster(tree, t=n_modes, criterion="maxclust")
    ids, first, sizes = np.unique(clusters, return_index=True, return_counts=True)
    order = np.lexsort((first, -sizes))  # by size descending, then by first member
    mode_of = np.empty(ids.max() + 1, dtype=np.int64)
    mode_of[ids[order]] = np.arange(len(ids))
    return mode_of[clusters], tree


def pick_references(corr: np.ndarray, sample_labels: np.ndarray) -> np.ndarray:
    """Per mode, the index (into the samples) of the member with the highest mean |ρ| to its cluster."""
    refs = []
    for m in range(sample_labels.max() + 1):
        members = np.flatnonzero(sample_labels == m)
        refs.append(members[np.argmax(corr[np.ix_(members, members)].mean(axis=1))])
    return np.array(refs, dtype=np.int64)


class AffineFitter:
    """Assignment and affine fit of blocks of parameters against fixed reference trajectories R (M, T)."""

    def __init__(self, references: np.ndarray):
        self.ref_mean = references.mean(axis=1)
        self.ref_centred = references - self.ref_mean[:, None]
        self.ref_var = np.einsum("mt,mt->m", self.ref_centred, self.ref_centred)
        self.ref_norm = np.sqrt(self.ref_var)

    def fit(self, block: np.ndarray, labels: np.ndarray | None = None):
        """Labels (given, or the most |ρ|-correlated reference), a, b and per-snapshot squared residuals
        and squared norms of a (T, B) float64 block (consumed: centred in place)."""
        const = block.max(axis=0) == block.min(axis=0)
        norm2 = np.einsum("tb,tb->t", block, block)
        mean = block.mean(axis=0)
        mean[const] = block[0, const]  # exactly its value, not a rounded mean
        block -= mean
        block[:, const] = 0.0
        cov = self.ref_centred @ block  # (M, B)
        cols = np.arange(block.shape[1])
        if labels is None:
            wnorm = np.sqrt(np.einsum("tb,tb->b", block, block))
            corr = np.abs(cov)
            corr /= self.ref_norm[:, None]
            np.divide(corr, wnorm, out=corr, where=wnorm > 0)
            corr[:, wnorm == 0] = 0.0
            np.nan_to_num(corr, copy=False, nan=0.0)
            labels = np.argmax(corr, axis=0)
            del corr
        a = cov[labels, cols] / self.ref_var[labels]
        b = mean - a * self.ref_mean[labels]
        residual = self.ref_centred.T[:, labels]  # (T, B)
        residual *= a
        np.subtract(block, residual, out=residual)
        return labels, a, b, np.einsum("tb,tb->t", residual, residual), norm2


def relative_error(err2: np.ndarray, norm2: np.ndarray) -> np.ndarray:
    """sqrt(err2 / norm2) per snapshot; 0 for an all-zero snapshot fitted exactly."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.sqrt(err2 / norm2)
    rel[(norm2 == 0) & (err2 == 0)] = 0.0
    return rel


def fit_all(source: Source, references: np.ndarray, chunk: int, labels: np.ndarray | None = None):
    """Labels, a, b and relative error per snapshot of every modelled parameter, one block at a time."""
    fitter = AffineFitter(references)
    n, T = source.n_params, source.n_snapshots
    out_labels = np.empty(n, dtype=np.int32) if labels is None else labels
    a, b = np.empty(n), np.empty(n)
    err2, norm2 = np.zeros(T), np.zeros(T)
    for c0, c1, p in source.blocks(chunk):
        given = None if labels is None else labels[p:p + c1 - c0]
        lab, a[p:p + c1 - c0], b[p:p + c1 - c0], e, w = fitter.fit(source.read(c0, c1), given)
        out_labels[p:p + c1 - c0] = lab
        err2 += e
        norm2 += w
    return out_labels, a, b, relative_error(err2, norm2)


def _check_int(run: str, name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise CMDError(run, name, f"must be an integer ≥ {low}, got {value!r}")
    return int(value)


def posthoc_source(source: Source, n_modes: int, *, n_samples: int = 1000, seed: int = 0,
                   chunk: int | None = None) -> CMDResult:
    """:func:`posthoc` on a :class:`~netdyn.cmd.source.Source`."""
    run, T = source.run, source.n_snapshots
    n_modes = _check_int(run, "n_modes", n_modes, 1)
    n_samples = _check_int(run, "n_samples", n_samples, 1)
    chunk = default_chunk(T) if chunk is None else _check_int(run, "chunk", chunk, 1)
    if T < MIN_SNAPSHOTS:
        raise CMDError(run, "snapshots", f"CMD needs at least {MIN_SNAPSHOTS} snapshots, the trajectory has {T}")
    if n_modes > n_samples:
        raise CMDError(run, "n_modes", f"n_modes={n_modes} is more than n_samples={n_samples}: each mode needs "
                                       f"at least one sampled trajectory")
    samples = sample_positions(source, n_samples, np.random.default_rng(seed), chunk)
    if len(samples) < n_modes:
        raise CMDError(run, "n_modes", f"n_modes={n_modes}, but only {len(samples)} modelled parameters move "
                                       f"(finite and not constant) in {T} snapshots")
    trajectories = source.gather(samples)
    corr = abs_correlation(trajectories)
    sample_labels, tree = cluster_modes(corr, n_modes)
    ref_idx = pick_references(corr, sample_labels)
    del corr
    references = np.ascontiguousarray(trajectories[:, ref_idx].T)
    del trajectories
    labels, a, b, rel = fit_all(source, references, chunk)
    ref_pos = samples[ref_idx]
    return CMDResult(run=run, layers=source.layer_slices(), source_layers=list(source.layers), labels=labels,
                     a=a, b=b, references=references, reference_positions=ref_pos,
                     reference_columns=source.source_columns(ref_pos), samples=samples,
                     sample_labels=sample_labels, linkage=tree, relative_error=rel)


def posthoc(W, n_modes: int, *, n_samples: int = 1000, seed: int = 0, layers=None, chunk: int | None = None,
            run: str | None = None) -> CMDResult:
    """Post-hoc CMD of W: a (T snapshots, N parameters) array or memmap, or a Trajectory.

    ``n_modes`` (M): at most this many modes; ``n_samples`` (K): trajectories sampled for the clustering;
    ``seed``: the sampling's random generator; ``layers``: (name, column slice) blocks to model, in
    column order (default: all columns of an array; a Trajectory's trainable parameters); ``chunk``:
    columns per block of the streaming pass (default :func:`default_chunk`); ``run``: the name errors
    give (default: a Trajectory's run id). Raises :class:`CMDError` naming run and parameter.
    """
    return posthoc_source(as_source(W, layers, run), n_modes, n_samples=n_samples, seed=seed, chunk=chunk)
