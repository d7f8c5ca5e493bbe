#!/usr/bin/env bash
# writers.sh - benchmark (not a test): bpsc's engine backends against the peers, on the same
# synthetic survey campaign (bpsc synth: visits x detectors -> isr -> calibrate -> make_warp
# through an overlap relation -> coadd -> summary), in one run.
#
#   tests/bench/writers.sh [SIZES]        SIZES: job counts, default "100000 1000000 3000000"
#
# For each size: bpsc end to end from the .bps file for every backend and for --emit ir,
# and the peers on the same shape: plain Python f-strings computing and writing the same
# DAGMan file as bpsc's from the same input tables (tests/bench/fstring_same_dag.py; the
# run stops if its DAG differs from bpsc's), the same with the work taken away
# (tests/bench/fstring_dag.py: handed the quanta counts, one fixed line pattern, edges through
# joins: a floor on formatting alone, not the same DAG) and HTCondor's own writer
# htcondor2.dags (backends/htcondor/dags_api.py; needs PyPI `htcondor`, skipped with a note
# when missing).  Each figure is the median of RUNS (default 3) runs, wall seconds and peak
# RSS from /usr/bin/time, after a `sync` so no run pays for the write-back of the one before;
# bytes are everything written (du -sb), per job of the campaign.
# Also the job wrapper's start-up at the largest size: `bpsc show` of the last job (reading
# its task tables and rendering its line), median of 20.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
SIZES=${1:-"100000 1000000 3000000"}
RUNS=${RUNS:-3}
WORK=${BENCH_WORK:-/tmp/bpsc-bench-writers}
PY=${BPSC_PYTHON:-python3}
BPSC=$REPO/target/release/bpsc
log() { printf '[bench/writers] %s\n' "$*" >&2; }
mkdir -p "$WORK"
log "building the release binary"
cargo build --release --bin bpsc >/dev/null 2>&1
export BPSC_NO_PROGRESS=1

# median of a column of numbers
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# run NAME OUTDIR CMD...: RUNS runs; prints "wall rss_mib bytes"
run() {
  local name=$1 out=$2; shift 2
  local walls=() rss=()
  for _ in $(seq "$RUNS"); do
    rm -rf "$out"
    # Untimed: write back what earlier runs left dirty, so the kernel's flusher does not
    # take a core from this run (every writer, bpsc or peer, gets the same start).
    sync
    local t tf
    tf=$(mktemp)
    /usr/bin/time -o "$tf" -f '%e %M' "$@" >/dev/null 2>&1 || echo "[bench/writers] $name failed" >&2
    t=$(tail -1 "$tf"); rm -f "$tf"
    walls+=("${t% *}"); rss+=("${t#* }")
  done
  local bytes=0
  [ -e "$out" ] && bytes=$(du -sb "$out" | cut -f1)
  printf '%s %s %s\n' "$(printf '%s\n' "${walls[@]}" | median)" "$(( $(printf '%s\n' "${rss[@]}" | median) / 1024 ))" "$bytes"
}

echo "| size | writer | jobs | wall (median of $RUNS) | peak RSS | written | bytes/job |"
echo "|---|---|---|---|---|---|---|"
last=""
for n in $SIZES; do
  d=$WORK/synth-$n
  [ -f "$d/campaign.bps" ] || "$BPSC" synth --jobs "$n" -o "$d" >/dev/null
  "$BPSC" compile "$d/campaign.bps" --emit summary > "$d/summary.json" 2>/dev/null
  jobs=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["jobs"])' "$d/summary.json")
  for b in htcondor slurm pegasus pegasus-dax nextflow; do
    read -r wall rss bytes < <(run "$b" "$d/out-$b" "$BPSC" compile "$d/campaign.bps" --backend "$b" -o "$d/out-$b")
    echo "| $n | bpsc --backend $b | $jobs | $wall s | $rss MiB | $((bytes / 1000000)) MB | $((bytes / jobs)) |"
  done
  read -r wall rss bytes < <(run ir "$d/out-ir" "$BPSC" compile "$d/campaign.bps" --emit ir -o "$d/out-ir")
  echo "| $n | bpsc --emit ir | $jobs | $wall s | $rss MiB | $((bytes / 1000000)) MB | $((bytes / jobs)) |"
  read -r wall rss bytes < <(run fstring-same "$d/out-fstring-same" "$PY" tests/bench/fstring_same_dag.py "$d" "$d/out-fstring-same")
  # The peer must have written the same DAG as bpsc (nodes, edges, priorities, retries):
  # otherwise its time says nothing about bpsc's.
  if ! same=$("$PY" tests/bench/fstring_same_dag.py --compare "$d/out-htcondor/workflow.dag" "$d/out-fstring-same/workflow.dag"); then
    log "the f-string peer's DAG differs from bpsc's at $n jobs: $same"
    exit 1
  fi
  echo "| $n | Python f-strings, the same DAG from the same tables | $jobs | $wall s | $rss MiB | $((bytes / 1000000)) MB | $((bytes / jobs)) |"
  read -r wall rss bytes < <(run fstring "$d/out-fstring" "$PY" tests/bench/fstring_dag.py "$d/summary.json" "$d/out-fstring")
  echo "| $n | Python f-strings, formatting only (handed the counts) | $jobs | $wall s | $rss MiB | $((bytes / 1000000)) MB | $((bytes / jobs)) |"
  if "$PY" -c 'import htcondor2' 2>/dev/null; then
    read -r wall rss bytes < <(run dags "$d/out-dags" "$PY" backends/htcondor/dags_api.py "$d/summary.json" "$d/out-dags")
    echo "| $n | htcondor2.dags (DAG only) | $jobs | $wall s | $rss MiB | $((bytes / 1000000)) MB | $((bytes / jobs)) |"
  else
    log "htcondor2.dags skipped: $PY cannot import htcondor2 (pip install htcondor)"
  fi
  last=$d
done

# The wrapper's start-up on the largest campaign: read the last job's tables and render it.
if [ -n "$last" ]; then
  job=$(ls "$last/out-htcondor/tasks/spec.json" >/dev/null && $PY - "$last/out-htcondor" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1] + "/tasks/spec.json"))
g = max(spec["groups"], key=lambda g: g["jobs"])
print(f'{g["name"]}:{g["jobs"] - 1}')
PY
)
  ms=$("$PY" - "$BPSC" "$last/out-htcondor" "$job" <<'PY'
import statistics, subprocess, sys, time
ts = []
for _ in range(20):
    t = time.perf_counter()
    subprocess.run(sys.argv[1:2] + ["show"] + sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    ts.append(time.perf_counter() - t)
print(f"{statistics.median(ts) * 1000:.1f}")
PY
)
  echo
  echo "job wrapper start-up (bpsc show $job on the largest campaign: open the tables, render the job's line; median of 20): $ms ms"
fi
