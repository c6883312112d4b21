"""Weighted modularity of a partition, with graph-tool, and the public ``knn_modularity``.

Q = (1/2W) Σ_ij (A_ij − s_i s_j / 2W) δ(c_i, c_j), resolution 1, where A is the symmetric weighted
adjacency, s_i = Σ_j A_ij the strength and 2W = Σ_ij A_ij. graph-tool 2.45's
``graph_tool.inference.modularity(g, b, weight=w)`` computes Q = (1/2E) Σ_r (e_rr − e_r²/2E) over the
edges of g, E being the sum of edge weights, e_rr twice the weight inside community r and e_r the
strength of r. With each undirected pair stored once, weight A_ij, E = W and the two agree term by term
(checked against networkx's ``community.modularity`` in the tests). The graph is built undirected, from
NumPy arrays in one ``add_edge_list`` call; class labels are renumbered 0..C−1 first (graph-tool sizes its
community table by the largest label).
"""

from __future__ import annotations

import numpy as np

from .errors import ModularityInputError
from .knn import CHUNK_ROWS, KnnGraph, knn_graph


def class_codes(labels, n: int) -> np.ndarray:
    """Labels as int32 codes 0..C−1, refusing a length other than N or non-integer labels."""
    y = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ModularityInputError("labels", f"expected shape ({n},) to match the features, got {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        raise ModularityInputError("labels", f"expected integer class labels, got dtype {y.dtype}")
    return np.unique(y, return_inverse=True)[1].astype(np.int32)


def edge_modularity(n: int, src, dst, weight, labels) -> float:
    """Q of the undirected weighted graph on n nodes with edges (src[e], dst[e], weight[e]) — each pair
    once; parallel edges add up — under the partition ``labels``."""
    import graph_tool as gt
    from graph_tool.inference import modularity

    codes = class_codes(labels, n)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    total = float(weight.sum())
    if not total > 0:
        raise ModularityInputError("features", f"the graph's total edge weight is {total:g}, not positive: "
                                               "modularity is undefined (negative similarities dominate)")
    g = gt.Graph(directed=False)
    g.add_vertex(n)
    w = g.new_edge_property("double")
    g.add_edge_list(np.column_stack([src, dst, weight]), eprops=[w])
    b = g.new_vertex_property("int32_t")
    b.a[:] = codes
    return float(modularity(g, b, weight=w))


def graph_modularity(graph: KnnGraph, labels) -> float:
    """Q of a symmetrised kNN graph under the partition ``labels``."""
    return edge_modularity(graph.n, graph.src, graph.dst, graph.weight, labels)


def knn_modularity(features, labels, k: int = 3, chunk_size: int = CHUNK_ROWS) -> float:
    """Modularity Q of the cosine kNN graph of ``features`` ((N, D) array or tensor; on the GPU when the
    tensor is there) with the classes ``labels`` ((N,) ints) as communities (methods.md §3).

    k nearest others per node (default 3), weights = cosine similarity, A ← (A + Aᵀ)/2; see
    ``netdyn.modularity.knn`` for ties, negative similarities and the O(chunk_size·N + N·k) memory bound.
    Raises ModularityInputError naming the key (``k`` when k ≥ N, ``labels``, ``features``).
    """
    n = features.shape[0] if hasattr(features, "shape") else len(features)
    class_codes(labels, n)  # refuse bad labels before the expensive part
    return graph_modularity(knn_graph(features, k, chunk_size), labels)
