#!/usr/bin/env bash
# What the Slurm backend's tests need.  tests/run.sh runs every backends/*/setup.sh, and sets
# BPSC_SLURM_TESTS=1 itself, so the real-cluster tests (tests/slurm_integration.rs,
# tests/slurm_limits.rs, tests/status_slurm.rs) always run there and in CI.
#
# Brings the local cluster up before `cargo test` (backends/slurm/cluster-up.sh: Debian's
# Slurm 22.05, munge, MariaDB + slurmdbd; about 30 s the first time, under a second when it
# is up), so that a failure shows at the top of the log; the tests call cluster-up.sh again
# and fail with the same message (never skip) when the cluster cannot come up.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${CI:-}" ] && [ "${BPSC_SLURM_TESTS:-}" != 1 ]; then
  echo "[slurm/setup.sh] not bringing up the Slurm cluster (set BPSC_SLURM_TESTS=1, or CI, to run the real-cluster tests)"
  exit 0
fi
echo "[slurm/setup.sh] bringing up the Slurm cluster (backends/slurm/cluster-up.sh)"
"$HERE/cluster-up.sh" || echo "[slurm/setup.sh] ERROR: cluster-up.sh failed (see above); the Slurm integration tests will fail with the same message"
