#!/usr/bin/env bash
# Run the full test suite: setup if needed, then pytest. Extra arguments go to pytest (`-n 0`: one process).
# Test files run in parallel processes (pytest-xdist, a file stays in one process so its module fixtures
# are built once), one per core up to 4: most tests train or run Snakemake on one thread each.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cores=$(nproc)
workers=$(( cores < 4 ? cores : 4 ))
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile "$@"
