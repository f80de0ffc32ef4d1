/* SPDX-License-Identifier: MIT */
/*
 * Deleting in batches and reading Object Lock state, for drgw prune (see
 * s3_del.c for why the lock checks are as careful as they are).
 */
#ifndef DRGW_S3_DEL_H
#define DRGW_S3_DEL_H

#include <drgw/backend.h>

#include "phttp.h"
#include "s3_int.h"

/* ops->remove_many: DeleteObjects for up to 1000 keys; a service that
 * lacks it gets one DELETE per key.  A 403 names s3:DeleteObject. */
int s3_remove_many(struct s3 *s3, const char *const *keys, size_t n,
		   int *results, struct drgw_err *err);

/* ctl(DRGW_CTL_RETENTION): the bucket's Object Lock configuration and
 * default retention, and the plugin's own object-lock-* options.
 * Remembers whether the bucket has Object Lock, for s3_head_locks(). */
int s3_retention(struct s3 *s3, struct drgw_retention *ret);

/* Fills info's lock fields from a successful HEAD of key; on a bucket
 * with Object Lock, asks ?retention and ?legal-hold for what HEAD left
 * out (S3 omits those headers for callers who may not read them). */
int s3_head_locks(struct s3 *s3, const char *key,
		  const struct phttp_response *head,
		  struct drgw_object_info *info, struct drgw_err *err);

#endif /* DRGW_S3_DEL_H */
