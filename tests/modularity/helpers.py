"""Independent references: the dense, brute-force construction the paper's code does (full N×N cosine
matrix, per-row ranking), written plainly in NumPy."""

from __future__ import annotations

import numpy as np


def brute_force_knn_adjacency(x: np.ndarray, k: int) -> np.ndarray:
    """(A + Aᵀ)/2 of the directed kNN matrix: dense cosine (norms floored at 1e-8), diagonal excluded,
    each row's k largest by a stable descending sort (ties: lower index first)."""
    x = np.asarray(x, dtype=np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)
    # pair by pair, so identical rows give bit-identical similarities (a BLAS matmul may round the
    # columns of one product differently, which would turn exact ties into near-ties)
    s = np.array([[float(np.dot(u, v)) for v in unit] for u in unit])
    np.fill_diagonal(s, -np.inf)
    a = np.zeros_like(s)
    for i in range(len(s)):
        order = np.argsort(-s[i], kind="stable")[:k]
        a[i, order] = s[i, order]
    return (a + a.T) / 2


def dense_modularity(a: np.ndarray, labels) -> float:
    """Q = (1/2W) Σ_ij (A_ij − s_i s_j / 2W) δ(c_i, c_j), straight from the formula."""
    labels = np.asarray(labels)
    s = a.sum(axis=1)
    two_w = a.sum()
    same = labels[:, None] == labels[None, :]
    return float(((a - np.outer(s, s) / two_w) * same).sum() / two_w)


def planted_clusters(rng, n_per_class: int, n_classes: int, dim: int = 32, spread: float = 0.05):
    """Tight clusters around mutually orthogonal centres: every point's nearest others share its class."""
    centres = np.eye(dim)[:n_classes] * 10.0
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, dim)) for c in centres])
    y = np.repeat(np.arange(n_classes), n_per_class)
    return x, y
