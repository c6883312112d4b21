"""Training time of the evidence study (config/evidence.yaml) on a GPU: issue 14 asks for it "in minutes on one
GPU". Trains every run of the study the way its training jobs do (netdyn.train.train_runs, packs on cuda) into a
scratch directory and writes the wall time; the later stages (graphs, CMD, modularity, prediction) run on the
CPU and their times are in evidence/digits_evidence/provenance.json.

    python bench/evidence_gpu.py --device cuda --out bench/results/evidence_gpu_cuda_h200.json
    python bench/evidence_gpu.py --device cpu --runs 4 --out /tmp/e.json      # the dry run: four runs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from throughput.project import load_study  # noqa: E402
from throughput.report import write_json  # noqa: E402

from netdyn.config import expand_grid, job_options  # noqa: E402
from netdyn.machine import describe  # noqa: E402
from netdyn.train import train_runs  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--config", default=str(ROOT / "config" / "evidence.yaml"))
    ap.add_argument("--runs", type=int, default=None, help="only the first N runs of the grid (the dry run)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    cfg, how = load_study(a.config)
    specs = expand_grid(cfg)[:a.runs]
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        records = train_runs(specs, out, device=a.device, data_root=cfg["data"]["root"],
                             **job_options(cfg["training"]))
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        wall = time.perf_counter() - t
    result = {"benchmark": "evidence_gpu", "created": time.strftime("%Y-%m-%d %H:%M:%S %z"), "config": a.config,
              "validated_by": how, "runs": len(specs), "runs_complete": sum(r.get("status") == "complete" for r in records),
              "training_wall_s": round(wall, 1), "machine": describe(a.device)}
    write_json(result, a.out)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
