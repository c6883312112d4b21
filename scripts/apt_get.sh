#!/usr/bin/env bash
# apt-get, one call at a time: the test fixtures' installers (setup_chromium.sh, slurm_local.sh) may run at
# once in parallel test workers, and apt-get fails on a dpkg lock another one holds. Root (or through sudo).
exec flock -w 900 /var/lock/netdyn-apt.lock apt-get "$@"
