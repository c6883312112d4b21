# Every figure of every stage, drawn from the stages' tables only: `snakemake figures` (or deleting
# results/<study>/figures/) redraws them without rerunning training, graphs or prediction. Each figure is a
# PNG (in the report) and a PDF beside it (netdyn.figures.save_figure writes both).


FIGURE_STEMS = ["learning_curves", "graph_signature_trajectories", "graph_sizes", "predicted_vs_true",
                "metrics_vs_window", "transfer_by_width", "feature_importance"]


rule figures:
    """Learning curves, signature trajectories, graph sizes and the prediction figures, as PNG and PDF."""
    input:
        runs=f"{RESULTS}/tables/runs.csv",
        signatures=f"{RESULTS}/tables/graph_signatures.csv",
        sizes=f"{RESULTS}/tables/graph_sizes.csv",
        predictions=f"{RESULTS}/tables/predictions.csv",
        metrics=f"{RESULTS}/tables/prediction_metrics.csv",
        importances=f"{RESULTS}/tables/feature_importance.csv",
    output:
        learning_curves=report(f"{RESULTS}/figures/learning_curves.png", caption="../report/learning_curves.rst",
                               category="Training"),
        trajectories=report(f"{RESULTS}/figures/graph_signature_trajectories.png",
                            caption="../report/graph_signature_trajectories.rst", category="Graphs"),
        sizes=report(f"{RESULTS}/figures/graph_sizes.png", caption="../report/graph_sizes.rst", category="Graphs"),
        predicted_vs_true=report(f"{RESULTS}/figures/predicted_vs_true.png",
                                 caption="../report/predicted_vs_true.rst", category="Prediction"),
        metrics_vs_window=report(f"{RESULTS}/figures/metrics_vs_window.png",
                                 caption="../report/metrics_vs_window.rst", category="Prediction"),
        transfer=report(f"{RESULTS}/figures/transfer_by_width.png", caption="../report/transfer_by_width.rst",
                        category="Prediction"),
        importance=report(f"{RESULTS}/figures/feature_importance.png", caption="../report/feature_importance.rst",
                          category="Prediction"),
        pdfs=[f"{RESULTS}/figures/{stem}.pdf" for stem in FIGURE_STEMS],
    params:
        runs_dir=f"{RESULTS}/runs",  # learning curves read each run's curves.csv; no training output is an input
    log:
        f"{LOGS}/figures.log",
    conda:
        "../../envs/predict.yaml"
    script:
        "../../scripts/figures.py"
