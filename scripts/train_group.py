"""Snakemake entry point of rule `train`: trains one group of runs (see netdyn.train)."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import json

import torch

from netdyn import runlog
from netdyn.config import RunSpec, job_options
from netdyn.train import train_runs

runlog.setup(sm.log[0])
torch.set_num_threads(sm.threads)
settings = sm.params.settings  # the config's training-relevant part, recorded in each run's config.json
results = train_runs([RunSpec.from_dict(r) for r in sm.params.runs], sm.params.out_dir, device=sm.params.device,
                     data_root=settings["data"]["root"], download=settings["data"]["download"],
                     study=settings, **job_options(settings["training"]))
with open(sm.output.group, "w") as f:
    json.dump({"group": sm.params.group, "runs": results}, f, indent=1)
