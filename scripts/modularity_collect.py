"""Snakemake entry point of rule `collect_modularity`: Q table, plateau table (the figures: rule
`figures`, scripts/figures.py)."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import pandas as pd  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.modularity.stage import TABLE_COLUMNS, plateau_table  # noqa: E402

runlog.setup(sm.log[0])
table = pd.concat([pd.read_csv(f) for f in sm.input.curves], ignore_index=True)
table = table.sort_values(["run_id", "epoch", "layer_index"], kind="stable")[list(TABLE_COLUMNS)]
table.to_csv(sm.output.table, index=False)
runs = pd.read_csv(sm.input.runs)
plateau_table(table, runs, sm.params.threshold, sm.params.min_run,
              sm.params.learned_fraction).to_csv(sm.output.plateaus, index=False)
