/* SPDX-License-Identifier: MIT */
/*
 * The signed JWT a service account trades for an access token (RFC 7523,
 * Google's "OAuth 2.0 for server to server applications"): RS256 over
 * base64url(header) "." base64url(claims), signed with OpenSSL's
 * EVP_DigestSign (RSASSA-PKCS1-v1_5 with SHA-256).  No RSA of our own.
 */
#ifndef DRGW_GCS_JWT_H
#define DRGW_GCS_JWT_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>

#include "pbuf.h"

/* The longest lifetime Google accepts for an assertion. */
#define GCS_JWT_LIFETIME 3600

/*
 * Loads the PEM private key of a service-account key file (PKCS#8, as
 * Google issues them; PKCS#1 works too).  Only RSA keys are accepted.
 * @return 0 and *ret_key (free with EVP_PKEY_free()), -EINVAL if pem is
 * not an RSA private key, -ENOMEM.
 */
int gcs_jwt_load_key(const char *pem, size_t len, EVP_PKEY **ret_key);

/* What the assertion says. */
struct gcs_jwt_claims {
	const char *kid;		/* private_key_id, or NULL */
	const char *iss;		/* client_email */
	const char *scope;		/* space-separated OAuth scopes */
	const char *aud;		/* the token endpoint's URI */
	time_t iat;			/* issued at */
	unsigned lifetime;		/* exp = iat + lifetime */
};

/*
 * Builds and signs the assertion into out (replacing its contents).
 * @return 0, -EINVAL for an unusable key or claims, -ENOMEM, -EIO if
 * OpenSSL fails to sign.
 */
int gcs_jwt_sign(EVP_PKEY *key, const struct gcs_jwt_claims *c,
		 struct pbuf *out);

#endif /* DRGW_GCS_JWT_H */
