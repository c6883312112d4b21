"""Smoke test of bench/train_throughput.py: the tiniest settings, fields present, numbers positive."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import REPO_ROOT, tiny_config


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_throughput", REPO_ROOT / "bench" / "train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_tiny(bench, tmp_path):
    out = tmp_path / "bench.json"
    config = tiny_config(hyperparameters={"learning_rate": [0.05, 0.1], "dropout": [0.0], "weight_decay": [0.0]},
                         training={"epochs": 2, "batch_size": 64, "dtype": "float32",
                                   "subepoch_snapshots": 2, "subepoch_epochs": 1})
    res = bench.run_benchmark(device="cpu", archs=["lenet"], widths=[1], ks=[2], images=160, test_images=32,
                              workers=0, pack_check=False, project_config=config, proj_warmup=1, proj_steps=2,
                              proj_seconds=0.5, proj_eval_images=64, out=out, log=lambda *a: None, strict=True)
    assert json.loads(out.read_text())["records"] == json.loads(json.dumps(res["records"], default=float))

    for key in ("platform", "cpu_count", "torch", "device_name", "cuda_version"):
        assert key in res["machine"]
    assert res["settings"]["n_train"] == 160 and "what_is_timed" in res["settings"]
    loops = {(r["loop"], r["k"]) for r in res["records"]}
    assert loops == {("seed_loop", 1), ("single", 1), ("batched", 2)}, loops
    assert not res["skipped"]
    for r in res["records"]:
        assert r["arch"] == "lenet" and r["width"] == 1
        assert r["images_per_s_per_model"] > 0 and r["images_per_s_total"] > 0 and r["seconds"] > 0
        assert r["ratio_vs_seed_loop"] > 0 and r["ratio_vs_single"] > 0
        assert r["images_per_s_total"] == pytest.approx(r["k"] * r["images_per_s_per_model"])
        if r["loop"] != "seed_loop":
            assert r["steps_only_images_per_s_per_model"] > 0 and r["step_seconds"] > 0

    p = res["projection"]
    assert p["runs"] == 2 and p["complete"] and p["total_hours"] > 0
    (row,) = p["rows"]
    assert row["pack_sizes"] == [1, 1]  # pack_plan keeps runs alone on the CPU
    assert row["snapshots_per_run"] == 1 + 2 + 1  # init, 2 in epoch 1, 1 in epoch 2
    assert all(m["step_seconds"] > 0 and m["eval_images_per_s_per_model"] > 0 for m in row["measured"])
