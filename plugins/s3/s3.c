/* SPDX-License-Identifier: MIT */
/*
 * The S3 backend: s3://bucket[/prefix] on AWS S3 and S3-compatible
 * services (MinIO, Ceph RGW, R2, ...).  This file is the plugin entry:
 * the ops table, open/close and the read side (ranged GET, HEAD, list,
 * delete).  Uploads are in s3_put.c, request signing and retries in
 * s3_req.c and sigv4.c, credentials in s3_creds.c, options in s3_conf.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drgw/backend.h>

#include "pcodec.h"
#include "prange.h"
#include "s3_conf.h"
#include "s3_creds.h"
#include "s3_del.h"
#include "s3_put.h"
#include "s3_req.h"
#include "s3_xml.h"

#define LIST_PAGE 1000

/* Private ctl() opcodes (>= 1000), used by tests and tools. */
enum {
	/* arg: struct drgw_err *; receives the credential source in use. */
	S3_CTL_CREDS_SOURCE = 0x5301,
	/* arg: uint64_t *; receives this instance's DRGW_CAP_* bits, which
	 * add DRGW_CAP_IMMUTABLE when Object Lock is configured (the ABI's
	 * caps are per plugin). */
	S3_CTL_INSTANCE_CAPS = 0x5302,
};

#define S3_CAPS \
	(DRGW_CAP_RANGE_READ | DRGW_CAP_RESUMABLE_PUT | DRGW_CAP_PARALLEL_PUT | \
	 DRGW_CAP_STREAMING_PUT)

/* S3 keys are at most 1024 bytes of UTF-8, prefix included. */
static int check_key(const struct s3 *s3, const char *op, const char *key,
		     struct drgw_err *err)
{
	if (!*key) {
		pmsg_set_err(err, "s3: %s %s: empty object key", op, s3->url);
		return -EINVAL;
	}
	if (strlen(s3->prefix) + strlen(key) > 1024) {
		pmsg_set_err(err, "s3: %s %s: key longer than S3's 1024 bytes: %s%s",
			     op, s3->url, s3->prefix, key);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int s3_open(void *inst, const struct drgw_backend_config *cfg,
		   struct drgw_err *err)
{
	struct s3 *s3 = inst;
	struct phttp_config hc;
	struct s3_creds_config cc = { 0 };
	int r;

	r = s3_conf_parse(s3, cfg, err);
	if (r < 0)
		return r;
	s3_xml_init();
	popts_http_config(&s3->net, "drgw-s3/1", &hc);
	hc.deadline_ns = cfg->host ? cfg->host->deadline_ns : NULL;
	r = phttp_client_new(&hc, &s3->http);
	if (r == 0) {
		popts_http_cred_config(&s3->net, "drgw-s3/1", &hc);
		r = phttp_client_new(&hc, &s3->cred_http);
	}
	if (r < 0) {
		pmsg_set_err(err, "s3: cannot initialize libcurl");
		goto fail;
	}
	cc.profile = s3->profile;
	cc.region = s3->region;
	cc.sts_endpoint = s3->sts_endpoint;
	cc.http = s3->cred_http;
	cc.host = s3->host;
	r = s3_creds_new(&cc, &s3->creds, err);
	if (r == -ENOENT)
		r = -EINVAL;
	if (r < 0)
		goto fail;
	pmsg_debug(s3->host, "s3: %s at %s (region %s, %s addressing, part size %llu, %u uploads in parallel)",
		   s3->url, s3->endpoint, s3->region,
		   s3->virtual_host ? "virtual-host" : "path",
		   (unsigned long long)s3->part_size, s3->concurrency);
	return 0;
fail:
	s3->http = phttp_client_free(s3->http);
	s3->cred_http = phttp_client_free(s3->cred_http);
	s3_conf_release(s3);
	return r;
}

static void s3_close(void *inst)
{
	struct s3 *s3 = inst;

	s3_creds_free(s3->creds);
	s3->creds = NULL;
	s3->http = phttp_client_free(s3->http);
	s3->cred_http = phttp_client_free(s3->cred_http);
	s3_conf_release(s3);
}

static int s3_put_op(void *inst, const char *key, struct drgw_put_source *src,
		     struct drgw_err *err)
{
	int r = check_key(inst, "PUT", key, err);

	return r < 0 ? r : s3_put(inst, key, src, err);
}

static int s3_backend_stat(void *inst, const char *key,
			   struct drgw_object_info *ret_info,
			   struct drgw_err *err)
{
	struct s3 *s3 = inst;
	struct drgw_object_info info = { 0 };
	char v[256];
	struct s3_op op;
	int r;

	r = check_key(s3, "HEAD", key, err);
	if (r < 0)
		return r;
	r = s3_req_head(&op, s3, key);
	if (r == 0)
		r = s3_op_run(s3, &op, err);
	if (r < 0)
		goto out;
	if (phttp_header(&op.resp, "Content-Length", v, sizeof(v)) < 0 ||
	    pcodec_parse_u64(v, UINT64_MAX, &info.size) < 0) {
		pmsg_set_err(err, "s3: HEAD %s/%s%s: no Content-Length in the answer",
			     s3->bucket, s3->prefix, key);
		r = -EIO;
		goto out;
	}
	if (phttp_header(&op.resp, "Last-Modified", v, sizeof(v)) == 0) {
		time_t t = curl_getdate(v, NULL);

		if (t != -1)
			info.mtime_ns = (int64_t)t * 1000000000;
	}
	if (phttp_header(&op.resp, "ETag", v, sizeof(v)) == 0) {
		size_t n = strlen(v);

		if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
			v[n - 1] = '\0';
			memmove(v, v + 1, n - 1);
		}
		snprintf(info.etag, sizeof(info.etag), "%s", v);
	}
	r = s3_head_locks(s3, key, &op.resp, &info, err);
	if (r == 0)
		*ret_info = info;
out:
	s3_op_release(&op);
	return r;
}

static int s3_get(void *inst, const char *key, uint64_t off, void *buf,
		  size_t len, size_t *ret_len, struct drgw_err *err)
{
	struct s3 *s3 = inst;
	struct prange rg;
	struct s3_op op;
	int r;

	r = check_key(s3, "GET", key, err);
	if (r < 0)
		return r;
	if (len == 0) {
		struct drgw_object_info info;

		r = s3_backend_stat(s3, key, &info, err);
		if (r == 0)
			*ret_len = 0;
		return r;
	}
	if (off > UINT64_MAX - len)
		return -EINVAL;
	prange_init(&rg, buf, len, off);
	r = s3_req_get(&op, s3, key, off, off + len - 1);
	if (r < 0)
		goto out;
	op.io.sink = prange_sink;
	op.io.sink_arg = &rg;
	r = s3_op_run(s3, &op, err);
	if (r < 0 && op.resp.status == 416) {
		/* InvalidRange: off is at or past the end. */
		if (err)
			memset(err, 0, sizeof(*err));
		*ret_len = 0;
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	if (rg.bad) {
		r = -EIO;
		goto out;
	}
	/* Short only at the end of the object. */
	r = prange_check_short(&rg, &op.resp);
	if (r < 0) {
		pmsg_set_err(err,
			     "s3: GET %s/%s%s: short answer: %zu of %zu bytes at offset %llu",
			     s3->bucket, s3->prefix, key, rg.got, len,
			     (unsigned long long)off);
		goto out;
	}
	*ret_len = rg.got;
out:
	if (r == -EIO && rg.bad)
		pmsg_set_err(err,
			     "s3: GET %s/%s%s: answer is not the requested range at offset %llu",
			     s3->bucket, s3->prefix, key,
			     (unsigned long long)off);
	s3_op_release(&op);
	return r;
}

struct list_ctx {
	const struct s3 *s3;
	drgw_list_fn fn;
	void *arg;
	const char *before; /* stop at keys >= this, NULL: no end */
};

static int list_one(void *arg, const struct s3_xml_object *o)
{
	struct list_ctx *c = arg;
	size_t pl = strlen(c->s3->prefix);
	struct drgw_object_info info = { 0 };

	/* Listed keys all start with the prefix we asked for. */
	if (strncmp(o->key, c->s3->prefix, pl) || !o->key[pl])
		return 0;
	if (c->before && strcmp(o->key + pl, c->before) >= 0)
		return 1;
	info.size = o->size;
	info.mtime_ns = o->mtime_ns;
	snprintf(info.etag, sizeof(info.etag), "%s", o->etag);
	return c->fn(c->arg, o->key + pl, &info) ? 1 : 0;
}

static int s3_list_range(void *inst, const char *prefix, const char *after,
			 const char *before, const char *page_token,
			 drgw_list_fn fn, void *arg, char *next_token,
			 size_t next_token_size, struct drgw_err *err)
{
	struct s3 *s3 = inst;
	struct list_ctx c = { s3, fn, arg, before };
	struct pbuf next = PBUF_INIT, start = PBUF_INIT;
	struct s3_op op;
	int r;

	next_token[0] = '\0';
	if (after) {
		pbuf_adds(&start, s3->prefix);
		pbuf_adds(&start, after);
		if (!pbuf_str(&start))
			return -ENOMEM;
	}
	r = s3_req_list(&op, s3, prefix ? prefix : "", page_token,
			pbuf_str(&start), LIST_PAGE);
	if (r == 0)
		r = s3_op_run(s3, &op, err);
	if (r < 0)
		goto out;
	r = s3_xml_list(op.resp.body.buf ? op.resp.body.buf : "",
			op.resp.body.len, list_one, &c, &next);
	if (r == 1) {
		r = 0; /* the callback stopped the listing */
		goto out;
	}
	if (r < 0) {
		if (r == -EIO)
			pmsg_set_err(err, "s3: LIST %s/%s: unusable listing answer",
				     s3->bucket, op.key.buf ? op.key.buf : "");
		goto out;
	}
	if (next.len >= next_token_size) {
		pmsg_set_err(err, "s3: LIST %s/%s: continuation token too long (%zu bytes)",
			     s3->bucket, op.key.buf, next.len);
		r = -EIO;
		goto out;
	}
	if (next.len)
		memcpy(next_token, next.buf, next.len + 1);
out:
	pbuf_release(&next);
	pbuf_release(&start);
	s3_op_release(&op);
	return r;
}

static int s3_list(void *inst, const char *prefix, const char *page_token,
		   drgw_list_fn fn, void *arg, char *next_token,
		   size_t next_token_size, struct drgw_err *err)
{
	return s3_list_range(inst, prefix, NULL, NULL, page_token, fn, arg,
			     next_token, next_token_size, err);
}

static int s3_remove(void *inst, const char *key, struct drgw_err *err)
{
	struct s3 *s3 = inst;
	struct s3_op op;
	int r;

	if (s3->read_only) {
		pmsg_set_err(err, "s3: %s is read-only", s3->url);
		return -EROFS;
	}
	r = check_key(s3, "DELETE", key, err);
	if (r < 0)
		return r;
	r = s3_req_delete(&op, s3, key);
	if (r == 0)
		r = s3_op_run(s3, &op, err);
	if (r == -ENOENT) {
		if (err)
			memset(err, 0, sizeof(*err));
		r = 0;
	}
	s3_op_release(&op);
	return r;
}

static int s3_remove_many_op(void *inst, const char *const *keys, size_t n,
			     int *results, struct drgw_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int r = check_key(inst, "DELETE", keys[i], err);

		if (r < 0)
			return r;
	}
	return s3_remove_many(inst, keys, n, results, err);
}

static int s3_abort_put_op(void *inst, const char *key, const void *token,
			   size_t token_len, struct drgw_err *err)
{
	struct s3 *s3 = inst;

	if (s3->read_only) {
		pmsg_set_err(err, "s3: %s is read-only", s3->url);
		return -EROFS;
	}
	return s3_abort_put(s3, key, token, token_len, err);
}

static int ping(struct s3 *s3, struct drgw_err *err)
{
	struct s3_op op;
	int r;

	/* A one-key listing under our prefix needs only the permission
	 * the backend needs anyway, unlike HEAD bucket. */
	r = s3_req_list(&op, s3, "", NULL, NULL, 1);
	if (r == 0)
		r = s3_op_run(s3, &op, err);
	s3_op_release(&op);
	return r;
}

static int s3_ctl(void *inst, int op, void *arg)
{
	struct s3 *s3 = inst;

	switch (op) {
	case DRGW_CTL_DESCRIBE:
		pmsg_set_err(arg, "%s at %s (region %s)", s3->url, s3->endpoint,
			     s3->region);
		return 0;
	case DRGW_CTL_PING:
		return ping(s3, arg);
	case S3_CTL_CREDS_SOURCE:
		pmsg_set_err(arg, "%s", s3_creds_source(s3->creds));
		return 0;
	case DRGW_CTL_RETENTION:
		return s3_retention(s3, arg);
	case S3_CTL_INSTANCE_CAPS:
		*(uint64_t *)arg = S3_CAPS | (s3->lock_mode ? DRGW_CAP_IMMUTABLE : 0);
		return 0;
	default:
		return -ENOTSUP;
	}
}

static const struct drgw_backend_ops s3_ops = {
	.abi_version = DRGW_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct drgw_backend_ops),
	.name = "s3",
	.caps = S3_CAPS,
	.scheme = "s3",
	.instance_size = sizeof(struct s3),
	.open = s3_open,
	.close = s3_close,
	.put = s3_put_op,
	.get = s3_get,
	.stat = s3_backend_stat,
	.list = s3_list,
	.remove = s3_remove,
	.abort_put = s3_abort_put_op,
	.ctl = s3_ctl,
	.remove_many = s3_remove_many_op,
	.list_range = s3_list_range,
};

DRGW_BACKEND_EXPORT const struct drgw_backend_ops *drgw_backend_entry_v1(void)
{
	return &s3_ops;
}
