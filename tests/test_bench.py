"""bench/throughput (the training-throughput benchmark): the tiniest settings end to end, and its goal and
projection arithmetic against hand-computed values."""

from __future__ import annotations

import json
import math

import pytest
import torch

from bench.throughput import project as P
from bench.throughput.common import ResumeRefused
from bench.throughput.report import device_peaks, evaluate_goals, finish_ratios, load_goals
from bench.throughput.run import parse_variant, run_benchmark
from conftest import tiny_config


def test_benchmark_tiny(tmp_path):
    out = tmp_path / "bench.json"
    config = tiny_config(hyperparameters={"learning_rate": [0.05, 0.1], "dropout": [0.0], "weight_decay": [0.0]},
                         training={"epochs": 2, "batch_size": 64, "dtype": "float32",
                                   "subepoch_snapshots": 2, "subepoch_epochs": 1})
    res = run_benchmark(device="cpu", archs=["lenet"], widths=[1], ks=[2], images=160, test_images=32,
                        workers=0, pack_check=False, variants=["bf16", "per_member_channels_last"], project_config=config, proj_warmup=1,
                        proj_steps=2, proj_eval_images=64, out=out, log=lambda *a: None, strict=True)
    assert json.loads(out.read_text())["records"] == json.loads(json.dumps(res["records"], default=float))

    for key in ("platform", "cpu_count", "torch", "device_name", "loadavg_start", "loadavg_end"):
        assert key in res["machine"]
    assert res["settings"]["n_train"] == 160 and "what_is_timed" in res["settings"]
    loops = {(r["loop"], r.get("variant"), r["k"]) for r in res["records"]}
    assert loops == {("seed_loop", None, 1), ("single", None, 1), ("batched", None, 2), ("batched", "bf16", 2),
                     ("batched", "per_member_channels_last", 2)}, loops
    assert not res["skipped"]
    for r in res["records"]:
        assert r["arch"] == "lenet" and r["width"] == 1
        assert r["images_per_s_per_model"] > 0 and r["seconds"] > 0
        assert r["images_per_s_total"] == pytest.approx(r["k"] * r["images_per_s_per_model"])
        assert r["ratio_total_vs_seed_loop"] == pytest.approx(r["k"] * r["ratio_vs_seed_loop"])
        if r["loop"] != "seed_loop":
            # 160 images / 128: 2 steps per epoch; the steps-only span (end of step 1 to end of step 2) is
            # one step inside the timed epoch, so it cannot take longer than that epoch
            assert 0 < r["steps_only_seconds"] <= r["seconds"]
            assert r["step_seconds"] == r["steps_only_seconds"]
    batched = [r for r in res["records"] if r["loop"] == "batched"]
    assert [r["precision"] for r in batched] == ["tf32", "bf16", "tf32"]
    assert [r["trainer_layout"] for r in batched] == ["grouped_channels_last"] * 2 + ["per_member_channels_last"]

    p = res["projection"]
    assert p["runs"] == 2 and p["complete"] and p["total_hours"] > 0
    (row,) = p["rows"]
    assert row["pack_sizes"] == [1, 1]  # pack_plan keeps runs alone on the CPU
    assert row["snapshots_per_run"] == 1 + 2 + 1  # init, 2 in epoch 1, 1 in epoch 2
    (m,) = row["measured"]
    assert m["trainer_layout"] == "grouped_channels_last" and not m["trainer_compile"]  # auto on the CPU
    assert m["timed_steps"] == 2 and m["step_seconds"] > 0 and m["checkpoint_seconds"] > 0
    assert 0 <= m["layout_probe_wall_seconds"] < m["measurement_wall_seconds"]  # what measuring it cost
    assert m["measurement_wall_seconds"] > 2 * m["step_seconds"] + m["checkpoint_seconds"] + m["build_seconds"]
    # the pack cost formula of bench/throughput/project.py, by hand (digits: 1347 train / 450 test images)
    spe = math.ceil(row["n_train"] / 64)
    one = 2 * (spe * m["step_seconds"] + m["checkpoint_seconds"]) + \
        4 * (row["n_test"] / m["eval_images_per_s_per_model"] + m["snapshot_io_seconds"])
    assert p["total_hours"] == pytest.approx(2 * one / 3600)


def test_a_resumed_projection_keeps_the_earlier_measurements_and_measures_only_the_rest(tmp_path, monkeypatch):
    """--project-resume: a second session measures only what the first did not (here: nothing), keeps each earlier
    measurement marked with its source and costs the grid as before; a file from another device is refused
    before anything is measured."""
    import bench.throughput.project as project_module

    config = tiny_config(architectures=[{"name": "lenet"}], widths=[1, 2],
                         hyperparameters={"learning_rate": [0.1], "dropout": [0.0], "weight_decay": [0.0]},
                         training={"epochs": 1, "batch_size": 64, "dtype": "float32"})
    first_out, second_out = tmp_path / "first.json", tmp_path / "second.json"
    opts = dict(device="cpu", table=False, pack_check=False, project_config=config, proj_warmup=1, proj_steps=1,
                proj_eval_images=32, log=lambda *a: None, strict=True)
    first = run_benchmark(**opts, out=first_out)["projection"]
    assert first["carried_measurements"] == 0 and first["complete"]
    measured = {(r["width"], m["k"]) for r in first["rows"] for m in r["measured"]}
    assert measured == {(1, 1), (2, 1)}
    monkeypatch.setattr(project_module, "measure_steps", lambda *a, **k: pytest.fail("measured again"))
    second = run_benchmark(**opts, out=second_out, project_resume=first_out)["projection"]
    assert second["carried_measurements"] == 2 and second["total_hours"] == pytest.approx(first["total_hours"])
    assert all(m["carried_from"].startswith("first.json (") for r in second["rows"] for m in r["measured"])
    elsewhere = json.loads(first_out.read_text())
    elsewhere["machine"]["device_name"] = "NVIDIA H100 80GB HBM3"
    (tmp_path / "h100.json").write_text(json.dumps(elsewhere))
    with pytest.raises(ResumeRefused, match=r"h100.json: measured on 'NVIDIA H100 80GB HBM3', this device is"):
        run_benchmark(**opts, project_resume=tmp_path / "h100.json")


def test_a_refused_resume_exits_with_its_own_code_before_measuring(tmp_path, capsys):
    """bench/gpu_checks.sh tells a refused --project-resume (exit 3: measure afresh) from a failed projection."""
    from bench.throughput import cli
    from bench.throughput.common import RESUME_REFUSED_EXIT

    for bad, why in [(tmp_path / "missing.json", "cannot read it"), (tmp_path / "table.json", "holds no projection")]:
        if bad.name == "table.json":
            bad.write_text(json.dumps({"records": []}))
        with pytest.raises(SystemExit) as stop:
            cli.main(["--device", "cpu", "--no-table", "--no-pack-check", "--project", "config/paper.yaml",
                      "--project-resume", str(bad), "--out", str(tmp_path / "out.json")])
        assert stop.value.code == RESUME_REFUSED_EXIT == 3
        assert f"--project-resume {bad}: {why}" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_resumed_measurements_must_come_from_the_same_projection():
    """An earlier projection that differs in what or how it measured is refused naming the field; of one that
    agrees, only pack sizes this plan also has are kept, and a measurement keeps the source it already had."""
    key = ("lenet", "cifar10", 1)
    current = {"config": "config/paper.yaml", "precision": "bf16", "pack": "auto", "pack_layout": "auto",
               "compile": False, "warmup_steps": 3, "timed_steps": 10, "eval_images": 2048}
    rows = [{"arch": "lenet", "dataset": "cifar10", "width": 1, "measured": [{"k": 72}, {"k": 36, "carried_from": "a"}]},
            {"arch": "lenet", "dataset": "svhn", "width": 1, "measured": [{"k": 72}]}]
    combos = {key: {"packs": [[0] * 72, [0] * 36]}}
    kept = P.carried_measurements({**current, "rows": rows}, current, combos, "b")
    assert kept == {(key, 72): {"k": 72, "carried_from": "b"}, (key, 36): {"k": 36, "carried_from": "a"}}
    combos[key]["packs"] = [[0] * 64]
    assert P.carried_measurements({**current, "rows": rows}, current, combos, "b") == {}
    for field, other in [("precision", "tf32"), ("timed_steps", 30), ("compile", True), ("config", "c.yaml")]:
        with pytest.raises(ResumeRefused, match=rf"--project-resume b: its {field} is"):
            P.carried_measurements({**current, field: other, "rows": rows}, current, combos, "b")


@pytest.mark.parametrize("name, parsed", [("bf16", {"precision": "bf16"}), ("compile", {"compile": True}),
                                           ("bf16+per_member+compile",
                                            {"precision": "bf16", "layout": "per_member", "compile": True})])
def test_variant_names(name, parsed):
    assert parse_variant(name) == parsed


@pytest.mark.parametrize("name", ["fp16", "bf16+fp32", "grouped+per_member", "", "per_member_streams+compile"])
def test_bad_variant_names_are_refused_by_name(name):
    with pytest.raises(ValueError, match="variant"):
        parse_variant(name)


def test_goals_count_every_member_and_come_from_the_goals_file():
    goals = load_goals()
    assert goals["goals"]["x_seed_loop_every_arch_width"] == 15.0  # issue 13
    records = [
        {"loop": "seed_loop", "arch": "lenet", "width": 1, "k": 1, "images_per_s_per_model": 1000.0,
         "images_per_s_total": 1000.0},
        {"loop": "batched", "arch": "lenet", "width": 1, "k": 32, "precision": "tf32", "train_flops_per_image": 1e6,
         "images_per_s_per_model": 400.0, "images_per_s_total": 12800.0},
    ]
    peaks = device_peaks("NVIDIA H100 80GB HBM3", goals)
    assert peaks["bf16"] == 989 and device_peaks("NVIDIA H100 PCIe", goals)["bf16"] == 756
    finish_ratios(records, peaks)
    r = records[1]
    assert r["ratio_vs_seed_loop"] == pytest.approx(0.4) and r["ratio_total_vs_seed_loop"] == pytest.approx(12.8)
    assert r["achieved_tflops"] == pytest.approx(12800 * 1e6 / 1e12)
    assert r["fraction_of_peak"] == pytest.approx(r["achieved_tflops"] / 494)
    g = evaluate_goals(records, "NVIDIA H100 80GB HBM3", goals)
    assert g["judged_here"] and not g["met_everywhere"]  # 12.8x < 15x
    records[1]["images_per_s_total"] = 16000.0
    finish_ratios(records, peaks)
    assert evaluate_goals(records, "cpu", goals)["met_everywhere"]


def test_projection_estimates_from_the_nearest_measured_pack():
    key, other = ("vgg11bn", "cifar10", 4), ("vgg11bn", "fashionmnist", 4)
    results = {(key, 8): {"k": 8}, (other, 32): {"k": 32}}
    assert P._estimate(results, key, 8)[1:] == (1.0, "measured")
    assert P._estimate(results, key, 24)[1:] == (3.0, "estimated from K=8")  # larger: proportionally longer
    assert P._estimate(results, key, 4)[1:] == (1.0, "estimated from K=8")  # smaller: as long per step
    assert P._estimate({(other, 32): {"k": 32}}, key, 16)[1:] == (1.0, "estimated from K=32 on fashionmnist")
    assert P._estimate(results, ("lenet", "cifar10", 4), 8) == (None, 1.0, "not measured")


def test_projection_bounds_a_block_without_its_own_measurement_by_the_nearest_wider_width():
    """A narrower net of the same architecture is no slower at the same K: the nearest wider width measured (same
    data set first) bounds it from above; a narrower width or another architecture never does."""
    w8, w4_fm, w1 = ("resnet20", "cifar10", 8), ("resnet20", "fashionmnist", 4), ("resnet20", "cifar10", 1)
    results = {(w8, 11): {"k": 11}, (w8, 6): {"k": 6}, (w4_fm, 24): {"k": 24}, (w1, 72): {"k": 72},
               (("vgg11bn", "cifar10", 8), 72): {"k": 72}}
    rec, scale, src = P._estimate(results, ("resnet20", "cifar10", 2), 48)
    assert (rec["k"], scale, src) == (24, 2.0, "upper bound from w=4 K=24 on fashionmnist")  # w4 is nearer than w8
    del results[(w4_fm, 24)]
    assert P._estimate(results, ("resnet20", "cifar10", 4), 24)[1:] == (24 / 11, "upper bound from w=8 K=11")
    assert P._estimate(results, ("resnet20", "cifar10", 4), 10)[1:] == (1.0, "upper bound from w=8 K=11")
    assert P._estimate(results, ("resnet20", "cifar10", 4), 7)[1:] == (7 / 6, "upper bound from w=8 K=6")
    assert P._estimate(results, ("alexnet", "cifar10", 1), 72) == (None, 1.0, "not measured")
    del results[(w8, 11)], results[(w8, 6)]
    assert P._estimate(results, ("resnet20", "cifar10", 2), 48) == (None, 1.0, "not measured")  # only w1 is there


def test_study_loads_without_jsonschema(monkeypatch, repo_root):
    """The GPU image has no jsonschema: the projection then fills the schema's defaults itself."""
    import builtins

    real_import = builtins.__import__

    def no_jsonschema(name, *args, **kwargs):
        if name.split(".")[0] in ("jsonschema", "snakemake"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    with_schema, how = P.load_study(repo_root / "config" / "paper.yaml")
    assert how == "netdyn.config.validate_config"
    monkeypatch.setattr(builtins, "__import__", no_jsonschema)
    without, how = P.load_study(repo_root / "config" / "paper.yaml")
    assert how.startswith("schema defaults")
    assert without == with_schema
    # another precision (the bf16 projection): every run id gets -bf16, so the stages whose patterns name
    # run ids (cmd.deep, modularity.epochs_for) are left out rather than refused
    bf16, _ = P.load_study(repo_root / "config" / "paper.yaml", precision="bf16")
    assert bf16["training"]["precision"] == "bf16" and not bf16["cmd"].get("deep")
    assert {k: v for k, v in bf16["training"].items() if k != "precision"} == \
        {k: v for k, v in with_schema["training"].items() if k != "precision"}


def test_cluster_projection_schedules_jobs_longest_first_and_splits_blocks_into_packs():
    """Block jobs 5, 4 and 3+3+3 (one block of three packs) on 2 GPUs, longest first: 9 | 5+4 = 9. One job per
    pack instead: 5, 4, 3, 3, 3 -> 5+3 | 4+3+3 = 10 (the best is 9; LPT stays within its 4/3 bound)."""
    from bench.throughput.project import cluster_projection

    def block(*hours):
        return {"packs": [{"k": 1, "source": "measured", "train_hours": h - 0.5, "eval_hours": 0.5} for h in hours]}

    p = {"rows": [block(5), block(4), block(3, 3, 3)]}
    by_block = cluster_projection(p, 2)
    assert by_block["jobs"] == 3 and by_block["hours"] == pytest.approx(9)
    assert by_block["critical_path_hours"] == pytest.approx(9)
    by_pack = cluster_projection(p, 2, per="pack")
    assert by_pack["jobs"] == 5 and by_pack["hours"] == pytest.approx(10) and by_pack["critical_path_hours"] == 5
    assert by_pack["hours"] <= 4 / 3 * 9 and by_pack["gpu_hours"] == pytest.approx(18)
    assert cluster_projection(p, 8, per="pack")["hours"] == pytest.approx(5)  # enough GPUs: the longest job
    p["rows"].append({"packs": [{"k": 72, "source": "not measured"}]})
    partial = cluster_projection(p, 2)
    assert partial["jobs_not_timed"] == 1 and partial["lower_bound_only"] and partial["hours"] == pytest.approx(9)


def test_pack_memory_bench_dry_run_on_the_cpu(tmp_path, repo_root, child_env):
    """bench/pack_memory.py as bench/gpu_checks.sh's dry run calls it: the probe steps of the paper grid's first
    block run; the estimate it records is the planner's."""
    import subprocess
    import sys

    from netdyn.config import expand_grid
    from netdyn.data import dataset_info
    from netdyn.plan import member_memory_bytes

    out = tmp_path / "pack_memory.json"
    subprocess.run([sys.executable, "bench/pack_memory.py", "--device", "cpu", "--blocks", "1", "--out", str(out)],
                   cwd=repo_root, env=child_env, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    (row,) = result["blocks"]
    assert row["probe_steps_ran"] == [1, 2] and result["machine"]["device"] == "cpu"
    cfg, _ = P.load_study(repo_root / "config" / "paper.yaml")
    spec = next(s for s in expand_grid(cfg) if (s.arch_label, s.dataset, s.width) == (row["arch"], row["dataset"],
                                                                                        row["width"]))
    assert row["est_member_bytes"] == member_memory_bytes(spec, dataset_info(spec.dataset, spec.image_size))


def test_epoch_overhead_bench_splits_the_wall_time(tmp_path, repo_root, child_env):
    """bench/epoch_overhead.py: every part ran, and the parts are disjoint (no part holds another), so the steps,
    the wall time less the other parts, stay positive."""
    import subprocess
    import sys

    out = tmp_path / "eo.json"
    subprocess.run([sys.executable, "bench/epoch_overhead.py", "--device", "cpu", "--k", "2", "--epochs", "1",
                    "--repeats", "1", "--out", str(out)], cwd=repo_root, env=child_env, check=True, capture_output=True, timeout=300)
    r = json.loads(out.read_text())
    parts, queued = r["seconds"], r["background_writes"]["seconds"]
    assert set(parts) > {"evaluation", "trajectory snapshots", "learning curves", "checkpoints"}
    assert parts["waiting for queued writes"] == 0  # in place: nothing is ever queued
    assert all(v > 0 for p, v in parts.items() if p != "waiting for queued writes"), parts
    # with the writer thread the loop no longer writes rows or curves itself
    assert queued["trajectory snapshots"] < parts["trajectory snapshots"] and queued["learning curves"] == 0
    assert r["wall_in_place_over_background"] == pytest.approx(r["wall_s"] / r["background_writes"]["wall_s"],
                                                               abs=1e-3)  # one pair: its own ratio


def test_evidence_gpu_bench_trains_the_evidence_grid(tmp_path, repo_root, child_env):
    """bench/evidence_gpu.py as the dry run calls it: the evidence study's first runs train to the end."""
    import subprocess
    import sys

    out = tmp_path / "e.json"
    subprocess.run([sys.executable, "bench/evidence_gpu.py", "--device", "cpu", "--runs", "1", "--out", str(out)],
                   cwd=repo_root, env=child_env, check=True, capture_output=True, timeout=300)
    r = json.loads(out.read_text())
    assert (r["runs"], r["runs_complete"]) == (1, 1) and r["training_wall_s"] > 0


def test_pack_layout_bench_times_every_layout(tmp_path, repo_root, child_env):
    """bench/pack_layout.py: every layout of netdyn.packed.LAYOUTS timed for a block, the fastest named, and the
    ratios over `grouped` consistent with the step times."""
    import subprocess
    import sys

    from netdyn.packed import LAYOUTS

    out = tmp_path / "pl.json"
    subprocess.run([sys.executable, "bench/pack_layout.py", "--device", "cpu", "--blocks", "lenet:1", "--ks", "2",
                    "--steps", "1", "2", "--out", str(out)], cwd=repo_root, env=child_env, check=True,
                   capture_output=True, timeout=300)
    (row,) = json.loads(out.read_text())["rows"]
    times = row["seconds_per_step"]
    assert set(times) == set(LAYOUTS) and all(t > 0 for t in times.values())
    assert row["fastest"] == min(times, key=times.get)
    assert row["over_grouped"]["per_member"] == pytest.approx(times["grouped"] / times["per_member"])
    assert row["images_per_s_per_model"]["grouped"] == pytest.approx(128 / times["grouped"])


def test_pack_layout_check_only_checks_and_times_nothing(tmp_path, capsys):
    """gpu_checks.sh runs the check alone (the projection's probes time the layouts): every (architecture, layout)
    checked, no block timed; asking for a check-only run without a check is refused before anything runs."""
    from bench import pack_layout
    from bench.pack_layout import CHECK_ARCHS
    from netdyn.packed import LAYOUTS

    out = tmp_path / "pl.json"
    pack_layout.main(["--device", "cpu", "--check-only", "--check-members", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["rows"] == []
    checked = result["layout_check"]["rows"]
    assert {(r["arch"], r["layout"]) for r in checked} == {(a, name) for a in CHECK_ARCHS for name in LAYOUTS}
    assert all(r["ok"] and r["k"] == 2 for r in checked)
    with pytest.raises(SystemExit) as stop:
        pack_layout.main(["--check-only", "--check-members", "0", "--out", str(tmp_path / "none.json")])
    assert stop.value.code == 2 and "--check-only needs --check-members > 0" in capsys.readouterr().err
    assert not (tmp_path / "none.json").exists()


def test_layout_check_passes_every_layout_and_catches_one_that_mixes_members(monkeypatch):
    """bench/pack_layout.py's device check (gpu_checks.sh runs it on cuda, where side streams and other kernels
    are in play): every layout of netdyn.packed.LAYOUTS passes on the CPU; a batched_matmul that hands each
    member the previous member's output channels is flagged, and only that layout."""
    from bench.pack_layout import CHECK_ARCHS, check_layouts
    from netdyn.packed import LAYOUTS, PackedConv2d

    rows = check_layouts(torch.device("cpu"), k=3, batch=2, steps=2)
    assert [(r["arch"], r["layout"]) for r in rows] == [(a, name) for a in CHECK_ARCHS for name in LAYOUTS]
    assert all(r["ok"] for r in rows), rows
    real = PackedConv2d._batched_matmul

    def mixed(self, x):
        out = real(self, x)
        k = self.weight.shape[0]
        return out.unflatten(1, (k, -1)).roll(1, 1).flatten(1, 2)

    monkeypatch.setattr(PackedConv2d, "_batched_matmul", mixed)
    rows = check_layouts(torch.device("cpu"), k=3, batch=2, steps=1)
    assert {r["layout"] for r in rows if not r["ok"]} == {"batched_matmul"}
    assert all(r["max_relative_difference"]["outputs"] > 1e-3 for r in rows if not r["ok"])


def test_projection_steps_write_their_files_in_place(monkeypatch, make_spec):
    """measure_steps times the snapshot and the checkpoints to the end of their writes: the pack it measures
    writes in place, not on the writer thread (whose queued writes the hooks would not wait for)."""
    import netdyn.train
    from bench.throughput.trainer import measure_steps
    from netdyn.data import dataset_info

    made = []
    real = netdyn.train.BackgroundWrites
    monkeypatch.setattr(netdyn.train, "BackgroundWrites", lambda enabled, **kw: made.append(enabled) or real(enabled, **kw))
    spec = make_spec("lenet", dtype="float32")
    rec = measure_steps([spec], dataset_info("digits", 16), torch.device("cpu"), math.inf, warmup=1, steps=1,
                        eval_images=32)
    assert made == [False] and rec["checkpoint_seconds"] > 0
