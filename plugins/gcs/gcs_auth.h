/* SPDX-License-Identifier: MIT */
/*
 * OAuth access tokens for the GCS JSON API, from the first source that is
 * configured, in the order of Google's application default credentials:
 *
 *   1. access-token-file=FILE: a token someone else keeps fresh (a
 *      sidecar, `gcloud auth print-access-token > FILE`); re-read whenever
 *      the file changes and after a 401;
 *   2. a credentials file: credentials-file=FILE, else
 *      GOOGLE_APPLICATION_CREDENTIALS.  A service_account key is traded
 *      for a token with an RS256 JWT (gcs_jwt.c) at its token_uri
 *      (token-uri= overrides); authorized_user credentials with their
 *      refresh token;
 *   3. the metadata server at metadata-host=, if that option is set;
 *   4. gcloud's application default credentials ($CLOUDSDK_CONFIG or
 *      ~/.config/gcloud/application_default_credentials.json), like 2;
 *   5. the GCE/GKE metadata server (Workload Identity) at
 *      GCE_METADATA_HOST, else metadata.google.internal.
 *
 * With a custom endpoint (endpoint= or STORAGE_EMULATOR_HOST) and none of
 * credentials-file, access-token-file, metadata-host,
 * GOOGLE_APPLICATION_CREDENTIALS or GCE_METADATA_HOST, requests carry no
 * Authorization at all, as Google's clients do for emulators.
 *
 * The source is chosen, and a key file read and checked, once, without
 * network I/O.  Tokens are fetched on first use and refreshed ahead of
 * their expiry.  Secrets (keys, refresh tokens, access tokens) never leave
 * this module except as the gcs_token handed to the request code, and
 * never appear in messages or logs.
 *
 * Token endpoints are https, or plain http only on loopback; the metadata
 * server (plain http by design) only at Google's addresses or loopback.
 * All of them are reached through the caller's credential HTTP client,
 * which verifies TLS against the system's CA store whatever the storage
 * endpoint's options say.
 */
#ifndef DRGW_GCS_AUTH_H
#define DRGW_GCS_AUTH_H

#include <time.h>

#include <drgw/backend.h>

#include "phttp.h"

/* One access token; immutable and reference-counted. */
struct gcs_token {
	int refs;			/* atomic */
	char *value;			/* secret */
	time_t expiry;			/* 0 when unknown */
	time_t refresh_at;		/* refetch from then on; 0: never */
	time_t usable_until;		/* kept this long if a refetch fails */
	unsigned generation;		/* bumps with every fetch */
};

struct gcs_auth;

struct gcs_auth_config {
	const char *credentials_file;	/* option, or NULL */
	const char *access_token_file;	/* option, or NULL */
	const char *metadata_host;	/* option, or NULL */
	const char *token_uri;		/* option, or NULL */
	int custom_endpoint;
	const char *scope;		/* OAuth scope for service accounts */
	struct phttp_client *http;	/* borrowed; outlives the provider;
					 * TLS verified with the system's
					 * CAs (popts_http_cred_config()) */
	const struct drgw_host *host;	/* for debug logs; may be NULL */
};

/* The scopes asked of service accounts, least privilege first. */
#define GCS_SCOPE_READ_ONLY "https://www.googleapis.com/auth/devstorage.read_only"
#define GCS_SCOPE_READ_WRITE "https://www.googleapis.com/auth/devstorage.read_write"
#define GCS_SCOPE_FULL_CONTROL "https://www.googleapis.com/auth/devstorage.full_control"

/* Refresh at most this early, and at the latest at half a token's life. */
#define GCS_AUTH_REFRESH_S 300
/* A token this close to expiry (or a quarter of its life, if that is
 * less) is not used even if a refresh failed. */
#define GCS_AUTH_MIN_LEFT_S 10

/*
 * Chooses the source; reads and checks a credentials file.
 * @return 0, -EINVAL when the configuration names something unusable
 * (unreadable or malformed file, a key that is not RSA, an unsupported
 * credential type), -ENOMEM.
 */
int gcs_auth_new(const struct gcs_auth_config *cfg, struct gcs_auth **ret,
		 struct drgw_err *err);
void gcs_auth_free(struct gcs_auth *a);

/* E.g. "service account sa@p.iam.gserviceaccount.com (credentials-file
 * /etc/key.json)", "metadata server metadata.google.internal", "none". */
const char *gcs_auth_source(const struct gcs_auth *a);

/* Whether requests go without Authorization (emulators). */
int gcs_auth_anonymous(const struct gcs_auth *a);

/*
 * The current token, fetched or refreshed if needed (blocks on the network
 * then; concurrent callers wait for the one fetch).  *ret is NULL for an
 * anonymous provider.  Release with gcs_token_unref().
 * @return 0, or a negative errno with err->msg set: -EACCES when the
 * source refused, -EINVAL for an unusable token file, transient errnos
 * when the source could not be reached.
 */
int gcs_auth_get(struct gcs_auth *a, struct gcs_token **ret,
		 struct drgw_err *err);

/*
 * The server refused the token of this generation (401): get a new one on
 * the next gcs_auth_get().
 * @return 0 if that can help, -EACCES if not (anonymous).
 */
int gcs_auth_rejected(struct gcs_auth *a, unsigned generation);

void gcs_token_unref(struct gcs_token *t);

#endif /* DRGW_GCS_AUTH_H */
