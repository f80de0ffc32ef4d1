/* SPDX-License-Identifier: MIT */
/*
 * The encoder thread: sealed versions become objects in <cache>/spool/,
 * oldest first.  An object is written to "<vid>.drgw.tmp", fsync()ed and
 * renamed to "<vid>.drgw" before the catalog marks the version encoded, so
 * a crash leaves either no object (the version is encoded again) or a
 * complete one.  Every backend then uploads that same object.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "encode.h"
#include "gateway.h"
#include "log.h"
#include "sqlcheck.h"
#include "stream.h"
#include "watch.h"
#include "testhook.h"

/* Free space kept for the catalog and the log when encoding: 16 MiB, or
 * an eighth of a smaller cache disk. */
static uint64_t spool_margin(const struct statvfs *sv)
{
	uint64_t total = (uint64_t)sv->f_blocks * sv->f_frsize;

	return total / 8 < (16ULL << 20) ? total / 8 : 16ULL << 20;
}

void drgw_spool_name(const char *vid, char *buf, size_t size)
{
	snprintf(buf, size, "%s.drgw", vid);
}

struct watch {
	struct drgw_gateway *gw;
	struct drgw_node *node;
	uint64_t gen;
	/* Without a node (a held file), a handle opened before the unlink
	 * could still write, and with one, a hard link's writes count on the
	 * other name's node: watch the inode's ctime and size then. */
	int fd;
	struct stat st;
	/* Every byte was read, and whether it changed meanwhile: what is
	 * written later is the next version's (see annotate()). */
	bool read_all;
	int stale;
};

/* The encoder's check(): has anyone touched the file since we started? */
static int watch_check(void *arg)
{
	struct watch *w = arg;

	if (atomic_load(&w->gw->exiting))
		return -ECANCELED;
	if (w->read_all)
		return w->stale;
	if (w->node && atomic_load(&w->node->gen) != w->gen)
		return -ESTALE;
	if (w->fd >= 0) {
		struct stat now;

		if (fstat(w->fd, &now) < 0 || now.st_size != w->st.st_size ||
		    now.st_ctim.tv_sec != w->st.st_ctim.tv_sec ||
		    now.st_ctim.tv_nsec != w->st.st_ctim.tv_nsec)
			return -ESTALE;
		/* No mount: nothing counts writes; ask for writers. */
		if (w->gw->watch && drgw_watch_encode_check(w->gw, w->fd) < 0)
			return -ESTALE;
	}
	return 0;
}

/* Takes a reference on the node of name, creating it if the file exists
 * but was not opened since the daemon started, and reads its change
 * counter into *ret_gen.  NULL if it was unlinked or is open for writing
 * right now (*ret_busy).
 *
 * The counter is read under the same lock as the writer count: a writer
 * whose open comes later bumps it after we read it.  With passthrough its
 * writes never bump it, so a counter read after that open (outside the
 * lock) would miss it. */
static struct drgw_node *hold_node(struct drgw_gateway *gw, const char *name,
				   bool *ret_busy, uint64_t *ret_gen)
{
	struct drgw_node *n;

	*ret_busy = false;
	if (!gw->nodes) /* no mount: watch.c checks for writers */
		return NULL;
	drgw_nodes_lock(gw->nodes);
	n = drgw_nodes_get_locked(gw->nodes, name);
	if (n && n->writers > 0) {
		*ret_busy = true;
		drgw_nodes_put_locked(gw->nodes, n);
		n = NULL;
	}
	if (n)
		*ret_gen = atomic_load(&n->gen);
	drgw_nodes_unlock(gw->nodes);
	return n;
}

static void drop_node(struct drgw_gateway *gw, struct drgw_node *n)
{
	if (!n)
		return;
	drgw_nodes_lock(gw->nodes);
	drgw_nodes_put_locked(gw->nodes, n);
	drgw_nodes_unlock(gw->nodes);
}

/* The base v can be an increment of: the newest earlier version of the
 * same name, else of its series (shard-1.db and shard-2.db are one series
 * but two databases), on every backend, whose block map the cache still
 * has, written for the keys this gateway writes for (after a key change,
 * an increment of an older object would need the old keys too).  False
 * (a full object) when there is none. */
static bool load_base(struct drgw_gateway *gw, const struct drgw_version *v,
		      struct drgw_blockmap *base)
{
	struct drgw_version b;
	uint8_t keys[32];
	bool ok = false;

	if (!gw->cfg->incremental || v->size < gw->cfg->incremental_min_size)
		return false;
	for (int same_name = 1; !ok && same_name >= 0; same_name--) {
		if (drgw_catalog_delta_base(gw->cat, v->name, same_name, v->id,
					    gw->backend_names, gw->n_backends,
					    &b) < 0)
			continue;
		ok = drgw_blockmap_load(gw->blocks_fd, b.vid, base) == 0;
		if (!ok)
			drgw_version_release(&b);
	}
	if (!ok)
		return false;
	drgw_keyring_writer_digest(&gw->keys, keys);
	if (memcmp(keys, base->keys, sizeof(keys))) {
		log_info("%s was written for other keys: %s is stored whole",
			 b.name, v->name);
		drgw_blockmap_release(base);
		ok = false;
	}
	drgw_version_release(&b);
	return ok;
}

/* "vid,vid" of the objects an incremental map takes blocks from (all its
 * references but the object itself, which is last). */
static char *ref_list(const struct drgw_blockmap *m)
{
	size_t len = 1;
	char *s;

	for (size_t k = 0; k + 1 < m->n_refs; k++)
		len += strlen(m->refs[k].vid) + 1;
	char *p = s = calloc(1, len);

	for (size_t k = 0; s && k + 1 < m->n_refs; k++) {
		size_t n = strlen(m->refs[k].vid);

		if (k)
			*p++ = ',';
		memcpy(p, m->refs[k].vid, n);
		p += n;
	}
	return s;
}

/* The maps a series keeps: of the newest version of each name among its
 * newest SERIES_MAPS versions (several databases may share a series). */
#define SERIES_MAPS 4

struct forget {
	struct drgw_gateway *gw;
	char *names[SERIES_MAPS];
	unsigned n_names, seen;
};

static int forget_map(void *arg, const struct drgw_version *v)
{
	struct forget *f = arg;
	char name[128];
	bool kept = false;

	/* Newest first: a name's first version within the window stays.
	 * Versions not encoded yet have no map to keep or count. */
	if (v->state != DRGW_VERSION_ENCODED)
		return 0;
	if (f->seen++ < SERIES_MAPS) {
		kept = true;
		for (unsigned i = 0; kept && i < f->n_names; i++)
			kept = strcmp(f->names[i], v->name) != 0;
		if (kept && !(f->names[f->n_names] = strdup(v->name)))
			return -ENOMEM;
		f->n_names += kept;
	}
	if (!kept) {
		snprintf(name, sizeof(name), "%s.map", v->vid);
		unlinkat(f->gw->blocks_fd, name, 0);
	}
	return 0;
}

/* Keeps the block map of v, the newest version of its series, and of the
 * newest version of the series' other recent names, and drops the
 * others': only those are ever a base.  A failure only costs the next
 * version its increment. */
static void keep_map(struct drgw_gateway *gw, const struct drgw_version *v,
		     struct drgw_blockmap *m)
{
	struct forget f = { .gw = gw };

	if (!m->hash)
		return;
	drgw_keyring_writer_digest(&gw->keys, m->keys);
	drgw_catalog_each_in_series(gw->cat, v->name, forget_map, &f);
	for (unsigned i = 0; i < f.n_names; i++)
		free(f.names[i]);
	if (drgw_blockmap_save(gw->blocks_fd, v->vid, m) < 0)
		log_warning("cannot keep the block map of %s: its next version will be stored whole",
			    v->name);
}

/* What the footer says about the version besides its bytes: the SQLite
 * check (waited for here, so that it travels with the object) and the
 * problem the writer saw (docs/FORMAT.md, footer extensions 3 and 4). */
struct notes {
	struct drgw_version *v;
	struct watch *w;
	int fd;
	struct drgw_sqlcheck *check; /* NULL once finished */
	bool checked;
	char msg[sizeof(((struct drgw_version *)0)->check.message) + 64];
};

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Called once the encoder has read every byte, before the footer. */
static void annotate(void *arg, struct drgw_obj_ext *ext)
{
	struct notes *n = arg;
	const struct drgw_sqlcheck_result *c = &n->v->check;
	struct watch *w = n->w;
	struct stat before, after;

	/* The object is what was read: a writer need not wait for the
	 * SQLite check (a read lease would hold it), and a write from now
	 * on makes the next version instead of voiding this one. */
	w->stale = watch_check(w);
	w->read_all = true;
	fstat(n->fd, &before);
	if (w->gw->watch)
		drgw_watch_encode_release(w->gw, n->fd);
	if (n->check) {
		n->checked = drgw_sqlcheck_finish(n->check, true, n->v->vid,
						  &n->v->check) == 0;
		n->check = NULL;
		/* A verdict on bytes that changed under the check is none. */
		if (n->checked && w->stale == 0 &&
		    (fstat(n->fd, &after) < 0 || !same_stat(&before, &after) ||
		     (w->node && atomic_load(&w->node->gen) != w->gen))) {
			log_info("%s changed while its SQLite check ran: version %s is not checked",
				 n->v->name, n->v->vid);
			n->checked = false;
		}
	}
	if (n->checked && c->verdict == DRGW_SQLCHECK_OK) {
		ext->check = DRGW_CHECK_OK;
	} else if (n->checked && drgw_sqlcheck_failed(c->verdict)) {
		drgw_sqlcheck_describe(c, n->msg, sizeof(n->msg));
		ext->check = DRGW_CHECK_FAILED;
		ext->check_msg = n->msg;
	}
	ext->problem = n->v->problem;
}

/* Encodes v into spool/<vid>.drgw.  Uploads that can follow the encoder
 * start here (*ret_stream, streaming[i]); the caller ends them. */
static int write_object(struct drgw_gateway *gw, struct drgw_version *v,
			int in_fd, struct watch *w, struct notes *notes,
			struct drgw_stream **ret_stream,
			bool streaming[DRGW_MAX_BACKENDS],
			struct drgw_encode_result *res, struct drgw_err *err)
{
	struct drgw_encode_opts opts = {
		.chunk_size = gw->cfg->chunk_size,
		.level = gw->cfg->compression_level,
		.threads = gw->cfg->encode_threads,
		.check = watch_check,
		.check_arg = w,
		.repo = gw->repo_id,
		.limits = {
			.max_changed = gw->cfg->incremental_max_changed / 100.0,
			.max_depth = gw->cfg->incremental_max_chain,
			.max_read = gw->cfg->incremental_max_read / 100.0,
		},
		.annotate = annotate,
		.annotate_arg = notes,
	};
	struct drgw_blockmap base = { 0 };
	struct drgw_obj_meta *meta;
	char name[128], tmp[140];
	uint8_t head[100];
	int out_fd, r;

	meta = calloc(1, sizeof(*meta));
	if (!meta)
		return -ENOMEM;
	meta->size = v->size;
	meta->mtime_ns = v->mtime_ns;
	meta->created_ns = v->created_ns;
	meta->mode = v->mode;
	drgw_strlcpy(meta->name, v->name, sizeof(meta->name));
	drgw_strlcpy(meta->vid, v->vid, sizeof(meta->vid));

	/* Encoding into a disk that cannot hold even the compressed object
	 * would fill it for nothing, down to the catalog that must record
	 * the failure.  (What zstd will save is unknown; half is typical of
	 * databases, so the check asks for that plus a margin.) */
	{
		struct statvfs sv;
		uint64_t need = v->size / 2;

		if (fstatvfs(gw->spool_fd, &sv) == 0 &&
		    (uint64_t)sv.f_bavail * sv.f_frsize <
			    need + spool_margin(&sv)) {
			free(meta);
			return -ENOSPC;
		}
	}
	drgw_spool_name(v->vid, name, sizeof(name));
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	out_fd = openat(gw->spool_fd, tmp,
			O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out_fd < 0) {
		r = -errno;
		drgw_err_set(err, "cannot create spool object: %s", strerror(-r));
		free(meta);
		return r;
	}
	*ret_stream = drgw_stream_begin(
		gw, v, tmp,
		drgw_obj_size_bound(v->size, drgw_obj_pick_chunk_size(
						     gw->cfg->chunk_size, v->size)),
		streaming);
	if (*ret_stream) {
		opts.progress = drgw_stream_progress;
		opts.progress_arg = *ret_stream;
	}
	if (gw->cfg->incremental && v->size >= gw->cfg->incremental_min_size &&
	    drgw_pread_full(in_fd, head, sizeof(head), 0) == (ssize_t)sizeof(head)) {
		opts.block = drgw_delta_block_size(head, sizeof(head));
		if (load_base(gw, v, &base))
			opts.base = &base;
	}
	r = drgw_encode(in_fd, meta, &gw->keys, &opts, out_fd, res, err);
	drgw_blockmap_release(&base);
	if (r == 0 && fsync(out_fd) < 0) {
		r = -errno;
		drgw_err_set(err, "cannot fsync spool object: %s", strerror(-r));
	}
	close(out_fd);
	/* The last look: a change after this point is a new version. */
	if (r == 0)
		r = watch_check(w);
	if (r == 0 && renameat(gw->spool_fd, tmp, gw->spool_fd, name) < 0) {
		r = -errno;
		drgw_err_set(err, "cannot publish spool object: %s",
			     strerror(-r));
	}
	if (r == 0 && fsync(gw->spool_fd) < 0) {
		r = -errno;
		drgw_err_set(err, "cannot fsync spool: %s", strerror(-r));
	}
	if (r < 0) {
		unlinkat(gw->spool_fd, tmp, 0);
	} else {
		drgw_hex(meta->sha256, 32, v->sha256);
		drgw_hex(res->object_sha256, 32, v->object_sha256);
		v->stored_size = res->stored_size;
		v->delta_depth = res->incremental ? res->depth : 0;
		free(v->delta_refs);
		v->delta_refs = res->incremental ? ref_list(&res->map) : NULL;
	}
	free(meta);
	return r;
}

/* Encodes one sealed version.  Returns -EIO when even the catalog could
 * not record the outcome (a full disk): the caller then waits before it
 * tries again, since the version stays due. */
static int encode_version(struct drgw_gateway *gw, struct drgw_version *v)
{
	struct drgw_err err = { 0 };
	struct watch w = { .gw = gw, .fd = -1 };
	struct drgw_encode_result res = { 0 };
	struct drgw_stream *stream = NULL;
	struct notes notes = { .v = v, .w = &w };
	bool streaming[DRGW_MAX_BACKENDS] = { false };
	char key[128], sz[32], st_sz[32];
	int64_t t0 = drgw_mono_ns();
	struct stat st;
	bool busy, held = false;
	int fd = -1, r, ret = 0;

	w.node = hold_node(gw, v->name, &busy, &w.gen);
	if (busy) {
		/* Being written again: encode once the writer is done. */
		return drgw_catalog_reschedule_version(
			       gw->cat, v->id,
			       drgw_now_ns() + gw->cfg->settle_ns) < 0 ? -EIO : 0;
	}
	fd = drgw_openat_beneath(gw->files_fd, v->name, O_RDONLY);
	if (fd == -ENOENT) {
		/* Removed before we got to it: its last content was held. */
		drop_node(gw, w.node);
		w.node = NULL;
		held = true;
		fd = openat(gw->held_fd, v->vid, O_RDONLY | O_CLOEXEC);
		fd = fd < 0 ? -errno : fd;
	}
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = fd < 0 ? fd : -EINVAL;
		if (r == -ENOENT || r == -EINVAL || r == -ELOOP ||
		    r == -EXDEV) {
			log_warning("%s is gone or no longer a regular file; version %s is not replicated",
				    v->name, v->vid);
			drgw_catalog_delete_version(gw->cat, v->id);
		} else {
			log_error("cannot open %s for encoding: %s", v->name,
				  strerror(-r));
			drgw_catalog_set_encode_failed(
				gw->cat, v->id, strerror(-r),
				drgw_now_ns() +
					drgw_gateway_backoff(gw, v->attempts));
		}
		goto out;
	}
	if (gw->watch && drgw_watch_encode_begin(gw, fd, &st) == -EBUSY) {
		/* Open for writing (no mount): encode once it is done. */
		if (drgw_catalog_reschedule_version(
			    gw->cat, v->id, drgw_now_ns() + gw->cfg->settle_ns) < 0)
			ret = -EIO;
		goto out;
	}
	if (!w.node || st.st_nlink > 1) {
		if (w.node)
			drgw_wait_ctime_past(fd, &st);
		w.fd = fd;
		w.st = st;
	}
	/* Record what is encoded, which may be newer than what was sealed. */
	drgw_version_stamp(v, &st);

	/* The SQLite check reads the same bytes while they are encoded (a
	 * held file's journal and WAL are gone with its name). */
	notes.fd = fd;
	notes.check = drgw_sqlcheck_start(fd, held ? -1 : gw->files_fd,
					  v->name, gw->cfg->check_sqlite,
					  gw->cfg->check_sqlite_timeout_ns,
					  &gw->exiting);
	r = write_object(gw, v, fd, &w, &notes, &stream, streaming, &res, &err);
	if (notes.check)
		notes.checked = drgw_sqlcheck_finish(notes.check, r == 0, v->vid,
						     &v->check) == 0;
	if (notes.checked && r == 0)
		drgw_catalog_set_check(gw->cat, v->id, &v->check);
	if (r < 0) {
		/* Let go of the spool object now: an upload reading it keeps
		 * its space allocated, and the catalog may need that space. */
		drgw_stream_finish(stream, false, 0);
		stream = NULL;
	}
	if (r == -ESTALE) {
		log_info("%s changed while it was being encoded; encoding it again once it settles",
			 v->name);
		drgw_catalog_reschedule_version(
			gw->cat, v->id, drgw_now_ns() + gw->cfg->settle_ns);
		goto out;
	}
	if (r == -ECANCELED)
		goto out;
	if (r < 0) {
		char msg[sizeof(err.msg) + 256];

		if (r == -ENOSPC || r == -EDQUOT)
			snprintf(msg, sizeof(msg),
				 "cache disk full: cannot encode %s into %s/spool (needs about %llu bytes); free space there",
				 v->name, gw->cache_dir,
				 (unsigned long long)v->size);
		else
			snprintf(msg, sizeof(msg), "cannot encode %s: %s",
				 v->name, err.msg);
		if (drgw_catalog_set_encode_failed(
			    gw->cat, v->id, msg,
			    drgw_now_ns() +
				    drgw_gateway_backoff(gw, v->attempts)) < 0)
			ret = -EIO;
		log_error("%s", msg);
		goto out;
	}

	v->encoded_ns = drgw_now_ns();
	drgw_spool_name(v->vid, key, sizeof(key));
	drgw_test_point("encode-published");
	r = drgw_catalog_set_encoded(gw->cat, v, gw->backend_names,
				     gw->n_backends, streaming, key);
	drgw_test_point("encode-committed");
	if (r == -ESTALE) {
		/* The file changed after our last look but before the commit
		 * (seal.c made the version due again): this object is old. */
		log_info("%s changed while it was being encoded; encoding it again",
			 v->name);
		unlinkat(gw->spool_fd, key, 0);
		goto out;
	}
	if (r < 0) {
		/* The spool object stays; cleanup removes it next start. */
		log_error("cannot record encoded version %s: %s", v->vid,
			  strerror(-r));
		goto out;
	}
	unlinkat(gw->held_fd, v->vid, 0);
	keep_map(gw, v, &res.map);
	/* Committed: the uploads that followed the encoder may finish. */
	drgw_stream_finish(stream, true, v->stored_size);
	stream = NULL;
	drgw_format_size(v->size, sz, sizeof(sz));
	drgw_format_size(v->stored_size, st_sz, sizeof(st_sz));
	if (res.incremental)
		log_info("encoded %s version %s incrementally: %s -> %s (%.1f%% of it changed; %zu objects referenced, %u increments since the last full one) in %.2fs",
			 v->name, v->vid, sz, st_sz,
			 v->size ? 100.0 * (double)res.data_size / (double)v->size : 0.0,
			 res.n_refs, res.depth,
			 (double)(drgw_mono_ns() - t0) / NSEC_PER_SEC);
	else
		log_info("encoded %s version %s: %s -> %s in %.2fs", v->name,
			 v->vid, sz, st_sz,
			 (double)(drgw_mono_ns() - t0) / NSEC_PER_SEC);
	drgw_gateway_kick_replicators(gw);
out:
	drgw_blockmap_release(&res.map);
	drgw_stream_finish(stream, false, 0); /* abandoned, if not committed */
	if (fd >= 0)
		close(fd);
	drop_node(gw, w.node);
	return ret;
}

void *drgw_encoder_main(void *arg)
{
	struct drgw_gateway *gw = arg;
	uint64_t seen = 0;

	while (!atomic_load(&gw->exiting)) {
		struct drgw_version v;
		int64_t due;
		int r;

		pthread_mutex_lock(&gw->lock);
		gw->encoding = true;
		pthread_mutex_unlock(&gw->lock);
		r = drgw_catalog_next_sealed(gw->cat, drgw_now_ns(), &v);
		if (r == 0) {
			if (encode_version(gw, &v) < 0)
				/* The version stays due: do not spin on it. */
				drgw_gateway_wait(gw, &gw->encode_cond,
						  &gw->encode_kicks, &seen,
						  gw->cfg->retry_min_ns);
			drgw_version_release(&v);
		}
		pthread_mutex_lock(&gw->lock);
		gw->encoding = false;
		pthread_mutex_unlock(&gw->lock);
		if (r == 0)
			continue;
		due = drgw_catalog_next_sealed_due(gw->cat);
		drgw_gateway_wait(gw, &gw->encode_cond, &gw->encode_kicks, &seen,
				  due == INT64_MAX ? INT64_MAX :
						     due - drgw_now_ns());
	}
	return NULL;
}

/* Should spool entry name stay?  Only the objects of encoded versions that
 * still wait for a replica somewhere. */
static bool spool_keep(struct drgw_gateway *gw, const char *name)
{
	char vid[64];
	size_t n = strlen(name);
	struct drgw_version v;
	bool replicated = true;
	int r;

	if (n < 6 || n - 5 >= sizeof(vid) || strcmp(name + n - 5, ".drgw"))
		return false;
	memcpy(vid, name, n - 5);
	vid[n - 5] = '\0';
	r = drgw_catalog_get_version(gw->cat, vid, &v);
	if (r < 0)
		return r != -ENOENT; /* when in doubt, keep */
	if (v.state == DRGW_VERSION_ENCODED &&
	    drgw_catalog_all_replicated(gw->cat, v.id, &replicated) < 0)
		replicated = false; /* when in doubt, keep */
	drgw_version_release(&v);
	return v.state == DRGW_VERSION_ENCODED && !replicated;
}

void drgw_spool_hold(struct drgw_gateway *gw, const char *name)
{
	struct drgw_version v;

	if (drgw_catalog_latest_version(gw->cat, name, &v) < 0)
		return;
	if (v.state == DRGW_VERSION_SEALED) {
		/* A link, not a copy: the content stays where it is, under a
		 * name the mount cannot reach.  The latest content wins. */
		unlinkat(gw->held_fd, v.vid, 0);
		if (linkat(gw->files_fd, name, gw->held_fd, v.vid, 0) < 0)
			log_error("cannot keep %s for encoding after it was removed: %s",
				  name, strerror(errno));
	}
	drgw_version_release(&v);
}

/* Should held file name (a version id) stay?  Only while its version
 * waits to be encoded. */
static bool held_keep(struct drgw_gateway *gw, const char *name)
{
	struct drgw_version v;
	int r = drgw_catalog_get_version(gw->cat, name, &v);
	bool sealed = r == 0 && v.state == DRGW_VERSION_SEALED;

	if (r == 0)
		drgw_version_release(&v);
	return sealed || (r < 0 && r != -ENOENT); /* when in doubt, keep */
}

/* Removes the entries of directory dir_fd that keep() does not want. */
static int sweep(struct drgw_gateway *gw, int dir_fd,
		 bool (*keep)(struct drgw_gateway *gw, const char *name))
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || keep(gw, de->d_name))
			continue;
		log_debug("removing stale entry %s", de->d_name);
		unlinkat(dir_fd, de->d_name, 0);
	}
	closedir(d);
	return 0;
}

int drgw_spool_cleanup(struct drgw_gateway *gw)
{
	int r = sweep(gw, gw->spool_fd, spool_keep);

	/* Held files of versions that are encoded (or gone) are not needed. */
	sweep(gw, gw->held_fd, held_keep);
	return r;
}
