#!/bin/sh
# backup.sh: the daily backup; the drgw-backup CronJob runs
# `/bin/sh /scripts/backup.sh`.
#
# BACKUP_DIR is a drgw mount for the length of the job.  The two lines of the
# original backup job run unchanged inside `drgw run`, which then waits until
# every snapshot they wrote is on every backend (or on DRGW_MIN_BACKENDS of
# them), unmounts, and exits with:
# (With DRGW_NO_MOUNT=1, the restricted variant, nothing is mounted:
# BACKUP_DIR is an ordinary directory and `drgw run --no-mount` seals what
# the two lines wrote there once they exited; the statuses are the same.)
#   0      the backup was written and replicated
#   3      the backup was written, but replication did not finish within
#          DRGW_DRAIN_TIMEOUT; the rest stays queued on the cache volume and
#          the next run (a retry of this Job, or tomorrow's) finishes it
#   4      with DRGW_PRUNE=on: written and replicated, but pruning a
#          backend failed (the log says why; the next run prunes again)
#   5      the backup was written and replicated, but failed its SQLite
#          check (drgw ls says why); it may not restore
#   1      drgw failed (mount, configuration, recipients); 2 usage error
#   other  the backup command's own status
# The script exits with that status, after pushing the metrics (see
# push-metrics.sh), so a Job succeeds only when its backup is off the node.
#
# The job encrypts to drgw.conf's recipients and holds no secret (write-only
# keys).  Only the symmetric variant sets DRGW_IDENTITY_DIR, to a Secret
# with the master key (identity.sh; deploy/README.md, "A symmetric key
# instead").
#
# Every path comes from the environment, so the same script runs against
# scratch directories in tests (tests/deploy).
set -eu

: "${DRGW:=drgw}"
: "${DRGW_CONFIG:=/etc/drgw/drgw.conf}"
: "${DATA_DIR:=/data}"
: "${BACKUP_DIR:=/backup}"
# The database file is $DATA_DIR/$DB_NAME.db; backups are $DB_NAME-<time>.db.
: "${DB_NAME:=app}"
# Backups kept in BACKUP_DIR (the cache volume); the backends keep every one.
: "${KEEP_LOCAL:=7}"
# Must stay below the pod's terminationGracePeriodSeconds.
: "${DRGW_DRAIN_TIMEOUT:=15m}"
: "${DRGW_MIN_BACKENDS:=}"
: "${DRGW_METRICS_LISTEN:=}"
# Non-empty: no FUSE mount (the Pod Security "restricted" variant).
: "${DRGW_NO_MOUNT:=}"
# on: apply drgw.conf's retention policy after a successful backup.
: "${DRGW_PRUNE:=off}"
export DATA_DIR BACKUP_DIR DB_NAME KEEP_LOCAL

mkdir -p "$BACKUP_DIR"
if [ -n "$DRGW_NO_MOUNT" ]; then
    set -- --no-mount --dir "$BACKUP_DIR"
else
    set -- --mount "$BACKUP_DIR"
fi
set -- --config "$DRGW_CONFIG" "$@" --drain-timeout "$DRGW_DRAIN_TIMEOUT"
if [ -n "$DRGW_MIN_BACKENDS" ]; then
    set -- "$@" --min-backends "$DRGW_MIN_BACKENDS"
fi
if [ -n "$DRGW_METRICS_LISTEN" ]; then
    set -- "$@" --metrics-listen "$DRGW_METRICS_LISTEN"
fi
if [ "$DRGW_PRUNE" = on ]; then
    set -- "$@" --prune
fi
# shellcheck source=identity.sh
. "$(dirname "$0")/identity.sh"

# This shell is PID 1 of the container: run_forwarding passes the pod's
# SIGTERM on to drgw run, which hands it to the backup command, drains the
# upload queue and unmounts.
# shellcheck source=forward.sh
. "$(dirname "$0")/forward.sh"

# The backup job itself: the seed's two lines, with its paths from the
# environment.  (sqlite3 takes the .backup argument in double quotes too.)
# shellcheck disable=SC2016 # expanded by the inner shell, on purpose
run_forwarding "$DRGW" run "$@" -- /bin/sh -ec '
sqlite3 "$DATA_DIR/$DB_NAME.db" ".backup \"$BACKUP_DIR/$DB_NAME-$(date +%Y%m%d-%H%M%S).db\""
ls -t "$BACKUP_DIR/$DB_NAME"-*.db | tail -n +"$((KEEP_LOCAL + 1))" | xargs -r -d "\n" rm --
'

case $rc in
0) echo "backup: written and replicated" >&2 ;;
3) echo "backup: written, replication unfinished after $DRGW_DRAIN_TIMEOUT; queued for the next run" >&2 ;;
4) echo "backup: written and replicated, but the prune failed; the next run prunes again" >&2 ;;
5) echo "backup: written and replicated, but it failed its SQLite check; see drgw ls" >&2 ;;
*) echo "backup: failed with status $rc" >&2 ;;
esac

/bin/sh "$(dirname "$0")/push-metrics.sh" backup || :
exit "$rc"
