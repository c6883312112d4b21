# Layer-wise kNN-graph modularity (netdyn.modularity; `modularity` in the config). One job per training group
# whose inputs are that group's runs' result.json and trajectory manifests: a retrained run changes its own
# files only, so only its group's modularity job reruns. Each job computes Q per layer for the final
# snapshot of every run, every snapshot up to the largest prediction window (the `modularity` feature set)
# and every snapshot of the runs named in `modularity.epochs_for`.
from netdyn.modularity.stage import wants_every_epoch  # noqa: E402  (no torch: fnmatch only)

MODULARITY = config["modularity"]
MODULARITY_SETTINGS = {k: MODULARITY[k] for k in ("k", "n_per_batch", "n_batches")}


rule modularity:
    """Q per layer (mean, std over batches) at the chosen snapshots of one training group's runs."""
    input:
        results=lambda wc: [run_file(r.run_id, RUN_RESULT) for r in GROUPS[wc.group]],
        manifests=lambda wc: [run_file(r.run_id, RUN_MANIFEST) for r in GROUPS[wc.group]],
    output:
        f"{RESULTS}/modularity/{{group}}.csv",
    params:
        runs=lambda wc: [{"run_dir": f"{RESULTS}/runs/{r.run_id}",
                          "every": wants_every_epoch(r.run_id, r.arch_label, MODULARITY["epochs_for"])}
                         for r in GROUPS[wc.group]],
        max_epoch=max(WINDOWS),
        settings=MODULARITY_SETTINGS,
        data_root=config["data"]["root"],
        device=DEVICE,
    log:
        f"{LOGS}/modularity/{{group}}.log",
    threads: 1
    resources:
        gpu=1 if DEVICE == "cuda" else 0,
    conda:
        "../../envs/modularity.yaml"
    script:
        "../../scripts/modularity_group.py"


rule collect_modularity:
    """Grid-wide Q table, plateau candidates per architecture x data set (the figures: rule figures)."""
    input:
        curves=expand(f"{RESULTS}/modularity/{{group}}.csv", group=GROUPS),
        runs=f"{RESULTS}/tables/runs.csv",
    output:
        table=report(f"{RESULTS}/tables/modularity.csv", caption="../report/modularity_table.rst",
                     category="Modularity"),
        plateaus=report(f"{RESULTS}/tables/modularity_plateaus.csv", caption="../report/modularity_plateaus.rst",
                        category="Modularity"),
    params:
        threshold=MODULARITY["threshold"],
        min_run=MODULARITY["min_run"],
        learned_fraction=MODULARITY["learned_fraction"],  # which runs plateau detection reads
    log:
        f"{LOGS}/collect_modularity.log",
    conda:
        "../../envs/predict.yaml"  # pandas + matplotlib; the plateau rule needs neither torch nor graph-tool
    script:
        "../../scripts/modularity_collect.py"
