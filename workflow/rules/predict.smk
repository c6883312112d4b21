rule predict:
    """Final test accuracy from the early windows: feature sets, XGBoost within-width CV and width transfer,
    bootstrap metrics, feature importance (their figures: rule figures)."""
    input:
        runs=f"{RESULTS}/tables/runs.csv",
        signatures=f"{RESULTS}/tables/graph_signatures.csv",
        **({"modularity": f"{RESULTS}/tables/modularity.csv"} if config["modularity"]["enabled"] else {}),
        **({"cmd": expand(f"{RESULTS}/cmd/groups/{{group}}.features.csv", group=GROUPS)} if config["cmd"]["enabled"] else {}),
    output:
        predictions=f"{RESULTS}/tables/predictions.csv",
        metrics=report(f"{RESULTS}/tables/prediction_metrics.csv", caption="../report/prediction_metrics.rst",
                       category="Prediction"),
        importances=f"{RESULTS}/tables/feature_importance.csv",
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
