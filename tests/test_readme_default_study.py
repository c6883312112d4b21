"""scripts/readme_default_study.py: README's words follow the numbers of the committed default-study summary."""

from __future__ import annotations

import copy

import pytest

from scripts.readme_default_study import _verdict, default_cmd, default_modularity


class FakeSource:
    rel = "evidence/default_study/summary.json"

    def __init__(self, data):
        self.data = data

    def get(self, *keys):
        v = self.data
        for k in keys:
            v = v[k]
        return v

    def provenance(self):
        return f"`{self.rel}`, committed in abc1234"


SUMMARY = {
    "commit": "0123456789abcdef", "uncommitted_changes": False, "machine": "2-core test CPU",
    "cmd": {"deep": [{"run_id": "lenet-x", "arch_label": "lenet", "n_modes": 2, "modes_found": 2,
                      "rel_error_final": 0.05, "acc_sgd": 0.56, "acc_sgd_bn_recomputed": 0.56, "acc_cmd": 0.57, "acc_online_cmd": 0.60,
                      "acc_embedded_cmd": 0.55, "trained_fraction_final": 0.343, "acc_sgd_previous": 0.62}],
            "cheap_rel_error": [{"arch_label": "lenet", "n_modes": 2, "n_runs": 42, "median": 0.1, "q90": 0.2}]},
    "modularity": {"learned_fraction": 0.9,
                   "layers": [{"arch_label": "vgg11bn", "n_runs": 10, "n_layers": 11, "q_first_median": 0.12,
                               "q_last_median": 0.81, "q_max_median": 0.82, "rises_runs": 10}],
                   "plateaus": [{"arch_label": "vgg11bn", "dataset": "digits", "candidate_layers": ""}]},
    "pruning": {"summary": [{"arch_label": "vgg11bn", "comparison": "pruned-original", "n_seeds": 0,
                             "mean_diff": None, "ci_low": None, "ci_high": None, "confidence": 0.95,
                             "n_params_original": None, "n_params_variant": None, "dropped_layers": None,
                             "note": "no droppable plateau layer"}]},
}


@pytest.mark.parametrize("diff, words", [(0.04, "a gain of 4.0 points"), (-0.01, "a loss of 1.0 points"),
                                         (0.001, "no difference"), (-0.002, "no difference")])
def test_verdict_against_one_test_image(diff, words):
    assert _verdict(diff) == words


def test_cmd_block_states_gain_or_loss_from_the_numbers():
    text = default_cmd(FakeSource(SUMMARY))
    assert "| lenet-x | 2 | 0.050 | 56.0 | 56.0 | 57.0 | 60.0 | 55.0 | 34.3% |" in text
    assert "M=2: a gain of 4.0 points" in text and "Embedded CMD: a loss of 1.0 points against the SGD run" in text
    assert "Re-estimating BatchNorm" not in text  # no BatchNorm: both SGD numbers are equal
    flipped = copy.deepcopy(SUMMARY)
    flipped["cmd"]["deep"][0]["acc_online_cmd"] = 0.50
    assert "M=2: a loss of 6.0 points" in default_cmd(FakeSource(flipped))
    assert "0123456" in text and "75.36" in text  # commit of the study; the paper's number beside ours
    bn = copy.deepcopy(SUMMARY)  # a BatchNorm net: CMD is judged against the re-estimated SGD weights
    bn["cmd"]["deep"][0].update(acc_sgd=0.65, acc_sgd_bn_recomputed=0.95, acc_online_cmd=0.96)
    text = default_cmd(FakeSource(bn))
    assert "M=2: a gain of 1.0 points" in text and "moves the SGD weights from 65.0% to 95.0%" in text


def test_modularity_block_says_none_where_no_plateau_and_keeps_the_note():
    text = default_modularity(FakeSource(SUMMARY))
    assert "| vgg11bn | 10 | 11 | 0.12 | 0.81 | 0.82 | 10 of 10 | none |" in text
    assert "no droppable plateau layer" in text and "| – | – |" in text
