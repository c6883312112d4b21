#!/usr/bin/env bash
# Install what netdyn needs on Debian/Ubuntu (root or sudo): Debian's graph-tool, a .venv made from the
# system Python with --system-site-packages, and the pinned packages of requirements.lock.
# Quick (a few checks) when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_=""
if [ "$(id -u)" -ne 0 ]; then sudo_="sudo"; fi

missing=()
/usr/bin/python3 -c "import graph_tool" 2>/dev/null || missing+=(python3-graph-tool)
/usr/bin/python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
fi

want="$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
stamp=.venv/.netdyn-setup
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    [ -x .venv/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv
    echo "setup: installing Python packages from requirements.lock into .venv (first time: a few minutes)"
    .venv/bin/pip install -q -r requirements.lock 2>&1 | { grep -v "^WARNING: Location" || true; }
    .venv/bin/pip install -q --no-deps --no-build-isolation -e . 2>&1 | { grep -v "^WARNING: Location" || true; }
    .venv/bin/python -c "import graph_tool, torch, xgboost, snakemake, netdyn" \
        || { echo "setup: the environment does not import; see the messages above" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
