"""Benchmark: the modularity stage per snapshot, netdyn.modularity vs the paper's code style, side by side.

Why: the stage reads every layer of every snapshot (issue 11 §8), and the widest layer decides memory.
One snapshot = one forward pass reading all layers + per layer the similarity, kNN graph and Q.

    ours  : modularity_curve(n_per_batch=N, n_batches=1): one hooked forward; per layer chunked torch
            matmul + top-k (CHUNK_ROWS rows at a time, on --device), (A + Aᵀ)/2 edge list, graph-tool Q
            (where graph-tool is not installed, e.g. the GPU image: the same Q from NumPy bincounts, recorded
            as settings.ours_q_backend)
    dense : the paper's code style: the same one hooked forward; per layer the normalised copy and the dense
            N×N cosine matrix (torch on --device, then NumPy), top-k per row (vectorised argpartition —
            faster than the per-row heapq loop of the original), a dense N×N float64 adjacency,
            (A + Aᵀ)/2, networkx.from_numpy_array and networkx community.modularity

Model: VGG-11-BN width 2 (PyTorch default init after torch.manual_seed(0)), 3×32×32 inputs, so the widest
layer (features.0) is N × 16,384. Images are SYNTHETIC: 10 classes, one random template per class plus
Gaussian noise (σ = 1), so Q is not ~0. Peak memory of the widest layer is measured in a child process
per path on random features of that shape: the rise of the resident-set high-water mark (VmHWM, reset
through /proc/self/clear_refs) above the resident set with the features already built; on cuda also the
rise of torch.cuda.max_memory_allocated.

Run:  .venv/bin/python bench/modularity.py [--device cuda] [--n 2000] [--repeats 3] [--width 2]
      (writes bench/results/modularity_<device>.json; on a GPU also --width 8, the standard VGG-11 whose
      widest layer is N × 65,536, with --out naming another file)
"""

from __future__ import annotations

import os

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, str(THREADS))  # before numpy/torch load their BLAS
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from netdyn.machine import describe  # noqa: E402
from netdyn.models import build_model  # noqa: E402
from netdyn.modularity import graph_modularity, knn_graph, knn_modularity, layer_outputs  # noqa: E402
from netdyn.modularity import modularity_curve  # noqa: E402
from netdyn.modularity.knn import CHUNK_ROWS  # noqa: E402
from netdyn.modularity import score  # noqa: E402

try:
    import graph_tool  # noqa: E402
except ModuleNotFoundError:  # the GPU image has none (and it is not on PyPI): Q by numpy_edge_modularity
    graph_tool = None

N_CLASSES = 10
K = 3


def numpy_edge_modularity(n: int, src, dst, weight, labels) -> float:
    """netdyn.modularity.score.edge_modularity's Q, Q = (1/2W) sum_r (e_rr - e_r^2 / 2W), from bincounts, for a
    machine without graph-tool (the GPU image): a library would be networkx, whose Python loop over the edges
    would add its own time to every layer's Q. Checked against graph-tool in tests/modularity/test_bench.py."""
    codes = score.class_codes(labels, n)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    two_w = 2 * weight.sum()
    if not two_w > 0:
        raise score.ModularityInputError("features", f"the graph's total edge weight is {two_w / 2:g}, not positive")
    strength = np.bincount(src, weight, n) + np.bincount(dst, weight, n)
    inside = weight[codes[src] == codes[dst]].sum()  # e_rr summed over r is twice this
    return float((2 * inside - (np.bincount(codes, strength) ** 2).sum() / two_w) / two_w)


Q_BACKEND = "graph-tool (netdyn.modularity)" if graph_tool else "numpy_edge_modularity (graph-tool not installed)"
if graph_tool is None:
    score.edge_modularity = numpy_edge_modularity  # graph_modularity (ours' Q) looks it up at each call


def synthetic_data(n: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % N_CLASSES
    templates = torch.randn(N_CLASSES, 3, 32, 32, generator=g)
    return templates[labels] + torch.randn(n, 3, 32, 32, generator=g), labels.numpy()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dense_layer_q(features: torch.Tensor, labels: np.ndarray, k: int, profile: dict) -> float:
    """The paper's code style for one layer (see the module docstring); stage seconds into profile."""
    def lap(key, start):
        _sync(features.device)
        now = time.perf_counter()
        profile[key] = profile.get(key, 0.0) + now - start
        return now

    t = time.perf_counter()
    norms = features.norm(dim=1, keepdim=True)
    unit = features / torch.clamp(norms, min=1e-8)
    sim = (unit @ unit.T).cpu().numpy()
    del unit
    np.fill_diagonal(sim, 0.0)  # as the original: self-similarity zeroed
    t = lap("similarity", t)
    nearest = np.argpartition(-sim, k, axis=1)[:, :k]
    t = lap("topk", t)
    rows = np.repeat(np.arange(len(sim)), k)
    adj = np.zeros(sim.shape)
    adj[rows, nearest.ravel()] = sim[rows, nearest.ravel()]
    adj = (adj + adj.T) / 2
    del sim
    t = lap("adjacency", t)
    graph = nx.from_numpy_array(adj)
    t = lap("networkx_graph", t)
    communities = [set(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)]
    q = nx.algorithms.community.modularity(graph, communities, weight="weight")
    lap("modularity", t)
    return float(q)


def ours_layer_q(features: torch.Tensor, labels: np.ndarray, k: int, profile: dict, chunk_size: int) -> float:
    """knn_modularity with its stages timed: knn_graph (similarity, topk, symmetrise) + graph-tool Q."""
    graph = knn_graph(features, k, chunk_size, profile)
    t = time.perf_counter()
    q = graph_modularity(graph, labels)
    profile["modularity"] = profile.get("modularity", 0.0) + time.perf_counter() - t
    return q


def dense_snapshot(model, images, labels, k, profile) -> dict[str, float]:
    t = time.perf_counter()
    outputs = layer_outputs(model, images)
    _sync(next(iter(outputs.values())).device)
    profile["forward"] = profile.get("forward", 0.0) + time.perf_counter() - t
    return {name: dense_layer_q(outputs.pop(name), labels, k, profile) for name in list(outputs)}


def ours_snapshot(model, images, labels, k, profile, chunk_size) -> dict[str, float]:
    curve = modularity_curve(model, images, labels, k=k, n_per_batch=len(images), n_batches=1,
                             chunk_size=chunk_size, profile=profile)
    return dict(zip(curve["layer_name"], curve["q_mean"]))


def timed_pair(fn_ours, fn_dense, repeats: int) -> tuple[tuple, tuple]:
    """Both paths alternately (so a change in the shared machine's load hits both), each as (median
    total seconds, per-stage seconds of the median run, its result)."""
    runs: tuple[list, list] = ([], [])
    for _ in range(repeats):
        for fn, kept in zip((fn_ours, fn_dense), runs):
            profile: dict = {}
            t = time.perf_counter()
            result = fn(profile)
            kept.append((time.perf_counter() - t, profile, result))
    out = []
    for kept in runs:
        kept.sort(key=lambda r: r[0])
        total, profile, result = kept[len(kept) // 2]
        out.append((total, {key: round(v, 4) for key, v in profile.items()}, result))
    return out[0], out[1]


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def memory_probe(path: str, n: int, d: int, device: str, chunk_size: int) -> dict:
    """In this (child) process: peak memory above the prepared features for one widest-layer Q."""
    dev = torch.device(device)
    features = torch.randn(n, d, generator=torch.Generator().manual_seed(0)).to(dev)
    labels = np.arange(n) % N_CLASSES
    small = torch.randn(50, 8, generator=torch.Generator().manual_seed(1)).to(dev)
    ours_layer_q(small, labels[:50], K, {}, chunk_size)  # imports and lazy inits happen outside the window
    dense_layer_q(small, labels[:50], K, {})
    base_alloc = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else 0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    base_rss = _status_kb("VmRSS")
    if path == "ours":
        knn_modularity(features, labels, k=K, chunk_size=chunk_size)
    else:
        dense_layer_q(features, labels, K, {})
    out = {"host_peak_rise_mb": round((_status_kb("VmHWM") - base_rss) / 1024, 1)}
    if dev.type == "cuda":
        out["device_peak_rise_mb"] = round((torch.cuda.max_memory_allocated(dev) - base_alloc) / 2**20, 1)
    return out


def probe_in_child(path: str, n: int, d: int, device: str, chunk_size: int) -> dict:
    cmd = [sys.executable, __file__, "--probe", path, "--n", str(n), "--probe-d", str(d),
           "--device", device, "--chunk-size", str(chunk_size)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def machine_info(device: torch.device) -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        **describe(device), "numpy": np.__version__,
        "networkx": nx.__version__, "graph_tool": graph_tool.__version__ if graph_tool else None,
        "threads": torch.get_num_threads(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "tree_clean_for_benchmarked_paths": git("status", "--porcelain", "--", "netdyn/modularity",
                                                "bench/modularity.py") == "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=CHUNK_ROWS)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--probe", choices=["ours", "dense"], help=argparse.SUPPRESS)
    parser.add_argument("--probe-d", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    if args.probe:
        print(json.dumps(memory_probe(args.probe, args.n, args.probe_d, args.device, args.chunk_size)))
        return

    device = torch.device(args.device)
    load_start = os.getloadavg()
    torch.manual_seed(0)
    model = build_model("vgg", depth=11, batchnorm=True, width=args.width, image_size=32).to(device).eval()
    images, labels = synthetic_data(args.n)
    images = images.to(device)
    widths = {name: out.shape[1] for name, out in layer_outputs(model, images[:2]).items()}
    widest = max(widths, key=widths.get)

    ours_snapshot(model, images[:200], labels[:200], K, {}, args.chunk_size)  # warm-up (lazy inits, cuBLAS)
    dense_snapshot(model, images[:200], labels[:200], K, {})
    (ours_s, ours_stages, q_ours), (dense_s, dense_stages, q_dense) = timed_pair(
        lambda p: ours_snapshot(model, images, labels, K, p, args.chunk_size),
        lambda p: dense_snapshot(model, images, labels, K, p), args.repeats)

    # the widest layer alone, features prepared beforehand
    feats = layer_outputs(model, images)[widest]
    (w_ours, w_ours_stages, _), (w_dense, w_dense_stages, _) = timed_pair(
        lambda p: ours_layer_q(feats, labels, K, p, args.chunk_size),
        lambda p: dense_layer_q(feats, labels, K, p), args.repeats)
    del feats
    memory = {path: probe_in_child(path, args.n, widths[widest], args.device, args.chunk_size)
              for path in ("ours", "dense")}

    # exact reference: the dense construction on the same features in float64 (untimed)
    outputs = layer_outputs(model, images)
    q_exact = {name: dense_layer_q(outputs.pop(name).double(), labels, K, {}) for name in list(outputs)}
    layers = [{"layer": name, "d": widths[name], "q_ours": q_ours[name], "q_dense": q_dense[name],
               "q_dense_float64": q_exact[name], "ours_vs_dense": abs(q_ours[name] - q_dense[name]),
               "ours_vs_float64": abs(q_ours[name] - q_exact[name]),
               "dense_vs_float64": abs(q_dense[name] - q_exact[name])} for name in widths]
    bytes_f = 4  # float32 features
    result = {
        "benchmark": "modularity stage per snapshot: netdyn.modularity (chunked torch top-k + graph-tool) "
                     "vs the paper's code style (dense N×N + networkx)",
        "machine": {**machine_info(device), "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "settings": {"arch": f"vgg11bn width {args.width}, default init (seed 0)", "input": "3x32x32",
                     "images": "synthetic: 10 classes, random template per class + N(0,1) noise",
                     "n": args.n, "k": K, "chunk_rows": args.chunk_size, "repeats": args.repeats,
                     "ours_q_backend": Q_BACKEND,
                     "statistic": "median over repeats, the two paths alternating (stages: of the median run)", "layers": len(widths),
                     "float32_matmul_precision": torch.get_float32_matmul_precision(),
                     "what_is_timed": "one snapshot: one hooked forward of N images + per layer similarity, "
                                      "kNN, graph and Q; widest layer: the same from prepared features"},
        "snapshot": {"ours_s": round(ours_s, 3), "ours_stages_s": ours_stages,
                     "dense_s": round(dense_s, 3), "dense_stages_s": dense_stages,
                     "speedup": round(dense_s / ours_s, 2)},
        "widest_layer": {
            "layer": widest, "n": args.n, "d": widths[widest],
            "ours_s": round(w_ours, 3), "ours_stages_s": w_ours_stages,
            "dense_s": round(w_dense, 3), "dense_stages_s": w_dense_stages,
            "peak_memory_measured": memory,
            "peak_memory_model_mb": {
                "features": round(args.n * widths[widest] * bytes_f / 2**20, 1),
                "ours_chunk_block": round(13 * args.chunk_size * args.n / 2**20, 1),
                "dense_normalised_copy": round(args.n * widths[widest] * bytes_f / 2**20, 1),
                "dense_similarity_plus_adjacency": round(args.n ** 2 * (bytes_f + 8 + 8) / 2**20, 1)},
        },
        "same_q": {"max_ours_vs_float64": max(r["ours_vs_float64"] for r in layers),
                   "max_dense_vs_float64": max(r["dense_vs_float64"] for r in layers),
                   "max_ours_vs_dense": max(r["ours_vs_dense"] for r in layers), "layers": layers},
    }
    if device.type == "cuda":
        result["goals"] = {"one_snapshot_under_1s_at_n2000": args.n == 2000 and ours_s < 1.0}
    else:
        result["note"] = ("shared 2-core CPU (other sessions' jobs running): times are pessimistic and noisy; "
                          "see loadavg_start/loadavg_end")
    out = args.out or ROOT / "bench" / "results" / f"modularity_{device.type}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("snapshot", "widest_layer")}, indent=1))
    print({k: v for k, v in result["same_q"].items() if k != "layers"}, "load", load_start, os.getloadavg())


if __name__ == "__main__":
    main()
