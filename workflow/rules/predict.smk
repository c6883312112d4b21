rule predict:
    """Final test accuracy from the early windows: feature sets, XGBoost within-width CV and width transfer,
    bootstrap metrics, feature importance, figures."""
    input:
        runs=f"{RESULTS}/tables/runs.csv",
        signatures=f"{RESULTS}/tables/graph_signatures.csv",
        **({"cmd": expand(f"{RESULTS}/cmd/groups/{{group}}.features.csv", group=GROUPS)} if config["cmd"]["enabled"] else {}),
    output:
        predictions=f"{RESULTS}/tables/predictions.csv",
        metrics=report(f"{RESULTS}/tables/prediction_metrics.csv", caption="../report/prediction_metrics.rst",
                       category="Prediction"),
        importances=f"{RESULTS}/tables/feature_importance.csv",
        predicted_vs_true=report(f"{RESULTS}/figures/predicted_vs_true.png",
                                 caption="../report/predicted_vs_true.rst", category="Prediction"),
        metrics_vs_window=report(f"{RESULTS}/figures/metrics_vs_window.png",
                                 caption="../report/metrics_vs_window.rst", category="Prediction"),
        transfer=report(f"{RESULTS}/figures/transfer_by_width.png", caption="../report/transfer_by_width.rst",
                        category="Prediction"),
        importance_figure=report(f"{RESULTS}/figures/feature_importance.png",
                                 caption="../report/feature_importance.rst", category="Prediction"),
    params:
        runs_dir=f"{RESULTS}/runs",
        predict={**config["predict"], "windows": WINDOWS},
    log:
        f"{LOGS}/predict.log",
    threads: 2
    conda:
        "../../envs/predict.yaml"
    script:
        "../../scripts/predict.py"
