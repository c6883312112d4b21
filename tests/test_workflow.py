"""End to end: the whole Snakemake workflow on a tiny digits grid, in a scratch directory."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

TINY = {
    "study": "tiny", "device": "cpu",
    "data": {"root": "data", "download": False, "image_size": 16},
    "datasets": ["digits"],
    "architectures": [{"name": "lenet"}, {"name": "resnet", "depth": 8}],
    "widths": [1, 2],
    "hyperparameters": {"learning_rate": [0.03, 0.1, 0.3], "dropout": [0.0], "weight_decay": [0.0]},
    "seeds": [0, 1],
    "training": {"epochs": 3, "batch_size": 128, "crop_padding": 2, "subepoch_snapshots": 2,
                 "subepoch_epochs": 1, "group_size": 4},
    "predict": {"train_widths": [1], "windows": [1, 2], "folds": 3, "bootstrap": 50,
                "tune": {"max_depth": [2, 3]}, "xgboost": {"n_estimators": 50, "max_depth": 2}},
}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("study")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY))
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_every_stage_leaves_its_outputs(study):
    res = study / "results"
    for f in ["tables/runs.csv", "tables/graph_signatures.csv", "tables/graph_sizes.csv", "tables/predictions.csv",
              "tables/prediction_metrics.csv", "tables/feature_importance.csv", "figures/learning_curves.png",
              "figures/graph_signature_trajectories.png", "figures/graph_sizes.png",
              "figures/predicted_vs_true.png", "figures/metrics_vs_window.png", "figures/transfer_by_width.png",
              "figures/feature_importance.png"]:
        assert (res / f).stat().st_size > 0, f
    runs = pd.read_csv(res / "tables/runs.csv")
    assert len(runs) == 2 * 2 * 3 * 2
    assert set(runs.status) <= {"complete", "diverged"}
    for run_id in runs.run_id:
        d = res / "runs" / run_id
        assert {"config.json", "curves.csv", "trajectory.bin", "trajectory.json", "result.json"} <= \
            {p.name for p in d.iterdir()}
        cfg = json.loads((d / "config.json").read_text())
        assert cfg["study_config"]["study"] == "tiny" and "torch" in cfg["versions"]


def test_logs_show_progress_per_epoch(study):
    logs = list((study / "logs" / "train").glob("*.log"))
    assert logs
    text = "".join(p.read_text() for p in logs)
    assert "epoch 3/3" in text and "test_acc" in text


def test_prediction_covers_the_grid(study):
    m = pd.read_csv(study / "results/tables/prediction_metrics.csv")
    assert set(m.arch) == {"lenet", "resnet8"}
    assert set(m.window) == {1, 2}
    assert set(m.split) == {"within_width", "transfer"}
    assert set(m.feature_set) == {"early_acc", "curve", "weights", "graph", "graph+curve"}
    sig = pd.read_csv(study / "results/tables/graph_signatures.csv")
    assert sig.epoch.max() <= 2 and {0.0, 0.5, 1.0} <= set(sig.epoch)


def test_rerun_has_nothing_to_do(study):
    proc = snakemake(study, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_lost_group_output_retrains_nothing(study):
    """A training job's marker lost (e.g. a killed job): the rerun keeps every finished run."""
    marker = sorted((study / "results" / "train").glob("*.json"))[0]
    runs = [r["run_id"] for r in json.loads(marker.read_text())["runs"]]
    before = {r: (study / "results/runs" / r / "trajectory.bin").stat().st_mtime_ns for r in runs}
    marker.unlink()
    proc = snakemake(study, str(marker.relative_to(study)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = {r: (study / "results/runs" / r / "trajectory.bin").stat().st_mtime_ns for r in runs}
    assert before == after
    assert "already trained, kept" in (study / "logs/train" / f"{marker.stem}.log").read_text()


def test_missing_dataset_stops_before_any_job(tmp_path):
    cfg = {**TINY, "datasets": ["cifar10"], "data": {"root": "nowhere", "download": False, "image_size": 32}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "cifar10" in out and str(tmp_path / "nowhere") in out and "data.download: true" in out
    assert "Job stats" not in out and not (tmp_path / "results").exists()
