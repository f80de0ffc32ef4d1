#!/bin/sh
# restore.sh: puts the newest off-cluster backup back in place of
# $DATA_DIR/$DB_NAME.db.  Run by a Job created from the drgw-restore
# CronJob template (deploy/README.md, "Restore runbook"); stop the
# application first.
#
# 1. mounts the read-only restore view of the backends on RESTORE_DIR, with
#    a new, empty cache: it needs nothing but the identity (the files of
#    DRGW_IDENTITY_DIR, see identity.sh) and the buckets;
# 2. copies the newest $DB_NAME-*.db (by mtime, as `ls -t`), or the snapshot
#    named by RESTORE_SNAPSHOT, next to the database, gives it the old
#    database's owner and mode, checks it with PRAGMA integrity_check and
#    only then renames it into place.  The database it
#    replaces is kept as $DB_NAME.db.pre-restore, with its -wal and -journal,
#    so no stale WAL is ever applied to the restored file;
# 3. unmounts, also on failure.
#
# With DRGW_NO_MOUNT=1 (the restricted variant) step 1 and 3 are
# `drgw restore --latest "$DB_NAME-*.db"` (the snapshot sealed last) or
# `drgw restore RESTORE_SNAPSHOT`, straight from the backends, without FUSE;
# the owner is kept only when the script runs as root (run the Job as the
# application's user).
set -eu

: "${DRGW:=drgw}"
: "${DRGW_CONFIG:=/etc/drgw/drgw.conf}"
: "${DATA_DIR:=/data}"
: "${RESTORE_DIR:=/restore}"
: "${RESTORE_CACHE:=/var/lib/drgw-restore}"
: "${DB_NAME:=app}"
: "${RESTORE_SNAPSHOT:=}"
# Mode of a restored database that replaces none (its owner is DATA_DIR's).
: "${DB_MODE:=0644}"
: "${MOUNT_TIMEOUT:=60}"
: "${DRGW_NO_MOUNT:=}"

db="$DATA_DIR/$DB_NAME.db"
tmp="$DATA_DIR/.$DB_NAME.db.restoring"
pid=''

cleanup() {
    rm -f "$tmp"
    [ -n "$pid" ] || return 0
    if mountpoint -q "$RESTORE_DIR"; then
        fusermount3 -u "$RESTORE_DIR" 2>/dev/null || umount -l "$RESTORE_DIR" || :
    fi
    kill -TERM "$pid" 2>/dev/null || :
    wait "$pid" 2>/dev/null || :
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

mkdir -p "$RESTORE_CACHE" "$DATA_DIR"
set --
# shellcheck source=identity.sh
. "$(dirname "$0")/identity.sh"
if [ -n "$DRGW_NO_MOUNT" ]; then
    if [ -n "$RESTORE_SNAPSHOT" ]; then
        set -- "$@" "$RESTORE_SNAPSHOT"
    else
        set -- "$@" --latest "$DB_NAME-*.db"
    fi
    src=${RESTORE_SNAPSHOT:-the newest $DB_NAME-*.db}
    echo "restore: restoring $src to $db" >&2
    rm -f "$tmp"
    if ! "$DRGW" restore --config "$DRGW_CONFIG" --cache "$RESTORE_CACHE" \
        "$@" "$tmp"; then
        echo "restore: no snapshot ${RESTORE_SNAPSHOT:-$DB_NAME-*.db} restored from the backends of $DRGW_CONFIG" >&2
        exit 1
    fi
else
    mkdir -p "$RESTORE_DIR"
    "$DRGW" mount -f --restore --config "$DRGW_CONFIG" --cache "$RESTORE_CACHE" \
        "$@" "$RESTORE_DIR" &
    pid=$!

    tries=$((MOUNT_TIMEOUT * 5))
    until mountpoint -q "$RESTORE_DIR"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "restore: drgw mount --restore exited before mounting $RESTORE_DIR" >&2
            exit 1
        fi
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then
            echo "restore: $RESTORE_DIR not mounted after ${MOUNT_TIMEOUT}s" >&2
            exit 1
        fi
        sleep 0.2
    done

    if [ -n "$RESTORE_SNAPSHOT" ]; then
        src="$RESTORE_DIR/$RESTORE_SNAPSHOT"
    else
        # The seed's restore line: the newest backup by modification time.
        # shellcheck disable=SC2012 # names are $DB_NAME-<digits>.db
        src=$(ls -t "$RESTORE_DIR/$DB_NAME"-*.db 2>/dev/null | head -1) || :
    fi
    if [ -z "$src" ] || [ ! -f "$src" ]; then
        echo "restore: no snapshot ${RESTORE_SNAPSHOT:-$DB_NAME-*.db} on the backends of $DRGW_CONFIG" >&2
        exit 1
    fi
    echo "restore: restoring $src to $db" >&2
    cp "$src" "$tmp"
fi

# The restore view's files are read-only and root's: give the copy the owner
# and mode of the database it replaces, or of DATA_DIR and DB_MODE.  (Only
# root can give a file away; without it the copy is this user's.)
if [ -e "$db" ]; then
    [ "$(id -u)" != 0 ] || chown --reference="$db" "$tmp"
    chmod --reference="$db" "$tmp"
else
    [ "$(id -u)" != 0 ] || chown --reference="$DATA_DIR" "$tmp"
    chmod "$DB_MODE" "$tmp"
fi
check=$(sqlite3 -readonly "$tmp" "PRAGMA integrity_check;")
if [ "$check" != ok ]; then
    echo "restore: $src fails PRAGMA integrity_check: $check" >&2
    exit 1
fi

if [ -e "$db" ]; then
    mv -f "$db" "$db.pre-restore"
    for x in wal journal; do
        if [ -e "$db-$x" ]; then
            mv -f "$db-$x" "$db.pre-restore-$x"
        else
            rm -f "$db.pre-restore-$x"
        fi
    done
fi
rm -f "$db-wal" "$db-shm" "$db-journal"
mv "$tmp" "$db"
sync

check=$(sqlite3 "$db" "PRAGMA integrity_check;")
echo "restore: PRAGMA integrity_check: $check" >&2
[ "$check" = ok ]
echo "restore: $db restored from $(basename "$src")" >&2
