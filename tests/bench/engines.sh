#!/usr/bin/env bash
# engines.sh - benchmark: examples/drp (221 jobs, 729 quanta) on the local HTCondor pool and on
# the local Slurm cluster, from submission to the end of the campaign.  A measurement, not a
# test: it prints numbers and exits 0 unless a run fails.
#
#   tests/bench/engines.sh [htcondor] [slurm]    (default: both, one after the other)
#
# Root only (it brings the pool/cluster up with backends/htcondor/pool-up.sh and
# backends/slurm/cluster-up.sh).  Uses $BPSC (default target/release/bpsc, built if missing).
# Payload: examples/bin/fake_task.sh with FAKE_TASK_SLEEP=0.05; the same --set overrides as the
# integration tests (memory=100MiB, a setup() instead of the site's software, the ghost host
# in avoid_hosts; partition "debug" on Slurm).  Nothing else runs on the engine meanwhile
# (check `condor_q -allusers` / `squeue` first: other campaigns would share the slots).
#
# HTCondor: wall = condor_submit_dag until the DAGMan job leaves the queue; DAGMan's own view
# from workflow.dag.metrics (duration, jobs submitted) and workflow.dag.dagman.out (submit
# rate: node jobs submitted per second over the seconds in which DAGMan submitted any, and
# overall); the node-job latency from workflow.dag.nodes.log (submit -> execute).
# The example passes BPSC_EXAMPLE_DIR (pass_env); FAKE_TASK_SLEEP is added with
# --set pass_env, both set in the compiling shell, as tests/htcondor_integration.rs does.
# BENCH_DAGMAN_SCAN=N measures HTCondor with DAGMAN_USER_LOG_SCAN_INTERVAL = N (bpsc writes 1),
# BENCH_DAGMAN_SUBMITS=N with DAGMAN_MAX_SUBMITS_PER_INTERVAL = N (bpsc writes 100).
# Slurm: wall = slurm/submit.sh until the queue has been empty for 5 s, and the span from the
# first job start to the last job end in the provenance records.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
BPSC=${BPSC:-$REPO/target/release/bpsc}
WORK=${BPSC_CONDOR_WORK:-${BPSC_CONDOR_HOME:-/var/lib/bpsc-htcondor}/work}
ENGINES=("$@")
[ ${#ENGINES[@]} -gt 0 ] || ENGINES=(htcondor slurm)
log() { printf '[bench/engines] %s\n' "$*"; }
now() { date +%s.%N; }
[ "$(id -u)" = 0 ] || { log "ERROR: run as root"; exit 1; }
if [ ! -x "$BPSC" ]; then
  log "building $BPSC"
  cargo build --release --bin bpsc >/dev/null
fi
SETS=(--set 'avoid_hosts=["bpsc-ghost"]' --set memory=100MiB --set 'software=setup("export BPSC_TEST_SETUP=ok")')

prepare() { # prepare DIR: the drp example with its /sdf and /sps paths under DIR/fs
  rm -rf "$1"
  mkdir -p "$1"
  cp -r "$REPO/examples/drp" "$1/src"
  sed -i "s#/sdf/#$1/fs/sdf/#g; s#/sps/#$1/fs/sps/#g" "$1"/src/*.bps
}

# Span first start -> last end of the provenance records of DIR, in seconds.
records_span() {
  python3 - "$1" <<'PY'
import json, os, sys
from datetime import datetime
d = os.path.join(sys.argv[1], "provenance")
ts = []
for n in os.listdir(d):
    if n.endswith(".json") and not n.startswith("."):
        r = json.load(open(os.path.join(d, n)))
        if r.get("kind") != "provenance":
            ts.append((r["start"], r["end"]))
p = lambda t: datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
print(f"{max(p(e) for _, e in ts) - min(p(s) for s, _ in ts):.1f} s over {len(ts)} records")
PY
}

bench_htcondor() {
  backends/htcondor/pool-up.sh >/dev/null
  local D=$WORK/bench-drp-htcondor
  prepare "$D"
  BPSC_EXAMPLE_DIR=$REPO/examples FAKE_TASK_SLEEP=0.05 "$BPSC" compile "$D/src/drp.bps" --backend htcondor -o "$D/submit" "${SETS[@]}" \
    --set 'pass_env=["FAKE_TASK_SLEEP"]' >/dev/null 2>&1 || { log "ERROR: bpsc compile failed"; exit 1; }
  # BENCH_DAGMAN_SCAN / BENCH_DAGMAN_SUBMITS: other DAGMan settings than bpsc's (see the header).
  [ -z "${BENCH_DAGMAN_SCAN:-}" ] || sed -i "s/^DAGMAN_USER_LOG_SCAN_INTERVAL = .*/DAGMAN_USER_LOG_SCAN_INTERVAL = $BENCH_DAGMAN_SCAN/" "$D/submit/htcondor/dagman.config"
  [ -z "${BENCH_DAGMAN_SUBMITS:-}" ] || sed -i "s/^DAGMAN_MAX_SUBMITS_PER_INTERVAL = .*/DAGMAN_MAX_SUBMITS_PER_INTERVAL = $BENCH_DAGMAN_SUBMITS/" "$D/submit/htcondor/dagman.config"
  chown -R "${BPSC_CONDOR_USER:-bpsc}:" "$D"
  cd "$D/submit"
  local t0 out id
  t0=$(now)
  out=$(condor_submit_dag workflow.dag)
  id=$(sed -n 's/.*submitted to cluster \([0-9]*\)\..*/\1/p' <<<"$out")
  [ -n "$id" ] || { log "ERROR: condor_submit_dag: $out"; exit 1; }
  while [ -n "$(condor_q "$id" -af ClusterId 2>/dev/null)" ]; do sleep 0.2; done
  local wall
  wall=$(echo "$(now) - $t0" | bc)
  cd "$REPO"
  grep -q "EXITING WITH STATUS 0" "$D/submit/workflow.dag.dagman.out" || { log "ERROR: the DAG failed; see $D/submit/workflow.dag.dagman.out"; exit 1; }
  python3 - "$D/submit" "$wall" <<'PY'
import json, os, re, sys
from collections import Counter
from datetime import datetime
sub, wall = sys.argv[1], float(sys.argv[2])
m = json.load(open(os.path.join(sub, "workflow.dag.metrics")))
out = open(os.path.join(sub, "workflow.dag.dagman.out")).read().splitlines()
sec = Counter(l[:17] for l in out if "Submitting HTCondor Node" in l)
n = sum(sec.values())
t = lambda s: datetime.strptime(s, "%m/%d/%y %H:%M:%S").timestamp()
first, last = min(t(s) for s in sec), max(t(s) for s in sec)
# nodes.log: submit (000) and execute (001) events per job id
sub_t, exe_t = {}, {}
for l in open(os.path.join(sub, "workflow.dag.nodes.log")):
    g = re.match(r"(000|001) \((\d+)\.\d+\.\d+\) (\S+ \S+)", l)
    if g:
        ts = datetime.strptime(g.group(3), "%Y-%m-%d %H:%M:%S").timestamp() if "-" in g.group(3) else t(g.group(3))
        (sub_t if g.group(1) == "000" else exe_t).setdefault(g.group(2), ts)
lat = sorted(exe_t[j] - sub_t[j] for j in exe_t if j in sub_t)
med = lat[len(lat) // 2] if lat else float("nan")
print(f"htcondor: wall {wall:.1f} s (condor_submit_dag -> DAGMan job gone); DAGMan duration {m['duration']:.1f} s, "
      f"{m['jobs']} nodes, {m['jobs_succeeded']} succeeded, {n} node jobs submitted (retries included)")
print(f"htcondor: DAGMan submitted {n} node jobs in {len(sec)} distinct seconds over {last - first:.0f} s: "
      f"{n / len(sec):.1f} jobs/s while submitting, peak {max(sec.values())} in one second, {n / m['duration']:.2f} jobs/s over the DAG's duration")
print(f"htcondor: node job submit -> execute latency: median {med:.0f} s, max {lat[-1] if lat else float('nan'):.0f} s ({len(lat)} jobs)")
PY
  log "htcondor: records span $(records_span "$D/submit")"
}

bench_slurm() {
  backends/slurm/cluster-up.sh >/dev/null
  local D=$WORK/bench-drp-slurm
  prepare "$D"
  BPSC_EXAMPLE_DIR=$REPO/examples FAKE_TASK_SLEEP=0.05 "$BPSC" compile "$D/src/drp.bps" --backend slurm -o "$D/submit" "${SETS[@]}" \
    --set 'partition="debug"' --set 'pass_env=["FAKE_TASK_SLEEP"]' >/dev/null 2>&1 || { log "ERROR: bpsc compile failed"; exit 1; }
  local t0 ids quiet=""
  t0=$(now)
  (cd "$D" && BPSC=$BPSC BPSC_EXAMPLE_DIR=$REPO/examples FAKE_TASK_SLEEP=0.05 "$D/submit/slurm/submit.sh" >/dev/null)
  ids=$(awk '{print $1}' "$D/submit/slurm/jobids" | paste -sd,)
  while :; do
    if [ -z "$(squeue -h -j "$ids" -o '%i %r' 2>/dev/null | grep -v DependencyNeverSatisfied)" ]; then
      [ -n "$quiet" ] || quiet=$(now)
      [ "$(echo "$(now) - $quiet >= 5" | bc)" = 1 ] && break
    else
      quiet=""
    fi
    sleep 0.2
  done
  local wall
  wall=$(echo "$quiet - $t0" | bc)
  log "slurm: wall $(printf '%.1f' "$wall") s (submit.sh -> queue empty), $(wc -l <"$D/submit/slurm/jobids") submissions"
  log "slurm: records span $(records_span "$D/submit")"
}

for e in "${ENGINES[@]}"; do
  case $e in
    htcondor) bench_htcondor ;;
    slurm) bench_slurm ;;
    *) log "unknown engine $e (htcondor, slurm)"; exit 2 ;;
  esac
done
