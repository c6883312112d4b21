# The pruning check (netdyn.modularity.pruning; `modularity.pruning` in the config): the layers to remove are
# known only once the modularity stage has written its plateau table, so they cannot be training rules of
# their own. One job per configured architecture x data set reads the plateau candidates and the run table,
# derives the original, pruned and control runs of every pruning seed and trains them with
# netdyn.train.train_runs into results/<study>/runs/ (finished runs kept, unfinished resumed; a grid run that
# is an original is already finished). Its record (JSON) lists the runs; collect_pruning tabulates them.
# On only while both `modularity.enabled` and `modularity.pruning.enabled` are true.
PRUNING = config["modularity"]["pruning"]
PRUNING_ON = config["modularity"]["enabled"] and PRUNING["enabled"]
PRUNING_WIDTH = PRUNING["width"] if PRUNING["width"] is not None else min(config["widths"])
PRUNING_JOBS = [f"{label}-{dataset}" for label in PRUNING["architectures"] for dataset in config["datasets"]]


rule pruning:
    """Original, pruned and control runs of one architecture x data set, one per pruning seed."""
    input:
        plateaus=f"{RESULTS}/tables/modularity_plateaus.csv",
        runs=f"{RESULTS}/tables/runs.csv",
    output:
        f"{RESULTS}/pruning/{{arch}}-{{dataset}}.json",
    wildcard_constraints:
        arch=r"[A-Za-z0-9]+",
        dataset=r"[A-Za-z0-9]+",
    params:
        # the grid's runs of this architecture x data set at the pruning width: the settings to choose from
        grid=lambda wc: [r.to_dict() for r in RUNS
                         if r.arch_label == wc.arch and r.dataset == wc.dataset and r.width == PRUNING_WIDTH],
        seeds=PRUNING["seeds"],
        control_seed=PRUNING["control_seed"],
        out_dir=f"{RESULTS}/runs",
        device=DEVICE,
        settings=TRAINING_SETTINGS,
    log:
        f"{LOGS}/pruning/{{arch}}-{{dataset}}.log",
    threads: config["training"]["threads"]
    resources:
        gpu=1 if DEVICE == "cuda" else 0,
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/pruning_job.py"


rule collect_pruning:
    """tables/pruning.csv (one row per run) and tables/pruning_summary.csv (mean difference to the original with
    a t interval over seeds); their figure: rule figures."""
    input:
        jobs=expand(f"{RESULTS}/pruning/{{job}}.json", job=PRUNING_JOBS),
    output:
        table=report(f"{RESULTS}/tables/pruning.csv", caption="../report/pruning_table.rst", category="Modularity"),
        summary=report(f"{RESULTS}/tables/pruning_summary.csv", caption="../report/pruning_summary.rst",
                       category="Modularity"),
    params:
        confidence=PRUNING["confidence"],
    log:
        f"{LOGS}/collect_pruning.log",
    conda:
        "../../envs/predict.yaml"  # pandas and SciPy (the interval)
    script:
        "../../scripts/pruning_collect.py"
