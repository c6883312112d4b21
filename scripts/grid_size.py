"""Print the runs, training jobs and on-disk trajectory size a config asks for, before training it.

    .venv/bin/python scripts/grid_size.py config/paper.yaml
"""
import sys

from netdyn.config import expand_grid, job_groups, load_config, resolve_device
from netdyn.train import storage_estimate

config = load_config(sys.argv[1] if len(sys.argv) > 1 else "config/config.yaml")
runs = expand_grid(config)
device = resolve_device(config)
est = storage_estimate(runs)
table = est.groupby(["arch", "dataset", "width"]).agg(runs=("bytes", "size"), mb_per_run=("bytes", "first"),
                                                      total_gb=("bytes", "sum"))
table["mb_per_run"] /= 1e6
table["total_gb"] /= 1e9
print(table.round(2).to_string())
groups = job_groups(config, runs, device)
print(f"\n{len(runs)} runs in {len(groups)} training jobs "
      f"(planned for {device}); trajectories {est['bytes'].sum() / 1e9:.2f} GB "
      f"({est['bytes'].mean() / 1e6:.2f} MB per run on average)")
