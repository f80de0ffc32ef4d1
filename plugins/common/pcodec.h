/* SPDX-License-Identifier: MIT */
/*
 * Text encodings the cloud protocols need: lowercase hex (SigV4 hashes),
 * base64 (Content-MD5, x-amz-checksum-*, GCS hashes), the strict RFC 3986
 * percent-encoding that both SigV4 and GCS object names require, and
 * checked number parsers (the project bans atoi/strtol without checks).
 */
#ifndef DRGW_PCODEC_H
#define DRGW_PCODEC_H

#include <stddef.h>
#include <stdint.h>

#include "pbuf.h"

/* Writes 2 * n lowercase hex digits and a NUL into out. */
void pcodec_hex(char *out, const void *in, size_t n);

/* Reads exactly 2 * n hex digits (either case, then the end of hex) into
 * n bytes of out.  @return 0 or -EINVAL (out may be partly written). */
int pcodec_unhex(const char *hex, void *out, size_t n);

/* Size of the base64 text for n bytes, including the NUL. */
#define PCODEC_BASE64_SIZE(n) ((((n) + 2) / 3) * 4 + 1)

/* Standard base64 with padding; out holds PCODEC_BASE64_SIZE(n) bytes. */
void pcodec_base64(char *out, const void *in, size_t n);

/* Buffer size for pcodec_base64url() of n bytes: that of the padded
 * form, which it writes before dropping the padding. */
#define PCODEC_BASE64URL_SIZE(n) PCODEC_BASE64_SIZE(n)

/* URL-safe base64 without padding (RFC 4648 section 5), as JWTs use;
 * out holds PCODEC_BASE64URL_SIZE(n) bytes. */
void pcodec_base64url(char *out, const void *in, size_t n);

/*
 * Decodes padded standard base64 of len chars into out (out_size bytes).
 * @return 0 and *ret_len, or -EINVAL on bad input, -ENOBUFS if out is
 * too small.
 */
int pcodec_unbase64(void *out, size_t out_size, const char *in, size_t len,
		    size_t *ret_len);

/*
 * Appends s percent-encoded: every byte except A-Z a-z 0-9 - . _ ~ (and
 * '/' when keep_slash) becomes %XY with uppercase hex.  This is AWS's
 * UriEncode() and RFC 3986's unreserved set.
 */
int pcodec_uri_encode(struct pbuf *b, const char *s, size_t len,
		      int keep_slash);

/* Decodes %XY escapes (no '+' to space) of s into b; -EINVAL if malformed. */
int pcodec_uri_decode(struct pbuf *b, const char *s, size_t len);

/* Appends "k=v" (v percent-encoded) to a form body, with '&' if needed. */
void pcodec_form_add(struct pbuf *b, const char *k, const char *v);

/* Parses a whole decimal string; -EINVAL if s is not one, -ERANGE if the
 * value exceeds max. */
int pcodec_parse_u64(const char *s, uint64_t max, uint64_t *ret_val);

/* Parses a size like "16777216", "16M", "16MiB", "5g" (binary units). */
int pcodec_parse_size(const char *s, uint64_t *ret_val);

/* Parses an RFC 3339 UTC time such as "2013-05-24T00:00:00Z" or
 * "2009-10-12T17:50:30.000Z" (also "+00:00") into ns since the epoch;
 * -EINVAL for times int64_t ns cannot hold (after 2262-04-11). */
int pcodec_parse_rfc3339(const char *s, int64_t *ret_ns);

/* Parses a boolean option value: 1/0, true/false, yes/no, on/off. */
int pcodec_parse_bool(const char *s, int *ret_val);

/*
 * Cuts the next line off the text at *p: ends it at its '\n' (written
 * over with a NUL) and advances *p past it.  The last line needs no '\n'.
 * @return the line, pointing into the caller's text, or NULL at the end.
 */
char *pcodec_next_line(char **p);

#endif /* DRGW_PCODEC_H */
