"""The benchmark run: the main table (seed loop, single, packed), variants (precision, pack layout, compile) at the largest pack,
the CPU pack check and the projection, written to JSON after every measurement."""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import torch

from netdyn.data import load_dataset
from netdyn.train import member_memory_bytes

from .common import OverTime, ResumeRefused, cleanup, is_oom, loadavg, now, reason
from .data import measure_seed_loop, md5_check_is_exists, write_cifar10
from .project import describe, project
from .report import (WHAT_IS_TIMED, device_peaks, evaluate_goals, finish_ratios, load_goals, machine_info,
                     write_json)
from .trainer import ARCHS, HAS_PRECISION, LEARNING_RATES, bench_specs, measure_trainer, train_flops_per_image


class Recorder:
    """The result dict, its JSON file (rewritten after every change) and the log line of each record."""

    def __init__(self, result: dict, out: Path | None, log, peaks: dict | None, goals: dict):
        self.result, self.out, self.log, self.peaks, self.goals = result, out, log, peaks, goals
        self.records, self.skipped = result["records"], result["skipped"]
        self.start = now()

    def write(self) -> None:
        self.result["elapsed_s"] = now() - self.start
        self.result["machine"]["loadavg_now"] = loadavg()
        write_json(self.result, self.out)

    def add(self, rec: dict) -> None:
        self.records.append(rec)
        finish_ratios(self.records, self.peaks)
        self.result["goals"] = evaluate_goals(self.records, self.result["machine"]["device_name"], self.goals)
        self.write()
        mem = rec.get("peak_mem_per_member_bytes")
        self.log(f"  {rec['loop'] + ('+' + rec['variant'] if rec.get('variant') else ''):<20} {rec['arch']:>5} "
                 f"w{rec['width']} K={rec['k']:<3} {rec['images_per_s_per_model']:>10.0f} img/s/model "
                 f"{rec['images_per_s_total']:>11.0f} img/s total"
                 + (f"  peak {mem / 2**20:.0f} MiB/member" if mem else ""))

    def skip(self, loop: str, arch: str, width: int, k: int, why: str) -> None:
        self.skipped.append({"loop": loop, "arch": arch, "width": width, "k": k, "reason": why})
        self.write()
        self.log(f"  skipped {loop} {arch} w{width} K={k}: {why}")

    def attempt(self, loop: str, arch: str, width: int, k: int, measure, strict: bool, budget_word: str) -> dict | None:
        """Run `measure()`; a deadline, an OOM or (unless strict) an error becomes a skip record."""
        try:
            return measure()
        except OverTime:
            self.skip(loop, arch, width, k, f"{budget_word} spent mid-measurement")
        except Exception as err:
            if strict and not is_oom(err):
                raise
            cleanup(torch.device(self.result["settings"]["device"]))
            self.skip(loop, arch, width, k, reason("out of memory" if is_oom(err) else "error", err))
        return None


def _main_table(rec: Recorder, dev, archs, widths, ks, train_d, test_d, info, root, *, workers, budget_end, grace,
                seed_loop, profile_steps, repeats, strict) -> None:
    for width in widths:  # width-major: both architectures at the first width come first
        for arch in archs:
            spec1 = bench_specs(arch, width, 1)[0]
            common = {"arch": arch, "arch_label": ARCHS[arch]["arch_label"], "width": width,
                      "train_flops_per_image": train_flops_per_image(spec1, info)}
            est = int(member_memory_bytes(spec1, info))
            loops = ([("seed_loop", 1)] if seed_loop else []) + [("single" if k == 1 else "batched", k) for k in ks]
            for loop, k in loops:
                if now() > budget_end:
                    rec.skip(loop, arch, width, k, "time budget spent")
                    continue
                if loop == "seed_loop":
                    r = rec.attempt(loop, arch, width, k, lambda: measure_seed_loop(
                        ARCHS[arch], width, root, dev, workers, budget_end + grace, repeats=repeats),
                        strict, "time budget")
                    if r:
                        rec.add({"loop": loop, **common, **r})
                    continue
                if dev.type == "cuda" and k * est > torch.cuda.mem_get_info(dev)[0]:
                    rec.skip(loop, arch, width, k, f"memory: pack_plan's estimate {k} x {est / 2**20:.0f} MiB "
                                                   "exceeds the free memory")
                    continue
                specs = bench_specs(arch, width, k)
                r = rec.attempt(loop, arch, width, k, lambda: measure_trainer(
                    specs, train_d, test_d, info, dev, budget_end + grace, profile_steps=profile_steps,
                    repeats=repeats), strict, "time budget")
                if r:
                    rec.add({"loop": loop, **common, "precision": specs[0].precision, "est_member_memory_bytes": est,
                             **r})


def parse_variant(name: str) -> dict:
    """A variant of the trainer's settings, e.g. ``bf16``, ``per_member_channels_last``, ``compile`` or
    ``bf16+per_member+compile``: '+'-joined training.precision / training.pack_layout values and ``compile``."""
    from netdyn.config import PRECISIONS
    from netdyn.packed import LAYOUTS, uses_side_streams

    out = {}
    for part in name.split("+"):
        key = "precision" if part in PRECISIONS else "layout" if part in LAYOUTS else "compile" \
            if part == "compile" else None
        if key is None or key in out:
            raise ValueError(f"variant {name!r}: {part!r} is not a precision ({', '.join(PRECISIONS)}), a pack layout "
                             f"({', '.join(LAYOUTS)}) or 'compile', or repeats one")
        out[key] = part if key != "compile" else True
    if out.get("compile") and uses_side_streams(out.get("layout")):
        raise ValueError(f"variant {name!r}: a compiled pack runs {out['layout']} as per_member (no side streams)")
    return out


def _variants(rec: Recorder, dev, archs, widths, variants, train_d, test_d, info, *, budget_s, grace,
              repeats, strict) -> None:
    """Re-measure the largest pack measured per (arch, width) with each of `variants` (see parse_variant)."""
    end = now() + budget_s
    for name in variants:
        v = parse_variant(name)
        options = {k: v[k] for k in ("layout", "compile") if k in v}
        for width in widths:
            for arch in archs:
                done = [r for r in rec.records if r["loop"] == "batched" and not r.get("variant")
                        and r["arch"] == arch and r["width"] == width]
                if not done:
                    continue
                base = max(done, key=lambda r: r["k"])
                if "precision" in v and not HAS_PRECISION:
                    rec.skip("batched+" + name, arch, width, base["k"], "RunSpec has no precision field")
                    continue
                if now() > end:
                    rec.skip("batched+" + name, arch, width, base["k"], "variant budget spent")
                    continue
                specs = bench_specs(arch, width, base["k"], precision=v.get("precision"))
                r = rec.attempt("batched+" + name, arch, width, base["k"], lambda: measure_trainer(
                    specs, train_d, test_d, info, dev, end + grace, repeats=repeats, options=options),
                    strict, "variant budget")
                applied = r and {k: r["trainer_" + k] for k in v}
                if r and applied != v:
                    rec.skip("batched+" + name, arch, width, base["k"], f"PackTrainer applied {applied}, not {v}")
                elif r:
                    rec.add({"loop": "batched", "variant": name, "precision": r["trainer_precision"],
                             **{kk: base[kk] for kk in ("arch", "arch_label", "width", "train_flops_per_image")}, **r,
                             "speedup_vs_base": r["images_per_s_total"] / base["images_per_s_total"]})


def cpu_pack_check(dev: torch.device, archs, ks, log=print, repeats: int = 1) -> dict:
    """Is packing slower per model than training alone on this device? On the default study's data (sklearn
    digits at 16x16, crop padding 2, no flip), K in `ks`, width 1, epoch-mode timing."""
    train, test, info = load_dataset("digits", image_size=16)
    train_d, test_d = train.to(dev), test.to(dev)
    rows = []
    for arch in archs:
        base = None
        for k in ks:
            specs = bench_specs(arch, 1, k, dataset="digits", image_size=16, crop_padding=2, flip=False, tag="-digits")
            r = measure_trainer(specs, train_d, test_d, info, dev, math.inf, repeats=repeats)
            base = r["images_per_s_per_model"] if k == 1 else base
            row = {"arch": arch, "width": 1, "k": k, "images_per_s_per_model": r["images_per_s_per_model"],
                   "images_per_s_total": r["images_per_s_total"], "seconds": r["seconds"],
                   "images_timed_per_model": r["images_timed_per_model"],
                   "per_model_vs_k1": r["images_per_s_per_model"] / base if base else None}
            rows.append(row)
            log(f"  pack check (digits 16x16) {arch:>5} K={k:<2} {row['images_per_s_per_model']:>9.0f} img/s/model "
                f"({row['per_model_vs_k1']:.2f}x K=1)")
    slower = {arch: all(r["per_model_vs_k1"] < 1.0 for r in rows if r["arch"] == arch and r["k"] > 1) for arch in archs}
    return {"data": "sklearn digits via netdyn.data.load_dataset('digits', image_size=16): "
                    f"{len(train)} train / {len(test)} test images, crop padding 2, no flip",
            "device": str(dev), "rows": rows, "packing_slower_per_model": slower,
            "conclusion": "packing costs per-model speed on this device" if all(slower.values())
            else "packing does not cost per-model speed for every architecture here"}


def _earlier_projection(path: Path, device_name: str) -> dict:
    """The projection of an earlier result file, refused (naming the file) unless it has one and was measured on
    a device named `device_name` (this one's); checked before anything is measured."""
    try:
        earlier = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ResumeRefused(f"--project-resume {path}: cannot read it ({err})") from None
    if "projection" not in earlier:
        raise ResumeRefused(f"--project-resume {path}: holds no projection")
    there = earlier.get("machine", {}).get("device_name")
    if there != device_name:
        raise ResumeRefused(f"--project-resume {path}: measured on {there!r}, this device is {device_name!r}")
    created = earlier.get("created", "?")
    commit = earlier.get("machine", {}).get("commit") or "no commit recorded"
    return {"projection": earlier["projection"], "source": f"{Path(path).name} ({created}, {commit})"}


def run_benchmark(*, device: str = "cpu", archs=("lenet", "vgg"), widths=(1,), ks=(1, 4), images: int = 1500,
                  test_images: int = 256, workers: int | None = None, table: bool = True,
                  time_budget: float | None = None, config_grace: float = 60.0, seed_loop: bool = True,
                  variants=(), variant_budget: float = 90.0, pack_check: bool | None = None,
                  pack_check_ks=(1, 4, 8), project_config=None, project_budget: float = 180.0,
                  project_precision: str | None = None, project_blocks=None, project_datasets=None,
                  proj_warmup: int = 5, proj_steps: int = 30,
                  proj_eval_images: int = 2048, profile_steps: int = 0, cudnn_benchmark: bool = True,
                  out: Path | None = None, machine_label: str | None = None, log=print,
                  extra_settings: dict | None = None, repeats: int = 1, strict: bool = False,
                  project_resume: Path | None = None) -> dict:
    """Run the benchmark; returns (and, with `out`, keeps writing) the JSON-ready result. `project_resume`: an
    earlier result file of the same projection on the same device (see project.project's `earlier`)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda, but torch.cuda.is_available() is False")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = cudnn_benchmark  # as netdyn.train.train_runs sets it (default on)
    workers = (4 if dev.type == "cuda" else 1) if workers is None else workers
    pack_check = (dev.type == "cpu" and table) if pack_check is None else pack_check
    ks = sorted(set(int(k) for k in ks) | {1})
    goals = load_goals()
    machine = machine_info(dev, machine_label)
    earlier = _earlier_projection(project_resume, machine["device_name"]) if project_resume else None
    peaks = device_peaks(machine["device_name"], goals) if dev.type == "cuda" else None
    result = {
        "benchmark": "bench/train_throughput.py", "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine,
        "settings": {"device": device, "archs": list(archs), "widths": list(widths), "ks": ks, "images": images,
                     "test_images": test_images, "batch_size": 128, "repeats": repeats, "seed_loop_workers": workers,
                     "seed_loop_pin_memory": dev.type == "cuda", "time_budget_s": time_budget,
                     "config_grace_s": config_grace, "profile_steps": profile_steps,
                     "cudnn_benchmark": torch.backends.cudnn.benchmark if dev.type == "cuda" else None,
                     "variants": list(variants), "device_peaks_tflops": peaks,
                     "data": "synthetic CIFAR-10-format files (seeded uint8, 10 classes); seed loop via "
                             "torchvision.datasets.CIFAR10, trainer via netdyn.data.load_dataset('cifar10')",
                     "members": "seeds 1000+i, learning rates cycling " + str(LEARNING_RATES) + ", dropout 0, "
                                "momentum 0.9, crop padding 4, flip; precision: RunSpec's default, pack layout: "
                                "the device's default (netdyn.packed.default_layout), eager, unless a variant",
                     "what_is_timed": WHAT_IS_TIMED, **(extra_settings or {})},
        "records": [], "skipped": [], "anchors": goals["anchors"],
    }
    rec = Recorder(result, out, log, peaks, goals)
    log(f"device {dev} ({machine['device_name']}), torch {torch.__version__}, {machine['cpu_count']} CPUs, "
        f"{torch.get_num_threads()} torch threads, load {machine['loadavg_start']}")
    start = now()
    budget_end = start + time_budget if time_budget else math.inf
    if table:
        with tempfile.TemporaryDirectory(prefix="netdyn-bench-data-") as tmp:
            root = Path(tmp)
            write_cifar10(root, images, test_images, seed=0)
            with md5_check_is_exists():
                train, test, info = load_dataset("cifar10", root)
            train_d, test_d = train.to(dev), test.to(dev)
            result["settings"]["n_train"], result["settings"]["n_test"] = len(train_d), len(test_d)
            _main_table(rec, dev, archs, widths, ks, train_d, test_d, info, root, workers=workers,
                        budget_end=budget_end, grace=config_grace, seed_loop=seed_loop, profile_steps=profile_steps,
                        repeats=repeats, strict=strict)
            if variants:
                _variants(rec, dev, archs, widths, variants, train_d, test_d, info,
                          budget_s=variant_budget, grace=config_grace, repeats=repeats, strict=strict)
            del train_d, test_d
            cleanup(dev)
    if pack_check:
        result["pack_check"] = cpu_pack_check(dev, archs, pack_check_ks, log=log, repeats=repeats)
        rec.write()
    if project_config is not None:
        g = goals["goals"]
        log(f"projection of {project_config} on {dev} (budget {project_budget:.0f} s)")

        def keep(p: dict) -> None:
            result["projection"] = {**p, "goal_hours": g["paper_grid_hours_one_gpu"],
                                    "goal_device": g["applies_to_device"],
                                    "meets_goal": bool(p["complete"] and p["total_hours"] <= g["paper_grid_hours_one_gpu"])}
            rec.write()

        keep(project(project_config, dev, budget_s=project_budget, warmup=proj_warmup, steps=proj_steps,
                     eval_images=proj_eval_images, precision=project_precision, blocks=project_blocks,
                     datasets=project_datasets, log=log, grace_s=config_grace,
                     strict=strict, on_measurement=keep, earlier=earlier and earlier["projection"],
                     earlier_source=earlier and earlier["source"]))
        log(f"  projected total: {describe(result['projection'])}; goal <= {g['paper_grid_hours_one_gpu']} h on one "
            f"{g['applies_to_device']}")
    result["machine"]["loadavg_end"] = loadavg()
    rec.write()
    return result
