rule graph_signatures:
    """Rolled graph of every early snapshot (epoch <= largest window) of one training group's runs, node
    properties and their per-layer signatures."""
    input:
        f"{RESULTS}/train/{{group}}.json",
    output:
        f"{RESULTS}/graphs/{{group}}.csv",
    params:
        run_dirs=lambda wc: [f"{RESULTS}/runs/{r.run_id}" for r in GROUPS[wc.group]],
        max_epoch=max(WINDOWS),
    log:
        f"{LOGS}/graph_signatures/{{group}}.log",
    threads: 1
    conda:
        "../../envs/graphs.yaml"
    script:
        "../../scripts/graph_signatures.py"


rule collect_graphs:
    """Grid-wide signature table; rolled vs unrolled graph sizes (their figures: rule figures)."""
    input:
        signatures=expand(f"{RESULTS}/graphs/{{group}}.csv", group=GROUPS),
    output:
        signatures=f"{RESULTS}/tables/graph_signatures.csv",
        sizes=report(f"{RESULTS}/tables/graph_sizes.csv", caption="../report/graph_sizes.rst", category="Graphs"),
    params:
        widths=sorted(set(config["widths"]) | {1, 2, 4, 8}),
        image_size=32,
    log:
        f"{LOGS}/collect_graphs.log",
    conda:
        "../../envs/graphs.yaml"
    script:
        "../../scripts/collect_graphs.py"
