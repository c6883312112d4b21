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
    """Rough per-member device memory of training: weights, grads and momentum (in the run's dtype; bf16 keeps
    float32 masters plus a bfloat16 copy of the weights for autocast) and three times the layer outputs of a
    minibatch (forward output, saved input, gradient), stored in bfloat16 under bf16 autocast.

    The layer outputs are counted by one forward pass of a single image in eval mode (BatchNorm in train mode
    refuses a batch of one at 1x1 spatial size, e.g. VGG-11-BN on 8-pixel images)."""
    model = init_model(spec, info).eval()
    itemsize = torch.finfo(getattr(torch, spec.dtype)).bits // 8
    act_itemsize = 2 if spec.precision == "bf16" else itemsize
    acts = 0

    def hook(_m, _i, out):
        nonlocal acts
        acts += out.numel()

    handles = [mod.register_forward_hook(hook) for mod in model.modules() if not list(mod.children())]
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        model(torch.zeros(1, info.in_channels, info.image_size, info.image_size, dtype=dtype))
    for h in handles:
        h.remove()
    params = sum(p.numel() for p in model.parameters())
    weights = itemsize * 4 * params + (2 * params if spec.precision == "bf16" else 0)
    return weights + act_itemsize * 3 * acts * spec.batch_size


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
