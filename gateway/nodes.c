/* SPDX-License-Identifier: MIT */
/*
 * Node table; see nodes.h.  A chained hash table keyed by path that grows
 * by doubling.  Unlinked nodes leave the table at once but live on while
 * open handles reference them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodes.h"
#include "util.h"

struct drgw_nodes {
	pthread_mutex_t lock;
	struct drgw_node **buckets;
	size_t n_buckets;
	size_t count;
};

static uint64_t hash_path(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct drgw_nodes *drgw_nodes_new(void)
{
	struct drgw_nodes *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->n_buckets = 256;
	t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

static void node_free(struct drgw_node *n)
{
	free(n->path);
	free(n);
}

struct drgw_nodes *drgw_nodes_free(struct drgw_nodes *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n_buckets; i++) {
		struct drgw_node *n = t->buckets[i], *next;

		for (; n; n = next) {
			next = n->hash_next;
			node_free(n);
		}
	}
	free(t->buckets);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return NULL;
}

void drgw_nodes_lock(struct drgw_nodes *t)
{
	pthread_mutex_lock(&t->lock);
}

void drgw_nodes_unlock(struct drgw_nodes *t)
{
	pthread_mutex_unlock(&t->lock);
}

static struct drgw_node **slot_of(struct drgw_nodes *t, const char *path)
{
	struct drgw_node **pp = &t->buckets[hash_path(path) & (t->n_buckets - 1)];

	while (*pp && strcmp((*pp)->path, path))
		pp = &(*pp)->hash_next;
	return pp;
}

static void insert(struct drgw_nodes *t, struct drgw_node *n)
{
	size_t b = hash_path(n->path) & (t->n_buckets - 1);

	n->hash_next = t->buckets[b];
	t->buckets[b] = n;
	t->count++;
}

static void maybe_grow(struct drgw_nodes *t)
{
	struct drgw_node **old = t->buckets;
	size_t old_n = t->n_buckets;

	if (t->count < t->n_buckets)
		return;
	t->buckets = calloc(old_n * 2, sizeof(*t->buckets));
	if (!t->buckets) {
		t->buckets = old; /* stay slower rather than fail */
		return;
	}
	t->n_buckets = old_n * 2;
	t->count = 0;
	for (size_t i = 0; i < old_n; i++) {
		struct drgw_node *n = old[i], *next;

		for (; n; n = next) {
			next = n->hash_next;
			insert(t, n);
		}
	}
	free(old);
}

struct drgw_node *drgw_nodes_find_locked(struct drgw_nodes *t, const char *path)
{
	return *slot_of(t, path);
}

struct drgw_node *drgw_nodes_get_locked(struct drgw_nodes *t, const char *path)
{
	struct drgw_node *n = *slot_of(t, path);

	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n)
			return NULL;
		n->path = strdup(path);
		if (!n->path) {
			free(n);
			return NULL;
		}
		atomic_init(&n->gen, 0);
		atomic_init(&n->dirty, false);
		atomic_init(&n->last_write_ns, 0);
		maybe_grow(t);
		insert(t, n);
	}
	n->refs++;
	return n;
}

static void detach(struct drgw_nodes *t, struct drgw_node *n);

void drgw_nodes_put_locked(struct drgw_nodes *t, struct drgw_node *n)
{
	if (!n || --n->refs)
		return;
	if (n->unlinked) {
		node_free(n);
		return;
	}
	/* Nothing pending and nobody holding it: forget it, so the table does
	 * not grow with every path ever opened.  A new node starts a new
	 * change counter, which is fine: counters are only compared while a
	 * reference is held. */
	if (!n->writers && !n->seal_at && !atomic_load(&n->dirty)) {
		detach(t, n);
		node_free(n);
	}
}

void drgw_node_touch(struct drgw_node *n)
{
	atomic_fetch_add_explicit(&n->gen, 1, memory_order_seq_cst);
	atomic_store_explicit(&n->dirty, true, memory_order_relaxed);
	atomic_store_explicit(&n->last_write_ns, drgw_mono_ns(),
			      memory_order_relaxed);
}

static void detach(struct drgw_nodes *t, struct drgw_node *n)
{
	struct drgw_node **pp = slot_of(t, n->path);

	if (*pp != n)
		return;
	*pp = n->hash_next;
	n->hash_next = NULL;
	t->count--;
}

void drgw_nodes_unlink_locked(struct drgw_nodes *t, const char *path)
{
	struct drgw_node *n = *slot_of(t, path);

	if (!n)
		return;
	detach(t, n);
	n->unlinked = true;
	n->seal_at = 0;
	/* Its data is going away; an encoder reading it must not commit. */
	atomic_fetch_add(&n->gen, 1);
	if (n->refs == 0)
		node_free(n);
}

static int move_one(struct drgw_nodes *t, struct drgw_node *n,
		    const char *newpath)
{
	char *p = strdup(newpath);

	if (!p)
		return -ENOMEM;
	detach(t, n);
	drgw_nodes_unlink_locked(t, newpath);
	free(n->path);
	n->path = p;
	insert(t, n);
	return 0;
}

int drgw_nodes_rename_locked(struct drgw_nodes *t, const char *from,
			     const char *to, bool is_dir)
{
	size_t fl = strlen(from);
	struct drgw_node **victims = NULL;
	size_t nv = 0;
	int r = 0;

	if (!is_dir) {
		struct drgw_node *n = *slot_of(t, from);

		if (!n) {
			/* Still replace whatever was at the target. */
			drgw_nodes_unlink_locked(t, to);
			return 0;
		}
		return move_one(t, n, to);
	}
	/* Collect first: moving while walking the buckets would revisit. */
	for (size_t i = 0; i < t->n_buckets; i++) {
		for (struct drgw_node *n = t->buckets[i]; n; n = n->hash_next) {
			if (strncmp(n->path, from, fl) || n->path[fl] != '/')
				continue;
			struct drgw_node **v = realloc(victims,
						       (nv + 1) * sizeof(*v));
			if (!v) {
				free(victims);
				return -ENOMEM;
			}
			victims = v;
			victims[nv++] = n;
		}
	}
	for (size_t i = 0; i < nv && r == 0; i++) {
		char *np;

		if (asprintf(&np, "%s%s", to, victims[i]->path + fl) < 0) {
			r = -ENOMEM;
			break;
		}
		r = move_one(t, victims[i], np);
		free(np);
	}
	free(victims);
	return r;
}

int drgw_nodes_each_locked(struct drgw_nodes *t,
			   int (*fn)(struct drgw_node *n, void *arg), void *arg)
{
	for (size_t i = 0; i < t->n_buckets; i++) {
		struct drgw_node *n = t->buckets[i], *next;

		for (; n; n = next) {
			int r;

			next = n->hash_next;
			r = fn(n, arg);
			if (r)
				return r;
		}
	}
	return 0;
}
