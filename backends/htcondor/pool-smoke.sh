#!/usr/bin/env bash
# pool-smoke.sh - prove that the pool of pool-up.sh runs DAGMan for real, with the DAGMan
# features the bpsc backend relies on.  Exit 0 when every check holds (about 30 s).
#
#   pool-smoke.sh [--keep]     brings the pool up (pool-up.sh), runs a 4-node DAG in a new
#                              directory under the work directory, checks, and deletes the
#                              directory unless --keep (or a check failed)
#
# The DAG: A -> B -> C, FINAL F, DAGMan config with DAGMAN_USE_STRICT = 1 (as bpsc writes).
#   - VARS with a value holding a space reach the job's arguments;
#   - B fails on its first run and is retried (RETRY B 2): the job sees $(RETRY) = 0, then 1;
#   - request_memory = $INT(expr of $(RETRY)) grows per retry: condor_history shows
#     RequestMemory 64 then 128 for B (with DAGNodeName = B);
#   - a POST script sees $RETURN; PRIORITY is accepted; FINAL runs last;
#   - the job sees its `environment` and NOT a variable of the submitting shell;
#   - the jobs run as the pool's user, in the submit directory (shared filesystem).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd -P)
WORK=${BPSC_CONDOR_WORK:-${BPSC_CONDOR_HOME:-/var/lib/bpsc-htcondor}/work}
U=${BPSC_CONDOR_USER:-bpsc}
KEEP=0
case "${1:-}" in --keep) KEEP=1 ;; "") ;; -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; *) echo "usage: $0 [--keep]" >&2; exit 2 ;; esac
T0=$(date +%s.%N)
"$HERE/pool-up.sh" >/dev/null || { echo "[pool-smoke] ERROR: pool-up.sh failed (run it alone to see why)" >&2; exit 1; }
D=$(mktemp -d "$WORK/smoke.XXXXXX")
cd "$D" || exit 1
cat >node.sub <<'SUB'
universe   = vanilla
executable = /bin/sh
# $(DOLLAR) is a literal $ for the shell; $(JOB), $(RETRY), $(msg) are DAGMan's macros.
arguments  = "-c 'echo node=$(JOB) retry=$(RETRY) msg=$(msg) user=$(DOLLAR)(id -un) pwd=$(DOLLAR)PWD env=$(DOLLAR){SMOKE_ENV:-unset} leak=$(DOLLAR){SMOKE_LEAK:-unset} >> $(JOB).txt; [ $(JOB) != B ] || [ $(RETRY) -ge 1 ]'"
output     = $(JOB).$(RETRY).out
error      = $(JOB).$(RETRY).err
log        = smoke.log
environment = "SMOKE_ENV=given"
mem        = 64 * (1 + $(RETRY:0))
request_memory = $INT(mem)
request_cpus = 1
should_transfer_files = NO
queue
SUB
cat >post.sh <<'POST'
#!/bin/sh
echo "post $1 return=$2" >> post.txt
exit "$2"
POST
chmod +x post.sh
cat >dagman.config <<'CONF'
DAGMAN_USE_STRICT = 1
CONF
cat >smoke.dag <<'DAG'
CONFIG dagman.config
JOB A node.sub
JOB B node.sub
JOB C node.sub
FINAL F node.sub
VARS ALL_NODES msg="hello world"
RETRY B 2
PRIORITY A 10
SCRIPT POST B post.sh B $RETURN
PARENT A CHILD B
PARENT B CHILD C
DAG
chown -R "$U:" "$D"
SMOKE_LEAK=leaked condor_submit_dag smoke.dag >submit.out 2>&1 || { echo "[pool-smoke] ERROR: condor_submit_dag failed: $(tail -5 submit.out)" >&2; exit 1; }
for _ in $(seq 240); do grep -q "EXITING WITH STATUS" smoke.dag.dagman.out 2>/dev/null && break; sleep 0.5; done
fail=0
check() { # check DESCRIPTION COMMAND...
  if "${@:2}" >/dev/null 2>&1; then echo "  ok: $1"; else echo "  FAILED: $1"; fail=1; fi
}
check "DAGMan exited with status 0" grep -q "EXITING WITH STATUS 0" smoke.dag.dagman.out
check "VARS with a space reached the job" grep -q "msg=hello world" A.txt
check "B failed at RETRY 0 and succeeded at RETRY 1" sh -c 'grep -q "node=B retry=0" B.txt && grep -q "node=B retry=1" B.txt'
check "the POST script saw both of B's exit codes" sh -c 'grep -q "post B return=1" post.txt && grep -q "post B return=0" post.txt'
check "C and the FINAL node ran" sh -c '[ -s C.txt ] && [ -s F.txt ]'
check "the job saw its environment and nothing of the submitting shell" sh -c 'grep -q "env=given leak=unset" A.txt'
check "jobs ran as $U in the submit directory" grep -q "user=$U pwd=$D " A.txt
mem=$(condor_history -constraint "DAGNodeName == \"B\" && DAGManJobId =?= $(awk '/^\*\* SUBMIT/{next} /submitted to cluster/{sub(/\./, "", $NF); print $NF; exit}' submit.out)" -af RequestMemory 2>/dev/null | sort -n | tr '\n' ' ')
check "RequestMemory of B's two runs is 64 then 128 (condor_history: $mem)" test "$mem" = "64 128 "
printf '[pool-smoke] %s in %.1f s (%s)\n' "$([ $fail = 0 ] && echo ok || echo FAILED)" "$(echo "$(date +%s.%N) - $T0" | bc)" "$D"
if [ $fail = 0 ] && [ $KEEP = 0 ]; then rm -rf "$D"; fi
exit $fail
