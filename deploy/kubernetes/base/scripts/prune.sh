#!/bin/sh
# prune.sh: retention by a dedicated identity; the drgw-prune CronJob runs
# `/bin/sh /scripts/prune.sh` daily.
#
# `drgw prune` applies each backend's retention policy from drgw.conf to
# what the backend holds, read from the objects themselves (PRUNE_CACHE
# starts empty: it keeps only this run's record, for the metrics).  Never
# removed: the newest snapshot of every series, and objects that Object
# Lock or GCS retention protect.  Exit status: 0 done, 1 a backend failed
# (the others were pruned; what was removed is recorded and the next run
# finishes the rest), 2 no policy.  The drgw_prune_* metrics are pushed.
# The names and times the policy needs are in each object's encrypted
# footer: prune decrypts, with the identity (DRGW_IDENTITY_DIR, see
# identity.sh), which is why the backup job, holding only recipients,
# cannot prune.
set -eu

: "${DRGW:=drgw}"
: "${DRGW_CONFIG:=/etc/drgw/drgw.conf}"
: "${PRUNE_CACHE:=/var/lib/drgw-prune}"

mkdir -p "$PRUNE_CACHE"
set --
# shellcheck source=identity.sh
. "$(dirname "$0")/identity.sh"

. "$(dirname "$0")/forward.sh"
run_forwarding "$DRGW" prune --config "$DRGW_CONFIG" --cache "$PRUNE_CACHE" "$@"

if [ "$rc" -eq 0 ]; then
    echo "prune: every backend pruned" >&2
else
    echo "prune: FAILED with status $rc (see above)" >&2
fi

/bin/sh "$(dirname "$0")/push-metrics.sh" prune "$PRUNE_CACHE" || :
exit "$rc"
