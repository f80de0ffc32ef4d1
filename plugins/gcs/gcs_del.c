/* SPDX-License-Identifier: MIT */
/*
 * What `drgw prune` needs of GCS: many deletes at once (the JSON API has
 * no multi-object delete outside batch requests, so DELETEs run in
 * parallel, each retried like every call), the bucket's retention policy,
 * and a clear word on a 403: GCS answers 403 both for a missing
 * storage.objects.delete and for an object under a hold or retention, and
 * the two need different actions.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcs_del.h"
#include "gcs_json.h"
#include "gcs_req.h"

#define DELETE_THREADS 8

/* One DELETE; a missing object counts as deleted. */
static int delete_one(struct gcs *g, const char *key, struct drgw_err *err)
{
	struct gcs_op op;
	int r;

	gcs_op_init(&op, "DELETE", "DELETE");
	r = gcs_op_object_url(&op, g, key, NULL);
	if (r == 0)
		r = gcs_op_run(g, &op, err);
	if (r == -ENOENT) {
		if (err)
			memset(err, 0, sizeof(*err));
		r = 0;
	}
	if (r == -EACCES && op.resp.status == 403 && err) {
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		/* GCS says "under active ... hold" or "subject to ...
		 * retention" for a protected object. */
		if (strstr(op.message, " hold") || strstr(op.message, "retention")) {
			r = -EPERM;
			pmsg_set_err(err, "%s: the object is protected by a hold or retention",
				     msg);
		} else {
			pmsg_set_err(err,
				     "%s: the credentials lack storage.objects.delete on %s, which drgw prune needs (plugins/gcs/README.md has the pruner's role)",
				     msg, g->url);
		}
	}
	gcs_op_release(&op);
	return r;
}

struct many {
	struct gcs *g;
	const char *const *keys;
	size_t n;
	int *results;
	pthread_mutex_t lock;
	size_t next;		/* under lock */
	int first;		/* under lock */
	struct drgw_err *err;	/* under lock */
};

static void *delete_thread(void *arg)
{
	struct many *m = arg;

	for (;;) {
		struct drgw_err e = { 0 };
		size_t i;
		int r;

		pthread_mutex_lock(&m->lock);
		i = m->next++;
		pthread_mutex_unlock(&m->lock);
		if (i >= m->n)
			break;
		r = delete_one(m->g, m->keys[i], &e);
		m->results[i] = r;
		if (r < 0) {
			pthread_mutex_lock(&m->lock);
			if (!m->first) {
				m->first = r;
				if (m->err)
					*m->err = e;
			}
			pthread_mutex_unlock(&m->lock);
		}
	}
	return NULL;
}

int gcs_remove_many(struct gcs *g, const char *const *keys, size_t n,
		    int *results, struct drgw_err *err)
{
	struct many m = { .g = g, .keys = keys, .n = n, .results = results,
			  .err = err };
	pthread_t tids[DELETE_THREADS];
	unsigned nt = 0;

	if (g->read_only) {
		pmsg_set_err(err, "gcs: %s is read-only", g->url);
		return -EROFS;
	}
	pthread_mutex_init(&m.lock, NULL);
	for (; nt < DELETE_THREADS && nt < n; nt++)
		if (pthread_create(&tids[nt], NULL, delete_thread, &m))
			break;
	if (nt == 0)
		delete_thread(&m);
	for (unsigned i = 0; i < nt; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&m.lock);
	return m.first;
}

int gcs_retention(struct gcs *g, struct drgw_retention *ret)
{
	struct drgw_err err = { 0 };
	uint64_t period = 0;
	int64_t own = (int64_t)g->retain_days * 86400 * 1000000000LL;
	struct gcs_op op;
	int locked = 0, r;

	gcs_op_init(&op, "GET bucket", "GET");
	r = gcs_op_bucket_url(&op, g, "fields=retentionPolicy");
	if (r == 0)
		r = gcs_op_run(g, &op, &err);
	if (r == 0 && gcs_json_bucket_retention(op.resp.body.buf, op.resp.body.len,
						&period, &locked) < 0) {
		pmsg_set_err(&err, "gcs: GET %s: the answer is not a bucket resource",
			     g->bucket);
		r = -EIO;
	}
	gcs_op_release(&op);
	/* Holds can be put on any object at any time, and the listing
	 * shows them: the gateway needs no stat per object. */
	ret->flags = DRGW_RETENTION_LOCKS | DRGW_RETENTION_LIST_KNOWS;
	if (r < 0) {
		if (r == -EACCES)
			snprintf(ret->source, sizeof(ret->source),
				 "%s: the credentials lack storage.buckets.get on %s",
				 err.msg, g->bucket);
		else
			snprintf(ret->source, sizeof(ret->source), "%s", err.msg);
		return r;
	}
	if (g->temporary_hold || g->event_based_hold) {
		/* Held until someone releases them: longer than any policy. */
		ret->period_ns = INT64_MAX;
		snprintf(ret->source, sizeof(ret->source), "%s on every upload",
			 g->temporary_hold ? "temporary-hold" : "event-based-hold");
	} else if (period && (int64_t)period * 1000000000LL >= own) {
		ret->period_ns = (int64_t)period * 1000000000LL;
		snprintf(ret->source, sizeof(ret->source),
			 "%s bucket retention policy of %llu days",
			 locked ? "locked" : "unlocked",
			 (unsigned long long)(period / 86400));
	} else if (own) {
		ret->period_ns = own;
		snprintf(ret->source, sizeof(ret->source),
			 "retention-mode=%s retain-days=%u", g->retention_mode,
			 g->retain_days);
	}
	return 0;
}

void gcs_lock_info(const struct gcs_object *o, struct drgw_object_info *info)
{
	info->lock_flags = DRGW_LOCK_KNOWN | (o->held ? DRGW_LOCK_HOLD : 0);
	info->retain_until_ns = o->retain_until_ns;
}
