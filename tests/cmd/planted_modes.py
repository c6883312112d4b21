"""Planted CMD data: every parameter is an affine function of one of a few known mode profiles, plus noise.

tests/cmd/ is deliberately not a package: with an __init__.py it would shadow the standard library's
``cmd`` module for the whole test session (pytest puts tests/ on sys.path), breaking pdb. Its modules are
imported by their (unique) base names, this helper as ``planted_modes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def profiles(T: int) -> np.ndarray:
    """Four clearly different mode shapes over T snapshots (rows)."""
    t = np.linspace(0.0, 1.0, T)
    return np.stack([1 - np.exp(-5 * t), np.sin(2 * np.pi * t), (2 * t - 1) ** 2, np.cos(3 * np.pi * t)])


@dataclass
class Planted:
    W: np.ndarray        # (T, N)
    clean: np.ndarray    # (T, N) without noise
    labels: np.ndarray   # planted mode, -1 for a constant parameter
    a: np.ndarray
    b: np.ndarray
    profiles: np.ndarray


def planted(T: int = 30, N: int = 3000, n_modes: int = 3, noise: float = 1e-3, seed: int = 0,
            constant_share: float = 0.0, dtype=np.float64) -> Planted:
    rng = np.random.default_rng(seed)
    P = profiles(T)[:n_modes]
    labels = rng.integers(0, n_modes, N)
    a = rng.choice([-1, 1], N) * rng.uniform(0.5, 2.0, N)
    b = rng.normal(0, 1, N)
    const = rng.random(N) < constant_share
    a[const], labels[const] = 0.0, -1
    clean = P[np.maximum(labels, 0)].T * a + b
    W = clean + noise * rng.normal(0, 1, (T, N)) * (~const)
    return Planted(W.astype(dtype), clean, labels, a, b, P)
