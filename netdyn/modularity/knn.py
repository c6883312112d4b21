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
  *most* similar of hundreds of images they are rare (none in any layer of the benchmark's VGG-11-BN at
  N = 500, even on pure-noise images). ``score`` refuses a graph whose total weight is not positive
  (Q is then undefined).
* Precision: the graph is that of the exact cosines of the given features. float64 features are used
  as they are. Other features are compared in float32 first (error of a cosine measured ≤ 1.1e-6 on VGG
  layers of D = 10 … 16,384); a row whose k-th and (k+1)-th similarities lie within REFINE_GAP = 1e-5
  of each other, where float32 rounding could swap the k-th neighbour, has its candidates (float32
  similarity ≥ k-th − REFINE_GAP) recomputed in float64. In layers where all cosines are ~1 (e.g. the
  bias-dominated linear outputs of an untrained net) that is every row and column, and float32 alone
  gave Q up to 0.013 off; in conv layers it is 1–3 % of rows and a few columns each. Such layers stay
  sensitive to the features' own rounding (a GPU and a CPU forward differ there). The margin assumes
  full float32 matmuls, so ``cosine_topk`` runs with torch's float32 matmul precision "highest" (no
  TF32, whose cosine error is ~1e-3) and restores the caller's setting afterwards.

Memory: S is never held whole. Each step takes ``chunk_size`` rows (c), computes their c×N block of S
with one matmul (on the features' device: the GPU when the tensor is there) and keeps only the k best per
row. Beyond the input (used in place when it is already a float32/float64 tensor on its device) the peak
is O(c·N + N·k): the c×N similarity block (4 or 8 bytes each) plus a c×N comparison mask and its c×N int64
running count for the tie rule, i.e. about 13·c·N bytes in float32 — 13 MB at c = 512, N = 2,000 —
against 4·N² for the dense matrix of the paper's code (plus 8·N² for its float64 adjacency). The float64
recomputation works on groups of b = REFINE_BLOCK = 64 rows against blocks of b candidate columns:
O(b·N + b·D) more (at most about 25 MB at N = 2,000, D = 16,384).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ModularityInputError

CHUNK_ROWS = 512  # rows of S per step (256: matmuls ~10 % slower on 2 cores)
NORM_FLOOR = 1e-8  # as the paper's code: |x| below this counts as this
REFINE_GAP = 1e-5  # float32 rows whose k-th and (k+1)-th similarities are closer get float64
REFINE_BLOCK = 64  # rows per float64 group, and columns converted to float64 at a time


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
    """(N, D) float tensor on the features' own device (no copy when already float32/float64)."""
    x = features if isinstance(features, torch.Tensor) else torch.as_tensor(np.asarray(features))
    x = x.detach()
    if x.ndim != 2:
        raise ModularityInputError("features", f"expected an (N, D) array, got shape {tuple(x.shape)}")
    if x.dtype != torch.float64:
        x = x.to(torch.float32)
    return x


def row_norms(x: torch.Tensor) -> torch.Tensor:
    """|x_i| floored at NORM_FLOOR; a non-finite norm (NaN or ±inf inside the row, or an overflowing
    square) is refused. Checked on the N norms, not element-wise: torch.isfinite(x) on N×D would
    allocate several N×D temporaries (measured 219 MB at 2,000 × 16,384)."""
    norms = x.norm(dim=1)
    if not bool(torch.isfinite(norms).all()):
        raise ModularityInputError("features", "contains NaN or infinite values (or values whose squares "
                                               "overflow)")
    return norms.clamp_min(NORM_FLOOR)


def check_k(k, n: int) -> int:
    """k must be an int with 1 ≤ k < N (a node has only N − 1 others)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ModularityInputError("k", f"must be an int >= 1, got {k!r}")
    if k >= n:
        raise ModularityInputError("k", f"k={k} needs more than k images, but there are N={n}; "
                                        f"use k < N (or more images)")
    return int(k)


def _best_k_low_index_ties(s: torch.Tensor, k: int, with_gap: bool = False):
    """Column indices (ascending) and values of each row's k largest entries, ties to lower indices; with
    ``with_gap`` also each row's k-th largest value and its gap to the (k+1)-th (needs k < columns).

    torch.topk's choice among ties is unspecified, so only its values are used: every entry above the k-th
    value is taken, and the remaining slots go to the leftmost entries equal to it.
    """
    best = torch.topk(s, k + 1 if with_gap else k, dim=1, sorted=True).values
    kth = best[:, k - 1:k]
    above = s > kth
    at = s == kth
    still_needed = k - above.sum(dim=1, keepdim=True)
    take = above | (at & (at.cumsum(dim=1) <= still_needed))
    cols = take.nonzero()[:, 1].view(s.shape[0], k)
    if not with_gap:
        return cols, s.gather(1, cols)
    return cols, s.gather(1, cols), best[:, k - 1], best[:, k - 1] - best[:, k]


def _float64_cosines(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Cosines of rows × cols in float64, the columns converted REFINE_BLOCK at a time."""
    xr = x[rows].double()
    out = torch.empty((len(rows), len(cols)), dtype=torch.float64, device=x.device)
    for c0 in range(0, len(cols), REFINE_BLOCK):
        xc = x[cols[c0:c0 + REFINE_BLOCK]].double()
        out[:, c0:c0 + REFINE_BLOCK] = (xr @ xc.T) / xc.norm(dim=1).clamp_min(NORM_FLOOR)[None, :]
    return out / xr.norm(dim=1).clamp_min(NORM_FLOOR)[:, None]


def _refine_close_rows(x, s, r0, close, kth, k, cols_out, vals_out) -> None:
    """Redo the selection of the ``close`` rows (local to the chunk starting at r0) in float64.

    Each float32 similarity is within e of the exact one, so the exact k-th value is within e of the
    float32 k-th and every exact top-k member has a float32 similarity ≥ kth − 2e: those candidates
    (kth − REFINE_GAP, with REFINE_GAP ≥ 2e) are the only columns recomputed. In a layer where every
    cosine is ~1 that is every column; in a conv layer a handful.
    """
    for g0 in range(0, len(close), REFINE_BLOCK):
        local = close[g0:g0 + REFINE_BLOCK]
        candidates = s[local] >= (kth[local] - REFINE_GAP)[:, None]
        union = candidates.any(dim=0).nonzero()[:, 0]  # ascending, so the tie rule keeps its meaning
        exact = _float64_cosines(x, local + r0, union)
        exact[~candidates[:, union]] = -torch.inf  # the diagonal is −∞ in s, so never a candidate
        cols, vals = _best_k_low_index_ties(exact, k)
        cols_out[local + r0], vals_out[local + r0] = union[cols], vals


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _lap(profile: dict | None, key: str, start: float, device: torch.device) -> float:
    if profile is None:
        return start
    _sync(device)
    now = time.perf_counter()
    profile[key] = profile.get(key, 0.0) + now - start
    return now


@contextmanager
def _full_float32_matmuls():
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def cosine_topk(features, k: int = 3, chunk_size: int = CHUNK_ROWS,
                profile: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k most cosine-similar other rows: ``(neighbours (N, k) int64, similarity (N, k) float64)``.

    Neighbours of a row are listed in increasing index order. ``profile``, when given, accumulates the
    seconds spent in the similarity matmuls (``"similarity"``), the selection (``"topk"``) and the float64
    recomputation of close rows (``"refine"``), and counts those rows (``"refined_rows"``).
    """
    x = as_feature_tensor(features)
    n = x.shape[0]
    k = check_k(k, n)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ModularityInputError("chunk_size", f"must be an int >= 1, got {chunk_size!r}")
    norms = row_norms(x)
    cols_out = torch.empty((n, k), dtype=torch.int64, device=x.device)
    vals_out = torch.empty((n, k), dtype=torch.float64, device=x.device)
    with torch.no_grad(), _full_float32_matmuls():
        for r0 in range(0, n, chunk_size):
            r1 = min(n, r0 + chunk_size)
            t = time.perf_counter()
            s = x[r0:r1] @ x.T
            s /= norms[r0:r1, None]
            s /= norms[None, :]
            rows = torch.arange(r1 - r0, device=x.device)
            s[rows, rows + r0] = -torch.inf
            t = _lap(profile, "similarity", t, x.device)
            cols_out[r0:r1], vals_out[r0:r1], kth, gap = _best_k_low_index_ties(s, k, with_gap=True)
            t = _lap(profile, "topk", t, x.device)
            if x.dtype != torch.float64:
                close = torch.nonzero(gap <= REFINE_GAP)[:, 0]
                _refine_close_rows(x, s, r0, close, kth, k, cols_out, vals_out)
                _lap(profile, "refine", t, x.device)
                if profile is not None:
                    profile["refined_rows"] = profile.get("refined_rows", 0) + len(close)
            del s
    return cols_out.cpu().numpy(), vals_out.cpu().numpy()


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
