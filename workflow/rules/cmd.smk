# CMD stage (netdyn.cmd): correlation mode decomposition of every run's trajectory.
# cmd_group: one job per training group (the cheap pass, cmd.n_modes, and the early-window `cmd` features);
# its inputs are the group's runs' result.json and trajectory manifests, so a retrained run reruns its own
# group's CMD job only. cmd_deep: one job per run named by cmd.deep (test accuracy of SGD, post-hoc and online
# CMD weights at every snapshot, cmd.deep_n_modes; with cmd.embedded, the run's embedded-CMD twin too). collect_cmd: tables/cmd*.csv (the CMD figures: rule figures).
if config["cmd"]["enabled"]:
    from netdyn.cmd.stage import deep_runs
    from netdyn.config import EMBEDDED_CMD_SUFFIX

    CMD_EMBEDDED = config["cmd"]["embedded"]["enabled"]  # cmd_deep adds each run's embedded-CMD twin (variant_runs)

    CMD_DEEP = deep_runs(config["cmd"]["deep"], RUNS)
    CMD_SETTINGS = {k: config["cmd"][k] for k in ("n_modes", "feature_modes", "n_samples", "seed")}
    CMD_DEEP_SETTINGS = {k: config["cmd"][k] for k in ("deep_n_modes", "n_samples", "seed", "warmup", "bn_images")}

    rule cmd_group:
        """Post-hoc CMD of one training group's runs for each cmd.n_modes, and the early-window features."""
        input:
            results=lambda wc: [run_file(r.run_id, RUN_RESULT) for r in GROUPS[wc.group]],
            manifests=lambda wc: [run_file(r.run_id, RUN_MANIFEST) for r in GROUPS[wc.group]],
        output:
            snapshots=f"{RESULTS}/cmd/groups/{{group}}.snapshots.csv",
            mode_layers=f"{RESULTS}/cmd/groups/{{group}}.mode_layers.csv",
            features=f"{RESULTS}/cmd/groups/{{group}}.features.csv",
        params:
            run_dirs=lambda wc: [f"{RESULTS}/runs/{r.run_id}" for r in GROUPS[wc.group]],
            windows=WINDOWS,
            cmd=CMD_SETTINGS,
        log:
            f"{LOGS}/cmd_group/{{group}}.log",
        threads: 1
        conda:
            "../../envs/cmd.yaml"
        script:
            "../../scripts/cmd_group.py"

    rule cmd_deep:
        """Error and test accuracy of SGD, post-hoc and online CMD weights at every snapshot of one run."""
        input:
            result=run_file("{run_id}", RUN_RESULT),
            manifest=run_file("{run_id}", RUN_MANIFEST),
            twin=lambda wc: [run_file(wc.run_id + EMBEDDED_CMD_SUFFIX, RUN_RESULT)] if CMD_EMBEDDED else [],
        output:
            epochs=f"{RESULTS}/cmd/deep/{{run_id}}.epochs.csv",
            mode_layers=f"{RESULTS}/cmd/deep/{{run_id}}.mode_layers.csv",
        params:
            run_dir=lambda wc: f"{RESULTS}/runs/{wc.run_id}",
            twin_dir=lambda wc: f"{RESULTS}/runs/{wc.run_id}{EMBEDDED_CMD_SUFFIX}" if CMD_EMBEDDED else None,
            data_root=config["data"]["root"],
            cmd=CMD_DEEP_SETTINGS,
        log:
            f"{LOGS}/cmd_deep/{{run_id}}.log",
        threads: 1
        conda:
            "../../envs/cmd.yaml"
        script:
            "../../scripts/cmd_deep.py"

    rule collect_cmd:
        """Grid-wide CMD tables (their figures: rule figures)."""
        input:
            runs=f"{RESULTS}/tables/runs.csv",
            snapshots=expand(f"{RESULTS}/cmd/groups/{{group}}.snapshots.csv", group=GROUPS),
            mode_layers=expand(f"{RESULTS}/cmd/groups/{{group}}.mode_layers.csv", group=GROUPS),
            deep=expand(f"{RESULTS}/cmd/deep/{{run_id}}.epochs.csv", run_id=CMD_DEEP),
            deep_layers=expand(f"{RESULTS}/cmd/deep/{{run_id}}.mode_layers.csv", run_id=CMD_DEEP),
        output:
            table=report(f"{RESULTS}/tables/cmd.csv", caption="../report/cmd_table.rst", category="CMD"),
            snapshots=f"{RESULTS}/tables/cmd_snapshots.csv",
            epochs=f"{RESULTS}/tables/cmd_epochs.csv",
            mode_layers=f"{RESULTS}/tables/cmd_mode_layers.csv",  # the figures (cmd/figures/): rule figures
        log:
            f"{LOGS}/collect_cmd.log",
        conda:
            "../../envs/cmd.yaml"
        script:
            "../../scripts/cmd_collect.py"
