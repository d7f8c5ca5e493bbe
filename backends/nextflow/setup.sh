#!/usr/bin/env bash
# What the Nextflow backend's tests need: Debian's Groovy 2.4 (a Java runtime comes with it)
# for the syntax check (../shared/engines/nf-syntax-check.sh) and the runtime model
# (nf-sim.groovy).  Idempotent.
set -euo pipefail
if command -v groovy >/dev/null 2>&1; then
  echo "[nextflow/setup.sh] groovy present: $(command -v groovy)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends groovy >/tmp/bpsc-groovy-apt.log 2>&1 \
  || { apt-get update -q >>/tmp/bpsc-groovy-apt.log 2>&1 && apt-get install -y -q --no-install-recommends groovy >>/tmp/bpsc-groovy-apt.log 2>&1; }
echo "[nextflow/setup.sh] installed groovy: $(command -v groovy)"
