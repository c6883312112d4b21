"""The machine a measurement ran on, described the same way in every result file (benchmarks, evidence,
study summaries), so that numbers from two files can be told apart or matched by their machine."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (platform.processor() is empty or just 'x86_64' on Linux)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def commit() -> str | None:
    """The commit of the code that measured: git's HEAD (with "+dirty" for uncommitted changes), else
    $NETDYN_COMMIT (a copy of the tree without .git, e.g. on a lent GPU machine), else None."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    return os.environ.get("NETDYN_COMMIT") or None


def describe(device=None) -> dict:
    """Platform, CPU, Python, torch and the code's commit; with a CUDA `device` (torch.device or str) also the GPU
    and its memory."""
    import torch

    info = {"platform": platform.platform(), "os": f"{platform.system()} {platform.release()}",
            "node": platform.node(), "python": platform.python_version(), "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cuda_version": torch.version.cuda,
            "commit": commit()}
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device=str(device), device_name=torch.cuda.get_device_name(device),
                    gpu_memory_bytes=props.total_memory, multiprocessors=props.multi_processor_count,
                    cudnn=torch.backends.cudnn.version())
    elif device is not None:
        info.update(device=str(device), device_name=info["cpu_model"])
    return info


def one_line(info: dict) -> str:
    """'<CPU>, <n> cores, <OS release>' (plus the GPU when there is one) for README text."""
    line = f"{info['cpu_model']}, {info['cpu_count']} cores, {info['os']}"
    if info.get("device", "").startswith("cuda"):
        line += f", {info['device_name']}"
    return line
