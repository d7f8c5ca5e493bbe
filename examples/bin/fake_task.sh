#!/bin/sh
# fake_task.sh - stand-in payload for the bpsc examples (interface: examples/README.md).
#
#   fake_task.sh [--task=NAME] [--data-id=ID] [--attempt=N] [--OPTION=VALUE ...] [--] [OUTPUT ...]
#
# Sleeps a little, then writes every OUTPUT (creating parent directories), or fails on
# request.  Each OUTPUT argument may hold several paths separated by whitespace, so it
# works whether {outputs} expands to one word per path or to one quoted word.
# Other --OPTION=VALUE arguments (pipeline, skymap, log, ...) are accepted and ignored.
#
# Environment (TASK below is --task upper-cased, every other character mapped to `_`):
#   FAKE_TASK_SLEEP, FAKE_TASK_SLEEP_<TASK>   seconds to sleep (default 0.2)
#   FAKE_TASK_FAIL_<TASK>          `;`-separated shell globs matched against the data ID;
#                                  on a match the task fails without writing outputs
#   FAKE_TASK_FAIL_CODE_<TASK>, FAKE_TASK_FAIL_CODE
#                                  exit status of an injected failure (default 1)
#   FAKE_TASK_FAIL_ATTEMPTS_<TASK> `,`-separated attempt numbers the failure applies to
#                                  (default: every attempt)
#   FAKE_TASK_NO_OUTPUT_<TASK>     globs as above; on a match the task exits 0 but writes
#                                  no outputs (for testing `verify`)
#   FAKE_TASK_LOG                  file to append one tab-separated line per run to:
#                                  task, data ID, attempt, result (ok|fail:<code>|no-output)
set -u

task=unknown
data_id=
attempt=

while [ $# -gt 0 ]; do
    case $1 in
        --task=*)    task=${1#--task=} ;;
        --data-id=*) data_id=${1#--data-id=} ;;
        --attempt=*) attempt=${1#--attempt=} ;;
        --)          shift; break ;;
        --*=*)       : ;;
        -*)          echo "fake_task: unknown option '$1'" >&2; exit 64 ;;
        *)           break ;;
    esac
    shift
done

key=$(printf '%s' "$task" | LC_ALL=C tr '[:lower:]' '[:upper:]' | LC_ALL=C tr -c 'A-Z0-9' '_')

# getenv NAME: print the value of the variable NAME, or nothing when unset.
getenv() { eval "printf '%s' \"\${$1-}\""; }

# matches PATTERNS: does the data ID match one of the `;`-separated globs?
matches() {
    [ -n "$1" ] || return 1
    set -f
    old_ifs=$IFS; IFS=';'
    for pat in $1; do
        case $data_id in
            $pat) IFS=$old_ifs; set +f; return 0 ;;
        esac
    done
    IFS=$old_ifs; set +f
    return 1
}

log() {
    if [ -n "${FAKE_TASK_LOG-}" ]; then
        printf '%s\t%s\t%s\t%s\n' "$task" "$data_id" "$attempt" "$1" >>"$FAKE_TASK_LOG"
    fi
}

echo "fake_task: $task [$data_id] attempt ${attempt:-?} on $(hostname 2>/dev/null || echo unknown)"

sleep_s=$(getenv "FAKE_TASK_SLEEP_$key")
[ -n "$sleep_s" ] || sleep_s=${FAKE_TASK_SLEEP:-0.2}
sleep "$sleep_s"

if matches "$(getenv "FAKE_TASK_FAIL_$key")"; then
    attempts=$(getenv "FAKE_TASK_FAIL_ATTEMPTS_$key")
    case ",$attempts," in
        ,,|*",$attempt,"*)
            code=$(getenv "FAKE_TASK_FAIL_CODE_$key")
            [ -n "$code" ] || code=${FAKE_TASK_FAIL_CODE:-1}
            echo "fake_task: injected failure of $task [$data_id], exit $code" >&2
            log "fail:$code"
            exit "$code"
            ;;
    esac
fi

if matches "$(getenv "FAKE_TASK_NO_OUTPUT_$key")"; then
    echo "fake_task: injected missing outputs for $task [$data_id]" >&2
    log "no-output"
    exit 0
fi

n=0
set -f
for arg in "$@"; do
    for path in $arg; do
        case $path in
            file://*) path=${path#file://} ;;
            *://*)    echo "fake_task: cannot write remote output '$path'" >&2; exit 65 ;;
        esac
        mkdir -p "$(dirname "$path")" || exit 73
        # Content depends on the task and data ID only, so checksums are stable across
        # attempts and runs.
        printf 'task=%s\ndata_id=%s\n' "$task" "$data_id" >"$path" || exit 73
        n=$((n + 1))
    done
done
set +f

echo "fake_task: $task [$data_id] wrote $n output(s)"
log ok
exit 0
