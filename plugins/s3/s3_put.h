/* SPDX-License-Identifier: MIT */
/*
 * Uploads: single PUT for objects smaller than the part size, parallel
 * resumable multipart uploads for the others, and abort_put().
 */
#ifndef DRGW_S3_PUT_H
#define DRGW_S3_PUT_H

#include <drgw/backend.h>

#include "s3_int.h"

int s3_put(struct s3 *s3, const char *key, struct drgw_put_source *src,
	   struct drgw_err *err);

int s3_abort_put(struct s3 *s3, const char *key, const void *token,
		 size_t token_len, struct drgw_err *err);

/*
 * The part size for an object of size bytes: at least min_part, grown so
 * that the resume token of every part fits its 64 KiB and S3's 10,000
 * part limit holds.  0 if the object is too large for 5 GiB parts.
 */
uint64_t s3_part_size(uint64_t size, uint64_t min_part, int with_sha256);

#endif /* DRGW_S3_PUT_H */
