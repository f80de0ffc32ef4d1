/* SPDX-License-Identifier: MIT */
/*
 * What `drgw prune` needs of S3: batch deletes (DeleteObjects, up to 1000
 * keys per request, with the Content-MD5 S3 requires), the bucket's Object
 * Lock settings, and the lock state of one object.
 *
 * On a bucket with Object Lock (always versioned), a DELETE without a
 * version id does not fail on a locked object: it adds a delete marker
 * and the object disappears from listings while its data stays.  So the
 * gateway asks for every object's lock before deleting it, and HEAD's
 * x-amz-object-lock-* headers are only trusted as "not locked" when S3
 * would have sent them: HEAD omits them for callers without
 * s3:GetObjectRetention / s3:GetObjectLegalHold, so on a bucket with
 * Object Lock their absence is checked with GET ?retention and
 * ?legal-hold, whose 403 names the missing permission.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pcodec.h"
#include "pdigest.h"
#include "s3_del.h"
#include "s3_req.h"
#include "s3_xml.h"

/* Bucket Object Lock as DRGW_CTL_RETENTION found it (s3->bucket_lock). */
enum { LOCK_UNKNOWN, LOCK_OFF, LOCK_ON, LOCK_REFUSED };

/* "...: the credentials lack s3:X on bucket/prefix*; ..." */
static void lacks(const struct s3 *s3, const char *perm, struct drgw_err *err)
{
	char msg[sizeof(err->msg)];

	if (!err)
		return;
	snprintf(msg, sizeof(msg), "%s", err->msg);
	pmsg_set_err(err,
		     "%s: the credentials lack %s on %s/%s*, which drgw prune needs (plugins/s3/README.md has the pruner's policy)",
		     msg, perm, s3->bucket, s3->prefix);
}

/* --- DeleteObjects --- */

struct batch {
	const struct s3 *s3;
	const char *const *keys;
	size_t n;
	int *results;
	bool *send;		/* the keys the next request carries */
	struct drgw_err *err;
	int first;		/* first lasting failure */
	char transient[256];	/* what the last passing failure said */
};

static int key_error_errno(const char *code)
{
	if (!strcmp(code, "NoSuchKey") || !strcmp(code, "NoSuchVersion"))
		return 0;
	if (!strcmp(code, "AccessDenied") || !strcmp(code, "AllAccessDisabled"))
		return -EACCES;
	if (!strcmp(code, "InternalError") || !strcmp(code, "SlowDown") ||
	    !strcmp(code, "ServiceUnavailable"))
		return -EAGAIN;
	return -EIO;
}

static int on_key_error(void *arg, const char *key, const char *code,
			const char *msg)
{
	struct batch *b = arg;
	size_t pl = strlen(b->s3->prefix);
	int e = key_error_errno(code);

	if (strncmp(key, b->s3->prefix, pl))
		return 0;
	for (size_t i = 0; i < b->n; i++) {
		if (!b->send[i] || strcmp(key + pl, b->keys[i]))
			continue;
		b->results[i] = e;
		if (e == -EAGAIN) {
			snprintf(b->transient, sizeof(b->transient),
				 "s3: DeleteObjects %s/%s: %s: %s",
				 b->s3->bucket, key, code, msg);
		} else if (e && !b->first) {
			b->first = e;
			pmsg_set_err(b->err, "s3: DeleteObjects %s/%s: %s: %s",
				     b->s3->bucket, key, code, msg);
			if (e == -EACCES)
				lacks(b->s3, "s3:DeleteObject", b->err);
		}
	}
	return 0;
}

/* One DeleteObjects request for the keys b->send[] names. */
static int delete_objects(struct s3 *s3, struct batch *b)
{
	struct pbuf body = PBUF_INIT;
	uint8_t md5[PDIGEST_MD5_LEN];
	struct drgw_err e = { 0 };
	struct s3_op op;
	int r;

	pbuf_adds(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			 "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			 "<Quiet>true</Quiet>");
	for (size_t i = 0; i < b->n; i++) {
		if (!b->send[i])
			continue;
		pbuf_adds(&body, "<Object><Key>");
		s3_xml_escape(&body, s3->prefix);
		s3_xml_escape(&body, b->keys[i]);
		pbuf_adds(&body, "</Key></Object>");
	}
	pbuf_adds(&body, "</Delete>");
	if (!pbuf_str(&body)) {
		pbuf_release(&body);
		return -ENOMEM;
	}
	s3_op_init(&op, "DeleteObjects", "POST");
	op.bucket_level = 1;
	s3_op_query(&op, "delete", "");
	/* S3 refuses DeleteObjects without an integrity header. */
	r = pdigest_md5(body.buf, body.len, md5);
	pcodec_base64(op.md5, md5, sizeof(md5));
	s3_op_header(&op, "Content-MD5", op.md5);
	s3_op_header(&op, "Content-Type", "application/xml");
	op.io.has_body = 1;
	op.io.body = body.buf;
	op.io.body_len = body.len;
	if (r == 0)
		r = s3_op_run(s3, &op, &e);
	if (r == 0) {
		/* Only Error entries come back; a key not named is gone. */
		for (size_t i = 0; i < b->n; i++)
			if (b->send[i])
				b->results[i] = 0;
		if (s3_xml_delete_errors(op.resp.body.buf ? op.resp.body.buf : "",
					 op.resp.body.len, on_key_error, b) < 0) {
			pmsg_set_err(&e, "s3: DeleteObjects %s: unusable answer",
				     s3->bucket);
			r = -EIO;
		}
	}
	if (r < 0 && b->err)
		*b->err = e;
	s3_op_release(&op);
	pbuf_release(&body);
	return r;
}

/* S3-compatible services without DeleteObjects: one DELETE per key. */
static int delete_each(struct s3 *s3, const char *const *keys, size_t n,
		       int *results, struct drgw_err *err)
{
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		struct drgw_err e = { 0 };
		struct s3_op op;
		int r = s3_req_delete(&op, s3, keys[i]);

		if (r == 0)
			r = s3_op_run(s3, &op, &e);
		s3_op_release(&op);
		results[i] = r == -ENOENT ? 0 : r;
		if (results[i] && !first) {
			first = results[i];
			if (err)
				*err = e;
			if (first == -EACCES)
				lacks(s3, "s3:DeleteObject", err);
		}
	}
	return first;
}

int s3_remove_many(struct s3 *s3, const char *const *keys, size_t n,
		   int *results, struct drgw_err *err)
{
	struct batch b = { .s3 = s3, .keys = keys, .n = n, .results = results,
			   .err = err };
	int r = 0;

	if (s3->read_only) {
		pmsg_set_err(err, "s3: %s is read-only", s3->url);
		return -EROFS;
	}
	b.send = calloc(n ? n : 1, sizeof(*b.send));
	if (!b.send)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		results[i] = -EIO;
		b.send[i] = true;
	}
	/* The request is retried by s3_op_run(); keys that failed with a
	 * passing error inside a 200 answer get two more requests. */
	for (int round = 0; round < 3 && r == 0; round++) {
		bool again = false;

		r = delete_objects(s3, &b);
		for (size_t i = 0; r == 0 && i < n; i++) {
			b.send[i] = results[i] == -EAGAIN;
			again |= b.send[i];
		}
		if (!again)
			break;
	}
	free(b.send);
	if (r == -EOPNOTSUPP) {
		if (err)
			memset(err, 0, sizeof(*err));
		return delete_each(s3, keys, n, results, err);
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			results[i] = r;
		if (r == -EACCES)
			lacks(s3, "s3:DeleteObject", err);
		return r;
	}
	for (size_t i = 0; !b.first && i < n; i++)
		if (results[i] == -EAGAIN) {
			b.first = -EAGAIN;
			pmsg_set_err(err, "%s", b.transient);
		}
	return b.first;
}

/* --- the bucket's Object Lock --- */

int s3_retention(struct s3 *s3, struct drgw_retention *ret)
{
	struct s3_xml_lock_config lc = { 0 };
	struct drgw_err err = { 0 };
	int64_t own = (int64_t)s3->lock_days * 86400 * 1000000000LL;
	struct s3_op op;
	int r;

	s3_op_init(&op, "GetObjectLockConfiguration", "GET");
	op.bucket_level = 1;
	s3_op_query(&op, "object-lock", "");
	r = s3_op_run(s3, &op, &err);
	if (r == 0 && s3_xml_object_lock(op.resp.body.buf ? op.resp.body.buf : "",
					 op.resp.body.len, &lc) < 0) {
		pmsg_set_err(&err, "s3: GetObjectLockConfiguration %s: unusable answer",
			     s3->bucket);
		r = -EIO;
	}
	/* No configuration, or a service without Object Lock (s3rver
	 * answers NotImplemented): nothing on the bucket locks objects. */
	if (r == -ENOENT || r == -EOPNOTSUPP ||
	    !strcmp(op.code, "ObjectLockConfigurationNotFoundError")) {
		memset(&lc, 0, sizeof(lc));
		r = 0;
	}
	s3_op_release(&op);
	if (r < 0) {
		__atomic_store_n(&s3->bucket_lock, LOCK_REFUSED,
				 __ATOMIC_RELAXED);
		if (r == -EACCES)
			lacks(s3, "s3:GetBucketObjectLockConfiguration", &err);
		snprintf(ret->source, sizeof(ret->source), "%s", err.msg);
		return r;
	}
	__atomic_store_n(&s3->bucket_lock, lc.enabled ? LOCK_ON : LOCK_OFF,
			 __ATOMIC_RELAXED);
	if (lc.enabled || s3->lock_mode)
		ret->flags |= DRGW_RETENTION_LOCKS;
	if (lc.days && (int64_t)lc.days * 86400 * 1000000000LL >= own) {
		ret->period_ns = (int64_t)lc.days * 86400 * 1000000000LL;
		snprintf(ret->source, sizeof(ret->source),
			 "bucket default retention %s %llu days", lc.mode,
			 (unsigned long long)lc.days);
	} else if (own) {
		ret->period_ns = own;
		snprintf(ret->source, sizeof(ret->source),
			 "object-lock-mode=%s object-lock-retain-days=%u",
			 s3->lock_mode, s3->lock_days);
	}
	return 0;
}

/* --- one object's lock --- */

/* GET ?name= on key: the answer's body, or -ENOENT for "no such lock". */
static int get_lock_part(struct s3 *s3, const char *key, const char *what,
			 const char *perm, struct s3_op *op,
			 struct drgw_err *err)
{
	int r;

	s3_op_init(op, what, "GET");
	s3_op_query(op, !strcmp(what, "GetObjectRetention") ? "retention" :
							       "legal-hold",
		    "");
	pbuf_reset(&op->key);
	pbuf_adds(&op->key, s3->prefix);
	pbuf_adds(&op->key, key);
	r = s3_op_run(s3, op, err);
	if (r < 0 && (!strcmp(op->code, "NoSuchObjectLockConfiguration") ||
		      !strcmp(op->code, "ObjectLockConfigurationNotFoundError"))) {
		if (err)
			memset(err, 0, sizeof(*err));
		return -ENOENT;
	}
	if (r == -EACCES)
		lacks(s3, perm, err);
	return r;
}

int s3_head_locks(struct s3 *s3, const char *key,
		  const struct phttp_response *head,
		  struct drgw_object_info *info, struct drgw_err *err)
{
	int bucket = __atomic_load_n(&s3->bucket_lock, __ATOMIC_RELAXED);
	char v[128];
	struct s3_op op;
	int r, on = 0;

	info->lock_flags = DRGW_LOCK_KNOWN;
	info->retain_until_ns = 0;
	if (phttp_header(head, "x-amz-object-lock-retain-until-date", v,
			 sizeof(v)) == 0 &&
	    pcodec_parse_rfc3339(v, &info->retain_until_ns) < 0) {
		pmsg_set_err(err, "s3: HEAD %s/%s%s: unusable x-amz-object-lock-retain-until-date %s",
			     s3->bucket, s3->prefix, key, v);
		return -EIO;
	}
	if (phttp_header(head, "x-amz-object-lock-legal-hold", v,
			 sizeof(v)) == 0 && !strcmp(v, "ON"))
		info->lock_flags |= DRGW_LOCK_HOLD;
	/* Without Object Lock on the bucket nothing can be locked (a
	 * bucket never asked, outside prune, is taken as it).  Where the
	 * question was refused, ask the object: a pruner that can tell
	 * neither must not delete, since on a versioned bucket the delete
	 * would hide a locked object. */
	if (bucket != LOCK_ON && bucket != LOCK_REFUSED)
		return 0;
	if (phttp_header(head, "x-amz-object-lock-mode", v, sizeof(v)) < 0) {
		r = get_lock_part(s3, key, "GetObjectRetention",
				  "s3:GetObjectRetention", &op, err);
		if (r == 0 && s3_xml_retention(op.resp.body.buf ? op.resp.body.buf : "",
					       op.resp.body.len,
					       &info->retain_until_ns) < 0)
			r = -EIO;
		s3_op_release(&op);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	if (phttp_header(head, "x-amz-object-lock-legal-hold", v, sizeof(v)) < 0) {
		r = get_lock_part(s3, key, "GetObjectLegalHold",
				  "s3:GetObjectLegalHold", &op, err);
		if (r == 0 && s3_xml_legal_hold(op.resp.body.buf ? op.resp.body.buf : "",
						op.resp.body.len, &on) < 0)
			r = -EIO;
		s3_op_release(&op);
		if (r < 0 && r != -ENOENT)
			return r;
		if (on)
			info->lock_flags |= DRGW_LOCK_HOLD;
	}
	return 0;
}
