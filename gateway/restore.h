/* SPDX-License-Identifier: MIT */
/*
 * Getting snapshots back: the restore view (restore_fs.c) and the
 * `drgw restore`, `drgw verify` and `drgw backfill` commands (restore.c).
 */
#ifndef DRGW_RESTORE_H
#define DRGW_RESTORE_H

#include <stdbool.h>

#include "gateway.h"
#include "reader.h"
#include "remote.h"

struct drgw_restore_view;

/* Scans the backends and builds the tree the restore mount shows. */
int drgw_restore_view_new(struct drgw_gateway *gw, struct drgw_reader *rd,
			  struct drgw_restore_view **ret, struct drgw_err *err);
struct drgw_restore_view *drgw_restore_view_free(struct drgw_restore_view *v);
/* Opens the catalog again once the mount went to the background (as
 * drgw_mount_opts.started), so that opening a file takes the tail the scan
 * kept there.  Without it, files open by reading their tails. */
int drgw_restore_view_started(void *view, struct drgw_err *err);

/* Reader options from the configuration. */
void drgw_reader_opts_from_config(const struct drgw_config *cfg,
				  struct drgw_reader_opts *ret);

/*
 * Copies the whole plaintext of location loc of snapshot s into fd,
 * checking its SHA-256 against the authenticated footer.  *ret_sha256
 * receives the digest.  -EIO/-EBADMSG on any mismatch.  With whole, every
 * byte of the object is read from the backend, its tail too (verify,
 * drill); else the tail the scan kept is used (drgw_remote_open()).
 */
int drgw_restore_copy(struct drgw_gateway *gw, struct drgw_reader *rd,
		      const struct drgw_snapshot *s, size_t loc, int fd,
		      bool whole, uint8_t ret_sha256[32],
		      struct drgw_err *err);

/*
 * Uploads the object of location loc of s as it is stored (encrypted) to
 * backend dst under the same key, through an unlinked temporary file in
 * the cache directory.  The caller checks the copy by reading it back.
 */
/*
 * The same by key: size bytes of key on backend src, to dst.  With
 * expect_sha256, nothing is uploaded (-EBADMSG) unless the bytes read
 * have that SHA-256: how a writer that cannot decrypt checks a source.
 */
int drgw_restore_copy_key(struct drgw_gateway *gw, size_t src,
			  const char *key, uint64_t size, size_t dst,
			  const uint8_t *expect_sha256, struct drgw_err *err);
int drgw_restore_copy_object(struct drgw_gateway *gw,
			     const struct drgw_snapshot *s, size_t loc,
			     size_t dst, struct drgw_err *err);

/*
 * If the catalog cat (NULL: none) records that snapshot s failed its
 * SQLite check at ingest, or, where cat does not know s (a restore from
 * the bucket alone), its object does, writes a warning into buf that
 * says so and names
 * the newest version in set of the same series (name pattern) that passed,
 * and returns true.  For the restore view and `drgw restore`, which log
 * it and go on: the chosen version may be all there is.
 */
bool drgw_restore_check_warning(struct drgw_catalog *cat,
				const struct drgw_remote_set *set,
				const struct drgw_snapshot *s, char *buf,
				size_t size);

#endif
