#!/bin/sh
# copy-key.sh: the init container of the restricted variant's restore,
# drill and prune jobs runs it (components/restricted, deploy/README.md
# "Without FUSE").  The backup job holds no secret and has none.
#
# drgw refuses an identity or key file that group or others may read.  A
# pod that runs as non-root can read the drgw-identity Secret only through
# its fsGroup, which makes the files group-readable (0440), so this copies
# every file of the Secret volume KEY_SOURCE into KEY_DIR (a memory-backed
# emptyDir) as files of this user with mode 0400, where the job's
# DRGW_IDENTITY_DIR points.  Nothing else is copied (the kubelet's ..data
# links are skipped), nothing is printed but the names.
set -eu

: "${KEY_SOURCE:=/etc/drgw-identity-secret}"
: "${KEY_DIR:=/etc/drgw-identity}"

umask 077
found=''
for f in "$KEY_SOURCE"/*; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    rm -f "$KEY_DIR/.$name.tmp"
    cat "$f" >"$KEY_DIR/.$name.tmp"
    chmod 0400 "$KEY_DIR/.$name.tmp"
    mv -f "$KEY_DIR/.$name.tmp" "$KEY_DIR/$name"
    echo "copy-key: $KEY_DIR/$name" >&2
    found=1
done
if [ -z "$found" ]; then
    echo "copy-key: no identity file in $KEY_SOURCE (the Secret drgw-identity)" >&2
    exit 1
fi
