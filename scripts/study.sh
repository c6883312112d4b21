#!/usr/bin/env bash
# Run the default study (config/config.yaml): setup if needed, then the whole Snakemake workflow.
# Extra arguments go to snakemake, e.g.  bash scripts/study.sh --configfile config/paper.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/snakemake --cores "${NETDYN_CORES:-$(nproc)}" "$@"
