"""Logging for rule scripts: every line, timestamped, to the rule's `log:` file (stderr without one)."""

from __future__ import annotations

import logging


def setup(log_path: str | None = None, level: int = logging.INFO) -> None:
    handler = logging.FileHandler(log_path, mode="w") if log_path else logging.StreamHandler()
    logging.basicConfig(level=level, handlers=[handler], force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.captureWarnings(True)
