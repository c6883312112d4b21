"""Snakemake entry point of rule `pruning`: one architecture x data set's original, pruned and control runs
(see netdyn.modularity.pruning)."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import json  # noqa: E402

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.config import RunSpec, job_options  # noqa: E402
from netdyn.modularity.pruning import pruning_plan, run_pruning  # noqa: E402

runlog.setup(sm.log[0])
torch.set_num_threads(sm.threads)
settings = sm.params.settings  # the config's training-relevant part, recorded in each run's config.json
plan = pruning_plan([RunSpec.from_dict(r) for r in sm.params.grid], pd.read_csv(sm.input.runs),
                    pd.read_csv(sm.input.plateaus, keep_default_na=False), arch_label=sm.wildcards.arch,
                    dataset=sm.wildcards.dataset, seeds=sm.params.seeds, control_seed=sm.params.control_seed)
record = run_pruning(plan, sm.params.out_dir, device=sm.params.device, data_root=settings["data"]["root"],
                     download=settings["data"]["download"], study=settings, **job_options(settings["training"]))
with open(sm.output[0], "w") as f:
    json.dump(record, f, indent=1)
