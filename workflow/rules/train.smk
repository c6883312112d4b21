rule train:
    """Train one group of runs (same architecture, data set and width); resumes killed runs."""
    output:
        f"{RESULTS}/train/{{group}}.json",
    params:
        runs=group_runs,
        out_dir=f"{RESULTS}/runs",
        device=DEVICE,
        study=study_config(),
    log:
        "logs/train/{group}.log",
    threads: config["training"]["threads"]
    resources:
        gpu=1 if DEVICE == "cuda" else 0,
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/train_group.py"


rule collect_runs:
    """One table of every run's outcome, and a figure of the learning curves."""
    input:
        expand(f"{RESULTS}/train/{{group}}.json", group=GROUPS),
    output:
        table=report(f"{RESULTS}/tables/runs.csv", caption="../report/runs.rst", category="Training"),
        figure=report(f"{RESULTS}/figures/learning_curves.png", caption="../report/learning_curves.rst",
                      category="Training"),
    params:
        runs_dir=f"{RESULTS}/runs",
        run_ids=[r.run_id for r in RUNS],
    log:
        "logs/collect_runs.log",
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/collect_runs.py"
