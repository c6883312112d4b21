"""Writes rolled_golden.npz: the graphs netdyn's own models gave before the torch.fx walk (commit a776bdf).

Run with the graphs module to pin, e.g. the pre-fx single-file module:
    git show a776bdf:netdyn/graphs.py > /tmp/old_graphs.py
    .venv/bin/python tests/graphs/golden/make_golden.py /tmp/old_graphs.py
Only public functions are used, so the same script runs against netdyn.graphs (no argument).

Stored per architecture (width 1, torch.manual_seed(0), 3 input channels, 10 classes): layer names and
sizes, src/dst/init_scale of every rolled edge in edge order, three weighted sums of the edge weights; the
full weight array for lenet, vgg11bn and resnet8 (they hold every edge rule: conv, conv+BN, flattened
linear, linear, identity and projection shortcuts). Unrolled graphs (small images): counts and weighted
sums of src, dst and weight in edge order.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from netdyn.models import build_model  # noqa: E402

ROLLED = {"lenet": ("lenet", {}), "alexnet": ("alexnet", {}),
          **{f"vgg{d}{'bn' if bn else ''}": ("vgg", {"depth": d, "batchnorm": bn}) for d in (11, 13, 16, 19)
             for bn in (True, False)},
          "resnet8": ("resnet", {"depth": 8}), "resnet20": ("resnet", {"depth": 20})}
FULL_WEIGHTS = ("lenet", "vgg11bn", "resnet8")
UNROLLED = {"lenet": ("lenet", {"in_channels": 1}, 16), "alexnet": ("alexnet", {}, 8),
            "vgg11bn": ("vgg", {}, 8), "resnet8": ("resnet", {"depth": 8}, 8)}


def coefficients(n: int) -> np.ndarray:
    """(3, n) deterministic weights for checksums: ones, cos(i), 1 + i mod 13."""
    i = np.arange(n, dtype=np.float64)
    return np.vstack([np.ones(n), np.cos(i), 1.0 + i % 13])


def model(arch: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(arch, width=1, **kw)


def golden(G) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, (arch, kw) in ROLLED.items():
        m = model(arch, **kw)
        n, src, dst, w = G.rolled_edge_arrays(m)
        g = G.rolled_graph(m)
        out[f"{key}/n_nodes"] = np.array(n)
        out[f"{key}/layers"] = np.array(list(g.gp["layers"]))
        out[f"{key}/layer_sizes"] = np.array(list(g.gp["layer_sizes"]))
        out[f"{key}/src"] = src.astype(np.int32)
        out[f"{key}/dst"] = dst.astype(np.int32)
        out[f"{key}/init_scale"] = np.array(g.ep["init_scale"].a, dtype=np.float64)
        out[f"{key}/weight_sums"] = coefficients(w.size) @ w
        if key in FULL_WEIGHTS:
            out[f"{key}/weight"] = w
    for key, (arch, kw, size) in UNROLLED.items():
        g = G.unrolled_graph(model(arch, image_size=size, **kw), size)
        e = g.get_edges([g.edge_index])
        e = e[np.argsort(e[:, 2])]
        c = coefficients(len(e))
        out[f"unrolled/{key}/counts"] = np.array([g.num_vertices(), g.num_edges()])
        out[f"unrolled/{key}/sums"] = np.vstack([c @ e[:, 0], c @ e[:, 1], c @ np.array(g.ep["weight"].a)])
    return out


def load(path: str | None):
    if path is None:
        from netdyn import graphs
        return graphs
    spec = importlib.util.spec_from_file_location("netdyn._pinned_graphs", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


if __name__ == "__main__":
    np.savez_compressed(Path(__file__).with_name("rolled_golden.npz"),
                        **golden(load(sys.argv[1] if len(sys.argv) > 1 else None)))
