/* SPDX-License-Identifier: MIT */
/*
 * S3 request building, signing, retrying and error mapping; see s3_req.h.
 *
 * Retries follow the AWS SDKs' "standard" mode: connection resets and
 * timeouts, 5xx, 429 and the throttling/transient error codes are retried
 * with full-jitter backoff, everything else is final at once.  A refused
 * connection is final too: the endpoint is down, and the gateway's own
 * scheduler backs off far longer than a request could.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pcodec.h"
#include "pdigest.h"
#include "s3_creds.h"
#include "s3_req.h"
#include "s3_xml.h"

/* What the retry hooks need. */
struct run {
	struct s3 *s3;
	struct s3_op *op;
	struct drgw_err *err;
	struct s3_signed sig;
	int creds_err;
};

void s3_op_init(struct s3_op *op, const char *name, const char *method)
{
	memset(op, 0, sizeof(*op));
	op->name = name;
	op->method = method;
}

void s3_op_release(struct s3_op *op)
{
	pbuf_release(&op->key);
	phttp_response_release(&op->resp);
}

void s3_signed_release(struct s3_signed *s)
{
	pbuf_release(&s->url);
	curl_slist_free_all(s->headers);
	s->headers = NULL;
	sigv4_result_release(&s->sig);
}

void s3_op_query(struct s3_op *op, const char *name, const char *value)
{
	if (op->n_query < S3_OP_MAX_QUERY)
		op->query[op->n_query++] = (struct sigv4_kv){ name, value };
}

void s3_op_header(struct s3_op *op, const char *name, const char *value)
{
	if (op->n_hdrs < S3_OP_MAX_HEADERS)
		op->hdrs[op->n_hdrs++] = (struct sigv4_kv){ name, value };
}

static int set_key(struct s3_op *op, const struct s3 *s3, const char *key)
{
	pbuf_reset(&op->key);
	pbuf_adds(&op->key, s3->prefix);
	pbuf_adds(&op->key, key);
	return pbuf_str(&op->key) ? 0 : -ENOMEM;
}

static void b64(char *out, size_t size, const uint8_t *in, size_t n)
{
	if (size >= PCODEC_BASE64_SIZE(n))
		pcodec_base64(out, in, n);
}

/* Headers every object-creating request carries. */
static void object_headers(struct s3_op *op, const struct s3 *s3, time_t now)
{
	s3_op_header(op, "Content-Type", "application/octet-stream");
	if (s3->storage_class)
		s3_op_header(op, "x-amz-storage-class", s3->storage_class);
	if (s3->lock_mode) {
		time_t until = now + (time_t)s3->lock_days * 86400;
		struct tm tm;

		gmtime_r(&until, &tm);
		strftime(op->lock_until, sizeof(op->lock_until),
			 "%Y-%m-%dT%H:%M:%SZ", &tm);
		s3_op_header(op, "x-amz-object-lock-mode", s3->lock_mode);
		s3_op_header(op, "x-amz-object-lock-retain-until-date",
			     op->lock_until);
	}
}

int s3_req_get(struct s3_op *op, const struct s3 *s3, const char *key,
	       uint64_t first, uint64_t last)
{
	s3_op_init(op, "GET", "GET");
	snprintf(op->range, sizeof(op->range), "bytes=%llu-%llu",
		 (unsigned long long)first, (unsigned long long)last);
	s3_op_header(op, "Range", op->range);
	return set_key(op, s3, key);
}

int s3_req_head(struct s3_op *op, const struct s3 *s3, const char *key)
{
	s3_op_init(op, "HEAD", "HEAD");
	return set_key(op, s3, key);
}

int s3_req_delete(struct s3_op *op, const struct s3 *s3, const char *key)
{
	s3_op_init(op, "DELETE", "DELETE");
	return set_key(op, s3, key);
}

int s3_req_put(struct s3_op *op, const struct s3 *s3, const char *key,
	       const uint8_t md5[16], const uint8_t *sha256, time_t now)
{
	s3_op_init(op, "PUT", "PUT");
	op->io.has_body = 1;
	/* Object Lock requires an integrity header; we always send one. */
	b64(op->md5, sizeof(op->md5), md5, 16);
	s3_op_header(op, "Content-MD5", op->md5);
	if (s3->checksum_sha256 && sha256) {
		b64(op->sha256, sizeof(op->sha256), sha256, 32);
		s3_op_header(op, "x-amz-checksum-sha256", op->sha256);
	}
	object_headers(op, s3, now);
	return set_key(op, s3, key);
}

int s3_req_list(struct s3_op *op, const struct s3 *s3, const char *prefix,
		const char *token, const char *start_after, unsigned max_keys)
{
	s3_op_init(op, "LIST", "GET");
	op->bucket_level = 1;
	s3_op_query(op, "list-type", "2");
	snprintf(op->max_keys, sizeof(op->max_keys), "%u", max_keys);
	s3_op_query(op, "max-keys", op->max_keys);
	if (token && *token)
		s3_op_query(op, "continuation-token", token);
	else if (start_after && *start_after)
		s3_op_query(op, "start-after", start_after);
	if (set_key(op, s3, prefix) < 0)
		return -ENOMEM;
	s3_op_query(op, "prefix", op->key.buf);
	return 0;
}

int s3_req_create_mpu(struct s3_op *op, const struct s3 *s3, const char *key,
		      time_t now)
{
	s3_op_init(op, "CreateMultipartUpload", "POST");
	s3_op_query(op, "uploads", "");
	if (s3->checksum_sha256)
		s3_op_header(op, "x-amz-checksum-algorithm", "SHA256");
	object_headers(op, s3, now);
	return set_key(op, s3, key);
}

int s3_req_upload_part(struct s3_op *op, const struct s3 *s3,
		       const char *key, const char *upload_id, unsigned part,
		       const uint8_t md5[16], const uint8_t *sha256)
{
	s3_op_init(op, "UploadPart", "PUT");
	op->io.has_body = 1;
	snprintf(op->part, sizeof(op->part), "%u", part);
	s3_op_query(op, "partNumber", op->part);
	s3_op_query(op, "uploadId", upload_id);
	b64(op->md5, sizeof(op->md5), md5, 16);
	s3_op_header(op, "Content-MD5", op->md5);
	if (s3->checksum_sha256 && sha256) {
		b64(op->sha256, sizeof(op->sha256), sha256, 32);
		s3_op_header(op, "x-amz-checksum-sha256", op->sha256);
	}
	return set_key(op, s3, key);
}

int s3_req_complete_mpu(struct s3_op *op, const struct s3 *s3,
			const char *key, const char *upload_id)
{
	s3_op_init(op, "CompleteMultipartUpload", "POST");
	op->io.has_body = 1;
	op->check_200_error = 1;
	s3_op_query(op, "uploadId", upload_id);
	s3_op_header(op, "Content-Type", "application/xml");
	return set_key(op, s3, key);
}

int s3_req_abort_mpu(struct s3_op *op, const struct s3 *s3, const char *key,
		     const char *upload_id)
{
	s3_op_init(op, "AbortMultipartUpload", "DELETE");
	s3_op_query(op, "uploadId", upload_id);
	return set_key(op, s3, key);
}

int s3_req_list_parts(struct s3_op *op, const struct s3 *s3, const char *key,
		      const char *upload_id, unsigned marker)
{
	s3_op_init(op, "ListParts", "GET");
	s3_op_query(op, "uploadId", upload_id);
	s3_op_query(op, "max-parts", "1000");
	if (marker) {
		snprintf(op->marker, sizeof(op->marker), "%u", marker);
		s3_op_query(op, "part-number-marker", op->marker);
	}
	return set_key(op, s3, key);
}

int s3_req_list_uploads(struct s3_op *op, const struct s3 *s3,
			const char *key, const char *key_marker,
			const char *upload_marker)
{
	s3_op_init(op, "ListMultipartUploads", "GET");
	op->bucket_level = 1;
	s3_op_query(op, "uploads", "");
	if (key_marker && *key_marker) {
		s3_op_query(op, "key-marker", key_marker);
		s3_op_query(op, "upload-id-marker", upload_marker ? upload_marker : "");
	}
	if (set_key(op, s3, key) < 0)
		return -ENOMEM;
	s3_op_query(op, "prefix", op->key.buf);
	return 0;
}

/* Path-style "/bucket/key" or virtual-hosted "/key", encoded once. */
static int build_path(struct pbuf *b, const struct s3 *s3,
		      const struct s3_op *op)
{
	pbuf_addch(b, '/');
	if (!s3->virtual_host) {
		pcodec_uri_encode(b, s3->bucket, strlen(s3->bucket), 0);
		if (!op->bucket_level)
			pbuf_addch(b, '/');
	}
	if (!op->bucket_level)
		pcodec_uri_encode(b, op->key.buf, op->key.len, 1);
	return b->failed ? -ENOMEM : 0;
}

int s3_op_sign(const struct s3 *s3, struct s3_op *op,
	       const struct s3_credentials *cr, time_t now,
	       struct s3_signed *out)
{
	struct sigv4_kv h[S3_OP_MAX_HEADERS + 4];
	struct pbuf host = PBUF_INIT, path = PBUF_INIT, query = PBUF_INIT;
	struct sigv4_request rq = { 0 };
	struct sigv4_key key = {
		.access_key = cr->access_key,
		.secret_key = cr->secret_key,
		.region = s3->region,
		.service = "s3",
	};
	size_t n = 0;
	int r;

	sigv4_amz_date(now, out->amz_date);
	if (s3->virtual_host)
		pbuf_addf(&host, "%s.%s", s3->bucket, s3->endpoint_host);
	else
		pbuf_adds(&host, s3->endpoint_host);
	r = build_path(&path, s3, op);
	if (!r)
		r = sigv4_query_string(&query, op->query, op->n_query);
	if (r < 0 || !pbuf_str(&host))
		goto nomem;
	pbuf_addf(&out->url, "%s://%s%s%s%s", s3->scheme, host.buf, path.buf,
		  query.len ? "?" : "", pbuf_str(&query));

	h[n++] = (struct sigv4_kv){ "Host", host.buf };
	h[n++] = (struct sigv4_kv){ "x-amz-date", out->amz_date };
	h[n++] = (struct sigv4_kv){ "x-amz-content-sha256", op->payload_hash };
	if (cr->session_token)
		h[n++] = (struct sigv4_kv){ "x-amz-security-token",
					    cr->session_token };
	for (size_t i = 0; i < op->n_hdrs; i++)
		h[n++] = op->hdrs[i];

	rq.method = op->method;
	rq.path = path.buf;
	rq.query = op->query;
	rq.n_query = op->n_query;
	rq.headers = h;
	rq.n_headers = n;
	rq.payload_hash = op->payload_hash;
	r = sigv4_sign(&rq, &key, out->amz_date, &out->sig);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n && !r; i++)
		r = phttp_add_header(&out->headers, h[i].name, h[i].value);
	if (!r)
		r = phttp_add_header(&out->headers, "Authorization",
				     out->sig.authorization.buf);
	if (!r && out->url.failed)
		r = -ENOMEM;
	goto out;
nomem:
	r = -ENOMEM;
out:
	pbuf_release(&host);
	pbuf_release(&path);
	pbuf_release(&query);
	return r;
}

static int prepare(void *arg, struct phttp_request *rq, int attempt)
{
	struct run *c = arg;
	struct s3_credentials *cr;
	int r;

	s3_signed_release(&c->sig);
	r = s3_creds_get(c->s3->creds, &cr, c->err);
	if (r < 0) {
		c->creds_err = r;
		return r;
	}
	c->op->creds_gen = cr->generation;
	r = s3_op_sign(c->s3, c->op, cr, time(NULL), &c->sig);
	s3_credentials_unref(cr);
	if (r < 0)
		return r;
	rq->url = c->sig.url.buf;
	rq->headers = c->sig.headers;
	return 0;
}

static int code_in(const char *code, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(code, *list))
			return 1;
	return 0;
}

/* The AWS SDKs' transient and throttling error codes. */
static const char *const retry_codes[] = {
	"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
	"Throttling", "ThrottlingException", "ThrottledException",
	"RequestThrottledException", "TooManyRequestsException",
	"ProvisionedThroughputExceededException",
	"TransactionInProgressException", "RequestLimitExceeded",
	"BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
	"SlowDown", "EC2ThrottledException", "InternalError",
	"ServiceUnavailable", NULL,
};

static const char *const expired_codes[] = {
	"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", NULL,
};

static enum phttp_next classify(void *arg, struct phttp_response *resp,
				int r, int attempt, unsigned *ret_delay_ms)
{
	struct run *c = arg;
	struct s3_op *op = c->op;
	long st = resp->status;
	enum phttp_next next;

	op->code[0] = op->message[0] = '\0';
	if (r < 0) {
		next = phttp_classify_default(resp, r);
		pmsg_debug(c->s3->host, "s3: %s %s/%s: attempt %d: %s", op->name,
			   c->s3->bucket, op->key.buf ? op->key.buf : "",
			   attempt, phttp_strerror(resp, r));
		return next;
	}
	if (st >= 200 && st < 300 && !op->check_200_error)
		return PHTTP_STOP;
	if (resp->body.len)
		s3_xml_error(resp->body.buf, resp->body.len, op->code,
			     sizeof(op->code), op->message,
			     sizeof(op->message));
	if (st >= 200 && st < 300 && !op->code[0])
		return PHTTP_STOP;
	pmsg_debug(c->s3->host, "s3: %s %s/%s: attempt %d: %ld %s", op->name,
		   c->s3->bucket, op->key.buf ? op->key.buf : "", attempt, st,
		   op->code);
	if (code_in(op->code, expired_codes))
		return s3_creds_expired(c->s3->creds, op->creds_gen) == 0 ?
			       PHTTP_RETRY_NOW : PHTTP_STOP;
	if (code_in(op->code, retry_codes))
		return PHTTP_RETRY;
	if (st == 501)
		return PHTTP_STOP;
	return phttp_classify_default(resp, 0);
}

static const struct phttp_hooks hooks = {
	.prepare = prepare,
	.classify = classify,
};

int s3_op_run(struct s3 *s3, struct s3_op *op, struct drgw_err *err)
{
	struct run c = { .s3 = s3, .op = op, .err = err };
	struct phttp_request rq = { 0 };
	int r;

	if (op->key.failed)
		return -ENOMEM;
	if (!op->payload_hash[0]) {
		uint8_t h[PDIGEST_SHA256_LEN];

		r = pdigest_sha256(op->io.body ? op->io.body : "", op->io.body_len, h);
		if (r < 0)
			return r;
		pcodec_hex(op->payload_hash, h, sizeof(h));
	}
	rq.method = op->method;
	rq.io = op->io;

	r = phttp_run(s3->http, &rq, &op->resp, &s3->net.retry, &hooks, &c,
		      &op->attempts);
	s3_signed_release(&c.sig);
	if (c.creds_err && r == c.creds_err)
		return r; /* err->msg already says why */
	if (r == 0 && op->resp.status >= 200 && op->resp.status < 300 &&
	    !op->code[0])
		return 0;
	if (r == 0)
		r = s3_op_errno(op);
	if (err) {
		s3_op_fail_msg(s3, op, r, err);
		err->http_status = (int)op->resp.status;
	}
	return r;
}

static const struct {
	const char *code;
	int err;
} code_errno[] = {
	{ "NoSuchKey", -ENOENT },
	{ "NoSuchUpload", -ENOENT },
	{ "NoSuchVersion", -ENOENT },
	{ "NoSuchBucket", -EINVAL },
	{ "InvalidBucketName", -EINVAL },
	{ "PermanentRedirect", -EINVAL },
	{ "AuthorizationHeaderMalformed", -EINVAL },
	{ "InvalidArgument", -EINVAL },
	{ "InvalidRequest", -EINVAL },
	{ "InvalidStorageClass", -EINVAL },
	{ "AccessDenied", -EACCES },
	{ "AllAccessDisabled", -EACCES },
	{ "AccountProblem", -EACCES },
	{ "InvalidAccessKeyId", -EACCES },
	{ "SignatureDoesNotMatch", -EACCES },
	{ "ExpiredToken", -EACCES },
	{ "InvalidToken", -EACCES },
	{ "RequestTimeTooSkewed", -EACCES },
	{ "InvalidObjectState", -EIO },
	{ "RequestTimeout", -ETIMEDOUT },
	{ "BadDigest", -EIO },
	{ "InvalidDigest", -EIO },
	{ "XAmzContentSHA256Mismatch", -EIO },
	{ "InvalidPart", -EIO },
	{ "InvalidPartOrder", -EIO },
	{ "EntityTooSmall", -EIO },
	{ "IncompleteBody", -EIO },
	{ "EntityTooLarge", -EFBIG },
	{ "QuotaExceeded", -EDQUOT },
	{ "XMinioStorageFull", -ENOSPC },
	{ "NotImplemented", -EOPNOTSUPP },
	{ "MethodNotAllowed", -EOPNOTSUPP },
};

int s3_op_errno(const struct s3_op *op)
{
	long st = op->resp.status;

	for (size_t i = 0; i < sizeof(code_errno) / sizeof(code_errno[0]); i++)
		if (!strcmp(op->code, code_errno[i].code))
			return code_errno[i].err;
	if (op->code[0] && code_in(op->code, retry_codes))
		return -EAGAIN;
	switch (st) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 405:
	case 501:
		return -EOPNOTSUPP;
	case 408:
		return -ETIMEDOUT;
	case 409:
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		return -EAGAIN;
	case 507:
		return -ENOSPC;
	default:
		if (st >= 300 && st < 400)
			return -EINVAL;
		return -EIO;
	}
}

static const char *reason(long status)
{
	switch (status) {
	case 200: return "OK";
	case 301: return "Moved Permanently";
	case 307: return "Temporary Redirect";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 416: return "Range Not Satisfiable";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "HTTP error";
	}
}

void s3_op_fail_msg(const struct s3 *s3, const struct s3_op *op, int r,
		    struct drgw_err *err)
{
	const char *key = op->bucket_level ? "" : op->key.buf;
	const char *sep = op->bucket_level ? "" : "/";
	char region[64] = "";

	if (!err)
		return;
	if (op->resp.status == 0) {
		pmsg_set_err(err, "s3: %s %s%s%s: %s%s", op->name, s3->bucket, sep,
			     key ? key : "", phttp_strerror(&op->resp, r),
			     op->resp.curl_code == CURLE_PEER_FAILED_VERIFICATION ?
				     " (set ca-bundle= to the CA that signed the endpoint's certificate)" :
				     "");
		return;
	}
	/* A wrong region is the one misconfiguration S3 diagnoses for us. */
	if (phttp_header(&op->resp, "x-amz-bucket-region", region,
			 sizeof(region)) == 0 &&
	    strcmp(region, s3->region)) {
		pmsg_set_err(err,
			     "s3: %s %s%s%s: %ld %s: bucket is in region %s, not %s: set region=%s",
			     op->name, s3->bucket, sep, key ? key : "",
			     op->resp.status, op->code[0] ? op->code : reason(op->resp.status),
			     region, s3->region, region);
		return;
	}
	if (op->code[0])
		pmsg_set_err(err, "s3: %s %s%s%s: %ld %s: %s", op->name,
			     s3->bucket, sep, key ? key : "", op->resp.status,
			     op->code, op->message);
	else
		pmsg_set_err(err, "s3: %s %s%s%s: %ld %s", op->name, s3->bucket,
			     sep, key ? key : "", op->resp.status,
			     reason(op->resp.status));
}
