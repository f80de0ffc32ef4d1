/* SPDX-License-Identifier: MIT */
/*
 * Uploads to GCS: one request for objects up to chunk-size (media, or
 * multipart when the object carries holds or retention), a resumable
 * session for larger ones, whose URI and confirmed offset travel in the
 * gateway's resume token so that an upload survives a crash.
 */
#ifndef DRGW_GCS_PUT_H
#define DRGW_GCS_PUT_H

#include <stdint.h>

#include <drgw/backend.h>

#include "gcs_int.h"

/* put() of the ABI; see backend.h. */
int gcs_put(struct gcs *g, const char *key, struct drgw_put_source *src,
	    struct drgw_err *err);

/* abort_put() of the ABI: cancels the session a token names, if any. */
int gcs_abort_put(struct gcs *g, const char *key, const void *token,
		  size_t token_len, struct drgw_err *err);

/*
 * The offset a resumable session continues at, from the Range header of
 * a 308 ("bytes=0-N" gives N + 1; no header, v == NULL, gives 0).
 * @return 0, or -EIO for anything else (a range not starting at 0).
 */
int gcs_put_next_offset(const char *v, uint64_t *ret_offset);

#endif /* DRGW_GCS_PUT_H */
