/* SPDX-License-Identifier: MIT */
/*
 * Ranged reads shared by the S3 and GCS plugins; see prange.h.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "pcodec.h"
#include "prange.h"

void prange_init(struct prange *rg, void *buf, size_t len, uint64_t off)
{
	memset(rg, 0, sizeof(*rg));
	rg->buf = buf;
	rg->len = len;
	rg->off = off;
}

int prange_content_range(const struct phttp_response *resp,
			 uint64_t *ret_first, uint64_t *ret_last,
			 uint64_t *ret_total)
{
	char v[128], *dash, *slash;
	uint64_t a, b, total;

	if (phttp_header(resp, "Content-Range", v, sizeof(v)) < 0 ||
	    strncmp(v, "bytes ", 6))
		return -EIO;
	dash = strchr(v + 6, '-');
	slash = dash ? strchr(dash, '/') : NULL;
	if (!dash || !slash)
		return -EIO;
	*dash = *slash = '\0';
	if (pcodec_parse_u64(v + 6, UINT64_MAX, &a) < 0 ||
	    pcodec_parse_u64(dash + 1, UINT64_MAX, &b) < 0 || b < a)
		return -EIO;
	if (!strcmp(slash + 1, "*"))
		total = UINT64_MAX;
	else if (pcodec_parse_u64(slash + 1, UINT64_MAX, &total) < 0 ||
		 b >= total)
		return -EIO;
	*ret_first = a;
	*ret_last = b;
	*ret_total = total;
	return 0;
}

int prange_sink(void *arg, struct phttp_response *resp, const char *data,
		size_t n)
{
	struct prange *rg = arg;

	/* First data of an attempt: decide how to read this answer. */
	if (resp->body_bytes == n) {
		rg->got = 0;
		rg->skip = 0;
		rg->bad = 0;
		if (resp->status == 206) {
			/* Servers may send more than asked (s3rver answers
			 * bytes=0-0 with the whole object) but must start
			 * where asked. */
			if (prange_content_range(resp, &rg->first, &rg->last,
						 &rg->total) < 0 ||
			    rg->first != rg->off) {
				rg->bad = 1;
				return -EIO;
			}
		} else {
			/* 200: the server ignored Range and sends it all. */
			rg->skip = rg->off;
		}
	}
	if (rg->skip) {
		size_t drop = rg->skip < n ? (size_t)rg->skip : n;

		rg->skip -= drop;
		data += drop;
		n -= drop;
	}
	/* Stop only when the server sends more than asked (a 200 with the
	 * whole object, s3rver's bytes=0-0): an exact answer ends by itself
	 * and leaves the connection reusable for the next chunk. */
	if (n > rg->len - rg->got) {
		memcpy(rg->buf + rg->got, data, rg->len - rg->got);
		rg->got = rg->len;
		return 1;
	}
	memcpy(rg->buf + rg->got, data, n);
	rg->got += n;
	return 0;
}

int prange_check_short(const struct prange *rg,
		       const struct phttp_response *resp)
{
	uint64_t a, b, total;

	if (rg->got >= rg->len)
		return 0;
	if (resp->status == 206) {
		/* Re-read from the final answer: the sink may not have seen
		 * a body on the last attempt. */
		if (prange_content_range(resp, &a, &b, &total) < 0 ||
		    b + 1 != total || rg->got != b - a + 1)
			return -EIO;
		return 0;
	}
	/* A 200 is short only where the whole body ended, or when the
	 * object ends before off. */
	if (resp->body_bytes != rg->off + rg->got &&
	    !(resp->body_bytes < rg->off && rg->got == 0))
		return -EIO;
	return 0;
}
