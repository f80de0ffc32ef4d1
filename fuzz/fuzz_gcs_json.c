/* SPDX-License-Identifier: MIT */
/*
 * The GCS plugin's readers of server and credential-file JSON (gcs_json.h)
 * and of the Range header of a resumable upload's 308 (gcs_put.h).  The
 * first input byte picks the reader (modulo 7: error, object, listing
 * page, OAuth token, credentials file, Range, bucket retention policy),
 * the rest is the input.
 * Whatever a reader hands out must be NUL-terminated within its buffer
 * and within the documented ranges.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gcs_json.h"
#include "gcs_put.h"

#define TOKEN_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
		    "0123456789-._~+/="

static void check_pbuf(const struct pbuf *b)
{
	if (b->failed)
		return;
	if (b->alloc && (b->len >= b->alloc || b->buf[b->len] != '\0' ||
			 strlen(b->buf) != b->len))
		abort();
}

/* NUL-terminated within size, and free of control characters. */
static void check_line(const char *s, size_t size)
{
	const char *end = memchr(s, '\0', size);

	if (!end)
		abort();
	for (; s < end; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			abort();
}

static void check_object(const struct gcs_object *o)
{
	size_t n = strnlen(o->name, sizeof(o->name));

	if (n == 0 || n > GCS_MAX_NAME ||
	    !memchr(o->generation, '\0', sizeof(o->generation)) ||
	    !memchr(o->crc32c, '\0', sizeof(o->crc32c)) ||
	    !memchr(o->md5, '\0', sizeof(o->md5)))
		abort();
}

static int on_item(void *arg, const struct gcs_object *o)
{
	unsigned *n = arg;

	check_object(o);
	(*n)++;
	return !strcmp(o->name, "stop");
}

static void error_doc(const char *s, size_t len)
{
	char reason[32], msg[96];

	gcs_json_error(s, len, reason, sizeof(reason), msg, sizeof(msg));
	check_line(reason, sizeof(reason));
	check_line(msg, sizeof(msg));
}

static void object_doc(const char *s, size_t len)
{
	struct gcs_object o;

	if (gcs_json_object(s, len, &o) == 0)
		check_object(&o);
}

static void list_doc(const char *s, size_t len)
{
	struct pbuf next = PBUF_INIT;
	unsigned n = 0;

	if (gcs_json_list(s, len, on_item, &n, &next) == 1 && !n)
		abort();
	check_pbuf(&next);
	pbuf_release(&next);
}

static void token_doc(const char *s, size_t len)
{
	struct pbuf tok = PBUF_INIT;
	int64_t exp = -1;

	if (gcs_json_token(s, len, &tok, &exp) == 0 &&
	    (!tok.len || tok.len > 8192 ||
	     strspn(tok.buf, TOKEN_CHARS) != tok.len ||
	     exp < 0 || exp > INT32_MAX))
		abort();
	check_pbuf(&tok);
	pbuf_release_secret(&tok);
}

static void key_file_doc(const char *s, size_t len)
{
	struct gcs_key_file k;
	char why[128];
	int r = gcs_json_key_file(s, len, &k, why, sizeof(why));

	if (r == 0) {
		if (!k.type ||
		    (!strcmp(k.type, "service_account") &&
		     (!k.client_email || !k.private_key)) ||
		    (!strcmp(k.type, "authorized_user") &&
		     (!k.client_id || !k.client_secret || !k.refresh_token)))
			abort();
		gcs_key_file_release(&k);
	} else if (r == -EINVAL &&
		   (!memchr(why, '\0', sizeof(why)) || !why[0])) {
		abort();
	}
}

static void range_header(const char *s, size_t len)
{
	char *v = malloc(len + 1);
	uint64_t off;

	if (!v)
		return;
	memcpy(v, s, len);
	v[len] = '\0';
	if (gcs_put_next_offset(v, &off) == 0 &&
	    (off == 0 || strncmp(v, "bytes=0-", 8)))
		abort();
	free(v);
}

static void bucket_doc(const char *s, size_t len)
{
	uint64_t period = 1;
	int locked = -1;

	if (gcs_json_bucket_retention(s, len, &period, &locked) == 0 &&
	    locked != 0 && locked != 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;

	if (size < 1)
		return 0;
	switch (data[0] % 7) {
	case 0:
		error_doc(s, size - 1);
		break;
	case 1:
		object_doc(s, size - 1);
		break;
	case 2:
		list_doc(s, size - 1);
		break;
	case 3:
		token_doc(s, size - 1);
		break;
	case 4:
		key_file_doc(s, size - 1);
		break;
	case 5:
		range_header(s, size - 1);
		break;
	default:
		bucket_doc(s, size - 1);
		break;
	}
	return 0;
}
