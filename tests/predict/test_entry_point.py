"""scripts/predict.py runs in envs/predict.yaml, which has no graph-tool: every netdyn import of the
script must load with graph_tool unavailable (the graph summary is pure pandas, netdyn.graphs.summary)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "predict.py"


def _netdyn_imports(path: Path) -> list[str]:
    """The script's own `import netdyn...` / `from netdyn... import ...` statements, as source lines."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "netdyn":
            out.append(ast.unparse(node))
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "netdyn" for a in node.names):
            out.append(ast.unparse(node))
    return out


def test_predict_script_imports_load_without_graph_tool():
    imports = _netdyn_imports(SCRIPT)
    joined = "\n".join(imports)
    for needed in ("netdyn.predict", "netdyn.graphs"):  # the parse found what it should
        assert needed in joined, (needed, imports)
    code = "\n".join([
        "import sys",
        f"sys.path.insert(0, {str(REPO)!r})",
        "sys.modules['graph_tool'] = None  # any `import graph_tool` now raises ImportError",
        *imports,
        "import netdyn.graphs.summary, netdyn.predict, netdyn.figures.predict",
        "assert 'temporal_summary' in dir(), 'the script reads temporal_summary'",
        "print('ok')",
    ])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


def test_blocking_graph_tool_is_effective():
    """The check above would pass vacuously if blocking did not stop a graph-tool import."""
    code = "import sys; sys.modules['graph_tool'] = None\ntry:\n    import graph_tool\nexcept ImportError:\n" \
           "    print('blocked')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "blocked", r.stderr
