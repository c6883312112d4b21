"""Study configuration: validation, the grid of runs, run ids and training groups.

The Snakefile and the tests both go through here, so a bad config gets the same message whether it is
met by `snakemake` or by Python. Defaults come from the schema alone (filled by snakemake.utils.validate);
names of architectures and data sets, and which depths exist, from netdyn.models and netdyn.data (imported
inside the functions that need them, so importing this module stays torch-free). Over 300 lines: every
check a config gets before any job is here, so each message names its key the same way.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
GROUP_SIZE_AUTO = {"cpu": 84, "cuda": 128}  # cuda: a whole (arch, data set, width) block of the paper grid (72 runs) in one pack
PRECISIONS = ("fp32", "tf32", "bf16")  # training.precision; what each does: netdyn/precision.py
JOB_KEYS = ("pack", "pack_memory", "pack_layout", "compile")  # training keys of how a job trains, not of what


def job_options(training: dict) -> dict:
    """The keyword arguments of netdyn.train.train_runs a config's (validated) `training` section gives."""
    return {key: training[key] for key in JOB_KEYS}


def default_precision(dtype: str) -> str:
    """`training.precision` when the config leaves it out: what training did before the key existed, so old
    configs keep their numbers and run ids. float32 -> tf32 (TF32 on cuda as before; on the CPU tf32 is
    exact float32); float64 -> fp32 (TF32 never touches float64 arithmetic)."""
    return "fp32" if dtype == "float64" else "tf32"


class ConfigError(ValueError):
    """A config that cannot be run; the message names the key at fault."""


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one training run; its fields become the run's config.json."""

    run_id: str
    arch: str  # architecture family: lenet, alexnet, vgg, resnet
    arch_label: str  # family plus depth/BN, e.g. vgg11bn, resnet8
    depth: int | None
    batchnorm: bool | None
    dataset: str
    image_size: int | None
    width: int
    learning_rate: float
    dropout: float
    weight_decay: float
    seed: int
    epochs: int
    batch_size: int
    momentum: float
    crop_padding: int
    flip: bool
    subepoch_snapshots: int
    subepoch_epochs: int
    dtype: str
    precision: str | None = None  # fp32, tf32 or bf16; None (e.g. a config.json from before the key) -> the default
    # variants of a grid run (variant_runs): left out of to_dict() while at their defaults, so the config.json of
    # every ordinary run reads as it did before these fields existed
    drop: tuple[int, ...] = ()  # layers built without (netdyn.models.build_model(drop=...)): the pruning check
    embedded_cmd: dict | None = None  # embedded CMD settings (netdyn.cmd.embedded); None: plain SGD

    def __post_init__(self):
        if self.precision is None:
            object.__setattr__(self, "precision", default_precision(self.dtype))
        object.__setattr__(self, "drop", tuple(int(i) for i in self.drop))

    def to_dict(self) -> dict:
        d = asdict(self)
        for name, default in VARIANT_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        if "drop" in d:
            d["drop"] = list(d["drop"])  # as JSON holds it, so a stored config.json compares equal
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def pack_key(self) -> tuple:
        """Runs with equal pack keys share one model shape and one data stream and can be packed."""
        return (self.arch_label, self.dataset, self.image_size, self.width, self.epochs, self.batch_size,
                self.crop_padding, self.flip, self.subepoch_snapshots, self.subepoch_epochs, self.dtype,
                self.precision, self.drop)


VARIANT_DEFAULTS = {"drop": (), "embedded_cmd": None}


def load_schema() -> dict:
    with open(SCHEMA_PATH) as f:
        return yaml.safe_load(f)


def _key_path(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def validate_schema(config: dict) -> dict:
    """Check `config` against the JSON schema, then fill in the schema's defaults in place (with
    snakemake.utils.validate, as the workflow does); raise ConfigError naming the key."""
    from jsonschema import Draft202012Validator  # here, so that training jobs on a bare GPU image need not have it
    from snakemake.utils import validate

    errors = sorted(Draft202012Validator(load_schema()).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        path = list(e.absolute_path)
        if e.validator == "required" and isinstance(e.instance, dict):
            # name the missing key itself (training.epochs), not only its parent (training)
            path += [k for k in e.validator_value if k not in e.instance][:1]
        raise ConfigError(f"config key `{_key_path(path)}`: {e.message}")
    validate(config, str(SCHEMA_PATH), set_default=True)
    return config


def check_semantics(config: dict) -> dict:
    """The checks a schema cannot express; each error names the config key."""
    from .data import DATASETS
    from .models import ArchitectureError, architecture_label
    from .packed import uses_side_streams

    if not SAFE_NAME.match(config["study"]):
        raise ConfigError(f"config key `study`: {config['study']!r} is not safe as a path part "
                          "(letters, digits, '.', '_', '-'; starting with a letter or digit)")
    for i, name in enumerate(config["datasets"]):
        if name not in DATASETS:
            raise ConfigError(f"config key `datasets[{i}]`: unknown data set {name!r}; "
                              f"known: {', '.join(DATASETS)}")
    labels = []
    for i, arch in enumerate(config["architectures"]):
        try:
            labels.append(architecture_label(arch["name"], arch.get("depth"), arch.get("batchnorm")))
        except ArchitectureError as e:
            field = "name" if e.argument == "arch" else e.argument
            raise ConfigError(f"config key `architectures[{i}].{field}`: {e.detail}") from None
    dup = {lab for lab in labels if labels.count(lab) > 1}
    if dup:
        raise ConfigError(f"config key `architectures`: {sorted(dup)} listed more than once")
    widths = config["widths"]
    for i, w in enumerate(config["predict"]["train_widths"]):
        if w not in widths:
            raise ConfigError(f"config key `predict.train_widths[{i}]`: width {w} is not in `widths` {widths}")
        if w == max(widths):
            raise ConfigError(f"config key `predict.train_widths[{i}]`: width {w} is the largest width, "
                              "so no larger width is left to transfer to")
    t = config["training"]
    if t["subepoch_snapshots"] > 1 and t["subepoch_epochs"] > t["epochs"]:
        raise ConfigError(f"config key `training.subepoch_epochs`: {t['subepoch_epochs']} exceeds "
                          f"training.epochs ({t['epochs']})")
    t.setdefault("precision", default_precision(t["dtype"]))  # the schema cannot give a dtype-dependent default
    if t["dtype"] == "float64" and t["precision"] != "fp32":
        raise ConfigError(f"config key `training.precision`: {t['precision']} needs float32 weights; with "
                          "training.dtype float64 only fp32 is possible")
    if t["compile"] and uses_side_streams(t["pack_layout"]):
        raise ConfigError(f"config key `training.pack_layout`: {t['pack_layout']} runs convolutions on side streams, "
                          "which a compiled model (training.compile: true) does not use; choose per_member")
    for i, e in enumerate(config["predict"]["windows"] or []):
        if e >= t["epochs"]:
            raise ConfigError(f"config key `predict.windows[{i}]`: an early window of {e} epochs leaves no later "
                              f"epoch to predict (training.epochs is {t['epochs']})")
    _check_feature_sets(config)
    _check_image_sizes(config)
    _check_modularity(config)
    _check_cmd(config)
    return config


def _check_finite(node, path=()) -> None:
    """NaN or infinity anywhere (YAML's .nan / .inf): JSON schema's bounds let NaN through, as every
    comparison with NaN is false."""
    if isinstance(node, dict):
        for k, v in node.items():
            _check_finite(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_finite(v, path + (i,))
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"config key `{_key_path(path)}`: {node} is not a finite number")


def _check_feature_sets(config: dict) -> None:
    """Feature sets must be registered ones (netdyn.predict), checked before any training job."""
    from .predict import feature_set_parts

    for i, spec in enumerate(config["predict"]["feature_sets"]):
        try:
            feature_set_parts(spec)
        except ValueError as e:
            raise ConfigError(f"config key `predict.feature_sets[{i}]`: {e}") from None


def _refuse_feature_set_of_disabled_stage(config: dict, stage: str, title: str) -> None:
    """A stage's feature set (`stage`, alone or joined with +) needs the stage switched on."""
    for i, spec in enumerate(config["predict"]["feature_sets"]):
        if stage in spec.split("+"):
            raise ConfigError(f"config key `predict.feature_sets[{i}]`: {spec!r} needs the {title} stage, "
                              f"which `{stage}.enabled: false` switches off (remove the feature set)")


def _check_modularity(config: dict) -> None:
    """The modularity stage's batch must fit every data set's test split, and k must leave neighbours;
    its feature set needs the stage switched on."""
    from .data import dataset_info

    m = config.get("modularity")
    if m is None:  # a config validated without the schema's defaults (tests of single checks)
        return
    if not m["enabled"]:
        return _refuse_feature_set_of_disabled_stage(config, "modularity", "modularity")
    for d in config["datasets"]:
        n_test = dataset_info(d, config["data"]["image_size"]).n_test
        if n_test is not None and m["n_per_batch"] > n_test:
            raise ConfigError(f"config key `modularity.n_per_batch`: {m['n_per_batch']} images per batch exceed "
                              f"the {n_test} test images of {d}")
    if m["k"] >= m["n_per_batch"]:
        raise ConfigError(f"config key `modularity.k`: {m['k']} neighbours need more than {m['n_per_batch']} "
                          "images per batch (`modularity.n_per_batch`)")
    _check_pruning(config)


def _check_pruning(config: dict) -> None:
    """The pruning check (`modularity.pruning`, netdyn.modularity.pruning): each architecture a grid label of a
    family that can drop layers, the width one of the grid's."""
    p = config["modularity"].get("pruning")
    if p is None or not p["enabled"]:
        return
    from .models import architecture_label
    from .modularity.pruning import PRUNABLE_FAMILIES

    families = {architecture_label(a["name"], a.get("depth"), a.get("batchnorm")): a["name"]
                for a in config["architectures"]}
    if not p["architectures"]:
        raise ConfigError("config key `modularity.pruning.architectures`: names no architecture to prune "
                          f"(e.g. {next(iter(families))!r}); set `modularity.pruning.enabled: false` to skip the check")
    for i, label in enumerate(p["architectures"]):
        if label not in families:
            raise ConfigError(f"config key `modularity.pruning.architectures[{i}]`: {label!r} is not an architecture "
                              f"of the grid (labels: {', '.join(families)})")
        if families[label] not in PRUNABLE_FAMILIES:
            raise ConfigError(f"config key `modularity.pruning.architectures[{i}]`: {label!r} cannot drop layers "
                              f"(only {' and '.join(PRUNABLE_FAMILIES)} can)")
    if p["width"] is not None and p["width"] not in config["widths"]:
        raise ConfigError(f"config key `modularity.pruning.width`: width {p['width']} is not in `widths` "
                          f"{config['widths']}")


def _check_cmd(config: dict) -> None:
    """CMD stage: its feature set needs the stage on; each `cmd.deep` pattern must name a run; online CMD's
    warm-up must fit in a run's snapshots; the early window must hold more than one snapshot (it does:
    epoch 0 and E ≥ 1)."""
    c = config.get("cmd")
    if c is None:  # a config validated without the schema's defaults (tests of single checks)
        return
    if not c["enabled"]:
        return _refuse_feature_set_of_disabled_stage(config, "cmd", "CMD")
    from .cmd.stage import deep_runs

    runs = expand_grid(config)
    for i, pattern in enumerate(c["deep"]):
        if not deep_runs([pattern], runs):
            raise ConfigError(f"config key `cmd.deep[{i}]`: {pattern!r} matches no run id or architecture label "
                              f"of the grid (e.g. {runs[0].run_id!r}, {runs[0].arch_label!r})")
    t = config["training"]
    snapshots = 1 + t["epochs"] + (t["subepoch_snapshots"] - 1) * min(t["subepoch_epochs"], t["epochs"])
    if c["deep"] and c["warmup"] > snapshots:  # online CMD runs in the deep analysis only
        raise ConfigError(f"config key `cmd.warmup`: {c['warmup']} snapshots exceed the {snapshots} a run keeps")
    e = c["embedded"]
    if e["enabled"] and e["warmup"] >= t["epochs"]:
        raise ConfigError(f"config key `cmd.embedded.warmup`: {e['warmup']} warm-up epochs leave none of the "
                          f"{t['epochs']} trained (training.epochs) to embed CMD in")


def prediction_windows(config: dict) -> list[int]:
    """The early windows E of the prediction stage (`predict.windows`, or 1 .. min(5, epochs - 1))."""
    windows = config["predict"]["windows"]
    return list(windows) if windows else list(range(1, min(5, config["training"]["epochs"] - 1) + 1))


def _check_image_sizes(config: dict) -> None:
    """Every architecture must accept every data set's image size (LeNet needs at least 16 pixels)."""
    from .data import dataset_info  # torch is imported here, after the cheap checks
    from .models import build_model

    for d in config["datasets"]:
        info = dataset_info(d, config["data"]["image_size"])
        for i, arch in enumerate(config["architectures"]):
            try:
                build_model(arch["name"], depth=arch.get("depth"), batchnorm=arch.get("batchnorm"),
                            in_channels=info.in_channels, num_classes=info.num_classes, image_size=info.image_size)
            except ValueError as e:
                raise ConfigError(f"config key `data.image_size`: {info.image_size} px {d} images do not fit "
                                  f"`architectures[{i}]` ({e})") from None


def validate_config(config: dict) -> dict:
    """Finite numbers, schema, defaults and semantic checks, in that order; returns the (filled-in) config."""
    _check_finite(config)
    return check_semantics(validate_schema(config))


def load_config(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(config).__name__}")
    return validate_config(config)


def _fmt(x: float) -> str:
    """Short, stable, path-safe number formatting for run ids (0.03 -> '0.03', 1e-05 -> '1e-05')."""
    s = f"{x:g}"
    return s.replace("+", "")


def resolve_device(config: dict) -> str:
    """The config's device, with `auto` resolved without importing torch when possible."""
    device = config["device"]
    if device != "auto":
        return device
    import torch  # only when the config leaves it open

    return "cuda" if torch.cuda.is_available() else "cpu"


def _hyperparameter_lists(config: dict, arch: dict) -> tuple[list, list, list]:
    """The learning rates, dropouts and weight decays `arch` (an entry of `architectures`) trains with: its own
    lists where it has them, else the shared ones."""
    hp = {**config["hyperparameters"], **arch.get("hyperparameters", {})}
    return hp["learning_rate"], hp["dropout"], hp["weight_decay"]


def expand_grid(config: dict) -> list[RunSpec]:
    """Every run of the study (`config` validated, defaults filled), in a stable order."""
    from .models import architecture_label, resolve_architecture

    t = config["training"]
    precision = t["precision"]  # set by check_semantics (its default depends on dtype)
    runs = []
    points = ((arch, *rest) for arch in config["architectures"] for rest in itertools.product(
        config["datasets"], config["widths"], *_hyperparameter_lists(config, arch), config["seeds"]))
    for arch, dataset, width, lr, dropout, wd, seed in points:
        depth, bn = resolve_architecture(arch["name"], arch.get("depth"), arch.get("batchnorm"))
        label = architecture_label(arch["name"], depth, bn)
        run_id = f"{label}-{dataset}-w{width}-lr{_fmt(lr)}-do{_fmt(dropout)}-wd{_fmt(wd)}-s{seed}"
        if precision != default_precision(t["dtype"]):
            run_id += f"-{precision}"  # only then: run ids of configs without the key stay as they were
        assert SAFE_NAME.match(run_id), run_id
        runs.append(RunSpec(
            run_id=run_id, arch=arch["name"], arch_label=label, depth=depth, batchnorm=bn,
            dataset=dataset, image_size=config["data"]["image_size"], width=width,
            learning_rate=float(lr), dropout=float(dropout), weight_decay=float(wd), seed=int(seed),
            epochs=t["epochs"], batch_size=t["batch_size"], momentum=t["momentum"],
            crop_padding=t["crop_padding"], flip=t["flip"], subepoch_snapshots=t["subepoch_snapshots"],
            subepoch_epochs=t["subepoch_epochs"], dtype=t["dtype"], precision=precision,
        ))
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise ConfigError("config: two grid points give the same run id (duplicate values in a list?)")
    return runs


EMBEDDED_CMD_SUFFIX = "-ecmd"  # run id of a run's embedded-CMD twin: the run's id plus this


def embedded_cmd_settings(config: dict) -> dict:
    """What an embedded-CMD twin trains with (`cmd.embedded` without its switch; `cmd.seed` seeds the sampling)."""
    e = config["cmd"]["embedded"]
    return {"n_modes": e["n_modes"], "warmup": e["warmup"], "every": e["every"], "fraction": e["fraction"],
            "n_samples": e["n_samples"], "seed": config["cmd"]["seed"]}


def variant_runs(config: dict, runs: list[RunSpec]) -> list[RunSpec]:
    """Training runs the analyses add to the grid (`runs`): the embedded-CMD twin of every run `cmd.deep` names
    when `cmd.embedded.enabled` (the same run trained with embedded CMD). They are trained like grid runs but
    enter no grid-wide table (graphs, prediction, modularity)."""
    from dataclasses import replace

    variants = []
    c = config.get("cmd")
    if c and c["enabled"] and c["embedded"]["enabled"]:
        from .cmd.stage import deep_runs

        settings = embedded_cmd_settings(config)
        by_id = {r.run_id: r for r in runs}
        variants += [replace(by_id[i], run_id=i + EMBEDDED_CMD_SUFFIX, embedded_cmd=settings)
                     for i in deep_runs(c["deep"], runs)]
    return variants


def packs_runs(pack: str, device: str) -> bool:
    """The packing policy (`training.pack`), stated once: `auto` packs on cuda only. On the CPU one model
    already fills the cores and a pack costs per-model speed (bench/results/cpu_pack_choice.json); on a GPU
    a pack of K small models runs nearly as fast as one."""
    return pack == "always" or (pack == "auto" and device.startswith("cuda"))


def group_size(config: dict, device: str) -> int:
    """Runs per Snakemake training job (`training.group_size`; auto: GROUP_SIZE_AUTO)."""
    size = config["training"]["group_size"]
    return GROUP_SIZE_AUTO["cuda" if device.startswith("cuda") else "cpu"] if size == "auto" else int(size)


def job_groups(config: dict, runs: list[RunSpec], device: str, prefix: str = "") -> dict[str, list[RunSpec]]:
    """The study's training jobs on `device`: packed runs need one block per job; runs trained one at a
    time are mixed round-robin (see training_groups). ``prefix`` starts every group id (variant runs' jobs)."""
    packed = packs_runs(config["training"]["pack"], device)
    groups = training_groups(runs, group_size(config, device), mixed=not packed)
    return {prefix + g: members for g, members in groups.items()}


def training_groups(runs: list[RunSpec], size: int, *, mixed: bool = False) -> dict[str, list[RunSpec]]:
    """Split runs into Snakemake training jobs. Group ids are stable for a given config, so a rerun finds
    the same jobs.

    Packed training (GPU) needs one architecture, data set and width per job: runs are split block by block,
    `size` at a time. Where runs train one after another (the CPU), a job may hold any runs, and costs
    differ ~50x between a LeNet and a wide ResNet; so the runs are dealt round-robin over the jobs, every
    job gets a similar mix, and no expensive job is left running alone at the end (`mixed=True`).
    """
    if mixed:
        n = math.ceil(len(runs) / size) if runs else 0
        return {f"mixed-g{g:03d}": runs[g::n] for g in range(n)}
    by_key: dict[tuple, list[RunSpec]] = {}
    for r in runs:
        by_key.setdefault((r.arch_label, r.dataset, r.width), []).append(r)
    groups = {}
    for (label, dataset, width), members in by_key.items():
        n = math.ceil(len(members) / size)
        for g in range(n):
            groups[f"{label}-{dataset}-w{width}-g{g:03d}"] = members[g * size:(g + 1) * size]
    return groups


if __name__ == "__main__":  # python -m netdyn.config FILE...: check config files, naming file, line and key
    import sys

    try:
        for arg in sys.argv[1:] or ["config/config.yaml"]:
            n = len(expand_grid(load_config(arg)))
            print(f"{arg}: valid, {n} runs")
    except ConfigError as e:
        sys.exit(f"error: {e}")
