"""Pack sizes of the paper grid from estimated against measured memory (issue 13), on a GPU.

    python bench/pack_memory.py --device cuda --out bench/results/pack_memory_cuda_h200.json

For every pack key of config/paper.yaml (architecture x data set x width): the per-member estimate
(netdyn.plan.member_memory_bytes) and the pack size it gives; the line fixed + per_member * K through the
measured peaks of one probe step at K = 1 and 2 (netdyn.plan.measured_pack_line) and the pack size it
gives; then the check: one probe step at the pack size a job would use (the measured size, at most the
config's members per job), its measured peak against the line's prediction and against the budget (half
the free memory). Written after every block, so that a timeout keeps what was measured. On the CPU
(``--device cpu``, the dry run of bench/gpu_checks.sh) only the probe steps run: the CPU has no peak counters.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from throughput.project import load_study  # noqa: E402
from throughput.report import write_json  # noqa: E402

from netdyn.config import expand_grid, group_size  # noqa: E402
from netdyn.data import dataset_info  # noqa: E402
from netdyn.machine import describe  # noqa: E402
from netdyn.plan import (MEMORY_SHARE, PROBE_PACKS, capacity, measured_pack_line, member_memory_bytes,  # noqa: E402
                         pack_step, pack_step_peak_bytes)


def block(spec, device: torch.device, job_members: int) -> dict:
    info = dataset_info(spec.dataset, spec.image_size)
    est = member_memory_bytes(spec, info)
    row = {"arch": spec.arch_label, "dataset": spec.dataset, "width": spec.width, "precision": spec.precision,
           "batch_size": spec.batch_size, "est_member_bytes": est}
    if device.type != "cuda":
        for k in PROBE_PACKS:
            pack_step(spec, info, device, k)
        return {**row, "probe_steps_ran": list(PROBE_PACKS)}
    free, _ = torch.cuda.mem_get_info(device)
    budget = MEMORY_SHARE * free
    fixed, per_member = measured_pack_line(spec, info, device)
    k_est, k_meas = capacity(0, est, budget), capacity(fixed, per_member, budget)
    k = min(k_meas, job_members)
    peak = pack_step_peak_bytes(spec, info, device, k)
    predicted = fixed + per_member * k
    return {**row, "free_bytes": free, "budget_bytes": budget, "k_from_estimate": k_est,
            "measured_fixed_bytes": fixed, "measured_per_member_bytes": per_member, "k_from_measured": k_meas,
            "est_over_measured_per_member": est / per_member, "checked_k": k, "checked_peak_bytes": peak,
            "checked_peak_over_line": peak / predicted, "checked_peak_within_budget": peak <= budget}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--config", default=str(ROOT / "config" / "paper.yaml"))
    ap.add_argument("--blocks", type=int, default=None, help="only the first N pack keys (the dry run)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    cfg, how = load_study(a.config)
    firsts = {}
    for s in expand_grid(cfg):
        firsts.setdefault(s.pack_key, s)
    specs = sorted(firsts.values(), key=lambda s: (s.dataset, s.arch_label, s.width))[:a.blocks]
    job_members = group_size(cfg, device.type)
    result = {"benchmark": "pack_memory", "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              "config": a.config, "validated_by": how, "memory_share": MEMORY_SHARE, "probe_packs": list(PROBE_PACKS),
              "members_per_job": job_members, "machine": describe(device), "blocks": []}
    for spec in specs:
        t = time.perf_counter()
        try:
            row = block(spec, device, job_members)
        except torch.cuda.OutOfMemoryError as err:
            row = {"arch": spec.arch_label, "dataset": spec.dataset, "width": spec.width, "error": f"OOM: {err}"[:300]}
            torch.cuda.empty_cache()
        row["seconds"] = round(time.perf_counter() - t, 2)
        result["blocks"].append(row)
        print(json.dumps(row), flush=True)
        write_json(result, a.out)
    return result


if __name__ == "__main__":
    main()
