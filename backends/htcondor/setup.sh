#!/usr/bin/env bash
# What the HTCondor backend's tests need.  tests/run.sh runs every backends/*/setup.sh.
#
# The real-pool tests (tests/htcondor_integration.rs) run when CI is set or
# BPSC_HTCONDOR_TESTS=1, the same gate as the Slurm tests (BPSC_SLURM_TESTS); they call
# pool-up.sh themselves.  Bringing the pool up here, before `cargo test`, puts the slow first
# build of the pool's root (debootstrap + apt, 1-4 min) and any failure of it at the top of
# the log instead of inside a test.  Idempotent; about a second when the pool is already up.
# The offline checks (tests/htcondor_backend.rs) need only the Python bindings that
# tests/run.sh installs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${CI:-}" ] && [ "${BPSC_HTCONDOR_TESTS:-}" != 1 ]; then
  echo "[htcondor/setup.sh] not bringing up the HTCondor pool (set BPSC_HTCONDOR_TESTS=1, or CI, to run the real-pool tests)"
  exit 0
fi
echo "[htcondor/setup.sh] bringing up the HTCondor pool (backends/htcondor/pool-up.sh)"
"$HERE/pool-up.sh" || echo "[htcondor/setup.sh] ERROR: pool-up.sh failed (see above); tests/htcondor_integration.rs will fail with the same message"
