#!/usr/bin/env bash
# pool-up.sh - bring up a real single-node HTCondor pool on this machine for bpsc's HTCondor
# backend tests: collector, negotiator, schedd, startd and condor_dagman of HTCondor 23.9.
# Written for bpsc after the recipe proven in shared/engines/htcondor-up.sh.
#
# Debian 12 has no HTCondor package; Debian 13 (trixie) has HTCondor 23.9 with a ready
# single-machine configuration (`minicondor`).  So this script debootstraps a minimal trixie
# root, installs minicondor in it, and runs the daemons chrooted there.  Host directories are
# bind-mounted into the root at the SAME paths, so a submit directory or a binary has one path
# inside and outside, and condor_* wrappers on the host's PATH run the tools inside the root.
#
#   pool-up.sh [DIR...]     build the root if missing (about a minute, needs the Debian
#                           mirror), bind the work directory, the folder that holds this
#                           checkout, $CARGO_TARGET_DIR (if set) and each DIR; write the
#                           configuration; start the pool if it is not running; wait until
#                           the execute slot is idle.  Idempotent: when the pool is already
#                           up with the same configuration it only checks (about a second).
#   pool-up.sh --status     report only; exit 0 when fully up, 3 otherwise
#   pool-up.sh --help
#
# Must run as root (debootstrap, mounts, chroot).  Stop with pool-down.sh (same directory).
#
# Where submit directories go: $BPSC_CONDOR_WORK (default /var/lib/bpsc-htcondor/work,
# mode 1777, bound at the same path).  Not /tmp: a DAG whose node log would be under /tmp
# makes DAGMan warn, and the generated dagman.config sets DAGMAN_USE_STRICT = 1, which turns
# that warning into an abort at start.  /tmp is therefore NOT bound: the jobs' /tmp is the
# root's own, and a submit directory under the host's /tmp is not visible to the pool (the
# wrappers say so instead of running somewhere else).
#
# HTCondor does not run root's jobs: the wrappers run every condor_* tool as the unprivileged
# user $BPSC_CONDOR_USER (uid/gid $BPSC_CONDOR_UID, created on the host and in the root).  A
# submit directory must be writable by it (`chown -R bpsc: DIR`); jobs run as that user.  The
# jobs see the root's filesystem (Debian 13) plus the bound directories, and only the
# environment their submit file gives them.
#
# Environment (all optional):
#   BPSC_CONDOR_HOME      root, work directory, state and logs          [/var/lib/bpsc-htcondor]
#   BPSC_CONDOR_ROOT      the trixie root                                [$BPSC_CONDOR_HOME/root]
#   BPSC_CONDOR_WORK      bound work directory for submit directories    [$BPSC_CONDOR_HOME/work]
#   BPSC_CONDOR_USER      user the tools and jobs run as                 [bpsc]
#   BPSC_CONDOR_UID       its uid and gid                                [1500]
#   BPSC_CONDOR_CPUS      CPUs the execute slot advertises (the test payloads sleep, so more
#                         slots than cores is fine)                      [16]
#   BPSC_CONDOR_MEMORY    MB the execute slot advertises          [the machine's memory]
#   BPSC_CONDOR_DISK      KiB of disk the execute slot advertises: request_disk is a
#                         consumable, and the examples ask for GiBs per job  [1073741824 = 1 TiB]
#   BPSC_CONDOR_BINDS     more directories to bind, separated by ':'
#   BPSC_CONDOR_MIRROR    Debian mirror for debootstrap     [the one /etc/apt already uses]
#   BPSC_CONDOR_SUITE     Debian suite of the root                       [trixie]
#   BPSC_CONDOR_BIN       where the condor_* wrappers go                 [/usr/local/bin]
#   BPSC_CONDOR_NO_INSTALL  1 = never call apt-get or debootstrap (fail if the root is missing)
#   BPSC_CONDOR_TIMEOUT   seconds to wait for the pool                   [90]
#
# Configuration that matters (config.d/90-bpsc-pool in the root):
#   MOUNT_UNDER_SCRATCH = (empty), USE_PID_NAMESPACES = False: the starter cannot unshare a
#     mount or PID namespace inside a chroot;
#   NUM_CPUS, MEMORY, DISK as above (one partitionable slot: minicondor's default; with the
#     real disk, 10 GiB requests would let only a few jobs run at once);
#   NEGOTIATOR_INTERVAL = 2, NEGOTIATOR_MIN_INTERVAL = 1, SCHEDD_INTERVAL = 2,
#     STARTER_UPDATE_INTERVAL = 2, UPDATE_INTERVAL = 5: jobs match within seconds;
#   DAGMAN_USER_LOG_SCAN_INTERVAL = 1: DAGMan notices ended jobs within a second;
#   SYSTEM_PERIODIC_HOLD: memory is enforced (no cgroups in a chroot): a job using more than
#     its slot's memory is held, code 26 subcode 34, as a production pool's policy would;
#   a change of policy is applied with condor_reconfig (jobs keep running), a change of the
#     slot's resources restarts the daemons.
set -euo pipefail

ME=pool-up
HOME_DIR=${BPSC_CONDOR_HOME:-/var/lib/bpsc-htcondor}
ROOT=${BPSC_CONDOR_ROOT:-$HOME_DIR/root}
WORK=${BPSC_CONDOR_WORK:-$HOME_DIR/work}
U=${BPSC_CONDOR_USER:-bpsc}
UID_=${BPSC_CONDOR_UID:-1500}
CPUS=${BPSC_CONDOR_CPUS:-16}
SUITE=${BPSC_CONDOR_SUITE:-trixie}
BIN=${BPSC_CONDOR_BIN:-/usr/local/bin}
TIMEOUT=${BPSC_CONDOR_TIMEOUT:-90}
STATE=$HOME_DIR/state
LOGS=$HOME_DIR/log
CONDOR_LOG=$ROOT/var/log/condor
PIDFILE=/run/condor/bpsc-master.pid # inside the root (not /var/run: an absolute symlink)
CONF=$ROOT/etc/condor/config.d/90-bpsc-pool
MARKER="# Generated by bpsc backends/htcondor/pool-up.sh - safe to overwrite"
WRAPPER_MARKER="# bpsc-htcondor-pool wrapper (backends/htcondor/pool-up.sh)"
# Wrappers written by the shared recipe may be replaced too.
OTHER_WRAPPER_MARKER="# bpsc test pool:"
TOOLS="condor_submit_dag condor_submit condor_q condor_rm condor_hold condor_release condor_qedit
       condor_history condor_status condor_wait condor_config_val condor_reconfig condor_version
       condor_userlog condor_who condor_tail"
CHECKOUT=$(cd "$(dirname "$0")/../.." && pwd -P)
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

T0=$(date +%s%N)
log() { printf '[%s %s] %s\n' "$ME" "$(date +%H:%M:%S)" "$*"; }
die() {
  printf '[%s] ERROR: %s\n' "$ME" "$*" >&2
  printf '[%s] logs: %s/*.log (install), %s/ (MasterLog, SchedLog, StartLog, StarterLog.*, ShadowLog)\n' "$ME" "$LOGS" "$CONDOR_LOG" >&2
  exit 1
}
elapsed() { local t=$((($(date +%s%N) - T0) / 1000000)); printf '%d.%03d' $((t / 1000)) $((t % 1000)); }
poll() { # poll SECONDS COMMAND...: retry every 0.25 s until COMMAND succeeds
  local n=$(($1 * 4)) i
  shift
  for ((i = 0; i < n; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  return 1
}
# in_root CMD...: run CMD in the root as root, with a clean environment
in_root() { env -i PATH=$SAFE_PATH HOME=/root LANG=C.UTF-8 chroot "$ROOT" "$@"; }
# the pid of the pool's condor_master, if it runs (its root must be ours: a master of another
# pool, or a stale pid file, does not count)
master_pid() {
  local pid
  pid=$(cat "$ROOT$PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = condor_master ] || return 1
  [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$ROOT" ] || return 1
  echo "$pid"
}
slot_ready() { in_root condor_status -af State 2>/dev/null | grep -qE '^(Unclaimed|Claimed)'; }
schedd_ready() { in_root condor_q -totals >/dev/null 2>&1; }
mounted() { mountpoint -q "$1"; }
# stale_bind DIR: the mount at $ROOT/DIR no longer shows the host's DIR: DIR is gone, or was
# deleted and re-created (the mount keeps the deleted directory: no links, other inode).
stale_bind() {
  local host in
  host=$(stat -L -c '%d:%i' "$1" 2>/dev/null) || return 0
  in=$(stat -c '%d:%i:%h' "$ROOT$1" 2>/dev/null) || return 0
  [ "${in%:*}" != "$host" ] || [ "${in##*:}" = 0 ] && return 0
  findmnt -n -o FSROOT --mountpoint "$ROOT$1" 2>/dev/null | grep -q '//deleted$'
}
bound_dirs() { cat "$STATE/binds" 2>/dev/null || true; }

status() {
  local rc=0 pid d
  [ -x "$ROOT/usr/sbin/condor_master" ] && [ -e "$ROOT/.bpsc-pool-root" ] || { echo "  root: NOT built ($ROOT)"; return 3; }
  echo "  root: $ROOT ($(in_root condor_version 2>/dev/null | head -1 || echo '?'))"
  if pid=$(master_pid); then echo "  condor_master: running (pid $pid)"; else echo "  condor_master: NOT running"; rc=3; fi
  for d in /proc /dev $(bound_dirs); do
    if ! mounted "$ROOT$d"; then echo "  bound: $d NOT mounted"; rc=3
    elif [ "$d" != /proc ] && [ "$d" != /dev ] && stale_bind "$d"; then echo "  bound: $d STALE (deleted on the host since it was bound; pool-up.sh binds it again)"; rc=3
    else echo "  bound: $d"; fi
  done
  if [ $rc = 0 ]; then
    if schedd_ready; then echo "  schedd: answers"; else echo "  schedd: NOT answering"; rc=3; fi
    local slot
    slot=$(in_root condor_status -af Name State Cpus Memory 2>/dev/null | head -1)
    if [ -n "$slot" ]; then echo "  slot: $slot (name state cpus MB)"; else echo "  slot: NONE in the collector"; rc=3; fi
  fi
  echo "  work directory: $WORK"
  return $rc
}

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  --status)
    status
    exit $?
    ;;
  -*)
    echo "usage: $0 [--status|--help] [DIR...]" >&2
    exit 2
    ;;
esac

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, mounts, chroot)"
[[ $CPUS =~ ^[1-9][0-9]*$ ]] || die "BPSC_CONDOR_CPUS must be a positive integer, not '$CPUS'"
[[ $UID_ =~ ^[1-9][0-9]*$ ]] || die "BPSC_CONDOR_UID must be a positive integer"
[[ $U =~ ^[a-z_][a-z0-9_-]*$ ]] || die "BPSC_CONDOR_USER must be a plain user name"
MEM=${BPSC_CONDOR_MEMORY:-$(awk '/^MemTotal:/{print int($2 / 1024)}' /proc/meminfo)}
DISK=${BPSC_CONDOR_DISK:-1073741824}
[[ $DISK =~ ^[1-9][0-9]*$ ]] || die "BPSC_CONDOR_DISK must be a positive number of KiB"
[[ $MEM =~ ^[1-9][0-9]*$ ]] || die "BPSC_CONDOR_MEMORY must be a positive number of MB"
case "$ROOT" in /* ) ;; *) die "BPSC_CONDOR_ROOT must be an absolute path" ;; esac
case "$WORK" in /tmp | /tmp/*) die "BPSC_CONDOR_WORK must not be under /tmp (DAGMan strict mode aborts there)" ;; /*) ;; *) die "BPSC_CONDOR_WORK must be an absolute path" ;; esac
mkdir -p "$STATE" "$LOGS"
# One pool-up.sh at a time (tests bring the pool up from several threads): the bind list and
# the configuration are read, changed and written back.
exec 9>"$STATE/lock"
flock -w 600 9 || die "another pool-up.sh has held $STATE/lock for 10 minutes"

# ------------------------------------------------------------------ 1. the root
mirror() {
  local m=${BPSC_CONDOR_MIRROR:-}
  [ -n "$m" ] || m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if($i ~ /^https?:/){print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] || die "no Debian mirror in /etc/apt/sources.list*; set BPSC_CONDOR_MIRROR"
  echo "$m"
}
umount_under() { # unmount everything at or under $1, deepest first
  awk -v r="$1" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}
if [ ! -e "$ROOT/.bpsc-pool-root" ]; then
  [ "${BPSC_CONDOR_NO_INSTALL:-0}" = 1 ] && die "no pool root at $ROOT (and BPSC_CONDOR_NO_INSTALL=1)"
  if ! command -v debootstrap >/dev/null; then
    command -v apt-get >/dev/null || die "debootstrap is missing and there is no apt-get (Debian/Ubuntu hosts only)"
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends debootstrap >"$LOGS/apt.log" 2>&1; then
      apt-get update -q >>"$LOGS/apt.log" 2>&1 || true
      apt-get install -y -q --no-install-recommends debootstrap >>"$LOGS/apt.log" 2>&1 || die "apt-get install debootstrap failed; see $LOGS/apt.log"
    fi
  fi
  # Built beside the final place and renamed at the end: an interrupted build never looks
  # like a finished root.
  PART=$ROOT.partial
  [ -e "$PART" ] && { umount_under "$PART"; rm -rf --one-file-system "$PART"; }
  M=$(mirror)
  log "debootstrap $SUITE (minbase) from $M into $PART"
  mkdir -p "$(dirname "$ROOT")"
  debootstrap --variant=minbase "$SUITE" "$PART" "$M" >"$LOGS/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $LOGS/debootstrap.log"
  log "debootstrap done ($(elapsed) s)"
  cp /etc/resolv.conf "$PART/etc/resolv.conf" 2>/dev/null || true
  # No service may start while packages install (there is no init in the root anyway).
  printf '#!/bin/sh\nexit 101\n' >"$PART/usr/sbin/policy-rc.d"
  chmod 0755 "$PART/usr/sbin/policy-rc.d"
  mount -t proc proc "$PART/proc"
  log "installing minicondor in the root"
  if ! env -i PATH=$SAFE_PATH HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$PART" \
    sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends minicondor' >"$LOGS/install.log" 2>&1; then
    umount_under "$PART"
    die "apt-get install minicondor in the root failed; see $LOGS/install.log"
  fi
  umount_under "$PART"
  [ -x "$PART/usr/sbin/condor_master" ] || die "minicondor installed but $PART/usr/sbin/condor_master is missing"
  env -i PATH=$SAFE_PATH chroot "$PART" condor_version | head -1 >"$PART/.bpsc-pool-root"
  [ -e "$ROOT" ] && { umount_under "$ROOT"; rm -rf --one-file-system "$ROOT"; }
  mv "$PART" "$ROOT"
  log "root ready: $(cat "$ROOT/.bpsc-pool-root") ($(elapsed) s)"
fi

# ------------------------------------------------------------------ 2. the job user
# Same uid and gid on the host and in the root, so files the jobs write belong to it on both.
ensure_user() { # ensure_user PREFIX... (empty = host)
  local g u
  g=$("$@" getent group "$U" | cut -d: -f3 || true)
  if [ -z "$g" ]; then "$@" groupadd -g "$UID_" "$U" || die "groupadd $U failed${1:+ in the root}"; g=$UID_; fi
  [ "$g" = "$UID_" ] || die "group $U has gid $g${1:+ in the root}, not $UID_ (set BPSC_CONDOR_UID or fix it)"
  u=$("$@" getent passwd "$U" | cut -d: -f3 || true)
  if [ -z "$u" ]; then "$@" useradd -u "$UID_" -g "$UID_" -M -d /nonexistent -s /bin/sh "$U" || die "useradd $U failed${1:+ in the root}"; u=$UID_; fi
  [ "$u" = "$UID_" ] || die "user $U has uid $u${1:+ in the root}, not $UID_ (set BPSC_CONDOR_UID or fix it)"
}
ensure_user env
ensure_user in_root

# ------------------------------------------------------------------ 3. mounts
mounted "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
if ! mounted "$ROOT/dev"; then
  mount --rbind /dev "$ROOT/dev"
  mount --make-rslave "$ROOT/dev" # an unmount in the root never propagates to the host
fi
install -d -m 1777 "$WORK"
chmod 1777 "$WORK"
binds=("$WORK")
# The folder holding this checkout (so the checkout, its target/ and ../shared), unless that
# is a system directory; then the checkout alone.
parent=$(dirname "$CHECKOUT")
case "$parent" in
  / | /bin | /boot | /dev | /etc | /lib | /lib32 | /lib64 | /proc | /run | /sbin | /sys | /usr | /var | /var/lib | /tmp) binds+=("$CHECKOUT") ;;
  *) binds+=("$parent") ;;
esac
[ -n "${CARGO_TARGET_DIR:-}" ] && [ -d "$CARGO_TARGET_DIR" ] && binds+=("$(cd "$CARGO_TARGET_DIR" && pwd -P)")
IFS=: read -r -a extra <<<"${BPSC_CONDOR_BINDS:-}"
for d in "${extra[@]}" "$@"; do
  [ -n "$d" ] || continue
  [ -d "$d" ] || die "cannot bind $d: not a directory"
  binds+=("$(cd "$d" && pwd -P)")
done
new_binds=()
for d in $(bound_dirs) "${binds[@]}"; do
  # A directory bound by an earlier run and deleted on the host since (a CI checkout is
  # removed after its run and re-created at the same path for the next one): its mount in
  # the root still shows the deleted directory, so the new one would be invisible to jobs
  # (exit 127).  Unmount it; bind it again below if it exists and is still wanted.
  if mounted "$ROOT$d" && stale_bind "$d"; then
    umount_under "$ROOT$d"
    log "unbound $d (the host's $d is gone or was re-created since it was bound)"
  fi
  [ -d "$d" ] || continue # gone from the host: nothing to bind
  case "$d" in
    / | /proc | /dev | /sys | /etc | /usr | /bin | /sbin | /lib | /var | /var/lib) die "refusing to bind $d into the root" ;;
    "$ROOT" | "$ROOT"/* | "$HOME_DIR") die "refusing to bind $d: it holds the root itself" ;;
    /tmp | /tmp/*) die "refusing to bind $d: DAGs under /tmp abort in DAGMan strict mode (use $WORK)" ;;
  esac
  # already covered by a bound ancestor (the same path inside and outside)
  covered=0
  for b in "${new_binds[@]}"; do case "$d/" in "$b"/*) covered=1 ;; esac; done
  [ $covered = 1 ] && continue
  new_binds+=("$d")
  if ! mounted "$ROOT$d"; then
    mkdir -p "$ROOT$d"
    mount --bind "$d" "$ROOT$d" || die "mount --bind $d $ROOT$d failed"
    mount --make-slave "$ROOT$d" 2>/dev/null || true
    log "bound $d"
  fi
done
printf '%s\n' "${new_binds[@]}" >"$STATE/binds"
grep -qw "$(hostname)" "$ROOT/etc/hosts" 2>/dev/null || echo "127.0.1.1 $(hostname)" >>"$ROOT/etc/hosts"

# ------------------------------------------------------------------ 4. configuration
POOL_CONF="$MARKER
# Single-node HTCondor pool for the bpsc HTCondor backend (backends/htcondor/README.md),
# on top of minicondor's own configuration.
# The starter cannot unshare a mount or PID namespace inside a chroot.
MOUNT_UNDER_SCRATCH =
USE_PID_NAMESPACES = False
# The test payloads sleep: more slots than cores is fine.
NUM_CPUS = $CPUS
MEMORY = $MEM
DISK = $DISK
# Match, start and notice ended jobs within seconds.
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
SCHEDD_INTERVAL = 2
STARTER_UPDATE_INTERVAL = 2
UPDATE_INTERVAL = 5
DAGMAN_USER_LOG_SCAN_INTERVAL = 1
# Keep finished jobs in condor_history for the tests.
MAX_HISTORY_LOG = 200000000
# Memory is enforced, as on a production pool: a job that uses more memory than its slot was
# given is held.  Production execute points do it with cgroups (the kernel kills the job, the
# starter holds it with HoldReasonCode 34); this chroot has no cgroups, so the schedd's system
# policy compares the job's MemoryUsage with the memory provisioned for it (its slot's, which
# is what a cgroup limit would be) and holds it with code 26 (SystemPolicy) and subcode 34, as
# pools that enforce memory by policy do.  Checked every 5 s; the shadow refreshes MemoryUsage
# every 10 s (minicondor's SHADOW_QUEUE_UPDATE_INTERVAL), so a start is judged after 12 s of
# it, when MemoryUsage is its own and not the previous start's.
PERIODIC_EXPR_INTERVAL = 5
SYSTEM_PERIODIC_HOLD = JobUniverse == 5 && JobStatus == 2 && MemoryUsage =!= undefined && time() - JobCurrentStartDate > 12 && MemoryUsage > (MemoryProvisioned ?: RequestMemory)
SYSTEM_PERIODIC_HOLD_REASON = strcat(\"memory usage \", MemoryUsage, \" MB exceeded the \", MemoryProvisioned ?: RequestMemory, \" MB provisioned\")
SYSTEM_PERIODIC_HOLD_SUBCODE = 34"
# changed: 0 same, 1 policy only (condor_reconfig: running jobs, other users' DAGs too, carry
# on), 2 the slot's resources (a restart of the daemons is needed).
changed=0
resources() { grep -E '^(NUM_CPUS|MEMORY|DISK|MOUNT_UNDER_SCRATCH|USE_PID_NAMESPACES) ' "$@" 2>/dev/null || true; }
if [ -e "$CONF" ] && [ "$(cat "$CONF")" = "$POOL_CONF" ]; then :; else
  if [ -e "$CONF" ] && [ "$(resources "$CONF")" = "$(printf '%s\n' "$POOL_CONF" | resources)" ]; then changed=1; else changed=2; fi
  printf '%s\n' "$POOL_CONF" >"$CONF.tmp.$$" && mv -f "$CONF.tmp.$$" "$CONF"
  log "wrote $CONF"
fi
# The shared recipe's file (same purpose, older settings) must not override ours.
rm -f "$ROOT/etc/condor/config.d/99-bpsc-test-pool"

# ------------------------------------------------------------------ 5. host wrappers
for t in $TOOLS; do
  [ -x "$ROOT/usr/bin/$t" ] || [ -x "$ROOT/usr/sbin/$t" ] || continue
  w=$BIN/$t
  # Tools that read or write files relative to the current directory refuse to run anywhere
  # else; the others run from / when it is not visible.
  case $t in condor_submit_dag | condor_submit | condor_wait | condor_userlog) strict=1 ;; *) strict=0 ;; esac
  text="#!/bin/sh
$WRAPPER_MARKER
# Runs $t inside the pool's root $ROOT as user $U, in the caller's directory
# (which must be bound: $WORK, or a directory pool-up.sh was given).
[ \"\$(id -u)\" = 0 ] || { echo \"$t: the bpsc HTCondor pool's tools run as root (they chroot)\" >&2; exit 2; }
# The same directory inside: same device and inode (the root's own /tmp is another one).
exec env PATH=$SAFE_PATH USER=$U LOGNAME=$U HOME=/tmp chroot --userspec=$U:$U \"$ROOT\" /bin/sh -c '
  if ! cd \"\$1\" 2>/dev/null || [ \"\$(stat -c %d:%i .)\" != \"\$2\" ]; then
    [ $strict = 1 ] || cd /
    [ $strict = 0 ] || { echo \"$t: the current directory \$1 is not visible in the pool (work under $WORK, or bind it with backends/htcondor/pool-up.sh DIR)\" >&2; exit 2; }
  fi
  shift 2; exec \"\$@\"' sh \"\$PWD\" \"\$(stat -c %d:%i .)\" $t \"\$@\""
  if [ -e "$w" ] && ! grep -qF -e "$WRAPPER_MARKER" -e "$OTHER_WRAPPER_MARKER" "$w"; then
    die "$w exists and is not a bpsc pool wrapper; move it away first (this script never overwrites a real HTCondor tool)"
  fi
  if [ ! -e "$w" ] || [ "$(cat "$w")" != "$text" ]; then
    printf '%s\n' "$text" >"$w.tmp.$$" && chmod 0755 "$w.tmp.$$" && mv -f "$w.tmp.$$" "$w"
    wrote_wrappers=1
  fi
done
[ "${wrote_wrappers:-0}" = 1 ] && log "wrote condor_* wrappers in $BIN"

# ------------------------------------------------------------------ 6. daemons
if pid=$(master_pid); then
  if [ $changed = 2 ]; then
    log "the slot's resources changed: restarting the pool (condor_restart)"
    in_root condor_restart -master >/dev/null 2>&1 || die "condor_restart failed"
    sleep 2
  elif [ $changed = 1 ]; then
    log "configuration changed: condor_reconfig"
    in_root condor_reconfig >/dev/null 2>&1 || die "condor_reconfig failed"
  fi
else
  # Created inside the root: /var/run and /var/lock there are absolute symlinks to /run.
  in_root sh -c 'install -d -o condor -g condor /run/condor /run/lock/condor /var/log/condor /var/lib/condor \
    /var/lib/condor/spool /var/lib/condor/execute && chown -R condor:condor /var/log/condor /var/lib/condor' \
    || die "cannot create HTCondor's run, lock, log and spool directories in the root"
  rm -f "$ROOT$PIDFILE"
  # condor_master daemonises itself; setsid and no inherited stdout, so callers that pipe
  # this script's output are not held open by the daemons.
  env -i PATH=$SAFE_PATH HOME=/root LANG=C.UTF-8 setsid chroot "$ROOT" condor_master -pidfile "$PIDFILE" </dev/null >/dev/null 2>&1 9>&- \
    || die "condor_master did not start (see $CONDOR_LOG/MasterLog)"
  poll 15 master_pid || die "condor_master wrote no live pid file $ROOT$PIDFILE (see $CONDOR_LOG/MasterLog)"
  log "condor_master started (pid $(master_pid))"
fi
poll "$TIMEOUT" slot_ready || die "no execute slot in the collector after ${TIMEOUT}s (see $CONDOR_LOG/StartLog, CollectorLog)"
poll "$TIMEOUT" schedd_ready || die "the schedd does not answer condor_q after ${TIMEOUT}s (see $CONDOR_LOG/SchedLog)"
log "pool up in $(elapsed) s; submit directories go under $WORK (chown -R $U: DIR; condor_submit_dag workflow.dag)"
status
