"""The pruning check in the workflow (workflow/rules/pruning.smk) on a tiny VGG-11-BN digits study: 2 grid runs,
2 epochs. The plateau rule is set so that every layer after the first is flat (threshold 1.0: ΔQ < 1 always),
so the candidates are known without knowing Q: convs 1..7 are dropped, and no droppable layer is left for a
control (which the job must record, not fail on)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
STUDY = {
    "study": "prune", "device": "cpu",
    "data": {"root": "data", "download": False, "image_size": 16},
    "datasets": ["digits"],
    "architectures": [{"name": "vgg", "depth": 11, "batchnorm": True}],
    "widths": [1],
    "hyperparameters": {"learning_rate": [0.05, 0.1], "dropout": [0.0], "weight_decay": [0.0]},
    "seeds": [0],
    "training": {"epochs": 2, "batch_size": 128, "crop_padding": 2, "subepoch_snapshots": 1, "subepoch_epochs": 1},
    "predict": {"windows": [1], "feature_sets": ["early_acc"]},
    "modularity": {"n_per_batch": 50, "n_batches": 1, "threshold": 1.0, "min_run": 1, "learned_fraction": 0.5,
                   "pruning": {"enabled": True, "architectures": ["vgg11bn"], "seeds": [0, 1]}},
    "cmd": {"enabled": False},
}
TARGET = "results/prune/tables/pruning.csv"


def snakemake(workdir: Path, *args: str, config: str = "config.yaml") -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / config), "--cores", "1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prune")
    (workdir / "config.yaml").write_text(yaml.safe_dump(STUDY))
    proc = snakemake(workdir, "results/prune/tables/runs.csv")  # the grid first, to see the pruning job leave it
    assert proc.returncode == 0, proc.stderr[-4000:]
    mtimes = {p.parent.name: p.stat().st_mtime_ns for p in (workdir / "results/prune/runs").glob("*/trajectory.bin")}
    proc = snakemake(workdir, TARGET)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir, mtimes


def test_pruned_runs_are_tabled_and_the_missing_control_is_recorded(study):
    workdir, _ = study
    res = workdir / "results/prune"
    plateaus = pd.read_csv(res / "tables/modularity_plateaus.csv").iloc[0]
    assert plateaus.learned_fraction == 0.5  # modularity.learned_fraction reaches the plateau rule
    assert plateaus.plateau_runs == "1-9"
    table = pd.read_csv(res / "tables/pruning.csv", dtype={"drop": str})
    assert sorted(table.variant) == ["original", "original", "pruned", "pruned"] and sorted(table.seed) == [0, 0, 1, 1]
    assert set(table.loc[table.variant == "pruned", "drop"]) == {"1.2.3.4.5.6.7"}
    n_params = table.groupby("variant")["n_params"].agg(["min", "max"])
    assert n_params.loc["pruned", "max"] < n_params.loc["original", "min"]
    for run_id in table.run_id:
        assert (res / "runs" / run_id / "result.json").is_file()  # trained into the study's run store
    summary = pd.read_csv(res / "tables/pruning_summary.csv").set_index("comparison")
    assert summary.loc["pruned-original", "n_seeds"] == 2 and summary.loc["pruned-original", "ci_low"] < \
        summary.loc["pruned-original", "ci_high"]
    assert summary.loc["control-original", "n_seeds"] == 0 and "no control" in summary.loc["control-original", "note"]
    # the figure is drawn by rule figures (with every stage's figures; netdyn.figures.pruning: test_pruning.py)
    planned = _planned(snakemake(workdir, "-n", "results/prune/pruning/figures/pruning.png"))
    assert "figures" in planned and "collect_pruning" not in planned, planned


def test_the_grid_run_is_reused_as_the_seed_0_original(study):
    workdir, mtimes = study
    table = pd.read_csv(workdir / "results/prune/tables/pruning.csv")
    original = table[(table.variant == "original") & (table.seed == 0)].run_id.item()
    assert original in mtimes  # a grid run id
    runs = workdir / "results/prune/runs"
    after = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/trajectory.bin")}
    assert {k: after[k] for k in mtimes} == mtimes  # no grid run was retrained or touched


def _planned(proc) -> set[str]:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return set() if "Nothing to be done" in out else set(re.findall(r"^(\w+)\s+\d+\s*$", out, flags=re.M))


def test_rerun_does_nothing_and_the_switch_turns_the_check_off(study):
    workdir, _ = study
    assert not _planned(snakemake(workdir, "-n", TARGET))
    off = yaml.safe_load((workdir / "config.yaml").read_text())
    off["modularity"]["pruning"]["enabled"] = False
    (workdir / "off.yaml").write_text(yaml.safe_dump(off))
    on_jobs = _planned(snakemake(workdir, "-n", "--forceall", config="config.yaml"))
    off_jobs = _planned(snakemake(workdir, "-n", "--forceall", config="off.yaml"))
    assert {"pruning", "collect_pruning"} <= on_jobs
    assert not {"pruning", "collect_pruning"} & off_jobs and "collect_modularity" in off_jobs
