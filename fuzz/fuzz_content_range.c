/* SPDX-License-Identifier: MIT */
/*
 * Ranged reads shared by the cloud plugins (prange.h): the Content-Range
 * parser, and prange_sink() fed a fake 206 or 200 the way phttp's write
 * callback feeds it.  Input: a flags byte (bit 0: 206 rather than 200,
 * bit 1: a first attempt cut short before the full one), the length and
 * the offset asked for, the chunk size, then the Content-Range value up to
 * the first '\n' and the body after it.  The parsed range must be ordered,
 * and the sink must stay within the caller's buffer (exactly len bytes, so
 * ASan sees any overrun) and put the right bytes there.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "prange.h"

static void check_content_range(const struct phttp_response *resp)
{
	uint64_t a = 1, b = 2, total = 3;

	if (prange_content_range(resp, &a, &b, &total) < 0) {
		if (a != 1 || b != 2 || total != 3)
			abort();	/* written although it failed */
		return;
	}
	if (a > b || (total != UINT64_MAX && b >= total))
		abort();
}

/* One attempt delivering body[0..n) in chunks; returns the sink's last
 * result. */
static int attempt(struct prange *rg, struct phttp_response *resp,
		   const char *body, size_t n, size_t chunk)
{
	int r = 0;

	resp->body_bytes = 0;
	resp->sink_stopped = 0;
	for (size_t pos = 0; pos < n && !r; pos += chunk) {
		size_t c = n - pos < chunk ? n - pos : chunk;

		resp->body_bytes += c;
		r = prange_sink(rg, resp, body + pos, c);
		if (rg->got > rg->len)
			abort();
	}
	if (r > 0)
		resp->sink_stopped = 1;
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct phttp_response resp = { 0 };
	struct prange rg;
	const char *value, *body, *nl;
	size_t vlen, blen, len, chunk;
	uint64_t off;
	char *buf;
	int r;

	if (size < 4)
		return 0;
	resp.status = data[0] & 1 ? 206 : 200;
	len = data[1];
	off = data[2];
	chunk = (size_t)(data[3] % 64) + 1;
	value = (const char *)data + 4;
	nl = memchr(value, '\n', size - 4);
	vlen = nl ? (size_t)(nl - value) : size - 4;
	body = nl ? nl + 1 : value + vlen;
	blen = size - 4 - vlen - (nl ? 1 : 0);

	/* Stored as phttp's header callback stores them: raw lines. */
	pbuf_addf(&resp.headers, "HTTP/1.1 %ld X\r\nContent-Range: ",
		  resp.status);
	pbuf_add(&resp.headers, value, vlen);
	pbuf_adds(&resp.headers, "\r\nContent-Type: application/octet-stream\r\n\r\n");
	if (!pbuf_str(&resp.headers))
		goto out;
	check_content_range(&resp);

	buf = malloc(len);
	if (!buf && len)
		goto out;
	prange_init(&rg, buf, len, off);
	if (data[0] & 2)
		attempt(&rg, &resp, body, blen / 2, chunk);
	r = attempt(&rg, &resp, body, blen, chunk);
	if (r < 0) {
		if (r != -EIO || !rg.bad || resp.status != 206)
			abort();
	} else {
		if (r > 0 && rg.got != rg.len)
			abort();
		if (resp.status == 206 && blen && rg.first != off)
			abort();
		/* A 206 starts at off; a 200 is the whole object. */
		if (resp.status == 200 && off >= blen && rg.got)
			abort();
		if (rg.got && memcmp(buf, resp.status == 206 ? body : body + off,
				     rg.got))
			abort();
		prange_check_short(&rg, &resp);
	}
	free(buf);
out:
	phttp_response_release(&resp);
	return 0;
}
