#!/bin/sh
# identity.sh: sourced by the scripts (`. "$(dirname "$0")/identity.sh"`),
# it appends to their positional parameters the options that decrypt: for
# every file of DRGW_IDENTITY_DIR (the Secret drgw-identity, mounted 0400)
#   --identity FILE     (from `drgw keygen --identity`), or
#   --key-file FILE     for a file named *.key: a master key, from before
#                       write-only keys (for the backups it encrypted) or
#                       of the symmetric variant.
# Without DRGW_IDENTITY_DIR it adds nothing.  The restore, drill and prune
# jobs set it; the backup job does not: it holds only recipients
# (deploy/README.md, "Write-only keys"), except in the symmetric variant.
set -eu

: "${DRGW_IDENTITY_DIR:=}"

if [ -n "$DRGW_IDENTITY_DIR" ]; then
    _id_found=''
    # The kubelet's ..data links are dot files: * skips them.
    for _id_file in "$DRGW_IDENTITY_DIR"/*; do
        [ -f "$_id_file" ] || continue
        case $_id_file in
        *.key) set -- "$@" --key-file "$_id_file" ;;
        *) set -- "$@" --identity "$_id_file" ;;
        esac
        _id_found=1
    done
    if [ -z "$_id_found" ]; then
        echo "$(basename "$0" .sh): no identity in $DRGW_IDENTITY_DIR (the Secret drgw-identity): create it from your identity file (deploy/README.md, \"Write-only keys\")" >&2
        exit 1
    fi
    unset _id_found _id_file
fi
