"""Snakemake entry point of rule `collect_cmd`: grid-wide CMD tables (netdyn.cmd.table); the CMD figures are
drawn by rule `figures` (scripts/figures.py)."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import pandas as pd  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.cmd.evaluate import EMBEDDED_COLUMNS, EPOCH_COLUMNS, MODE_LAYER_COLUMNS  # noqa: E402
from netdyn.cmd.stage import SNAPSHOT_COLUMNS  # noqa: E402
from netdyn.cmd.table import cmd_table, read_all  # noqa: E402

runlog.setup(sm.log[0])
runs = pd.read_csv(sm.input.runs)
snapshots = read_all(sm.input.snapshots, SNAPSHOT_COLUMNS)
layers = read_all(sm.input.mode_layers, MODE_LAYER_COLUMNS)
epochs = read_all(sm.input.deep, EPOCH_COLUMNS + EMBEDDED_COLUMNS[1:])  # cmd_deep joins the twin's columns
cmd_table(runs, snapshots, epochs).to_csv(sm.output.table, index=False)
snapshots.to_csv(sm.output.snapshots, index=False)
epochs.to_csv(sm.output.epochs, index=False)
layers.to_csv(sm.output.mode_layers, index=False)
