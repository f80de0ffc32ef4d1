/* SPDX-License-Identifier: MIT */
/*
 * Growable byte buffer with sticky allocation errors; see pbuf.h.  Growth
 * doubles the allocation so that appending n bytes one by one costs O(n).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "pbuf.h"

static int grow(struct pbuf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->failed)
		return -ENOMEM;
	if (extra > SIZE_MAX - b->len - 1)
		goto fail;
	need = b->len + extra + 1;
	if (need <= b->alloc)
		return 0;
	cap = b->alloc ? b->alloc : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	/* Not realloc(): the old block may hold a secret (a credentials
	 * answer, a signed token), and free() would leave it in the heap. */
	p = malloc(cap);
	if (!p)
		goto fail;
	if (b->buf) {
		memcpy(p, b->buf, b->len);
		OPENSSL_cleanse(b->buf, b->alloc);
		free(b->buf);
	}
	b->buf = p;
	b->alloc = cap;
	b->buf[b->len] = '\0';
	return 0;
fail:
	b->failed = 1;
	return -ENOMEM;
}

int pbuf_add(struct pbuf *b, const void *data, size_t len)
{
	if (grow(b, len) < 0)
		return -ENOMEM;
	if (len)
		memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
	return 0;
}

int pbuf_adds(struct pbuf *b, const char *s)
{
	return pbuf_add(b, s, strlen(s));
}

int pbuf_addch(struct pbuf *b, char c)
{
	return pbuf_add(b, &c, 1);
}

int pbuf_vaddf(struct pbuf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	if (grow(b, 64) < 0)
		return -ENOMEM;
	va_copy(cp, ap);
	n = vsnprintf(b->buf + b->len, b->alloc - b->len, fmt, cp);
	va_end(cp);
	if (n < 0) {
		b->buf[b->len] = '\0';
		return -EINVAL;
	}
	if ((size_t)n >= b->alloc - b->len) {
		if (grow(b, (size_t)n) < 0)
			return -ENOMEM;
		vsnprintf(b->buf + b->len, b->alloc - b->len, fmt, ap);
	}
	b->len += (size_t)n;
	return 0;
}

int pbuf_addf(struct pbuf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = pbuf_vaddf(b, fmt, ap);
	va_end(ap);
	return r;
}

const char *pbuf_str(const struct pbuf *b)
{
	if (b->failed)
		return NULL;
	return b->buf ? b->buf : "";
}

void pbuf_reset(struct pbuf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->buf)
		b->buf[0] = '\0';
}

void pbuf_release(struct pbuf *b)
{
	free(b->buf);
	*b = (struct pbuf)PBUF_INIT;
}

void pbuf_release_secret(struct pbuf *b)
{
	if (b->buf)
		OPENSSL_cleanse(b->buf, b->alloc);
	pbuf_release(b);
}

char *pbuf_detach(struct pbuf *b, size_t *ret_len)
{
	char *s;

	/* grow() makes sure an empty buffer still owns a "" to hand out. */
	if (grow(b, 0) < 0) {
		pbuf_release(b);
		return NULL;
	}
	s = b->buf;
	if (ret_len)
		*ret_len = b->len;
	*b = (struct pbuf)PBUF_INIT;
	return s;
}
