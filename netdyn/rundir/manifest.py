"""Checks of a trajectory manifest (see :mod:`netdyn.trajectory`) before any row is read: every tensor's
name, shape, dtype and offset against the network ``build_model(**manifest["arch"])`` builds, and the
snapshot table's indices. Errors name the run, the file and the tensor."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

ROW_DTYPES = ("float32", "float64")


class TrajectoryError(ValueError):
    """A trajectory that is missing, truncated or does not match what the caller expects."""


def tensor_architecture(arch: dict) -> dict:
    """The build_model kwargs that shape the module tree's tensors (dropout shapes none)."""
    return {k: v for k, v in arch.items() if k != "dropout"}


@lru_cache(maxsize=64)
def _architecture_tensors(arch_json: str) -> tuple[tuple[str, tuple[int, ...], torch.dtype], ...]:
    from ..models import build_model

    with torch.device("meta"):  # shapes only: nothing allocated or initialised
        model = build_model(**json.loads(arch_json))
    return tuple((k, tuple(v.shape), v.dtype) for k, v in model.state_dict().items())


def check_manifest(manifest: dict, run: str, mpath: Path, dpath: Path) -> tuple[np.dtype, int, int]:
    """Check a manifest against its architecture and data file; returns (row dtype, values per row, rows)."""
    def fail(what: str):
        raise TrajectoryError(f"run {run}: {what}")

    try:
        dtype = np.dtype(manifest["dtype"])
        tensors, snapshots, arch = manifest["tensors"], manifest["snapshots"], manifest["arch"]
        for t in tensors:
            t["name"], t["shape"], t["dtype"], t["offset"], t["numel"]  # noqa: B018 (all present?)
        for s in snapshots:
            s["index"], s["epoch"]  # noqa: B018
    except (KeyError, TypeError) as e:
        fail(f"manifest {mpath} is corrupt (missing or malformed {e})")
    if dtype.name not in ROW_DTYPES:
        fail(f"manifest {mpath} gives row dtype {dtype.name}, not one of {ROW_DTYPES}")
    try:
        expected = _architecture_tensors(json.dumps(tensor_architecture(arch), sort_keys=True))
    except (TypeError, ValueError) as e:
        fail(f"manifest {mpath} describes an architecture that cannot be built ({arch}: {e})")
    names = [t["name"] for t in tensors]
    if names != [e[0] for e in expected]:
        missing = [e[0] for e in expected if e[0] not in names][:3]
        extra = [n for n in names if n not in {e[0] for e in expected}][:3]
        fail(f"trajectory {dpath} does not belong to the architecture its manifest {mpath} records "
             f"(missing {missing}, unexpected {extra}, or another order)")
    offset = 0
    for t, (name, shape, model_dtype) in zip(tensors, expected):
        where = f"tensor {name!r} of {mpath}"
        if tuple(t["shape"]) != shape:
            fail(f"trajectory {dpath} does not belong to the architecture of {mpath}: {where} has shape "
                 f"{t['shape']}, the architecture {list(shape)}")
        if t["numel"] != math.prod(shape):
            fail(f"{where} has numel {t['numel']} for shape {list(shape)}")
        if t["offset"] != offset:
            fail(f"{where} has offset {t['offset']}, but the tensors before it end at {offset} (offsets "
                 f"count values of a row); {dpath} cannot be sliced by this manifest")
        stored = getattr(torch, str(t["dtype"]), None)
        ok = isinstance(stored, torch.dtype) and (
            (stored.is_floating_point and model_dtype.is_floating_point
             and torch.finfo(stored).bits <= 8 * dtype.itemsize) or stored == model_dtype)
        if not ok:
            fail(f"{where} has dtype {t['dtype']!r}; the architecture's is {str(model_dtype)[6:]} and rows "
                 f"are {dtype.name}")
        offset += t["numel"]
    if [s["index"] for s in snapshots] != list(range(len(snapshots))):
        fail(f"manifest {mpath}: the snapshot table is not indexed 0..{len(snapshots) - 1}")
    return dtype, offset, len(snapshots)
