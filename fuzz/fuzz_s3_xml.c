/* SPDX-License-Identifier: MIT */
/*
 * The S3 plugin's readers of server XML (s3_xml.h): error bodies,
 * ListObjectsV2 pages, InitiateMultipartUpload, ListParts and
 * ListMultipartUploads results, STS credentials, DeleteObjects results
 * and Object Lock answers.  The first input byte picks the reader (modulo
 * 10: error, list, upload id, list parts, STS, delete result, lock
 * configuration, retention, legal hold, list uploads), the rest is the
 * document.  Whatever
 * a reader hands out must be NUL-terminated and within the documented
 * ranges.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "s3_xml.h"

/* A pbuf's contents, when it has any, are NUL-terminated at len. */
static void check_pbuf(const struct pbuf *b)
{
	if (b->failed)
		return;
	if (b->alloc && (b->len >= b->alloc || b->buf[b->len] != '\0' ||
			 strlen(b->buf) != b->len))
		abort();
}

/* Sums what it sees so that every field is read. */
static volatile uint64_t seen;

/* A key "stop" stops the listing, to reach that path too. */
static int on_object(void *arg, const struct s3_xml_object *o)
{
	unsigned *n = arg;

	if (!o->key || !o->etag || strlen(o->etag) >= 256)
		abort();
	seen += strlen(o->key) + o->size + (uint64_t)o->mtime_ns + o->etag[0];
	(*n)++;
	return !strcmp(o->key, "stop");
}

/* A part of size 1234567 fails the walk with the callback's error. */
static int on_part(void *arg, unsigned number, const char *etag,
		   uint64_t size)
{
	unsigned *n = arg;

	if (!etag || strlen(etag) >= 256 || number > 10000)
		abort();
	seen += number + size + etag[0];
	(*n)++;
	return size == 1234567 ? -ECANCELED : 0;
}

static void error_doc(const char *xml, size_t len)
{
	char code[16], msg[64];

	if (s3_xml_error(xml, len, code, sizeof(code), msg, sizeof(msg)) == 0 &&
	    (!memchr(code, '\0', sizeof(code)) ||
	     !memchr(msg, '\0', sizeof(msg))))
		abort();
}

static void list_doc(const char *xml, size_t len)
{
	struct pbuf next = PBUF_INIT;
	unsigned n = 0;
	int r = s3_xml_list(xml, len, on_object, &n, &next);

	check_pbuf(&next);
	if (r == 1 && !n)
		abort();
	if (r < 0 && r != -EIO && r != -ENOMEM)
		abort();
	pbuf_release(&next);
}

static void upload_id_doc(const char *xml, size_t len)
{
	struct pbuf id = PBUF_INIT;

	if (s3_xml_upload_id(xml, len, &id) == 0 && !id.len)
		abort();
	check_pbuf(&id);
	pbuf_release(&id);
}

static void list_parts_doc(const char *xml, size_t len)
{
	unsigned n = 0, marker = 99999;

	if (s3_xml_list_parts(xml, len, on_part, &n, &marker) >= 0 &&
	    marker > 10000)
		abort();
}

/* An upload id "stop" fails the walk with the callback's error. */
static int on_upload(void *arg, const char *key, const char *upload_id)
{
	unsigned *n = arg;

	if (!key || !upload_id || !*upload_id)
		abort();
	seen += strlen(key) + strlen(upload_id);
	(*n)++;
	return strcmp(upload_id, "stop") ? 0 : -ECANCELED;
}

static void list_uploads_doc(const char *xml, size_t len)
{
	struct pbuf nk = PBUF_INIT, nu = PBUF_INIT;
	unsigned n = 0;

	/* Truncated pages name where the next one starts. */
	if (s3_xml_list_uploads(xml, len, on_upload, &n, &nk, &nu) == 0 &&
	    nu.len && !nk.len)
		abort();
	check_pbuf(&nk);
	check_pbuf(&nu);
	pbuf_release(&nk);
	pbuf_release(&nu);
}

static void sts_doc(const char *xml, size_t len)
{
	struct pbuf akid = PBUF_INIT, secret = PBUF_INIT, token = PBUF_INIT;
	int64_t exp;

	if (s3_xml_sts_credentials(xml, len, &akid, &secret, &token, &exp) == 0 &&
	    (!akid.len || !secret.len || !token.len))
		abort();
	check_pbuf(&akid);
	check_pbuf(&secret);
	check_pbuf(&token);
	pbuf_release(&akid);
	pbuf_release_secret(&secret);
	pbuf_release_secret(&token);
}

/* A key "stop" stops the walk with the callback's error. */
static int on_delete_error(void *arg, const char *key, const char *code,
			   const char *msg)
{
	if (!key || strlen(code) >= 64 || strlen(msg) >= 256)
		abort();
	seen += strlen(key) + code[0] + msg[0];
	(void)arg;
	return strcmp(key, "stop") ? 0 : -ECANCELED;
}

static void lock_docs(int which, const char *xml, size_t len)
{
	struct s3_xml_lock_config lc;
	int64_t until = -1;
	int on = -1;

	switch (which) {
	case 5:
		if (s3_xml_delete_errors(xml, len, on_delete_error, NULL) > 0)
			abort();
		break;
	case 6:
		if (s3_xml_object_lock(xml, len, &lc) == 0 &&
		    (!memchr(lc.mode, '\0', sizeof(lc.mode)) ||
		     lc.days > 1000000 + 365 * 10000ULL))
			abort();
		break;
	case 7:
		if (s3_xml_retention(xml, len, &until) == 0 && until == -1)
			abort();
		break;
	default:
		if (s3_xml_legal_hold(xml, len, &on) == 0 && on != 0 && on != 1)
			abort();
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *xml = (const char *)data + 1;

	if (size < 1)
		return 0;
	s3_xml_init();
	switch (data[0] % 10) {
	case 0:
		error_doc(xml, size - 1);
		break;
	case 1:
		list_doc(xml, size - 1);
		break;
	case 2:
		upload_id_doc(xml, size - 1);
		break;
	case 3:
		list_parts_doc(xml, size - 1);
		break;
	case 4:
		sts_doc(xml, size - 1);
		break;
	default:
		if (data[0] % 10 == 9)
			list_uploads_doc(xml, size - 1);
		else
			lock_docs(data[0] % 10, xml, size - 1);
		break;
	}
	return 0;
}
