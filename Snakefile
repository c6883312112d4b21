# netdyn: from a config grid of CNN trainings to trajectories, graphs, predictions and figures.
# Run:  snakemake --cores 2            (default study, config/config.yaml)
#       snakemake --cores 2 --configfile config/paper.yaml --resources gpu=1
#       snakemake --profile profiles/slurm --configfile config/paper.yaml

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/graphs.smk"
include: "workflow/rules/predict.smk"


rule all:
    input:
        rules.collect_runs.output,
        rules.collect_graphs.output,
        rules.predict.output,
