"""Benchmark: rolled-graph extraction, netdyn.graphs (graph-tool + scipy) vs networkx.

Why: the study extracts one graph per snapshot for every run and width, so extraction must stay cheap
at width 8; methods.md §1 also warns that networkx's eigenvector centrality is slow and may not
converge on these (near-)bipartite graphs. Both sides get the same VGG11-BN snapshots (default init,
CIFAR shape 3×32×32, seeds 0..SNAPSHOTS-1) and the same edge arrays, in one process with 2 threads.

    ours/core : rolled_graph + eigenvector (Perron vector, eigsh) + strength
    ours/all  : rolled_graph + node_properties (all properties) + signature
    networkx  : rolled_edge_arrays → nx.Graph, eigenvector_centrality(weight, max_iter=1000) + weighted
                degree; limited to NX_LIMIT_S per call (SIGALRM); larger widths are skipped once a width fails

Run:  .venv/bin/python bench/graph_extraction.py  [--widths 1 2 4 8] [--out bench/results/graph_extraction_cpu.json]
"""

from __future__ import annotations

import os

THREADS = 2
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, str(THREADS))  # before numpy/scipy load their BLAS
# Sleeping (not spinning) OpenMP waits: on a shared, oversubscribed CPU graph-tool's spinning barriers
# cost far more than the work at small widths. Must be set before libgomp loads; override from outside.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import graph_tool as gt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402
import torch  # noqa: E402
from graph_tool import spectral  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from netdyn import graphs as G  # noqa: E402
from netdyn.machine import describe  # noqa: E402
from netdyn.models import build_model  # noqa: E402

SNAPSHOTS = 3
NX_LIMIT_S = 120
NX_REPEAT_BELOW_S = 10.0  # repeat networkx over all snapshots only while one call is this cheap


class NxTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise NxTimeout(f"time limit {NX_LIMIT_S} s")


def ours_core(model):
    g = G.rolled_graph(model)
    adj = spectral.adjacency(g, weight=g.ep["weight"])
    lam, eig = G.perron_vector(adj)
    strength = np.asarray(adj.sum(axis=1)).ravel()
    return eig, strength


def ours_all(model):
    props = G.node_properties(G.rolled_graph(model))
    G.signature(props)
    return props


def networkx_core(model):
    n, src, dst, w = G.rolled_edge_arrays(model)
    h = nx.Graph()
    h.add_nodes_from(range(n))
    h.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist()))
    ev = nx.eigenvector_centrality(h, max_iter=1000, weight="weight")
    deg = dict(h.degree(weight="weight"))
    return np.array([ev[i] for i in range(n)]), np.array([deg[i] for i in range(n)])


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def machine_info() -> dict:
    return {
        **describe(),
        "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
        "graph_tool": gt.__version__.split()[0], "networkx": nx.__version__, "torch": torch.__version__,
        "threads": THREADS, "graph_tool_openmp": gt.openmp_enabled(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "graph_extraction_cpu.json"))
    args = ap.parse_args(argv)

    gt.openmp_set_num_threads(THREADS)
    torch.set_num_threads(THREADS)
    signal.signal(signal.SIGALRM, _alarm)
    load_start = os.getloadavg()

    torch.manual_seed(0)  # warm-up: first calls load graph-tool's modules
    ours_all(build_model("vgg", width=1))

    rows, nx_failed = [], None
    for width in args.widths:
        models = []
        for seed in range(SNAPSHOTS):
            torch.manual_seed(seed)
            models.append(build_model("vgg", depth=11, batchnorm=True, width=width, in_channels=3,
                                      image_size=32).eval())
        core = [timed(ours_core, m) for m in models]
        full = [timed(ours_all, m)[0] for m in models]
        n_nodes, n_edges = core[0][1][0].size, G.rolled_graph(models[0]).num_edges()
        row = {"width": width, "nodes": n_nodes, "edges": n_edges,
               "ours_core_s": statistics.median(t for t, _ in core),
               "ours_all_s": statistics.median(full),
               "ours_core_all_runs_s": [t for t, _ in core], "ours_all_all_runs_s": full}
        if nx_failed:
            row["networkx"] = f"failed: skipped, {nx_failed}"
        else:
            times, diffs = [], []
            for m, (_, (eig, strength)) in zip(models, core):
                signal.alarm(NX_LIMIT_S)
                try:
                    t, (ev, deg) = timed(networkx_core, m)
                except NxTimeout as e:
                    nx_failed = f"width {width}: {e}"
                    break
                except nx.PowerIterationFailedConvergence as e:
                    nx_failed = f"width {width}: no convergence ({e})"
                    break
                finally:
                    signal.alarm(0)
                times.append(t)
                diffs.append(float(max(np.abs(ev / np.linalg.norm(ev) - eig).max(),
                                       np.abs(deg - strength).max() / strength.max())))
                if t > NX_REPEAT_BELOW_S:
                    break
            if times and not nx_failed:
                row.update({"networkx_s": statistics.median(times), "networkx_all_runs_s": times,
                            "speedup_core": statistics.median(times) / row["ours_core_s"],
                            "speedup_all": statistics.median(times) / row["ours_all_s"],
                            "max_abs_diff_vs_networkx": max(diffs)})
            else:
                row["networkx"] = f"failed: {nx_failed}"
        rows.append(row)
        print(_fmt_row(row), flush=True)

    w1 = next((r for r in rows if r["width"] == 1), None)
    w8 = next((r for r in rows if r["width"] == 8), None)
    goals = {
        "speedup_width1_core": w1 and w1.get("speedup_core"),
        "speedup_width1_all": w1 and w1.get("speedup_all"),
        "goal_50x_at_width1_met": bool(w1 and (w1.get("speedup_core") or 0) >= 50),
        "width8_core_s": w8 and w8["ours_core_s"],
        "width8_all_s": w8 and w8["ours_all_s"],
        "goal_width8_under_5s_met": bool(w8 and w8["ours_all_s"] < 5.0),
    }
    result = {
        "benchmark": "rolled graph extraction, VGG11-BN default init, 3x32x32, graph-tool+scipy vs networkx",
        "machine": {**machine_info(), "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "settings": {"snapshots_per_width": SNAPSHOTS, "networkx_limit_s": NX_LIMIT_S,
                     "networkx_repeat_below_s": NX_REPEAT_BELOW_S, "statistic": "median seconds per snapshot"},
        "results": rows,
        "goals": goals,
    }
    load = max(load_start[0], os.getloadavg()[0])
    if load > (os.cpu_count() or 1):
        result["note"] = (f"shared machine: 1-min load average up to {load:.1f} on {os.cpu_count()} CPUs while "
                          f"this ran (other jobs), so every time here is pessimistic and noisy")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nloadavg start {load_start}, end {os.getloadavg()} on {os.cpu_count()} CPUs")
    print(json.dumps(goals, indent=1))
    print(f"wrote {out}")
    return result


def _fmt_row(r: dict) -> str:
    nxs = f"{r['networkx_s']:9.3f} s" if "networkx_s" in r else r["networkx"]
    ratio = (f"  speed-up core {r['speedup_core']:7.1f}x  all {r['speedup_all']:6.1f}x  "
             f"diff {r['max_abs_diff_vs_networkx']:.1e}") if "networkx_s" in r else ""
    return (f"width {r['width']}  nodes {r['nodes']:5d}  edges {r['edges']:8d}  ours core {r['ours_core_s']:7.3f} s"
            f"  ours all {r['ours_all_s']:7.3f} s  networkx {nxs}{ratio}")


if __name__ == "__main__":
    main()
