# Config validation, the grid of runs and the training groups. Everything stops here, before any job,
# if the config is wrong; the message names the key.
import json
import re
import sys

sys.path.insert(0, workflow.basedir)
from netdyn.config import (  # noqa: E402
    ConfigError, expand_grid, job_groups, prediction_windows, resolve_device, validate_config, variant_runs,
)

# netdyn's validator: the schema (its message names the key, e.g. `training.epochs`), then Snakemake's own
# validate() of the same schema fills in the defaults, then the semantic checks.
try:
    validate_config(config)
except ConfigError as e:
    raise ValueError(str(e)) from None

from netdyn.data import DatasetNotFoundError, check_available  # noqa: E402
from netdyn.rundir import RESULT as RUN_RESULT, TRAJECTORY_MANIFEST as RUN_MANIFEST  # noqa: E402

for _name in config["datasets"]:
    try:
        check_available(_name, config["data"]["root"], download=config["data"]["download"])
    except DatasetNotFoundError as e:
        raise ValueError(f"config key `datasets`: {e}") from None

RESULTS = f"results/{config['study']}"  # one folder per study: two studies in one checkout never mix
LOGS = f"logs/{config['study']}"
DEVICE = resolve_device(config)
RUNS = expand_grid(config)
GROUPS = job_groups(config, RUNS, DEVICE)
# runs the analyses add (embedded-CMD twins): trained in jobs of their own, outside every grid-wide table
VARIANTS = variant_runs(config, RUNS)
VARIANT_GROUPS = job_groups(config, VARIANTS, DEVICE, prefix="variants-")
WINDOWS = prediction_windows(config)


# What training depends on, recorded in each run's config.json: editing another section (predict, say)
# changes no training job's params, so Snakemake reruns no training.
TRAINING_SETTINGS = json.loads(json.dumps({k: config[k] for k in ("study", "device", "data", "training")}))


def run_file(run_id, name):
    return f"{RESULTS}/runs/{run_id}/{name}"


def rule_safe(name):
    """A group id as part of a rule name (a Python identifier)."""
    return re.sub(r"\W", "_", name)
