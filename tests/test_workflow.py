"""End to end: the whole Snakemake workflow on a tiny digits grid, in a scratch directory."""

import json
import re
import shutil
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
    # a pattern: any data set; the deep run's embedded-CMD twin trains too (3 epochs: its warm-up and one more,
    # so nothing is frozen here -- the freezing itself: tests/cmd/test_embedded.py)
    "cmd": {"deep": ["lenet-*-w1-lr0.1-do0-wd0-s0"], "deep_n_modes": [1, 2], "embedded": {"enabled": True}},
}


def snakemake(workdir: Path, *args: str, config: str = "config.yaml") -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / config), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def results(workdir: Path) -> Path:
    return workdir / "results" / TINY["study"]


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count of a dry run's job stats (empty when there is nothing to do)."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    if "Nothing to be done" in out:
        return {}
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)\s*$", out[out.index("Job stats"):], flags=re.M)
            if k != "total"}


def grid_run_dirs(workdir: Path) -> list[Path]:
    """The grid's run directories, sorted (not the embedded-CMD twin, a variant run)."""
    return sorted(d for d in (results(workdir) / "runs").iterdir() if not d.name.endswith("-ecmd"))


def planned_without_result(workdir: Path, run_dir: Path) -> dict[str, int]:
    """The dry run's jobs with `run_dir`'s result.json deleted; the file is put back as it was (bytes and
    mtime), so the study stays complete."""
    import os

    result = run_dir / "result.json"
    data, stat = result.read_bytes(), result.stat()
    result.unlink()
    try:
        return planned_jobs(snakemake(workdir, "-n"))
    finally:
        result.write_bytes(data)
        os.utime(result, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def trajectory_times(workdir: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (results(workdir) / "runs").glob("*/trajectory.bin")}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("study")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY))
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_every_stage_leaves_its_outputs(study):
    res = results(study)
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
        assert set(cfg["study_config"]) == {"study", "device", "data", "training"}  # what training depends on


def test_logs_show_progress_per_epoch(study):
    logs = list((study / "logs" / "tiny" / "train").glob("*.log"))
    assert logs
    text = "".join(p.read_text() for p in logs)
    assert "epoch 3/3" in text and "test_acc" in text


def test_prediction_covers_the_grid(study):
    m = pd.read_csv(results(study) / "tables/prediction_metrics.csv")
    assert set(m.arch) == {"lenet", "resnet8"}
    assert set(m.window) == {1, 2}
    assert set(m.split) == {"within_width", "transfer"}
    from netdyn.predict import NO_FIT_SETS  # no-fit baselines, evaluated beside every configured feature set

    assert set(m.feature_set) == {"early_acc", "curve", "weights", "graph", "graph+curve", "modularity", "cmd",
                                  *NO_FIT_SETS}
    sig = pd.read_csv(results(study) / "tables/graph_signatures.csv")
    assert sig.epoch.max() <= 2 and {0.0, 0.5, 1.0} <= set(sig.epoch)


def test_rerun_has_nothing_to_do(study):
    proc = snakemake(study, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_lost_group_output_retrains_nothing(study):
    """A training job's marker lost (e.g. a killed job): the rerun keeps every finished run."""
    marker = sorted((results(study) / "train").glob("*.json"))[0]
    before = trajectory_times(study)
    marker.unlink()
    proc = snakemake(study)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert trajectory_times(study) == before
    assert "already trained, kept" in (study / "logs/tiny/train" / f"{marker.stem}.log").read_text()


@pytest.mark.parametrize("lose", ["run directory", "result.json"])
def test_a_lost_run_is_retrained_alone(study, lose):
    """Snakemake sees runs: a deleted run (or its result.json) is found by a plain rerun, which retrains
    that run only, to the same bytes, and keeps its group's other runs."""
    run_dir = grid_run_dirs(study)[3]
    data = (run_dir / "trajectory.bin").read_bytes()
    before = trajectory_times(study)
    shutil.rmtree(run_dir) if lose == "run directory" else (run_dir / "result.json").unlink()
    jobs = planned_jobs(snakemake(study, "-n"))
    assert sum(n for rule, n in jobs.items() if rule.startswith("train_")) == 1, jobs
    proc = snakemake(study)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = trajectory_times(study)
    assert after.pop(run_dir.name) != before.pop(run_dir.name)  # retrained ...
    assert after == before  # ... alone
    assert (run_dir / "trajectory.bin").read_bytes() == data
    assert planned_jobs(snakemake(study, "-n")) == {}


def _edited_config(study: Path, section: str, **values) -> str:
    cfg = json.loads(json.dumps(TINY))
    cfg[section].update(values)
    (study / "edited.yaml").write_text(yaml.safe_dump(cfg))
    return "edited.yaml"


@pytest.mark.parametrize("section, edit, expected", [
    ("predict", {"bootstrap": 60}, {"predict", "figures", "report_summary", "all"}),
    ("predict", {"folds": 2}, {"predict", "figures", "report_summary", "all"}),
    ("predict", {"windows": [1]}, {"graph_signatures", "collect_graphs", "modularity", "collect_modularity",
                                  "cmd_group", "collect_cmd", "predict", "figures", "report_summary", "all"}),
])
def test_a_job_reruns_only_where_its_inputs_change(study, section, edit, expected):
    """Editing the prediction settings reruns prediction only; a key the graphs read (the largest window)
    reruns graphs and prediction, never training."""
    jobs = planned_jobs(snakemake(study, "-n", config=_edited_config(study, section, **edit)))
    assert set(jobs) == expected, jobs
def test_missing_dataset_stops_before_any_job(tmp_path):
    cfg = {**TINY, "datasets": ["cifar10"], "data": {"root": "nowhere", "download": False, "image_size": 32}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "cifar10" in out and str(tmp_path / "nowhere") in out and "data.download: true" in out
    assert "Job stats" not in out and not (tmp_path / "results").exists()


def test_two_studies_in_one_checkout_do_not_mix(study):
    """Outputs go under results/<study>/: a second study plans all of its own jobs."""
    cfg = {**TINY, "study": "other"}
    (study / "other.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(snakemake(study, "-n", config="other.yaml"))
    assert sum(n for rule, n in jobs.items() if rule.startswith("train_mixed")) == 6, jobs  # 24 runs, 4 a job
    assert jobs["train_variants_mixed_g000"] == 1, jobs  # the deep run's embedded-CMD twin
    assert not (study / "results" / "other").exists()


def test_kill_unlock_rerun_ends_equal_to_an_uninterrupted_study(study, tmp_path):
    """kill -9 of Snakemake leaves its training jobs running as orphans; `--unlock` and a rerun (what
    Snakemake advises) must not let two processes write one run: the run lock refuses the second writer,
    and once the orphans are gone a rerun ends with every file equal to the uninterrupted study's."""
    import os
    import signal
    import time

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TINY))
    # the training jobs only: what the orphans and the lock are about
    trained = f"results/{TINY['study']}/tables/runs.csv"
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", trained]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not list((results(tmp_path) / "runs").glob("*/trajectory.bin")) and time.time() < deadline:
        time.sleep(0.2)
    os.kill(first.pid, signal.SIGKILL)  # Snakemake only: its job processes live on as orphans
    first.wait()
    assert subprocess.run([*cmd, "--unlock"], capture_output=True, timeout=120).returncode == 0
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    logs = "".join(p.read_text() for p in (tmp_path / "logs" / "tiny" / "train").glob("*.log"))
    if second.returncode != 0:  # it overlapped an orphan: refused by the lock, not a second writer
        assert "train.lock" in logs, logs[-3000:]
    while subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True).returncode == 0:
        time.sleep(0.5)  # the orphans finish their runs
    final = snakemake(tmp_path, trained)
    assert final.returncode == 0, final.stderr[-3000:]
    assert planned_jobs(snakemake(tmp_path, "-n", trained)) == {}
    ref = results(study) / "runs"
    for run_dir in sorted((results(tmp_path) / "runs").iterdir()):
        for name in ("trajectory.bin", "trajectory.json", "curves.csv"):
            assert (run_dir / name).read_bytes() == (ref / run_dir.name / name).read_bytes(), (run_dir.name, name)
        assert json.loads((run_dir / "result.json").read_text())["status"] in {"complete", "diverged"}


FIGURE_STEMS = ["learning_curves", "graph_signature_trajectories", "graph_sizes", "predicted_vs_true",
                "metrics_vs_window", "transfer_by_width", "feature_importance"]


def test_figures_target_redraws_every_figure_from_the_tables(study):
    """`snakemake figures` after deleting results/<study>/figures/: only the figures job runs (no training,
    graph or prediction job), and every figure comes back as PNG and PDF; the tables are untouched."""
    res = results(study)
    tables = {p.name: p.stat().st_mtime_ns for p in (res / "tables").glob("*.csv")}
    before = trajectory_times(study)
    shutil.rmtree(res / "figures")
    assert planned_jobs(snakemake(study, "-n", "figures")) == {"figures": 1}
    proc = snakemake(study, "figures")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stem in FIGURE_STEMS:
        assert (res / "figures" / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert (res / "figures" / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-", stem
    assert {p.name for p in (res / "figures").iterdir()} == \
        {f"{s}.{ext}" for s in FIGURE_STEMS for ext in ("png", "pdf")}
    assert {p.name: p.stat().st_mtime_ns for p in (res / "tables").glob("*.csv")} == tables
    assert trajectory_times(study) == before
    assert planned_jobs(snakemake(study, "-n")) == {}  # `all` is complete again


# --------------------------------------------------------------------------------------------------------
# modularity stage (netdyn.modularity, workflow/rules/modularity.smk)

def test_modularity_stage_leaves_tables_and_figures(study):
    """Q per layer for every run's final snapshot and every snapshot up to the largest window (2), within
    [-1/2, 1]; a plateau row per architecture; both figures as PNG and PDF."""
    res = results(study)
    table = pd.read_csv(res / "tables/modularity.csv")
    assert list(table.columns) == ["run_id", "epoch", "layer_index", "layer_name", "q_mean", "q_std"]
    runs = pd.read_csv(res / "tables/runs.csv")
    assert set(table.run_id) == set(runs.run_id)
    for run_id, part in table.groupby("run_id"):
        curves = pd.read_csv(res / "runs" / run_id / "curves.csv")
        expected = {e for e in curves.epoch if e <= 2} | {curves.epoch.max()}
        assert set(part.epoch) == expected, run_id
        assert part.groupby("epoch").layer_index.apply(lambda s: sorted(s) == list(range(len(s)))).all()
    done = table.merge(runs[["run_id", "status"]], on="run_id").query("status == 'complete'")
    assert done.q_mean.between(-0.5, 1.0).all() and (done.q_std >= 0).all()
    plateaus = pd.read_csv(res / "tables/modularity_plateaus.csv")
    assert sorted(plateaus.arch_label) == ["lenet", "resnet8"] and set(plateaus.dataset) == {"digits"}
    for stem in ("modularity_by_layer", "modularity_over_epochs"):
        assert (res / "modularity/figures" / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert (res / "modularity/figures" / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-", stem


def test_a_lost_run_reruns_only_its_groups_modularity_job(study):
    """A deleted result.json: the dry run plans its group's training and modularity jobs (one each), not
    the other groups'. The file is put back as it was (bytes and mtime), so the study stays complete."""
    jobs = planned_without_result(study, grid_run_dirs(study)[5])
    assert sum(n for rule, n in jobs.items() if rule.startswith("train_")) == 1, jobs
    assert jobs["modularity"] == 1 and jobs["collect_modularity"] == 1, jobs
    assert len(list((results(study) / "modularity").glob("*.csv"))) > 1  # other groups exist and stay
    assert planned_jobs(snakemake(study, "-n")) == {}


# --------------------------------------------------------------------------------------------------------
# CMD stage (netdyn.cmd.stage / table, workflow/rules/cmd.smk)

CMD_DEEP_RUN = "lenet-digits-w1-lr0.1-do0-wd0-s0"  # the one run TINY's cmd.deep names
CMD_TABLE_COLUMNS = ["run_id", "arch", "dataset", "width", "n_modes", "rel_error_final", "acc_sgd", "acc_cmd",
                     "acc_online_cmd"]


def test_cmd_stage_leaves_tables_and_figures(study):
    """tables/cmd.csv: a cheap row per run and M in cmd.n_modes (default 2, 10), a deep row per M in
    cmd.deep_n_modes for the one run cmd.deep names; the cheap error is the library's post-hoc CMD of that run
    with the configured K and seed; acc_sgd is the run's own final accuracy; four figures as PNG and PDF."""
    from netdyn.cmd import posthoc
    from netdyn.rundir import open_trajectory

    res = results(study)
    table = pd.read_csv(res / "tables/cmd.csv")
    assert set(CMD_TABLE_COLUMNS) <= set(table.columns)
    runs = pd.read_csv(res / "tables/runs.csv")
    cheap, deep = table[table.analysis == "cheap"], table[table.analysis == "deep"]
    assert sorted(zip(cheap.run_id, cheap.n_modes)) == sorted((r, m) for r in runs.run_id for m in (2, 10))
    deep_run = CMD_DEEP_RUN
    assert set(deep.run_id) == {deep_run} and sorted(deep.n_modes) == [1, 2]
    merged = cheap.merge(runs[["run_id", "final_test_acc"]], on="run_id")
    assert (merged.acc_sgd == merged.final_test_acc).all() and cheap.acc_cmd.isna().all()
    done = merged[merged.status == "complete"]
    assert done.rel_error_final.between(0, 1).all()
    run_id = done.run_id.iloc[0]
    expected = posthoc(open_trajectory(res / "runs" / run_id), 10, n_samples=300, seed=0).relative_error[-1]
    got = cheap[(cheap.run_id == run_id) & (cheap.n_modes == 10)].rel_error_final.item()
    assert got == pytest.approx(expected, rel=1e-9)
    final = pd.read_csv(res / "runs" / deep_run / "curves.csv").test_acc.iloc[-1]
    assert deep.acc_sgd.to_numpy() == pytest.approx(final, abs=0.005)
    assert deep[["acc_cmd", "acc_online_cmd"]].apply(lambda c: c.between(0, 1)).all().all()
    for stem in ("cmd_references", "cmd_correlation", "cmd_accuracy", "cmd_mode_layers"):
        assert (res / "cmd/figures" / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert (res / "cmd/figures" / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-", stem



def test_cmd_deep_joins_the_embedded_twin_which_stays_out_of_grid_tables(study):
    """The deep run's twin (run id + -ecmd) is trained in a variants job of its own, reports its trained share,
    and enters cmd_deep's table (its accuracy at every snapshot) but not runs.csv or any grid-wide table."""
    res = results(study)
    twin = res / "runs" / f"{CMD_DEEP_RUN}-ecmd"
    report = json.loads((twin / "result.json").read_text())["embedded_cmd"]
    assert [r["epoch"] for r in report["epochs"]] == [0, 1, 2, 3]
    assert twin.name not in set(pd.read_csv(res / "tables/runs.csv").run_id)
    assert twin.name not in set(pd.read_csv(res / "tables/graph_signatures.csv").run_id)
    assert list((res / "train").glob("variants-*.json"))
    curves = pd.read_csv(twin / "curves.csv", float_precision="round_trip")
    epochs = pd.read_csv(res / "cmd/deep" / f"{CMD_DEEP_RUN}.epochs.csv", float_precision="round_trip")
    for _, per_m in epochs.groupby("n_modes"):
        assert per_m.acc_embedded_cmd.tolist() == curves.test_acc.tolist()
        assert (per_m.trained_fraction == 1.0).all()  # nothing frozen in 3 epochs with a 2-epoch warm-up
    deep = pd.read_csv(res / "tables/cmd.csv").query("analysis == 'deep'")
    assert deep.acc_embedded_cmd.to_numpy() == pytest.approx(curves.test_acc.iloc[-1], abs=1e-12)


@pytest.mark.parametrize("which", ["deep run", "other run"])
def test_a_lost_run_reruns_only_its_groups_cmd_job(study, which):
    """A deleted result.json: the dry run plans its group's cmd_group job only (and cmd_deep only where the
    run is the deep one). The file is put back as it was (bytes and mtime)."""
    run_dir = next(d for d in grid_run_dirs(study) if (d.name == CMD_DEEP_RUN) == (which == "deep run"))
    jobs = planned_without_result(study, run_dir)
    assert jobs["cmd_group"] == 1 and jobs["collect_cmd"] == 1, jobs
    assert jobs.get("cmd_deep", 0) == (1 if which == "deep run" else 0), jobs
    assert len(list((results(study) / "cmd/groups").glob("*.snapshots.csv"))) > 1  # other groups stay
    assert planned_jobs(snakemake(study, "-n")) == {}


# --------------------------------------------------------------------------------------------------------
# every figure from `snakemake figures`, and the report (snakemake --report, checked in headless Chromium by
# scripts/check_report.py; the checker's own tests and the summary page's: tests/test_report.py)

from test_report import chromium, run_check  # noqa: E402,F401  (the fixture installs Chromium where missing)

STAGE_FIGURE_DIRS = ["cmd/figures", "modularity/figures"]
SUMMARY_HEADINGS = ["Config", "Training runs", "Graph stage", "Prediction of final test accuracy",
                    "CMD (correlation mode decomposition)", "Modularity"]


def test_figures_target_redraws_the_cmd_and_modularity_figures(study):
    """The CMD and modularity figures belong to rule figures too: deleted, `snakemake figures` alone brings
    them back (PNG and PDF), running no stage job and touching no table."""
    res = results(study)
    names = {d: sorted(p.name for p in (res / d).iterdir()) for d in STAGE_FIGURE_DIRS}
    assert all(len(n) == 2 * {"cmd/figures": 4, "modularity/figures": 2}[d] for d, n in names.items()), names
    tables = {p.name: p.stat().st_mtime_ns for p in (res / "tables").glob("*.csv")}
    for d in STAGE_FIGURE_DIRS:
        shutil.rmtree(res / d)
    assert planned_jobs(snakemake(study, "-n", "figures")) == {"figures": 1}
    proc = snakemake(study, "figures")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for d in STAGE_FIGURE_DIRS:
        assert sorted(p.name for p in (res / d).iterdir()) == names[d]
        for png in (res / d).glob("*.png"):
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    assert {p.name: p.stat().st_mtime_ns for p in (res / "tables").glob("*.csv")} == tables
    assert planned_jobs(snakemake(study, "-n")) == {}


@pytest.fixture(scope="module")
def built_report(study):
    """`snakemake --report report.html` of the tiny study (every figure and the summary page embedded)."""
    proc = snakemake(study, "--report", str(study / "report.html"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return study / "report.html"


def _text(caption_html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", caption_html))


def test_report_renders_in_headless_chromium(study, built_report, chromium):
    """Opened in Chromium, the report shows every figure of every stage (each <img> decoded, naturalWidth > 0),
    the summary page with a table per stage, and logs no error; captions state the study, window and
    feature set of what they show."""
    status, found, err = run_check(built_report, chromium)
    assert status == 0, err
    assert found["kind"] == "snakemake" and found["console_errors"] == [] and found["problems"] == []
    pngs = {str(p.relative_to(study)) for p in results(study).glob("**/figures/*.png")}
    assert len(pngs) >= 13 and {i["path"] for i in found["images"]} == pngs
    assert all(i["natural_width"] > 0 and i["decoded"] for i in found["images"])
    assert {"Summary", "Training", "Graphs", "Prediction", "CMD", "Modularity"} <= set(found["categories"])
    (summary,) = found["html"]
    assert summary["path"] == "results/tiny/report/summary.html" and summary["shown"]
    assert summary["headings"][0] == "netdyn study tiny: summary" and summary["headings"][1:] == SUMMARY_HEADINGS
    assert {"config-table", "runs-table", "graphs-table", "prediction-table", "cmd-table", "plateau-table",
            "modularity-table"} <= set(summary["table_ids"])
    captions = {path: _text(c) for path, c in found["captions"].items()}
    for path in pngs:
        assert "tiny" in captions[path] and "{" not in captions[path], (path, captions[path])
    fig = "results/tiny/figures/"
    assert "feature set graph+curve at early window E = 2" in captions[fig + "predicted_vs_true.png"]
    assert "feature set graph+curve at early window E = 2" in captions[fig + "feature_importance.png"]
    assert "E ∈ 1, 2 for every feature set (early_acc," in captions[fig + "metrics_vs_window.png"]
    assert "fitted on widths 1" in captions[fig + "transfer_by_width.png"]
    assert f"run {CMD_DEEP_RUN}" in captions["results/tiny/cmd/figures/cmd_references.png"]


def test_report_check_fails_on_a_figure_that_does_not_load(built_report, chromium, tmp_path):
    """The same report with one figure's embedded data replaced by bytes that are no image: the check fails,
    naming that figure."""
    html = built_report.read_text()
    start = html.index("var results = {")
    entries, _ = json.JSONDecoder().raw_decode(html[start + len("var results = "):])
    broken = "results/tiny/figures/learning_curves.png"
    uri = entries[broken]["data_uri"]
    assert html.count(uri) == 1
    (tmp_path / "report.html").write_text(html.replace(uri, "data:image/png;base64,bm90IGEgcG5n"))
    status, found, err = run_check(tmp_path / "report.html", chromium)
    assert status == 1
    assert [i["path"] for i in found["images"] if i["natural_width"] == 0] == [broken]
    assert broken in err


def test_zip_report_renders_and_a_missing_figure_file_fails(study, chromium, tmp_path):
    """`--report report.zip` keeps figures as files beside report.html: it renders clean, and with one figure
    file removed from the archive the check fails on that figure (a broken image path) and its load error."""
    import zipfile

    proc = snakemake(study, "--report", str(tmp_path / "report.zip"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    status, found, err = run_check(tmp_path / "report.zip", chromium)
    assert status == 0, err
    assert len(found["images"]) >= 13 and found["html"][0]["tables"] >= 7
    with zipfile.ZipFile(tmp_path / "report.zip") as src, zipfile.ZipFile(tmp_path / "broken.zip", "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith("/cmd_accuracy.png"):
                dst.writestr(item, src.read(item))
    status, found, err = run_check(tmp_path / "broken.zip", chromium)
    assert status == 1
    missing = "results/tiny/cmd/figures/cmd_accuracy.png"
    assert [i["path"] for i in found["images"] if i["natural_width"] == 0] == [missing]
    assert any("ERR_FILE_NOT_FOUND" in e and "cmd_accuracy.png" in e for e in found["console_errors"])
