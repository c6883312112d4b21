# Config validation, the grid of runs and the training groups. Everything stops here, before any job,
# if the config is wrong; the message names the key.
import json
import sys

sys.path.insert(0, workflow.basedir)
from netdyn.config import (  # noqa: E402
    ConfigError, expand_grid, job_groups, prediction_windows, resolve_device, validate_config,
)

# netdyn's validator: the schema (its message names the key, e.g. `training.epochs`), then Snakemake's own
# validate() of the same schema fills in the defaults, then the semantic checks.
try:
    validate_config(config)
except ConfigError as e:
    raise ValueError(str(e)) from None

from netdyn.data import DatasetNotFoundError, check_available  # noqa: E402

for _name in config["datasets"]:
    try:
        check_available(_name, config["data"]["root"], download=config["data"]["download"])
    except DatasetNotFoundError as e:
        raise ValueError(f"config key `datasets`: {e}") from None

RESULTS = "results"
DEVICE = resolve_device(config)
RUNS = expand_grid(config)
GROUPS = job_groups(config, RUNS, DEVICE)
GROUP_OF = {r.run_id: g for g, members in GROUPS.items() for r in members}
WINDOWS = prediction_windows(config)


def group_runs(wildcards):
    return [r.to_dict() for r in GROUPS[wildcards.group]]


def study_config():
    """The validated config, recorded in every run's config.json."""
    return json.loads(json.dumps(config, default=str))
