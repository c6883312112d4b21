# The report's summary page: the headline table of every stage (config, training runs, graph stage,
# prediction metrics, CMD, modularity plateaus, pruning check) as one HTML page, the "Summary" category of
# `snakemake --report report.html`. Drawn from the stages' tables only, like the figures.

SUMMARY_INPUTS = {
    "runs": f"{RESULTS}/tables/runs.csv",
    "signatures": f"{RESULTS}/tables/graph_signatures.csv",
    "sizes": f"{RESULTS}/tables/graph_sizes.csv",
    "metrics": f"{RESULTS}/tables/prediction_metrics.csv",
    **({"cmd": f"{RESULTS}/tables/cmd.csv"} if config["cmd"]["enabled"] else {}),
    **({"modularity": f"{RESULTS}/tables/modularity.csv", "plateaus": f"{RESULTS}/tables/modularity_plateaus.csv"}
       if config["modularity"]["enabled"] else {}),
    **({"pruning": f"{RESULTS}/tables/pruning_summary.csv"} if PRUNING_ON else {}),  # PRUNING_ON: pruning.smk
}


rule report_summary:
    """One HTML page with every stage's headline table, for the report."""
    input:
        **SUMMARY_INPUTS,
    output:
        report(f"{RESULTS}/report/summary.html", caption="../report/summary.rst", category="Summary"),
    params:
        windows=WINDOWS,
    log:
        f"{LOGS}/report_summary.log",
    conda:
        "../../envs/predict.yaml"  # pandas only
    script:
        "../../scripts/report_summary.py"
