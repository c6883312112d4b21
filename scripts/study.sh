#!/usr/bin/env bash
# Run the default study (config/config.yaml): setup if needed, then the whole Snakemake workflow.
# Extra arguments go to snakemake, e.g.  bash scripts/study.sh --configfile config/paper.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Snakemake reports a YAML error in a --configfile without file or line: check those files first
files=(); prev=""
for arg in "$@"; do
    [ "$prev" = "--configfile" ] && files+=("$arg")
    case "$arg" in --configfile=*) files+=("${arg#*=}") ;; esac
    prev="$arg"
done
[ ${#files[@]} -eq 0 ] || .venv/bin/python -m netdyn.config "${files[@]}"
exec .venv/bin/snakemake --cores "${NETDYN_CORES:-$(nproc)}" "$@"
