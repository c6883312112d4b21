"""The machine a measurement ran on, described the same way in every result file (benchmarks, evidence,
study summaries), so that numbers from two files can be told apart or matched by their machine."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (platform.processor() is empty or just 'x86_64' on Linux)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def describe(device=None) -> dict:
    """Platform, CPU, Python and torch; with a CUDA `device` (torch.device or str) also the GPU and its memory."""
    import torch

    info = {"platform": platform.platform(), "os": f"{platform.system()} {platform.release()}",
            "node": platform.node(), "python": platform.python_version(), "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cuda_version": torch.version.cuda}
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
