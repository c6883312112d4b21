"""Logging for rule scripts: every line, timestamped, to the rule's `log:` file (stderr without one)."""

from __future__ import annotations

import logging
import sys

# libraries that log routine steps at INFO: the PDF backend's font subsetting (hundreds of lines per figure)
QUIET = ("fontTools",)


def setup(log_path: str | None = None, level: int = logging.INFO) -> None:
    handler = logging.FileHandler(log_path, mode="w") if log_path else logging.StreamHandler()
    logging.basicConfig(level=level, handlers=[handler], force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.captureWarnings(True)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))

    def log_uncaught(exc_type, exc, tb):
        logging.getLogger("netdyn").critical("stopped by an error", exc_info=(exc_type, exc, tb))
        sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = log_uncaught
