"""Snakemake entry point of rule `figures`: every figure of every stage from the stages' results (each
written as PNG and PDF, see netdyn.figures), so `snakemake figures` redraws them, retraining nothing. What a
figure shows (window, feature set, example run) comes from the rule's `view`, which its caption states too."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import pandas as pd  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.figures import graphs, predict, training  # noqa: E402

runlog.setup(sm.log[0])
out, view = sm.output, sm.params.view
tables = {name: pd.read_csv(path) for name, path in sm.input.items() if path.endswith(".csv")}
runs = tables["runs"]
training.plot_learning_curves(sm.params.runs_dir, runs, out.learning_curves)
graphs.plot_signature_trajectories(tables["signatures"], runs, out.trajectories)
graphs.plot_graph_sizes(tables["sizes"], out.sizes)
predict.plot_predicted_vs_true(tables["predictions"], out.predicted_vs_true, feature_set=view["feature_set"],
                               window=view["window"])
predict.plot_metrics_vs_window(tables["metrics"], out.metrics_vs_window)
predict.plot_transfer_by_width(tables["metrics"], out.transfer, window=view["window"])
predict.plot_feature_importance(tables["importances"], out.importance, feature_set=view["feature_set"],
                                window=view["window"])

if "modularity" in tables:
    from netdyn.figures import modularity

    fraction = view["learned_fraction"]
    modularity.plot_q_by_layer(tables["modularity"], runs, out.modularity_by_layer, fraction=fraction)
    modularity.plot_q_over_epochs(tables["modularity"], runs, out.modularity_over_epochs, fraction=fraction)

if "pruning" in tables:
    from netdyn.figures.pruning import plot_pruning

    plot_pruning(tables["pruning"], tables["pruning_summary"], out.pruning)
if "cmd_epochs" in tables:
    from netdyn.figures import cmd

    cmd.plot_example(f"{sm.params.runs_dir}/{view['cmd_example']}", max(sm.params.cmd["n_modes"]),
                     out.cmd_references, out.cmd_correlation, n_samples=sm.params.cmd["n_samples"],
                     seed=sm.params.cmd["seed"])
    cmd.plot_accuracy(tables["cmd_epochs"], out.cmd_accuracy)
    cmd.plot_mode_layers(tables["cmd_mode_layers"], runs, out.cmd_mode_layers)
