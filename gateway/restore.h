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

/* Reader options from the configuration. */
void drgw_reader_opts_from_config(const struct drgw_config *cfg,
				  struct drgw_reader_opts *ret);

/*
 * Copies the whole plaintext of location loc of snapshot s into fd,
 * checking its SHA-256 against the authenticated footer.  *ret_sha256
 * receives the digest.  -EIO/-EBADMSG on any mismatch.
 */
int drgw_restore_copy(struct drgw_gateway *gw, struct drgw_reader *rd,
		      const struct drgw_snapshot *s, size_t loc, int fd,
		      uint8_t ret_sha256[32],
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

#endif
