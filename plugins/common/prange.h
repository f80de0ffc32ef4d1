/* SPDX-License-Identifier: MIT */
/*
 * Ranged reads over HTTP, as both cloud backends do them: ask
 * "Range: bytes=a-b", accept a 206 only if its Content-Range starts at a,
 * slice a 200 that ignored the Range and sent the whole object, and stop
 * the transfer only when the server sends more than was asked (an exact
 * answer ends by itself and leaves the connection reusable).  The plugins
 * keep what is theirs: the request, 416 handling, messages, and any check
 * of the whole body (GCS's crc32c) in a sink that wraps prange_sink().
 */
#ifndef DRGW_PRANGE_H
#define DRGW_PRANGE_H

#include <stddef.h>
#include <stdint.h>

#include "phttp.h"

/* Where a ranged GET's body goes.  Caller-embedded; nothing to free. */
struct prange {
	char *buf;			/* caller's, len bytes */
	size_t len;			/* wanted */
	uint64_t off;			/* of buf[0] in the object */
	size_t got;			/* bytes of buf filled so far */
	uint64_t skip;			/* body bytes before off (a 200) */
	uint64_t first, last, total;	/* Content-Range of a 206 */
	int bad;			/* the answer is not the range asked */
};

/* Sets up rg to receive len bytes at off into buf. */
void prange_init(struct prange *rg, void *buf, size_t len, uint64_t off);

/*
 * Parses resp's "Content-Range: bytes a-b/total"; *ret_total is
 * UINT64_MAX for "*".  The out-parameters are written only on success.
 * @return 0, or -EIO when the header is missing or malformed.
 */
int prange_content_range(const struct phttp_response *resp,
			 uint64_t *ret_first, uint64_t *ret_last,
			 uint64_t *ret_total);

/*
 * A phttp sink (struct phttp_request.sink) with a struct prange as arg.
 * Each attempt starts over.  Returns -EIO and sets rg->bad for a 206 that
 * does not start at rg->off, 1 once rg->len bytes are in and the server
 * sends more, else 0.
 */
int prange_sink(void *arg, struct phttp_response *resp, const char *data,
		size_t n);

/*
 * After a successful transfer with rg->got < rg->len: whether the answer
 * was short only because the object ends there.
 * @return 0 if so, -EIO for a short answer in the middle of the object.
 */
int prange_check_short(const struct prange *rg,
		       const struct phttp_response *resp);

#endif /* DRGW_PRANGE_H */
