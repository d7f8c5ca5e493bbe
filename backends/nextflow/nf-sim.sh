#!/usr/bin/env bash
# nf-sim.sh SUBMIT OUT.tsv [options]: run nf-sim.groovy (see its header) with Debian's groovy.
# Needs `groovy` (apt-get install --no-install-recommends groovy) and a JRE.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
command -v groovy >/dev/null 2>&1 || { echo "groovy missing: apt-get install --no-install-recommends groovy" >&2; exit 2; }
# groovy's launcher wants JAVA_HOME or /usr/lib/jvm/default-java (absent without default-jre)
if [ -z "${JAVA_HOME:-}" ] && [ ! -x /usr/lib/jvm/default-java/bin/java ]; then
  JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  export JAVA_HOME
fi
exec groovy "$HERE/nf-sim.groovy" "$@"
