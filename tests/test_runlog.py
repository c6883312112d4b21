"""netdyn.runlog: a rule's log holds the workflow's lines, not a library's routine chatter."""

import logging
import subprocess
import sys

SCRIPT = """
import logging, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from netdyn import runlog
from netdyn.figures import save_figure

runlog.setup(sys.argv[1])
logging.getLogger("netdyn.figures").info("drawing the example")
fig, ax = plt.subplots()
ax.set_title("text, so the PDF embeds and subsets a font")
save_figure(fig, sys.argv[2])
logging.getLogger("fontTools").warning("a real font problem")
"""


def test_a_figure_rule_log_keeps_its_own_lines_and_drops_font_subsetting(tmp_path, child_env):
    """A PDF figure makes fontTools log each subsetting step at INFO (hundreds of lines a figure); the log keeps
    netdyn's INFO lines and fontTools' warnings."""
    log = tmp_path / "figures.log"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log), str(tmp_path / "fig.png")],
                          capture_output=True, text=True, timeout=120, env=child_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "fig.pdf").stat().st_size > 0
    lines = log.read_text().splitlines()
    assert any("INFO netdyn.figures: drawing the example" in line for line in lines), lines
    assert [line for line in lines if "fontTools" in line] == [next(l for l in lines if "a real font problem" in l)]


def test_a_debug_level_reaches_netdyn_but_not_font_subsetting(tmp_path):
    from netdyn import runlog

    hook, root_level = sys.excepthook, logging.getLogger().level
    try:
        runlog.setup(str(tmp_path / "x.log"), level=logging.DEBUG)
        assert logging.getLogger("netdyn").getEffectiveLevel() == logging.DEBUG
        assert logging.getLogger("fontTools.subset").getEffectiveLevel() == logging.WARNING
    finally:
        logging.getLogger("fontTools").setLevel(logging.NOTSET)
        logging.basicConfig(force=True, handlers=[logging.NullHandler()], level=root_level)
        logging.captureWarnings(False)
        sys.excepthook = hook
