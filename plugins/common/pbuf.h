/* SPDX-License-Identifier: MIT */
/*
 * A growable byte buffer for the backend plugins (request URLs, header
 * lines, XML bodies, response bodies).  The plugins may not link the
 * gateway's own string helpers, so this is their minimal equivalent.
 *
 * Errors are sticky, like stdio's ferror(): once an append fails for lack
 * of memory, the buffer is marked failed, later appends do nothing, and
 * pbuf_str() returns NULL.  Callers therefore build a whole string and
 * check once at the end instead of after every append.
 */
#ifndef DRGW_PBUF_H
#define DRGW_PBUF_H

#include <stdarg.h>
#include <stddef.h>

#include <drgw/backend.h>

struct pbuf {
	char *buf;	/* NUL-terminated when alloc > 0 */
	size_t len;
	size_t alloc;
	int failed;	/* an append ran out of memory */
};

#define PBUF_INIT { NULL, 0, 0, 0 }

/* Appends; return 0 or -ENOMEM (and mark the buffer failed). */
int pbuf_add(struct pbuf *b, const void *data, size_t len);
int pbuf_adds(struct pbuf *b, const char *s);
int pbuf_addch(struct pbuf *b, char c);
int pbuf_addf(struct pbuf *b, const char *fmt, ...) DRGW_PRINTF(2, 3);
int pbuf_vaddf(struct pbuf *b, const char *fmt, va_list ap)
	DRGW_PRINTF(2, 0);

/* The contents as a C string ("" when empty), or NULL after a failed
 * append.  Valid until the next append or release. */
const char *pbuf_str(const struct pbuf *b);

/* Forgets the contents, keeping the memory and clearing the failed mark. */
void pbuf_reset(struct pbuf *b);

/* Frees the memory; the buffer is then empty and reusable. */
void pbuf_release(struct pbuf *b);

/* Like pbuf_release(), but overwrites the memory first: for buffers that
 * held secrets (signing keys, tokens read from files). */
void pbuf_release_secret(struct pbuf *b);

/* Hands the malloc()ed string to the caller, who frees it; the buffer is
 * left empty.  NULL after a failed append (the buffer is then released). */
char *pbuf_detach(struct pbuf *b, size_t *ret_len);

#endif /* DRGW_PBUF_H */
