"""Snakemake entry point of rule `report_summary`: one HTML page with the headline table of every stage (the
study's config, training runs, graph stage, prediction metrics, CMD, modularity, pruning check), read from
the stages' tables, for the Summary category of `snakemake --report`. Presentation only: every number is a
CSV cell of results/<study>/tables/ or an aggregate of them, named in the page.

Also importable (tests): ``summary_html(tables, config, windows)`` renders the page from a dict of DataFrames.
"""

import html
import sys
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: sans-serif; font-size: 14px; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
p.note { color: #555; max-width: 60em; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
"""


def _table(df: pd.DataFrame, table_id: str, digits: int = 3) -> str:
    if df.empty:
        return f'<p class="note" id="{table_id}">(no rows)</p>'
    return df.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.{digits}f}", table_id=table_id,
                      border=0, escape=True)


def _section(title: str, section_id: str, note: str, body: str) -> str:
    return f'<h2 id="{section_id}">{html.escape(title)}</h2>\n<p class="note">{note}</p>\n{body}\n'


def _values(values) -> str:
    return ", ".join(str(v) for v in values)


def config_table(config: dict, windows: list) -> pd.DataFrame:
    """The study's settings, one row per key (what every table and figure of the report was made from)."""
    archs = [a["name"] + (str(a["depth"]) if a.get("depth") else "") + ("bn" if a.get("batchnorm") else "")
             for a in config["architectures"]]
    hp, tr, pr = config["hyperparameters"], config["training"], config["predict"]
    rows = [("study", config["study"]), ("device", config["device"]), ("data sets", _values(config["datasets"])),
            ("architectures", _values(archs)), ("widths", _values(config["widths"])),
            ("learning rates", _values(hp["learning_rate"])), ("dropout", _values(hp["dropout"])),
            ("weight decay", _values(hp["weight_decay"])), ("seeds", _values(config["seeds"])),
            ("epochs", tr["epochs"]), ("batch size", tr["batch_size"]),
            ("prediction windows E (epochs)", _values(windows)),
            ("feature sets", _values(pr["feature_sets"])), ("train widths (transfer)", _values(pr["train_widths"]))]
    names = {"learning_rate": "learning rates", "dropout": "dropout", "weight_decay": "weight decay"}
    for label, arch in zip(archs, config["architectures"]):
        rows += [(f"{names[key]} ({label})", _values(values)) for key, values in arch.get("hyperparameters", {}).items()]
    for stage in ("modularity", "cmd"):
        rows.append((f"{stage} stage", "on" if config.get(stage, {}).get("enabled") else "off"))
    pruning = config.get("modularity", {}).get("pruning", {})
    if config.get("modularity", {}).get("enabled") and pruning.get("enabled"):
        rows.append(("pruning check", f"{_values(pruning['architectures'])} (seeds {_values(pruning['seeds'])})"))
    return pd.DataFrame(rows, columns=["setting", "value"]).astype(str)


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per architecture, data set and width: runs, how many completed or diverged, final test accuracy."""
    g = runs.groupby(["arch_label", "dataset", "width"])
    out = g.agg(runs=("run_id", "size"), complete=("status", lambda s: int((s == "complete").sum())),
                diverged=("status", lambda s: int((s == "diverged").sum())),
                final_acc_median=("final_test_acc", "median"), final_acc_max=("final_test_acc", "max"))
    best = runs.loc[runs.groupby(["arch_label", "dataset", "width"])["final_test_acc"].idxmax()]
    out["best_run"] = best.set_index(["arch_label", "dataset", "width"])["run_id"]
    return out.reset_index()


def graphs_table(signatures: pd.DataFrame, runs: pd.DataFrame, sizes: pd.DataFrame) -> pd.DataFrame:
    """Per architecture and width: rolled vs unrolled graph size, and the early snapshots summarised."""
    sig = signatures.merge(runs[["run_id", "arch", "width"]], on="run_id")
    n_sig = len([c for c in signatures.columns if c not in ("run_id", "snapshot", "epoch")])
    per = sig.groupby(["arch", "width"]).agg(runs=("run_id", "nunique"), snapshots_per_run=("snapshot", "size"),
                                              last_epoch=("epoch", "max")).reset_index()
    per["snapshots_per_run"] = per["snapshots_per_run"] / per["runs"]
    per["signature_columns"] = n_sig
    cols = ["arch", "width", "rolled_nodes", "rolled_edges", "unrolled_nodes", "unrolled_edges"]
    return sizes[cols].merge(per, on=["arch", "width"], how="right")


def _interval(df: pd.DataFrame, m: str) -> pd.Series:
    return df[m].map("{:.2f}".format) + " [" + df[f"{m}_lo"].map("{:.2f}".format) + ", " \
        + df[f"{m}_hi"].map("{:.2f}".format) + "]"


def prediction_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Within-width grouped CV, all runs, pooled over widths: Kendall τ and R² [95% bootstrap interval] per
    architecture, data set and feature set (rows) and early window E (columns)."""
    m = metrics[(metrics["split"] == "within_width") & (metrics["subset"] == "all") & metrics["test_width"].isna()]
    if m.empty:
        return pd.DataFrame()
    m = m.assign(tau=_interval(m, "kendall_tau"), r2=_interval(m, "r2"))
    wide = m.pivot_table(index=["arch", "dataset", "feature_set"], columns="window", values=["tau", "r2"],
                         aggfunc="first", sort=False)
    wide.columns = [f"{'Kendall τ' if v == 'tau' else 'R²'} E={w}" for v, w in wide.columns]
    return wide[sorted(wide.columns, key=lambda c: (not c.startswith("Kendall"), c))].reset_index()


def transfer_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Width transfer at the largest window, all runs: Kendall τ per test width."""
    m = metrics[(metrics["split"] == "transfer") & (metrics["subset"] == "all") & metrics["test_width"].notna()]
    if m.empty:
        return pd.DataFrame()
    m = m[m["window"] == m["window"].max()]
    m = m.assign(tau=_interval(m, "kendall_tau"), test_width=m["test_width"].astype(int))
    wide = m.pivot_table(index=["arch", "dataset", "feature_set", "train_widths", "window"], columns="test_width",
                         values="tau", aggfunc="first", sort=False)
    wide.columns = [f"Kendall τ, width {w}" for w in wide.columns]
    return wide.reset_index()


def cmd_tables(cmd: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cheap pass (every run): relative reconstruction error per architecture and M; deep runs: accuracies."""
    cheap = cmd[cmd["analysis"] == "cheap"]
    per = cheap.groupby(["arch_label", "dataset", "n_modes"]).agg(
        runs=("run_id", "nunique"), rel_error_final_median=("rel_error_final", "median"),
        rel_error_final_max=("rel_error_final", "max")).reset_index()
    deep = cmd[cmd["analysis"] == "deep"][["run_id", "n_modes", "rel_error_final", "acc_sgd", "acc_cmd",
                                           "acc_online_cmd", "acc_cmd_best", "acc_online_cmd_best"]]
    return per, deep


def modularity_table(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Final-snapshot Q per architecture, data set and layer: mean over the runs (every run with a row)."""
    last = table.groupby("run_id")["epoch"].transform("max")
    final = table[table["epoch"] == last].merge(runs[["run_id", "arch_label", "dataset"]], on="run_id")
    return final.groupby(["arch_label", "dataset", "layer_index", "layer_name"]).agg(
        runs=("run_id", "nunique"), q_final_mean=("q_mean", "mean"), q_final_std=("q_mean", "std")).reset_index()


def summary_html(tables: dict[str, pd.DataFrame], config: dict, windows: list) -> str:
    """The summary page: a section per stage whose table is in `tables` (keys as rule report_summary's input)."""
    study = html.escape(str(config["study"]))
    parts = [f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>netdyn study {study}: summary"
             f"</title><style>{STYLE}</style></head><body>\n<h1>netdyn study <code>{study}</code>: summary</h1>\n"]
    parts.append(_section("Config", "config", "The settings every table and figure of this report was made from "
                          "(the study's config after defaults were filled in).",
                          _table(config_table(config, windows), "config-table")))
    runs = tables["runs"]
    parts.append(_section(
        "Training runs", "training", f"{len(runs)} runs (<code>tables/runs.csv</code>): per architecture, data set "
        "and width, how many completed or diverged, and the final test accuracy (median, best, and the best run).",
        _table(runs_table(runs), "runs-table")))
    parts.append(_section(
        "Graph stage", "graphs", "Rolled (channel-level) against unrolled (per neuron and position) graph size on "
        "3×32×32 inputs (<code>tables/graph_sizes.csv</code>), and the early snapshots summarised per run "
        f"(<code>tables/graph_signatures.csv</code>; epochs up to the largest window E = {max(windows)}).",
        _table(graphs_table(tables["signatures"], runs, tables["sizes"]), "graphs-table", digits=1)))
    parts.append(_section(
        "Prediction of final test accuracy", "prediction", "XGBoost from the early window E "
        "(<code>tables/prediction_metrics.csv</code>): within-width grouped CV, all runs, pooled over widths; "
        "value [95% bootstrap interval]. <code>early_acc</code> (test accuracy at E) is the baseline to beat.",
        _table(prediction_table(tables["metrics"]), "prediction-table")
        + "\n<p class=\"note\">Width transfer (fitted on the train widths, tested on each larger width), at the "
        "largest window:</p>\n" + _table(transfer_table(tables["metrics"]), "transfer-table")))
    if "cmd" in tables:
        per, deep = cmd_tables(tables["cmd"])
        parts.append(_section(
            "CMD (correlation mode decomposition)", "cmd", "Relative reconstruction error ||w − ŵ|| / ||w|| of the "
            "post-hoc CMD at each run's last snapshot with M modes (<code>tables/cmd.csv</code>, cheap pass, every "
            "run); below, the runs of <code>cmd.deep</code>: test accuracy of the SGD, post-hoc CMD and online "
            "CMD weights at the last snapshot (<code>*_best</code>: best over snapshots).",
            _table(per, "cmd-table", digits=4) + "\n" + _table(deep, "cmd-deep-table")))
    if "plateaus" in tables:
        parts.append(_section(
            "Modularity", "modularity", "Plateau candidates per architecture and data set "
            "(<code>tables/modularity_plateaus.csv</code>: consecutive layers whose rise in Q is below the "
            "threshold), then the final-snapshot Q per layer, mean and std over runs "
            "(<code>tables/modularity.csv</code>).",
            _table(tables["plateaus"], "plateau-table") + "\n"
            + _table(modularity_table(tables["modularity"], runs), "modularity-table")))
    if "pruning" in tables:
        parts.append(_section(
            "Pruning check", "pruning", "Per architecture, data set and comparison (pruned − original, control − "
            "original): mean paired difference in final test accuracy over seeds with its t interval "
            "(<code>tables/pruning_summary.csv</code>); <code>note</code> says why a job trained nothing.",
            _table(tables["pruning"], "pruning-table")))
    parts.append("</body></html>\n")
    return "".join(parts)


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821  (injected by Snakemake)
    sys.path.insert(0, str(Path(sm.scriptdir).parent))  # the netdyn package
    from netdyn import runlog

    runlog.setup(sm.log[0])
    tables = {name: pd.read_csv(path) for name, path in sm.input.items()}
    Path(sm.output[0]).write_text(summary_html(tables, sm.config, sm.params.windows), encoding="utf-8")
