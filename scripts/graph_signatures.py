"""Snakemake entry point of rule `graph_signatures` (see netdyn.graphs.extract_runs)."""
import os
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before graph_tool loads: no spinning OpenMP threads

from netdyn import runlog  # noqa: E402
from netdyn.graphs import extract_runs  # noqa: E402

runlog.setup(sm.log[0])
extract_runs(sm.params.run_dirs, max_epoch=sm.params.max_epoch, threads=sm.threads).to_csv(sm.output[0], index=False)
