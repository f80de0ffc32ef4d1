/* SPDX-License-Identifier: MIT */
/*
 * SigV4 signing (AWS "Signature Version 4 signing process", S3 flavour):
 *
 *   CanonicalRequest = method \n path \n query \n headers \n signed \n hash
 *   StringToSign = "AWS4-HMAC-SHA256" \n date \n scope \n hex(sha256(CR))
 *   kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, day), region), service),
 *                   "aws4_request")
 *
 * S3 differs from the other services in two ways this file relies on: the
 * path is encoded once and never normalized, and the payload hash is sent
 * in x-amz-content-sha256.  The signing key is recomputed per request
 * rather than cached: four HMACs cost microseconds, and not caching keeps
 * derived secrets off the heap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "pcodec.h"
#include "pdigest.h"
#include "sigv4.h"

/* An encoded query pair or a canonical header line, for sorting. */
struct entry {
	char *name;
	char *value;
};

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static void free_entries(struct entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
}

void sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int sigv4_query_string(struct pbuf *out, const struct sigv4_kv *q, size_t n)
{
	struct entry *e;
	int r = 0;

	if (n == 0)
		return 0;
	e = calloc(n, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct pbuf k = PBUF_INIT, v = PBUF_INIT;

		pcodec_uri_encode(&k, q[i].name, strlen(q[i].name), 0);
		pcodec_uri_encode(&v, q[i].value, strlen(q[i].value), 0);
		e[i].name = pbuf_detach(&k, NULL);
		e[i].value = pbuf_detach(&v, NULL);
		if (!e[i].name || !e[i].value) {
			r = -ENOMEM;
			goto out;
		}
	}
	qsort(e, n, sizeof(*e), cmp_entry);
	for (size_t i = 0; i < n; i++)
		pbuf_addf(out, "%s%s=%s", i ? "&" : "", e[i].name, e[i].value);
	r = out->failed ? -ENOMEM : 0;
out:
	free_entries(e, n);
	return r;
}

/* Lowercase name; value trimmed with inner runs of spaces collapsed. */
static int canon_header(const struct sigv4_kv *h, struct entry *e)
{
	struct pbuf n = PBUF_INIT, v = PBUF_INIT;
	const char *p = h->value;
	int space = 0;

	for (const char *s = h->name; *s; s++)
		pbuf_addch(&n, (*s >= 'A' && *s <= 'Z') ? (char)(*s + 32) : *s);
	while (*p == ' ' || *p == '\t')
		p++;
	for (; *p; p++) {
		if (*p == ' ' || *p == '\t') {
			space = 1;
			continue;
		}
		if (space && v.len)
			pbuf_addch(&v, ' ');
		space = 0;
		pbuf_addch(&v, *p);
	}
	e->name = pbuf_detach(&n, NULL);
	e->value = pbuf_detach(&v, NULL);
	return e->name && e->value ? 0 : -ENOMEM;
}

static int signing_key(const struct sigv4_key *key, const char *day,
		       unsigned char out[PDIGEST_SHA256_LEN])
{
	struct pbuf k = PBUF_INIT;
	unsigned char a[PDIGEST_SHA256_LEN], b[PDIGEST_SHA256_LEN];
	int r;

	pbuf_addf(&k, "AWS4%s", key->secret_key);
	if (!pbuf_str(&k))
		return -ENOMEM;
	r = pdigest_hmac_sha256(k.buf, k.len, day, strlen(day), a);
	if (!r)
		r = pdigest_hmac_sha256(a, sizeof(a), key->region,
					strlen(key->region), b);
	if (!r)
		r = pdigest_hmac_sha256(b, sizeof(b), key->service,
					strlen(key->service), a);
	if (!r)
		r = pdigest_hmac_sha256(a, sizeof(a), "aws4_request", 12, out);
	pbuf_release_secret(&k);
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return r;
}

int sigv4_sign(const struct sigv4_request *rq, const struct sigv4_key *key,
	       const char *amz_date, struct sigv4_result *res)
{
	struct pbuf *cr = &res->canonical_request;
	struct pbuf signed_names = PBUF_INIT;
	unsigned char hash[PDIGEST_SHA256_LEN], kdate[PDIGEST_SHA256_LEN];
	unsigned char sig[PDIGEST_SHA256_LEN];
	char hex[2 * PDIGEST_SHA256_LEN + 1], day[9];
	struct entry *h;
	int r;

	if (strlen(amz_date) != 16 || amz_date[8] != 'T')
		return -EINVAL;
	memcpy(day, amz_date, 8);
	day[8] = '\0';

	h = calloc(rq->n_headers ? rq->n_headers : 1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < rq->n_headers; i++) {
		r = canon_header(&rq->headers[i], &h[i]);
		if (r < 0)
			goto out;
	}
	qsort(h, rq->n_headers, sizeof(*h), cmp_entry);

	pbuf_addf(cr, "%s\n%s\n", rq->method, rq->path);
	r = sigv4_query_string(cr, rq->query, rq->n_query);
	if (r < 0)
		goto out;
	pbuf_addch(cr, '\n');
	for (size_t i = 0; i < rq->n_headers; i++) {
		/* Two values for one name would have to be comma-joined;
		 * we never send that, so treat it as a caller bug. */
		if (i && !strcmp(h[i].name, h[i - 1].name)) {
			r = -EINVAL;
			goto out;
		}
		pbuf_addf(cr, "%s:%s\n", h[i].name, h[i].value);
		pbuf_addf(&signed_names, "%s%s", i ? ";" : "", h[i].name);
	}
	pbuf_addf(cr, "\n%s\n%s", pbuf_str(&signed_names) ?: "",
		  rq->payload_hash);
	if (!pbuf_str(cr) || !pbuf_str(&signed_names)) {
		r = -ENOMEM;
		goto out;
	}

	r = pdigest_sha256(cr->buf, cr->len, hash);
	if (r < 0)
		goto out;
	pcodec_hex(hex, hash, sizeof(hash));
	pbuf_addf(&res->string_to_sign,
		  "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date,
		  day, key->region, key->service, hex);
	if (!pbuf_str(&res->string_to_sign)) {
		r = -ENOMEM;
		goto out;
	}

	r = signing_key(key, day, kdate);
	if (!r)
		r = pdigest_hmac_sha256(kdate, sizeof(kdate),
					res->string_to_sign.buf,
					res->string_to_sign.len, sig);
	OPENSSL_cleanse(kdate, sizeof(kdate));
	if (r < 0)
		goto out;
	pcodec_hex(hex, sig, sizeof(sig));
	pbuf_addf(&res->authorization,
		  "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
		  "SignedHeaders=%s, Signature=%s",
		  key->access_key, day, key->region, key->service,
		  signed_names.buf, hex);
	r = pbuf_str(&res->authorization) ? 0 : -ENOMEM;
out:
	free_entries(h, rq->n_headers);
	pbuf_release(&signed_names);
	return r;
}

void sigv4_result_release(struct sigv4_result *res)
{
	pbuf_release(&res->canonical_request);
	pbuf_release(&res->string_to_sign);
	pbuf_release(&res->authorization);
}
