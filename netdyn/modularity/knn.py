"""Cosine k-nearest-neighbour graph of N feature vectors (methods.md §3), built in chunks of rows.

Construction, as the paper's code does it: cosine similarity S_ij = x_i·x_j / (|x_i| |x_j|) (a norm below
1e-8 is taken as 1e-8, so an all-zero row has similarity 0 to everything); each node i keeps its k most
similar *other* nodes (the diagonal is excluded), with weight S_ij; the directed kNN matrix is symmetrised
A = (A + Aᵀ)/2, so a pair chosen from both sides weighs S_ij and a pair chosen from one side S_ij/2.

Decisions taken here (the paper's code is silent or differs):
* Ties: among equally similar candidates the lower node index wins, so the graph is deterministic and
  equals a brute-force ``argsort(-S, kind="stable")[:k]`` per row.
* Diagonal: excluded (−∞) rather than zeroed as in the paper's code; the two differ only for a node with
  fewer than k positive similarities, where the zeroed diagonal there takes a slot as an invisible
  weight-0 self-loop.
* Negative similarities are kept as (negative) weights, as the paper's code keeps them; among the k
  *most* similar of hundreds of images they are rare. ``score`` refuses a graph whose total weight is
  not positive (Q is then undefined).
* Precision: float64 features are used as they are; anything else is computed in float32.

Memory: S is never held whole. Each step takes ``chunk_size`` rows (c), computes their c×N block of S
with one matmul (on the features' device: the GPU when the tensor is there) and keeps only the k best per
row. Beyond the input (used in place when it is already a float32/float64 tensor on its device) the peak
is O(c·N + N·k): the c×N similarity block (4 or 8 bytes each) plus a c×N comparison mask and its c×N int64
running count for the tie rule, i.e. about 13·c·N bytes in float32 — 6.5 MB at c = 256, N = 2,000 —
against 4·N² for the dense matrix of the paper's code (plus 8·N² for its float64 adjacency).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ModularityInputError

CHUNK_ROWS = 256  # rows of S per step; the block is CHUNK_ROWS × N
NORM_FLOOR = 1e-8  # as the paper's code: |x| below this counts as this


@dataclass(frozen=True)
class KnnGraph:
    """The symmetrised kNN graph as an undirected edge list: each pair once, ``src < dst``."""

    n: int
    src: np.ndarray  # int64
    dst: np.ndarray  # int64
    weight: np.ndarray  # float64, (A + Aᵀ)/2 at (src, dst)

    def dense(self) -> np.ndarray:
        """The N×N symmetric adjacency (for tests and small graphs only)."""
        a = np.zeros((self.n, self.n))
        a[self.src, self.dst] = self.weight
        a[self.dst, self.src] = self.weight
        return a


def as_feature_tensor(features) -> torch.Tensor:
    """(N, D) float tensor on the features' own device, refusing other shapes and non-finite values."""
    x = features if isinstance(features, torch.Tensor) else torch.as_tensor(np.asarray(features))
    x = x.detach()
    if x.ndim != 2:
        raise ModularityInputError("features", f"expected an (N, D) array, got shape {tuple(x.shape)}")
    if x.dtype != torch.float64:
        x = x.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ModularityInputError("features", "contains NaN or infinite values")
    return x


def check_k(k, n: int) -> int:
    """k must be an int with 1 ≤ k < N (a node has only N − 1 others)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ModularityInputError("k", f"must be an int >= 1, got {k!r}")
    if k >= n:
        raise ModularityInputError("k", f"k={k} needs more than k images, but there are N={n}; "
                                        f"use k < N (or more images)")
    return int(k)


def _best_k_low_index_ties(s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Column indices (ascending) and values of each row's k largest entries; ties go to lower indices.

    torch.topk's choice among ties is unspecified, so only its k-th value is used: every entry above it is
    taken, and the remaining slots go to the leftmost entries equal to it.
    """
    kth = torch.topk(s, k, dim=1, sorted=True).values[:, -1:]
    above = s > kth
    at = s == kth
    still_needed = k - above.sum(dim=1, keepdim=True)
    take = above | (at & (at.cumsum(dim=1) <= still_needed))
    cols = take.nonzero()[:, 1].view(s.shape[0], k)
    return cols, s.gather(1, cols)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cosine_topk(features, k: int = 3, chunk_size: int = CHUNK_ROWS,
                profile: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k most cosine-similar other rows: ``(neighbours (N, k) int64, similarity (N, k) float64)``.

    Neighbours of a row are listed in increasing index order. ``profile``, when given, accumulates the
    seconds spent in the similarity matmuls (``"similarity"``) and in the selection (``"topk"``).
    """
    x = as_feature_tensor(features)
    n = x.shape[0]
    k = check_k(k, n)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ModularityInputError("chunk_size", f"must be an int >= 1, got {chunk_size!r}")
    norms = x.norm(dim=1).clamp_min(NORM_FLOOR)
    cols_out = torch.empty((n, k), dtype=torch.int64, device=x.device)
    vals_out = torch.empty((n, k), dtype=x.dtype, device=x.device)
    with torch.no_grad():
        for r0 in range(0, n, chunk_size):
            r1 = min(n, r0 + chunk_size)
            t0 = time.perf_counter()
            s = x[r0:r1] @ x.T
            s /= norms[r0:r1, None]
            s /= norms[None, :]
            rows = torch.arange(r1 - r0, device=x.device)
            s[rows, rows + r0] = -torch.inf
            if profile is not None:
                _sync(x.device)
                t1 = time.perf_counter()
                profile["similarity"] = profile.get("similarity", 0.0) + t1 - t0
            cols_out[r0:r1], vals_out[r0:r1] = _best_k_low_index_ties(s, k)
            del s
            if profile is not None:
                _sync(x.device)
                profile["topk"] = profile.get("topk", 0.0) + time.perf_counter() - t1
    return cols_out.cpu().numpy(), vals_out.cpu().numpy().astype(np.float64)


def symmetrise(neighbours: np.ndarray, similarity: np.ndarray) -> KnnGraph:
    """(A + Aᵀ)/2 of the directed kNN matrix A[i, neighbours[i, j]] = similarity[i, j], as an edge list."""
    n, k = neighbours.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = neighbours.reshape(-1).astype(np.int64)
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    pair, inverse = np.unique(lo * n + hi, return_inverse=True)
    weight = np.bincount(inverse, weights=similarity.reshape(-1), minlength=pair.size) / 2.0
    return KnnGraph(n=n, src=pair // n, dst=pair % n, weight=weight)


def knn_graph(features, k: int = 3, chunk_size: int = CHUNK_ROWS, profile: dict | None = None) -> KnnGraph:
    """The symmetrised cosine kNN graph of the rows of ``features`` (see the module docstring)."""
    neighbours, similarity = cosine_topk(features, k, chunk_size, profile)
    t0 = time.perf_counter()
    graph = symmetrise(neighbours, similarity)
    if profile is not None:
        profile["symmetrise"] = profile.get("symmetrise", 0.0) + time.perf_counter() - t0
    return graph
