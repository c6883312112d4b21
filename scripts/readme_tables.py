"""README.md's benchmark numbers, generated from the committed JSON files under ``bench/results/``.

No benchmark number in README is typed by hand: each block between ``<!-- generated: NAME -->`` and
``<!-- /generated -->`` is rewritten here from committed JSON, and names the machine, the date and the commit
it came from (the commit the JSON records where it records one, and always the commit that last wrote the
file). Ratios and goals come from ``bench/throughput/report.py`` and ``bench/goals.yaml``, not from here.

    .venv/bin/python scripts/readme_tables.py          # rewrite README.md in place
    .venv/bin/python scripts/readme_tables.py --check  # exit 1 and print a diff where README differs

Commit a new or rerun JSON first, then run this: a block names the commit that wrote its JSON, which cannot
be the commit that holds the block. A JSON that is untracked, modified or missing a field stops the script.
Over 300 lines because it holds one renderer per README block (seven); each is a table and a sentence or two.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.throughput.project import cluster_projection  # noqa: E402
from bench.throughput.report import device_peaks, evaluate_goals, finish_ratios, load_goals  # noqa: E402
from scripts.readme_default_study import RENDER as DEFAULT_STUDY_RENDER  # noqa: E402

BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)
ARCH = {"lenet": "LeNet", "alexnet": "AlexNet", "vgg11bn": "VGG-11-BN", "resnet8": "ResNet-8", "resnet20": "ResNet-20"}
DATASET = {"cifar10": "CIFAR-10", "fashionmnist": "FashionMNIST", "digits": "digits"}


class SourceError(RuntimeError):
    """A JSON that cannot back a README number: missing field, not committed, or modified."""


@dataclass
class Source:
    """One committed JSON and where it came from (``commit``: the last commit that wrote the file)."""

    rel: str
    data: dict
    commit: str
    commit_date: str

    def get(self, *keys):
        """The field at ``keys``; a missing one stops with the file and the field named."""
        v = self.data
        for i, k in enumerate(keys):
            try:
                v = v[k]
            except (KeyError, IndexError, TypeError):
                raise SourceError(f"{self.rel}: field {'.'.join(map(str, keys[:i + 1]))} missing") from None
        return v

    def provenance(self) -> str:
        created = self.data.get("created")
        if created:
            return f"`{self.rel}`, measured {created[:10]}, committed in {self.commit}"
        return f"`{self.rel}`, committed {self.commit_date} in {self.commit}"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def load_source(rel: str) -> Source:
    """A JSON as git holds it at HEAD, with the commit that last wrote it."""
    try:
        if not _git("ls-files", "--", rel):
            raise SourceError(f"{rel}: not tracked by git; commit it before generating README from it")
        if _git("status", "--porcelain", "--", rel):
            raise SourceError(f"{rel}: differs from its committed version; commit it first")
        full, date = _git("log", "-1", "--format=%H %cs", "--", rel).split()
    except (OSError, subprocess.CalledProcessError) as err:
        raise SourceError(f"{rel}: git cannot say which commit wrote it ({err})") from None
    return Source(rel, json.loads((REPO / rel).read_text()), full[:7], date)


def _n(v: float) -> str:
    return f"{v:,.0f}"


def _x(v: float) -> str:
    return f"{v:.1f}×" if v >= 10 else f"{v:.2f}×"


def _load(m: dict) -> str:
    return f"1-min load average {m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end"


def _model(labels: dict, arch: str, width: int) -> str:
    return f"{ARCH.get(labels.get(arch, arch), labels.get(arch, arch))} w={width}"


def _throughput(src: Source) -> tuple[list[dict], dict, dict | None, dict]:
    """Records with ratios and fractions of peak from report.finish_ratios against today's goals.yaml."""
    records = copy.deepcopy(src.get("records"))
    goals = load_goals()
    peaks = device_peaks(src.get("machine", "device_name"), goals)
    try:
        finish_ratios(records, peaks)
        judged = evaluate_goals(records, src.get("machine", "device_name"), goals)
    except KeyError as err:
        raise SourceError(f"{src.rel}: a record lacks field {err}") from None
    return records, goals, peaks, judged


def gpu_throughput(src: Source) -> str:
    m, s = src.get("machine"), src.get("settings")
    records, goals, peaks, judged = _throughput(src)
    labels = {r["arch"]: r["arch_label"] for r in records}
    main = [r for r in records if not r.get("variant")]
    models = list(dict.fromkeys((r["arch"], r["width"]) for r in main))
    ks = sorted({r["k"] for r in main if r["loop"] == "batched"})
    get = {(r["loop"], r["arch"], r["width"], r["k"]): r for r in main}
    precision = next(r["precision"] for r in main if r["loop"] == "single")
    out = [f"One {m['device_name']} ({m['label']}; {m['cpu_count']} CPUs, torch {m['torch']}, CUDA "
           f"{m['cuda_version']}), {src.provenance()}; the JSON records no commit. {_n(s['n_train'])} images per "
           f"epoch, {_n(s['n_test'])} test images, batch {s['batch_size']}, seed loop with {s['seed_loop_workers']} "
           f"DataLoader workers; the trainer in its default precision on this device ({precision}), cuDNN autotuning "
           f"{'on' if s['cudnn_benchmark'] else 'off'}. img/s counts every member's images.", "",
           "| model | (c) seed loop | (b) single | " + " | ".join(f"(a) K={k}" for k in ks)
           + f" | best (a) ÷ (c) | TFLOP/s at best K (of {precision} peak) | per member at largest K ÷ (b) "
             "| peak GPU memory per member at largest K |",
           "|---|" + "---:|" * (len(ks) + 6)]
    for arch, w in models:
        packs = [r for r in main if r["loop"] == "batched" and (r["arch"], r["width"]) == (arch, w)]
        best = max(packs, key=lambda r: r["ratio_total_vs_seed_loop"])
        largest = max(packs, key=lambda r: r["k"])
        cells = [_n(get[(lp, arch, w, 1)]["images_per_s_total"]) for lp in ("seed_loop", "single")]
        cells += [_n(get[("batched", arch, w, k)]["images_per_s_total"]) if ("batched", arch, w, k) in get
                  else "not measured" for k in ks]
        cells += [f"{_x(best['ratio_total_vs_seed_loop'])} (K={best['k']})",
                  f"{best['achieved_tflops']:.2f} ({best['fraction_of_peak']:.1%} of {best['peak_tflops']:g})",
                  f"{_x(largest['ratio_vs_single'])} (K={largest['k']})",
                  f"{largest['peak_mem_per_member_bytes'] / 2**20:,.0f} MiB (K={largest['k']})"]
        out.append(f"| {_model(labels, arch, w)} | " + " | ".join(cells) + " |")
    variants = [r for r in records if r.get("variant")]
    if variants:
        out += ["", "Other settings (precision, pack layout, compiled) at the largest K measured (same machine and "
                "file; the default is the row of the table above):", "",
                f"| model | K | setting | default img/s | img/s | ÷ default | ÷ (c) seed loop "
                "| TFLOP/s (of peak) | peak GPU memory per member |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in variants:
            base = get.get(("batched", r["arch"], r["width"], r["k"]))
            out.append(f"| {_model(labels, r['arch'], r['width'])} | {r['k']} | {r['variant']} | "
                       f"{_n(base['images_per_s_total']) if base else '-'} | {_n(r['images_per_s_total'])} | "
                       f"{_x(r['images_per_s_total'] / base['images_per_s_total']) if base else '-'} | "
                       f"{_x(r['ratio_total_vs_seed_loop'])} | {r['achieved_tflops']:.2f} "
                       f"({r['fraction_of_peak']:.1%} of {r['peak_tflops']:g}) | "
                       f"{r['peak_mem_per_member_bytes'] / 2**20:,.0f} MiB |")
    skipped = src.get("skipped")
    if skipped:
        out += ["", "Not measured: " + "; ".join(
            f"{_model(labels, x['arch'], x['width'])} K={x['k']} {x['loop'].partition('+')[2] or precision} "
            f"({x['reason']})" for x in skipped) + "."]
    rows = ", ".join(f"{_model(labels, r['arch'], r['width'])} {_x(r['ratio_total_vs_seed_loop'])} (K={r['k']}, "
                     f"{r['precision']}, {'met' if r['met'] else '**not met**'})" for r in judged["best_by_arch_width"])
    out += ["", f"Goal (`bench/goals.yaml`, {goals['goals']['source']}): every (architecture, width) at least "
                f"{judged['target_x_seed_loop']:g}× the seed loop at its best pack, any precision. Best here: {rows}. "
                f"The goals are judged on an {judged['applies_to']}; this device is an {m['device_name']}, so "
                f"{'they are judged here' if judged['judged_here'] else 'they are not judged here'}."]
    if peaks:
        out.append(f"Peaks (`bench/goals.yaml`, dense, TFLOP/s) for the {peaks['match']}: fp32 {peaks['fp32']:g}, "
                   f"tf32 {peaks['tf32']:g}, bf16 {peaks['bf16']:g}.")
    return "\n".join(out)


def gpu_projection(src: Source) -> str:
    p, m, argv = src.get("projection"), src.get("machine"), src.get("settings", "argv")
    budget = argv[argv.index("--project-budget") + 1] if "--project-budget" in argv else None
    timed = [r for r in p["rows"] if r["hours"] > 0]
    measured_packs = sum(len(r["measured"]) for r in p["rows"])
    carried = [x["carried_from"] for r in p["rows"] for x in r["measured"] if "carried_from" in x]
    measured_hours = sum(k["train_hours"] + k["eval_hours"] for r in p["rows"] for k in r["packs"]
                         if k["source"] == "measured")
    status = "complete" if p["complete"] else "**INCOMPLETE**"
    out = [f"Projection of `{p['config']}` ({_n(p['runs'])} runs, {p['precision']}) on one {m['device_name']} "
           f"({m['label']}), {src.provenance()}; the JSON records no commit. {status}: "
           f"{measured_packs} pack sizes measured" + (f" within a {budget} s budget" if budget else "")
           + (f" ({len(carried)} of them in earlier sessions: {', '.join(sorted(set(carried)))})" if carried else "")
           + f"; of {p['blocks']} blocks (architecture, data set, width) {p['blocks_measured_in_full']} are measured "
             f"in full, {len(timed) - p['blocks_measured_in_full']} in part or estimated, "
             f"{p['blocks'] - len(timed)} not at all.", "",
           "| block | runs | packs | img/s per model (measured K) | peak GPU memory of the pack | hours | source |",
           "|---|---:|---|---:|---:|---:|---|"]
    for r in timed:
        sizes = sorted(r["pack_sizes"], reverse=True)
        packs = ", ".join(f"{sizes.count(k)}×{k}" for k in dict.fromkeys(sizes))
        rate = ", ".join(f"{_n(x['images_per_s_per_model'])} (K={x['k']})" for x in r["measured"]) or "-"
        mem = ", ".join(f"{x['peak_mem_bytes'] / 2**30:.1f} GiB" for x in r["measured"]) or "-"
        sources = ", ".join(dict.fromkeys(k["source"] for k in r["packs"]))
        out.append(f"| {ARCH.get(r['arch'], r['arch'])} {DATASET.get(r['dataset'], r['dataset'])} w={r['width']} | "
                   f"{r['runs']} | {packs} | {rate} | {mem} | {r['hours']:.2f} | {sources} |")
    missing = [f"{ARCH.get(r['arch'], r['arch'])} {DATASET.get(r['dataset'], r['dataset'])} w={r['width']}"
               for r in p["rows"] if r["hours"] <= 0]
    out += ["", f"Not measured ({len(missing)} blocks): " + ", ".join(missing) + ".", "",
            f"The blocks with a time sum to {p['total_hours']:.1f} h ({p['hours_measured_blocks']:.1f} h of it the "
            f"blocks measured in full; {measured_hours:.1f} h from measured packs alone, nothing estimated); "
            + (("that is the projection of the whole grid" + (
                f", {p['estimated_packs']} of its packs estimated (source column; an estimate from a wider width "
                "is an upper bound)." if p["estimated_packs"] else ".")) if p["complete"] else
               "the whole grid takes longer than that, by an amount not measured.")
            + f" Goal (`bench/goals.yaml`): ≤ {p['goal_hours']:g} h on one {p['goal_device']}; on this "
            f"{m['device_name']} " + ("met." if p["meets_goal"] else "**not met**" + (
                f" — the measured packs alone take more than {p['goal_hours']:g} h."
                if measured_hours > p["goal_hours"] else "."))]
    out += _layout_table(p)
    n, goal_8 = 8, load_goals()["goals"]["paper_grid_hours_8_gpus"]
    block, pack = cluster_projection(p, n), cluster_projection(p, n, per="pack")
    out += ["", f"On {n} such GPUs through `profiles/slurm` (`bench/throughput/project.py: cluster_projection`, "
                "jobs longest first onto the GPU free soonest): with the workflow's jobs on cuda, one per block, "
                f"{block['hours']:.1f} h — the critical path is the longest block, {block['critical_path_hours']:.1f} h; "
                f"with one job per pack (`training.group_size` set to the pack size) {pack['hours']:.1f} h "
                f"(longest pack {pack['critical_path_hours']:.1f} h)"
            + (f". Both leave out the {block['jobs_not_timed']} blocks ({pack['jobs_not_timed']} packs) without a "
               "time, so they are lower bounds" if block["lower_bound_only"] else "")
            + f"; goal (`bench/goals.yaml`) ≤ {goal_8:g} h on {n} GPUs: "
            + ("met." if pack["hours"] <= goal_8 and not pack["lower_bound_only"] else "**not met**.")]
    return "\n".join(out)


def _layout_table(p: dict) -> list[str]:
    """Per measured pack whose layout was probed (training.pack_layout: auto): img/s per model of one training
    step (forward, loss, backward) in each layout, the chosen one in bold."""
    from netdyn.packed import LAYOUTS

    probed = [(r, x) for r in p["rows"] for x in r["measured"] if x.get("layout_probe_ms_per_step")]
    if not probed:
        return []
    out = ["", "Pack layouts (`training.pack_layout: auto`): img/s per model of one training step (forward, loss, "
               "backward; no SGD step, evaluation or files) in each layout, from the probe steps before each measured "
               "pack; bold: the layout it trained in; -: no time (its probe failed, e.g. out of memory, or the layout "
               "is newer than the measurement).", "",
           "| block | K | " + " | ".join(f"`{name}`" for name in LAYOUTS) + " | chosen ÷ `grouped` |",
           "|---|---:|" + "---:|" * (len(LAYOUTS) + 1)]
    for r, x in probed:
        batch = x["images_per_s_per_model"] * x["step_seconds"]  # images per member per step
        probe = x["layout_probe_ms_per_step"]
        cells = [(f"**{_n(batch / (probe[name] / 1e3))}**" if name == x["trainer_layout"] else
                  _n(batch / (probe[name] / 1e3))) if name in probe else "-" for name in LAYOUTS]
        gain = _x(probe["grouped"] / probe[x["trainer_layout"]]) if "grouped" in probe else "-"
        out.append(f"| {ARCH.get(r['arch'], r['arch'])} {DATASET.get(r['dataset'], r['dataset'])} w={r['width']} | "
                   f"{x['k']} | " + " | ".join(cells) + f" | {gain} |")
    return out


def cpu_throughput(src: Source) -> str:
    m, s, check = src.get("machine"), src.get("settings"), src.get("pack_check")
    records, *_ = _throughput(src)
    labels = {r["arch"]: r["arch_label"] for r in records}
    get = {(r["loop"], r["arch"], r["width"]): r for r in records if r["loop"] != "batched" and not r.get("variant")}
    packs = [r for r in records if r["loop"] == "batched" and not r.get("variant")]
    out = [f"{m['cpu_model']}, {m['cpu_count']} cores, {m['torch_threads']} torch thread, torch {m['torch']} "
           f"({m['label']}; {_load(m)}), {src.provenance()}. {_n(s['n_train'])} CIFAR-10-shaped images, batch "
           f"{s['batch_size']}, seed loop with {s['seed_loop_workers']} DataLoader worker; img/s per model.", "",
           "| model | (c) seed loop | (b) single | (b) ÷ (c) | K | (a) per model | (a) all members "
           "| (a) per model ÷ (b) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in packs:
        seed, single = get[("seed_loop", r["arch"], r["width"])], get[("single", r["arch"], r["width"])]
        out.append(f"| {_model(labels, r['arch'], r['width'])} | {_n(seed['images_per_s_per_model'])} | "
                   f"{_n(single['images_per_s_per_model'])} | {_x(single['ratio_vs_seed_loop'])} | {r['k']} | "
                   f"{_n(r['images_per_s_per_model'])} | {_n(r['images_per_s_total'])} | {_x(r['ratio_vs_single'])} |")
    by_arch: dict[str, list[str]] = {}
    for r in check["rows"]:
        if r["k"] > 1:
            by_arch.setdefault(r["arch"], []).append(f"K={r['k']} {_x(r['per_model_vs_k1'])}")
    out += ["", f"Pack check ({check['data']}): per-model speed of a pack relative to one model alone — "
            + "; ".join(f"{ARCH.get(labels.get(a, a), a)} {', '.join(v)}" for a, v in by_arch.items())
            + f" ({check['conclusion']})."]
    return "\n".join(out)


def cpu_pack_choice(src: Source) -> str:
    m, rows, total = src.get("machine"), src.get("rows"), src.get("total")
    widths = sorted({r["width"] for r in rows})
    cell = {(r["arch"], r["width"]): r for r in rows}
    combos = {(r["runs"], r["epochs"]) for r in rows}
    if len(combos) != 1:
        raise SourceError(f"{src.rel}: rows differ in runs/epochs {sorted(combos)}; one sentence cannot say them")
    [(runs, epochs)] = combos
    out = [f"`bench/cpu_pack_choice.py`: {m['cpu_model']}, {m['cpu_count']} cores, {m['threads']} thread, torch "
           f"{m['torch']} ({_load(m)}), {src.provenance()}. Per architecture and width {runs} runs × {epochs} "
           "epochs on digits, wall time packed ÷ one after another (below 1: packing saves time):", "",
           "| arch | " + " | ".join(f"w={w}" for w in widths) + " |", "|---|" + "---:|" * len(widths)]
    for arch in dict.fromkeys(r["arch"] for r in rows):
        out.append(f"| {ARCH.get(arch, arch)} | " + " | ".join(
            f"{cell[(arch, w)]['packed_over_one_at_a_time']:.2f}" if (arch, w) in cell else "-" for w in widths) + " |")
    packed, single = total["seconds_packed"], total["seconds_one_at_a_time"]
    out += ["", f"Whole grid: one after another {single:.1f} s, packed {packed:.1f} s — packing "
                f"{'saves' if packed < single else 'costs'} time overall."]
    return "\n".join(out)


def graph_extraction(src: Source) -> str:
    m, s, rows, goals = src.get("machine"), src.get("settings"), src.get("results"), src.get("goals")
    # the goal values live in the key names bench/graph_extraction.py writes (goal_50x_..., ..._under_5s_met)
    found = {pat: next((mt[1] for k in goals if (mt := re.fullmatch(pat, k))), None)
             for pat in (r"goal_(\d+)x_at_width1_met", r"goal_width8_under_(\d+)s_met")}
    if None in found.values():
        lost = " / ".join("goals." + p.replace(r"(\d+)", "<N>") for p, v in found.items() if v is None)
        raise SourceError(f"{src.rel}: field {lost} missing")
    x, limit = (int(v) for v in found.values())
    out = [f"Benchmark (`bench/graph_extraction.py`, {src.provenance()}; {m['cpu_count']} cores, {m['threads']} "
           f"threads, graph-tool {m['graph_tool']}, networkx {m['networkx']}, {_load(m)}; a shared machine, so the "
           f"times are pessimistic): {src.get('benchmark')}; netdyn's rolled graph + eigenvector centrality + "
           f"strength against networkx on the same edges (`eigenvector_centrality`, weighted degree); "
           f"{s['statistic']} over {s['snapshots_per_width']} snapshots:", "",
           "| width | nodes | edges | netdyn (graph + eigenvector + strength) | netdyn, all properties | networkx "
           "| speed-up | max abs. difference to networkx |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['width']} | {_n(r['nodes'])} | {_n(r['edges'])} | {r['ours_core_s']:.3f} s | "
                   f"{r['ours_all_s']:.3f} s | {r['networkx_s']:.2f} s | {r['speedup_core']:.0f}× | "
                   f"{r['max_abs_diff_vs_networkx']:.1e} |")
    met = goals[f"goal_{x}x_at_width1_met"], goals[f"goal_width8_under_{limit}s_met"]
    out += ["", f"Goals (as `bench/graph_extraction.py` checks them): at least {x}× networkx at width 1 — "
                f"{'met' if met[0] else '**not met**'} ({goals['speedup_width1_core']:.0f}×); a width-8 snapshot with "
                f"every property in under {limit} s — {'met' if met[1] else '**not met**'} "
                f"({goals['width8_all_s']:.2f} s)."]
    return "\n".join(out)


def reference_graphs(src: Source) -> str:
    ref, ours, models = src.get("reference"), src.get("netdyn"), src.get("models")
    dirty = ours["uncommitted_paths_under_netdyn"]
    names = []
    for r in models.values():
        b = r["build_model"]
        bn = " without BN" if b.get("batchnorm") is False else ""
        arch = f"VGG-{b['depth']}" if b["arch"] == "vgg" else ARCH.get(b["arch"], b["arch"])
        names.append(f"{arch}{bn} w={b['width']} "
                     f"({_n(r['edges_ours'])} edges)")
    same = [r["edge_sets_match"] and r["nodes_ours"] == r["nodes_theirs"] for r in models.values()]
    verdict = (f"same nodes and edge sets in all {len(same)}" if all(same)
               else f"**nodes or edges differ** in {same.count(False)} of {len(same)}")
    worst = max(r["max_rel_diff"] for r in models.values())
    return ("* Rolled graph of LeNet / AlexNet / VGG without BatchNorm — nodes per channel, conv edges the L2 norm of "
            "the k×k kernel slice, linear edges |w|, the first linear after the flatten L2-reduced over positions — "
            f"compared edge for edge with `make_n2b_graph` of `pindapuj/NN_Code` (commit {ref['commit'][:7]}) run on "
            f"the same weights (`bench/compare_reference_graphs.py`; {src.provenance()}; netdyn at "
            f"{ours['commit'][:7]}, {'uncommitted changes under netdyn/: ' + ', '.join(dirty) if dirty else 'clean'}): "
            f"{', '.join(names)} — {verdict}, "
            f"edge weights equal within {worst:.1e} relative ({src.get('weights')}).")


def quickstart(src: Source) -> str:
    """README's quick-start commands timed from a clean clone (bench/quickstart.py)."""
    m = src.get("machine")
    said = {"setup": "`scripts/setup.sh` making a fresh `.venv` from `requirements.lock` (downloads included; the "
                     "Debian packages were already installed)",
            "study": "`bash scripts/study.sh`, the default study", "tests": "`bash scripts/test.sh`, the test suite"}
    parts = []
    for name, what in said.items():
        step = src.get("steps", name)
        took = f"{step['seconds'] / 60:.1f} min" if step["seconds"] >= 90 else f"{step['seconds']:.0f} s"
        failed = f", **exit {step['exit_code']}**" if step["exit_code"] else ""
        load = f"1-min load {step['load_1min_start']:.2f} at start"
        details = [step["summary"], load] if name == "tests" else [load]
        parts.append(f"{what}: {took}{failed} ({'; '.join(details)})")
    return (f"Timed by `bench/quickstart.py` from a clean clone of {src.get('commit')} ({src.provenance()}; "
            f"{m['cpu_model']}, {m['cpu_count']} cores, torch {m['torch']}): " + "; ".join(parts) + ". Another "
            "machine's times differ (the CPU, the download speed, what else runs).")


RENDER = {"gpu_throughput": (gpu_throughput, "bench/results/train_throughput_cuda_h200.json"),
          "gpu_projection": (gpu_projection, "bench/results/paper_projection_cuda_h200.json"),
          "cpu_throughput": (cpu_throughput, "bench/results/train_throughput_cpu.json"),
          "cpu_pack_choice": (cpu_pack_choice, "bench/results/cpu_pack_choice.json"),
          "graph_extraction": (graph_extraction, "bench/results/graph_extraction_cpu.json"),
          "reference_graphs": (reference_graphs, "bench/results/reference_graphs.json"),
          "quickstart": (quickstart, "bench/results/quickstart_cpu.json")}
RENDER.update(DEFAULT_STUDY_RENDER)  # README's CMD and modularity findings of the default study


def _evidence(name: str):
    """A block of README's prediction section: its renderer is in scripts/evidence.py (one summary.json)."""
    def render(src: Source) -> str:
        from scripts.evidence import README_BLOCKS
        return README_BLOCKS[name](src)
    return render


RENDER.update({name: (_evidence(name), "evidence/digits_evidence/summary.json") for name in
               ("prediction_study", "prediction_metrics", "prediction_paired", "prediction_classification",
                "prediction_findings")})


def render_block(name: str, src: Source) -> str:
    """One block's text; a field the renderer reads but the JSON lacks stops with the file and the field."""
    try:
        return RENDER[name][0](src)
    except KeyError as err:
        raise SourceError(f"{src.rel}: field {err} missing") from None


def render_readme(text: str, load=load_source) -> str:
    """README text with every generated block rewritten; an unknown or unclosed block stops."""
    opened = len(re.findall(r"<!-- generated: ", text))
    names = [mt["name"] for mt in BLOCK.finditer(text)]
    if opened != len(names) or text.count("<!-- /generated -->") != len(names):
        raise SourceError("README: a <!-- generated: NAME --> block is not closed by <!-- /generated -->")
    if unknown := sorted(set(names) - set(RENDER)):
        raise SourceError(f"README: unknown generated blocks {unknown}; known: {sorted(RENDER)}")
    return BLOCK.sub(lambda mt: mt[1] + render_block(mt["name"], load(RENDER[mt["name"]][1])) + "\n" + mt[4], text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 and print a diff where README differs")
    ap.add_argument("--readme", type=Path, default=REPO / "README.md")
    a = ap.parse_args(argv)
    old = a.readme.read_text()
    new = render_readme(old)
    if a.check:
        diff = list(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "README.md", "generated"))
        sys.stdout.writelines(diff)
        return 1 if diff else 0
    if new != old:
        a.readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
