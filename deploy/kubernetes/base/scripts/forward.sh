#!/bin/sh
# forward.sh: sourced by backup.sh, drill.sh and prune.sh.  run_forwarding CMD...
# runs CMD in the background and waits for it, passing SIGTERM and SIGINT
# on (the script is PID 1, which ignores signals it has no handler for);
# CMD's exit status ends up in $rc.
set -eu

# shellcheck disable=SC2034 # rc is for the script that sources this
run_forwarding() {
    pid='' term=''
    trap 'term=1; [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || :' TERM INT
    "$@" &
    pid=$!
    [ -z "$term" ] || kill -TERM "$pid" 2>/dev/null || :
    rc=0
    while :; do
        if wait "$pid"; then rc=0; else rc=$?; fi
        # A wait cut short by the trap returns 128+15 with CMD running.
        kill -0 "$pid" 2>/dev/null || break
    done
    trap - TERM INT
}
