"""Static checks of the workflow files: every rule has a log, a pinned conda env and (for training) resources."""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def _rules():
    """(file, name, body) of every rule, also those made in a loop (`rule:` + `name: f"train_{...}"`, named
    here by the part before the first brace)."""
    for path in RULE_FILES:
        text = path.read_text()
        for m in re.finditer(r"^([ \t]*)rule( \w+)?:\n(.*?)(?=^[ \t]*rule[ :]|^\S|\Z)", text, flags=re.M | re.S):
            name = m.group(2)
            if name is None:
                name = re.search(r'name:\s*\n?\s*f?"(\w+?)(?:_?\{|")', m.group(3)).group(1)
            yield path.name, name.strip(), m.group(3)


RULES = list(_rules())


def test_rules_found():
    names = {name for _, name, _ in RULES}
    assert {"train", "collect_runs", "graph_signatures", "collect_graphs", "predict"} <= names


@pytest.mark.parametrize("path,name,body", RULES, ids=[r[1] for r in RULES])
def test_rule_has_log_and_conda_env(path, name, body):
    assert re.search(r"^\s+log:", body, flags=re.M), f"rule {name} in {path} has no log:"
    env = re.search(r'^\s+conda:\s*\n\s+"([^"]+)"', body, flags=re.M)
    assert env, f"rule {name} in {path} has no conda: env"
    assert (REPO / "workflow" / "rules" / env.group(1)).resolve().is_file()


def test_training_rule_asks_for_a_gpu_on_cuda():
    body = dict((n, b) for _, n, b in RULES)["train"]  # the loop's rules: train_<group>
    assert re.search(r"resources:\s*\n\s+gpu=1 if DEVICE == \"cuda\" else 0", body)


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_conda_env_pins_exact_versions(env):
    spec = yaml.safe_load(env.read_text())
    assert spec["channels"][0] == "conda-forge"
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            for pip_dep in dep["pip"]:
                assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][\w.]*", pip_dep), f"{env.name}: {pip_dep} not pinned"
        else:
            assert re.fullmatch(r"[A-Za-z0-9_.-]+=[0-9][\w.]*", dep), f"{env.name}: {dep} not pinned"


def test_lock_pins_every_package():
    lines = [ln for ln in (REPO / "requirements.lock").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.+]+", ln) for ln in lines)
    pins = dict(ln.split("==") for ln in lines)
    assert pins["numpy"].startswith("1.26.")  # Debian's graph-tool 2.45 needs NumPy 1.x
    assert int(pins["pandas"].split(".")[0]) < 3


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start\n.*?```bash\n(.*?)```", readme, flags=re.S).group(1).strip().splitlines()
    assert len(block) == 2
    assert block[1] in (REPO / ".ci" / "run").read_text()


def test_slurm_profile_sizes_every_rule_but_training():
    """Training jobs take the profile's default-resources (16 GB, 4 h); every other rule is sized in
    set-resources, so a new rule cannot silently ask a cluster for a training job's memory and time."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    sized = set(profile["set-resources"])
    names = {name for _, name, _ in RULES} - {"train"}
    assert names <= sized, f"rules without set-resources in profiles/slurm: {sorted(names - sized)}"
    assert sized <= names, f"set-resources for rules that do not exist: {sorted(sized - names)}"
    for rule, res in profile["set-resources"].items():
        assert {"mem_mb", "runtime"} <= set(res), rule
