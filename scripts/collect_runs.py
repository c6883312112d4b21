"""Snakemake entry point of rule `collect_runs`: the grid-wide run table."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

from netdyn import runlog
from netdyn.results import runs_table

runlog.setup(sm.log[0])
table = runs_table(sm.params.runs_dir, sm.params.run_ids)
table.to_csv(sm.output.table, index=False)
