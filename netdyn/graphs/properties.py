"""Node properties of a weighted graph (graph-tool + scipy): one row per node.

``eigenvector``: the Perron vector of the weighted adjacency A, unit L2 norm, non-negative. Layered
graphs are (near-)bipartite, so A has eigenvalues ±λ and plain power iteration oscillates (graph-tool's
``eigenvector()`` without ``max_iter`` never returns): we take the largest *algebraic* eigenpair with
``scipy.sparse.linalg.eigsh`` (Lanczos, start vector all ones), exact on bipartite graphs; if ARPACK ever
fails to converge, a shifted power iteration with an iteration cap takes over. Because the start vector
is all ones the result equals the limit of ``(A + cI)^t 1``: on a disconnected graph the component(s) of
largest spectral radius carry the mass and the rest get 0; a graph with no non-zero edge gets the uniform
vector 1/sqrt(n) and λ = 0.

``strength``: weighted degree (row sums of A). ``pagerank``: graph-tool's, damping 0.85, weighted (sums
to 1). ``katz``: graph-tool's, weighted, α = KATZ_FRACTION/λ_max (= 0.5/λ_max: the series converges with
ratio 0.5; α = 0 when λ = 0), unit L2 norm. ``clustering``: graph-tool's weighted local clustering.
Measured on 2.45: it treats weights as multiplicities, c_i = Σ_{j<k} (w_ij + w_ik)·w_jk / (s_i(s_i − 1)),
which is not scale-invariant and gives 0 or values > 1 when s_i < 1 (our weights are ~0.1). We call it
with the weights in units of 1e-9 × the smallest positive strength, which yields its scale-free limit
Σ_{j<k} (w_ij + w_ik)·w_jk / s_i² (relative error ≤ 1e-9). It costs O(Σ deg²) (about 1 s at VGG width 8)
and is 0 on the bipartite lenet/alexnet/vgg graphs; ``clustering=False`` skips it. ``strength_init``: the
strength the node would have at PyTorch's default init (Σ of the edge property ``init_scale``).

Not included: closeness and betweenness (all-pairs Dijkstra: 2.8 s at VGG width 4, ~20 s extrapolated at
width 8); HITS (on a bipartite graph A² has a degenerate top eigenvalue, so hubs/authorities are not unique).
"""

from __future__ import annotations

import logging
import math

import graph_tool as gt
import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from graph_tool import centrality as gt_centrality
from graph_tool import clustering as gt_clustering
from graph_tool import spectral as gt_spectral

log = logging.getLogger(__name__)

KATZ_FRACTION = 0.5  # alpha = KATZ_FRACTION / lambda_max
_CLUSTERING_UNITS = 1e9


def adjacency(g: gt.Graph, weight) -> sp.csr_matrix:
    """Weighted adjacency, built by graph-tool in C++ (symmetric for an undirected graph)."""
    return gt_spectral.adjacency(g, weight=weight).tocsr()


def _project_ones(vecs: np.ndarray) -> np.ndarray:
    """Projection of the all-ones vector on span(vecs): the non-negative representative of a
    (possibly degenerate) top eigenspace."""
    x = vecs @ (vecs.T @ np.ones(vecs.shape[0]))
    return x if np.linalg.norm(x) > 0 else vecs[:, 0]


def _finish(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)  # Perron vector: non-negative (flips the sign and clears -1e-17 noise)
    return x / np.linalg.norm(x)


def perron_vector(a: sp.spmatrix, *, max_iter: int = 100_000) -> tuple[float, np.ndarray]:
    """(λ_max, unit non-negative eigenvector) of a symmetric non-negative matrix; always returns.

    Lanczos for the largest algebraic eigenvalue is exact on bipartite graphs where power iteration
    oscillates; see the module docstring for the disconnected and all-zero cases.
    """
    n = a.shape[0]
    if n == 0:
        return 0.0, np.zeros(0)
    a = sp.csr_matrix(a, dtype=np.float64)
    a.eliminate_zeros()
    if a.nnz == 0:
        return 0.0, np.full(n, 1.0 / math.sqrt(n))
    if n < 3:  # ARPACK needs k < n - 1 room
        vals, vecs = np.linalg.eigh(a.toarray())
        top = vals >= vals[-1] - 1e-12 * max(abs(vals[-1]), 1.0)
        return float(vals[-1]), _finish(_project_ones(vecs[:, top]))
    try:
        vals, vecs = spla.eigsh(a, k=1, which="LA", v0=np.ones(n), tol=0)
        return float(vals[0]), _finish(vecs[:, 0])
    except spla.ArpackNoConvergence:
        log.warning("ARPACK did not converge on a %d-node graph; using shifted power iteration", n)
    shift = float(abs(a).sum(axis=1).max())  # ≥ |every eigenvalue|: A + shift·I is positive semi-definite
    x = np.full(n, 1.0 / math.sqrt(n))
    for _ in range(max_iter):
        y = a @ x + shift * x
        y /= np.linalg.norm(y)
        if np.abs(y - x).max() < 1e-13:
            x = y
            break
        x = y
    return float(x @ (a @ x)), _finish(x)


def _values(prop) -> np.ndarray:
    """Copy of a property map's values while the map is alive: ``.a`` is a view into the map's
    memory, which is freed with a temporary map (reading it afterwards returns garbage)."""
    return np.array(prop.a, dtype=np.float64)


def _clustering(g: gt.Graph, weight, strength: np.ndarray) -> np.ndarray:
    """graph-tool's weighted local clustering in its scale-free limit (module docstring)."""
    pos = strength[strength > 0]
    if pos.size == 0:
        return np.zeros(g.num_vertices())
    scaled = g.new_ep("double")
    scaled.a = weight.a * (_CLUSTERING_UNITS / pos.min())
    return _values(gt_clustering.local_clustering(g, weight=scaled))


def node_properties(g: gt.Graph, *, threads: int | None = None, clustering: bool = True) -> pd.DataFrame:
    """One row per node: layer, layer_name and the properties in PROPERTIES, plus strength_init.

    ``threads`` sets graph-tool's OpenMP threads (process-wide) when given. ``clustering=False``
    skips the one O(Σ deg²) property (column then NaN). ``df.attrs["lambda_max"]`` holds λ_max.
    """
    if threads is not None:
        gt.openmp_set_num_threads(int(threads))
    n = g.num_vertices()
    w = g.ep["weight"]
    adj = adjacency(g, w)
    strength = np.asarray(adj.sum(axis=1)).ravel()
    lam, eig = perron_vector(adj)
    if "layer" in g.vp:
        layer = np.array(g.vp["layer"].a, dtype=np.int64)
        names = np.asarray(list(g.gp["layers"]), dtype=object)[layer] if "layers" in g.gp else \
            np.asarray([g.vp["layer_name"][v] for v in g.vertices()], dtype=object)
    else:
        layer, names = np.zeros(n, dtype=np.int64), np.full(n, "graph", dtype=object)
    init = (_values(g.degree_property_map("out", weight=g.ep["init_scale"])) if "init_scale" in g.ep
            else np.full(n, np.nan))
    df = pd.DataFrame({
        "layer": layer,
        "layer_name": names,
        "eigenvector": eig,
        "strength": strength,
        "pagerank": _values(gt_centrality.pagerank(g, weight=w)),
        "katz": _values(gt_centrality.katz(g, alpha=KATZ_FRACTION / lam if lam > 0 else 0.0, weight=w)),
        "clustering": _clustering(g, w, strength) if clustering else np.full(n, np.nan),
        "strength_init": init,
    })
    df.index.name = "node"
    df.attrs["lambda_max"] = lam
    return df
