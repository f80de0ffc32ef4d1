#!/bin/sh
# push-metrics.sh GROUP [CACHE]: pushes the metrics of `drgw status
# --prometheus` to a Prometheus Pushgateway, for the short-lived pods of
# the backup, drill and prune CronJobs (deploy/README.md, "Metrics").
#
# Does nothing when DRGW_PUSHGATEWAY_URL is empty.  The grouping key is
# job="drgw", namespace=$POD_NAMESPACE, instance=GROUP, and each push
# replaces its group:
#   backup  every drgw_* metric except drgw_drill_* (the cache volume's
#           catalog: RPO, pending replicas, backend health)
#   drill   only drgw_drill_* (the drill's own catalog knows nothing else)
#   prune   only drgw_prune_* (the prune CronJob's own catalog)
# A failed push is a warning, never the job's failure.
set -eu

: "${DRGW:=drgw}"
: "${DRGW_CONFIG:=/etc/drgw/drgw.conf}"
: "${DRGW_PUSHGATEWAY_URL:=}"
: "${POD_NAMESPACE:=default}"

group=${1:?usage: push-metrics.sh GROUP [CACHE]}
cache=${2:-}
[ -n "$DRGW_PUSHGATEWAY_URL" ] || exit 0

set -- --config "$DRGW_CONFIG"
if [ -n "$cache" ]; then
    set -- "$@" --cache "$cache"
fi

case $group in
drill) keep='^drgw_drill_' drop='^$' ;;
prune) keep='^drgw_prune_' drop='^$' ;;
*) keep='^drgw_' drop='^drgw_drill_' ;;
esac

tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.all"' EXIT
if ! "$DRGW" status --prometheus "$@" >"$tmp.all"; then
    echo "push-metrics: drgw status --prometheus failed; nothing pushed" >&2
    exit 1
fi
# One metric family is its "# HELP" and "# TYPE" lines and its samples.
awk -v keep="$keep" -v drop="$drop" '
    /^#/ { name = $3 }
    !/^#/ { name = $0; sub(/[{ ].*/, "", name) }
    name ~ keep && name !~ drop
' "$tmp.all" >"$tmp"

url="${DRGW_PUSHGATEWAY_URL%/}/metrics/job/drgw/namespace/$POD_NAMESPACE/instance/$group"
if ! curl -fsS --max-time 30 --retry 3 -X PUT --data-binary "@$tmp" "$url"; then
    echo "push-metrics: push to $url failed" >&2
    exit 1
fi
