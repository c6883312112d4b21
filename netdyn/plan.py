"""Planning a training job: which of its runs train together (packs), and what they need in device
memory and on disk, known before anything is trained."""

from __future__ import annotations

import pandas as pd
import torch

from .config import RunSpec, packs_runs
from .data import DatasetInfo
from .member import init_model, model_kwargs
from .models import build_model
from .rundir import snapshots_per_run


def member_memory_bytes(spec: RunSpec, info: DatasetInfo) -> int:
    """Rough per-member device memory of training: weights, grads, momentum and saved activations."""
    model = init_model(spec, info)
    itemsize = torch.finfo(getattr(torch, spec.dtype)).bits // 8
    acts = 0

    def hook(_m, _i, out):
        nonlocal acts
        acts += out.numel()

    handles = [mod.register_forward_hook(hook) for mod in model.modules() if not list(mod.children())]
    with torch.no_grad():
        model(torch.zeros(1, info.in_channels, info.image_size, info.image_size, dtype=model.classifier[-1].weight.dtype))
    for h in handles:
        h.remove()
    params = sum(p.numel() for p in model.parameters())
    return itemsize * (4 * params + 3 * acts * spec.batch_size)


def pack_plan(specs: list[RunSpec], info: DatasetInfo, device: torch.device, pack: str,
              resume_epochs: dict[str, int]) -> list[list[RunSpec]]:
    """Split a job's runs into packs: where config.packs_runs says so, runs that share a pack key and resume
    epoch are packed, on a GPU as many as fit in about half the free memory; otherwise every run trains alone."""
    by_key: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        by_key.setdefault((s.pack_key, resume_epochs.get(s.run_id, 0)), []).append(s)
    use_pack = packs_runs(pack, device.type)
    packs = []
    for group in by_key.values():
        if not use_pack:
            packs += [[s] for s in group]
            continue
        cap = len(group)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            cap = max(1, int(0.5 * free // member_memory_bytes(group[0], info)))
        packs += [group[i:i + cap] for i in range(0, len(group), cap)]
    return packs


def storage_estimate(specs: list[RunSpec]) -> pd.DataFrame:
    """On-disk trajectory bytes per run and per (architecture, data set, width), without training."""
    from .data import dataset_info

    rows, sizes = [], {}
    for s in specs:
        key = (s.arch_label, s.dataset, s.width)
        if key not in sizes:
            info = dataset_info(s.dataset, s.image_size)
            sizes[key] = sum(t.numel() for t in build_model(**model_kwargs(s, info)).state_dict().values())
        itemsize = 8 if s.dtype == "float64" else 4
        rows.append({"arch": s.arch_label, "dataset": s.dataset, "width": s.width, "values_per_snapshot": sizes[key],
                     "snapshots": snapshots_per_run(s), "bytes": sizes[key] * itemsize * snapshots_per_run(s)})
    return pd.DataFrame(rows)
