/* SPDX-License-Identifier: MIT */
/*
 * Pruning one backend; see prune.h.  The order of the steps is what makes
 * it safe:
 *
 *  1. finish what a killed prune left as "removing" (gone from the listing:
 *     removed; still there: planned again like everything else);
 *  2. plan on what the backend lists now, the policy first, then the
 *     keepers;
 *  3. check every object the plan would remove for a lock or hold (from
 *     the listing where the plugin knows, else a stat per object) and keep
 *     the locked ones;
 *  4. per batch: record "removing", delete, record the outcome.
 *
 * Planning is idempotent (policy.c), so a run interrupted after any batch
 * and run again ends where one run would have.
 */
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "log.h"
#include "metrics.h"
#include "prune.h"
#include "remote.h"

#define STAT_THREADS 8

struct pruner {
	struct drgw_gateway *gw;
	struct drgw_reader *rd;
	size_t b;
	const char *bname;
	const struct drgw_prune_opts *o;
	int64_t now;
	struct drgw_remote_set set;
	struct drgw_prune_item *items;
	size_t n;
	/* Sorted keys the backend lists (objects and unreadable ones). */
	const char **keys;
	size_t n_keys;
};

static void warn(const struct pruner *p, const char *fmt, ...)
	DRGW_PRINTF(2, 3);
static void warn(const struct pruner *p, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->o->warn)
		p->o->warn(p->o->arg, p->bname, msg);
	else
		log_warning("backend %s: %s", p->bname, msg);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool listed(const struct pruner *p, const char *key)
{
	return bsearch(&key, p->keys, p->n_keys, sizeof(*p->keys), cmp_str) !=
	       NULL;
}

static bool pattern_wanted(const struct drgw_prune_opts *o, const char *pat)
{
	if (!o->n_patterns)
		return true;
	for (size_t i = 0; i < o->n_patterns; i++)
		if (fnmatch(o->patterns[i], pat, 0) == 0)
			return true;
	return false;
}

static int by_group(const void *a, const void *b)
{
	const struct drgw_prune_item *x = a, *y = b;
	int c = strcmp(x->pattern, y->pattern);

	if (c)
		return c;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return strcmp(x->vid, y->vid);
}

/* The versions on backend p->b, in group order, and the sorted keys. */
static int collect(struct pruner *p, struct drgw_prune_summary *sum)
{
	const struct drgw_remote_set *set = &p->set;

	p->items = calloc(set->n + 1, sizeof(*p->items));
	p->keys = calloc(set->n + set->n_bad + 1, sizeof(*p->keys));
	if (!p->items || !p->keys)
		return -ENOMEM;
	for (size_t i = 0; i < set->n_bad; i++)
		if (set->bad[i].backend == p->b) {
			p->keys[p->n_keys++] = set->bad[i].key;
			sum->unreadable++;
		}
	for (size_t i = 0; i < set->n; i++) {
		const struct drgw_snapshot *s = &set->snaps[i];

		for (size_t l = 0; l < s->n_locs; l++) {
			const struct drgw_location *loc = &s->locs[l];
			struct drgw_prune_item *it;
			char *pat;

			if (loc->backend != p->b)
				continue;
			p->keys[p->n_keys++] = loc->key;
			if (s->meta.created_ns > sum->newest_ns)
				sum->newest_ns = s->meta.created_ns;
			pat = drgw_name_pattern(s->meta.name);
			if (!pat)
				return -ENOMEM;
			if (!pattern_wanted(p->o, pat)) {
				free(pat);
				continue;
			}
			it = &p->items[p->n++];
			it->name = s->meta.name;
			it->pattern = pat;
			it->vid = s->meta.vid;
			it->key = loc->key;
			it->time_ns = s->meta.created_ns;
			it->bytes = loc->object_size;
			it->lock_flags = loc->lock_flags;
			it->retain_until_ns = loc->retain_until_ns;
			it->check = s->meta.check;
			it->incomplete = s->meta.incomplete;
		}
	}
	qsort(p->keys, p->n_keys, sizeof(*p->keys), cmp_str);
	qsort(p->items, p->n, sizeof(*p->items), by_group);
	return 0;
}

/* Step 1.  Not on a dry run: that changes nothing. */
struct pending {
	struct pruner *p;
	char **keys;
	size_t n, cap;
};

static int add_pending(void *arg, const char *key)
{
	struct pending *x = arg;

	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 16;
		char **k = realloc(x->keys, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		x->keys = k;
		x->cap = cap;
	}
	x->keys[x->n] = strdup(key);
	return x->keys[x->n++] ? 0 : -ENOMEM;
}

static int finish_pending(struct pruner *p)
{
	struct pending x = { .p = p };
	int *results = NULL;
	int r;

	r = drgw_catalog_each_prune_pending(p->gw->cat, p->bname, add_pending,
					    &x);
	if (r == 0 && x.n) {
		results = calloc(x.n, sizeof(*results));
		if (!results)
			r = -ENOMEM;
	}
	if (r == 0 && x.n) {
		for (size_t i = 0; i < x.n; i++)
			results[i] = listed(p, x.keys[i]) ? -EEXIST : 0;
		log_info("backend %s: finishing the removal of %zu objects an interrupted prune left",
			 p->bname, x.n);
		r = drgw_catalog_prune_done(p->gw->cat, p->bname,
					    (const char *const *)x.keys, results,
					    x.n);
	}
	for (size_t i = 0; i < x.n; i++)
		free(x.keys[i]);
	free(x.keys);
	free(results);
	return r;
}

/* Step 2.  items[] is in group order. */
static int plan_groups(const struct drgw_policy *pol,
		       struct drgw_prune_item *items, size_t n, int64_t now)
{
	struct drgw_plan_item *pi = calloc(n + 1, sizeof(*pi));
	int r = 0;

	if (!pi)
		return -ENOMEM;
	for (size_t i = 0; i < n && r == 0;) {
		size_t j = i;

		while (j < n && !strcmp(items[j].pattern, items[i].pattern))
			j++;
		for (size_t k = i; k < j; k++)
			pi[k - i] = (struct drgw_plan_item){
				.time_ns = items[k].time_ns,
				.id = items[k].vid,
			};
		r = drgw_policy_plan(pol, pi, j - i, now);
		for (size_t k = i; r == 0 && k < j; k++)
			items[k].reasons = pi[k - i].reasons;
		i = j;
	}
	free(pi);
	return r;
}

static int by_vid_ptr(const void *a, const void *b)
{
	return strcmp((*(const struct drgw_prune_item *const *)a)->vid,
		      (*(const struct drgw_prune_item *const *)b)->vid);
}

/* items[0..n) by vid, for find_vid(); NULL without memory. */
static struct drgw_prune_item **sort_by_vid(struct drgw_prune_item *items,
					    size_t n)
{
	struct drgw_prune_item **sorted = calloc(n + 1, sizeof(*sorted));

	for (size_t i = 0; sorted && i < n; i++)
		sorted[i] = &items[i];
	if (sorted)
		qsort(sorted, n, sizeof(*sorted), by_vid_ptr);
	return sorted;
}

static struct drgw_prune_item *find_vid(struct drgw_prune_item **sorted,
					size_t n, const char *vid)
{
	struct drgw_prune_item key = { .vid = vid }, *kp = &key, **hit;

	hit = bsearch(&kp, sorted, n, sizeof(*sorted), by_vid_ptr);
	return hit ? *hit : NULL;
}

/* Marks what it references as kept (reason base). */
static int keep_refs(struct pruner *p, struct drgw_prune_item *it,
		     struct drgw_prune_item **sorted)
{
	const struct drgw_obj_ref *refs;
	struct drgw_rfile *rf;
	struct drgw_err e = { 0 };
	size_t n_refs;
	int r;

	it->refs_kept = true;
	r = drgw_rfile_open(p->rd, p->gw->backends[p->b], it->key, it->bytes,
			    &rf, &e);
	if (r < 0) {
		warn(p, "cannot read %s, which is kept, to keep what it references: %s",
		     it->key, e.msg);
		return r;
	}
	refs = drgw_rfile_refs(rf, &n_refs);
	for (size_t k = 0; k < n_refs; k++) {
		struct drgw_prune_item *base = find_vid(sorted, p->n, refs[k].vid);

		if (base)
			base->reasons |= DRGW_REASON_BASE;
		else
			warn(p, "%s references %s, which the backend does not list",
			     it->key, refs[k].vid);
	}
	drgw_rfile_close(rf);
	return 0;
}

/*
 * Keeps every object a kept version takes blocks from (reason base): an
 * incremental object is only as restorable as its references.  A kept
 * base is a version too, restorable only with its own references, so
 * this goes on until nothing new is kept; called again after the lock
 * checks, for what a lock keeps.  A kept version whose footer cannot be
 * read now fails the prune: removing anything it may need would be a
 * guess.
 */
static int keep_bases(struct pruner *p)
{
	struct drgw_prune_item **sorted = sort_by_vid(p->items, p->n);
	bool more = true;
	int r = 0;

	if (!sorted)
		return -ENOMEM;
	while (more && r == 0) {
		more = false;
		for (size_t i = 0; r == 0 && i < p->n; i++)
			if (p->items[i].reasons && !p->items[i].refs_kept) {
				r = keep_refs(p, &p->items[i], sorted);
				more = true;
			}
	}
	free(sorted);
	return r;
}

static int plan(struct pruner *p)
{
	int r = plan_groups(p->o->policy, p->items, p->n, p->now);

	for (size_t k = 0; r == 0 && k < p->o->n_keepers; k++)
		r = p->o->keepers[k].mark(p->o->keepers[k].arg, p->bname,
					  p->items, p->n);
	if (r == 0)
		r = keep_bases(p);
	return r;
}

/* Marked incomplete, by the catalog (the writer's) or the object. */
static bool incomplete(struct drgw_catalog *cat,
		       const struct drgw_prune_item *it)
{
	return it->incomplete || drgw_catalog_version_problem(cat, it->vid) == 1;
}

/* Known good: its SQLite check passed and it is complete, as the catalog
 * or, for a prune from the bucket alone, the object itself says. */
static bool good(struct drgw_catalog *cat, const struct drgw_prune_item *it)
{
	return drgw_catalog_version_good(cat, it->vid) ||
	       (it->check == DRGW_CHECK_OK && !incomplete(cat, it));
}

int drgw_prune_keep_good(void *arg, const char *backend,
			 struct drgw_prune_item *items, size_t n)
{
	struct drgw_catalog *cat = arg;

	/* items[] is in group order, oldest first: walk each group back. */
	for (size_t i = 0; i < n;) {
		size_t j = i, k, keep = SIZE_MAX;

		while (j < n && !strcmp(items[j].pattern, items[i].pattern))
			j++;
		for (k = j; k-- > i;) {
			if (good(cat, &items[k])) {
				keep = k;
				break;
			}
		}
		/* No SQLite verdict to go by: when the newest is incomplete,
		 * the newest complete one is the one that may restore. */
		if (keep == SIZE_MAX && incomplete(cat, &items[j - 1])) {
			for (k = j - 1; k-- > i;) {
				if (!incomplete(cat, &items[k])) {
					keep = k;
					break;
				}
			}
		}
		if (keep != SIZE_MAX)
			items[keep].reasons |= DRGW_REASON_GOOD;
		i = j;
	}
	return 0;
}

int drgw_prune_plan_items(const struct drgw_policy *p,
			  struct drgw_prune_item *items, size_t n,
			  int64_t now_ns)
{
	for (size_t i = 0; i < n; i++) {
		items[i].pattern = drgw_name_pattern(items[i].name);
		if (!items[i].pattern)
			return -ENOMEM;
	}
	qsort(items, n, sizeof(*items), by_group);
	return plan_groups(p, items, n, now_ns);
}

void drgw_prune_items_free(struct drgw_prune_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++) {
		free((char *)items[i].pattern);
		free((char *)items[i].name);
		free((char *)items[i].vid);
	}
	free(items);
}

struct preview_ctx {
	struct drgw_prune_item *items;
	size_t n, cap;
};

static int add_replicated(void *arg, const char *vid, const char *name,
			  int64_t created_ns, uint64_t bytes)
{
	struct preview_ctx *x = arg;
	struct drgw_prune_item *it;

	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 64;
		struct drgw_prune_item *p = realloc(x->items, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		x->items = p;
		x->cap = cap;
	}
	it = &x->items[x->n];
	memset(it, 0, sizeof(*it));
	it->vid = strdup(vid);
	it->name = strdup(name);
	x->n++;
	if (!it->vid || !it->name)
		return -ENOMEM;
	it->key = NULL;
	it->time_ns = created_ns;
	it->bytes = bytes;
	return 0;
}

static int by_vid(const void *a, const void *b)
{
	return strcmp(((const struct drgw_prune_item *)a)->vid,
		      ((const struct drgw_prune_item *)b)->vid);
}

/* The preview's keep_bases(): what kept versions reference, as the
 * catalog recorded it when they were encoded. */
static int preview_bases(struct drgw_catalog *c, struct drgw_prune_item *items,
			 size_t n)
{
	struct drgw_prune_item **sorted = sort_by_vid(items, n);

	if (!sorted)
		return -ENOMEM;
	for (bool more = true; more;) {
		more = false;
		for (size_t i = 0; i < n; i++) {
			struct drgw_version v;
			char *refs, *save = NULL;

			if (!items[i].reasons || items[i].refs_kept)
				continue;
			items[i].refs_kept = true;
			if (drgw_catalog_get_version(c, items[i].vid, &v) < 0)
				continue;
			refs = v.delta_refs;
			for (char *r = refs ? strtok_r(refs, ",", &save) : NULL; r;
			     r = strtok_r(NULL, ",", &save)) {
				struct drgw_prune_item *base = find_vid(sorted, n, r);

				if (base && !base->reasons) {
					base->reasons |= DRGW_REASON_BASE;
					more = true;
				}
			}
			drgw_version_release(&v);
		}
	}
	free(sorted);
	return 0;
}

int drgw_prune_preview(struct drgw_catalog *c, const char *backend,
		       const struct drgw_policy *p,
		       struct drgw_prune_preview *ret)
{
	struct preview_ctx x = { 0 };
	struct drgw_prune_preview pv = { 0 };
	int r;

	r = drgw_catalog_each_replicated(c, backend, add_replicated, &x);
	if (r == 0)
		r = drgw_prune_plan_items(p, x.items, x.n, drgw_now_ns());
	/* The same keepers as drgw_cli_prune(), so the preview tells true. */
	if (r == 0)
		r = drgw_prune_keep_good(c, backend, x.items, x.n);
	if (r == 0)
		r = preview_bases(c, x.items, x.n);
	if (r < 0) {
		drgw_prune_items_free(x.items, x.n);
		return r;
	}
	for (size_t i = 0; i < x.n; i++) {
		if (x.items[i].reasons) {
			pv.keep++;
			pv.keep_bytes += x.items[i].bytes;
		} else {
			pv.remove++;
			pv.remove_bytes += x.items[i].bytes;
		}
	}
	qsort(x.items, x.n, sizeof(*x.items), by_vid);
	pv.items = x.items;
	pv.n = x.n;
	*ret = pv;
	return 0;
}

void drgw_prune_preview_release(struct drgw_prune_preview *pv)
{
	drgw_prune_items_free(pv->items, pv->n);
	memset(pv, 0, sizeof(*pv));
}

const struct drgw_prune_item *
drgw_prune_preview_find(const struct drgw_prune_preview *pv, const char *vid)
{
	struct drgw_prune_item key = { .vid = vid };

	return pv->n ? bsearch(&key, pv->items, pv->n, sizeof(*pv->items),
			       by_vid) :
		       NULL;
}

/* Step 3: the lock state of the objects the plan would remove. */
struct lockcheck {
	struct pruner *p;
	pthread_mutex_t lock;
	size_t next;
	int r;
	struct drgw_err err;
};

/* Keeps it if what is known of its lock protects it now. */
static void apply_lock(struct pruner *p, struct drgw_prune_item *it)
{
	if (!(it->lock_flags & DRGW_LOCK_KNOWN))
		return;
	if (it->lock_flags & DRGW_LOCK_HOLD)
		it->retain_until_ns = INT64_MAX;
	else if (it->retain_until_ns <= p->now)
		return;
	it->reasons |= DRGW_REASON_LOCKED;
}

static void *lock_thread(void *arg)
{
	struct lockcheck *c = arg;
	struct pruner *p = c->p;

	for (;;) {
		struct drgw_object_info info;
		struct drgw_err e = { 0 };
		struct drgw_prune_item *it;
		size_t i;
		int r;

		pthread_mutex_lock(&c->lock);
		while (c->next < p->n && p->items[c->next].reasons)
			c->next++;
		i = c->r < 0 ? p->n : c->next++;
		pthread_mutex_unlock(&c->lock);
		if (i >= p->n)
			break;
		it = &p->items[i];
		r = drgw_backend_stat(p->gw->backends[p->b], it->key, &info, &e);
		if (r == -ENOENT)
			continue; /* gone already: removing it is a no-op */
		if (r < 0) {
			/* Not knowing is not "unlocked": this item stays,
			 * and the prune stops before removing anything. */
			pthread_mutex_lock(&c->lock);
			if (c->r == 0) {
				c->r = r;
				c->err = e;
			}
			pthread_mutex_unlock(&c->lock);
			it->error = r;
			break;
		}
		it->lock_flags = info.lock_flags;
		it->retain_until_ns = info.retain_until_ns;
		apply_lock(p, it);
	}
	return NULL;
}

static int check_locks(struct pruner *p, bool stat, struct drgw_err *err)
{
	struct lockcheck c = { .p = p };
	pthread_t tids[STAT_THREADS];
	unsigned nt = 0;

	/* What the listing said, where it said anything. */
	for (size_t i = 0; i < p->n; i++)
		if (!p->items[i].reasons)
			apply_lock(p, &p->items[i]);
	if (!stat)
		return 0;
	pthread_mutex_init(&c.lock, NULL);
	for (; nt < STAT_THREADS; nt++)
		if (pthread_create(&tids[nt], NULL, lock_thread, &c))
			break;
	if (nt == 0)
		lock_thread(&c);
	for (unsigned i = 0; i < nt; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&c.lock);
	if (c.r < 0)
		drgw_err_set(err, "cannot tell whether an object is locked, so nothing was removed: %s",
			     c.err.msg);
	return c.r;
}

/* Should objects be stat()ed for locks?  Also says what the retention
 * settings mean for the policy. */
static bool locks_to_check(struct pruner *p)
{
	struct drgw_backend *be = p->gw->backends[p->b];
	struct drgw_retention ret;
	struct drgw_err e = { 0 };
	int64_t longest;
	char a[32], b[32];
	int r;

	r = drgw_backend_retention(be, &ret, &e);
	if (r == -ENOTSUP)
		return false; /* the plugin cannot lock anything */
	if (r < 0) {
		warn(p, "%s; checking every object for a lock before removing it",
		     e.msg);
		return true;
	}
	longest = drgw_policy_longest_window_ns(p->o->policy);
	if (ret.period_ns > 0 && longest > ret.period_ns) {
		drgw_format_duration(ret.period_ns, a, sizeof(a));
		if (longest == INT64_MAX)
			snprintf(b, sizeof(b), "without a limit");
		else
			drgw_format_duration(longest, b, sizeof(b));
		warn(p, "objects are locked for %s (%s) but the policy keeps snapshots %s%s: kept snapshots older than %s are no longer protected by the lock; lengthen the retention or shorten the policy",
		     a, ret.source[0] ? ret.source : "retention",
		     longest == INT64_MAX ? "" : "up to ", b, a);
	}
	return (ret.flags & DRGW_RETENTION_LOCKS) &&
	       !(ret.flags & DRGW_RETENTION_LIST_KNOWS);
}

/* Step 4. */
static int remove_batch(struct pruner *p, size_t *idx, size_t n,
			struct drgw_err *err)
{
	struct drgw_prune_entry *e = calloc(n, sizeof(*e));
	const char **keys = calloc(n, sizeof(*keys));
	int *results = calloc(n, sizeof(*results));
	struct drgw_err be = { 0 };
	int r = -ENOMEM, rb;

	if (!e || !keys || !results)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct drgw_prune_item *it = &p->items[idx[i]];

		e[i] = (struct drgw_prune_entry){ .key = it->key, .vid = it->vid,
						  .name = it->name,
						  .created_ns = it->time_ns,
						  .bytes = it->bytes };
		keys[i] = it->key;
	}
	/* Recorded before it happens: a crash after the delete is finished
	 * by the next prune, not forgotten. */
	r = drgw_catalog_prune_intend(p->gw->cat, p->bname, e, n);
	if (r < 0) {
		drgw_err_set(err, "cannot record the removal in the catalog: %s",
			     strerror(-r));
		goto out;
	}
	rb = drgw_backend_remove_many(p->gw->backends[p->b], keys, n, results,
				      &be);
	r = drgw_catalog_prune_done(p->gw->cat, p->bname, keys, results, n);
	for (size_t i = 0; i < n; i++) {
		struct drgw_prune_item *it = &p->items[idx[i]];

		it->removed = results[i] == 0;
		it->error = results[i];
	}
	if (rb < 0) {
		drgw_err_set(err, "%s", be.msg);
		r = rb;
	} else if (r < 0) {
		drgw_err_set(err, "removed %zu objects but cannot record it in the catalog: %s (the next prune records it)",
			     n, strerror(-r));
	}
out:
	free(e);
	free(keys);
	free(results);
	return r;
}

static bool first_of_group(const struct pruner *p, size_t i)
{
	return i == 0 || strcmp(p->items[i - 1].pattern, p->items[i].pattern);
}

/* Whether item i, the oldest of its group, may go: only once every other
 * removal of its group succeeded. */
static bool oldest_may_go(const struct pruner *p, size_t i)
{
	for (size_t j = i + 1; j < p->n && !first_of_group(p, j); j++)
		if (!p->items[j].reasons && !p->items[j].removed)
			return false;
	return true;
}

/*
 * Removes what the plan did not keep, each group's oldest snapshot last:
 * the policy's "oldest" rules look at the oldest snapshot left, so a
 * prune killed halfway must leave it for the next one to plan the same
 * (test_policy.c, idempotent_after_a_partial_removal).  Newest first
 * otherwise, as restic's forget does.
 */
static int remove_planned(struct pruner *p, struct drgw_err *err)
{
	size_t *idx = calloc(DRGW_REMOVE_BATCH, sizeof(*idx));
	size_t n = 0;
	int r = 0;

	if (!idx)
		return -ENOMEM;
	for (int pass = 0; pass < 2 && r == 0; pass++) {
		for (size_t i = p->n; i-- > 0 && r == 0;) {
			const struct drgw_prune_item *it = &p->items[i];

			if (!it->reasons && !it->error &&
			    first_of_group(p, i) == (pass == 1) &&
			    (pass == 0 || oldest_may_go(p, i)))
				idx[n++] = i;
			if (n == DRGW_REMOVE_BATCH) {
				r = remove_batch(p, idx, n, err);
				n = 0;
			}
		}
		if (n && r == 0)
			r = remove_batch(p, idx, n, err);
		n = 0;
	}
	free(idx);
	return r;
}

static void summarize(struct pruner *p, struct drgw_prune_summary *sum)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct drgw_prune_item *it = &p->items[i];

		if (it->reasons & DRGW_REASON_LOCKED)
			sum->locked++;
		if (it->reasons || (!p->o->dry_run && !it->removed)) {
			sum->kept++;
			sum->kept_bytes += it->bytes;
		} else {
			sum->removed++;
			sum->removed_bytes += it->bytes;
		}
		if (!it->reasons && it->error && !p->o->dry_run)
			sum->failed++;
		if (p->o->report)
			p->o->report(p->o->arg, p->bname, it);
	}
}

static void locked_warning(struct pruner *p, const struct drgw_prune_summary *s)
{
	int64_t until = 0;
	char t[40];

	if (!s->locked)
		return;
	for (size_t i = 0; i < p->n; i++)
		if ((p->items[i].reasons & DRGW_REASON_LOCKED) &&
		    p->items[i].retain_until_ns > until)
			until = p->items[i].retain_until_ns;
	if (until == INT64_MAX)
		snprintf(t, sizeof(t), "a hold is released");
	else
		drgw_format_time(until, t, sizeof(t));
	warn(p, "%llu snapshots the policy would remove are locked (the last until %s); a later prune removes them once their lock ends",
	     (unsigned long long)s->locked, t);
}

int drgw_prune_backend(struct drgw_gateway *gw, struct drgw_reader *rd,
		       size_t b, const struct drgw_prune_opts *o,
		       struct drgw_prune_summary *ret, struct drgw_err *err)
{
	struct pruner p = { .gw = gw, .rd = rd, .b = b,
			    .bname = gw->backend_names[b], .o = o,
			    .now = drgw_now_ns() };
	struct drgw_prune_summary sum = { 0 };
	struct drgw_prune_run run = { .started_ns = p.now };
	struct drgw_err e = { 0 };
	bool stat;
	int r;

	if (drgw_policy_empty(o->policy)) {
		drgw_err_set(err, "no retention policy");
		return -EINVAL;
	}
	stat = locks_to_check(&p);
	r = drgw_remote_scan_only(gw, rd, (ssize_t)b, &p.set, &e);
	if (r == 0 && p.set.n_unreachable) {
		drgw_err_set(&e, "%s", p.set.unreachable[0].why);
		r = -EHOSTUNREACH;
	}
	if (r == 0)
		r = collect(&p, &sum);
	if (r == 0 && !o->dry_run)
		r = finish_pending(&p);
	if (r == 0)
		r = plan(&p);
	if (r == 0)
		r = check_locks(&p, stat, &e);
	if (r == 0)
		r = keep_bases(&p);
	if (r == 0 && sum.unreadable)
		warn(&p, "%llu objects could not be read and were left alone (drgw ls --remote names them)",
		     (unsigned long long)sum.unreadable);
	if (r == 0 && !o->dry_run)
		r = remove_planned(&p, &e);
	if (r == 0 && !o->dry_run) {
		/* Superseded index records, which a writer that may not
		 * delete leaves behind. */
		int n = drgw_index_prune(gw, b, &e);

		if (n < 0)
			warn(&p, "cannot remove superseded index records: %s", e.msg);
		memset(&e, 0, sizeof(e));
	}
	/* What was not tried (after a failure; a group's oldest after one
	 * of its other removals failed) says so. */
	for (size_t i = 0; !o->dry_run && i < p.n; i++)
		if (!p.items[i].reasons && !p.items[i].removed &&
		    !p.items[i].error)
			p.items[i].error = -ECANCELED;
	if (p.items)
		summarize(&p, &sum);
	if (r == 0 || p.items)
		locked_warning(&p, &sum);
	if (r < 0 && !e.msg[0])
		drgw_err_set(&e, "%s", strerror(-r));
	if (!o->dry_run) {
		drgw_strlcpy(run.backend, p.bname, sizeof(run.backend));
		run.finished_ns = drgw_now_ns();
		run.ok = r == 0;
		run.kept = sum.kept;
		run.removed = sum.removed;
		run.locked = sum.locked;
		run.kept_bytes = sum.kept_bytes;
		run.removed_bytes = sum.removed_bytes;
		run.newest_ns = sum.newest_ns;
		run.window_ns = drgw_policy_shortest_window_ns(o->policy);
		if (r < 0)
			drgw_strlcpy(run.error, e.msg, sizeof(run.error));
		drgw_catalog_add_prune_run(gw->cat, &run);
	}
	for (size_t i = 0; i < p.n; i++)
		free((char *)p.items[i].pattern);
	free(p.items);
	free(p.keys);
	drgw_remote_set_release(&p.set);
	if (r < 0) {
		drgw_err_set(err, "%s", e.msg);
		return r;
	}
	*ret = sum;
	return 0;
}
