/* SPDX-License-Identifier: MIT */
/*
 * The restore view: a read-only mount that shows the newest version of
 * every snapshot found on the backends, as a plain file with its original
 * name, size, mode and mtime.  Reads go through the remote reader, so a
 * restore never needs a full download before the first byte is usable,
 * and a read that cannot be served correctly fails with EIO.  If one
 * backend fails to serve a chunk, the next backend that holds the same
 * version is tried.
 *
 * The tree is built once at mount time and never changes.  Snapshots are
 * placed in path order ('/' first), so every directory receives its
 * children already sorted and each lookup is a binary search.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "restore.h"

struct rnode {
	char *name; /* component */
	bool is_dir;
	const struct drgw_snapshot *snap; /* files */
	/* Why the catalog says snap may not restore (its SQLite check at
	 * ingest failed), or NULL: logged when the file is opened. */
	char *warning;
	struct rnode **children;	  /* dirs, sorted by name */
	size_t n_children;
	uint64_t ino;

	/* Open state of a file, under the view's lock. */
	struct drgw_rfile *rf;
	size_t rf_loc; /* which location rf reads */
	unsigned opens;
};

struct drgw_restore_view {
	struct drgw_gateway *gw;
	struct drgw_reader *rd;
	struct drgw_remote_set set;
	struct rnode *root;
	uint64_t next_ino;
	int64_t mount_ns;
	/* Owner and the permission bits of every node (see fill_stat). */
	uid_t uid;
	gid_t gid;
	mode_t umask;
	/* A backend that failed an open or a read is tried last until then
	 * (monotonic ns), so that every file does not wait out the read
	 * deadline of a dead backend before the next one serves it. */
	int64_t failed_until[DRGW_MAX_BACKENDS];
	pthread_mutex_t lock;
};

#define BACKEND_PENALTY_NS (60 * NSEC_PER_SEC)

static void backend_failed(struct drgw_restore_view *v, size_t b)
{
	pthread_mutex_lock(&v->lock);
	v->failed_until[b] = drgw_mono_ns() + BACKEND_PENALTY_NS;
	pthread_mutex_unlock(&v->lock);
}

static bool backend_failing(struct drgw_restore_view *v, size_t b)
{
	bool r;

	pthread_mutex_lock(&v->lock);
	r = v->failed_until[b] > drgw_mono_ns();
	pthread_mutex_unlock(&v->lock);
	return r;
}

static struct drgw_restore_view *view_of(void)
{
	return fuse_get_context()->private_data;
}

static struct rnode *new_rnode(struct drgw_restore_view *v, const char *name,
			       size_t len, bool is_dir)
{
	struct rnode *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strndup(name, len);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->is_dir = is_dir;
	n->ino = ++v->next_ino;
	return n;
}

/* Orders component sequences the way strcmp orders each component. */
static int cmp_name_len(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static struct rnode *child(const struct rnode *dir, const char *name,
			   size_t len)
{
	size_t lo = 0, hi = dir->n_children;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct rnode *c = dir->children[mid];
		int r = cmp_name_len(c->name, strlen(c->name), name, len);

		if (r == 0)
			return dir->children[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The last child of dir if it is name: in path order, a name seen again
 * in a directory is always its last child so far. */
static struct rnode *last_child(const struct rnode *dir, const char *name,
				size_t len)
{
	struct rnode *c = dir->n_children ? dir->children[dir->n_children - 1] :
					    NULL;

	return c && strlen(c->name) == len && !memcmp(c->name, name, len) ? c :
									    NULL;
}

static int add_child(struct rnode *dir, struct rnode *c)
{
	if ((dir->n_children & (dir->n_children - 1)) == 0) {
		size_t cap = dir->n_children ? dir->n_children * 2 : 1;
		struct rnode **p = realloc(dir->children, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		dir->children = p;
	}
	dir->children[dir->n_children++] = c;
	return 0;
}

/* Places snapshot s at its path, creating directories on the way.  A name
 * that collides with a directory of another snapshot's path is skipped.
 * Called in path order (by_path()). */
static int place(struct drgw_restore_view *v, const struct drgw_snapshot *s)
{
	const char *p = s->meta.name;
	struct rnode *dir = v->root;

	for (;;) {
		size_t len = strcspn(p, "/");
		bool last = p[len] == '\0';
		struct rnode *c = last_child(dir, p, len);

		if (!c) {
			c = new_rnode(v, p, len, !last);
			if (!c || add_child(dir, c) < 0) {
				if (c)
					free(c->name);
				free(c);
				return -ENOMEM;
			}
		}
		if (last) {
			char warning[1024];

			if (c->is_dir) {
				log_warning("snapshot %s collides with a directory; not shown",
					    s->meta.name);
				return 0;
			}
			c->snap = s;
			/* The catalog is gone once the view is built: learn
			 * the verdict now. */
			if (drgw_restore_check_warning(v->gw->cat, &v->set, s,
						       warning, sizeof(warning))) {
				log_warning("%s", warning);
				c->warning = strdup(warning);
			}
			return 0;
		}
		if (!c->is_dir) {
			log_warning("snapshot %s is below a file of the same name; not shown",
				    s->meta.name);
			return 0;
		}
		dir = c;
		p += len + 1;
	}
}

/* strcmp with '/' before every other character: all paths below a
 * directory come right after it, and its entries in strcmp order. */
static int by_path(const void *a, const void *b)
{
	const unsigned char *x = (const unsigned char *)
		(*(const struct drgw_snapshot *const *)a)->meta.name;
	const unsigned char *y = (const unsigned char *)
		(*(const struct drgw_snapshot *const *)b)->meta.name;

	for (;; x++, y++) {
		int cx = *x == '/' ? 1 : *x, cy = *y == '/' ? 1 : *y;

		if (cx != cy || !cx)
			return cx - cy;
	}
}

static void free_tree(struct rnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n_children; i++)
		free_tree(n->children[i]);
	drgw_rfile_close(n->rf);
	free(n->children);
	free(n->warning);
	free(n->name);
	free(n);
}

static void log_line(void *arg, const char *line)
{
	log_warning("%s", line);
}

int drgw_restore_view_new(struct drgw_gateway *gw, struct drgw_reader *rd,
			  struct drgw_restore_view **ret, struct drgw_err *err)
{
	struct drgw_restore_view *v = calloc(1, sizeof(*v));
	const struct drgw_snapshot **shown_snaps = NULL;
	size_t shown = 0;
	int r;

	if (!v)
		return -ENOMEM;
	v->gw = gw;
	v->rd = rd;
	v->mount_ns = drgw_now_ns();
	v->uid = gw->cfg->view_uid >= 0 ? (uid_t)gw->cfg->view_uid : getuid();
	v->gid = gw->cfg->view_gid >= 0 ? (gid_t)gw->cfg->view_gid : getgid();
	v->umask = gw->cfg->view_umask;
	pthread_mutex_init(&v->lock, NULL);
	v->root = new_rnode(v, "", 0, true);
	if (!v->root) {
		r = -ENOMEM;
		goto fail;
	}
	r = drgw_remote_scan(gw, rd, &v->set, err);
	if (r == 0)
		r = drgw_remote_require_readable(&v->set, err);
	if (r < 0)
		goto fail;
	drgw_remote_warn_unreachable(&v->set, gw, log_line, NULL);
	shown_snaps = calloc(v->set.n + 1, sizeof(*shown_snaps));
	if (!shown_snaps) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < v->set.n; i++) {
		struct drgw_err stale = { 0 };

		if (!drgw_remote_is_latest(&v->set, i))
			continue;
		if (!gw->cfg->allow_older &&
		    drgw_remote_check_fresh(gw, &v->set.snaps[i],
					    gw->cfg->max_age_ns, &stale) < 0) {
			log_error("not shown: %s", stale.msg);
			continue;
		}
		shown_snaps[shown++] = &v->set.snaps[i];
	}
	qsort(shown_snaps, shown, sizeof(*shown_snaps), by_path);
	for (size_t i = 0; i < shown; i++) {
		r = place(v, shown_snaps[i]);
		if (r < 0)
			goto fail;
	}
	free(shown_snaps);
	shown_snaps = NULL;
	log_info("restore view: %zu snapshots (%zu versions) from %zu backends",
		 shown, v->set.n, gw->n_backends);
	for (size_t i = 0; i < v->set.n_bad; i++)
		log_warning("not shown: %s", v->set.bad[i].why);
	*ret = v;
	return 0;
fail:
	free(shown_snaps);
	drgw_restore_view_free(v);
	return r;
}

int drgw_restore_view_started(void *view, struct drgw_err *err)
{
	struct drgw_restore_view *v = view;
	struct drgw_err e = { 0 };
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/catalog.db", v->gw->cache_dir);
	if (!v->gw->cat && drgw_catalog_open(path, true, &v->gw->cat, &e) < 0)
		log_warning("cannot open %s again, so files open by reading their tails: %s",
			    path, e.msg);
	return 0;
}

struct drgw_restore_view *drgw_restore_view_free(struct drgw_restore_view *v)
{
	struct drgw_reader_stats st;
	char fetched[32];

	if (!v)
		return NULL;
	drgw_reader_get_stats(v->rd, &st);
	drgw_format_size(st.bytes_fetched, fetched, sizeof(fetched));
	if (st.requests)
		log_info("restore view: %llu chunk reads (%s; %llu chunks read ahead, %llu of them unused, %llu on demand; %llu decoded, %llu of them ahead)",
			 (unsigned long long)st.requests, fetched,
			 (unsigned long long)st.readahead_chunks,
			 (unsigned long long)st.readahead_unused,
			 (unsigned long long)st.demand_chunks,
			 (unsigned long long)st.decodes,
			 (unsigned long long)st.decodes_ahead);
	free_tree(v->root);
	drgw_remote_set_release(&v->set);
	pthread_mutex_destroy(&v->lock);
	free(v);
	return NULL;
}

static struct rnode *lookup(struct drgw_restore_view *v, const char *path)
{
	struct rnode *n = v->root;

	path++;
	while (n && *path) {
		size_t len = strcspn(path, "/");

		if (!n->is_dir)
			return NULL;
		n = child(n, path, len);
		path += len;
		if (*path == '/')
			path++;
	}
	return n;
}

static void fill_stat(const struct drgw_restore_view *v, const struct rnode *n,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_uid = v->uid;
	st->st_gid = v->gid;
	/* The view's owner may always read.  Group and others get read
	 * access only where the umask allows it and, for files, only where
	 * the original granted it: a restore never widens a backup's mode,
	 * and set-id bits never appear (the owner is not the original one). */
	if (n->is_dir) {
		st->st_mode = S_IFDIR | 0500 | (0555 & ~v->umask);
		st->st_nlink = 2;
		st->st_mtim.tv_sec = v->mount_ns / NSEC_PER_SEC;
	} else {
		const struct drgw_snap_meta *m = &n->snap->meta;

		st->st_mode = S_IFREG | 0400 | (m->mode & 0044 & ~v->umask);
		st->st_nlink = 1;
		st->st_size = (off_t)m->size;
		st->st_blocks = (blkcnt_t)((m->size + 511) / 512);
		st->st_mtim.tv_sec = m->mtime_ns / NSEC_PER_SEC;
		st->st_mtim.tv_nsec = m->mtime_ns % NSEC_PER_SEC;
	}
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
	st->st_blksize = 1 << 20;
}

static void *rv_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* Nothing here ever changes: let the kernel cache everything. */
	cfg->entry_timeout = 3600;
	cfg->attr_timeout = 3600;
	cfg->negative_timeout = 3600;
	cfg->kernel_cache = 1;
	cfg->use_ino = 1;
	conn->max_readahead = 1 << 20;
	return fuse_get_context()->private_data;
}

static int rv_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct drgw_restore_view *v = view_of();
	struct rnode *n = lookup(v, path);

	if (!n)
		return -ENOENT;
	fill_stat(v, n, st);
	return 0;
}

static int rv_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct drgw_restore_view *v = view_of();
	struct rnode *n = lookup(v, path);

	if (!n)
		return -ENOENT;
	if (!n->is_dir)
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	for (size_t i = 0; i < n->n_children; i++) {
		struct stat st;

		fill_stat(v, n->children[i], &st);
		if (filler(buf, n->children[i]->name, &st, 0, 0))
			break;
	}
	return 0;
}

/* Opens the first location of n's snapshot, from first on, that works,
 * backends that failed lately last.  Network I/O: called without the
 * view's lock. */
static int open_any(struct drgw_restore_view *v, const struct rnode *n,
		    size_t first, struct drgw_rfile **ret_rf, size_t *ret_loc)
{
	const struct drgw_snapshot *s = n->snap;
	int r = -EIO;

	for (int failing = 0; failing < 2; failing++) {
		for (size_t i = 0; i < s->n_locs; i++) {
			size_t li = (first + i) % s->n_locs;
			size_t b = s->locs[li].backend;
			struct drgw_err err = { 0 };

			if (backend_failing(v, b) != failing)
				continue;
			r = drgw_remote_open(v->gw, v->rd, s, li, false, ret_rf,
					     &err);
			if (r == 0) {
				*ret_loc = li;
				return 0;
			}
			log_error("cannot open %s: %s", s->meta.name, err.msg);
			if (r != -ENOMEM)
				backend_failed(v, b);
		}
	}
	return r;
}

static int rv_open(const char *path, struct fuse_file_info *fi)
{
	struct drgw_restore_view *v = view_of();
	struct rnode *n = lookup(v, path);
	struct drgw_rfile *rf = NULL;
	size_t loc = 0;
	bool have;

	if (!n)
		return -ENOENT;
	if (n->is_dir)
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;
	if (n->warning)
		log_warning("%s", n->warning);
	pthread_mutex_lock(&v->lock);
	have = n->rf != NULL;
	if (have)
		n->opens++;
	pthread_mutex_unlock(&v->lock);
	if (!have) {
		int r = open_any(v, n, 0, &rf, &loc);

		if (r < 0)
			return r == -ENOMEM ? r : -EIO;
		pthread_mutex_lock(&v->lock);
		if (n->rf) {
			drgw_rfile_close(rf); /* another open won the race */
		} else {
			n->rf = rf;
			n->rf_loc = loc;
		}
		n->opens++;
		pthread_mutex_unlock(&v->lock);
	}
	fi->fh = (uintptr_t)n;
	fi->keep_cache = 1;
	return 0;
}

/* The file's current rfile and its location, referenced for the caller. */
static struct drgw_rfile *current_rfile(struct drgw_restore_view *v,
					struct rnode *n, size_t *ret_loc)
{
	struct drgw_rfile *rf;

	pthread_mutex_lock(&v->lock);
	rf = n->rf;
	*ret_loc = n->rf_loc;
	drgw_rfile_ref(rf);
	pthread_mutex_unlock(&v->lock);
	return rf;
}

static int rv_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct drgw_restore_view *v = view_of();
	struct rnode *n = (struct rnode *)(uintptr_t)fi->fh;

	for (size_t attempt = 0; attempt < n->snap->n_locs; attempt++) {
		size_t loc, next_loc;
		struct drgw_rfile *rf = current_rfile(v, n, &loc), *next;
		struct drgw_err err = { 0 };
		ssize_t got = drgw_rfile_pread(rf, buf, size, (uint64_t)off,
					       &err);

		if (got >= 0) {
			drgw_rfile_close(rf);
			return (int)got;
		}
		log_error("cannot read %s at offset %lld from %s: %s",
			  n->snap->meta.name, (long long)off,
			  v->gw->backend_names[n->snap->locs[loc].backend],
			  err.msg);
		backend_failed(v, n->snap->locs[loc].backend);
		/* Another backend may hold a good copy of this version. */
		if (n->snap->n_locs > 1 &&
		    open_any(v, n, loc + 1, &next, &next_loc) == 0) {
			pthread_mutex_lock(&v->lock);
			if (n->rf == rf) {
				n->rf = next;
				n->rf_loc = next_loc;
				next = rf; /* drop the reference n->rf had */
			}
			pthread_mutex_unlock(&v->lock);
			drgw_rfile_close(next);
		}
		drgw_rfile_close(rf);
	}
	return -EIO;
}

static int rv_release(const char *path, struct fuse_file_info *fi)
{
	struct drgw_restore_view *v = view_of();
	struct rnode *n = (struct rnode *)(uintptr_t)fi->fh;

	pthread_mutex_lock(&v->lock);
	if (--n->opens == 0) {
		drgw_rfile_close(n->rf);
		n->rf = NULL;
	}
	pthread_mutex_unlock(&v->lock);
	return 0;
}

static int rv_statfs(const char *path, struct statvfs *st)
{
	struct drgw_restore_view *v = view_of();
	uint64_t total = 0;

	for (size_t i = 0; i < v->set.n; i++)
		if (drgw_remote_is_latest(&v->set, i))
			total += v->set.snaps[i].meta.size;
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_blocks = total / 4096 + 1;
	st->f_files = v->next_ino;
	st->f_namemax = 255;
	return 0;
}

static const struct fuse_operations restore_ops = {
	.init = rv_init,
	.getattr = rv_getattr,
	.readdir = rv_readdir,
	.open = rv_open,
	.read = rv_read,
	.release = rv_release,
	.statfs = rv_statfs,
};

const struct fuse_operations *drgw_fs_restore_ops(void)
{
	return &restore_ops;
}
