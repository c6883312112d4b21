"""Reading a model's tensors by name, from a live model or straight from a trajectory row, as float64:
the rolled and unrolled graphs compute their edge weights from these."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..trajectory import Trajectory, row_tensor
from .steps import Layer

Getter = Callable[[str], np.ndarray]


def state_getter(state: dict[str, torch.Tensor]) -> Getter:
    return lambda name: state[name].detach().cpu().numpy().astype(np.float64)


def flat_getter(traj: Trajectory, row: np.ndarray) -> Getter:
    entries = {t["name"]: t for t in traj.tensors}

    def get(name: str) -> np.ndarray:
        return np.asarray(row_tensor(row, entries[name]), dtype=np.float64)
    return get


def bn_gain(get: Getter, step: Layer) -> np.ndarray | float:
    """Per-channel |γ / sqrt(running_var + eps)| of the BN folded into a conv or linear; 1 without one."""
    if step.bn is None:
        return 1.0
    return np.abs(get(f"{step.bn}.weight")) / np.sqrt(get(f"{step.bn}.running_var") + step.bn_eps)
