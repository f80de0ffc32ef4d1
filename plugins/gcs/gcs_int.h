/* SPDX-License-Identifier: MIT */
/*
 * State shared by the GCS plugin's files.  struct gcs is the per-backend
 * instance the gateway allocates (ops.instance_size) and zeroes; open()
 * fills it from the URL and options (gcs_conf.c) and it is read-only after
 * that, so the methods share it across threads without locking.  The
 * mutable parts (the access token cache, idle HTTP handles) lock
 * themselves.
 */
#ifndef DRGW_GCS_INT_H
#define DRGW_GCS_INT_H

#include <stdint.h>

#include <drgw/backend.h>

#include "phttp.h"
#include "pmsg.h"
#include "popts.h"

struct gcs_auth;

/* Every resumable chunk but the last is a multiple of this (GCS rule). */
#define GCS_CHUNK_ALIGN (256ULL << 10)
#define GCS_DEFAULT_CHUNK (16ULL << 20)
#define GCS_MAX_CHUNK (1ULL << 30)
/* Object names are 1..1024 bytes of UTF-8, prefix included. */
#define GCS_MAX_NAME 1024

#define GCS_DEFAULT_ENDPOINT "https://storage.googleapis.com"

struct gcs {
	char *url;			/* "gcs://bucket/prefix", for messages */
	char *bucket;
	char *prefix;			/* "" or ending in '/' */
	char *endpoint;			/* "scheme://host[:port]", no slash */
	int custom_endpoint;		/* endpoint= or STORAGE_EMULATOR_HOST */
	uint64_t chunk_size;		/* resumable chunk; also the largest
					 * object sent in one request */
	int temporary_hold;
	int event_based_hold;
	const char *retention_mode;	/* NULL, "Unlocked" or "Locked" */
	unsigned retain_days;
	int read_only;
	struct popts_http net;		/* the common HTTP options */

	/* Credential options (gcs_auth.c decides what they mean). */
	char *credentials_file;
	char *access_token_file;
	char *metadata_host;
	char *token_uri;

	const struct drgw_host *host;
	struct phttp_client *http;	/* storage requests */
	struct phttp_client *cred_http;	/* token endpoint, metadata server:
					 * TLS always verified (popts.h) */
	struct gcs_auth *auth;
};

/* Whether objects are protected on upload (holds or retention): uploads
 * then never replace an object (ifGenerationMatch=0). */
static inline int gcs_protected(const struct gcs *g)
{
	return g->temporary_hold || g->event_based_hold || g->retention_mode;
}

#endif /* DRGW_GCS_INT_H */
