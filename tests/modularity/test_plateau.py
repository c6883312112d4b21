"""The plateau rule on constructed curves: rising curves have no candidates, flat runs and falls do,
min_run and the strict threshold at its boundary, layer 0 never, and the removable filter."""

from __future__ import annotations

import pandas as pd
import pytest

from netdyn.modularity import ModularityInputError, candidate_layers, plateau_layers, plateau_runs


def test_steadily_rising_curve_has_no_plateau():
    assert plateau_runs([0.1, 0.3, 0.5, 0.7, 0.8]) == []


def test_flat_run_in_the_middle_and_at_the_end():
    assert plateau_runs([0.1, 0.3, 0.5, 0.505, 0.507, 0.6]) == [(3, 4)]
    assert plateau_layers([0.1, 0.5, 0.8, 0.8, 0.8, 0.8]) == [3, 4, 5]
    assert plateau_runs([0.1, 0.2, 0.2, 0.2, 0.5, 0.5, 0.5, 0.9]) == [(2, 3), (5, 6)]


def test_falls_count_as_flat_degradation():
    # ΔQ = +0.3, −0.1, −0.05, +0.35: layers 2 and 3 degrade
    assert plateau_layers([0.1, 0.4, 0.3, 0.25, 0.6]) == [2, 3]


def test_min_run():
    curve = [0.1, 0.2, 0.2, 0.5]
    assert plateau_layers(curve, min_run=2) == []
    assert plateau_layers(curve, min_run=1) == [2]
    assert plateau_layers([0.1, 0.2, 0.2, 0.2, 0.2, 0.5], min_run=3) == [2, 3, 4]
    assert plateau_layers([0.1, 0.2, 0.2, 0.2, 0.5], min_run=3) == []


def test_threshold_is_strict():
    curve = [0.0, 0.5, 0.75, 1.0]  # steps 0.5, 0.25, 0.25, exact in binary
    assert plateau_layers(curve, threshold=0.25) == []
    assert plateau_layers(curve, threshold=0.25 + 1e-12) == [2, 3]


def test_layer_zero_is_never_a_candidate():
    assert plateau_layers([0.9, 0.5, 0.5]) == [1, 2]


def test_candidate_layers_reads_a_curve_frame_in_layer_order():
    frame = pd.DataFrame({"layer_index": [3, 0, 2, 1, 4],
                          "layer_name": ["c3", "c0", "c2", "c1", "fc"],
                          "q_mean": [0.508, 0.1, 0.505, 0.5, 0.9], "q_std": 0.01})
    assert candidate_layers(frame) == ["c2", "c3"]
    assert candidate_layers(frame, removable=["c3", "fc"]) == ["c3"]


@pytest.mark.parametrize("kwargs, key", [(dict(q=[0.1, float("nan"), 0.3]), "q_mean"),
                                         (dict(q=[[0.1, 0.2]]), "q_mean"),
                                         (dict(q=[0.1, 0.2], threshold=float("inf")), "threshold"),
                                         (dict(q=[0.1, 0.2], min_run=0), "min_run")])
def test_refusals_name_the_key(kwargs, key):
    with pytest.raises(ModularityInputError, match=rf"^{key}: "):
        plateau_runs(**kwargs)
