/* SPDX-License-Identifier: MIT */
/*
 * GCS request building, authorization, retries and error mapping; see
 * gcs_req.h.
 *
 * Retries follow Google's guidance for Cloud Storage: 408, 429, 5xx,
 * connection resets and timeouts are retried with exponential backoff and
 * full jitter; everything else is reported at once.  Every call the
 * plugin makes is idempotent or made so (uploads write the same bytes,
 * protected ones with ifGenerationMatch=0, and resumable chunks are
 * retried by the upload loop, which asks the server for its offset
 * first), so retrying any of them is safe.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gcs_auth.h"
#include "gcs_json.h"
#include "gcs_req.h"
#include "pcodec.h"

/* What the retry hooks need. */
struct run {
	struct gcs *g;
	struct gcs_op *op;
	struct drgw_err *err;
	struct curl_slist *sent;	/* op->headers + Authorization */
	int auth_err;			/* the token source failed */
};

void gcs_op_init(struct gcs_op *op, const char *name, const char *method)
{
	memset(op, 0, sizeof(*op));
	op->name = name;
	op->method = method;
}

void gcs_op_release(struct gcs_op *op)
{
	pbuf_release(&op->url);
	pbuf_release(&op->object);
	curl_slist_free_all(op->headers);
	op->headers = NULL;
	phttp_response_release(&op->resp);
}

int gcs_op_header(struct gcs_op *op, const char *name, const char *value)
{
	return phttp_add_header(&op->headers, name, value);
}

/* "bucket/prefix+key" for messages. */
static void set_object(struct gcs_op *op, const struct gcs *g,
		       const char *key)
{
	pbuf_reset(&op->object);
	pbuf_addf(&op->object, "%s/%s%s", g->bucket, g->prefix, key);
}

/* Appends the full object name (prefix + key), percent-encoded whole. */
static void add_name(struct pbuf *b, const struct gcs *g, const char *key)
{
	pcodec_uri_encode(b, g->prefix, strlen(g->prefix), 0);
	pcodec_uri_encode(b, key, strlen(key), 0);
}

static void add_bucket_base(struct pbuf *b, const struct gcs *g,
			    const char *api)
{
	pbuf_addf(b, "%s%s/b/", g->endpoint, api);
	pcodec_uri_encode(b, g->bucket, strlen(g->bucket), 0);
	pbuf_adds(b, "/o");
}

static int done(struct gcs_op *op)
{
	return op->url.failed || op->object.failed ? -ENOMEM : 0;
}

int gcs_op_object_url(struct gcs_op *op, const struct gcs *g,
		      const char *key, const char *query)
{
	pbuf_reset(&op->url);
	add_bucket_base(&op->url, g, "/storage/v1");
	pbuf_addch(&op->url, '/');
	add_name(&op->url, g, key);
	if (query)
		pbuf_addf(&op->url, "?%s", query);
	set_object(op, g, key);
	return done(op);
}

int gcs_op_list_url(struct gcs_op *op, const struct gcs *g,
		    const char *prefix, const char *page_token,
		    const char *after, const char *before,
		    unsigned max_results)
{
	/* The holds and retention times let drgw prune see locks from the
	 * listing alone. */
	static const char fields[] =
		"items(name,size,generation,updated,temporaryHold,"
		"eventBasedHold,retentionExpirationTime,retention),nextPageToken";

	pbuf_reset(&op->url);
	add_bucket_base(&op->url, g, "/storage/v1");
	pbuf_adds(&op->url, "?prefix=");
	add_name(&op->url, g, prefix);
	pbuf_addf(&op->url, "&maxResults=%u&fields=", max_results);
	pcodec_uri_encode(&op->url, fields, strlen(fields), 0);
	if (page_token && *page_token) {
		pbuf_adds(&op->url, "&pageToken=");
		pcodec_uri_encode(&op->url, page_token, strlen(page_token), 0);
	}
	/* startOffset includes its name: the caller skips `after` itself. */
	if (after) {
		pbuf_adds(&op->url, "&startOffset=");
		add_name(&op->url, g, after);
	}
	if (before) {
		pbuf_adds(&op->url, "&endOffset=");
		add_name(&op->url, g, before);
	}
	set_object(op, g, prefix);
	return done(op);
}

int gcs_op_bucket_url(struct gcs_op *op, const struct gcs *g,
		      const char *query)
{
	pbuf_reset(&op->url);
	pbuf_addf(&op->url, "%s/storage/v1/b/", g->endpoint);
	pcodec_uri_encode(&op->url, g->bucket, strlen(g->bucket), 0);
	if (query)
		pbuf_addf(&op->url, "?%s", query);
	set_object(op, g, "");
	return done(op);
}

int gcs_op_upload_url(struct gcs_op *op, const struct gcs *g,
		      const char *key, const char *upload_type,
		      int if_absent)
{
	pbuf_reset(&op->url);
	add_bucket_base(&op->url, g, "/upload/storage/v1");
	pbuf_addf(&op->url, "?uploadType=%s&name=", upload_type);
	add_name(&op->url, g, key);
	if (if_absent)
		pbuf_adds(&op->url, "&ifGenerationMatch=0");
	set_object(op, g, key);
	return done(op);
}

int gcs_op_session_url(struct gcs_op *op, const struct gcs *g,
		       const char *key, const char *session_uri)
{
	pbuf_reset(&op->url);
	pbuf_adds(&op->url, session_uri);
	op->anonymous = 1;
	set_object(op, g, key);
	return done(op);
}

static void free_sent(struct run *c)
{
	/* The Authorization line holds the token. */
	for (struct curl_slist *l = c->sent; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(c->sent);
	c->sent = NULL;
}

static int prepare(void *arg, struct phttp_request *rq, int attempt)
{
	struct run *c = arg;
	struct gcs_token *t = NULL;
	struct pbuf bearer = PBUF_INIT;
	int r = 0;

	free_sent(c);
	for (struct curl_slist *l = c->op->headers; l && !r; l = l->next) {
		struct curl_slist *n = curl_slist_append(c->sent, l->data);

		if (n)
			c->sent = n;
		else
			r = -ENOMEM;
	}
	if (r == 0 && !c->op->anonymous) {
		r = gcs_auth_get(c->g->auth, &t, c->err);
		if (r < 0) {
			c->auth_err = r;
			return r;
		}
	}
	if (r == 0 && t) {
		c->op->token_gen = t->generation;
		pbuf_addf(&bearer, "Bearer %s", t->value);
		r = pbuf_str(&bearer) ?
			    phttp_add_header(&c->sent, "Authorization", bearer.buf) :
			    -ENOMEM;
	}
	gcs_token_unref(t);
	pbuf_release_secret(&bearer);
	if (r < 0)
		return r;
	rq->headers = c->sent;
	return 0;
}

int gcs_offset_mismatch(long status, const char *body, size_t len)
{
	static const char text[] = "According to the Content-Range header, the upload offset is";
	size_t n = strlen(text);

	if (status != 503 || !body)
		return 0;
	/* memmem: the body is not NUL-terminated in general. */
	return len >= n && memmem(body, len, text, n) != NULL;
}

enum gcs_verdict gcs_classify(const struct phttp_response *resp, int r)
{
	if (r == -ETIMEDOUT || r == -ECONNRESET)
		return GCS_RETRY;
	if (r < 0)
		return GCS_FINAL;
	if (gcs_offset_mismatch(resp->status, resp->body.buf, resp->body.len))
		return GCS_OFFSET_MISMATCH;
	switch (resp->status) {
	case 408:
	case 429:
		return GCS_RETRY;
	case 501:
	case 505:
		return GCS_FINAL;
	default:
		return resp->status >= 500 && resp->status < 600 ? GCS_RETRY :
								   GCS_FINAL;
	}
}

/* A Retry-After in seconds, capped; 0 if there is none. */
static unsigned retry_after_ms(const struct phttp_response *resp,
			       unsigned cap_ms)
{
	char v[32];
	uint64_t s;

	if (phttp_header(resp, "Retry-After", v, sizeof(v)) < 0 ||
	    pcodec_parse_u64(v, 3600, &s) < 0)
		return 0;
	return s * 1000 > cap_ms ? cap_ms : (unsigned)(s * 1000);
}

static enum phttp_next classify(void *arg, struct phttp_response *resp,
				int r, int attempt, unsigned *ret_delay_ms)
{
	struct run *c = arg;
	struct gcs_op *op = c->op;
	long st = resp->status;

	op->reason[0] = op->message[0] = '\0';
	if (r < 0) {
		pmsg_debug(c->g->host, "gcs: %s %s: attempt %d: %s", op->name,
			   pbuf_str(&op->object), attempt,
			   phttp_strerror(resp, r));
		return gcs_classify(resp, r) == GCS_RETRY ? PHTTP_RETRY :
							    PHTTP_STOP;
	}
	if ((st >= 200 && st < 300) || (st == 308 && op->accept_308))
		return PHTTP_STOP;
	gcs_json_error(resp->body.buf, resp->body.len, op->reason,
		       sizeof(op->reason), op->message, sizeof(op->message));
	pmsg_debug(c->g->host, "gcs: %s %s: attempt %d: %ld %s", op->name,
		   pbuf_str(&op->object), attempt, st, op->reason);
	if (st == 401 && !op->anonymous && !op->auth_retried &&
	    gcs_auth_rejected(c->g->auth, op->token_gen) == 0) {
		/* Revoked or expired early: once, with a fresh token. */
		op->auth_retried = 1;
		return PHTTP_RETRY_NOW;
	}
	if (gcs_classify(resp, r) != GCS_RETRY)
		return PHTTP_STOP;
	*ret_delay_ms = retry_after_ms(resp, c->g->net.retry.cap_ms);
	return PHTTP_RETRY;
}

static const struct phttp_hooks hooks = {
	.prepare = prepare,
	.classify = classify,
};

int gcs_op_run(struct gcs *g, struct gcs_op *op, struct drgw_err *err)
{
	struct run c = { .g = g, .op = op, .err = err };
	struct phttp_request rq = { 0 };
	struct phttp_retry policy = g->net.retry;
	int r;

	if (done(op) < 0 || !op->url.len)
		return -ENOMEM;
	if (op->max_attempts > 0)
		policy.max_attempts = op->max_attempts;
	rq.method = op->method;
	rq.url = op->url.buf;
	rq.io = op->io;

	r = phttp_run(g->http, &rq, &op->resp, &policy, &hooks, &c,
		      &op->attempts);
	free_sent(&c);
	if (c.auth_err && r == c.auth_err)
		return r; /* err->msg already says why */
	if (r == 0 && ((op->resp.status >= 200 && op->resp.status < 300) ||
		       (op->resp.status == 308 && op->accept_308)))
		return 0;
	if (r == 0) {
		if (!op->reason[0] && !op->message[0])
			gcs_json_error(op->resp.body.buf, op->resp.body.len,
				       op->reason, sizeof(op->reason),
				       op->message, sizeof(op->message));
		r = gcs_status_errno(op->resp.status, op->reason, op->message);
	}
	if (err) {
		gcs_op_fail_msg(op, r, err);
		err->http_status = (int)op->resp.status;
	}
	return r;
}

int gcs_status_errno(long status, const char *reason, const char *message)
{
	switch (status) {
	case 400:
		/* X-Goog-Hash or the metadata's crc32c/md5Hash disagree
		 * with what arrived: the data, not the request, is bad. */
		if (strstr(message, "CRC32C") || strstr(message, "MD5"))
			return -EIO;
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		if (strstr(message, "bucket does not exist"))
			return -EINVAL;
		return -ENOENT;
	case 405:
	case 501:
		return -EOPNOTSUPP;
	case 408:
		return -ETIMEDOUT;
	case 409:
		return -EAGAIN;
	case 410:
		return -ENOENT;
	case 412:
		return -EEXIST;
	case 413:
		return -EFBIG;
	case 507:
		return -ENOSPC;
	default:
		if (status == 429 || (status >= 500 && status < 600))
			return -EAGAIN;
		(void)reason;
		return -EIO;
	}
}

static const char *reason_phrase(long status)
{
	switch (status) {
	case 308: return "resume incomplete";
	case 400: return "bad request";
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "not found";
	case 408: return "request timeout";
	case 409: return "conflict";
	case 410: return "gone";
	case 412: return "precondition failed";
	case 416: return "range not satisfiable";
	case 429: return "too many requests";
	case 500: return "internal server error";
	case 502: return "bad gateway";
	case 503: return "service unavailable";
	case 504: return "gateway timeout";
	default: return "error";
	}
}

void gcs_op_fail_msg(const struct gcs_op *op, int r, struct drgw_err *err)
{
	const char *obj = pbuf_str(&op->object);

	if (!err)
		return;
	if (op->resp.status == 0) {
		pmsg_set_err(err, "gcs: %s %s: %s%s", op->name, obj ? obj : "",
			     phttp_strerror(&op->resp, r),
			     op->resp.curl_code == CURLE_PEER_FAILED_VERIFICATION ?
				     " (set ca-bundle= to the CA that signed the endpoint's certificate)" :
				     "");
		return;
	}
	pmsg_set_err(err, "gcs: %s %s: %ld %s%s%s", op->name, obj ? obj : "",
		     op->resp.status,
		     op->reason[0] ? op->reason : reason_phrase(op->resp.status),
		     op->message[0] ? ": " : "", op->message);
}
