#!/usr/bin/env bash
# Headless Chromium for the report test (tests/test_report.py): installs Debian's `chromium` with apt-get when
# no chromium is on PATH, then prints the browser's path. Needs root (or runs apt-get through sudo); quick
# when Chromium is already there. Exit 3: not root and no password-less sudo; exit 4: no apt-get.
set -euo pipefail

find_chromium() { command -v chromium || command -v chromium-browser || true; }

found=$(find_chromium)
if [[ -z $found ]]; then
    sudo_=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo -n true 2>/dev/null || { echo "setup_chromium.sh: needs root or password-less sudo" >&2; exit 3; }
        sudo_=(sudo -n)
    fi
    command -v apt-get >/dev/null || { echo "setup_chromium.sh: no chromium and no apt-get" >&2; exit 4; }
    echo "setup_chromium.sh: installing Debian's chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt_=("${sudo_[@]}" bash "$(dirname "$0")/apt_get.sh")  # one apt-get at a time (parallel test workers)
    "${apt_[@]}" update -qq >&2
    "${apt_[@]}" install -y -qq --no-install-recommends chromium >&2
    found=$(find_chromium)
    [[ -n $found ]] || { echo "setup_chromium.sh: chromium installed but not on PATH" >&2; exit 1; }
fi
"$found" --version >&2
echo "$found"
