"""Check netdyn's rolled graph against the public code of the paper it reproduces (methods.md §1).

Vahedian, Li, Trivedi, Jin, Koutra, "Leveraging the Graph Structure of Neural Network Training
Dynamics" (CIKM 2022, arXiv 2111.05410) published its rolled graph as ``make_n2b_graph`` in
``GenGraph/gen_graph.py`` of github.com/pindapuj/NN_Code. That code is not part of netdyn and is not
copied here: the user fetches the repository and passes its path; this script imports the function
from there and compares, for the same random weights, its networkx graph with
``netdyn.graphs.rolled_edge_arrays``: node count, edge set and edge weights.

    .venv/bin/python bench/compare_reference_graphs.py --nn-code /path/to/NN_Code

How their function is fed, without editing their files:

* it reads the conv/linear layers from ``net._modules`` (top level only), while netdyn nests them in
  ``features``/``classifier``: we pass an ``nn.Sequential`` of the model's leaf modules, in module
  order, sharing the same parameter tensors;
* ``args`` only needs ``activation_graph=False`` (weight graph, no data set);
* ``kernel_size`` is used only for its node attributes (k·k of the conv kernels), not for the graph.

Compared: LeNet (widths 1, 2), AlexNet and VGG-11 without BatchNorm. Not compared: BatchNorm VGG and
ResNet, because their code has no BN gain and no shortcut edges (netdyn's choices there are its own).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netdyn.graphs import rolled_edge_arrays, rolled_graph  # noqa: E402
from netdyn.machine import describe  # noqa: E402
from netdyn.models import build_model  # noqa: E402

MODELS = {  # name: build_model kwargs (CIFAR-sized inputs, as their code assumes)
    "lenet_w1": dict(arch="lenet", width=1),
    "lenet_w2": dict(arch="lenet", width=2),
    "alexnet_w1": dict(arch="alexnet", width=1),
    "vgg11_nobn_w1": dict(arch="vgg", depth=11, batchnorm=False, width=1),
    "vgg11_nobn_w2": dict(arch="vgg", depth=11, batchnorm=False, width=2),
}
NOT_COMPARED = {
    "vgg_bn": "their make_n2b_graph skips BatchNorm2d (no per-channel gain on conv edges)",
    "resnet": "their make_n2b_graph has no residual/shortcut edges and only reads top-level modules",
}
SEED = 0


def _git(*args: str, cwd: Path) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _blob_sha(path: Path) -> str:
    """git's blob id of a file: shows which version of their gen_graph.py ran, even without a .git."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _machine() -> dict:
    import networkx
    return {**describe(), "numpy": np.__version__, "networkx": networkx.__version__}


def _their_function(nn_code: Path):
    sys.path[:0] = [str(nn_code), str(nn_code / "GenGraph")]  # gen_graph imports nn_homology from the root
    with contextlib.redirect_stdout(io.StringIO()):
        import gen_graph  # seeds torch/numpy at import: imported before our models are built
    return gen_graph.make_n2b_graph


def _flat_view(model: nn.Module) -> nn.Sequential:
    """The model's leaf modules, in order, at top level: what their function's ``_modules`` walk sees."""
    return nn.Sequential(*[m for m in model.modules() if not list(m.children())])


def _kernel_area(model: nn.Module) -> int | None:
    areas = {m.kernel_size[0] * m.kernel_size[1] for m in model.modules() if isinstance(m, nn.Conv2d)}
    return areas.pop() if len(areas) == 1 else None


def _node_map(model: nn.Module, in_channels: int) -> tuple[np.ndarray, bool]:
    """their node id -> our node id, layer by layer (their ids: inputs, then each conv/linear's units in
    ``_modules`` order; ours: the layer offsets netdyn's graph records under ``layers``/``layer_sizes``)."""
    g = rolled_graph(model)
    ours = dict(zip(g.gp["layers"], np.cumsum([0, *g.gp["layer_sizes"]])[:-1]))
    mapping = [np.arange(in_channels) + ours["input"]]
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            mapping.append(np.arange(m.weight.shape[0]) + ours[name])
    mapping = np.concatenate(mapping)
    return mapping, bool(np.array_equal(mapping, np.arange(mapping.size)))


def _edge_dict(pairs_a: np.ndarray, pairs_b: np.ndarray, weight: np.ndarray) -> dict:
    lo, hi = np.minimum(pairs_a, pairs_b), np.maximum(pairs_a, pairs_b)
    return dict(zip(zip(lo.tolist(), hi.tolist()), weight.tolist()))


def _compare(their_graph, mapping: np.ndarray, model: nn.Module) -> dict:
    n_ours, src, dst, w_ours = rolled_edge_arrays(model)
    ours = _edge_dict(src, dst, np.asarray(w_ours, dtype=np.float64))
    tu, tv, tw = zip(*((int(u), int(v), d["weight"]) for u, v, d in their_graph.edges(data=True)))
    theirs = _edge_dict(mapping[list(tu)], mapping[list(tv)], np.asarray(tw, dtype=np.float64))
    common = sorted(set(ours) & set(theirs))
    a = np.array([ours[e] for e in common])
    b = np.array([theirs[e] for e in common])
    diff = np.abs(a - b)
    return {
        "nodes_theirs": their_graph.number_of_nodes(), "nodes_ours": int(n_ours),
        "edges_theirs": their_graph.number_of_edges(), "edges_ours": int(src.size),
        "duplicate_edges_ours": int(src.size - len(ours)),
        "edges_only_theirs": len(set(theirs) - set(ours)), "edges_only_ours": len(set(ours) - set(theirs)),
        "edge_sets_match": set(ours) == set(theirs) and src.size == len(ours),
        "max_abs_diff": float(diff.max()), "max_rel_diff": float((diff / np.maximum(np.abs(b), 1e-30)).max()),
        "weight_range_ours": [float(a.min()), float(a.max())],
    }


def run(nn_code: Path, nn_code_commit: str | None) -> dict:
    make_n2b_graph = _their_function(nn_code)
    args = SimpleNamespace(activation_graph=False)
    results, controls = {}, {}
    for name, kwargs in MODELS.items():
        torch.manual_seed(SEED)
        model = build_model(**kwargs).eval()
        mapping, identity = _node_map(model, in_channels=3)
        area = _kernel_area(model)
        if area is None:
            results[name] = {"error": "their node-attribute step needs one conv kernel size (kernel_size=k*k)"}
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            g, _ = make_n2b_graph(_flat_view(model), input_shape=(1, 3, 32, 32), kernel_size=area, args=args)
        results[name] = {"build_model": kwargs, "seed": SEED, "node_map_is_identity": identity,
                         **_compare(g, mapping, model)}
        # control: their graph of these weights against ours of another seed must disagree
        torch.manual_seed(SEED + 1)
        other = build_model(**kwargs).eval()
        controls[name] = {"max_rel_diff_vs_seed_%d" % (SEED + 1): _compare(g, mapping, other)["max_rel_diff"]}
    gen_graph = nn_code / "GenGraph" / "gen_graph.py"
    return {
        "reference": {"repository": "github.com/pindapuj/NN_Code", "function": "GenGraph/gen_graph.py:make_n2b_graph",
                      "commit": nn_code_commit or _git("rev-parse", "HEAD", cwd=nn_code) or "unknown",
                      "gen_graph_py_blob_sha1": _blob_sha(gen_graph),
                      "paper": "Vahedian et al., CIKM 2022, arXiv 2111.05410"},
        "netdyn": {"commit": _git("rev-parse", "HEAD", cwd=REPO),
                   "uncommitted_paths_under_netdyn": (_git("status", "--porcelain", "--", "netdyn", cwd=REPO)
                                                      or "").splitlines()},
        "machine": _machine(),
        "weights": f"PyTorch default init after torch.manual_seed({SEED}); theirs float32 norms, ours float64",
        "node_mapping": ("their ids: the 3 input channels, then the output units of each Conv2d/Linear in "
                         "module order; ours: the same layers at the offsets of rolled_graph's "
                         "layers/layer_sizes; per layer, unit k -> our offset + k"),
        "adaptations": ["net: nn.Sequential of the model's leaf modules (their code reads top-level _modules)",
                        "args: SimpleNamespace(activation_graph=False)",
                        "kernel_size: k*k of the model's conv kernels (only their node attributes use it)"],
        "not_compared": NOT_COMPARED,
        "models": results,
        "control_other_seed": controls,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nn-code", type=Path, required=True, help="checkout of github.com/pindapuj/NN_Code")
    p.add_argument("--nn-code-commit", help="its commit, when the path is not a git checkout")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "reference_graphs.json")
    a = p.parse_args(argv)
    out = run(a.nn_code.resolve(), a.nn_code_commit)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    for name, r in out["models"].items():
        print(name, {k: r.get(k) for k in ("nodes_ours", "edges_ours", "edge_sets_match", "max_abs_diff",
                                           "max_rel_diff", "error") if k in r})
    bad = [n for n, r in out["models"].items()
           if not (r.get("edge_sets_match") and r.get("nodes_ours") == r.get("nodes_theirs"))]
    sys.exit(f"nodes or edge sets differ, or not compared: {bad}" if bad else 0)


if __name__ == "__main__":
    main()
