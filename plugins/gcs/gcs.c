/* SPDX-License-Identifier: MIT */
/*
 * The GCS backend: gcs://bucket[/prefix] on Google Cloud Storage's JSON
 * API (and emulators of it).  This file is the plugin entry: the ops
 * table, open/close and the read side (ranged media download, metadata,
 * listing, delete, ctl).  Uploads are in gcs_put.c, requests and retries
 * in gcs_req.c, credentials in gcs_auth.c and gcs_jwt.c, options in
 * gcs_conf.c, JSON in gcs_json.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drgw/backend.h>

#include "gcs_auth.h"
#include "gcs_conf.h"
#include "gcs_del.h"
#include "gcs_json.h"
#include "gcs_put.h"
#include "gcs_req.h"
#include "pcodec.h"
#include "pdigest.h"
#include "prange.h"

#define LIST_PAGE 1000

/* Private ctl() opcodes (>= 1000), used by tests and tools. */
enum {
	/* arg: struct drgw_err *; receives the credential source in use. */
	GCS_CTL_AUTH_SOURCE = 0x4701,
	/* arg: uint64_t *; receives this instance's DRGW_CAP_* bits: with
	 * holds or retention, objects are IMMUTABLE and uploads never
	 * replace one (CONDITIONAL_PUT), which the per-plugin ops.caps
	 * cannot say. */
	GCS_CTL_INSTANCE_CAPS = 0x4702,
};

#define GCS_CAPS (DRGW_CAP_RANGE_READ | DRGW_CAP_RESUMABLE_PUT | \
		  DRGW_CAP_STREAMING_PUT)

/* Whether s is well-formed UTF-8 (GCS rejects anything else). */
static int utf8_ok(const unsigned char *s)
{
	while (*s) {
		int n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 :
				(*s & 0xf0) == 0xe0 ? 2 : (*s & 0xf8) == 0xf0 ? 3 : -1;

		if (n < 0 || (n == 1 && *s < 0xc2) || (n == 3 && *s > 0xf4))
			return 0;
		s++;
		for (int i = 0; i < n; i++, s++)
			if ((*s & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

/* GCS object names: 1..1024 bytes of UTF-8 without CR or LF. */
static int check_key(const struct gcs *g, const char *op, const char *key,
		     struct drgw_err *err)
{
	if (!*key) {
		pmsg_set_err(err, "gcs: %s %s: empty object key", op, g->url);
		return -EINVAL;
	}
	if (strlen(g->prefix) + strlen(key) > GCS_MAX_NAME) {
		pmsg_set_err(err, "gcs: %s %s/%s%s: name longer than GCS's 1024 bytes",
			     op, g->bucket, g->prefix, key);
		return -ENAMETOOLONG;
	}
	if (strpbrk(key, "\r\n") || !utf8_ok((const unsigned char *)key)) {
		pmsg_set_err(err, "gcs: %s %s: object key is not valid UTF-8 without line breaks",
			     op, g->url);
		return -EINVAL;
	}
	return 0;
}

static const char *scope_of(const struct gcs *g)
{
	/* Least privilege: restore mounts only read; holds and retention
	 * are object metadata that read_write may not set. */
	if (g->read_only)
		return GCS_SCOPE_READ_ONLY;
	return gcs_protected(g) ? GCS_SCOPE_FULL_CONTROL : GCS_SCOPE_READ_WRITE;
}

static int gcs_open(void *inst, const struct drgw_backend_config *cfg,
		    struct drgw_err *err)
{
	struct gcs *g = inst;
	struct phttp_config hc;
	struct gcs_auth_config ac = { 0 };
	int r;

	r = gcs_conf_parse(g, cfg, err);
	if (r < 0)
		return r;
	popts_http_config(&g->net, "drgw-gcs/1", &hc);
	hc.deadline_ns = cfg->host ? cfg->host->deadline_ns : NULL;
	r = phttp_client_new(&hc, &g->http);
	if (r == 0) {
		popts_http_cred_config(&g->net, "drgw-gcs/1", &hc);
		r = phttp_client_new(&hc, &g->cred_http);
	}
	if (r < 0) {
		pmsg_set_err(err, "gcs: cannot initialize libcurl");
		goto fail;
	}
	ac.credentials_file = g->credentials_file;
	ac.access_token_file = g->access_token_file;
	ac.metadata_host = g->metadata_host;
	ac.token_uri = g->token_uri;
	ac.custom_endpoint = g->custom_endpoint;
	ac.scope = scope_of(g);
	ac.http = g->cred_http;
	ac.host = g->host;
	r = gcs_auth_new(&ac, &g->auth, err);
	if (r < 0)
		goto fail;
	if (!gcs_auth_anonymous(g->auth) && !strncmp(g->endpoint, "http://", 7) &&
	    g->host && g->host->log)
		g->host->log(DRGW_LOG_WARNING,
			     "gcs: %s is plain http: access tokens from %s travel unencrypted",
			     g->endpoint, gcs_auth_source(g->auth));
	pmsg_debug(g->host, "gcs: %s at %s (credentials: %s, chunk size %llu)",
		   g->url, g->endpoint, gcs_auth_source(g->auth),
		   (unsigned long long)g->chunk_size);
	return 0;
fail:
	g->http = phttp_client_free(g->http);
	g->cred_http = phttp_client_free(g->cred_http);
	gcs_conf_release(g);
	return r;
}

static void gcs_close(void *inst)
{
	struct gcs *g = inst;

	gcs_auth_free(g->auth);
	g->auth = NULL;
	g->http = phttp_client_free(g->http);
	g->cred_http = phttp_client_free(g->cred_http);
	gcs_conf_release(g);
}

static int gcs_put_op(void *inst, const char *key,
		      struct drgw_put_source *src, struct drgw_err *err)
{
	int r = check_key(inst, "UPLOAD", key, err);

	return r < 0 ? r : gcs_put(inst, key, src, err);
}

static int gcs_stat(void *inst, const char *key,
		    struct drgw_object_info *ret_info, struct drgw_err *err)
{
	struct gcs *g = inst;
	struct drgw_object_info info = { 0 };
	struct gcs_object o;
	struct gcs_op op;
	int r;

	r = check_key(g, "STAT", key, err);
	if (r < 0)
		return r;
	gcs_op_init(&op, "STAT", "GET");
	r = gcs_op_object_url(&op, g, key,
			      "fields=name%2Csize%2Cgeneration%2Cupdated%2C"
			      "temporaryHold%2CeventBasedHold%2C"
			      "retentionExpirationTime%2Cretention");
	if (r == 0)
		r = gcs_op_run(g, &op, err);
	if (r == 0 &&
	    gcs_json_object(op.resp.body.buf, op.resp.body.len, &o) < 0) {
		pmsg_set_err(err, "gcs: STAT %s/%s%s: the answer is not an object resource",
			     g->bucket, g->prefix, key);
		r = -EIO;
	}
	if (r == 0) {
		info.size = o.size;
		info.mtime_ns = o.updated_ns;
		/* The generation names this version of the object, and the
		 * listing reports it too, so stat and list agree. */
		snprintf(info.etag, sizeof(info.etag), "%s", o.generation);
		gcs_lock_info(&o, &info);
		*ret_info = info;
	}
	gcs_op_release(&op);
	return r;
}

/* Where a ranged download's body goes; see gcs_get(). */
struct range {
	struct prange base;
	uint32_t crc;			/* of the whole body, when whole */
	int bad_encoding;		/* transcoded: not our bytes */
};

/* prange_sink(), plus what only GCS has: the stored encoding and the
 * crc32c of the whole body. */
static int range_sink(void *arg, struct phttp_response *resp,
		      const char *data, size_t n)
{
	struct range *rg = arg;
	char enc[64];

	/* First data of an attempt: decide how to read this answer. */
	if (resp->body_bytes == n) {
		rg->crc = 0;
		rg->bad_encoding = 0;
		/* Decompressive transcoding would hand us other bytes than
		 * were stored; our objects are never gzip-encoded. */
		if (phttp_header(resp, "x-goog-stored-content-encoding", enc,
				 sizeof(enc)) == 0 && strcmp(enc, "identity")) {
			rg->base.bad = 0;
			rg->bad_encoding = 1;
			return -EIO;
		}
	}
	rg->crc = pdigest_crc32c(rg->crc, data, n);
	return prange_sink(&rg->base, resp, data, n);
}

/*
 * When the answer held the whole object, checks it against the object's
 * crc32c in x-goog-hash (which always describes the whole object).
 */
static int whole_object_crc(const struct phttp_response *resp,
			    const struct range *rg, int whole)
{
	char v[128], want[16];
	uint8_t be[4];

	if (!whole)
		return 0;
	for (unsigned i = 0; phttp_header_nth(resp, "x-goog-hash", i, v,
					      sizeof(v)) == 0; i++) {
		/* "crc32c=..", "md5=..", or both on one line. */
		for (char *p = v; p; p = strchr(p, ',')) {
			if (*p == ',')
				p++;
			while (*p == ' ')
				p++;
			if (strncmp(p, "crc32c=", 7))
				continue;
			be[0] = (uint8_t)(rg->crc >> 24);
			be[1] = (uint8_t)(rg->crc >> 16);
			be[2] = (uint8_t)(rg->crc >> 8);
			be[3] = (uint8_t)rg->crc;
			pcodec_base64(want, be, sizeof(be));
			return strncmp(p + 7, want, strlen(want)) ? -EIO : 0;
		}
	}
	return 0;
}

static int gcs_get(void *inst, const char *key, uint64_t off, void *buf,
		   size_t len, size_t *ret_len, struct drgw_err *err)
{
	struct gcs *g = inst;
	struct range rg = { .crc = 0 };
	char hdr[64];
	struct gcs_op op;
	long st;
	int r;

	r = check_key(g, "GET", key, err);
	if (r < 0)
		return r;
	if (len == 0) {
		struct drgw_object_info info;

		r = gcs_stat(g, key, &info, err);
		if (r == 0)
			*ret_len = 0;
		return r;
	}
	if (off > UINT64_MAX - len)
		return -EINVAL;
	prange_init(&rg.base, buf, len, off);
	gcs_op_init(&op, "GET", "GET");
	snprintf(hdr, sizeof(hdr), "bytes=%llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	r = gcs_op_object_url(&op, g, key, "alt=media");
	if (r == 0)
		r = gcs_op_header(&op, "Range", hdr);
	if (r < 0)
		goto out;
	op.io.sink = range_sink;
	op.io.sink_arg = &rg;
	r = gcs_op_run(g, &op, err);
	st = op.resp.status;
	if (r < 0 && st == 416) {
		/* Nothing at or past off: the object is shorter. */
		if (err)
			memset(err, 0, sizeof(*err));
		*ret_len = 0;
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	if (rg.base.bad || rg.bad_encoding) {
		r = -EIO;
		goto out;
	}
	/* Short only where the object ends. */
	r = prange_check_short(&rg.base, &op.resp);
	if (r < 0) {
		pmsg_set_err(err, "gcs: GET %s/%s%s: short answer: %zu of %zu bytes at offset %llu",
			     g->bucket, g->prefix, key, rg.base.got, len,
			     (unsigned long long)off);
		goto out;
	}
	r = whole_object_crc(&op.resp, &rg,
			     !op.resp.sink_stopped && off == 0 &&
			     (st != 206 || rg.base.last + 1 == rg.base.total));
	if (r < 0) {
		pmsg_set_err(err, "gcs: GET %s/%s%s: downloaded bytes do not match the object's crc32c",
			     g->bucket, g->prefix, key);
		goto out;
	}
	*ret_len = rg.base.got;
out:
	if (r == -EIO && rg.base.bad)
		pmsg_set_err(err, "gcs: GET %s/%s%s: answer is not the requested range at offset %llu",
			     g->bucket, g->prefix, key,
			     (unsigned long long)off);
	else if (r == -EIO && rg.bad_encoding)
		pmsg_set_err(err, "gcs: GET %s/%s%s: object is stored with a content encoding (transcoded download); not a drgw object",
			     g->bucket, g->prefix, key);
	gcs_op_release(&op);
	return r;
}

struct list_ctx {
	const struct gcs *g;
	drgw_list_fn fn;
	void *arg;
	const char *after; /* skip this key (startOffset includes it) */
};

static int list_one(void *arg, const struct gcs_object *o)
{
	struct list_ctx *c = arg;
	size_t pl = strlen(c->g->prefix);
	struct drgw_object_info info = { 0 };

	/* Listed names all start with the prefix we asked for. */
	if (strncmp(o->name, c->g->prefix, pl) || !o->name[pl] ||
	    (c->after && strcmp(o->name + pl, c->after) <= 0))
		return 0;
	info.size = o->size;
	info.mtime_ns = o->updated_ns;
	snprintf(info.etag, sizeof(info.etag), "%s", o->generation);
	gcs_lock_info(o, &info);
	return c->fn(c->arg, o->name + pl, &info) ? 1 : 0;
}

static int list_page(struct gcs *g, const char *prefix, const char *token,
		     const char *before, unsigned max, struct list_ctx *c,
		     char *next_token, size_t next_token_size,
		     struct drgw_err *err)
{
	struct pbuf next = PBUF_INIT;
	struct gcs_op op;
	int r;

	next_token[0] = '\0';
	gcs_op_init(&op, "LIST", "GET");
	r = gcs_op_list_url(&op, g, prefix ? prefix : "", token, c->after,
			    before, max);
	if (r == 0)
		r = gcs_op_run(g, &op, err);
	if (r < 0)
		goto out;
	r = gcs_json_list(op.resp.body.buf, op.resp.body.len, list_one, c,
			  &next);
	if (r == 1) {
		r = 0; /* the callback stopped the listing */
		goto out;
	}
	if (r == -EIO)
		pmsg_set_err(err, "gcs: LIST %s: unusable listing answer",
			     pbuf_str(&op.object));
	if (r < 0)
		goto out;
	if (next.len >= next_token_size) {
		pmsg_set_err(err, "gcs: LIST %s: page token too long (%zu bytes)",
			     pbuf_str(&op.object), next.len);
		r = -EIO;
		goto out;
	}
	if (next.len)
		memcpy(next_token, next.buf, next.len + 1);
out:
	pbuf_release(&next);
	gcs_op_release(&op);
	return r;
}

static int gcs_list_range(void *inst, const char *prefix, const char *after,
			  const char *before, const char *page_token,
			  drgw_list_fn fn, void *arg, char *next_token,
			  size_t next_token_size, struct drgw_err *err)
{
	struct gcs *g = inst;
	struct list_ctx c = { g, fn, arg, after };

	return list_page(g, prefix, page_token, before, LIST_PAGE, &c,
			 next_token, next_token_size, err);
}

static int gcs_list(void *inst, const char *prefix, const char *page_token,
		    drgw_list_fn fn, void *arg, char *next_token,
		    size_t next_token_size, struct drgw_err *err)
{
	return gcs_list_range(inst, prefix, NULL, NULL, page_token, fn, arg,
			      next_token, next_token_size, err);
}

static int gcs_remove(void *inst, const char *key, struct drgw_err *err)
{
	struct gcs *g = inst;
	struct gcs_op op;
	int r;

	if (g->read_only) {
		pmsg_set_err(err, "gcs: %s is read-only", g->url);
		return -EROFS;
	}
	r = check_key(g, "DELETE", key, err);
	if (r < 0)
		return r;
	gcs_op_init(&op, "DELETE", "DELETE");
	r = gcs_op_object_url(&op, g, key, NULL);
	if (r == 0)
		r = gcs_op_run(g, &op, err);
	if (r == -ENOENT) {
		/* Gone already, possibly by our own retried DELETE. */
		if (err)
			memset(err, 0, sizeof(*err));
		r = 0;
	}
	gcs_op_release(&op);
	return r;
}

static int gcs_remove_many_op(void *inst, const char *const *keys, size_t n,
			      int *results, struct drgw_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int r = check_key(inst, "DELETE", keys[i], err);

		if (r < 0)
			return r;
	}
	return gcs_remove_many(inst, keys, n, results, err);
}

static int gcs_abort_put_op(void *inst, const char *key, const void *token,
			    size_t token_len, struct drgw_err *err)
{
	struct gcs *g = inst;

	if (g->read_only) {
		pmsg_set_err(err, "gcs: %s is read-only", g->url);
		return -EROFS;
	}
	return gcs_abort_put(g, key, token, token_len, err);
}

static int ping_key(void *arg, const char *key,
		    const struct drgw_object_info *info)
{
	return 0;
}

static int ping(struct gcs *g, struct drgw_err *err)
{
	struct list_ctx c = { g, ping_key, NULL, NULL };
	char next[4096];

	/* A one-item listing under our prefix needs only the permission
	 * the backend needs anyway (storage.objects.list), unlike a bucket
	 * GET (storage.buckets.get). */
	return list_page(g, "", NULL, NULL, 1, &c, next, sizeof(next), err);
}

static int gcs_ctl(void *inst, int op, void *arg)
{
	struct gcs *g = inst;

	switch (op) {
	case DRGW_CTL_DESCRIBE:
		pmsg_set_err(arg, "%s at %s", g->url, g->endpoint);
		return 0;
	case DRGW_CTL_PING:
		return ping(g, arg);
	case GCS_CTL_AUTH_SOURCE:
		pmsg_set_err(arg, "%s", gcs_auth_source(g->auth));
		return 0;
	case DRGW_CTL_RETENTION:
		return gcs_retention(g, arg);
	case GCS_CTL_INSTANCE_CAPS:
		*(uint64_t *)arg = GCS_CAPS |
				   (gcs_protected(g) ? DRGW_CAP_IMMUTABLE |
						       DRGW_CAP_CONDITIONAL_PUT : 0);
		return 0;
	default:
		return -ENOTSUP;
	}
}

static const struct drgw_backend_ops gcs_ops = {
	.abi_version = DRGW_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct drgw_backend_ops),
	.name = "gcs",
	.caps = GCS_CAPS,
	.scheme = "gcs",
	.instance_size = sizeof(struct gcs),
	.open = gcs_open,
	.close = gcs_close,
	.put = gcs_put_op,
	.get = gcs_get,
	.stat = gcs_stat,
	.list = gcs_list,
	.remove = gcs_remove,
	.abort_put = gcs_abort_put_op,
	.ctl = gcs_ctl,
	.remove_many = gcs_remove_many_op,
	.list_range = gcs_list_range,
};

DRGW_BACKEND_EXPORT const struct drgw_backend_ops *drgw_backend_entry_v1(void)
{
	return &gcs_ops;
}
