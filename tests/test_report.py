"""The report a reader opens: scripts/check_report.py (headless Chromium over the DevTools pipe) and the summary
page (scripts/report_summary.py).

Here: the browser check itself, on hand-written pages (it must catch a missing image, an undecodable one, a
console.error and an uncaught exception, and pass a clean page), and the summary page's tables from small
hand-made stage tables. The report of a whole tiny study is built and rendered in tests/test_workflow.py
(`test_report_*`), on that module's study, so no second study is trained for it.

Chromium is Debian's `chromium`, installed by scripts/setup_chromium.sh (apt-get, as root or through
password-less sudo) the first time a test needs it; the tests skip, saying why, only where it cannot be
installed.
"""

import base64
import importlib.util
import io
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "scripts" / "setup_chromium.sh"
CHECK = REPO / "scripts" / "check_report.py"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_report = _load("check_report")
report_summary = _load("report_summary")


def chromium_path() -> str:
    """Chromium's path, installed by scripts/setup_chromium.sh where missing; skips only where it cannot be."""
    proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=900)
    if proc.returncode in (3, 4):  # not root and no sudo; no apt-get: the script says which
        pytest.skip(f"cannot install chromium: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def chromium():
    return chromium_path()


def run_check(page: Path, chromium: str) -> tuple[int, dict | None, str]:
    """scripts/check_report.py as a reader would run it: exit status, its JSON, its stderr."""
    import json

    proc = subprocess.run([sys.executable, str(CHECK), str(page), "--chromium", chromium, "--timeout", "90"],
                          capture_output=True, text=True, timeout=150)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else None), proc.stderr


def png_bytes() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    plt.close(fig)
    return buf.getvalue()


def test_a_clean_page_passes(tmp_path, chromium):
    (tmp_path / "fig.png").write_bytes(png_bytes())
    inline = base64.b64encode(png_bytes()).decode()
    page = tmp_path / "page.html"
    page.write_text(f'<html><body><h1>t</h1><img src="fig.png"><img src="data:image/png;base64,{inline}">'
                    '<table><tr><td>1</td></tr></table><script>console.log("fine")</script></body></html>')
    status, found, err = run_check(page, chromium)
    assert status == 0, err
    assert found["kind"] == "page" and found["console_errors"] == [] and found["problems"] == []
    assert [i["natural_width"] for i in found["images"]] == [40, 40]
    assert found["html"][0]["tables"] == 1 and found["html"][0]["headings"] == ["t"]


def test_missing_and_broken_images_and_page_errors_fail(tmp_path, chromium):
    """Each fault on its own line of the problems: a missing file, bytes that are no image, console.error,
    an uncaught exception."""
    (tmp_path / "fig.png").write_bytes(png_bytes())
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    page = tmp_path / "page.html"
    page.write_text('<html><body><img src="fig.png"><img src="missing.png"><img src="junk.png">'
                    '<script>console.error("boom")</script><script>notDefined()</script></body></html>')
    status, found, err = run_check(page, chromium)
    assert status == 1
    widths = {i["path"]: i["natural_width"] for i in found["images"]}
    assert widths["fig.png"] > 0 and widths["missing.png"] == 0 and widths["junk.png"] == 0
    errors = "\n".join(found["console_errors"])
    assert "console.error: boom" in errors and "notDefined is not defined" in errors
    assert "ERR_FILE_NOT_FOUND" in errors and "missing.png" in errors
    assert sum("figure does not load" in p for p in found["problems"]) == 2
    assert "missing.png" in err and "junk.png" in err


def test_a_page_that_never_loads_is_bounded(tmp_path, chromium):
    """A page whose script never ends: the check gives up at its timeout and says so (exit 2)."""
    page = tmp_path / "page.html"
    page.write_text("<html><body><script>while (true) {}</script></body></html>")
    proc = subprocess.run([sys.executable, str(CHECK), str(page), "--chromium", chromium, "--timeout", "8"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "timed out" in proc.stderr


# ---------------------------------------------------------------------------------------------------------
# the summary page, from small hand-made stage tables

def _tables() -> dict[str, pd.DataFrame]:
    runs = pd.DataFrame({
        "run_id": ["a1", "a2", "b1"], "arch": ["lenet", "lenet", "lenet"], "arch_label": ["lenet"] * 3,
        "dataset": ["digits"] * 3, "width": [1, 1, 2], "status": ["complete", "diverged", "complete"],
        "final_test_acc": [0.8, 0.1, 0.9]})
    signatures = pd.DataFrame({"run_id": ["a1", "a1", "a2", "a2", "b1", "b1"], "snapshot": [0, 1] * 3,
                               "epoch": [0.0, 1.0] * 3, "all.strength.mean": range(6)})
    sizes = pd.DataFrame({"arch": ["lenet", "lenet"], "width": [1, 2], "rolled_nodes": [10, 20],
                          "rolled_edges": [100, 400], "unrolled_nodes": [1000, 2000],
                          "unrolled_edges": [10**5, 4 * 10**5]})
    base = {"arch": "lenet", "dataset": "digits", "subset": "all", "train_widths": "1"}
    metric_cols = {f"{m}{s}": v for m in ("kendall_tau", "r2") for s, v in (("", 0.5), ("_lo", 0.25), ("_hi", 0.75))}
    metrics = pd.DataFrame([
        {**base, **metric_cols, "feature_set": "graph", "window": 1, "split": "within_width", "test_width": None},
        {**base, **metric_cols, "feature_set": "graph", "window": 2, "split": "within_width", "test_width": None,
         "kendall_tau": 0.625},
        {**base, **metric_cols, "feature_set": "graph", "window": 2, "split": "transfer", "test_width": 2.0}])
    return {"runs": runs, "signatures": signatures, "sizes": sizes, "metrics": metrics}


CONFIG = {"study": "unit", "device": "cpu", "datasets": ["digits"], "architectures": [{"name": "lenet"}],
          "widths": [1, 2], "hyperparameters": {"learning_rate": [0.1], "dropout": [0.0], "weight_decay": [0.0]},
          "seeds": [0], "training": {"epochs": 3, "batch_size": 64},
          "predict": {"feature_sets": ["graph"], "train_widths": [1]},
          "modularity": {"enabled": False}, "cmd": {"enabled": False}}


class _Tables(HTMLParser):
    """Every <table id=...> of a page as rows of cell texts (header row first); no lxml needed."""

    def __init__(self):
        super().__init__()
        self.tables, self._id, self._row, self._cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._id = dict(attrs).get("id")
            self.tables[self._id] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr":
            self.tables[self._id].append(self._row)


def read_tables(page: str) -> dict[str, pd.DataFrame]:
    parser = _Tables()
    parser.feed(page)
    return {k: pd.DataFrame(rows[1:], columns=rows[0]) for k, rows in parser.tables.items()}


def test_summary_page_tables():
    """One table per stage with the numbers of the stage tables: runs and their outcome per width, graph
    sizes and snapshots per run, Kendall τ per window with its interval; no CMD or modularity section when
    those stages are off."""
    page = report_summary.summary_html(_tables(), CONFIG, [1, 2])
    read = read_tables(page)
    assert set(read) == {"config-table", "runs-table", "graphs-table", "prediction-table", "transfer-table"}
    runs = read["runs-table"].set_index("width")
    assert runs.loc["1", "runs"] == "2" and runs.loc["1", "diverged"] == "1" and runs.loc["1", "best_run"] == "a1"
    assert runs.loc["2", "final_acc_max"] == "0.900"
    graphs = read["graphs-table"].set_index("width")
    assert graphs.loc["2", "rolled_edges"] == "400" and graphs.loc["1", "snapshots_per_run"] == "2.0"
    pred = read["prediction-table"].iloc[0]
    assert pred["Kendall τ E=1"] == "0.50 [0.25, 0.75]" and pred["Kendall τ E=2"] == "0.62 [0.25, 0.75]"
    assert read["transfer-table"].iloc[0]["Kendall τ, width 2"] == "0.50 [0.25, 0.75]"
    settings = dict(read["config-table"].values)
    assert settings["study"] == "unit" and settings["prediction windows E (epochs)"] == "1, 2"
    assert 'id="cmd"' not in page and 'id="modularity"' not in page and 'id="pruning"' not in page


def test_summary_page_has_the_pruning_check_when_it_ran():
    pruning = pd.DataFrame({"arch_label": ["vgg11bn"], "dataset": ["digits"], "comparison": ["pruned"],
                            "n_seeds": [3], "mean_diff": [-0.012], "ci_low": [-0.05], "ci_high": [0.026]})
    page = report_summary.summary_html({**_tables(), "pruning": pruning}, CONFIG, [1, 2])
    row = read_tables(page)["pruning-table"].iloc[0]
    assert row["comparison"] == "pruned" and row["mean_diff"] == "-0.012" and row["n_seeds"] == "3"
