"""Snakemake entry point of rule `figures`: every figure of every stage, from the stages' tables only (each
written as PNG and PDF, see netdyn.figures), so deleting results/<study>/figures/ redraws them, retraining
nothing."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import pandas as pd  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.figures import graphs, predict, training  # noqa: E402

runlog.setup(sm.log[0])
tables = {name: pd.read_csv(path) for name, path in sm.input.items()}
training.plot_learning_curves(sm.params.runs_dir, tables["runs"], sm.output.learning_curves)
graphs.plot_signature_trajectories(tables["signatures"], tables["runs"], sm.output.trajectories)
graphs.plot_graph_sizes(tables["sizes"], sm.output.sizes)
predict.plot_predicted_vs_true(tables["predictions"], sm.output.predicted_vs_true)
predict.plot_metrics_vs_window(tables["metrics"], sm.output.metrics_vs_window)
predict.plot_transfer_by_width(tables["metrics"], sm.output.transfer)
predict.plot_feature_importance(tables["importances"], sm.output.importance)
