"""The pruning check (netdyn.modularity.pruning, pruning_stats, figures.pruning; `modularity.pruning` config)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from netdyn.config import SAFE_NAME, ConfigError, expand_grid, load_config, validate_config
from netdyn.models import build_model
from netdyn.modularity.pruning import (
    choose_setting, control_layers, droppable_layers, dropped_id, n_params, pruning_plan, run_pruning, with_seed,
)
from netdyn.modularity.pruning_stats import PRUNING_COLUMNS, SUMMARY_COLUMNS, mean_interval, pruning_summary, pruning_table

VGG_NAMES = ["features.0", "features.4", "features.8", "features.11", "features.15", "features.18", "features.22",
             "features.25"]  # VGG-11-BN's convs as the modularity read-out names them


@pytest.fixture(scope="module")
def default_config():
    return load_config("config/config.yaml")


@pytest.fixture(scope="module")
def grid(default_config):
    return expand_grid(default_config)


def _vgg_grid(grid, width=1):
    return [r for r in grid if r.arch_label == "vgg11bn" and r.width == width]


def _runs_table(specs, acc):
    """A tables/runs.csv stand-in: every spec complete, accuracy from acc(spec)."""
    return pd.DataFrame({"run_id": [s.run_id for s in specs], "arch_label": [s.arch_label for s in specs],
                         "dataset": [s.dataset for s in specs], "status": "complete",
                         "final_test_acc": [acc(s) for s in specs]})


def _plateaus(candidates: str, arch="vgg11bn"):
    return pd.DataFrame({"arch_label": [arch], "dataset": ["digits"], "candidate_layers": [candidates]})


# --------------------------------------------------------------------------------------------------------
# the control rule

def test_control_never_drops_a_candidate_and_drops_as_many():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        droppable = sorted(rng.choice(20, size=n, replace=False).tolist())
        candidates = sorted(rng.choice(droppable, size=int(rng.integers(0, n + 1)), replace=False).tolist())
        control = control_layers(candidates, droppable, seed=int(rng.integers(0, 5)))
        if len(candidates) > n - len(candidates):
            assert control is None  # not enough droppable layers outside the plateau
            continue
        assert len(control) == len(candidates)
        assert not set(control) & set(candidates)
        assert set(control) <= set(droppable) and list(control) == sorted(set(control))


def test_control_is_deterministic_per_seed_and_depends_on_it():
    draws = {control_layers([3, 4], range(8), seed) for seed in range(20)}
    assert control_layers([3, 4], range(8), 7) == control_layers([3, 4], list(range(8)), 7)
    assert len(draws) > 1  # the seed matters
    with pytest.raises(ValueError, match="not all droppable"):
        control_layers([9], range(8), 0)


# --------------------------------------------------------------------------------------------------------
# the plan: setting, pruned and control specs, run ids

def test_plan_drops_the_candidates_and_a_disjoint_control_with_safe_distinct_ids(grid):
    vgg = _vgg_grid(grid)
    runs = _runs_table(vgg, lambda s: 0.9 if (s.learning_rate, s.dropout) == (0.1, 0.5) else 0.5)
    plan = pruning_plan(vgg, runs, _plateaus("features.11;features.15;classifier.2"), arch_label="vgg11bn",
                        dataset="digits", seeds=[0, 1, 2], control_seed=0)
    assert plan["setting"] == "vgg11bn-digits-w1-lr0.1-do0.5-wd0-s0"
    assert plan["drop"] == [3, 4] and plan["dropped_layers"] == ["features.11", "features.15"]
    assert "classifier.2" in plan["note"]  # a linear layer cannot be dropped: said, not silently lost
    assert len(plan["control_drop"]) == 2 and not set(plan["control_drop"]) & {3, 4}
    specs = [(v, d) for v, d in plan["specs"]]
    assert [v for v, _ in specs] == ["original", "pruned", "control"] * 3
    ids = [d["run_id"] for _, d in specs]
    assert len(set(ids)) == len(ids) and all(SAFE_NAME.match(i) for i in ids)
    # seed 0 is the grid's run itself (reused); the other originals follow the grid's id scheme
    assert ids[0] == "vgg11bn-digits-w1-lr0.1-do0.5-wd0-s0" and ids[0] in {r.run_id for r in grid}
    assert ids[1] == "vgg11bn-digits-w1-lr0.1-do0.5-wd0-s0-drop3.4"
    by_id = {d["run_id"]: d for _, d in specs}
    grid_run = next(r for r in grid if r.run_id == ids[0]).to_dict()
    assert by_id[ids[0]] == grid_run  # identical config.json: train_runs keeps the finished grid run
    for variant, d in specs:
        seed_part = f"-s{d['seed']}"
        assert seed_part in d["run_id"]
        assert {k: v for k, v in d.items() if k not in ("run_id", "seed", "drop")} == \
            {k: v for k, v in grid_run.items() if k not in ("run_id", "seed")}  # the grid run's settings
        assert d.get("drop", []) == {"original": [], "pruned": [3, 4], "control": plan["control_drop"]}[variant]


def test_setting_is_the_best_mean_over_grid_seeds_first_of_equals():
    cfg = yaml.safe_load(open("config/config.yaml"))
    cfg["seeds"] = [0, 1]
    grid = [r for r in expand_grid(validate_config(cfg)) if r.arch_label == "vgg11bn" and r.width == 1]
    # lr 0.05/do0 has the single best run (0.99) but the lower mean; lr 0.1/do0 the best mean
    acc = {("0.05", 0): 0.99, ("0.05", 1): 0.5, ("0.1", 0): 0.9, ("0.1", 1): 0.9}
    runs = _runs_table(grid, lambda s: acc.get((f"{s.learning_rate:g}", s.seed), 0.1) if s.dropout == 0 else 0.1)
    assert choose_setting(grid, runs).run_id == "vgg11bn-digits-w1-lr0.1-do0-wd0-s0"
    tie = _runs_table(grid, lambda s: 0.5)
    assert choose_setting(grid, tie).run_id == grid[0].run_id
    assert choose_setting(grid, tie.assign(status="diverged")) is None


def test_no_candidate_records_why_and_plans_nothing(grid):
    vgg = _vgg_grid(grid)
    runs = _runs_table(vgg, lambda s: 0.9)
    for candidates, why in [("", "no droppable plateau candidate"), ("classifier.2;classifier.5", "classifier.2")]:
        plan = pruning_plan(vgg, runs, _plateaus(candidates), arch_label="vgg11bn", dataset="digits", seeds=[1, 2])
        assert plan["specs"] == [] and why in plan["note"]
    plan = pruning_plan(vgg, runs, _plateaus("features.4").iloc[:0], arch_label="vgg11bn", dataset="digits",
                        seeds=[1, 2])
    assert plan["specs"] == [] and "no plateau row" in plan["note"]
    record = run_pruning(plan, "/nonexistent")  # nothing to train: nothing touched
    assert record["runs"] == [] and "specs" not in record


def test_resnet_without_room_for_a_control_trains_no_control(grid):
    resnet = [r for r in grid if r.arch_label == "resnet8" and r.width == 1]
    assert droppable_layers(resnet[0]) == {"features.3": 0}  # resnet8: only block 0 keeps its shape
    plan = pruning_plan(resnet, _runs_table(resnet, lambda s: 0.9), _plateaus("features.3;features.4", "resnet8"),
                        arch_label="resnet8", dataset="digits", seeds=[1, 2])
    assert plan["drop"] == [0] and plan["control_drop"] == [] and "no control" in plan["note"]
    assert [v for v, _ in plan["specs"]] == ["original", "pruned"] * 2


def test_run_ids():
    assert dropped_id("a-s1", [4, 3]) == "a-s1-drop3.4"
    with pytest.raises(ValueError):
        dropped_id("a-s1", [])


def test_with_seed_keeps_a_precision_suffix(grid):
    spec = grid[0]
    assert with_seed(spec, 3).run_id == spec.run_id[:-1] + "3" and with_seed(spec, 3).seed == 3
    from dataclasses import replace

    bf16 = replace(spec, run_id=spec.run_id + "-bf16")
    assert with_seed(bf16, 12).run_id == spec.run_id[:-1] + "12-bf16"
    with pytest.raises(ValueError):
        with_seed(replace(spec, run_id="no-seed-here"), 2)


# --------------------------------------------------------------------------------------------------------
# parameter counts

def test_pruned_nets_have_fewer_parameters_counted_as_build_model_counts(grid):
    from dataclasses import replace

    for spec in (_vgg_grid(grid)[0], next(r for r in grid if r.arch_label == "resnet8")):
        full = n_params(spec)
        kwargs = dict(arch=spec.arch, width=spec.width, depth=spec.depth, batchnorm=spec.batchnorm, in_channels=1,
                      num_classes=10, image_size=16, dropout=spec.dropout)
        assert full == sum(p.numel() for p in build_model(**kwargs).parameters())
        for drop in ([0], [3, 4], [7], [1, 5, 6]) if spec.arch == "vgg" else ([0],):
            pruned = n_params(replace(spec, drop=tuple(drop)))
            assert pruned == sum(p.numel() for p in build_model(**kwargs, drop=drop).parameters())
            assert pruned < full, drop


# --------------------------------------------------------------------------------------------------------
# tables and the interval

def test_interval_equals_scipys():
    d = [0.012, -0.03, 0.004, 0.021, -0.008]
    mean, low, high = mean_interval(d, 0.9)
    ref = stats.ttest_1samp(d, 0.0).confidence_interval(0.9)
    assert mean == pytest.approx(np.mean(d), abs=1e-15)
    assert (low, high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert math.isnan(mean_interval([0.1])[1]) and math.isnan(mean_interval([])[0])


def _record(arch, accs, control=True, note=""):
    runs = []
    for seed, (o, p, c) in accs.items():
        runs.append({"run_id": f"{arch}-s{seed}", "variant": "original", "seed": seed, "drop": [],
                     "dropped_layers": [], "n_params": 100, "status": "complete", "final_test_acc": o})
        runs.append({"run_id": f"{arch}-s{seed}-drop3.4", "variant": "pruned", "seed": seed, "drop": [3, 4],
                     "dropped_layers": ["f.11", "f.15"], "n_params": 80, "status": "complete", "final_test_acc": p})
        if control:
            runs.append({"run_id": f"{arch}-s{seed}-drop1.6", "variant": "control", "seed": seed, "drop": [1, 6],
                         "dropped_layers": ["f.4", "f.22"], "n_params": 70,
                         "status": "diverged" if c is None else "complete", "final_test_acc": c})
    return {"arch_label": arch, "dataset": "digits", "setting": f"{arch}-s0", "candidate_layers": ["f.11", "f.15"],
            "dropped_layers": ["f.11", "f.15"], "drop": [3, 4], "control_layers": ["f.4", "f.22"] if control else [],
            "control_drop": [1, 6] if control else [], "note": note, "runs": runs}


def test_summary_pairs_by_seed_and_matches_scipys_paired_interval():
    accs = {1: (0.90, 0.91, 0.80), 2: (0.95, 0.93, None), 3: (0.85, 0.88, 0.70), 4: (0.9, 0.9, 0.75)}
    records = [_record("vgg11bn", accs), {**_record("resnet8", {}, control=False), "note": "no droppable plateau"}]
    table = pruning_table(records)
    assert list(table.columns) == list(PRUNING_COLUMNS) and len(table) == 12
    assert table.loc[table.variant == "pruned", "drop"].iloc[0] == "3.4"
    flat = pruning_summary(records, 0.95)
    assert list(flat.columns) == list(SUMMARY_COLUMNS) and len(flat) == 4
    summary = flat.set_index(["arch_label", "comparison"])
    pruned = summary.loc[("vgg11bn", "pruned-original")]
    o = [accs[s][0] for s in (1, 2, 3, 4)]
    p = [accs[s][1] for s in (1, 2, 3, 4)]
    ref = stats.ttest_rel(p, o).confidence_interval(0.95)
    assert pruned.n_seeds == 4 and pruned.mean_diff == pytest.approx(np.mean(np.subtract(p, o)))
    assert (pruned.ci_low, pruned.ci_high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert pruned.n_params_original == 100 and pruned.n_params_variant == 80
    control = summary.loc[("vgg11bn", "control-original")]
    assert control.n_seeds == 3  # seed 2's control diverged: its pair is left out
    assert control.mean_diff == pytest.approx(np.mean([0.80 - 0.90, 0.70 - 0.85, 0.75 - 0.9]))
    empty = summary.loc[("resnet8", "pruned-original")]
    assert empty.n_seeds == 0 and math.isnan(empty.mean_diff) and empty.note == "no droppable plateau"


def test_figure_is_drawn_as_png_and_pdf(tmp_path):
    from netdyn.figures.pruning import plot_pruning

    records = [_record("vgg11bn", {1: (0.9, 0.91, 0.8), 2: (0.95, 0.93, 0.9)}),
               {**_record("resnet8", {}, control=False), "note": "no droppable plateau candidate: nothing pruned"}]
    plot_pruning(pruning_table(records), pruning_summary(records), tmp_path / "pruning.png")
    assert (tmp_path / "pruning.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "pruning.pdf").read_bytes()[:5] == b"%PDF-"


# --------------------------------------------------------------------------------------------------------
# config keys

def _config(edit):
    cfg = yaml.safe_load(open("config/config.yaml"))
    edit(cfg)
    return cfg


@pytest.mark.parametrize("edit,key,words", [
    (lambda c: c["modularity"]["pruning"].update(architectures=["vgg11bn", "vgg16bn"]),
     "modularity.pruning.architectures[1]", "not an architecture of the grid"),
    (lambda c: c["modularity"]["pruning"].update(architectures=["lenet"]),
     "modularity.pruning.architectures[0]", "cannot drop layers"),
    (lambda c: c["modularity"]["pruning"].update(architectures=[]), "modularity.pruning.architectures", "names no"),
    (lambda c: c["modularity"]["pruning"].update(width=4), "modularity.pruning.width", "not in `widths`"),
    (lambda c: c["modularity"]["pruning"].update(seeds=[1]), "modularity.pruning.seeds", ""),
    (lambda c: c["modularity"].update(learned_fraction=0), "modularity.learned_fraction", ""),
    (lambda c: c["modularity"].update(learned_fraction=1.5), "modularity.learned_fraction", ""),
])
def test_bad_pruning_keys_stop_naming_the_key(edit, key, words):
    with pytest.raises(ConfigError, match=r"config key `" + key.replace("[", r"\[").replace("]", r"\]") + "`") as e:
        validate_config(_config(edit))
    assert words in str(e.value)


def test_pruning_is_off_by_default_and_off_with_the_stage():
    cfg = _config(lambda c: c["modularity"].pop("pruning"))
    assert validate_config(cfg)["modularity"]["pruning"]["enabled"] is False
    assert validate_config(cfg)["modularity"]["learned_fraction"] == 0.9
    # the stage switched off: a pruning section naming an unknown architecture is not checked (nothing runs)
    off = _config(lambda c: (c["modularity"].update(enabled=False),
                             c["modularity"]["pruning"].update(architectures=["vgg16bn"]),
                             c["predict"].update(feature_sets=["graph"])))
    validate_config(off)


# --------------------------------------------------------------------------------------------------------
# end to end on real training (tiny: 1 epoch, 2 seeds)

def test_run_pruning_trains_original_pruned_and_control_in_the_run_store(tmp_path, grid):
    from dataclasses import replace

    from netdyn.rundir import open_trajectory, read_config

    vgg = [replace(r, epochs=1, subepoch_snapshots=1) for r in _vgg_grid(grid)]
    runs = _runs_table(vgg, lambda s: 0.9)
    plan = pruning_plan(vgg, runs, _plateaus("features.15;features.18"), arch_label="vgg11bn", dataset="digits",
                        seeds=[1, 2], control_seed=3)
    record = run_pruning(json.loads(json.dumps(plan)), tmp_path)  # as the job does: the plan through JSON
    assert [r["variant"] for r in record["runs"]] == ["original", "pruned", "control"] * 2
    full = n_params(vgg[0])
    for r in record["runs"]:
        assert r["status"] in ("complete", "diverged") and (tmp_path / r["run_id"] / "result.json").is_file()
        stored = read_config(tmp_path / r["run_id"])["run"]  # the run's config.json: its RunSpec
        assert stored["run_id"] == r["run_id"] and stored.get("drop", []) == r["drop"]
        assert r["drop"] == {"original": [], "pruned": [4, 5], "control": plan["control_drop"]}[r["variant"]]
        assert (r["n_params"] < full) == (r["variant"] != "original")
        model = open_trajectory(tmp_path / r["run_id"]).model(0)
        assert tuple(model.drop) == tuple(r["drop"])  # the trajectory rebuilds the pruned net
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/trajectory.bin")}
    again = run_pruning(json.loads(json.dumps(plan)), tmp_path)  # finished runs are kept, not retrained
    assert again["runs"] == record["runs"]
    assert mtimes == {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/trajectory.bin")}
