"""Snakemake entry point of rule `collect_pruning`: tables/pruning.csv and tables/pruning_summary.csv (see
netdyn.modularity.pruning_stats; the figure: rule figures, netdyn.figures.pruning)."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import json  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.modularity.pruning_stats import pruning_summary, pruning_table  # noqa: E402

runlog.setup(sm.log[0])
records = []
for path in sm.input.jobs:
    with open(path) as f:
        records.append(json.load(f))
table, summary = pruning_table(records), pruning_summary(records, sm.params.confidence)
table.to_csv(sm.output.table, index=False)
summary.to_csv(sm.output.summary, index=False)
