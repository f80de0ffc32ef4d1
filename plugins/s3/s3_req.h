/* SPDX-License-Identifier: MIT */
/*
 * One S3 API call: how it is addressed, signed, sent, retried and how its
 * failure becomes an errno and a one-line message.
 *
 * A call is a struct s3_op filled by one of the s3_req_*() builders, the
 * only place that decides which query parameters and headers each S3
 * operation gets.  s3_op_sign() turns it into the exact URL and header
 * lines to send; s3_op_run() does that before every attempt and performs
 * it.  The tests' sigv4-dump tool calls the same builders and
 * s3_op_sign() with a fixed clock, so what it prints is what the plugin
 * sends.
 */
#ifndef DRGW_S3_REQ_H
#define DRGW_S3_REQ_H

#include <stdint.h>
#include <time.h>

#include "pbuf.h"
#include "phttp.h"
#include "s3_int.h"
#include "sigv4.h"

struct s3_credentials;

#define S3_OP_MAX_QUERY 6
#define S3_OP_MAX_HEADERS 10

struct s3_op {
	const char *name;		/* for messages: "PUT", "UploadPart" */
	const char *method;
	struct pbuf key;		/* full key with the prefix, or "" */
	int bucket_level;		/* the request addresses the bucket */
	struct sigv4_kv query[S3_OP_MAX_QUERY];
	size_t n_query;
	struct sigv4_kv hdrs[S3_OP_MAX_HEADERS];	/* sent and signed */
	size_t n_hdrs;
	/* Storage for the values above. */
	char range[64], md5[32], sha256[48], lock_until[32], part[12];
	char max_keys[12], marker[12];

	/* Body, sink and cancellation, handed to phttp as is. */
	struct phttp_io io;
	char payload_hash[65];		/* hex; "" = hash the memory body */
	int check_200_error;		/* a 200 may carry an <Error> body */

	/* Results. */
	struct phttp_response resp;
	char code[64];			/* S3 error code, "" if none */
	char message[256];		/* S3 error message */
	int attempts;
	unsigned creds_gen;		/* generation of the creds used */
};

/* What s3_op_sign() produces. */
struct s3_signed {
	struct pbuf url;
	struct curl_slist *headers;	/* all lines, Authorization last */
	struct sigv4_result sig;
	char amz_date[17];
};

void s3_op_init(struct s3_op *op, const char *name, const char *method);
void s3_op_release(struct s3_op *op);
void s3_signed_release(struct s3_signed *s);

/* Adds a query parameter (raw value) or a header; values must outlive op. */
void s3_op_query(struct s3_op *op, const char *name, const char *value);
void s3_op_header(struct s3_op *op, const char *name, const char *value);

/* The request builders.  key is relative to the backend prefix. */
int s3_req_get(struct s3_op *op, const struct s3 *s3, const char *key,
	       uint64_t first, uint64_t last);
int s3_req_head(struct s3_op *op, const struct s3 *s3, const char *key);
int s3_req_delete(struct s3_op *op, const struct s3 *s3, const char *key);
int s3_req_put(struct s3_op *op, const struct s3 *s3, const char *key,
	       const uint8_t md5[16], const uint8_t *sha256, time_t now);
/* start_after is a full key (with the prefix), used on the first page. */
int s3_req_list(struct s3_op *op, const struct s3 *s3, const char *prefix,
		const char *token, const char *start_after, unsigned max_keys);
int s3_req_create_mpu(struct s3_op *op, const struct s3 *s3, const char *key,
		      time_t now);
int s3_req_upload_part(struct s3_op *op, const struct s3 *s3,
		       const char *key, const char *upload_id, unsigned part,
		       const uint8_t md5[16], const uint8_t *sha256);
int s3_req_complete_mpu(struct s3_op *op, const struct s3 *s3,
			const char *key, const char *upload_id);
int s3_req_abort_mpu(struct s3_op *op, const struct s3 *s3, const char *key,
		     const char *upload_id);
int s3_req_list_parts(struct s3_op *op, const struct s3 *s3, const char *key,
		      const char *upload_id, unsigned marker);
/* The multipart uploads whose key starts with key (the bucket-level
 * ListMultipartUploads, prefix = the full key); markers from the previous
 * page, or NULL. */
int s3_req_list_uploads(struct s3_op *op, const struct s3 *s3,
			const char *key, const char *key_marker,
			const char *upload_marker);

/*
 * Builds URL, headers and signature of op for the time now.
 * @return 0, -ENOMEM, -EINVAL.  out must be released in every case.
 */
int s3_op_sign(const struct s3 *s3, struct s3_op *op,
	       const struct s3_credentials *cr, time_t now,
	       struct s3_signed *out);

/*
 * Runs op with retries.
 * @return 0 for a 2xx answer, else a negative errno (see backend.h) with
 * err->msg "s3: NAME bucket/key: STATUS CODE: MESSAGE".  op->resp,
 * op->code and op->message stay available either way.
 */
int s3_op_run(struct s3 *s3, struct s3_op *op, struct drgw_err *err);

/* The errno for a finished op whose answer was not 2xx. */
int s3_op_errno(const struct s3_op *op);

/* Writes op's failure (transport error r, or HTTP answer) into err. */
void s3_op_fail_msg(const struct s3 *s3, const struct s3_op *op, int r,
		    struct drgw_err *err);

#endif /* DRGW_S3_REQ_H */
