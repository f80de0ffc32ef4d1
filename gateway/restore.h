/* SPDX-License-Identifier: MIT */
/*
 * Getting snapshots back: the restore view (restore_fs.c) and the
 * `drgw restore` and `drgw verify` commands (restore.c).
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
		      bool check_header, uint8_t ret_sha256[32],
		      struct drgw_err *err);

#endif
