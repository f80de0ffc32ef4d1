/* SPDX-License-Identifier: MIT */
/*
 * RS256 JWT assertions with OpenSSL libcrypto; see gcs_jwt.h.
 *
 * The JSON is produced by jansson (so iss/scope/aud are escaped
 * correctly whatever they contain), then base64url-encoded without
 * padding as RFC 7515 requires.  OpenSSL's error queue is per thread;
 * it is cleared after every failure so that a later, unrelated OpenSSL
 * call in the same worker thread does not report our stale error.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "gcs_jwt.h"
#include "pcodec.h"

/* Encrypted keys would make OpenSSL prompt on the terminal: refuse. */
static int no_password(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

int gcs_jwt_load_key(const char *pem, size_t len, EVP_PKEY **ret_key)
{
	EVP_PKEY *key;
	BIO *bio;

	if (len > INT_MAX)
		return -EINVAL;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return -ENOMEM;
	key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
	BIO_free(bio);
	if (!key || EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
		EVP_PKEY_free(key);
		ERR_clear_error();
		return -EINVAL;
	}
	*ret_key = key;
	return 0;
}

/* Appends base64url(json) of j; consumes j. */
static int add_json(struct pbuf *out, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	char *b64;
	size_t n;

	json_decref(j);
	if (!text)
		return -ENOMEM;
	n = strlen(text);
	b64 = malloc(PCODEC_BASE64URL_SIZE(n));
	if (b64) {
		pcodec_base64url(b64, text, n);
		pbuf_adds(out, b64);
	}
	free(b64);
	free(text);
	return b64 && !out->failed ? 0 : -ENOMEM;
}

static int sign(EVP_PKEY *key, const char *data, size_t len,
		unsigned char **ret_sig, size_t *ret_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t n = 0;
	int r = -EIO;

	if (!ctx)
		return -ENOMEM;
	/* RSA keys default to PKCS#1 v1.5 padding: exactly RS256. */
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &n, (const unsigned char *)data, len) != 1)
		goto out;
	sig = malloc(n);
	if (!sig) {
		r = -ENOMEM;
		goto out;
	}
	if (EVP_DigestSign(ctx, sig, &n, (const unsigned char *)data, len) != 1)
		goto out;
	*ret_sig = sig;
	*ret_len = n;
	sig = NULL;
	r = 0;
out:
	free(sig);
	EVP_MD_CTX_free(ctx);
	if (r < 0)
		ERR_clear_error();
	return r;
}

int gcs_jwt_sign(EVP_PKEY *key, const struct gcs_jwt_claims *c,
		 struct pbuf *out)
{
	unsigned char *sig = NULL;
	char *b64 = NULL;
	size_t sig_len = 0;
	json_t *hdr, *claims;
	int r;

	if (!key || !c->iss || !c->scope || !c->aud || !c->lifetime ||
	    c->lifetime > GCS_JWT_LIFETIME)
		return -EINVAL;
	hdr = c->kid ? json_pack("{s:s,s:s,s:s}", "alg", "RS256", "typ", "JWT",
				 "kid", c->kid) :
		       json_pack("{s:s,s:s}", "alg", "RS256", "typ", "JWT");
	claims = json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", c->iss, "scope",
			   c->scope, "aud", c->aud, "iat", (json_int_t)c->iat,
			   "exp", (json_int_t)(c->iat + c->lifetime));
	pbuf_reset(out);
	r = add_json(out, hdr);
	if (r == 0 && pbuf_addch(out, '.') < 0)
		r = -ENOMEM;
	if (r == 0)
		r = add_json(out, claims);
	else
		json_decref(claims);
	if (r == 0)
		r = sign(key, out->buf, out->len, &sig, &sig_len);
	if (r == 0) {
		b64 = malloc(PCODEC_BASE64URL_SIZE(sig_len));
		if (!b64) {
			r = -ENOMEM;
		} else {
			pcodec_base64url(b64, sig, sig_len);
			pbuf_addch(out, '.');
			pbuf_adds(out, b64);
			r = out->failed ? -ENOMEM : 0;
		}
	}
	free(b64);
	free(sig);
	return r;
}
