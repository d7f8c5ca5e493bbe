#!/bin/sh
# Scale check of the Pegasus backend: generate a campaign of about N Pegasus jobs
# (N/2 visit-detectors x 2 steps, plus one summary per visit), compile it to both Pegasus
# formats with /usr/bin/time -v, and print wall time, peak RSS and output sizes.
#
#   backends/pegasus/bench.sh [N] [BPSC]      N defaults to 1000000; BPSC to target/release/bpsc
#
# The same campaign at 100k jobs is what benches/pegasus_api.py rebuilds with the Pegasus
# Python API for a side-by-side (pass its IR: `bpsc compile FILE --emit ir -o DIR`).
set -eu
n=${1:-1000000}
here=$(cd "$(dirname "$0")/../.." && pwd -P)
bpsc=${2:-$here/target/release/bpsc}
[ -x "$bpsc" ] || { echo "bench.sh: build first: cargo build --release" >&2; exit 2; }
command -v /usr/bin/time >/dev/null 2>&1 || [ -x /usr/bin/time ] || { echo "bench.sh: needs GNU time (apt-get install -y time)" >&2; exit 2; }
work=${TMPDIR:-/tmp}/bpsc-pegasus-bench-$n
rm -rf "$work"
mkdir -p "$work"
detectors=100
visits=$(( (n / 2 + detectors - 1) / detectors ))
cat > "$work/big.bps" <<EOF
bps 1

site big {
  backend   = slurm
  shared_fs = true
  scratch   = "/scratch/{user}/{campaign}"
}

dimension visit    = 0..$visits
dimension detector = 0..$detectors

dataset raw(visit, detector) {
  source = "file:///data/raw/{visit}/{detector}.fits"
  stage  = none
}
dataset calexp(visit, detector) {
  persist = archive
  archive = "file:///archive/{campaign}/calexp/{visit}/{detector}.fits"
}

pipeline p {
  step isr over (visit, detector) {
    inputs  = [raw]
    outputs = [postisr]
    run     = "task isr {visit} {detector} -- {outputs}"
  }
  step calibrate over (visit, detector) after isr {
    inputs  = [postisr]
    outputs = [calexp]
    run     = "task calibrate {data_id} -- {outputs}"
  }
  step summary over (visit) {
    inputs  = [calexp]
    outputs = [visit_summary]
    run     = "task summary {visit} -- {outputs}"
  }
}

campaign "bench-$n" {
  use p
  coverage = visit * detector
  site     = big
}
EOF
measure() {
    label=$1; shift
    /usr/bin/time -v "$@" 2> "$work/$label.time" >/dev/null || { cat "$work/$label.time" >&2; exit 1; }
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/$label.time")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$label.time")
    printf '%-12s wall %-9s peak RSS %6d MiB\n' "$label" "$wall" $((rss / 1024))
}
measure ir          "$bpsc" compile "$work/big.bps" --emit ir -o "$work/ir" --force
measure pegasus     "$bpsc" compile "$work/big.bps" --backend pegasus -o "$work/yaml" --force
measure pegasus-dax "$bpsc" compile "$work/big.bps" --backend pegasus-dax -o "$work/dax" --force
grep -m1 -o '"jobs":[0-9]*' "$work/ir/ir.jsonl" | sed 's/^/IR /'
printf 'Pegasus jobs: %s\n' "$(grep -c '^- type: job' "$work/yaml/workflow.yml")"
ls -l "$work/yaml/workflow.yml" "$work/yaml/outputs.yml" "$work/dax/workflow.dax" | awk '{printf "%-60s %8.1f MiB\n", $9, $5/1048576}'
echo "outputs in $work"
