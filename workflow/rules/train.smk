# One training rule per group of runs (rules made in a loop: a job's outputs are its runs' files, which no
# wildcard pattern can list). Each run's result.json and trajectory manifest are outputs flagged update():
# Snakemake sees a deleted or incomplete run and reruns its group's job, which trains only the runs that
# are not finished and keeps the others (update() outputs are not deleted before the job).
for _group, _members in {**GROUPS, **VARIANT_GROUPS}.items():

    rule:
        name:
            f"train_{rule_safe(_group)}"
        output:
            group=f"{RESULTS}/train/{_group}.json",
            results=update([run_file(r.run_id, RUN_RESULT) for r in _members]),
            manifests=update([run_file(r.run_id, RUN_MANIFEST) for r in _members]),
        params:
            group=_group,
            runs=[r.to_dict() for r in _members],
            out_dir=f"{RESULTS}/runs",
            device=DEVICE,
            settings=TRAINING_SETTINGS,
        log:
            f"{LOGS}/train/{_group}.log",
        threads: config["training"]["threads"]
        resources:
            gpu=1 if DEVICE == "cuda" else 0,
            # SLURM: --gpus=MODEL:1 (profiles/slurm); an env variable since set-resources cannot name these rules
            **({"gpu_model": os.environ["NETDYN_GPU_MODEL"]}
               if DEVICE == "cuda" and os.environ.get("NETDYN_GPU_MODEL") else {}),
        conda:
            "../../envs/train.yaml"
        script:
            "../../scripts/train_group.py"


rule collect_runs:
    """One table of every run's outcome (its learning-curve figure: rule figures)."""
    input:
        groups=expand(f"{RESULTS}/train/{{group}}.json", group=GROUPS),
        results=[run_file(r.run_id, RUN_RESULT) for r in RUNS],
    output:
        table=report(f"{RESULTS}/tables/runs.csv", caption="../report/runs.rst", category="Training"),
    params:
        runs_dir=f"{RESULTS}/runs",
        run_ids=[r.run_id for r in RUNS],
    log:
        f"{LOGS}/collect_runs.log",
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/collect_runs.py"
