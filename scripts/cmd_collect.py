"""Snakemake entry point of rule `collect_cmd`: grid-wide CMD tables (netdyn.cmd.table) and figures
(netdyn.figures.cmd)."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import pandas as pd  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.cmd.table import cmd_table, example_fit, read_all  # noqa: E402
from netdyn.figures import cmd as figures  # noqa: E402

runlog.setup(sm.log[0])
runs = pd.read_csv(sm.input.runs)
snapshots, layers = read_all(sm.input.snapshots), read_all(sm.input.mode_layers)
epochs, deep_layers = read_all(sm.input.deep), read_all(sm.input.deep_layers)
cmd_table(runs, snapshots, epochs).to_csv(sm.output.table, index=False)
snapshots.to_csv(sm.output.snapshots, index=False)
epochs.to_csv(sm.output.epochs, index=False)
layers.to_csv(sm.output.mode_layers, index=False)

example = sm.params.example or runs["run_id"].iloc[0]
cfg = sm.params.cmd
fit = example_fit(f"{sm.params.runs_dir}/{example}", max(cfg["n_modes"]), n_samples=cfg["n_samples"], seed=cfg["seed"])
figures.plot_references(fit.result, fit.epochs, sm.output.references)
figures.plot_correlation(fit.corr, fit.order, fit.result.sample_labels, sm.output.correlation,
                         title=f"{example}: |ρ| of {len(fit.order)} sampled trajectories")
figures.plot_accuracy(epochs, sm.output.accuracy)
figures.plot_mode_layers(layers, runs, sm.output.layers_figure)
