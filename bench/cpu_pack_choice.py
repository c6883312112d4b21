"""Why the default study trains one run at a time on the CPU: wall time of 7 runs (one learning-rate column
of config/config.yaml) trained packed vs one after another, per architecture and width, 1 thread, digits.

    .venv/bin/python bench/cpu_pack_choice.py   # writes bench/results/cpu_pack_choice.json
"""
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from netdyn.config import expand_grid, validate_config
from netdyn.data import load_dataset
from netdyn.machine import describe
from netdyn.train import train_runs

torch.set_num_threads(1)
LOAD_START = os.getloadavg()  # the CPU is shared: other processes slow both sides down
load_dataset("digits", "data", image_size=16)
ARCHS = [{"name": "lenet"}, {"name": "alexnet"}, {"name": "vgg", "depth": 11}, {"name": "resnet", "depth": 8}]
rows = []
for arch in ARCHS:
    for width in (1, 2, 3):
        cfg = validate_config({
            "datasets": ["digits"], "architectures": [arch], "data": {"image_size": 16}, "widths": [width],
            "hyperparameters": {"learning_rate": [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]}, "seeds": [0],
            "training": {"epochs": 2, "batch_size": 128, "crop_padding": 2}})
        runs = expand_grid(cfg)
        seconds = {}
        for pack in ("never", "always"):
            out = Path(tempfile.mkdtemp())
            t = time.perf_counter()
            train_runs(runs, out, device="cpu", pack=pack)
            seconds[pack] = time.perf_counter() - t
            shutil.rmtree(out)
        rows.append({"arch": runs[0].arch_label, "width": width, "runs": len(runs), "epochs": 2,
                     "seconds_one_at_a_time": round(seconds["never"], 3), "seconds_packed": round(seconds["always"], 3),
                     "packed_over_one_at_a_time": round(seconds["always"] / seconds["never"], 3)})
        print(rows[-1], flush=True)
total = {k: round(sum(r[k] for r in rows), 2) for k in ("seconds_one_at_a_time", "seconds_packed")}
result = {"benchmark": __doc__.strip().splitlines()[0], "created": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": {
    **describe("cpu"), "threads": 1, "loadavg_start": LOAD_START, "loadavg_end": os.getloadavg()},
    "rows": rows, "total": total}
Path("bench/results/cpu_pack_choice.json").write_text(json.dumps(result, indent=1))
print("total", total)
