"""Snakemake entry point of rule `modularity` (see netdyn.modularity.stage.group_table)."""
import os
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before graph_tool loads: no spinning OpenMP threads

import torch  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.modularity.group import group_table  # noqa: E402

runlog.setup(sm.log[0])
torch.set_num_threads(sm.threads)
table = group_table(sm.params.runs, max_epoch=sm.params.max_epoch, data_root=sm.params.data_root,
                    device=sm.params.device, **sm.params.settings)
table.to_csv(sm.output[0], index=False)
