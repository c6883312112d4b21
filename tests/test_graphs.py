"""Tests for netdyn.graphs: hand-computed graphs, the documented size formulas, the Perron vector
against dense eigh, width invariance of signatures, the temporal summary and run checks."""

from __future__ import annotations

import json
import math

import graph_tool as gt
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from netdyn import graphs as G
from netdyn.models import BasicBlock, build_model
from netdyn.trajectory import TrajectoryError, TrajectoryWriter

gt.openmp_set_num_threads(1)  # the suite runs on 2 shared cores: OpenMP barriers only cost time here


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

class Net(nn.Module):
    """Minimal model obeying the netdyn.models contract."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, x):
        return self.classifier(self.features(x))


def set_kernels(conv: nn.Conv2d, norms) -> None:
    """Every k×k slice constant, so that ‖W[i, j]‖₂ = |norms[i][j]| and the sign is kept."""
    norms = torch.as_tensor(norms, dtype=torch.float32)
    kh, kw = conv.kernel_size
    with torch.no_grad():
        conv.weight.copy_((norms / math.sqrt(kh * kw))[:, :, None, None].expand_as(conv.weight))


def set_bn(bn: nn.BatchNorm2d, gamma, var) -> None:
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma, dtype=torch.float32))
        bn.running_var.copy_(torch.tensor(var, dtype=torch.float32))


def edge_dict(g) -> dict:
    e = g.get_edges([g.ep["weight"]])
    return {(int(min(a, b)), int(max(a, b))): w for a, b, w in e}


def assert_edges(g, expected: dict) -> None:
    got = edge_dict(g)
    assert sorted(got) == sorted(expected)
    for k, w in expected.items():
        assert got[k] == pytest.approx(w, rel=1e-6), k


def dense_perron(g) -> tuple[float, np.ndarray]:
    a = np.zeros((g.num_vertices(),) * 2)
    e = g.get_edges([g.ep["weight"]])
    a[e[:, 0].astype(int), e[:, 1].astype(int)] = e[:, 2]
    a[e[:, 1].astype(int), e[:, 0].astype(int)] = e[:, 2]
    vals, vecs = np.linalg.eigh(a)
    v = vecs[:, -1] * np.sign(vecs[:, -1].sum())
    return vals[-1], v


def plain_graph(edges, n, weights=None):
    g = gt.Graph(directed=False)
    g.add_vertex(n)
    g.ep["weight"] = g.new_ep("double")
    w = np.ones(len(edges)) if weights is None else np.asarray(weights, float)
    g.add_edge_list(np.column_stack([np.asarray(edges, float).reshape(-1, 2), w]), eprops=[g.ep["weight"]])
    return g


# ----------------------------------------------------------------------------------------------
# hand-computed rolled graphs
# ----------------------------------------------------------------------------------------------

def tiny_conv_net():
    """2 input channels → conv3x3(3)+BN → pool → conv1x1(2) → flatten(2×2×2) → linear(2); 6×6 input."""
    conv1, bn = nn.Conv2d(2, 3, 3, bias=False), nn.BatchNorm2d(3, eps=0.0)
    conv2, fc = nn.Conv2d(3, 2, 1), nn.Linear(8, 2)
    set_kernels(conv1, [[1, -2], [3, 0.5], [0, 4]])
    set_bn(bn, [2.0, -3.0, 0.5], [4.0, 1.0, 0.25])  # gains 1, 3, 1
    set_kernels(conv2, [[1, 2, -3], [4, 0, 6]])
    with torch.no_grad():  # W[o, c·4 + p]: ‖·‖ over p = 2, 5 | 1, 0
        fc.weight.copy_(torch.tensor([[1, 1, 1, 1, 3, 4, 0, 0], [0, 0, -1, 0, 0, 0, 0, 0]], dtype=torch.float32))
    return Net(nn.Sequential(conv1, bn, nn.ReLU(), nn.MaxPool2d(2), conv2, nn.ReLU()),
               nn.Sequential(nn.Flatten(), nn.Dropout(0.0), fc))


def test_tiny_conv_net_exact():
    model = tiny_conv_net()
    assert model.eval()(torch.zeros(1, 2, 6, 6)).shape == (1, 2)
    g = G.rolled_graph(model)
    assert list(g.gp["layers"]) == ["input", "features.0", "features.4", "classifier.2"]
    assert list(g.gp["layer_sizes"]) == [2, 3, 2, 2]
    assert list(g.vp["layer"].a) == [0, 0, 1, 1, 1, 2, 2, 3, 3]
    assert [g.vp["layer_name"][v] for v in g.vertices()][2] == "features.0"
    # nodes: input 0,1 | conv1 2,3,4 | conv2 5,6 | linear 7,8
    gain = [1.0, 3.0, 1.0]
    expected = {(j, 2 + i): abs(w) * gain[i] for i, row in enumerate([[1, -2], [3, 0.5], [0, 4]])
                for j, w in enumerate(row)}
    expected.update({(2 + j, 5 + i): abs(w) for i, row in enumerate([[1, 2, -3], [4, 0, 6]])
                     for j, w in enumerate(row)})
    expected.update({(5, 7): 2.0, (6, 7): 5.0, (5, 8): 1.0, (6, 8): 0.0})  # zero edges are kept
    assert_edges(g, expected)
    assert g.num_edges() == 16 and not g.is_directed()


def block_net(in_planes, planes, stride):
    blk = BasicBlock(in_planes, planes, stride)
    return Net(nn.Sequential(blk, nn.AdaptiveAvgPool2d(1)),
               nn.Sequential(nn.Flatten(), nn.Dropout(0.0), nn.Linear(planes, 1, bias=False))), blk


def test_basic_block_identity_exact():
    model, blk = block_net(2, 2, 1)
    set_kernels(blk.conv1, [[1, 2], [3, 4]])
    set_bn(blk.bn1, [1.0, 2.0], [1.0 - 1e-5, 1.0 - 1e-5])  # gains 1, 2
    set_kernels(blk.conv2, [[-5, 6], [7, 0.5]])
    set_bn(blk.bn2, [-0.5, 1.0], [4.0 - 1e-5, 1.0 - 1e-5])  # gains 0.25, 1
    with torch.no_grad():
        model.classifier[2].weight.copy_(torch.tensor([[-2.0, 3.0]]))
    g = G.rolled_graph(model)
    assert list(g.gp["layers"]) == ["input", "features.0.conv1", "features.0.conv2", "classifier.2"]
    # nodes: input 0,1 | conv1 2,3 | conv2 (block output) 4,5 | linear 6
    expected = {(0, 2): 1, (1, 2): 2, (0, 3): 6, (1, 3): 8,
                (2, 4): 1.25, (3, 4): 1.5, (2, 5): 7, (3, 5): 0.5,
                (0, 4): 1.0, (1, 5): 1.0,  # identity shortcut, weight 1, no BN
                (4, 6): 2.0, (5, 6): 3.0}
    assert_edges(g, expected)


def test_basic_block_projection_exact():
    model, blk = block_net(2, 3, 2)
    assert len(blk.shortcut) == 2
    set_kernels(blk.conv1, np.ones((3, 2)))
    set_kernels(blk.conv2, np.ones((3, 3)))
    set_kernels(blk.shortcut[0], [[1, -2], [3, 4], [0.5, 6]])
    set_bn(blk.shortcut[1], [2.0, 1.0, -1.0], [4.0 - 1e-5, 0.25 - 1e-5, 1.0 - 1e-5])  # gains 1, 2, 1
    g = G.rolled_graph(model)
    # nodes: input 0,1 | conv1 2,3,4 | conv2 5,6,7 | linear 8
    got = edge_dict(g)
    assert g.num_vertices() == 9 and g.num_edges() == 6 + 9 + 6 + 3
    short = {(0, 5): 1, (1, 5): 2, (0, 6): 6, (1, 6): 8, (0, 7): 0.5, (1, 7): 6}
    for k, w in short.items():
        assert got[k] == pytest.approx(w, rel=1e-6)
    for i in range(3):  # BN at its init: gain 1/sqrt(1 + eps)
        assert got[(0, 2 + i)] == pytest.approx(1 / math.sqrt(1 + 1e-5), rel=1e-6)


def test_unsupported_module_is_named():
    model = Net(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh()), nn.Sequential(nn.Flatten(), nn.Linear(2, 1)))
    with pytest.raises(TypeError, match="features.1.*Tanh"):
        G.rolled_graph(model)


# ----------------------------------------------------------------------------------------------
# documented size formulas
# ----------------------------------------------------------------------------------------------

def formula(arch, c, w, k):
    """The table of the module docstring (resnet8: n = 1)."""
    if arch == "lenet":
        return c + 226 * w + k, 6 * c * w + 12096 * w * w + 84 * k * w
    if arch == "alexnet":
        return c + 400 * w + k, 8 * c * w + 24384 * w * w + 128 * k * w
    if arch in ("vgg", "vgg-nobn"):
        return c + 408 * w + k, 8 * c * w + 20096 * w * w + 64 * k * w
    n = 1
    return c + (16 + 224 * n) * w + k, 16 * c * w + 10752 * n * w * w + (112 * n - 96) * w + 64 * k * w


ARCH_KW = {"lenet": {}, "alexnet": {}, "vgg": {}, "vgg-nobn": {"batchnorm": False}, "resnet8": {"depth": 8}}


@pytest.mark.parametrize("label", list(ARCH_KW))
@pytest.mark.parametrize("width", [1, 2])
def test_rolled_counts_match_formula(label, width):
    arch = label.split("-")[0].removesuffix("8")
    model = build_model(arch, width=width, in_channels=3, num_classes=10, image_size=32, **ARCH_KW[label])
    g = G.rolled_graph(model)
    assert (g.num_vertices(), g.num_edges()) == formula(label, 3, width, 10)
    sizes = G.graph_sizes(arch, [width], image_size=32, in_channels=3, **ARCH_KW[label]).iloc[0]
    assert (sizes.rolled_nodes, sizes.rolled_edges) == formula(label, 3, width, 10)
    names = list(g.gp["layers"])
    assert names[0] == "input" and names[1] == "features.0"
    assert np.all(np.diff(g.vp["layer"].a) >= 0)  # nodes in layer order
    if arch == "resnet":
        assert "features.3.conv1" in names and "features.3.conv2" in names


def test_rolled_graph_ignores_image_size():
    a = G.graph_sizes("vgg", [1], image_size=32).iloc[0]
    b = G.graph_sizes("vgg", [1], image_size=8, in_channels=3).iloc[0]
    assert (a.rolled_nodes, a.rolled_edges) == (b.rolled_nodes, b.rolled_edges)


def test_unrolled_lenet_formula_and_build():
    sizes = G.graph_sizes("lenet", [1, 2], image_size=32, in_channels=3)
    for w, row in zip((1, 2), sizes.itertuples()):
        assert row.unrolled_nodes == 1024 * 3 + 8084 * w + 10
        assert row.unrolled_edges == 117600 * 3 * w + 6304 * w + 298080 * w * w + 84 * 10 * w
    torch.manual_seed(0)
    g = G.unrolled_graph(build_model("lenet", width=1, in_channels=3, image_size=32), 32)
    assert (g.num_vertices(), g.num_edges()) == (sizes.unrolled_nodes[0], sizes.unrolled_edges[0])


@pytest.mark.parametrize("arch,kw", [("vgg", {}), ("resnet", {"depth": 8}), ("alexnet", {})])
def test_unrolled_arithmetic_matches_built_graph(arch, kw):
    model = build_model(arch, width=1, in_channels=1, image_size=8, **kw)
    g = G.unrolled_graph(model, 8)
    row = G.graph_sizes(arch, [1], image_size=8, in_channels=1, **kw).iloc[0]
    assert (g.num_vertices(), g.num_edges()) == (row.unrolled_nodes, row.unrolled_edges)
    assert np.all(g.ep["weight"].a >= 0)


def test_unrolled_tiny_exact():
    """1×3×3 input, 2×2 conv (valid) → 2×2, max-pool 2 → 1×1, linear 1 → 1."""
    conv, fc = nn.Conv2d(1, 1, 2, bias=False), nn.Linear(1, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, -2.0], [3.0, -4.0]]]]))
        fc.weight.fill_(-7.0)
    model = Net(nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2)), nn.Sequential(nn.Flatten(), fc))
    g = G.unrolled_graph(model, 3)
    assert list(g.gp["layers"]) == ["input", "features.0", "features.2", "classifier.1"]
    expected = {}
    k = [[1, 2], [3, 4]]
    for oy in range(2):
        for ox in range(2):
            for ky in range(2):
                for kx in range(2):
                    expected[((oy + ky) * 3 + ox + kx, 9 + oy * 2 + ox)] = k[ky][kx]
            expected[(9 + oy * 2 + ox, 13)] = 1.0  # pool window
    expected[(13, 14)] = 7.0
    assert_edges(g, expected)


def test_unrolled_padding_skips_taps():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    model = Net(nn.Sequential(conv), nn.Sequential(nn.Flatten(), nn.Linear(4, 1)))
    g = G.unrolled_graph(model, 2)
    assert g.num_edges() == 4 * 4 + 4  # each output of a 2×2 map sees 2×2 real pixels


def test_unrolled_refuses_huge():
    with pytest.raises(ValueError, match="max_edges"):
        G.unrolled_graph(build_model("lenet", width=1), 32, max_edges=1000)


# ----------------------------------------------------------------------------------------------
# eigenvector centrality
# ----------------------------------------------------------------------------------------------

def _check_against_dense(g):
    lam_d, v_d = dense_perron(g)
    props = G.node_properties(g)
    assert props.attrs["lambda_max"] == pytest.approx(lam_d, rel=1e-9)
    np.testing.assert_allclose(props["eigenvector"].to_numpy(), v_d, atol=1e-6)
    assert np.all(props["eigenvector"] >= 0)
    assert np.linalg.norm(props["eigenvector"]) == pytest.approx(1.0)
    return props


def test_eigenvector_bipartite_two_layer_net():
    torch.manual_seed(1)
    model = Net(nn.Sequential(nn.Conv2d(3, 8, 3)), nn.Sequential(nn.Flatten(), nn.Linear(8 * 4, 5)))
    g = G.rolled_graph(model)  # layers 3 | 8 | 5: bipartite (odd vs even layers)
    lam, _ = dense_perron(g)
    a = np.linalg.eigvalsh(G._adjacency(g, g.ep["weight"]).toarray())
    assert a[0] == pytest.approx(-lam)  # spectrum symmetric: power iteration would oscillate
    _check_against_dense(g)


@pytest.mark.parametrize("arch,kw", [("lenet", {}), ("resnet", {"depth": 8})])
def test_eigenvector_real_nets(arch, kw):
    torch.manual_seed(0)
    _check_against_dense(G.rolled_graph(build_model(arch, width=1, **kw)))


def test_eigenvector_resnet_block_non_bipartite():
    torch.manual_seed(0)
    model, _ = block_net(3, 4, 2)
    g = G.rolled_graph(model)
    lam, _ = dense_perron(g)
    a = np.linalg.eigvalsh(G._adjacency(g, g.ep["weight"]).toarray())
    assert a[0] > -lam + 1e-6  # triangles: not bipartite
    props = _check_against_dense(g)
    assert props["clustering"].max() > 0


@pytest.mark.parametrize("n", [3, 4, 9, 50])
def test_eigenvector_terminates_on_path(n):
    g = plain_graph([(i, i + 1) for i in range(n - 1)], n)
    props = _check_against_dense(g)
    assert props.attrs["lambda_max"] == pytest.approx(2 * math.cos(math.pi / (n + 1)))


def test_eigenvector_terminates_on_star():
    n = 30
    g = plain_graph([(0, i) for i in range(1, n)], n, weights=np.linspace(0.5, 2, n - 1))
    props = _check_against_dense(g)
    assert props["eigenvector"][0] == pytest.approx(1 / math.sqrt(2))  # centre holds half the mass


def test_eigenvector_degenerate_graphs():
    g = plain_graph([(0, 1), (1, 2)], 5, weights=[0.0, 0.0])  # all-zero weights
    props = G.node_properties(g)
    assert props.attrs["lambda_max"] == 0.0
    np.testing.assert_allclose(props["eigenvector"], 1 / math.sqrt(5))
    assert np.isfinite(props[["pagerank", "katz", "strength"]].to_numpy()).all()
    assert set(props["layer_name"]) == {"graph"} and props["strength_init"].isna().all()
    # two components: a triangle (λ = 2) and an edge (λ = 1): the triangle takes all the mass
    g = plain_graph([(0, 1), (1, 2), (0, 2), (3, 4)], 6)
    v = G.node_properties(g)["eigenvector"].to_numpy()
    np.testing.assert_allclose(v, [1 / math.sqrt(3)] * 3 + [0, 0, 0], atol=1e-9)
    assert G.perron_vector(sp.csr_matrix((0, 0)))[1].size == 0


def test_clustering_is_scale_free_limit():
    """Triangle 0-1-2 (weights 2, 3, 5) plus a pendant edge 0-3 (7): Σ_{j<k}(w_ij+w_ik)w_jk / s_i²,
    at any scale (graph-tool's own weighted formula breaks down when strengths are < 1)."""
    expected = [25 / 144, 21 / 49, 16 / 64, 0.0]
    for scale in (1e-3, 1.0, 1e3):
        g = plain_graph([(0, 1), (0, 2), (1, 2), (0, 3)], 4, weights=np.array([2, 3, 5, 7]) * scale)
        np.testing.assert_allclose(G.node_properties(g)["clustering"], expected, rtol=1e-7)


def test_node_properties_columns_and_strength():
    torch.manual_seed(0)
    g = G.rolled_graph(build_model("lenet", width=1))
    props = G.node_properties(g)
    assert list(props.columns) == ["layer", "layer_name", *G.PROPERTIES, "strength_init"]
    a = G._adjacency(g, g.ep["weight"])
    np.testing.assert_allclose(props["strength"], np.asarray(a.sum(axis=1)).ravel())
    assert props["pagerank"].sum() == pytest.approx(1.0)
    assert np.linalg.norm(props["katz"]) == pytest.approx(1.0)
    # katz with alpha = 0.5/λ solves x = αAx + 1 (up to normalisation)
    x = np.linalg.solve(np.eye(a.shape[0]) - 0.5 / props.attrs["lambda_max"] * a.toarray(), np.ones(a.shape[0]))
    np.testing.assert_allclose(props["katz"], x / np.linalg.norm(x), rtol=1e-4)
    assert (props["clustering"] == 0).all()  # bipartite
    assert props.groupby("layer_name", sort=False).size().to_dict()["input"] == 3


# ----------------------------------------------------------------------------------------------
# signatures and width invariance
# ----------------------------------------------------------------------------------------------

def test_signature_keys_and_nan_safety():
    torch.manual_seed(0)
    model, _ = block_net(2, 2, 1)  # the output layer has one node
    sig = G.signature(G.node_properties(G.rolled_graph(model)))
    scopes = ["all", "input", "features.0.conv1", "features.0.conv2", "classifier.2"]
    assert list(sig) == [f"{s}.{p}.{a}" for s in scopes for p in G.PROPERTIES for a in G.AGGREGATORS]
    assert sig["classifier.2.strength.std"] == 0.0
    assert math.isnan(sig["classifier.2.strength.skew"]) and math.isnan(sig["classifier.2.katz.kurtosis"])
    assert math.isfinite(sig["all.eigenvector.skew"])
    assert sig["all.pagerank.mean"] == pytest.approx(1.0)


WIDTH_TOL = 0.15  # relative; observed ≤ 5% for lenet/vgg/alexnet (3 seeds)


@pytest.mark.parametrize("arch", ["lenet", "vgg", "alexnet"])
def test_signature_width_invariance(arch):
    """Same architecture at widths 1 and 4 (default init, mean over 3 seeds): whole-graph means and
    medians of every normalised property agree within WIDTH_TOL."""
    mean = {}
    for w in (1, 4):
        sigs = []
        for seed in range(3):
            torch.manual_seed(seed)
            g = G.rolled_graph(build_model(arch, width=w, in_channels=3, image_size=32))
            sigs.append(G.signature(G.node_properties(g, clustering=False)))
        mean[w] = pd.DataFrame(sigs).mean()
    keys = [f"all.{p}.{a}" for p in G.PROPERTIES if p != "clustering" for a in ("mean", "median")]
    a, b = mean[1][keys], mean[4][keys]
    rel = (a - b).abs() / np.maximum(a.abs(), b.abs())
    assert (rel < WIDTH_TOL).all(), rel[rel >= WIDTH_TOL].to_dict()
    assert 0.8 < a["all.strength.mean"] < 1.05  # strength_init is the right scale at default init
    raw = G.node_properties(g, clustering=False)["strength"].mean()
    assert raw > 1.5 * a["all.strength.mean"]  # while the raw strength grows with width


# ----------------------------------------------------------------------------------------------
# temporal summary
# ----------------------------------------------------------------------------------------------

def synthetic_signatures():
    rows = []
    for run, epochs in (("a", [0, 0.5, 1, 2, 3]), ("b", [0, 0.5, 1])):  # b diverged after epoch 1
        for i, e in enumerate(epochs):
            rows.append({"run_id": run, "snapshot": i, "epoch": float(e), "x": 10 * e + (run == "b"), "y.z": -e})
    return pd.DataFrame(rows)


def test_temporal_summary_columns_and_nan():
    out = G.temporal_summary(synthetic_signatures(), window=2)
    assert list(out.index) == ["a", "b"] and out.index.name == "run_id"
    assert list(out.columns) == [
        "x@e0", "y.z@e0",
        "x@e0.5", "y.z@e0.5", "d(x)@e0.5", "d(y.z)@e0.5",
        "x@e1", "y.z@e1", "d(x)@e1", "d(y.z)@e1",
        "x@e2", "y.z@e2", "d(x)@e2", "d(y.z)@e2",
    ]
    assert out.loc["a", "x@e2"] == 20 and out.loc["a", "d(x)@e2"] == 10 and out.loc["a", "d(x)@e0.5"] == 5
    assert out.loc["b", "x@e1"] == 11 and out.loc["b", "d(y.z)@e1"] == -0.5
    assert np.isnan(out.loc["b", "x@e2"]) and np.isnan(out.loc["b", "d(x)@e2"])
    assert out.loc["a"].notna().all()


def test_temporal_summary_window_and_fixed_epochs():
    sigs = synthetic_signatures()
    assert [c for c in G.temporal_summary(sigs, window=0.75).columns if c.startswith("x")] == ["x@e0", "x@e0.5"]
    out = G.temporal_summary(sigs[sigs.run_id == "b"], window=3, epochs=[0, 1, 2, 3])
    assert [c for c in out.columns if "(x)" in c or c.startswith("x")] == \
        ["x@e0", "x@e1", "d(x)@e1", "x@e2", "d(x)@e2", "x@e3", "d(x)@e3"]
    assert out.loc["b", "d(x)@e1"] == 10 and out.loc["b", ["x@e2", "x@e3"]].isna().all()
    with pytest.raises(ValueError, match="run a"):
        G.temporal_summary(pd.concat([sigs, sigs.iloc[[1]]]), window=1)


# ----------------------------------------------------------------------------------------------
# trajectories and runs
# ----------------------------------------------------------------------------------------------

ARCH = {"arch": "lenet", "width": 1, "depth": None, "batchnorm": None, "in_channels": 1, "num_classes": 10,
        "image_size": 16, "dropout": 0.0}


def write_run(tmp_path, name="lenet-run", epochs=(0.0, 0.5, 1.0, 2.0, 6.0), arch=ARCH, template=None):
    torch.manual_seed(0)
    model = build_model(**arch)
    state = template if template is not None else model.state_dict()
    run_dir = tmp_path / name
    writer = TrajectoryWriter(run_dir, state, run_id=name, arch=arch)
    for i, e in enumerate(epochs):
        with torch.no_grad():
            for p in state.values():
                if p.is_floating_point():
                    p.mul_(1.05)
        writer.append(state, epoch=e, step=i, label=f"epoch {e:g}")
    (run_dir / "config.json").write_text(json.dumps({"run": {"run_id": name}, "model": arch}))
    (run_dir / "result.json").write_text(json.dumps({"run_id": name, "n_snapshots": len(epochs)}))
    return run_dir


def test_extract_run_and_snapshot_reuse(tmp_path):
    run_dir = write_run(tmp_path)
    sigs = G.extract_run(run_dir, max_epoch=5.0)
    assert list(sigs.columns[:3]) == ["run_id", "snapshot", "epoch"]
    assert list(sigs["epoch"]) == [0.0, 0.5, 1.0, 2.0] and list(sigs["snapshot"]) == [0, 1, 2, 3]
    from netdyn.trajectory import Trajectory
    traj = Trajectory.open(run_dir)
    # the reused graph (weights swapped in place) equals a fresh graph of the rebuilt model
    g_model = G.rolled_graph(traj.model(3))
    g_traj = G.rolled_graph_from_trajectory(traj, 3)
    np.testing.assert_allclose(g_model.ep["weight"].a, g_traj.ep["weight"].a, rtol=1e-6)
    fresh = G.signature(G.node_properties(g_model))
    row = sigs.iloc[3]
    for k in ("all.eigenvector.mean", "features.3.strength.median", "classifier.2.katz.std"):
        assert row[k] == pytest.approx(fresh[k], rel=1e-5)
    assert row["all.strength.mean"] > sigs.iloc[0]["all.strength.mean"]  # weights grew
    summary = G.temporal_summary(sigs, window=1)
    assert summary.shape == (1, (3 + 2) * (len(sigs.columns) - 3))


def test_extract_run_truncated(tmp_path):
    run_dir = write_run(tmp_path, "cut-run")
    data = run_dir / "trajectory.bin"
    data.write_bytes(data.read_bytes()[:-100])
    with pytest.raises(TrajectoryError, match=r"cut-run.*trajectory\.bin.*truncated"):
        G.extract_run(run_dir)


def test_extract_run_fewer_snapshots_than_result(tmp_path):
    run_dir = write_run(tmp_path, "short-run")
    (run_dir / "result.json").write_text(json.dumps({"n_snapshots": 9}))
    with pytest.raises(TrajectoryError, match=r"short-run.*trajectory\.bin.*truncated"):
        G.extract_run(run_dir)


def test_extract_run_wrong_architecture(tmp_path):
    vgg = build_model("vgg", width=1, in_channels=1, image_size=16)
    run_dir = write_run(tmp_path, "mixed-run", template=vgg.state_dict())  # lenet manifest, vgg tensors
    with pytest.raises(TrajectoryError, match=r"mixed-run.*trajectory\.bin.*does not belong"):
        G.extract_run(run_dir)
    run_dir = write_run(tmp_path, "lenet-ok")
    with pytest.raises(TrajectoryError, match=r"lenet-ok.*trajectory\.json.*requested"):
        G.extract_run(run_dir, arch={**ARCH, "arch": "vgg", "depth": 11, "batchnorm": True})
    (run_dir / "config.json").write_text(json.dumps({"model": {**ARCH, "width": 2}}))
    with pytest.raises(TrajectoryError, match=r"lenet-ok.*config\.json"):
        G.extract_run(run_dir)


def test_diverged_snapshots_are_skipped(tmp_path):
    run_dir = write_run(tmp_path, "nan-run", epochs=(0.0, 1.0))
    from netdyn.trajectory import Trajectory
    traj = Trajectory.open(run_dir)
    state = traj.state_dict(1)
    state["features.0.weight"][0, 0, 0, 0] = float("nan")
    TrajectoryWriter(run_dir, state, run_id="nan-run", arch=ARCH, resume=True).append(
        state, epoch=2.0, step=2, label="epoch 2")
    sigs = G.snapshot_signatures(Trajectory.open(run_dir), max_epoch=5)
    assert list(sigs["epoch"]) == [0.0, 1.0]
