"""Signatures: keys and NaN safety, and width invariance of the normalised whole-graph aggregates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
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
