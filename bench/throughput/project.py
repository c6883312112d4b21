"""Projected wall time of training every run of a study config on this device, one Snakemake job at a time
(the workflow asks for resources gpu=1 per training job).

For each (arch, data set, width): runs -> training groups (``netdyn.config.group_size`` for this device) ->
packs (``netdyn.train.pack_plan`` with the config's ``pack`` setting, then at most MAX_PACK members). Each
distinct pack size K is timed with :func:`.trainer.measure_steps` on synthetic tensors of the data set's real
shape (fashionmnist: 1x32x32 at image_size 32; no files), in the pack layout training would choose
(``training.pack_layout``; auto: ``netdyn.plan.choose_layout``'s probe steps, timed within the budget and
recorded) and compiled where ``training.compile`` says so. A pack costs
``epochs * (steps_per_epoch * t_step + t_checkpoints) + n_snapshots * (n_test / eval_rate + t_snapshot_io)``.
When the budget runs out, a pack size is estimated from the nearest measured K of the same
(arch, data set, width), else from the same (arch, width) on the other data set, else bounded from above
by the nearest wider width of the architecture (see :func:`_estimate`); such rows say so.
"""

from __future__ import annotations

import copy
import math

import torch

from netdyn.config import RunSpec, expand_grid, group_size, training_groups
from netdyn.data import dataset_info
from netdyn.train import choose_layout, pack_plan, snapshot_steps

from .common import OverTime, ResumeRefused, cleanup, is_oom, now, reason
from .trainer import measure_steps, train_flops_per_image

MAX_PACK = 128


def _fill_schema_defaults(schema: dict, config: dict) -> None:
    """The schema's property defaults, filled in where the config leaves a key out -- what the workflow's
    validation does (snakemake.utils.validate(set_default=True)); used only where jsonschema/snakemake are
    not installed (a bare GPU image)."""
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        if isinstance(config.get(key), dict):
            _fill_schema_defaults(sub, config[key])


def load_study(config, precision: str | None = None) -> tuple[dict, str]:
    """A study config (path or dict) with defaults filled and semantic checks run; how it was validated.
    `precision` overrides training.precision; then the stages after training (cmd, modularity) are left out,
    since their run-id patterns name the runs of the config's own precision (another one appends -<precision>
    to every run id)."""
    import yaml

    from netdyn.config import check_semantics, load_schema, validate_config

    cfg = copy.deepcopy(config) if isinstance(config, dict) else yaml.safe_load(open(config))
    if precision:
        cfg.setdefault("training", {})["precision"] = precision
        for stage in ("cmd", "modularity"):
            cfg.pop(stage, None)
    try:
        return validate_config(cfg), "netdyn.config.validate_config"
    except ImportError as err:  # no jsonschema / snakemake here
        _fill_schema_defaults(load_schema(), cfg)
        return check_semantics(cfg), f"schema defaults + check_semantics only ({err.name} not installed)"


def _plan(cfg: dict, device: torch.device) -> dict[tuple, dict]:
    """(arch, data set, width) -> its packs, data set facts and FLOPs per image, as training would form them."""
    runs = expand_grid(cfg)
    dev_kind = "cuda" if device.type == "cuda" else "cpu"
    combos: dict[tuple, dict] = {}
    for members in training_groups(runs, group_size(cfg, dev_kind)).values():
        s = members[0]
        combos.setdefault((s.arch_label, s.dataset, s.width), {"groups": []})["groups"].append(members)
    for c in combos.values():
        s = c["groups"][0][0]
        info = dataset_info(s.dataset, s.image_size)
        # the data set occupies the device while pack_plan reads the free memory, as in train_runs
        train = torch.empty(info.n_train, info.in_channels, info.image_size, info.image_size, device=device)
        try:
            c["packs"] = [p[i:i + MAX_PACK] for g in c["groups"]
                          for p in pack_plan(g, info, device, cfg["training"].get("pack", "auto"), {})
                          for i in range(0, len(p), MAX_PACK)]
        finally:
            del train
            cleanup(device)
        c["info"], c["flops"] = info, train_flops_per_image(s, info)
    return combos


def _estimate(results: dict, key: tuple, k: int):
    """The measurement a pack of K is costed with, a scale for its step time, and where it came from.
    Conservative: a smaller pack is assumed to take as long per step as the measured one, a larger pack
    proportionally longer (a pack's total img/s does not fall as it grows). Without a measurement of the
    same (arch, width), the nearest wider width of the architecture gives an upper bound (a narrower
    net's step, snapshot and checkpoint are no slower at the same K)."""
    if (key, k) in results:
        return results[(key, k)], 1.0, "measured"
    arch, dataset, width = key
    cands = sorted((ck != key, abs(kk - k), ck, kk) for (ck, kk) in results
                   if ck == key or (ck[0] == arch and ck[2] == width))
    if cands:
        _, _, ck, kk = cands[0]
        return results[(ck, kk)], max(1.0, k / kk), f"estimated from K={kk}" + ("" if ck == key else f" on {ck[1]}")
    wider = sorted((ck[2], ck[1] != dataset, abs(kk - k), ck, kk) for (ck, kk) in results
                   if ck[0] == arch and ck[2] > width)
    if not wider:
        return None, 1.0, "not measured"
    *_, ck, kk = wider[0]
    return (results[(ck, kk)], max(1.0, k / kk),
            f"upper bound from w={ck[2]} K={kk}" + ("" if ck[1] == dataset else f" on {ck[1]}"))


def _block_row(key: tuple, c: dict, results: dict) -> dict:
    info, packs = c["info"], c["packs"]
    s0: RunSpec = packs[0][0]
    steps_per_epoch = math.ceil(info.n_train / s0.batch_size)
    n_snap = 1 + sum(len(snapshot_steps(s0, steps_per_epoch, e)) for e in range(1, s0.epochs + 1))
    hours, sources = 0.0, []
    for p in packs:
        k = len(p)
        rec, scale, src = _estimate(results, key, k)
        if rec is None:
            sources.append({"k": k, "source": src})
            continue
        per_member = k / rec["k"]
        train_s = s0.epochs * (steps_per_epoch * rec["step_seconds"] * scale + rec["checkpoint_seconds"] * per_member)
        eval_s = n_snap * (info.n_test * scale / rec["eval_images_per_s_per_model"]
                           + rec["snapshot_io_seconds"] * per_member)
        hours += (train_s + eval_s) / 3600
        sources.append({"k": k, "source": src, "train_hours": train_s / 3600, "eval_hours": eval_s / 3600})
    measured = [results[(key, k)] for k in sorted({len(p) for p in packs}) if (key, k) in results]
    return {"arch": key[0], "dataset": key[1], "width": key[2], "runs": sum(len(p) for p in packs),
            "pack_sizes": [len(p) for p in packs], "epochs": s0.epochs, "n_train": info.n_train,
            "n_test": info.n_test, "snapshots_per_run": n_snap, "train_flops_per_image": c["flops"],
            "measured": measured, "packs": sources, "hours": hours,
            "measured_in_full": all(p["source"] == "measured" for p in sources)}


RESUME_FIELDS = ("config", "precision", "pack", "pack_layout", "compile", "warmup_steps", "timed_steps",
                 "eval_images")  # what an earlier projection must share with this one for its measurements to count


def carried_measurements(earlier: dict, current: dict, combos: dict, source: str) -> dict[tuple, dict]:
    """The measurements of the `earlier` projection (its JSON's "projection") that this one keeps instead of
    measuring again: those of a pack size this plan also has. Refused, naming the field, where the two
    projections differ in what was measured or how (RESUME_FIELDS)."""
    for field in RESUME_FIELDS:
        if earlier.get(field) != current[field]:
            raise ResumeRefused(f"--project-resume {source}: its {field} is {earlier.get(field)!r}, "
                                f"this projection's {current[field]!r}")
    kept = {}
    for row in earlier["rows"]:
        key = (row["arch"], row["dataset"], row["width"])
        sizes = {len(p) for p in combos[key]["packs"]} if key in combos else set()
        for m in row["measured"]:
            if m["k"] in sizes:
                kept[(key, m["k"])] = {**m, "carried_from": m.get("carried_from", source)}
    return kept


def project(config, device: torch.device, *, budget_s: float, warmup: int = 5, steps: int = 30,
            eval_images: int = 2048, precision: str | None = None, blocks=None, datasets=None, log=print,
            grace_s: float = 60.0, strict: bool = False, on_measurement=None, earlier: dict | None = None,
            earlier_source: str = "") -> dict:
    """Measure the packs of `config` (largest pack of every block first, then the next sizes; costliest
    first within a rank) until `budget_s` is spent, and cost every pack; see the module docstring.
    `blocks` ("arch_label:width" strings, e.g. "lenet:1") and `datasets` limit which blocks are measured; the
    others are estimated (a block of another data set from the same architecture and width) or left "not
    measured". `earlier`: an earlier projection of the same config on the same kind of device (its JSON's
    "projection"; `earlier_source` names it): its measurements are kept (each says ``carried_from``) and only
    the rest is measured, so that GPU sessions add up. `on_measurement(partial_result)` is called after each
    measurement (to keep a JSON file current)."""
    cfg, validated = load_study(config, precision)
    combos = _plan(cfg, device)
    order = sorted((rank, -c["flops"] * k, key, k) for key, c in combos.items()
                   for rank, k in enumerate(sorted({len(p) for p in c["packs"]}, reverse=True))
                   if (blocks is None or f"{key[0]}:{key[2]}" in blocks) and (datasets is None or key[1] in datasets))
    results: dict[tuple, dict] = {}
    skipped = []
    # what was measured and how (RESUME_FIELDS of it must agree with an earlier projection that is resumed)
    setup = {"config": str(config) if not isinstance(config, dict) else "<dict>",
             "precision": cfg["training"].get("precision"), "pack": cfg["training"].get("pack", "auto"),
             "pack_layout": cfg["training"]["pack_layout"], "compile": cfg["training"]["compile"],
             "warmup_steps": warmup, "timed_steps": steps, "eval_images": eval_images}
    if earlier is not None:
        results.update(carried_measurements(earlier, setup, combos, earlier_source))
        log(f"  kept {len(results)} measurements of {earlier_source}")

    def summary() -> dict:
        rows = [_block_row(key, c, results) for key, c in combos.items()]
        total = sum(r["hours"] for r in rows)
        return {**setup, "config_validated": validated, "device": str(device), "runs": sum(r["runs"] for r in rows),
                "max_pack": MAX_PACK, "data": "synthetic tensors of each data set's real shape (fashionmnist "
                "1x32x32 at the config's image_size 32), no files", "measured_blocks_only": blocks,
                "measured_datasets_only": datasets, "rows": rows, "skipped": skipped, "total_hours": total,
                "hours_measured_blocks": sum(r["hours"] for r in rows if r["measured_in_full"]),
                "blocks_measured_in_full": sum(r["measured_in_full"] for r in rows), "blocks": len(rows),
                "complete": not any(p["source"] == "not measured" for r in rows for p in r["packs"]),
                "estimated_packs": sum(p["source"].startswith(("estimated", "upper bound"))
                                       for r in rows for p in r["packs"]),
                "carried_measurements": sum("carried_from" in rec for rec in results.values())}

    end = now() + budget_s  # planning above is not counted
    for _rank, _cost, key, k in order:
        if (key, k) in results:  # kept from the earlier projection
            continue
        if now() > end:
            skipped.append({"combo": list(key), "k": k, "reason": "projection budget spent"})
            continue
        c = combos[key]
        specs = next(p for p in c["packs"] if len(p) == k)
        try:
            t_start = now()
            layout, probe = choose_layout(specs[0], c["info"], device, k, cfg["training"]["pack_layout"],
                                          compile=cfg["training"]["compile"])
            t_probed = now()
            rec = measure_steps(specs, c["info"], device, end + grace_s, warmup=warmup, steps=steps,
                                eval_images=eval_images, options={"layout": layout, "layout_probe": probe,
                                                                  "compile": cfg["training"]["compile"]})
            if probe:
                rec["layout_probe_ms_per_step"] = {name: t * 1e3 for name, t in probe.items()}
            # what measuring this pack cost (for sizing the next budget): the layout probe, then everything
            rec.update(layout_probe_wall_seconds=t_probed - t_start, measurement_wall_seconds=now() - t_start)
            results[(key, k)] = rec
            log(f"  projection {key[0]:>9} {key[1]:>12} w{key[2]} K={k:<3} {rec['images_per_s_per_model']:>10.0f} "
                f"img/s/model  step {rec['step_seconds'] * 1e3:.2f} ms  ({rec['trainer_layout']}"
                f"{', compiled' if rec['trainer_compile'] else ''}; measured in "
                f"{rec['measurement_wall_seconds']:.1f} s, {rec['layout_probe_wall_seconds']:.1f} s of it the probe)")
        except OverTime:
            skipped.append({"combo": list(key), "k": k, "reason": "projection budget spent mid-measurement"})
        except Exception as err:  # an OOM at the plan's K would also crash real training: keep it visible
            if strict and not is_oom(err):
                raise
            why = "out of memory at pack_plan's K" if is_oom(err) else "error"
            skipped.append({"combo": list(key), "k": k, "reason": reason(why, err)})
        if on_measurement is not None:
            on_measurement(summary())
    return summary()


def describe(p: dict) -> str:
    return (f"{p['total_hours']:.2f} h for {p['runs']} runs ({p['blocks_measured_in_full']} of {p['blocks']} blocks "
            f"measured in full, {p['estimated_packs']} packs estimated; "
            f"{'complete' if p['complete'] else 'INCOMPLETE'})")



def cluster_projection(p: dict, n_gpus: int, *, per: str = "block") -> dict:
    """Wall time of the projected grid ``p`` (a :func:`project` summary) on ``n_gpus`` GPUs through the SLURM
    profile, every job submitted at once and each job on one GPU. ``per="block"``: the workflow's jobs on cuda,
    one per (arch, data set, width) block (``GROUP_SIZE_AUTO["cuda"]`` holds a whole block), its packs trained
    one after another; ``per="pack"``: one job per pack (``training.group_size`` set to the pack size), so a
    block's packs run side by side. Jobs go longest first to the GPU free soonest (LPT list scheduling, within
    4/3 of the best possible); the longest job is the critical path no schedule can beat. Jobs with a pack not
    measured or estimated are left out and counted: then the result is a lower bound."""
    import heapq

    jobs, unknown = [], 0
    for r in p["rows"]:
        packs = r["packs"]
        if any("train_hours" not in k for k in packs):
            unknown += 1 if per == "block" else sum("train_hours" not in k for k in packs)
            packs = [k for k in packs if "train_hours" in k] if per == "pack" else []
        hours = [k["train_hours"] + k["eval_hours"] for k in packs]
        jobs += hours if per == "pack" else ([sum(hours)] if hours else [])
    gpus = [0.0] * n_gpus
    for h in sorted(jobs, reverse=True):
        heapq.heapreplace(gpus, gpus[0] + h)
    return {"n_gpus": n_gpus, "per": per, "jobs": len(jobs), "jobs_not_timed": unknown,
            "hours": max(gpus), "critical_path_hours": max(jobs, default=0.0), "gpu_hours": sum(jobs),
            "lower_bound_only": unknown > 0}
