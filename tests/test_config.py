"""Tests for netdyn.config: validation messages, defaults, the run grid, run ids and training groups, and
that Snakemake stops on a bad config (and plans the paper grid) through the same code."""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from netdyn.config import (
    ConfigError,
    RunSpec,
    expand_grid,
    group_size,
    job_groups,
    job_options,
    load_config,
    resolve_device,
    training_groups,
    validate_config,
)

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


# --------------------------------------------------------------------------------------------------------
# bad configs: every one is rejected with a ConfigError naming the key at fault

def _set(path: str, value):
    def edit(c):
        *parents, last = path.split(".")
        d = c
        for p in parents:
            d = d.setdefault(p, {})
        d[last] = value
    return edit


def _del(path: str):
    def edit(c):
        *parents, last = path.split(".")
        d = c
        for p in parents:
            d = d[p]
        del d[last]
    return edit


def _arch(i: int, **kv):
    def edit(c):
        c["architectures"][i].update(kv)
    return edit


THREE_ARCHS = [{"name": "lenet"}, {"name": "vgg", "depth": 11, "batchnorm": True}, {"name": "resnet", "depth": 8}]

BAD_CONFIGS = {
    # id: (edit, key path that the message must name)
    "unknown dataset": (_set("datasets", ["digits", "imagenet"]), "datasets[1]"),
    "unknown arch": (lambda c: c["architectures"].append({"name": "mlp"}), "architectures[3].name"),
    "vgg depth 12": (_arch(1, depth=12), "architectures[1].depth"),
    "resnet depth 10": (_arch(2, depth=10), "architectures[2].depth"),
    "resnet depth 2": (_arch(2, depth=2), "architectures[2].depth"),
    "resnet depth 26 (6n+2, not built)": (_arch(2, depth=26), "architectures[2].depth"),
    "depth on lenet": (_arch(0, depth=5), "architectures[0].depth"),
    "batchnorm on lenet": (_arch(0, batchnorm=True), "architectures[0].batchnorm"),
    "batchnorm off on resnet": (_arch(2, batchnorm=False), "architectures[2].batchnorm"),
    "duplicate architecture": (lambda c: c["architectures"].append({"name": "vgg"}), "architectures"),
    "width 0": (_set("widths", [1, 0]), "widths[1]"),
    "negative learning rate": (_set("hyperparameters.learning_rate", [0.1, -0.1]), "hyperparameters.learning_rate[1]"),
    "zero learning rate": (_set("hyperparameters.learning_rate", [0]), "hyperparameters.learning_rate[0]"),
    "dropout 1.0": (_set("hyperparameters.dropout", [0.0, 1.0]), "hyperparameters.dropout[1]"),
    "negative weight decay": (_set("hyperparameters.weight_decay", [-1e-4]), "hyperparameters.weight_decay[0]"),
    "negative learning rate of one architecture": (_arch(2, hyperparameters={"learning_rate": [1.0, -1.0]}),
                                                   "architectures[2].hyperparameters.learning_rate[1]"),
    "empty learning rates of one architecture": (_arch(1, hyperparameters={"learning_rate": []}),
                                                 "architectures[1].hyperparameters.learning_rate"),
    "unknown hyperparameter of one architecture": (_arch(2, hyperparameters={"momentum": [0.9]}), "momentum"),
    "missing training.epochs": (_del("training.epochs"), "training.epochs"),
    "missing learning_rate": (_del("hyperparameters.learning_rate"), "hyperparameters.learning_rate"),
    "epochs 0": (_set("training.epochs", 0), "training.epochs"),
    "unknown top-level key": (_set("bogus_key", 1), "bogus_key"),
    "unknown training key": (_set("training.learning_rate", 0.1), "learning_rate"),
    "study ../x": (_set("study", "../x"), "study"),
    "study with space": (_set("study", "a b"), "study"),
    "train width not in widths": (_set("predict", {"train_widths": [3]}), "predict.train_widths[0]"),
    "train width is the largest": (_set("predict", {"train_widths": [1, 2]}), "predict.train_widths[1]"),
    "duplicate widths": (_set("widths", [1, 2, 1]), "widths"),
    "group_size 0": (_set("training.group_size", 0), "training.group_size"),
    "bad dtype": (_set("training.dtype", "float16"), "training.dtype"),
    "NaN learning rate": (_set("hyperparameters.learning_rate", [0.1, float("nan")]),
                          "hyperparameters.learning_rate[1]"),
    "infinite momentum": (_set("training.momentum", float("inf")), "training.momentum"),
    "unknown feature set": (_set("predict", {"feature_sets": ["graph", "bogus"]}), "predict.feature_sets[1]"),
    "unknown part of a combined feature set": (_set("predict", {"feature_sets": ["graph+bogus"]}),
                                               "predict.feature_sets[0]"),
    "subepoch beyond epochs": (lambda c: c["training"].update(subepoch_snapshots=2, subepoch_epochs=5),
                               "training.subepoch_epochs"),
    "side streams in a compiled pack": (lambda c: c["training"].update(pack_layout="per_member_streams", compile=True),
                                        "training.pack_layout"),
    "modularity batch beyond the 450 digits test images": (_set("modularity", {"n_per_batch": 451}),
                                                           "modularity.n_per_batch"),
    "modularity k not below the batch": (_set("modularity", {"k": 10, "n_per_batch": 10}), "modularity.k"),
    "cmd feature set with the stage off": (
        lambda c: c.update(cmd={"enabled": False}, predict={"feature_sets": ["graph+cmd"]}),
        "predict.feature_sets[0]"),
    "cmd.deep naming no run": (_set("cmd", {"deep": ["no-such-run"]}), "cmd.deep[0]"),
    "modularity feature set with the stage off": (
        lambda c: c.update(modularity={"enabled": False}, predict={"feature_sets": ["graph", "modularity"]}),
        "predict.feature_sets[1]"),
}


UNEXPECTED_KEYS = {"bogus_key", "learning_rate", "momentum"}  # keys that must not be there: named as found


@pytest.mark.parametrize("edit, key", list(BAD_CONFIGS.values()), ids=list(BAD_CONFIGS))
def test_bad_config_names_key(make_config, edit, key):
    config = make_config(architectures=THREE_ARCHS, widths=[1, 2])
    validate_config(make_config(architectures=THREE_ARCHS, widths=[1, 2]))  # the base itself is valid
    edit(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    msg = str(err.value)
    assert key in msg, msg
    if key in UNEXPECTED_KEYS:
        assert repr(key) in msg, msg
    else:
        assert msg.startswith(f"config key `{key}`:"), msg  # named as a key path, not just mentioned


# --------------------------------------------------------------------------------------------------------
# defaults and the grid

def test_defaults_are_filled(make_config):
    config = make_config()
    del config["study"], config["device"], config["data"]
    config["training"] = {"epochs": 3}
    config["hyperparameters"] = {"learning_rate": [0.1]}
    out = validate_config(config)
    assert out["study"] == "default"
    assert out["device"] == "auto"
    assert out["data"] == {"root": "data", "download": False, "image_size": None}
    t = out["training"]
    assert t["epochs"] == 3
    assert t["batch_size"] == 128
    assert t["momentum"] == 0.9
    assert t["crop_padding"] == 4
    assert t["flip"] is False
    assert t["subepoch_snapshots"] == 1 and t["subepoch_epochs"] == 0
    assert t["group_size"] == "auto" and t["pack"] == "auto"
    assert job_options(t) == {"pack": "auto", "pack_memory": "estimate", "pack_layout": "auto", "compile": False}
    assert t["dtype"] == "float32" and t["threads"] == 1
    assert out["hyperparameters"]["dropout"] == [0.0]
    assert out["hyperparameters"]["weight_decay"] == [0.0]
    assert out["predict"]["train_widths"] == []


def test_given_values_are_kept(make_config):
    out = validate_config(make_config(training={"batch_size": 64, "momentum": 0.5}))
    assert out["training"]["batch_size"] == 64
    assert out["training"]["momentum"] == 0.5


def test_filled_defaults_are_not_shared_between_configs(make_config):
    a = validate_config(make_config())
    b = validate_config(make_config())
    a["predict"]["train_widths"].append(99)
    a["data"]["root"] = "elsewhere"
    assert b["predict"]["train_widths"] == [] and b["data"]["root"] == "data"
    assert validate_config(make_config())["predict"]["train_widths"] == []


def _grid_config(make_config):
    return validate_config(make_config(
        architectures=[{"name": "lenet"}, {"name": "resnet", "depth": 8}], widths=[1, 2, 3],
        hyperparameters={"learning_rate": [0.01, 0.1], "dropout": [0.0, 0.5], "weight_decay": [0.0, 1e-4, 5e-4]},
        seeds=[0, 1]))


def test_expand_grid_is_the_full_product(make_config):
    config = _grid_config(make_config)
    runs = expand_grid(config)
    assert len(runs) == 2 * 1 * 3 * 2 * 2 * 3 * 2
    combos = Counter((r.arch_label, r.dataset, r.width, r.learning_rate, r.dropout, r.weight_decay, r.seed)
                     for r in runs)
    expected = set(itertools.product(["lenet", "resnet8"], ["digits"], [1, 2, 3], [0.01, 0.1], [0.0, 0.5],
                                     [0.0, 1e-4, 5e-4], [0, 1]))
    assert set(combos) == expected and max(combos.values()) == 1
    r = runs[0]
    assert (r.epochs, r.batch_size, r.crop_padding, r.dtype, r.image_size) == (1, 64, 2, "float64", 16)
    resnet = [r for r in runs if r.arch == "resnet"]
    assert all(r.depth == 8 and r.batchnorm is True for r in resnet)
    assert all(r.depth is None and r.batchnorm is None for r in runs if r.arch == "lenet")


def test_an_architecture_trains_on_its_own_hyperparameter_lists(make_config):
    """`architectures[i].hyperparameters` replaces the shared lists of the same name for that architecture only."""
    config = validate_config(make_config(
        architectures=[{"name": "lenet"},
                       {"name": "resnet", "depth": 8, "hyperparameters": {"learning_rate": [1.0, 3.0, 0.1]}}],
        widths=[1, 2], hyperparameters={"learning_rate": [0.01, 0.1], "weight_decay": [0.0, 1e-4]}, seeds=[0]))
    runs = expand_grid(config)
    by_arch = {a: {(r.learning_rate, r.weight_decay, r.width) for r in runs if r.arch_label == a}
               for a in ("lenet", "resnet8")}
    assert by_arch["lenet"] == set(itertools.product([0.01, 0.1], [0.0, 1e-4], [1, 2]))
    assert by_arch["resnet8"] == set(itertools.product([1.0, 3.0, 0.1], [0.0, 1e-4], [1, 2]))  # wd still shared
    assert len(runs) == 8 + 12
    assert "resnet8-digits-w2-lr3-do0-wd0.0001-s0" in [r.run_id for r in runs]


def test_run_ids_unique_path_safe_and_stable(make_config):
    runs = expand_grid(_grid_config(make_config))
    ids = [r.run_id for r in runs]
    assert len(set(ids)) == len(ids)
    for rid in ids:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", rid), rid
        assert "/" not in rid and ".." not in rid and " " not in rid
    again = [r.run_id for r in expand_grid(_grid_config(make_config))]
    assert again == ids
    assert "lenet-digits-w2-lr0.1-do0.5-wd0.0001-s1" in ids


def test_runspec_round_trip(make_config):
    for r in expand_grid(_grid_config(make_config)):
        assert RunSpec.from_dict(r.to_dict()) == r
        assert RunSpec.from_dict({**r.to_dict(), "unknown_field": 1}) == r


def test_training_groups_split_and_cover(make_config):
    runs = expand_grid(_grid_config(make_config))
    for size in (1, 5, 8, 24, 1000):
        groups = training_groups(runs, size)
        seen = Counter(r.run_id for members in groups.values() for r in members)
        assert set(seen) == {r.run_id for r in runs} and max(seen.values()) == 1
        per_key = Counter((r.arch_label, r.dataset, r.width) for r in runs)
        assert len(groups) == sum(math.ceil(n / size) for n in per_key.values())
        for gid, members in groups.items():
            assert 1 <= len(members) <= size
            assert len({(r.arch_label, r.dataset, r.width) for r in members}) == 1
            assert len({r.pack_key for r in members}) == 1  # every group can be trained as one pack
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", gid), gid
        assert training_groups(runs, size).keys() == groups.keys()  # stable ids


def test_group_size(make_config):
    auto = validate_config(make_config())
    assert group_size(auto, "cpu") == 84
    assert group_size(auto, "cuda") == 128 and group_size(auto, "cuda:1") == 128
    assert group_size(validate_config(make_config(training={"group_size": 3})), "cuda") == 3
    assert resolve_device(validate_config(make_config(device="cpu"))) == "cpu"


# --------------------------------------------------------------------------------------------------------
# the shipped configs

def test_shipped_configs_load(repo_root):
    default = load_config(repo_root / "config" / "config.yaml")
    paper = load_config(repo_root / "config" / "paper.yaml")
    assert expand_grid(default) and expand_grid(paper)


def test_thread_stability_config_differs_from_the_evidence_study_only_in_threads(repo_root):
    """scripts/evidence_compare.py reads every difference between the two studies as float rounding."""
    ev = load_config(repo_root / "config" / "evidence.yaml")
    t2 = load_config(repo_root / "config" / "evidence_threads2.yaml")
    assert (ev["training"]["threads"], t2["training"]["threads"]) == (1, 2)
    assert [r.to_dict() for r in expand_grid(t2)] == [r.to_dict() for r in expand_grid(ev)]
    for c in (ev, t2):
        c["training"].pop("threads"), c.pop("study"), c.pop("modularity"), c.pop("cmd")
    ev["predict"]["feature_sets"] = [fs for fs in ev["predict"]["feature_sets"] if fs not in ("modularity", "cmd")]
    assert t2 == ev


def test_default_config_size(repo_root):
    config = load_config(repo_root / "config" / "config.yaml")
    runs = expand_grid(config)
    per_arch = Counter(r.arch_label for r in runs)
    assert len(per_arch) == len(config["architectures"])
    assert min(per_arch.values()) >= 40, per_arch
    assert len(config["widths"]) >= 3


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [digits\n")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_config(bad)
    assert str(bad) in str(err.value)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping") as err:
        load_config(bad)
    assert str(bad) in str(err.value)


# --------------------------------------------------------------------------------------------------------
# Snakemake goes through the same checks. Runs use --directory <tmp>, so the Snakefile's own
# `configfile: config/config.yaml` is not found there and the given config is used alone (not merged),
# and nothing of the repository's results/ or logs/ is touched.

def _snakemake_dry_run(repo_root, workdir, configfile):
    return subprocess.run(
        [*SNAKEMAKE, "-n", "--cores", "1", "--snakefile", str(repo_root / "Snakefile"), "--directory",
         str(workdir), "--configfile", str(configfile)],
        capture_output=True, text=True, timeout=120)


SNAKEMAKE_BAD = {  # id: (edit, what the output must say)
    "resnet depth 10": (_arch(1, depth=10), "config key `architectures[1].depth`"),
    "study a b": (_set("study", "a b"), "config key `study`"),
    "unknown top-level key": (_set("bogus_key", 1), "'bogus_key'"),
    "NaN learning rate": (_set("hyperparameters.learning_rate", [float("nan")]),
                          "config key `hyperparameters.learning_rate[0]`"),
    "unknown feature set": (_set("predict", {"feature_sets": ["graph", "bogus"]}),
                            "config key `predict.feature_sets[1]`"),
}


@pytest.mark.parametrize("edit, named", list(SNAKEMAKE_BAD.values()), ids=list(SNAKEMAKE_BAD))
def test_snakemake_stops_on_bad_config(repo_root, tmp_path, make_config, edit, named):
    config = make_config(architectures=[{"name": "lenet"}, {"name": "resnet", "depth": 8}])
    edit(config)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    proc = _snakemake_dry_run(repo_root, work, cfg)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert named in out, out
    assert "Job stats" not in out, out  # it stopped before planning any job
    assert not (work / "results").exists() and not (work / "logs").exists()


def test_snakemake_plans_paper_grid(repo_root, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = _snakemake_dry_run(repo_root, work, repo_root / "config" / "paper.yaml")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out[out.index("Job stats"):], flags=re.M))
    config = load_config(repo_root / "config" / "paper.yaml")
    device = resolve_device(config)
    groups = job_groups(config, expand_grid(config), device)
    assert sum(int(n) for rule, n in counts.items() if rule.startswith("train_")) == len(groups)
    assert int(counts["collect_runs"]) == 1
    assert not (work / "results").exists()


def _schema_defaults(schema: dict, prefix=()):
    """(key path, default) of every property of the schema that has one, nested objects included."""
    for key, sub in schema.get("properties", {}).items():
        if "default" in sub:
            yield prefix + (key,), sub["default"]
        yield from _schema_defaults(sub, prefix + (key,))


def test_every_schema_default_is_filled(make_config):
    """The schema is the one source of defaults: a minimal config ends up holding exactly its defaults."""
    from netdyn.config import load_schema

    config = {"datasets": ["digits"], "architectures": [{"name": "lenet"}], "widths": [1],
              "hyperparameters": {"learning_rate": [0.1]}, "seeds": [0], "training": {"epochs": 3}}
    out = validate_config(config)
    defaults = dict(_schema_defaults(load_schema()))
    assert len(defaults) > 20
    for path, value in defaults.items():
        if value == {}:
            continue  # an object whose own keys have defaults: checked through them
        node = out
        for k in path:
            node = node[k]
        assert node == value, path


def test_config_accepts_exactly_the_depths_the_builder_builds(make_config):
    from netdyn.models import RESNET_DEPTHS, VGG_DEPTHS, build_model

    for name, depths in (("vgg", VGG_DEPTHS), ("resnet", RESNET_DEPTHS)):
        for depth in range(1, max(depths) + 8):
            config = make_config(architectures=[{"name": name, "depth": depth}], widths=[1])
            try:
                validate_config(config)
                accepted = True
            except ConfigError as e:
                assert str(e).startswith("config key `architectures[0].depth`:"), e
                accepted = False
            assert accepted == (depth in depths), (name, depth)
            if accepted:
                build_model(name, depth=depth, in_channels=1, image_size=16)


def test_packing_policy_decides_job_shape(make_config):
    config = validate_config(make_config(architectures=THREE_ARCHS, widths=[1, 2]))
    runs = expand_grid(config)
    assert all(g.startswith("mixed-") for g in job_groups(config, runs, "cpu"))  # one at a time: mixed jobs
    blocks = job_groups(config, runs, "cuda")
    assert not any(g.startswith("mixed-") for g in blocks)
    assert all(len({(r.arch_label, r.width) for r in members}) == 1 for members in blocks.values())
    config["training"]["pack"] = "always"
    assert not any(g.startswith("mixed-") for g in job_groups(config, runs, "cpu"))


def test_a_given_configfile_replaces_the_default_study(repo_root, tmp_path):
    """--configfile is not merged over config/config.yaml: a partial file is refused by the missing key."""
    partial = tmp_path / "partial.yaml"
    partial.write_text("training: {epochs: 3}\n")
    proc = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1", "--configfile", str(partial)], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "config key `datasets`" in out, out
    assert "Job stats" not in out, out


def test_config_check_command_names_file_and_line(repo_root, tmp_path):
    """Snakemake's own message for a YAML error in --configfile has no line; `python -m netdyn.config` has."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: x\ndatasets: [digits\nwidths: [1]\n")
    proc = subprocess.run([sys.executable, "-m", "netdyn.config", str(bad)], cwd=repo_root, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert str(bad) in proc.stderr and "line 3" in proc.stderr, proc.stderr
    proc = subprocess.run(["bash", "scripts/study.sh", "-n", "--configfile", str(bad)], cwd=repo_root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "line 3" in proc.stdout + proc.stderr
    assert "Job stats" not in proc.stdout + proc.stderr


def test_pack_layout_names_are_the_packed_modules():
    """The schema's training.pack_layout values are netdyn.packed.LAYOUTS plus auto (one list of names)."""
    from netdyn.config import load_schema
    from netdyn.packed import LAYOUTS

    enum = load_schema()["properties"]["training"]["properties"]["pack_layout"]["enum"]
    assert enum == ["auto", *LAYOUTS]


def test_config_check_needs_neither_xgboost_nor_graph_tool(blocked_modules, repo_root, child_env):
    """The config check reads the feature-set registry of netdyn.predict; it must also run where the prediction
    and graph stages' libraries are missing -- a GPU image running training or bench/gpu_checks.sh -- while a
    fit there still fails at once, naming xgboost."""
    blocked = blocked_modules("xgboost", "graph_tool")
    code = ("import sys\n"
            "from netdyn.config import load_config, expand_grid\n"
            "for path in ('config/config.yaml', 'config/paper.yaml'):\n"
            "    assert expand_grid(load_config(path))\n"
            "assert 'xgboost' not in sys.modules and 'graph_tool' not in sys.modules\n"
            "print('configs checked', flush=True)\n"
            "from netdyn.predict.model import xgb_params\n"
            "xgb_params({}, 0)\n")
    env = {**child_env, "PYTHONPATH": f"{blocked}:{child_env['PYTHONPATH']}"}
    done = subprocess.run([sys.executable, "-c", code], cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and done.stdout == "configs checked\n", done.stderr
    assert done.stderr.strip().splitlines()[-1] == "ModuleNotFoundError: No module named 'xgboost' (blocked)"
