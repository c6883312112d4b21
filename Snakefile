# netdyn: from a config grid of CNN trainings to trajectories, graphs, predictions and figures.
# Run:  snakemake --cores 2            (default study, config/config.yaml)
#       snakemake --cores 2 --configfile config/paper.yaml --resources gpu=1
#       snakemake --profile profiles/slurm --configfile config/paper.yaml

# The default study, unless --configfile names another: a given config file replaces it rather than being
# merged over it, so a partial config file is refused by name instead of silently inheriting the default grid.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/graphs.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/modularity.smk"
include: "workflow/rules/pruning.smk"
include: "workflow/rules/cmd.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"  # the report's front page (`snakemake --report report.html`)


rule all:
    default_target: True
    input:
        # every run's files as targets of their own: Snakemake does not look for missing intermediate files
        # behind up-to-date tables, so a deleted run is found only where it is requested directly
        expand(f"{RESULTS}/train/{{group}}.json", group=GROUPS),
        expand(f"{RESULTS}/train/{{group}}.json", group=VARIANT_GROUPS),
        [run_file(r.run_id, name) for r in RUNS + VARIANTS for name in (RUN_RESULT, RUN_MANIFEST)],
        rules.collect_runs.output,
        rules.collect_graphs.output,
        rules.predict.output,
        rules.collect_modularity.output if config["modularity"]["enabled"] else [],
        rules.collect_pruning.output if PRUNING_ON else [],
        rules.collect_cmd.output if config["cmd"]["enabled"] else [],
        rules.figures.output,
        rules.report_summary.output,
