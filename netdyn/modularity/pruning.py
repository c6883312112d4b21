"""The pruning check (methods.md §3): are the plateau layers removable? Retrain the network without them
(pruned) and, as a control, without as many layers from outside the plateau, beside the full network
(original), each once per seed, with the grid's training settings; compare final test accuracy.

One job per configured architecture × data set (rule ``pruning``, ``modularity.pruning`` in the config),
after the modularity stage has written ``tables/modularity_plateaus.csv``. The rule, stated once:

1. **Setting.** Among the grid's runs of that architecture × data set at ``modularity.pruning.width`` (null:
   the smallest grid width), the hyperparameter setting (learning rate, dropout, weight decay) with the best
   mean final test accuracy over its complete runs (``tables/runs.csv``; ties: the first in grid order).
2. **Pruned.** The plateau table's candidate layers (read-out names of the full network; the table's rule
   runs on the mean curve of the architecture × data set's runs that trained, over all widths) that the model
   builder can drop (:func:`droppable_layers`: VGG convs; ResNet blocks with an identity shortcut), as
   ``build_model(drop=...)`` indices. Candidates it cannot drop (linear layers, the ResNet stem, blocks that
   change the shape) stay and are named in the job's ``note``.
3. **Control.** As many layers, drawn without replacement from the droppable layers that are *not*
   candidates, by ``numpy.random.default_rng(control_seed)`` over them in ascending index order
   (:func:`control_layers`); one draw per architecture × data set, the same for every seed.
4. **Runs.** For each seed in ``modularity.pruning.seeds``: the original is the setting's grid run with that
   seed (the grid's run id with ``-s<seed>``; where that id is a grid run, it is that finished run), pruned
   and control are the original's spec with ``drop`` set, run id ``<original id>-drop<i>.<j>...``. All are
   trained by :func:`netdyn.train.train_runs` into the study's run directories (same trainer, same
   trajectory store; finished runs are kept, unfinished ones resumed).

No droppable candidate (or no plateau row for the architecture × data set): nothing is trained and the
job's record says why (``note``). Fewer non-candidate droppable layers than candidates: pruned runs but no
control, said in ``note``.

Selection effect: the setting is chosen by the grid runs' accuracy, so a grid seed among the pruning seeds
enters as an original whose accuracy was selected for; the default seeds (1, 2, 3) avoid the grid's seed 0.

The job's record (:func:`run_pruning`, one JSON file) is what ``netdyn.modularity.pruning_stats`` tabulates.
Heavy imports (torch, the trainer) happen inside the functions that need them: the config checks import
this module for ``PRUNABLE_FAMILIES`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import SAFE_NAME, RunSpec

PRUNABLE_FAMILIES = ("vgg", "resnet")  # build_model(drop=...) supports these only
DROP_SUFFIX = "-drop"

log = logging.getLogger(__name__)


def _info(spec: RunSpec):
    from ..data import dataset_info

    return dataset_info(spec.dataset, spec.image_size)


def build_spec_model(spec: RunSpec):
    """The network a run trains (PyTorch's default init, not seeded): ``build_model`` as training calls it."""
    from ..member import model_kwargs
    from ..models import build_model

    return build_model(**model_kwargs(spec, _info(spec)))


def n_params(spec: RunSpec) -> int:
    """Trainable parameters of the run's network (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in build_spec_model(spec).parameters())


def droppable_layers(spec: RunSpec) -> dict[str, int]:
    """Read-out layer name (as ``netdyn.modularity.readout.default_layers`` names it on the full network) ->
    ``drop`` index, for every layer ``build_model`` can leave out alone: VGG's convs (numbered in forward
    order), ResNet's residual blocks with an identity shortcut. Empty for other families."""
    if spec.arch not in PRUNABLE_FAMILIES:
        return {}
    from torch import nn

    from ..member import model_kwargs
    from ..models import build_model
    from .readout import _is_residual_block

    kwargs = model_kwargs(replace(spec, drop=()), _info(spec))
    full = build_model(**kwargs)
    if spec.arch == "vgg":
        units = [name for name, m in full.named_modules() if isinstance(m, nn.Conv2d)]
    else:
        units = [name for name, m in full.named_modules() if _is_residual_block(m)]
    out = {}
    for index, name in enumerate(units):
        try:
            build_model(**{**kwargs, "drop": [index]})
        except ValueError:
            continue  # e.g. a ResNet block that changes channels or stride
        out[name] = index
    return out


def control_layers(candidates: Sequence[int], droppable: Sequence[int], seed: int) -> tuple[int, ...] | None:
    """The control's drop indices: ``len(candidates)`` of the ``droppable`` indices outside ``candidates``,
    drawn without replacement by ``numpy.random.default_rng(seed)`` from them in ascending order; sorted.
    None when fewer than that many lie outside (no control possible); () for no candidate."""
    chosen = set(int(i) for i in candidates)
    if not chosen <= set(int(i) for i in droppable):
        raise ValueError(f"candidates {sorted(chosen)} are not all droppable ({sorted(droppable)})")
    pool = sorted(set(int(i) for i in droppable) - chosen)
    if len(pool) < len(chosen):
        return None
    if not chosen:
        return ()
    picked = np.random.default_rng(seed).choice(pool, size=len(chosen), replace=False)
    return tuple(sorted(int(i) for i in picked))


def with_seed(spec: RunSpec, seed: int) -> RunSpec:
    """The grid's run of `spec`'s grid point with another seed: seed and the ``-s<seed>`` part of the id."""
    head, sep, tail = spec.run_id.rpartition(f"-s{spec.seed}")
    if not sep or (tail and not (tail.startswith("-") and tail[1:].isalnum())):
        raise ValueError(f"run id {spec.run_id!r} does not end in -s{spec.seed}[-<precision>]")
    return replace(spec, seed=int(seed), run_id=f"{head}-s{int(seed)}{tail}")


def dropped_id(run_id: str, drop: Sequence[int]) -> str:
    """``<run id>-drop3.4``: a run of `run_id`'s settings without layers `drop` (a safe name)."""
    out = f"{run_id}{DROP_SUFFIX}{'.'.join(str(int(i)) for i in sorted(drop))}"
    if not drop or not SAFE_NAME.match(out):
        raise ValueError(f"no safe run id for {run_id!r} without layers {drop!r}")
    return out


def choose_setting(grid: Sequence[RunSpec], runs: pd.DataFrame) -> RunSpec | None:
    """The grid run (first seed in grid order) of the setting with the best mean final test accuracy over its
    complete runs in ``runs`` (tables/runs.csv); None when none of `grid` completed."""
    ids = {s.run_id for s in grid}
    done = runs[runs["run_id"].isin(ids) & (runs["status"] == "complete")].dropna(subset=["final_test_acc"])
    if done.empty:
        return None
    acc = dict(zip(done["run_id"], done["final_test_acc"]))
    by_setting: dict[tuple, list[RunSpec]] = {}
    for s in grid:
        by_setting.setdefault((s.learning_rate, s.dropout, s.weight_decay), []).append(s)
    best, best_mean = None, -np.inf
    for members in by_setting.values():  # insertion order = grid order: the first of equals wins
        scores = [acc[s.run_id] for s in members if s.run_id in acc]
        if scores and np.mean(scores) > best_mean:
            best, best_mean = members[0], float(np.mean(scores))
    return best


def _plateau_row(plateaus: pd.DataFrame, arch_label: str, dataset: str) -> pd.Series | None:
    rows = plateaus[(plateaus["arch_label"] == arch_label) & (plateaus["dataset"] == dataset)]
    return None if rows.empty else rows.iloc[0]


def _names(cell) -> list[str]:
    return [] if pd.isna(cell) or cell == "" else str(cell).split(";")


def pruning_plan(grid: Sequence[RunSpec], runs: pd.DataFrame, plateaus: pd.DataFrame, *, arch_label: str,
                 dataset: str, seeds: Sequence[int], control_seed: int = 0) -> dict:
    """What one pruning job trains (rule of the module docstring). ``grid``: the grid's runs of this
    architecture × data set at the pruning width; ``runs``: tables/runs.csv; ``plateaus``:
    tables/modularity_plateaus.csv. Returns a JSON-able record; ``specs`` lists (variant, RunSpec dict)."""
    plan = {"arch_label": arch_label, "dataset": dataset, "setting": None, "candidate_layers": [],
            "dropped_layers": [], "drop": [], "control_layers": [], "control_drop": [], "control_seed": control_seed,
            "note": "", "specs": []}
    setting = choose_setting(grid, runs)
    if setting is None:
        plan["note"] = "no complete grid run of this architecture x data set at the pruning width"
        return plan
    plan["setting"] = setting.run_id
    row = _plateau_row(plateaus, arch_label, dataset)
    if row is None:
        plan["note"] = "no plateau row (no run that trained enters plateau detection)"
        return plan
    candidates = _names(row["candidate_layers"])
    plan["candidate_layers"] = candidates
    layers = droppable_layers(setting)
    names_of = {i: name for name, i in layers.items()}
    drop = sorted(layers[n] for n in candidates if n in layers)
    kept = [n for n in candidates if n not in layers]
    notes = [f"candidates the builder cannot drop, kept: {';'.join(kept)}"] if kept else []
    if not drop:
        plan["note"] = "; ".join(["no droppable plateau candidate: nothing pruned"] + notes)
        return plan
    control = control_layers(drop, sorted(layers.values()), control_seed)
    if control is None:
        notes.append(f"only {len(layers) - len(drop)} droppable layer(s) outside the plateau for {len(drop)} "
                     "dropped: no control")
    plan.update(drop=drop, dropped_layers=[names_of[i] for i in drop], control_drop=list(control or []),
                control_layers=[names_of[i] for i in control or ()], note="; ".join(notes))
    for seed in seeds:
        original = with_seed(setting, seed)
        plan["specs"].append(("original", original.to_dict()))
        plan["specs"].append(("pruned", replace(original, run_id=dropped_id(original.run_id, drop),
                                                drop=tuple(drop)).to_dict()))
        if control:
            plan["specs"].append(("control", replace(original, run_id=dropped_id(original.run_id, control),
                                                     drop=control).to_dict()))
    return plan


def run_pruning(plan: dict, out_dir: str | Path, *, device: str = "cpu", data_root: str | Path = "data",
                download: bool = False, study: dict | None = None, **job) -> dict:
    """Train the plan's runs (``netdyn.train.train_runs`` with the `job` options of netdyn.config.JOB_KEYS:
    finished runs kept, unfinished resumed) and return
    the job's record: the plan without ``specs``, plus ``runs`` (per run: run_id, variant, seed, drop,
    dropped_layers, n_params, status, final_test_acc)."""
    from ..train import train_runs

    specs = [(variant, RunSpec.from_dict(d)) for variant, d in plan["specs"]]
    log.info("%s x %s: setting %s; candidates %s; pruned drops %s, control drops %s; %d run(s)%s",
             plan["arch_label"], plan["dataset"], plan["setting"], plan["candidate_layers"], plan["dropped_layers"],
             plan["control_layers"], len(specs), f" ({plan['note']})" if plan["note"] else "")
    results = train_runs([s for _, s in specs], out_dir, device=device, data_root=data_root, download=download,
                         study=study, **job) if specs else []
    layer_names = {**dict(zip(plan["drop"], plan["dropped_layers"])),
                   **dict(zip(plan["control_drop"], plan["control_layers"]))}
    record = {k: v for k, v in plan.items() if k != "specs"}
    record["runs"] = [{"run_id": s.run_id, "variant": variant, "seed": s.seed, "drop": list(s.drop),
                       "dropped_layers": [layer_names[i] for i in s.drop], "n_params": n_params(s),
                       "status": r["status"], "final_test_acc": r["final_test_acc"]}
                      for (variant, s), r in zip(specs, results)]
    return record
