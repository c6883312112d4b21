"""What the benchmark writes: machine facts, ratios, goals (from ``bench/goals.yaml``), JSON and a table."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from netdyn.machine import describe

from .common import loadavg

GOALS_FILE = Path(__file__).resolve().parent.parent / "goals.yaml"

WHAT_IS_TIMED = {
    "batched/single": "PackTrainer.fit() with epochs=1+repeats over the N images, one snapshot per epoch; each "
                      "epoch after the first is timed from the end of the previous epoch's snapshot to the end "
                      "of its own (previous epoch's checkpoint + curves.csv of every member, written on the "
                      "trainer's writer thread as in training, the epoch's "
                      "streams, ceil(N/batch) steps, its test evaluation + trajectory rows); the fastest counts. "
                      "Construction and epoch 1 (warm-up) not timed. Clocks are read in TrainerHooks callbacks "
                      "after torch.cuda.synchronize().",
    "seed_loop": "epochs over the N images through DataLoader(shuffle, workers, pin_memory on cuda) with PIL "
                 "transforms, SGD momentum, per-step loss.item() and accuracy .item(); one warm-up epoch, then "
                 "the fastest of `repeats` timed epochs; DataLoader worker start-up included (no persistent "
                 "workers).",
    "projection": "per pack size K: PackTrainer.fit of one epoch of warmup + timed steps on synthetic tensors; "
                  "the timed steps, then that epoch's snapshot (64 test images: mostly the K trajectory rows), "
                  "then its K checkpoints + curves.csv, each timed through TrainerHooks (written in place, not on "
                  "the writer thread: their whole cost, an upper bound); then "
                  "netdyn.train.evaluate on --proj-eval-images test images (after one warm-up call). "
                  "hours = sum over packs of epochs*(steps_per_epoch*t_step + t_checkpoints) + "
                  "n_snapshots*(n_test/eval_rate + t_snapshot_io). Not included: process start, data loading "
                  "per Snakemake job, the partial last batch (counted as full).",
}


def load_goals(path: Path = GOALS_FILE) -> dict:
    return yaml.safe_load(path.read_text())


def device_peaks(device_name: str, goals: dict) -> dict | None:
    """The data-sheet peaks (TFLOP/s by precision) of the first entry whose `match` is in the device name."""
    return next((dict(p) for p in goals["device_peaks_tflops"] if p["match"] in device_name), None)


def machine_info(device: torch.device, label: str | None) -> dict:
    import torchvision

    return {"label": label, **describe(device), "torchvision": torchvision.__version__, "loadavg_start": loadavg()}


def write_json(result: dict, out: Path | None) -> None:
    """Replace `out` atomically, so that a hard stop leaves the last complete version."""
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=float))
    tmp.replace(out)


def _peak_key(r: dict) -> str:
    """fp32 runs on CUDA cores only when TF32 is off, which netdyn's fp32 precision ensures."""
    return r.get("precision") or "fp32"


def finish_ratios(records: list[dict], peaks: dict | None) -> None:
    """Per record: per-model and whole-pack ratios to the seed loop and to the single-run trainer of the
    same (arch, width), achieved TFLOP/s and, where the device's peaks are known, its fraction of the peak."""
    seed = {(r["arch"], r["width"]): r["images_per_s_per_model"] for r in records if r["loop"] == "seed_loop"}
    single = {(r["arch"], r["width"]): r["images_per_s_per_model"] for r in records
              if r["loop"] == "single" and not r.get("variant")}
    for r in records:
        key = (r["arch"], r["width"])
        r["ratio_vs_seed_loop"] = r["images_per_s_per_model"] / seed[key] if key in seed else None
        r["ratio_total_vs_seed_loop"] = r["images_per_s_total"] / seed[key] if key in seed else None
        r["ratio_vs_single"] = r["images_per_s_per_model"] / single[key] if key in single else None
        if "steps_only_images_per_s_per_model" in r and key in seed:
            r["steps_only_ratio_vs_seed_loop"] = r["steps_only_images_per_s_per_model"] / seed[key]
        if r.get("train_flops_per_image"):
            r["achieved_tflops"] = r["images_per_s_total"] * r["train_flops_per_image"] / 1e12
            if peaks and r["loop"] != "seed_loop":
                peak = peaks[_peak_key(r)]
                r["peak_tflops"], r["fraction_of_peak"] = peak, r["achieved_tflops"] / peak


def evaluate_goals(records: list[dict], device_name: str, goals: dict) -> dict:
    """Per (arch, width): the best packed row (any precision) against goals.x_seed_loop_every_arch_width,
    counting every member's images (ratio_total_vs_seed_loop)."""
    g = goals["goals"]
    target = g["x_seed_loop_every_arch_width"]
    best: dict[tuple, dict] = {}
    for r in records:
        if r["loop"] == "batched" and r.get("ratio_total_vs_seed_loop"):
            key = (r["arch"], r["width"])
            if r["ratio_total_vs_seed_loop"] > best.get(key, {}).get("ratio_total_vs_seed_loop", 0):
                best[key] = r
    rows = [{"arch": a, "width": w, "k": r["k"], "precision": r.get("precision"),
             "ratio_total_vs_seed_loop": r["ratio_total_vs_seed_loop"], "met": r["ratio_total_vs_seed_loop"] >= target}
            for (a, w), r in sorted(best.items())]
    return {"source": g["source"], "target_x_seed_loop": target, "applies_to": g["applies_to_device"],
            "judged_here": g["applies_to_device"] in device_name, "best_by_arch_width": rows,
            "met_everywhere": bool(rows) and all(r["met"] for r in rows)}


def _fmt(v, f: str) -> str:
    return f.format(v) if v is not None else "-"


def print_table(result: dict) -> None:
    m = result["machine"]
    print(f"\n{m['device_name']} | {m['cpu_count']} CPUs | {m['torch_threads']} torch threads | torch {m['torch']} | "
          f"N={result['settings'].get('n_train')} images")
    head = f"{'loop':<22}{'arch':>6}{'w':>3}{'K':>5}{'img/s/model':>13}{'img/s total':>13}{'total/seed':>11}" \
           f"{'x single':>9}{'steps-only':>12}{'MiB/member':>11}{'TFLOP/s':>9}{'of peak':>8}"
    print(head)
    print("-" * len(head))
    print("(img/s/model: whole timed epoch incl. per-epoch checkpoints/snapshot; steps-only: its training steps; "
          "total/seed: the pack's img/s over the seed loop's; x single: per-model ratio)")
    for r in result["records"]:
        loop = r["loop"] + ("+" + r["variant"] if r.get("variant") else "")
        mem = r.get("peak_mem_per_member_bytes")
        print(f"{loop:<22}{r['arch']:>6}{r['width']:>3}{r['k']:>5}{r['images_per_s_per_model']:>13,.0f}"
              f"{r['images_per_s_total']:>13,.0f}{_fmt(r.get('ratio_total_vs_seed_loop'), '{:.1f}'):>11}"
              f"{_fmt(r.get('ratio_vs_single'), '{:.2f}'):>9}"
              f"{_fmt(r.get('steps_only_images_per_s_per_model'), '{:,.0f}'):>12}"
              f"{_fmt(mem / 2**20 if mem else None, '{:.0f}'):>11}"
              f"{_fmt(r.get('achieved_tflops'), '{:.3f}'):>9}{_fmt(r.get('fraction_of_peak'), '{:.1%}'):>8}")
    for s in result["skipped"]:
        print(f"skipped: {s['loop']} {s['arch']} w{s['width']} K={s['k']}: {s['reason']}")
    if "pack_check" in result:
        print("\npack check (" + result["pack_check"]["data"] + "):")
        for r in result["pack_check"]["rows"]:
            print(f"  {r['arch']:>5} K={r['k']:<2} {r['images_per_s_per_model']:>9,.0f} img/s/model "
                  f"({r['per_model_vs_k1']:.2f}x K=1)")
    if "projection" in result:
        p = result["projection"]
        print(f"\nprojection of {p['config']} ({p['precision']}) on {p['device']}: {p['runs']} runs")
        for r in p["rows"]:
            rate = ", ".join(f"K={mm['k']}: {mm['images_per_s_per_model']:,.0f} {mm.get('trainer_layout', '')}"
                             f"{'+compile' if mm.get('trainer_compile') else ''}" for mm in r["measured"])
            print(f"  {r['arch']:>9} {r['dataset']:>12} w{r['width']}  packs {sorted(set(r['pack_sizes']), reverse=True)}"
                  f"  img/s/model [{rate}]  {r['hours']:.3f} h")
        print(f"  total {p['total_hours']:.2f} h ({'complete' if p['complete'] else 'INCOMPLETE'}, "
              f"{p['estimated_packs']} packs estimated, see each block's source); goal <= {p['goal_hours']} h on one "
              f"{p['goal_device']}: {'met' if p['meets_goal'] else 'not met'}")
        for s in p["skipped"]:
            print(f"  skipped {s['combo']} K={s['k']}: {s['reason']}")
