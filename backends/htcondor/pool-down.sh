#!/usr/bin/env bash
# pool-down.sh - stop the single-node HTCondor pool started by pool-up.sh.
#
#   pool-down.sh               remove every job in the queue (DAGMan jobs first, so they do not
#                              resubmit), stop condor_master and its daemons (condor_off, then
#                              TERM/KILL of exactly the processes running in the pool's root),
#                              unmount what pool-up.sh bound; the root stays, so the next
#                              pool-up.sh takes seconds
#   pool-down.sh --keep-jobs   do not remove jobs first (the schedd keeps its queue; jobs
#                              run again after the next pool-up.sh)
#   pool-down.sh --purge       stop as above, then delete the root, the state and the condor_*
#                              wrappers pool-up.sh wrote; the work directory (submit
#                              directories) is left alone
#
# Exit status 0 when no process runs in the root and nothing is mounted under it.
set -uo pipefail

ME=pool-down
HOME_DIR=${BPSC_CONDOR_HOME:-/var/lib/bpsc-htcondor}
ROOT=${BPSC_CONDOR_ROOT:-$HOME_DIR/root}
BIN=${BPSC_CONDOR_BIN:-/usr/local/bin}
U=${BPSC_CONDOR_USER:-bpsc}
WRAPPER_MARKERS=("# bpsc-htcondor-pool wrapper (backends/htcondor/pool-up.sh)" "# bpsc test pool:")
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
KEEP_JOBS=0
PURGE=0
for a in "$@"; do
  case "$a" in
    --keep-jobs) KEEP_JOBS=1 ;;
    --purge) PURGE=1 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--keep-jobs] [--purge]" >&2; exit 2 ;;
  esac
done
log() { printf '[%s %s] %s\n' "$ME" "$(date +%H:%M:%S)" "$*"; }
[ "$(id -u)" = 0 ] || { echo "[$ME] ERROR: must run as root" >&2; exit 1; }
in_root() { env -i PATH=$SAFE_PATH HOME=/root LANG=C.UTF-8 chroot "$ROOT" "$@"; }
# pids of the processes whose root directory is the pool's root
root_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && echo "${p#/proc/}"
  done
}
mounts_under() { awk -v r="$ROOT" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r; }

if [ ! -d "$ROOT" ]; then
  log "no pool root at $ROOT: nothing to stop"
else
  if [ -n "$(root_pids)" ]; then
    if [ $KEEP_JOBS = 0 ]; then
      # As the job user (the owner of every job): DAGMan jobs first, then what is left.
      q() { env -i PATH=$SAFE_PATH HOME=/tmp USER=$U chroot --userspec="$U:$U" "$ROOT" "$@"; }
      dags=$(q condor_q -allusers -constraint 'JobUniverse == 7' -af ClusterId 2>/dev/null | sort -u | tr '\n' ' ')
      [ -n "${dags// /}" ] && { log "removing DAGMan jobs: $dags"; q condor_rm $dags >/dev/null 2>&1; }
      if [ -n "$(q condor_q -allusers -af ClusterId 2>/dev/null)" ]; then
        log "removing the remaining jobs"
        in_root condor_rm -all >/dev/null 2>&1 || q condor_rm -all >/dev/null 2>&1
      fi
    fi
    log "condor_off -master"
    in_root condor_off -master >/dev/null 2>&1 || true
    for _ in $(seq 60); do [ -z "$(root_pids)" ] && break; sleep 0.5; done
    pids=$(root_pids | tr '\n' ' ')
    if [ -n "${pids// /}" ]; then
      log "still running after 30 s: TERM $pids"
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null
      for _ in $(seq 20); do [ -z "$(root_pids)" ] && break; sleep 0.5; done
      pids=$(root_pids | tr '\n' ' ')
      # shellcheck disable=SC2086
      [ -n "${pids// /}" ] && { log "KILL $pids"; kill -KILL $pids 2>/dev/null; sleep 1; }
    fi
  fi
  for m in $(mounts_under); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "ERROR: cannot unmount $m"
  done
fi

rc=0
[ -d "$ROOT" ] && [ -n "$(root_pids)" ] && { log "ERROR: processes still run in $ROOT: $(root_pids | tr '\n' ' ')"; rc=1; }
[ -d "$ROOT" ] && [ -n "$(mounts_under)" ] && { log "ERROR: still mounted: $(mounts_under | tr '\n' ' ')"; rc=1; }

if [ $PURGE = 1 ]; then
  if [ $rc != 0 ]; then
    log "not purging: the pool is not fully stopped"
  else
    case "$ROOT" in
      / | /var | /var/lib | /etc | /usr | /tmp | /root | "") log "refusing to delete BPSC_CONDOR_ROOT=$ROOT"; rc=1 ;;
      *)
        # --one-file-system: even a mount missed above would not be descended into.
        rm -rf --one-file-system "$ROOT" "$ROOT.partial" "$HOME_DIR/state"
        log "removed $ROOT"
        ;;
    esac
    for w in "$BIN"/condor_*; do
      [ -f "$w" ] || continue
      for m in "${WRAPPER_MARKERS[@]}"; do
        if grep -qF "$m" "$w"; then rm -f "$w"; break; fi
      done
    done
    log "removed the condor_* wrappers in $BIN (the work directory ${BPSC_CONDOR_WORK:-$HOME_DIR/work} is kept)"
  fi
fi
[ $rc = 0 ] && log "stopped"
exit $rc
