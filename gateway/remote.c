/* SPDX-License-Identifier: MIT */
/*
 * Remote scan; see remote.h.  Tails are read by a few threads at once:
 * for an object store, the scan of a bucket is latency-bound.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "remote.h"

#define SCAN_THREADS 8

struct found {
	size_t backend;
	char key[80];
	struct drgw_object_info info;
	/* Filled by the scan. */
	int r;
	struct drgw_obj_meta *meta;
	char err[400];
};

struct scan {
	struct drgw_gateway *gw;
	struct drgw_reader *rd;
	size_t backend;
	struct found *items;
	size_t n, cap;
	pthread_mutex_t lock;
	size_t next;
};

static bool key_is_object(const char *key)
{
	size_t n = strlen(key);
	char vid[80];

	if (n <= 5 || n - 5 >= sizeof(vid) || strcmp(key + n - 5, ".drgw"))
		return false;
	memcpy(vid, key, n - 5);
	vid[n - 5] = '\0';
	return drgw_vid_ok(vid);
}

static int on_key(void *arg, const char *key,
		  const struct drgw_object_info *info)
{
	struct scan *s = arg;

	if (!key_is_object(key)) {
		log_debug("ignoring %s on %s: not a drgw object name", key,
			  s->gw->backend_names[s->backend]);
		return 0;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct found *p = realloc(s->items, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->items = p;
		s->cap = cap;
	}
	memset(&s->items[s->n], 0, sizeof(s->items[s->n]));
	s->items[s->n].backend = s->backend;
	drgw_strlcpy(s->items[s->n].key, key, sizeof(s->items[s->n].key));
	s->items[s->n].info = *info;
	drgw_backend_clean_info(s->gw->backends[s->backend], &s->items[s->n].info);
	s->n++;
	return 0;
}

/* A cached description of the object, if the object did not change (same
 * size and etag) and its key is in the ring (so a wrong key still fails
 * loudly instead of mounting files that cannot be read). */
static int from_cache(struct drgw_gateway *gw, struct found *f)
{
	struct drgw_remote_object o;
	struct drgw_obj_meta *m;
	uint8_t id[DRGW_KEY_ID_BYTES];

	if (!f->info.etag[0] ||
	    drgw_catalog_get_remote(gw->cat, gw->backend_names[f->backend],
				    f->key, f->info.size, f->info.etag, &o) < 0)
		return -ENOENT;
	if (drgw_unhex(o.key_id, id, sizeof(id)) < 0 ||
	    (!drgw_keyring_find(&gw->keys, id) &&
	     !drgw_keyring_find_identity(&gw->keys, id))) {
		drgw_remote_object_release(&o);
		return -ENOENT;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		drgw_remote_object_release(&o);
		return -ENOMEM;
	}
	drgw_strlcpy(m->name, o.name, sizeof(m->name));
	drgw_strlcpy(m->vid, o.vid, sizeof(m->vid));
	m->size = o.size;
	m->mtime_ns = o.mtime_ns;
	m->created_ns = o.created_ns;
	m->mode = o.mode;
	drgw_unhex(o.sha256, m->sha256, sizeof(m->sha256));
	m->version = o.repo[0] ? 2 : 1;
	if (o.repo[0])
		drgw_unhex(o.repo, m->repo, sizeof(m->repo));
	drgw_remote_object_release(&o);
	f->meta = m;
	return 0;
}

static void to_cache(struct drgw_gateway *gw, const struct found *f,
		     const uint8_t *key_id)
{
	struct drgw_remote_object o = { 0 };

	drgw_strlcpy(o.backend, gw->backend_names[f->backend], sizeof(o.backend));
	o.key = (char *)f->key;
	o.object_size = f->info.size;
	drgw_strlcpy(o.etag, f->info.etag, sizeof(o.etag));
	drgw_strlcpy(o.vid, f->meta->vid, sizeof(o.vid));
	o.name = (char *)f->meta->name;
	o.size = f->meta->size;
	o.mtime_ns = f->meta->mtime_ns;
	o.created_ns = f->meta->created_ns;
	o.mode = f->meta->mode;
	drgw_hex(f->meta->sha256, 32, o.sha256);
	drgw_key_id_hex(key_id, o.key_id);
	if (f->meta->version == 2)
		drgw_hex(f->meta->repo, sizeof(f->meta->repo), o.repo);
	drgw_catalog_put_remote(gw->cat, &o);
}

/* "<vid>.drgw" must name the version the footer names, or an object was
 * copied under another version's name. */
static bool key_matches(const char *key, const char *vid)
{
	size_t n = strlen(vid);

	return !strncmp(key, vid, n) && !strcmp(key + n, ".drgw");
}

static void open_one(struct scan *s, struct found *f)
{
	struct drgw_err err = { 0 };
	struct drgw_rfile *rf = NULL;

	if (!s->gw->cat || from_cache(s->gw, f) < 0) {
		f->r = drgw_rfile_open(s->rd, s->gw->backends[f->backend],
				       f->key, f->info.size, &rf, &err);
		if (f->r < 0) {
			drgw_strlcpy(f->err, err.msg, sizeof(f->err));
			return;
		}
		f->meta = malloc(sizeof(*f->meta));
		if (!f->meta) {
			f->r = -ENOMEM;
			drgw_rfile_close(rf);
			return;
		}
		*f->meta = *drgw_rfile_meta(rf);
	}
	if (!key_matches(f->key, f->meta->vid)) {
		f->r = -EIO;
		snprintf(f->err, sizeof(f->err),
			 "%s on %s holds version %s under another name", f->key,
			 s->gw->backend_names[f->backend], f->meta->vid);
		free(f->meta);
		f->meta = NULL;
	} else if (rf && s->gw->cat) {
		to_cache(s->gw, f, drgw_rfile_key_id(rf));
	}
	drgw_rfile_close(rf);
}

static void *scan_thread(void *arg)
{
	struct scan *s = arg;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&s->lock);
		i = s->next++;
		pthread_mutex_unlock(&s->lock);
		if (i >= s->n)
			break;
		open_one(s, &s->items[i]);
	}
	return NULL;
}

static int cmp_snap(const void *a, const void *b)
{
	const struct drgw_snapshot *x = a, *y = b;
	int c = strcmp(x->meta.name, y->meta.name);

	if (c)
		return c;
	if (x->meta.created_ns != y->meta.created_ns)
		return x->meta.created_ns < y->meta.created_ns ? -1 : 1;
	return strcmp(x->meta.vid, y->meta.vid);
}

/* Records an object that cannot be used, with f->err or why. */
static int add_bad(struct drgw_remote_set *set, const struct found *f,
		   const char *bname, const char *why)
{
	struct drgw_bad_object *p = realloc(set->bad,
					    (set->n_bad + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	set->bad = p;
	p += set->n_bad++;
	p->backend = f->backend;
	drgw_strlcpy(p->key, f->key, sizeof(p->key));
	if (why)
		snprintf(p->why, sizeof(p->why), "%s on %s %s", f->key, bname,
			 why);
	else
		drgw_strlcpy(p->why, f->err, sizeof(p->why));
	return 0;
}

/* Two copies of one version must describe the same file. */
static bool same_snapshot(const struct drgw_obj_meta *a,
			  const struct drgw_obj_meta *b)
{
	return a->size == b->size && a->created_ns == b->created_ns &&
	       a->mtime_ns == b->mtime_ns && a->mode == b->mode &&
	       !memcmp(a->sha256, b->sha256, sizeof(a->sha256)) &&
	       !strcmp(a->name, b->name);
}

/* Adds a found object to the set, merging copies of one version. */
static int add_found(struct drgw_remote_set *set, const struct found *f,
		     const char *bname, size_t *cap)
{
	struct drgw_snapshot *sn = NULL;
	struct drgw_location *loc;

	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->snaps[i].meta.vid, f->meta->vid))
			sn = &set->snaps[i];
	if (sn && !same_snapshot(&sn->meta, f->meta))
		return add_bad(set, f, bname,
			       "claims the version of another object with other content");
	if (!sn) {
		if (set->n == *cap) {
			size_t c = *cap ? *cap * 2 : 64;
			struct drgw_snapshot *p = realloc(set->snaps,
							  c * sizeof(*p));

			if (!p)
				return -ENOMEM;
			set->snaps = p;
			*cap = c;
		}
		sn = &set->snaps[set->n++];
		memset(sn, 0, sizeof(*sn));
		sn->meta = *f->meta;
	}
	if (sn->n_locs == DRGW_MAX_BACKENDS)
		return 0;
	loc = &sn->locs[sn->n_locs++];
	loc->backend = f->backend;
	drgw_strlcpy(loc->key, f->key, sizeof(loc->key));
	loc->object_size = f->info.size;
	loc->retain_until_ns = f->info.retain_until_ns;
	loc->lock_flags = f->info.lock_flags;
	return 0;
}

/*
 * Objects of format version 2 name their repository (authenticated).  A
 * reader that knows its own (the repository setting, or a writer's
 * catalog) refuses the others as foreign; one that does not takes the
 * only repository present, and refuses to guess between several.
 * Version-1 objects carry none and always pass.
 */
static int check_repository(struct drgw_gateway *gw,
			    struct drgw_remote_set *set, struct drgw_err *err)
{
	char want[33], have[33];
	size_t kept = 0;

	if (!gw->have_repo) {
		const uint8_t *first = NULL;
		size_t n_first = 0, n_other = 0;
		char other[33] = "";

		for (size_t i = 0; i < set->n; i++) {
			const struct drgw_obj_meta *m = &set->snaps[i].meta;

			if (m->version != 2)
				continue;
			if (!first)
				first = m->repo;
			if (!memcmp(first, m->repo, DRGW_REPO_ID_BYTES)) {
				n_first++;
			} else if (!n_other++) {
				drgw_hex(m->repo, DRGW_REPO_ID_BYTES, other);
			}
		}
		if (n_other) {
			drgw_hex(first, DRGW_REPO_ID_BYTES, have);
			drgw_err_set(err,
				     "the backends hold objects of more than one repository (%s: %zu versions, %s and others: %zu); choose one with --repository",
				     have, n_first, other, n_other);
			return -EINVAL;
		}
		if (!first)
			return 0;
		memcpy(gw->repo_id, first, DRGW_REPO_ID_BYTES);
		gw->have_repo = true;
		gw->repo_source = "the only one on the backends";
		return 0;
	}
	drgw_hex(gw->repo_id, DRGW_REPO_ID_BYTES, want);
	for (size_t i = 0; i < set->n; i++) {
		struct drgw_snapshot *s = &set->snaps[i];

		if (s->meta.version == 2 &&
		    memcmp(s->meta.repo, gw->repo_id, DRGW_REPO_ID_BYTES)) {
			struct drgw_bad_object *p = realloc(
				set->bad, (set->n_bad + 1) * sizeof(*p));

			if (!p)
				return -ENOMEM;
			set->bad = p;
			p += set->n_bad++;
			p->backend = s->locs[0].backend;
			drgw_strlcpy(p->key, s->locs[0].key, sizeof(p->key));
			drgw_hex(s->meta.repo, DRGW_REPO_ID_BYTES, have);
			snprintf(p->why, sizeof(p->why),
				 "%s on %s belongs to repository %s, not to this one (%s): copied from another deployment?",
				 p->key, gw->backend_names[p->backend], have, want);
			continue;
		}
		set->snaps[kept++] = *s;
	}
	set->n = kept;
	return 0;
}

int drgw_remote_scan(struct drgw_gateway *gw, struct drgw_reader *rd,
		     struct drgw_remote_set *ret, struct drgw_err *err)
{
	return drgw_remote_scan_only(gw, rd, -1, ret, err);
}

int drgw_remote_scan_only(struct drgw_gateway *gw, struct drgw_reader *rd,
			  ssize_t only, struct drgw_remote_set *ret,
			  struct drgw_err *err)
{
	struct drgw_remote_set set = { 0 };
	size_t cap = 0, listed = 0;
	int r = 0;

	for (size_t b = 0; b < gw->n_backends; b++) {
		struct scan s = { .gw = gw, .rd = rd, .backend = b };
		struct drgw_err e = { 0 };
		pthread_t tids[SCAN_THREADS];
		unsigned nt = 0;

		if (only >= 0 && b != (size_t)only)
			continue;
		r = drgw_backend_list_all(gw->backends[b], "", on_key, &s, &e);
		if (r < 0) {
			set.unreachable[set.n_unreachable].backend = b;
			drgw_strlcpy(set.unreachable[set.n_unreachable].why,
				     e.msg,
				     sizeof(set.unreachable[0].why));
			set.n_unreachable++;
			free(s.items);
			r = 0;
			continue;
		}
		listed++;
		pthread_mutex_init(&s.lock, NULL);
		for (; nt < SCAN_THREADS && nt < s.n; nt++)
			if (pthread_create(&tids[nt], NULL, scan_thread, &s))
				break;
		if (nt == 0)
			scan_thread(&s);
		for (unsigned i = 0; i < nt; i++)
			pthread_join(tids[i], NULL);
		pthread_mutex_destroy(&s.lock);

		for (size_t i = 0; i < s.n; i++) {
			struct found *f = &s.items[i];

			if (r == 0)
				r = f->r < 0 ?
					    add_bad(&set, f, gw->backend_names[b], NULL) :
					    add_found(&set, f, gw->backend_names[b], &cap);
			free(f->meta);
		}
		free(s.items);
		if (r < 0)
			break;
	}
	if (r == 0 && listed == 0) {
		drgw_err_set(err, "no backend could be listed: backend %s: %s",
			     gw->backend_names[set.unreachable[0].backend],
			     set.unreachable[0].why);
		r = -EHOSTUNREACH;
	}
	if (r < 0) {
		drgw_remote_set_release(&set);
		return r;
	}
	r = check_repository(gw, &set, err);
	if (r < 0) {
		drgw_remote_set_release(&set);
		return r;
	}
	if (set.n)
		qsort(set.snaps, set.n, sizeof(*set.snaps), cmp_snap);
	*ret = set;
	return 0;
}

void drgw_remote_set_release(struct drgw_remote_set *set)
{
	free(set->snaps);
	free(set->bad);
	memset(set, 0, sizeof(*set));
}

int drgw_remote_require_readable(const struct drgw_remote_set *set,
				 struct drgw_err *err)
{
	if (set->n > 0 || set->n_bad == 0)
		return 0;
	drgw_err_set(err, "none of the %zu objects on the backends could be read: %s",
		     set->n_bad, set->bad[0].why);
	return -EIO;
}

bool drgw_remote_is_latest(const struct drgw_remote_set *set, size_t i)
{
	return i + 1 == set->n ||
	       strcmp(set->snaps[i].meta.name, set->snaps[i + 1].meta.name);
}

const struct drgw_snapshot *drgw_remote_find(const struct drgw_remote_set *set,
					     const char *name, const char *vid)
{
	const struct drgw_snapshot *best = NULL;

	for (size_t i = 0; i < set->n; i++) {
		const struct drgw_snapshot *s = &set->snaps[i];

		if (vid && !strcmp(s->meta.vid, vid) &&
		    (!name || !strcmp(s->meta.name, name)))
			return s;
		if (!vid && !strcmp(s->meta.name, name))
			best = s; /* sorted: the last match is the newest */
	}
	return best;
}

void drgw_remote_warn_unreachable(const struct drgw_remote_set *set,
				  const struct drgw_gateway *gw,
				  void (*warn)(void *arg, const char *line),
				  void *arg)
{
	char line[800];

	for (size_t i = 0; i < set->n_unreachable; i++) {
		snprintf(line, sizeof(line),
			 "backend %s could not be listed, so what only it holds is missing and an older version may be served as the newest: %s",
			 gw->backend_names[set->unreachable[i].backend],
			 set->unreachable[i].why);
		warn(arg, line);
	}
}

int drgw_remote_check_fresh(struct drgw_gateway *gw,
			    const struct drgw_snapshot *s, int64_t max_age_ns,
			    struct drgw_err *err)
{
	struct drgw_version v = { 0 };
	int64_t now = drgw_now_ns();
	char when[32], age[32];
	bool newer;

	if (max_age_ns > 0 && now - s->meta.created_ns > max_age_ns) {
		drgw_format_time(s->meta.created_ns, when, sizeof(when));
		drgw_format_duration(now - s->meta.created_ns, age, sizeof(age));
		drgw_err_set(err,
			     "the newest version of %s on the backends (%s) was sealed at %s, %s ago, more than --max-age allows: newer ones were deleted, rolled back or are on a backend that is not listed",
			     s->meta.name, s->meta.vid, when, age);
		return -ESTALE;
	}
	if (!gw->cat ||
	    drgw_catalog_newest_replicated(gw->cat, s->meta.name,
					   gw->backend_names, gw->n_backends,
					   &v) < 0)
		return 0;
	newer = v.created_ns > s->meta.created_ns;
	if (newer) {
		drgw_format_time(v.created_ns, when, sizeof(when));
		drgw_err_set(err,
			     "the catalog says version %s of %s (sealed %s) was replicated, but the newest the backends hold is %s: it was deleted, rolled back or is on a backend that is not listed (--allow-older restores the older one)",
			     v.vid, s->meta.name, when, s->meta.vid);
	}
	drgw_version_release(&v);
	return newer ? -ESTALE : 0;
}

int drgw_remote_open(struct drgw_gateway *gw, struct drgw_reader *rd,
		     const struct drgw_snapshot *s, size_t loc,
		     struct drgw_rfile **ret, struct drgw_err *err)
{
	const struct drgw_location *l = &s->locs[loc];
	struct drgw_rfile *rf;
	int r;

	r = drgw_rfile_open(rd, gw->backends[l->backend], l->key,
			    l->object_size, &rf, err);
	if (r < 0)
		return r;
	if (!same_snapshot(drgw_rfile_meta(rf), &s->meta) ||
	    strcmp(drgw_rfile_meta(rf)->vid, s->meta.vid)) {
		drgw_rfile_close(rf);
		drgw_err_set(err,
			     "%s on %s no longer holds %s version %s: it changed after it was listed",
			     l->key, gw->backend_names[l->backend], s->meta.name,
			     s->meta.vid);
		return -EIO;
	}
	*ret = rf;
	return 0;
}
