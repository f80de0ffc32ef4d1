/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4 for S3 header-based authentication.
 *
 * We sign ourselves instead of using CURLOPT_AWS_SIGV4 because libcurl's
 * canonicalization changed across releases and is wrong for S3 in the
 * versions we must run with (unsorted queries, '+' in continuation tokens,
 * '=' in keys, header prefix sorting).  The caller builds the path
 * already encoded, gives the query as raw name/value pairs, and then sends
 * exactly sigv4_query_string()'s output on the wire, so what is signed
 * and what is sent can never differ.
 */
#ifndef DRGW_SIGV4_H
#define DRGW_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "pbuf.h"

/* Payload hash of an empty body. */
#define SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* A query parameter (raw, not encoded) or a header. */
struct sigv4_kv {
	const char *name;
	const char *value;	/* "" for valueless query parameters */
};

struct sigv4_request {
	const char *method;
	const char *path;		/* UriEncoded, '/' kept; see s3_req */
	const struct sigv4_kv *query;	/* any order */
	size_t n_query;
	const struct sigv4_kv *headers;	/* all headers to sign, any case;
					 * must include host, x-amz-date and
					 * x-amz-content-sha256 */
	size_t n_headers;
	const char *payload_hash;	/* hex SHA-256 or UNSIGNED-PAYLOAD */
};

struct sigv4_key {
	const char *access_key;
	const char *secret_key;
	const char *region;
	const char *service;		/* "s3" */
};

struct sigv4_result {
	struct pbuf canonical_request;
	struct pbuf string_to_sign;
	struct pbuf authorization;	/* value of the Authorization header */
};

#define SIGV4_RESULT_INIT { PBUF_INIT, PBUF_INIT, PBUF_INIT }

/* Formats t as the x-amz-date value "YYYYMMDDTHHMMSSZ" (17 bytes). */
void sigv4_amz_date(time_t t, char out[17]);

/*
 * Appends the canonical query string of q: names and values UriEncoded
 * (nothing kept, so '/', '+' and '=' are escaped), sorted by name then
 * value, "name=" for valueless parameters, joined with '&'.  It is the
 * query to send as well.
 * @return 0 or -ENOMEM.
 */
int sigv4_query_string(struct pbuf *out, const struct sigv4_kv *q, size_t n);

/*
 * Signs rq at amz_date (from sigv4_amz_date()) with key.
 * @return 0 and res filled, -EINVAL for a malformed request (duplicate
 * header, bad date), -ENOMEM.  res must be released in every case.
 */
int sigv4_sign(const struct sigv4_request *rq, const struct sigv4_key *key,
	       const char *amz_date, struct sigv4_result *res);

void sigv4_result_release(struct sigv4_result *res);

#endif /* DRGW_SIGV4_H */
