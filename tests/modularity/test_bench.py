"""bench/modularity.py end to end at a tiny size: it writes its JSON, both paths give the float64
reference's Q, and it records machine, load and commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_modularity_benchmark_tiny(tmp_path):
    out = tmp_path / "modularity.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "modularity.py"), "--n", "60", "--width", "1",
                    "--repeats", "1", "--out", str(out)],
                   check=True, capture_output=True, env={**os.environ, "BENCH_THREADS": "1"})
    res = json.loads(out.read_text())
    for key in ("platform", "cpu_count", "torch", "commit", "loadavg_start", "loadavg_end"):
        assert key in res["machine"]
    assert res["settings"]["n"] == 60 and res["settings"]["layers"] == 10
    assert res["widest_layer"]["layer"] == "features.0" and res["widest_layer"]["d"] == 8 * 32 * 32
    for path in ("ours", "dense"):
        assert res["widest_layer"]["peak_memory_measured"][path]["host_peak_rise_mb"] >= 0
        assert res["snapshot"][f"{path}_s"] > 0
    assert set(res["snapshot"]["ours_stages_s"]) >= {"forward", "similarity", "topk", "modularity"}
    assert res["same_q"]["max_ours_vs_float64"] < 1e-6
    assert len(res["same_q"]["layers"]) == 10
    assert res["settings"]["ours_q_backend"].startswith("graph-tool") and res["machine"]["graph_tool"]


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_modularity", ROOT / "bench" / "modularity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_numpy_modularity_equals_graph_tool_on_random_weighted_graphs():
    """The GPU image's stand-in for graph-tool's Q (bench/modularity.py: numpy_edge_modularity) against
    netdyn.modularity.score.edge_modularity (graph-tool) on random weighted graphs, parallel edges and an
    unused class included; and against networkx on one of them."""
    import networkx as nx
    import numpy as np
    import pytest

    from netdyn.modularity import score

    bench = _bench_module()
    assert bench.graph_tool is not None and score.edge_modularity is not bench.numpy_edge_modularity
    rng = np.random.default_rng(0)
    for n, m, classes in [(30, 60, 3), (200, 600, 10), (50, 400, 2)]:
        src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
        keep = src != dst
        src, dst, w = src[keep], dst[keep], rng.random(keep.sum())
        labels = rng.integers(0, classes, n) * 2  # gaps between the labels: codes are renumbered
        ref = score.edge_modularity(n, src, dst, w, labels)
        assert bench.numpy_edge_modularity(n, src, dst, w, labels) == pytest.approx(ref, abs=1e-12)
        assert abs(ref) > 1e-4  # not a trivial Q
    g = nx.MultiGraph()
    g.add_nodes_from(range(n))
    g.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist()))
    simple = nx.Graph()
    simple.add_nodes_from(range(n))
    for a, b, wt in g.edges(data="weight"):  # parallel edges add up, as in graph-tool
        simple.add_edge(a, b, weight=simple.get_edge_data(a, b, {"weight": 0.0})["weight"] + wt)
    parts = [set(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)]
    nx_q = nx.algorithms.community.modularity(simple, parts, weight="weight")
    assert bench.numpy_edge_modularity(n, src, dst, w, labels) == pytest.approx(nx_q, abs=1e-12)


def test_modularity_benchmark_runs_without_graph_tool(tmp_path, blocked_modules):
    """As on the GPU image (no graph-tool): ours' Q comes from NumPy, says so, and still equals the float64
    dense reference's networkx Q."""
    out = tmp_path / "modularity.json"
    env = {**os.environ, "BENCH_THREADS": "1", "PYTHONPATH": str(blocked_modules("graph_tool"))}
    subprocess.run([sys.executable, str(ROOT / "bench" / "modularity.py"), "--n", "60", "--width", "1",
                    "--repeats", "1", "--out", str(out)], check=True, capture_output=True, env=env)
    res = json.loads(out.read_text())
    assert res["settings"]["ours_q_backend"].startswith("numpy_edge_modularity") and res["machine"]["graph_tool"] is None
    assert res["same_q"]["max_ours_vs_float64"] < 1e-6
