# Every figure of every stage, drawn from the stages' results only: `snakemake figures` redraws all of them
# (training, graphs, prediction, and the CMD, modularity and pruning figures when those stages are on) without
# rerunning training, graphs, prediction, CMD or modularity. Each figure is a PNG (in the report) and a PDF
# beside it (netdyn.figures.save_figure writes both). What each figure shows (study, windows, feature sets,
# the example run) is fixed here from the config and passed both to the script and, through `params`, to the
# figure's caption (workflow/report/*.rst), so caption and figure cannot disagree.

FIGURES = f"{RESULTS}/figures"
FEATURE_SETS = list(config["predict"]["feature_sets"])
FIGURE_VIEW = {
    # predicted-vs-true and feature importance: graph+curve (else the last feature set) at the largest window
    "feature_set": "graph+curve" if "graph+curve" in FEATURE_SETS else FEATURE_SETS[-1],
    "window": max(WINDOWS),
    "windows": WINDOWS,
    "feature_sets": FEATURE_SETS,
    "n_runs": len(RUNS),
    "architectures": list(dict.fromkeys(r.arch_label for r in RUNS)),
}
# the figures of each stage: output name -> (path, caption, report category)
FIGURE_OUTPUTS = {
    "learning_curves": (f"{FIGURES}/learning_curves.png", "learning_curves.rst", "Training"),
    "trajectories": (f"{FIGURES}/graph_signature_trajectories.png", "graph_signature_trajectories.rst", "Graphs"),
    "sizes": (f"{FIGURES}/graph_sizes.png", "graph_sizes.rst", "Graphs"),
    "predicted_vs_true": (f"{FIGURES}/predicted_vs_true.png", "predicted_vs_true.rst", "Prediction"),
    "metrics_vs_window": (f"{FIGURES}/metrics_vs_window.png", "metrics_vs_window.rst", "Prediction"),
    "transfer": (f"{FIGURES}/transfer_by_width.png", "transfer_by_width.rst", "Prediction"),
    "importance": (f"{FIGURES}/feature_importance.png", "feature_importance.rst", "Prediction"),
}
FIGURE_INPUTS = {
    "runs": f"{RESULTS}/tables/runs.csv",
    "signatures": f"{RESULTS}/tables/graph_signatures.csv",
    "sizes": f"{RESULTS}/tables/graph_sizes.csv",
    "predictions": f"{RESULTS}/tables/predictions.csv",
    "metrics": f"{RESULTS}/tables/prediction_metrics.csv",
    "importances": f"{RESULTS}/tables/feature_importance.csv",
}
if config["modularity"]["enabled"]:
    FIGURE_INPUTS["modularity"] = f"{RESULTS}/tables/modularity.csv"
    # the runs the modularity figures average: those plateau detection reads (tables/modularity_plateaus.csv)
    FIGURE_VIEW["learned_fraction"] = config["modularity"]["learned_fraction"]
    FIGURE_OUTPUTS.update({
        "modularity_by_layer": (f"{RESULTS}/modularity/figures/modularity_by_layer.png", "modularity_by_layer.rst",
                                "Modularity"),
        "modularity_over_epochs": (f"{RESULTS}/modularity/figures/modularity_over_epochs.png",
                                   "modularity_over_epochs.rst", "Modularity"),
    })
if PRUNING_ON:
    FIGURE_INPUTS.update({"pruning": f"{RESULTS}/tables/pruning.csv",
                          "pruning_summary": f"{RESULTS}/tables/pruning_summary.csv"})
    FIGURE_OUTPUTS["pruning"] = (f"{RESULTS}/pruning/figures/pruning.png", "pruning.rst", "Modularity")
if config["cmd"]["enabled"]:
    # the mode-reference and |ρ| figures refit one run's trajectory (read only): the first run cmd.deep names,
    # else the first run of the grid
    FIGURE_VIEW["cmd_example"] = CMD_DEEP[0] if CMD_DEEP else RUNS[0].run_id
    FIGURE_INPUTS.update({
        "cmd_epochs": f"{RESULTS}/tables/cmd_epochs.csv",
        "cmd_mode_layers": f"{RESULTS}/tables/cmd_mode_layers.csv",
        "cmd_example_result": run_file(FIGURE_VIEW["cmd_example"], RUN_RESULT),
        "cmd_example_manifest": run_file(FIGURE_VIEW["cmd_example"], RUN_MANIFEST),
    })
    FIGURE_OUTPUTS.update({
        name: (f"{RESULTS}/cmd/figures/{name}.png", f"{name}.rst", "CMD")
        for name in ("cmd_references", "cmd_correlation", "cmd_accuracy", "cmd_mode_layers")
    })


rule figures:
    """Every figure of every stage from its tables (and, for the CMD example, one run's trajectory), as PNG
    and PDF."""
    input:
        **FIGURE_INPUTS,
    output:
        **{name: report(path, caption=f"../report/{caption}", category=category)
           for name, (path, caption, category) in FIGURE_OUTPUTS.items()},
        pdfs=[path.removesuffix(".png") + ".pdf" for path, _, _ in FIGURE_OUTPUTS.values()],
    params:
        runs_dir=f"{RESULTS}/runs",  # learning curves read each run's curves.csv; no training output is an input
        view=FIGURE_VIEW,
        cmd={k: config["cmd"][k] for k in ("n_modes", "n_samples", "seed")} if config["cmd"]["enabled"] else {},
    log:
        f"{LOGS}/figures.log",
    conda:
        "../../envs/predict.yaml"  # pandas, matplotlib; the CMD example fit needs numpy and scipy only
    script:
        "../../scripts/figures.py"
