#!/bin/sh
# notify.sh - stand-in for the notification command of the bpsc examples.
#
#   notify.sh CAMPAIGN EVENT [STEP]
#
# Appends one tab-separated line (campaign, event, step) to $FAKE_NOTIFY_LOG, or writes
# it to stderr when that is unset.  In production this is mail(1) or a chat webhook.
set -u
[ $# -ge 2 ] || { echo "usage: notify.sh CAMPAIGN EVENT [STEP]" >&2; exit 64; }
line=$(printf '%s\t%s\t%s' "$1" "$2" "${3-}")
if [ -n "${FAKE_NOTIFY_LOG-}" ]; then
    printf '%s\n' "$line" >>"$FAKE_NOTIFY_LOG"
else
    printf 'notify: %s\n' "$line" >&2
fi
