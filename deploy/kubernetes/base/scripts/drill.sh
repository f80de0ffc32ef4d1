#!/bin/sh
# drill.sh: the monthly restore drill; the drgw-drill CronJob runs
# `/bin/sh /scripts/drill.sh`.
#
# `drgw drill` restores the newest snapshot of every name pattern from every
# backend into a scratch directory under TMPDIR with an empty cache, checks
# its content hash, runs PRAGMA integrity_check and DRILL_CHECK_SQL on SQLite
# files, and records the results in the catalog of DRILL_CACHE.  It needs no
# FUSE mount, but the identity (DRGW_IDENTITY_DIR, see identity.sh).  The results are pushed as drgw_drill_* metrics; the script
# exits with drill's status: 0 when every backend passed, 1 otherwise.
set -eu

: "${DRGW:=drgw}"
: "${DRGW_CONFIG:=/etc/drgw/drgw.conf}"
: "${DRILL_CACHE:=/var/lib/drgw-drill}"
: "${DRILL_CHECK_SQL:=SELECT COUNT(*) FROM applications}"
: "${DRILL_BACKEND:=}"

mkdir -p "$DRILL_CACHE" "${TMPDIR:-/tmp}"
set -- --config "$DRGW_CONFIG" --cache "$DRILL_CACHE"
# shellcheck source=identity.sh
. "$(dirname "$0")/identity.sh"
if [ -n "$DRILL_CHECK_SQL" ]; then
    set -- "$@" --check-sql "$DRILL_CHECK_SQL"
fi
if [ -n "$DRILL_BACKEND" ]; then
    set -- "$@" --backend "$DRILL_BACKEND"
fi

. "$(dirname "$0")/forward.sh"
run_forwarding "$DRGW" drill "$@"

if [ "$rc" -eq 0 ]; then
    echo "drill: every backend restored and checked" >&2
else
    echo "drill: FAILED with status $rc (see the table above)" >&2
fi

/bin/sh "$(dirname "$0")/push-metrics.sh" drill "$DRILL_CACHE" || :
exit "$rc"
