/* SPDX-License-Identifier: MIT */
/*
 * Remote scan; see remote.h.  Tails are read by a few threads at once:
 * for an object store, the scan of a bucket is latency-bound.
 *
 * Memory is what limits the scan of a long history, so nothing here is
 * sized for the worst case: strings go into a pool of large blocks, the
 * locations of all versions into one array built at the end, versions are
 * found by a hash of their id, and an error message exists only for an
 * object that failed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "log.h"
#include "remote.h"

#define SCAN_THREADS 8
/* Ranged listings: at most this many at once, each of about RANGE_KEYS
 * keys (under the thousand of a listing page, so that a few objects the
 * index does not know still fit in one page). */
#define LIST_THREADS 16
#define RANGE_KEYS 800
#define POOL_BLOCK (64u << 10)

/* A block of strings; blocks are chained and freed together. */
struct drgw_remote_pool {
	struct drgw_remote_pool *next;
	size_t used, cap;
	char data[];
};

static const char *pool_strdup(struct drgw_remote_pool **pool, const char *s)
{
	size_t len = strlen(s) + 1;
	struct drgw_remote_pool *p = *pool;
	char *d;

	if (!p || p->cap - p->used < len) {
		size_t cap = len > POOL_BLOCK ? len : POOL_BLOCK;

		p = malloc(sizeof(*p) + cap);
		if (!p)
			return NULL;
		p->next = *pool;
		p->used = 0;
		p->cap = cap;
		*pool = p;
	}
	d = p->data + p->used;
	memcpy(d, s, len);
	p->used += len;
	return d;
}

static void pool_free(struct drgw_remote_pool *p)
{
	while (p) {
		struct drgw_remote_pool *next = p->next;

		free(p);
		p = next;
	}
}

/* A listed object of the backend being scanned. */
struct found {
	const char *key;  /* in scan.pool */
	const char *etag; /* in scan.pool, "" if none */
	uint64_t object_size;
	/* What the listing said about locks (DRGW_LOCK_* of backend.h). */
	int64_t retain_until_ns;
	uint32_t lock_flags;
	/* Filled by the scan: meta (strings in scan.pool) if r == 0, else
	 * err (malloc()ed). */
	int r;
	struct drgw_snap_meta meta;
	char *err;
	/* meta came from the backend's index record: no tail to read. */
	bool indexed;
};

struct scan {
	struct drgw_gateway *gw;
	struct drgw_reader *rd;
	size_t backend;
	struct found *items;
	size_t n, cap;
	pthread_mutex_t lock; /* next, pool and n_read, once threads run */
	size_t next;
	struct drgw_remote_pool *pool;
	size_t n_read, n_indexed;
	/* The newest index record listed (greatest vid), "" if none. */
	char index_key[DRGW_OBJ_VID_MAX + 32];
	uint64_t index_size;
	bool index_read; /* load_index() ran */
	bool oom;	 /* on_key() ran out of memory */
};

static const char *scan_strdup(struct scan *s, const char *str)
{
	const char *d;

	pthread_mutex_lock(&s->lock);
	d = pool_strdup(&s->pool, str);
	pthread_mutex_unlock(&s->lock);
	return d;
}

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

/* Called by the listing, before the scan threads start. */
static int on_key(void *arg, const char *key,
		  const struct drgw_object_info *info)
{
	struct scan *s = arg;
	struct drgw_object_info clean = *info;
	char vid[DRGW_OBJ_VID_MAX + 1];
	struct found *f;

	if (drgw_index_key(key, vid)) {
		if (strcmp(key, s->index_key) > 0 &&
		    drgw_strlcpy(s->index_key, key, sizeof(s->index_key)) >= 0)
			s->index_size = info->size;
		return 0;
	}
	if (!key_is_object(key)) {
		log_debug("ignoring %s on %s: not a drgw object name", key,
			  s->gw->backend_names[s->backend]);
		return 0;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct found *p = realloc(s->items, cap * sizeof(*p));

		if (!p)
			goto oom;
		s->items = p;
		s->cap = cap;
	}
	f = &s->items[s->n];
	memset(f, 0, sizeof(*f));
	f->key = pool_strdup(&s->pool, key);
	f->etag = pool_strdup(&s->pool, info->etag);
	if (!f->key || !f->etag)
		goto oom;
	f->object_size = info->size;
	drgw_backend_clean_info(s->gw->backends[s->backend], &clean);
	f->retain_until_ns = clean.retain_until_ns;
	f->lock_flags = clean.lock_flags;
	s->n++;
	return 0;
oom:
	/* A listing that stops early returns 0: remember why. */
	s->oom = true;
	return -ENOMEM;
}

static int on_key_locked(void *arg, const char *key,
			 const struct drgw_object_info *info)
{
	struct scan *s = arg;
	int r;

	pthread_mutex_lock(&s->lock);
	r = on_key(arg, key, info);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Sets f->err from a format and makes f a failure. */
static void fail(struct found *f, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct found *f, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&f->err, fmt, ap) < 0)
		f->err = NULL;
	va_end(ap);
	f->r = r;
}

/* Fills f->meta from footer metadata m, strings into the scan's pool. */
static int set_meta(struct scan *s, struct found *f, const char *name,
		    const char *vid, const struct drgw_obj_meta *m)
{
	f->meta.name = scan_strdup(s, name);
	f->meta.vid = scan_strdup(s, vid);
	if (!f->meta.name || !f->meta.vid)
		return -ENOMEM;
	f->meta.size = m->size;
	f->meta.mtime_ns = m->mtime_ns;
	f->meta.created_ns = m->created_ns;
	f->meta.mode = m->mode;
	memcpy(f->meta.sha256, m->sha256, sizeof(f->meta.sha256));
	f->meta.version = (uint8_t)m->version;
	memcpy(f->meta.repo, m->repo, sizeof(f->meta.repo));
	return 0;
}

/* A cached description of the object, if the object did not change (same
 * size and etag) and its key is in the ring (so a wrong key still fails
 * loudly instead of mounting files that cannot be read). */
static int from_cache(struct scan *s, struct found *f)
{
	struct drgw_gateway *gw = s->gw;
	struct drgw_remote_object o;
	struct drgw_obj_meta m = { 0 };
	uint8_t id[DRGW_KEY_ID_BYTES];
	int r;

	if (!f->etag[0] ||
	    drgw_catalog_get_remote(gw->cat, gw->backend_names[s->backend],
				    f->key, f->object_size, f->etag, &o) < 0)
		return -ENOENT;
	if (drgw_unhex(o.key_id, id, sizeof(id)) < 0 ||
	    (!drgw_keyring_find(&gw->keys, id) &&
	     !drgw_keyring_find_identity(&gw->keys, id))) {
		drgw_remote_object_release(&o);
		return -ENOENT;
	}
	m.size = o.size;
	m.mtime_ns = o.mtime_ns;
	m.created_ns = o.created_ns;
	m.mode = o.mode;
	drgw_unhex(o.sha256, m.sha256, sizeof(m.sha256));
	m.version = o.repo[0] ? 2 : 1;
	if (o.repo[0])
		drgw_unhex(o.repo, m.repo, sizeof(m.repo));
	r = set_meta(s, f, o.name, o.vid, &m);
	drgw_remote_object_release(&o);
	return r;
}

static void to_cache(struct scan *s, const struct found *f,
		     const struct drgw_rfile *rf)
{
	struct drgw_remote_object o = { 0 };
	const struct drgw_obj_meta *m = drgw_rfile_meta(rf);

	drgw_strlcpy(o.backend, s->gw->backend_names[s->backend],
		     sizeof(o.backend));
	o.key = (char *)f->key;
	o.object_size = f->object_size;
	drgw_strlcpy(o.etag, f->etag, sizeof(o.etag));
	drgw_strlcpy(o.vid, m->vid, sizeof(o.vid));
	o.name = (char *)m->name;
	o.size = m->size;
	o.mtime_ns = m->mtime_ns;
	o.created_ns = m->created_ns;
	o.mode = m->mode;
	drgw_hex(m->sha256, 32, o.sha256);
	drgw_key_id_hex(drgw_rfile_key_id(rf), o.key_id);
	if (m->version == 2)
		drgw_hex(m->repo, sizeof(m->repo), o.repo);
	drgw_rfile_tail(rf, &o.tail, &o.tail_len);
	drgw_catalog_put_remote(s->gw->cat, &o);
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
	const char *bname = s->gw->backend_names[s->backend];
	struct drgw_err err = { 0 };
	struct drgw_rfile *rf = NULL;
	const struct drgw_obj_meta *m;
	const struct drgw_obj_ext *x;

	if (!f->indexed && (!s->gw->cat || from_cache(s, f) < 0)) {
		pthread_mutex_lock(&s->lock);
		s->n_read++;
		pthread_mutex_unlock(&s->lock);
		f->r = drgw_rfile_open_keep_tail(s->rd,
						 s->gw->backends[s->backend],
						 f->key, f->object_size, &rf,
						 &err);
		if (f->r < 0) {
			fail(f, f->r, "%s", err.msg);
			return;
		}
		m = drgw_rfile_meta(rf);
		f->r = set_meta(s, f, m->name, m->vid, m);
		if (f->r < 0) {
			drgw_rfile_close(rf);
			return;
		}
		x = drgw_rfile_ext(rf);
		f->meta.check = (uint8_t)x->check;
		f->meta.incomplete = x->problem != NULL;
	}
	if (!key_matches(f->key, f->meta.vid))
		fail(f, -EIO, "%s on %s holds version %s under another name",
		     f->key, bname, f->meta.vid);
	else if (rf && s->gw->cat)
		to_cache(s, f, rf);
	drgw_rfile_close(rf);
}

/* The vid of "<vid>.drgw" into vid (key_is_object() said it is one). */
static void key_vid(const char *key, char vid[DRGW_OBJ_VID_MAX + 1])
{
	size_t n = strlen(key) - 5;

	memcpy(vid, key, n);
	vid[n] = '\0';
}

static int cmp_found_name(const void *a, const void *b)
{
	const struct found *x = *(const struct found *const *)a,
			   *y = *(const struct found *const *)b;
	int c = strcmp(x->meta.name, y->meta.name);

	return c ? c : (x->meta.created_ns > y->meta.created_ns) -
			       (x->meta.created_ns < y->meta.created_ns);
}

/*
 * Entries of the index whose object the listing lacks: objects pruned or
 * deleted since it was written, or rolled back.  Only the dangerous case
 * is a warning: a version that is gone while an older one of its name is
 * still there, which a reader would now take for the newest.  Called once
 * every listed object is described.
 */
static void report_missing(struct scan *s, const struct drgw_index *ix,
			   const bool *matched)
{
	const char *bname = s->gw->backend_names[s->backend];
	struct found **by_name = malloc((s->n ? s->n : 1) * sizeof(*by_name));
	size_t n = 0, missing = 0, older_listed = 0;
	const struct drgw_index_entry *example = NULL;

	if (!by_name)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->items[i].r == 0 && s->items[i].meta.name)
			by_name[n++] = &s->items[i];
	if (n)
		qsort(by_name, n, sizeof(*by_name), cmp_found_name);
	for (size_t i = 0; i < ix->n; i++) {
		const struct drgw_index_entry *e = &ix->entries[i];
		size_t lo = 0, hi = n;

		if (matched[i])
			continue;
		missing++;
		/* The newest listed version of the name: last in order (a
		 * prune removes older ones, which is no warning). */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (strcmp(by_name[mid]->meta.name, e->name) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo > 0 && !strcmp(by_name[lo - 1]->meta.name, e->name) &&
		    by_name[lo - 1]->meta.created_ns < e->created_ns) {
			older_listed++;
			if (!example)
				example = e;
		}
	}
	free(by_name);
	if (older_listed)
		log_warning("%s on %s lists %zu versions the backend no longer holds while older versions of their names are there (e.g. %s version %s): deleted or rolled back?",
			    s->index_key, bname, older_listed, example->name,
			    example->vid);
	else if (missing)
		log_debug("%s on %s lists %zu versions the backend no longer holds (pruned since it was written)",
			  s->index_key, bname, missing);
}

/* Reads the newest index record listed into ix (ix->n = 0 if there is
 * none or it does not open), once. */
static int load_index(struct scan *s, struct drgw_index *ix)
{
	const char *bname = s->gw->backend_names[s->backend];
	struct drgw_err err = { 0 };
	int r;

	if (s->index_read)
		return 0;
	s->index_read = true;
	memset(ix, 0, sizeof(*ix));
	if (!s->index_key[0])
		return 0;
	r = drgw_index_read(s->gw, s->backend, s->index_key, s->index_size,
			    ix, &err);
	s->n_read++;
	if (r == -ENOMEM)
		return r;
	if (r == -ENOKEY)
		/* Not ours to open: the objects will say so, once each. */
		log_debug("cannot open index record %s on %s: %s", s->index_key,
			  bname, err.msg);
	else if (r < 0)
		log_warning("ignoring index record %s on %s, every object is opened instead: %s",
			    s->index_key, bname, err.msg);
	if (r < 0)
		memset(ix, 0, sizeof(*ix));
	return 0;
}

/*
 * Describes the listed objects the backend's newest index record knows
 * (same key, same size) from it, so that only the others need a request.
 * An index that does not open is no error: everything is read instead.
 * Returns the index (ix->n = 0 if none) for report_missing(), and the
 * entries it matched in *ret_matched (malloc()ed).
 */
static int use_index(struct scan *s, struct drgw_index *ix, bool **ret_matched)
{
	bool *matched;
	int r = load_index(s, ix);

	*ret_matched = NULL;
	if (r == 0 && !s->index_key[0] && s->n)
		log_warning("%s holds %zu objects and no index record: each is opened to be described (a request each, unless --cache has it); a gateway writes one after its next backup",
			    s->gw->backend_names[s->backend], s->n);
	if (r < 0 || !ix->n)
		return r;
	matched = calloc(ix->n ? ix->n : 1, sizeof(*matched));
	if (!matched) {
		drgw_index_release(ix);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct found *f = &s->items[i];
		char vid[DRGW_OBJ_VID_MAX + 1];
		const struct drgw_index_entry *e;
		struct drgw_obj_meta m = { .version = 2 };

		key_vid(f->key, vid);
		e = drgw_index_find(ix, vid);
		if (!e)
			continue;
		/* Listed: not lost, even if it changed (then it is opened and
		 * says for itself what is wrong with it). */
		matched[e - ix->entries] = true;
		if (e->object_size != f->object_size)
			continue;
		m.size = e->size;
		m.mtime_ns = e->mtime_ns;
		m.created_ns = e->created_ns;
		m.mode = e->mode;
		memcpy(m.sha256, e->sha256, sizeof(m.sha256));
		memcpy(m.repo, ix->repo, sizeof(m.repo));
		r = set_meta(s, f, e->name, e->vid, &m);
		if (r < 0)
			break;
		f->meta.check = e->check;
		f->meta.incomplete = e->incomplete;
		f->indexed = true;
		s->n_indexed++;
	}
	if (r < 0) {
		free(matched);
		drgw_index_release(ix);
		return r;
	}
	*ret_matched = matched;
	return 0;
}

struct ranges {
	struct scan *s;
	const char *const *bounds; /* n - 1 split keys, in order */
	size_t n, next;
	int r;
	struct drgw_err err;
};

static void *list_thread(void *arg)
{
	struct ranges *rg = arg;
	struct scan *s = rg->s;

	for (;;) {
		struct drgw_err e = { 0 };
		size_t i;
		int r;

		pthread_mutex_lock(&s->lock);
		i = rg->next++;
		r = rg->r;
		pthread_mutex_unlock(&s->lock);
		if (i >= rg->n || r < 0)
			break;
		r = drgw_backend_list_range(s->gw->backends[s->backend], "",
					    i ? rg->bounds[i - 1] : NULL,
					    i + 1 < rg->n ? rg->bounds[i] : NULL,
					    on_key_locked, s, &e);
		pthread_mutex_lock(&s->lock);
		if (r < 0 && rg->r == 0) {
			rg->r = r;
			rg->err = e;
		}
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

static int cmp_found_key(const void *a, const void *b)
{
	return strcmp(((const struct found *)a)->key,
		      ((const struct found *)b)->key);
}

/*
 * Lists backend s->backend into s->items and reads its newest index record
 * into ix.  A listing is a chain of pages, one request after the other:
 * with tens of thousands of objects that alone takes seconds at cloud
 * latency.  So where the plugin lists ranges, the index records are listed
 * first, and the newest index's vids split the bucket into ranges of about
 * RANGE_KEYS keys that are listed in parallel.  Every range is listed to
 * its end, so what exists still comes from the listing alone.
 */
static int list_backend(struct scan *s, struct drgw_index *ix,
			struct drgw_err *err)
{
	struct drgw_backend *be = s->gw->backends[s->backend];
	struct ranges rg = { .s = s };
	const char **bounds = NULL;
	pthread_t tids[LIST_THREADS];
	unsigned nt = 0;
	int r;

	if (!drgw_backend_lists_ranges(be))
		goto whole;
	r = drgw_backend_list_all(be, DRGW_INDEX_PREFIX, on_key, s, err);
	if (r == 0)
		r = s->oom ? -ENOMEM : load_index(s, ix);
	if (r < 0)
		return r;
	if (ix->n < 2 * RANGE_KEYS)
		goto whole;
	rg.n = ix->n / RANGE_KEYS;
	bounds = malloc((rg.n - 1) * sizeof(*bounds));
	if (!bounds)
		return -ENOMEM;
	/* A vid sorts just before its own "<vid>.drgw": no key is a bound. */
	for (size_t i = 1; i < rg.n; i++)
		bounds[i - 1] = ix->entries[i * ix->n / rg.n].vid;
	rg.bounds = bounds;
	for (; nt < LIST_THREADS && nt < rg.n; nt++)
		if (pthread_create(&tids[nt], NULL, list_thread, &rg))
			break;
	if (nt == 0)
		list_thread(&rg);
	for (unsigned i = 0; i < nt; i++)
		pthread_join(tids[i], NULL);
	free(bounds);
	r = s->oom ? -ENOMEM : rg.r;
	if (r == -ENOSYS) {
		s->n = 0;
		goto whole;
	}
	if (r < 0) {
		*err = rg.err;
		return r;
	}
	/* Ranges ended in any order: back to the backend's order. */
	if (s->n)
		qsort(s->items, s->n, sizeof(*s->items), cmp_found_key);
	return 0;
whole:
	r = drgw_backend_list_all(be, "", on_key, s, err);
	return r == 0 && s->oom ? -ENOMEM : r;
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

/* Records an object that cannot be used: why, or if NULL f->err. */
static int add_bad(struct drgw_remote_set *set, size_t backend,
		   const struct found *f, const char *bname, const char *why)
{
	struct drgw_bad_object *p = realloc(set->bad,
					    (set->n_bad + 1) * sizeof(*p));
	char line[800];

	if (!p)
		return -ENOMEM;
	set->bad = p;
	p += set->n_bad;
	if (why)
		snprintf(line, sizeof(line), "%s on %s %s", f->key, bname, why);
	else
		drgw_strlcpy(line, f->err ? f->err : strerror(-f->r),
			     sizeof(line));
	p->backend = backend;
	p->key = pool_strdup(&set->pool, f->key);
	p->why = pool_strdup(&set->pool, line);
	if (!p->key || !p->why)
		return -ENOMEM;
	set->n_bad++;
	return 0;
}

/* Objects of version 2 name their repository; version 1 ones (and index
 * entries, which do not say which version the object is) name none. */
static bool same_repo(unsigned va, const uint8_t *ra, unsigned vb,
		      const uint8_t *rb)
{
	return va != 2 || vb != 2 || !memcmp(ra, rb, DRGW_REPO_ID_BYTES);
}

/* Two copies of one version must describe the same file. */
static bool same_meta(const struct drgw_snap_meta *a,
		      const struct drgw_snap_meta *b)
{
	return a->size == b->size && a->created_ns == b->created_ns &&
	       a->mtime_ns == b->mtime_ns && a->mode == b->mode &&
	       !memcmp(a->sha256, b->sha256, sizeof(a->sha256)) &&
	       same_repo(a->version, a->repo, b->version, b->repo) &&
	       !strcmp(a->name, b->name) && !strcmp(a->vid, b->vid);
}

static bool same_as_footer(const struct drgw_snap_meta *a,
			   const struct drgw_obj_meta *b)
{
	return a->size == b->size && a->created_ns == b->created_ns &&
	       a->mtime_ns == b->mtime_ns && a->mode == b->mode &&
	       !memcmp(a->sha256, b->sha256, sizeof(a->sha256)) &&
	       same_repo(a->version, a->repo, b->version, b->repo) &&
	       !strcmp(a->name, b->name) && !strcmp(a->vid, b->vid);
}

/* FNV-1a: version ids are short and random enough. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

/* The slot of vid in set->by_vid: where it is, or the empty slot where it
 * would go. */
static size_t vid_slot(const struct drgw_remote_set *set, const char *vid)
{
	size_t mask = set->by_vid_cap - 1;
	size_t i = (size_t)hash_str(vid) & mask;

	while (set->by_vid[i] &&
	       strcmp(set->snaps[set->by_vid[i] - 1].meta.vid, vid))
		i = (i + 1) & mask;
	return i;
}

/* Rebuilds the hash for set->n versions (and room for as many again). */
static int rehash(struct drgw_remote_set *set, size_t want)
{
	size_t cap = 64;

	while (cap < 2 * want)
		cap *= 2;
	free(set->by_vid);
	set->by_vid = calloc(cap, sizeof(*set->by_vid));
	if (!set->by_vid)
		return -ENOMEM;
	set->by_vid_cap = cap;
	for (size_t i = 0; i < set->n; i++)
		set->by_vid[vid_slot(set, set->snaps[i].meta.vid)] =
			(uint32_t)(i + 1);
	return 0;
}

/* What the set is built from before its locations are laid out. */
struct pending_loc {
	uint32_t snap;
	uint32_t backend;
	uint64_t object_size;
	int64_t retain_until_ns;
	uint32_t lock_flags;
};

struct build {
	size_t cap;
	const char **keys; /* per version: its key, in set->pool */
	struct pending_loc *locs;
	size_t n_locs, locs_cap;
};

/* Adds a found object to the set, merging copies of one version. */
static int add_found(struct drgw_remote_set *set, struct build *b,
		     size_t backend, const struct found *f, const char *bname)
{
	struct drgw_snapshot *sn;
	size_t slot, idx;

	if (2 * (set->n + 1) > set->by_vid_cap &&
	    rehash(set, 2 * (set->n + 1)) < 0)
		return -ENOMEM;
	slot = vid_slot(set, f->meta.vid);
	if (set->by_vid[slot]) {
		idx = set->by_vid[slot] - 1;
		if (!same_meta(&set->snaps[idx].meta, &f->meta))
			return add_bad(set, backend, f, bname,
				       "claims the version of another object with other content");
	} else {
		if (set->n == b->cap) {
			size_t c = b->cap ? b->cap * 2 : 64;
			struct drgw_snapshot *p = realloc(set->snaps,
							  c * sizeof(*p));
			const char **k;

			if (!p)
				return -ENOMEM;
			set->snaps = p;
			k = realloc(b->keys, c * sizeof(*k));
			if (!k)
				return -ENOMEM;
			b->keys = k;
			b->cap = c;
		}
		if (set->n >= UINT32_MAX - 1)
			return -EOVERFLOW;
		idx = set->n;
		sn = &set->snaps[idx];
		memset(sn, 0, sizeof(*sn));
		sn->meta = f->meta;
		sn->meta.name = pool_strdup(&set->pool, f->meta.name);
		sn->meta.vid = pool_strdup(&set->pool, f->meta.vid);
		b->keys[idx] = pool_strdup(&set->pool, f->key);
		if (!sn->meta.name || !sn->meta.vid || !b->keys[idx])
			return -ENOMEM;
		set->n++;
		set->by_vid[slot] = (uint32_t)(idx + 1);
	}
	if (b->n_locs == b->locs_cap) {
		size_t c = b->locs_cap ? b->locs_cap * 2 : 64;
		struct pending_loc *p = realloc(b->locs, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->locs = p;
		b->locs_cap = c;
	}
	b->locs[b->n_locs++] = (struct pending_loc){
		.snap = (uint32_t)idx,
		.backend = (uint32_t)backend,
		.object_size = f->object_size,
		.retain_until_ns = f->retain_until_ns,
		.lock_flags = f->lock_flags,
	};
	return 0;
}

/* Lays the locations out in one array, in backend order per version. */
static int place_locations(struct drgw_remote_set *set, const struct build *b)
{
	size_t *next = calloc(set->n + 1, sizeof(*next));

	set->loc_array = calloc(b->n_locs ? b->n_locs : 1,
				sizeof(*set->loc_array));
	if (!next || !set->loc_array) {
		free(next);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->n_locs; i++)
		set->snaps[b->locs[i].snap].n_locs++;
	for (size_t i = 0, at = 0; i < set->n; i++) {
		next[i] = at;
		set->snaps[i].locs = set->loc_array + at;
		at += set->snaps[i].n_locs;
	}
	/* Pending locations are in scan order, that is by backend. */
	for (size_t i = 0; i < b->n_locs; i++) {
		const struct pending_loc *pl = &b->locs[i];
		struct drgw_location *l = &set->loc_array[next[pl->snap]++];

		l->backend = pl->backend;
		l->key = b->keys[pl->snap];
		l->object_size = pl->object_size;
		l->retain_until_ns = pl->retain_until_ns;
		l->lock_flags = pl->lock_flags;
	}
	free(next);
	return 0;
}

/*
 * Objects of format version 2 name their repository (authenticated).  A
 * reader that knows its own (the repository setting, or a writer's
 * catalog) refuses the others as foreign; one that does not takes the
 * only repository present, and refuses to guess between several.
 * Version-1 objects carry none and always pass.  Runs before the set is
 * sorted and hashed.
 */
static int check_repository(struct drgw_gateway *gw,
			    struct drgw_remote_set *set, struct drgw_err *err)
{
	char want[33], have[33], line[800];
	size_t kept = 0;

	if (!gw->have_repo) {
		const uint8_t *first = NULL;
		size_t n_first = 0, n_other = 0;
		char other[33] = "";

		for (size_t i = 0; i < set->n; i++) {
			const struct drgw_snap_meta *m = &set->snaps[i].meta;

			if (m->version != 2)
				continue;
			if (!first)
				first = m->repo;
			if (!memcmp(first, m->repo, DRGW_REPO_ID_BYTES))
				n_first++;
			else if (!n_other++)
				drgw_hex(m->repo, DRGW_REPO_ID_BYTES, other);
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
		struct drgw_bad_object *p;

		if (s->meta.version != 2 ||
		    !memcmp(s->meta.repo, gw->repo_id, DRGW_REPO_ID_BYTES)) {
			set->snaps[kept++] = *s;
			continue;
		}
		p = realloc(set->bad, (set->n_bad + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		set->bad = p;
		p += set->n_bad;
		drgw_hex(s->meta.repo, DRGW_REPO_ID_BYTES, have);
		snprintf(line, sizeof(line),
			 "%s on %s belongs to repository %s, not to this one (%s): copied from another deployment?",
			 s->locs[0].key, gw->backend_names[s->locs[0].backend],
			 have, want);
		p->backend = s->locs[0].backend;
		p->key = s->locs[0].key;
		p->why = pool_strdup(&set->pool, line);
		if (!p->why)
			return -ENOMEM;
		set->n_bad++;
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
	struct build bld = { 0 };
	size_t listed = 0;
	int r = 0;

	for (size_t b = 0; b < gw->n_backends; b++) {
		struct scan s = { .gw = gw, .rd = rd, .backend = b };
		struct drgw_err e = { 0 };
		struct drgw_index ix = { .n = 0 };
		bool *matched = NULL;
		pthread_t tids[SCAN_THREADS];
		unsigned nt = 0;

		if (only >= 0 && b != (size_t)only)
			continue;
		pthread_mutex_init(&s.lock, NULL);
		r = list_backend(&s, &ix, &e);
		if (r < 0) {
			pthread_mutex_destroy(&s.lock);
			drgw_index_release(&ix);
			set.unreachable[set.n_unreachable].backend = b;
			drgw_strlcpy(set.unreachable[set.n_unreachable].why,
				     r == -ENOMEM ? strerror(ENOMEM) : e.msg,
				     sizeof(set.unreachable[0].why));
			set.n_unreachable++;
			free(s.items);
			pool_free(s.pool);
			r = 0;
			continue;
		}
		listed++;
		r = use_index(&s, &ix, &matched);
		for (; r == 0 && nt < SCAN_THREADS && nt < s.n; nt++)
			if (pthread_create(&tids[nt], NULL, scan_thread, &s))
				break;
		if (r == 0 && nt == 0)
			scan_thread(&s);
		for (unsigned i = 0; i < nt; i++)
			pthread_join(tids[i], NULL);
		pthread_mutex_destroy(&s.lock);
		if (matched)
			report_missing(&s, &ix, matched);
		free(matched);
		drgw_index_release(&ix);
		set.n_read += s.n_read;
		set.n_indexed += s.n_indexed;

		for (size_t i = 0; i < s.n; i++) {
			struct found *f = &s.items[i];

			if (r == 0 && f->r == -ENOMEM)
				r = -ENOMEM;
			else if (r == 0)
				r = f->r < 0 ?
					    add_bad(&set, b, f, gw->backend_names[b], NULL) :
					    add_found(&set, &bld, b, f, gw->backend_names[b]);
			free(f->err);
		}
		free(s.items);
		pool_free(s.pool);
		if (r < 0)
			break;
	}
	if (r == 0 && listed == 0) {
		drgw_err_set(err, "no backend could be listed: backend %s: %s",
			     gw->backend_names[set.unreachable[0].backend],
			     set.unreachable[0].why);
		r = -EHOSTUNREACH;
	}
	if (r == 0)
		r = place_locations(&set, &bld);
	if (r == 0)
		r = check_repository(gw, &set, err);
	free(bld.keys);
	free(bld.locs);
	if (r == 0) {
		if (set.n)
			qsort(set.snaps, set.n, sizeof(*set.snaps), cmp_snap);
		r = rehash(&set, set.n);
	}
	if (r < 0) {
		if (r == -ENOMEM && !err->msg[0])
			drgw_err_set(err, "out of memory listing the backends");
		drgw_remote_set_release(&set);
		return r;
	}
	*ret = set;
	return 0;
}

void drgw_remote_set_release(struct drgw_remote_set *set)
{
	free(set->snaps);
	free(set->bad);
	free(set->loc_array);
	free(set->by_vid);
	pool_free(set->pool);
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
	size_t lo = 0, hi = set->n;

	if (vid) {
		const struct drgw_snapshot *s;
		size_t slot;

		if (!set->by_vid_cap)
			return NULL;
		slot = vid_slot(set, vid);
		if (!set->by_vid[slot])
			return NULL;
		s = &set->snaps[set->by_vid[slot] - 1];
		return !name || !strcmp(s->meta.name, name) ? s : NULL;
	}
	/* Sorted by name: the newest is the last of its name. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(set->snaps[mid].meta.name, name) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && !strcmp(set->snaps[lo - 1].meta.name, name) ?
		       &set->snaps[lo - 1] :
		       NULL;
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

/* Opens l from the tail the catalog kept for it, without a request. */
static int open_kept(struct drgw_gateway *gw, struct drgw_reader *rd,
		     const struct drgw_location *l, struct drgw_rfile **ret)
{
	struct drgw_err ignored = { 0 };
	void *tail;
	size_t len;
	int r;

	if (!gw->cat ||
	    drgw_catalog_get_remote_tail(gw->cat, gw->backend_names[l->backend],
					 l->key, l->object_size, &tail,
					 &len) < 0)
		return -ENOENT;
	r = drgw_rfile_open_tail(rd, gw->backends[l->backend], l->key,
				 l->object_size, tail, len, ret, &ignored);
	free(tail);
	return r;
}

int drgw_remote_open(struct drgw_gateway *gw, struct drgw_reader *rd,
		     const struct drgw_snapshot *s, size_t loc, bool read_tail,
		     struct drgw_rfile **ret, struct drgw_err *err)
{
	const struct drgw_location *l = &s->locs[loc];
	struct drgw_rfile *rf;
	int r;

	/* A kept tail that is not this version any more (the object was
	 * replaced since) is no reason to fail: the object itself says. */
	if (!read_tail && open_kept(gw, rd, l, &rf) == 0) {
		if (same_as_footer(&s->meta, drgw_rfile_meta(rf))) {
			*ret = rf;
			return 0;
		}
		drgw_rfile_close(rf);
	}
	r = drgw_rfile_open(rd, gw->backends[l->backend], l->key,
			    l->object_size, &rf, err);
	if (r < 0)
		return r;
	if (!same_as_footer(&s->meta, drgw_rfile_meta(rf))) {
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
