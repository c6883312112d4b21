"""Figures of every stage, one module per stage, drawn from the stage's tables (rule `figures`), so every
figure can be rebuilt without rerunning any stage. Matplotlib with the Agg backend: jobs have no display.

Every figure is saved by :func:`save_figure`: a PNG for the report and a PDF (vector, for papers) beside it.
Text is at least 8 pt (``MIN_FONT``), readable at the figure's saved size.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FORMATS = (".png", ".pdf")  # every figure in each of these
DPI = 110  # PNG resolution
MIN_FONT = 8  # points: the smallest text in any figure (legends, tick labels)

matplotlib.rcParams.update({"font.size": 9, "legend.fontsize": MIN_FONT, "xtick.labelsize": MIN_FONT,
                            "ytick.labelsize": MIN_FONT, "axes.labelsize": 9, "axes.titlesize": 9,
                            "pdf.fonttype": 42})  # TrueType in PDFs: text stays editable and searchable


def figure_paths(out: str | Path) -> list[Path]:
    """The files a figure named `out` (any suffix, or none) is saved as: one per FORMATS."""
    out = Path(out)
    return [out.with_suffix(suffix) for suffix in FORMATS]


def save_figure(fig, out: str | Path) -> list[Path]:
    """Save `fig` as every FORMATS file of `out` and close it; returns the paths written. No creation date or
    software version goes into the files (PDF CreationDate, PNG Software), so the same figure gives the same
    bytes on every run and a regenerated, committed figure changes only when its content does."""
    paths = figure_paths(out)
    for path in paths:
        meta = {"CreationDate": None, "Producer": None} if path.suffix == ".pdf" else {"Software": None}
        fig.savefig(path, dpi=DPI, metadata=meta)
    plt.close(fig)
    return paths
