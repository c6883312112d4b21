"""Each rule's conda env (envs/*.yaml) holds every third-party module its script imports, through netdyn.

The modules are found by importing, not from a hand-kept list: in a fresh interpreter per rule script, the
script's own import statements run (the script itself needs Snakemake's `snakemake` object, so it is not
executed), with ``builtins.__import__`` wrapped to record every import made by the script or by a netdyn
module. netdyn's lazy package exports (PEP 562) are therefore followed as they really resolve. Imports inside
functions run only when the function is called, so each netdyn module that got loaded is also read with
``ast`` and its function-level imports are run as well, until no new netdyn module appears: conservative (a
lazy import counts even where the script's call path never reaches it). The exception is ``WORKFLOW_ONLY``:
netdyn.config's functions (schema and semantic checks, device choice) run in the workflow process before
any job, and following them would demand prediction's packages in every env. Not seen: imports hidden from
both (``importlib.import_module`` of a computed name outside netdyn.exports, ``__import__`` strings) --
netdyn has none. Modules imported only by third-party packages (matplotlib's Pillow, ...) are their
dependencies, which conda resolves; the env must name each distribution netdyn or a script imports directly.

`snakemake` needs no entry: Snakemake's script preamble appends its own search path (the driving
installation's site-packages) to the job's sys.path to unpickle the `snakemake` object. That fallback can
also hide a package missing from an env in a real conda run, which is one more reason to check here.

The envs themselves are not created here (no conda channel is reachable): this proves what they must hold,
that they pin it, and that the pins equal requirements.lock; not that conda-forge solves them.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_workflow_static import RULES  # the rule parser, also for rules made in a loop

REPO = Path(__file__).resolve().parents[1]
PROVIDED_BY_SNAKEMAKE = {"snakemake"}
# netdyn modules whose functions run in the workflow process (config checks, device choice), never in a job:
# their function-level imports are not followed (netdyn.config's would put prediction's packages in every env)
WORKFLOW_ONLY = {"netdyn.config"}
# distribution (normalised) -> its conda-forge name, where they differ
CONDA_NAMES = {"torch": "pytorch", "graph-tool": "graph-tool"}


def _probe(script: str, repo: str, workflow_only: list[str]) -> None:
    """Runs in a fresh interpreter (its source is sent with ``python -c``): prints {top-level module:
    [importer, how]} of the third-party imports that `script` and the netdyn modules it reaches make."""
    import ast
    import builtins
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, repo)
    found, failed = {}, {}
    real_import = builtins.__import__

    def ours(name):
        return name == "__script__" or name == "netdyn" or name.startswith("netdyn.")

    def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__", "")
        top = name.partition(".")[0]
        if level == 0 and ours(importer) and top != "netdyn" and top not in sys.stdlib_module_names:
            found.setdefault(top, [importer, how])
        return real_import(name, globals, locals, fromlist, level)

    def run_imports(nodes, module, path):
        for node in nodes:
            try:
                exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"),
                     {"__name__": module, "__package__": module if path.endswith("__init__.py")
                      else module.rpartition(".")[0]})
            except ImportError as e:
                failed[f"{module}:{node.lineno}"] = str(e)

    builtins.__import__ = recording_import
    how = "imported on loading the script's modules"
    tree = ast.parse(Path(script).read_text())
    run_imports([n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))], "__script__", script)
    how, scanned = "reached by a function-level import", set()
    while new := sorted(n for n in list(sys.modules) if ours(n) and n not in scanned and n not in workflow_only):
        for name in new:
            scanned.add(name)
            path = getattr(sys.modules[name], "__file__", None)
            functions = [f for f in ast.walk(ast.parse(Path(path).read_text()))
                         if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
            run_imports([n for f in functions for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))],
                        name, path)
    loaded = sorted(n for n in sys.modules if ours(n))
    print(json.dumps({"found": found, "failed": failed, "netdyn": loaded}))


def imported_modules(script: Path) -> dict:
    """{"found": {top-level module: [importer, how]}, "failed": ..., "netdyn": modules reached} of a rule
    script, from `_probe` in a fresh interpreter."""
    code = f"{inspect.getsource(_probe)}\n_probe({str(script)!r}, {str(REPO)!r}, {sorted(WORKFLOW_ONLY)!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions(module: str) -> set[str]:
    """The conda names a top-level module may be installed under (its distribution; Debian's graph_tool
    has no metadata, and is named by the module)."""
    dists = importlib.metadata.packages_distributions().get(module) or [module]
    return {CONDA_NAMES.get(_normalise(d), _normalise(d)) for d in dists}


def env_packages(env: Path) -> dict[str, str]:
    """{normalised name: version} of an env file, conda and pip dependencies alike."""
    pins = {}
    for dep in yaml.safe_load(env.read_text())["dependencies"]:
        for spec in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, version = re.match(r"([\w.-]+)=?=?(.*)", spec).groups()
            pins[CONDA_NAMES.get(_normalise(name), _normalise(name))] = version
    return pins


def missing_from_env(found: dict, env: Path) -> dict[str, str]:
    """{module: why it is needed} for each imported module whose distribution the env does not name."""
    have = env_packages(env)
    return {m: " ".join(why) for m, why in found.items()
            if m not in PROVIDED_BY_SNAKEMAKE and not distributions(m) & set(have)}


def _rule_scripts():
    """(rule, env file, script) of every rule that runs a script."""
    for _, name, body in RULES:
        env = re.search(r'^\s+conda:\s*\n\s+"([^"]+)"', body, flags=re.M)
        script = re.search(r'^\s+script:\s*\n\s+"([^"]+)"', body, flags=re.M)
        if env and script:
            base = REPO / "workflow" / "rules"
            yield name, (base / env.group(1)).resolve(), (base / script.group(1)).resolve()


RULE_SCRIPTS = list(_rule_scripts())


@pytest.fixture(scope="module")
def probes():
    cache = {}

    def probe(script: Path) -> dict:
        if script not in cache:
            cache[script] = imported_modules(script)
        return cache[script]

    return probe


def test_every_rule_with_a_script_is_checked():
    assert {n for n, _, _ in RULE_SCRIPTS} >= {"train", "collect_runs", "graph_signatures", "collect_graphs",
                                                 "predict"}


@pytest.mark.parametrize("rule,env,script", RULE_SCRIPTS, ids=[r[0] for r in RULE_SCRIPTS])
def test_rule_env_holds_what_its_script_imports(rule, env, script, probes):
    probe = probes(script)
    assert not probe["failed"], f"imports that fail in this venv: {probe['failed']}"
    assert probe["found"], f"{script.name}: no third-party import found, the probe is broken"
    missing = missing_from_env(probe["found"], env)
    assert not missing, f"rule {rule}: {env.name} lacks {missing}"


def test_probe_follows_lazy_exports_and_function_level_imports(probes):
    """Known facts of the code: graph_signatures reaches graph-tool and torch only through netdyn.graphs'
    lazy exports; predict reaches joblib only inside a function; prediction needs no torchvision."""
    graphs = probes(REPO / "scripts" / "graph_signatures.py")
    assert graphs["found"]["graph_tool"][0].startswith("netdyn.graphs.")
    assert {"torch", "numpy", "pandas"} <= set(graphs["found"])
    assert "netdyn.graphs.extract" in graphs["netdyn"]
    predict = probes(REPO / "scripts" / "predict.py")
    assert predict["found"]["joblib"][1] == "reached by a function-level import"
    assert {"xgboost", "sklearn", "scipy"} <= set(predict["found"])
    assert predict["found"]["pandas"] == ["__script__", "imported on loading the script's modules"]


def test_a_missing_package_is_reported(tmp_path, probes):
    """The check fails for an env without a package the script needs: xgboost dropped from predict's env."""
    env = REPO / "envs" / "predict.yaml"
    spec = yaml.safe_load(env.read_text())
    spec["dependencies"] = [d for d in spec["dependencies"] if not str(d).startswith("xgboost")]
    (tmp_path / "predict.yaml").write_text(yaml.safe_dump(spec))
    found = probes(REPO / "scripts" / "predict.py")["found"]
    assert set(missing_from_env(found, tmp_path / "predict.yaml")) == {"xgboost"}
    assert missing_from_env(found, env) == {}


def _lock() -> dict[str, str]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    pins = dict(ln.split("==") for ln in lines if ln and not ln.startswith("#"))
    # the Debian packages the venv takes from the system, named with their versions in the lock's header
    debian = re.search(r"From Debian, not pinned here: (.*)\.", (REPO / "requirements.lock").read_text()).group(1)
    pins |= dict(re.fullmatch(r"(?:python3-)?(\S+) (\S+)", p.strip()).groups() for p in debian.split(","))
    return {CONDA_NAMES.get(_normalise(k), _normalise(k)): v for k, v in pins.items()}


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_versions_equal_the_lock(env):
    """Where a package is in both, the env pins the version the tested venv runs."""
    lock = _lock()
    assert {"pytorch", "graph-tool", "scipy", "numpy"} <= set(lock)
    pins = env_packages(env)
    differ = {k: (v, lock[k]) for k, v in pins.items() if k in lock and v != lock[k]}
    assert not differ, f"{env.name}: (env, lock) versions differ: {differ}"
    assert pins.get("python", "").startswith("3.11."), "the venv's Python is Debian 12's 3.11"
