#!/usr/bin/env bash
# What the Pegasus backend's tests need: xmllint (Debian libxml2-utils) for dax-3.6.xsd.
set -euo pipefail
if command -v xmllint >/dev/null 2>&1; then echo "[pegasus/setup.sh] xmllint present"; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends libxml2-utils >/tmp/bpsc-xmllint-apt.log 2>&1 \
  || { apt-get update -q >>/tmp/bpsc-xmllint-apt.log 2>&1 && apt-get install -y -q --no-install-recommends libxml2-utils >>/tmp/bpsc-xmllint-apt.log 2>&1; }
echo "[pegasus/setup.sh] installed xmllint"
