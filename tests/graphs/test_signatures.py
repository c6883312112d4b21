"""Signatures: keys and NaN safety, and width invariance of the normalised whole-graph aggregates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from netdyn.graphs import AGGREGATORS, PROPERTIES, node_properties, rolled_graph, signature
from netdyn.models import build_model

from .helpers import block_net


def test_signature_keys_and_nan_safety():
    torch.manual_seed(0)
    model, _ = block_net(2, 2, 1)  # the output layer has one node
    sig = signature(node_properties(rolled_graph(model)))
    scopes = ["all", "input", "features.0.conv1", "features.0.conv2", "classifier.2"]
    assert list(sig) == [f"{s}.{p}.{a}" for s in scopes for p in PROPERTIES for a in AGGREGATORS]
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
            g = rolled_graph(build_model(arch, width=w, in_channels=3, image_size=32))
            sigs.append(signature(node_properties(g, clustering=False)))
        mean[w] = pd.DataFrame(sigs).mean()
    keys = [f"all.{p}.{a}" for p in PROPERTIES if p != "clustering" for a in ("mean", "median")]
    a, b = mean[1][keys], mean[4][keys]
    rel = (a - b).abs() / np.maximum(a.abs(), b.abs())
    assert (rel < WIDTH_TOL).all(), rel[rel >= WIDTH_TOL].to_dict()
    assert 0.8 < a["all.strength.mean"] < 1.05  # strength_init is the right scale at default init
    raw = node_properties(g, clustering=False)["strength"].mean()
    assert raw > 1.5 * a["all.strength.mean"]  # while the raw strength grows with width


# ----------------------------------------------------------------------------------------------
# values on a hand-made property table
# ----------------------------------------------------------------------------------------------

def hand_table() -> pd.DataFrame:
    """9 nodes in three layers, rows interleaved; skewed values so that mean ≠ median and skew ≠ kurtosis."""
    layer = [1, 0, 1, 1, 0, 2, 1, 0, 1]
    names = {0: "input", 1: "features.0", 2: "classifier.1"}
    return pd.DataFrame({
        "layer": layer,
        "layer_name": [names[i] for i in layer],
        "eigenvector": [0.05, 0.6, 0.1, 0.12, 0.3, 0.7, 0.08, 0.1, 0.2],
        "strength": [1.0, 4.0, 2.0, 9.0, 1.5, 3.0, 2.5, 0.5, 1.0],
        "pagerank": [0.02, 0.3, 0.05, 0.2, 0.1, 0.15, 0.08, 0.05, 0.05],
        "katz": [0.1, 0.5, 0.2, 0.25, 0.3, 0.6, 0.15, 0.35, 0.2],
        "clustering": [0.0, 0.0, 0.3, 0.1, 0.0, 0.0, 0.9, 0.0, 0.2],
        "strength_init": [1.0, 2.0, 1.0, 1.5, 0.5, 2.0, 1.0, 1.0, 0.5],
    })


def moments(x: np.ndarray) -> dict[str, float]:
    """The five aggregators from central moments: population std (ddof=0), skewness m3/m2^1.5 and excess
    kurtosis m4/m2² − 3 (the biased estimators: scipy.stats.skew(bias=True), kurtosis(fisher=True, bias=True))."""
    d = x - x.sum() / x.size
    m2, m3, m4 = (np.mean(d ** k) for k in (2, 3, 4))
    flat = m2 == 0
    s = np.sort(x)
    return {"mean": x.sum() / x.size, "median": (s[(x.size - 1) // 2] + s[x.size // 2]) / 2,
            "std": math.sqrt(m2), "skew": math.nan if flat else m3 / m2 ** 1.5,
            "kurtosis": math.nan if flat else m4 / m2 ** 2 - 3}


def test_signature_values_against_moments():
    props = hand_table()
    n = len(props)
    scaled = {"eigenvector": props["eigenvector"] * 3.0, "strength": props["strength"] / props["strength_init"],
              "pagerank": props["pagerank"] * 9.0, "katz": props["katz"] * 3.0, "clustering": props["clustering"]}
    sig = signature(props)
    scopes = {"all": np.ones(n, bool), "input": props["layer"].eq(0).to_numpy(),
              "features.0": props["layer"].eq(1).to_numpy(), "classifier.1": props["layer"].eq(2).to_numpy()}
    assert list(sig) == [f"{s}.{p}.{a}" for s in scopes for p in PROPERTIES for a in AGGREGATORS]
    for scope, mask in scopes.items():
        for p in PROPERTIES:
            want = moments(scaled[p].to_numpy()[mask])
            for a in AGGREGATORS:
                np.testing.assert_allclose(sig[f"{scope}.{p}.{a}"], want[a], rtol=1e-12, atol=1e-15,
                                           err_msg=f"{scope}.{p}.{a}")
    # the table discriminates: a swap of skew/kurtosis or mean/median, or ddof=1, would fail above
    x = scaled["strength"].to_numpy()
    assert abs(sig["all.strength.skew"] - sig["all.strength.kurtosis"]) > 0.1
    assert abs(sig["all.strength.mean"] - sig["all.strength.median"]) > 0.1
    assert abs(sig["all.strength.std"] - x.std(ddof=1)) > 0.05
    # the convention stated in netdyn.graphs.signatures, as scipy names it
    assert sig["all.strength.skew"] == pytest.approx(scipy.stats.skew(x, bias=True), rel=1e-12)
    assert sig["all.strength.kurtosis"] == pytest.approx(scipy.stats.kurtosis(x, fisher=True, bias=True), rel=1e-12)
    # undefined where a scope has one node or constant values
    assert sig["classifier.1.eigenvector.std"] == 0 and math.isnan(sig["classifier.1.eigenvector.skew"])
    assert math.isnan(sig["input.clustering.kurtosis"]) and sig["input.clustering.mean"] == 0
