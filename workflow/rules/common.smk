# Config validation, the grid of runs and the training groups. Everything stops here, before any job,
# if the config is wrong; the message names the key.
import json
import sys

from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)
from netdyn.config import (  # noqa: E402
    ConfigError, expand_grid, group_size, prediction_windows, resolve_device, training_groups, validate_config,
)

# netdyn's validator first: its message names the key (e.g. `training.epochs`); then Snakemake's own
# validate() against the same schema, which also records the filled-in defaults.
try:
    validate_config(config)
except ConfigError as e:
    raise ValueError(str(e)) from None
validate(config, "../schemas/config.schema.yaml")

from netdyn.data import DatasetNotFoundError, check_available  # noqa: E402

for _name in config["datasets"]:
    try:
        check_available(_name, config["data"]["root"], download=config["data"]["download"])
    except DatasetNotFoundError as e:
        raise ValueError(f"config key `datasets`: {e}") from None

RESULTS = "results"
DEVICE = resolve_device(config)
RUNS = expand_grid(config)
# on the CPU runs train one at a time (training.pack auto/never), so a job may mix architectures: dealt
# round-robin, jobs get equal work and the two cores finish together
MIXED = DEVICE == "cpu" and config["training"]["pack"] != "always"
GROUPS = training_groups(RUNS, group_size(config, DEVICE), mixed=MIXED)
GROUP_OF = {r.run_id: g for g, members in GROUPS.items() for r in members}
WINDOWS = prediction_windows(config)


def group_runs(wildcards):
    return [r.to_dict() for r in GROUPS[wildcards.group]]


def study_config():
    """The validated config, recorded in every run's config.json."""
    return json.loads(json.dumps(config, default=str))
