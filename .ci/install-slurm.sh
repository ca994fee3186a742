#!/usr/bin/env bash
# SLURM for the tests of jobs/ only (`make test` runs this; `make run` does not): the tests start a
# private SLURM cluster from Debian's slurm-wlm. Optional: without it those tests are skipped,
# loudly. Installed when missing, as root on Debian/Ubuntu; SOLVER_NO_SLURM=1 skips.
set -euo pipefail
say() { printf '[slurm] %s\n' "$*" >&2; }
if [ -n "${SOLVER_NO_SLURM:-}" ] || command -v slurmctld >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing SLURM (slurm-wlm) for the tests of jobs/"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq --no-install-recommends slurm-wlm >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm >/dev/null; }; } ||
        say "warning: could not install slurm-wlm; the SLURM tests will be skipped"
fi
