/* SPDX-License-Identifier: MIT */
/*
 * The JSON the GCS plugin reads and writes, with jansson: Google's error
 * bodies, object resources and listings of the JSON API, OAuth token
 * answers, credential files, and the object metadata sent when an upload
 * starts.  Everything here is pure (no I/O) so that the unit tests and
 * the fuzzers can feed it arbitrary bytes.
 */
#ifndef DRGW_GCS_JSON_H
#define DRGW_GCS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gcs_int.h"
#include "pbuf.h"

/*
 * The reason and message of an error answer, in one of the shapes Google
 * uses: the JSON API's {"error":{"message":M,"errors":[{"reason":R}]}},
 * OAuth's {"error":R,"error_description":M}, or plain text (the upload
 * front end), whose first line becomes the message.  Control characters
 * are replaced so that the result fits in one log line.  Both outputs are
 * "" when nothing usable is there.
 */
void gcs_json_error(const char *body, size_t len, char *reason,
		    size_t reason_size, char *msg, size_t msg_size);

/* The fields of an object resource the plugin uses. */
struct gcs_object {
	char name[GCS_MAX_NAME + 1];
	uint64_t size;
	int64_t updated_ns;		/* 0 if absent */
	char generation[24];		/* decimal, "" if absent */
	char crc32c[16];		/* base64 of the big-endian CRC32C, or "" */
	char md5[32];			/* base64 MD5, or "" (composite objects) */
	/* What protects it from deletion: a temporary or event-based hold,
	 * and the later of retentionExpirationTime (bucket retention
	 * policy) and retention.retainUntilTime (object retention), ns
	 * since the epoch, 0 if neither. */
	int held;
	int64_t retain_until_ns;
};

/*
 * Parses an object resource (objects.get, the answer of an upload).
 * @return 0, or -EIO when it is not one (no name or no valid size).
 */
int gcs_json_object(const char *body, size_t len, struct gcs_object *ret);

/* Called for each item of a listing page; non-zero stops the listing. */
typedef int (*gcs_json_item_fn)(void *arg, const struct gcs_object *o);

/*
 * Parses one objects.list page, calling fn for each item in order, and
 * puts nextPageToken into next (left empty on the last page).
 * @return 0, 1 when fn stopped the listing, -EIO for an unusable page,
 * -ENOMEM.
 */
int gcs_json_list(const char *body, size_t len, gcs_json_item_fn fn,
		  void *arg, struct pbuf *next);

/* A bucket's retentionPolicy: *ret_period_s its retentionPeriod (0 if the
 * bucket has none), *ret_locked its isLocked.  0, or -EIO when the answer
 * is not a bucket resource. */
int gcs_json_bucket_retention(const char *body, size_t len,
			      uint64_t *ret_period_s, int *ret_locked);

/*
 * Parses an OAuth token answer {"access_token","expires_in","token_type"}
 * (token endpoint and metadata server alike) into a secret buffer.
 * *ret_expires_in is 0 when the answer has no lifetime.
 * @return 0, or -EIO when there is no usable bearer token.
 */
int gcs_json_token(const char *body, size_t len, struct pbuf *ret_token,
		   int64_t *ret_expires_in);

/* A credentials file (GOOGLE_APPLICATION_CREDENTIALS).  Strings are
 * malloc()ed; NULL when absent. */
struct gcs_key_file {
	char *type;			/* "service_account", "authorized_user" */
	char *client_email;
	char *private_key_id;
	char *private_key;		/* PEM; secret */
	char *token_uri;
	char *client_id;
	char *client_secret;		/* secret */
	char *refresh_token;		/* secret */
};

/*
 * Parses a credentials file.  Checks that the fields its type needs are
 * there; types other than service_account and authorized_user are
 * rejected.
 * @return 0, -EINVAL with a reason in why (no secret in it), -ENOMEM.
 */
int gcs_json_key_file(const char *body, size_t len, struct gcs_key_file *ret,
		      char *why, size_t why_size);

/* Overwrites the secrets and frees everything; NULL-safe. */
void gcs_key_file_release(struct gcs_key_file *k);

/*
 * The object resource sent when an upload starts (resumable initiation,
 * multipart metadata): name, content type, the holds and retention g asks
 * for (retainUntilTime = now + retain_days), and the digests when given
 * (base64, NULL to leave out), which GCS then verifies.
 * @return 0 or -ENOMEM.
 */
int gcs_json_upload_metadata(const struct gcs *g, const char *name,
			     time_t now, const char *crc32c, const char *md5,
			     struct pbuf *out);

#endif /* DRGW_GCS_JSON_H */
