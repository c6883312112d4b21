"""profiles/slurm against a real scheduler: a one-node SLURM on localhost (scripts/slurm_local.sh).

A tiny study runs through `snakemake --profile profiles/slurm` and must give the same bytes as a local run;
a cuda config's training jobs must ask SLURM for a GPU; a job no node can hold must fail at once with
sbatch's message. The cluster is brought up once for the module and always stopped at the end.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
CLUSTER_SCRIPT = REPO / "scripts" / "slurm_local.sh"

# lenet × widths 1, 2 × 2 learning rates × 2 seeds = 8 runs in 2 training jobs; explicit feature sets keep
# the prediction stage to what this workflow computes
TINY = {
    "study": "tiny", "device": "cpu",
    "data": {"root": "data", "download": False, "image_size": 16},
    "datasets": ["digits"],
    "architectures": [{"name": "lenet"}],
    "widths": [1, 2],
    "hyperparameters": {"learning_rate": [0.03, 0.1], "dropout": [0.0], "weight_decay": [0.0]},
    "seeds": [0, 1],
    "training": {"epochs": 2, "batch_size": 128, "crop_padding": 2, "subepoch_snapshots": 2,
                 "subepoch_epochs": 1, "group_size": 4},
    "predict": {"train_widths": [1], "windows": [1], "feature_sets": ["early_acc", "curve", "graph"],
                "folds": 2, "bootstrap": 20, "tune": {"max_depth": [2]},
                "xgboost": {"n_estimators": 20, "max_depth": 2}},
}
# stages a study may switch off (those the schema knows): this test is about the scheduler, not every stage
_SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]
TINY.update({stage: {"enabled": False} for stage in ("modularity", "cmd")
             if "enabled" in _SCHEMA.get(stage, {}).get("properties", {})})
# outputs that must be byte-equal to a local run's (runs.csv and result.json hold wall times)
TABLES = ["graph_signatures.csv", "graph_sizes.csv", "predictions.csv", "prediction_metrics.csv",
          "feature_importance.csv"]
# status polling for a cluster whose jobs take seconds (the plugin's defaults add ~40 s per DAG level);
# no retries, so a failing job fails the test at once
FAST = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
        "--retries", "0"]


def _as_root() -> list[str] | None:
    """Command prefix that runs scripts/slurm_local.sh as root (itself, or password-less sudo), or None."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n", "--preserve-env=SLURM_LOCAL_CTLD_PORT,SLURM_LOCAL_SLURMD_PORT"]
    return None


def _cannot_run_daemons() -> str | None:
    """Why the SLURM daemons cannot run here, or None."""
    if _as_root() is None:
        return "SLURM daemons and munge need root (scripts/slurm_local.sh): not root, no password-less sudo"
    if not shutil.which("apt-get") and not shutil.which("slurmctld"):
        return "no slurmctld, and no apt-get to install it"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Environment of a running one-node cluster; the daemons are stopped however the tests end."""
    reason = _cannot_run_daemons()
    if reason:
        pytest.skip(reason)
    conf_dir = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "SLURM_LOCAL_CTLD_PORT": str(_free_port()), "SLURM_LOCAL_SLURMD_PORT": str(_free_port())}
    try:
        # up to 10 minutes: a machine without the packages installs them with apt-get first
        up = subprocess.run([*_as_root(), "bash", str(CLUSTER_SCRIPT), "up", str(conf_dir)], env=env,
                            capture_output=True, text=True, timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        env["SLURM_CONF"] = str(conf_dir / "slurm.conf")
        env.pop("NETDYN_GPU_MODEL", None)
        yield env
    finally:
        subprocess.run([*_as_root(), "bash", str(CLUSTER_SCRIPT), "down", str(conf_dir)], env=env, timeout=120)


def snakemake(workdir: Path, env: dict, *args: str, timeout: int) -> subprocess.Popen:
    """Start Snakemake on `workdir`/config.yaml; SIGKILL at the timeout (a hung Snakemake ignores SIGTERM)."""
    cmd = ["timeout", "-s", "KILL", str(timeout), str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group, to be killed whole


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate()
    return proc.returncode, out


def workdir_with(tmp_path_factory, name: str, config: dict) -> Path:
    workdir = tmp_path_factory.mktemp(name)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def slurm_jobs(env: dict) -> list[dict]:
    """Every job the cluster still knows (MinJobAge keeps finished ones for 10 minutes)."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%j|%T|%k|%C"], env=env,
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return [dict(zip(["id", "name", "state", "comment", "cpus"], line.split("|"))) for line in out.splitlines()]


@pytest.fixture(scope="module")
def studies(cluster, tmp_path_factory):
    """The tiny study through profiles/slurm and, alongside, locally (--cores 2)."""
    local_dir = workdir_with(tmp_path_factory, "local", TINY)
    slurm_dir = workdir_with(tmp_path_factory, "slurm_study", TINY)
    local = snakemake(local_dir, cluster, "--cores", "2", timeout=400)
    start = time.monotonic()
    slurm = snakemake(slurm_dir, cluster, "--profile", str(REPO / "profiles/slurm"), *FAST, timeout=400)
    slurm_rc, slurm_out = finish(slurm)
    slurm_seconds = time.monotonic() - start
    local_rc, local_out = finish(local)
    (slurm_dir / "snakemake.out").write_text(slurm_out)  # kept for a failing test's reader
    assert local_rc == 0, local_out[-3000:]
    assert slurm_rc == 0, slurm_out[-5000:]
    return {"local": local_dir, "slurm": slurm_dir, "log": slurm_out, "seconds": slurm_seconds}


def planned_jobs(log: str) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table Snakemake prints first."""
    table = log[log.index("Job stats:"):].split("\n\n")[0]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)\s*$", table, flags=re.M) if k != "total"}


def test_every_job_went_through_sbatch(studies, cluster):
    planned = planned_jobs(studies["log"])
    assert {"train_mixed_g000", "train_mixed_g001", "graph_signatures", "collect_runs", "collect_graphs",
            "predict"} <= set(planned), planned
    jobs = {j["comment"]: j for j in slurm_jobs(cluster) if j["comment"].startswith("rule_")}
    submitted = Counter(c.split("_wildcards_")[0].removeprefix("rule_") for c in jobs)
    # `all` has no action: Snakemake finishes it without a job
    assert submitted == Counter({rule: n for rule, n in planned.items() if rule != "all"}), jobs
    assert {j["state"] for j in jobs.values()} == {"COMPLETED"}
    # each job asked for its rule's threads, not a profile-wide CPU count
    assert jobs["rule_predict"]["cpus"] == "2" and jobs["rule_collect_runs"]["cpus"] == "1"
    assert studies["log"].count("has been submitted with SLURM jobid") == len(jobs)


def test_outputs_equal_a_local_run(studies):
    local, slurm = (studies[k] / "results" / "tiny" for k in ("local", "slurm"))
    run_files = sorted(p.relative_to(local) for p in (local / "runs").glob("*/*")
                       if p.name in {"trajectory.bin", "trajectory.json", "curves.csv"})
    assert len(run_files) == 8 * 3
    tables = [Path("tables") / t for t in TABLES]
    for rel in run_files + tables:
        assert (slurm / rel).read_bytes() == (local / rel).read_bytes(), rel


def test_cuda_training_jobs_ask_slurm_for_a_gpu(cluster, tmp_path_factory):
    """A cuda config's training jobs are submitted with --gpus. They are submitted held (there is no CUDA
    here to run them), read back with scontrol, then cancelled with the Snakemake that waits on them."""
    cuda = {**TINY, "study": "tinycuda", "device": "cuda", "seeds": [0]}
    workdir = workdir_with(tmp_path_factory, "cuda", cuda)
    profile = ["--profile", str(REPO / "profiles/slurm"), *FAST, "--until", "collect_runs"]
    known = {j["id"] for j in slurm_jobs(cluster)}
    proc = snakemake(workdir, cluster, *profile, "--default-resources", "slurm_extra='--hold'", timeout=120)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            train = [j for j in slurm_jobs(cluster) if j["id"] not in known and j["comment"].startswith("rule_train_")]
            if train:
                time.sleep(3)  # the other training jobs of the same scheduling round
                train = [j for j in slurm_jobs(cluster)
                         if j["id"] not in known and j["comment"].startswith("rule_train_")]
                break
            time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        out = finish(proc)[1]
        held = [j["id"] for j in slurm_jobs(cluster) if j["id"] not in known]
        if held:
            subprocess.run(["scancel", *held], env=cluster, timeout=30)
    assert train, out[-3000:]
    for job in train:
        assert job["state"] == "PENDING"
        shown = subprocess.run(["scontrol", "show", "job", job["id"]], env=cluster, capture_output=True,
                               text=True, check=True, timeout=30).stdout
        assert "TresPerJob=gres:gpu:1" in shown, shown
    # a named GPU model goes into the request; this cluster's GPU has no model, so sbatch refuses it
    # (a fresh directory: the killed Snakemake left its lock in the first)
    rc, out = finish(snakemake(workdir_with(tmp_path_factory, "cuda_model", cuda),
                               {**cluster, "NETDYN_GPU_MODEL": "a100"}, *profile, timeout=120))
    assert rc != 0 and "SLURM sbatch failed" in out and "--gpus=a100:1" in out, out[-3000:]


def test_a_job_no_node_can_hold_fails_at_once_with_a_message(cluster, studies):
    """More threads than the node's CPUs: refused at submission, Snakemake fails the job with sbatch's
    message instead of waiting on a job that stays PENDING."""
    too_many = os.cpu_count() + 2
    start = time.monotonic()
    rc, out = finish(snakemake(studies["slurm"], cluster, "--profile", str(REPO / "profiles/slurm"), *FAST,
                               "--forcerun", "collect_runs", "--until", "collect_runs",
                               "--set-threads", f"collect_runs={too_many}", timeout=120))
    assert rc != 0
    assert time.monotonic() - start < 60
    assert "SLURM sbatch failed" in out and "More processors requested than permitted" in out, out[-3000:]
    assert f"--cpus-per-task={too_many}" in out


WORKSTATION_SNAKEFILE = """
rule all:
    input: expand("gpu{i}.txt", i=range(3)), "cpu.txt", "greedy.txt"

rule gpu_job:
    output: "gpu{i}.txt"
    resources: gpu=1
    shell: "date +%s.%N > {output}; sleep 2; date +%s.%N >> {output}"

rule cpu_job:
    output: "cpu.txt"
    shell: "date +%s.%N > {output}; sleep 2; date +%s.%N >> {output}"

rule greedy_job:
    output: "greedy.txt"
    threads: 512
    shell: "echo {threads} > {output}"
"""


def test_workstation_profile_runs_one_gpu_job_at_a_time(tmp_path):
    """profiles/workstation: GPU jobs never overlap, a CPU job runs beside them, threads stay within the
    machine's cores (no cluster needed)."""
    (tmp_path / "Snakefile").write_text(WORKSTATION_SNAKEFILE)
    proc = subprocess.run([str(SNAKEMAKE), "--snakefile", str(tmp_path / "Snakefile"), "--directory", str(tmp_path),
                           "--profile", str(REPO / "profiles/workstation")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    spans = {p.stem: tuple(map(float, p.read_text().split())) for p in tmp_path.glob("*pu*.txt")}
    gpu = sorted(v for k, v in spans.items() if k.startswith("gpu"))
    assert len(gpu) == 3 and all(a[1] <= b[0] for a, b in zip(gpu, gpu[1:]))
    cores = len(os.sched_getaffinity(0))
    if cores >= 2:  # room for the CPU job beside a GPU job
        assert any(g[0] < spans["cpu"][1] and spans["cpu"][0] < g[1] for g in gpu)
    assert int((tmp_path / "greedy.txt").read_text()) == cores
