"""Clocks, device synchronisation and error handling shared by every measurement."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
import traceback

import torch


class Stop(Exception):
    """Raised from a trainer hook to end ``PackTrainer.fit`` once a measurement is complete."""


class ResumeRefused(Exception):
    """--project-resume names a file whose measurements this projection cannot keep (the CLI exits with
    RESUME_REFUSED_EXIT, so that bench/gpu_checks.sh can measure afresh instead)."""


RESUME_REFUSED_EXIT = 3


class OverTime(Exception):
    """A measurement ran past its deadline."""


def now() -> float:
    return time.perf_counter()


def sync(device: torch.device) -> None:
    """Wait for queued device work, so that a clock read after it covers that work (cuda only)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cleanup(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def reason(why: str, err: BaseException) -> str:
    """A skip reason; the traceback goes to stderr (the GPU log), since a one-shot device run must go on."""
    traceback.print_exception(err, file=sys.stderr)
    return f"{why}: {type(err).__name__}: {err}"[:400]


def loadavg() -> list[float] | None:
    """1/5/15-minute load averages: other processes on the machine slow the CPU numbers down."""
    with contextlib.suppress(OSError, AttributeError):
        return list(os.getloadavg())
    return None
