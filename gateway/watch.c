/* SPDX-License-Identifier: MIT */
/*
 * The working set without FUSE; see watch.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "watch.h"
#include "writers.h"

/* How often `drgw run` looks again at a file still open for writing once
 * its command exited. */
#define BUSY_POLL_NS (100 * NSEC_PER_MSEC)
/* Full scans when some directory could not be watched (inotify limits). */
#define RESCAN_NS (30 * NSEC_PER_SEC)
#define MAX_DEPTH 64
/* Without a lease, /proc is scanned at most this often during an encode
 * (the size and ctime checks of every chunk catch the writes themselves). */
#define PROC_CHECK_NS NSEC_PER_SEC
#define DIR_MASK                                                           \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |        \
	 IN_ATTRIB | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR |          \
	 IN_DONT_FOLLOW | IN_EXCL_UNLINK)

struct wd_entry {
	int wd;
	char *dir; /* relative to the root, "" for the root */
};

struct drgw_watch {
	struct drgw_gateway *gw;
	enum drgw_watch_kind kind;
	/* realpath of the directory: the baseline's key, and for messages */
	char dir[PATH_MAX];
	/* The cache directory, if it is below dir: never scanned. */
	dev_t cache_dev;
	ino_t cache_ino;
	int wake_fd;
	unsigned unsealed;
	bool warned_hidden, warned_unknown; /* each said once */
	/* DRGW_WATCH_RUN, set before sealing stops: drgw_watch_run_ended() */
	int64_t run_deadline;
	unsigned leftover_procs;
	bool leftover_base; /* a killed run's baseline was loaded */
	/* Read by drgw_watch_pending() from other threads: files left to
	 * seal (RUN: 1 until the final scan counted them), and whether the
	 * last round after sealing stopped is over. */
	atomic_uint run_left;
	atomic_bool final_done;

	/* DRGW_WATCH_RUN: the baseline, sorted by name. */
	struct drgw_file_state *base;
	size_t n_base, cap_base;

	/* DRGW_WATCH_DAEMON, used by the watch thread only. */
	int ino_fd;
	struct wd_entry *wds; /* sorted by wd */
	size_t n_wds, cap_wds;
	bool rescan, rebuild;
	bool unwatched; /* some directory has no watch: rescan periodically */
	int64_t next_rescan;
	/* Files waiting out the settle delay: seal_at (monotonic), and in
	 * last_write_ns the ctime a seal was last put off for. */
	struct drgw_nodes *pending;

	/* The encoder's, between encode_begin() and the end of the encode. */
	bool enc_leased;
	int64_t enc_last_proc;
};

static bool is_cache_dir(const struct drgw_watch *w, const struct stat *st)
{
	return st->st_dev == w->cache_dev && st->st_ino == w->cache_ino;
}

/* --- walking the directory --- */

struct walker {
	struct drgw_watch *w;
	/* Called for every regular file and every directory below the root
	 * (and for the root, rel ""); non-zero stops the walk. */
	int (*file)(struct walker *k, const char *rel, const struct stat *st);
	int (*dir)(struct walker *k, const char *rel);
	void *arg;
};

static int walk_dir(struct walker *k, const char *rel, int depth)
{
	struct drgw_gateway *gw = k->w->gw;
	struct dirent *de;
	struct stat st;
	int fd, r = 0;
	DIR *d;

	if (depth > MAX_DEPTH)
		return 0;
	fd = drgw_openat_beneath(gw->files_fd, *rel ? rel : ".",
				 O_RDONLY | O_DIRECTORY);
	if (fd < 0 && *rel && (fd == -EACCES || fd == -EPERM)) {
		/* lost+found on a volume's root, another user's directory */
		log_warning("cannot read directory %s/%s: %s; the files below it are not backed up",
			    k->w->dir, rel, strerror(-fd));
		return 0;
	}
	if (fd < 0)
		return fd == -ENOENT || fd == -ENOTDIR ? 0 : fd;
	if (fstat(fd, &st) < 0 || is_cache_dir(k->w, &st) ||
	    (k->dir && (r = k->dir(k, rel)) != 0)) {
		close(fd);
		return r;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (r == 0 && (de = readdir(d))) {
		char path[PATH_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel,
				     *rel ? "/" : "", de->d_name) >= sizeof(path))
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			r = walk_dir(k, path, depth + 1);
		else if (S_ISREG(st.st_mode) && k->file &&
			 !drgw_config_excluded(gw->cfg, path))
			r = k->file(k, path, &st);
	}
	closedir(d);
	return r;
}

/* --- sealing --- */

/* Something could not tell whether a file is written: say so once. */
static void warn_hidden(struct drgw_watch *w, const struct drgw_writer *who)
{
	if (w->warned_hidden || who->by_lease || !who->hidden)
		return;
	w->warned_hidden = true;
	log_warning("cannot see the open files of %u processes of other users: a file one of them writes may be sealed before it is finished; run drgw as the user that writes %s (docs/OPERATIONS.md, \"Without FUSE\")",
		    who->hidden, w->dir);
}

enum { SEALED_OR_NOTHING, BUSY, NOT_SETTLED, UNREADABLE };

/*
 * Looks at path once and seals it if it has changed: SEALED_OR_NOTHING
 * (also when it is gone, excluded or the same as its newest version), BUSY
 * (open for writing; *who says by whom), NOT_SETTLED (changed less than
 * the settle delay ago; *ret_wait_ns says how long to wait), UNREADABLE
 * (drgw may not read it; logged) or -errno when the catalog failed.
 */
static int try_seal(struct drgw_watch *w, const char *path, bool settle,
		    struct drgw_writer *who, int64_t *ret_wait_ns)
{
	struct drgw_gateway *gw = w->gw;
	struct drgw_version last = { 0 }, v = { 0 };
	bool have_last;
	struct stat st;
	int fd, r;

	memset(who, 0, sizeof(*who));
	fd = drgw_openat_beneath(gw->files_fd, path, O_RDONLY | O_NONBLOCK);
	if (fd == -EACCES || fd == -EPERM) {
		log_error("cannot read %s/%s: %s; it is not backed up (run drgw as a user that may read it)",
			  w->dir, path, strerror(-fd));
		r = UNREADABLE;
		goto out;
	}
	if (fd == -EWOULDBLOCK) {
		r = BUSY; /* another process holds a write lease on it */
		goto out_keep;
	}
	/* Gone, a symlink, a socket: nothing to seal.  Anything else (out
	 * of descriptors, an I/O error) is tried again, never dropped. */
	if (fd < 0 && fd != -ENOENT && fd != -ENOTDIR && fd != -ELOOP &&
	    fd != -EXDEV && fd != -ENXIO && fd != -ENODEV) {
		log_warning("cannot open %s/%s to seal it: %s; trying again",
			    w->dir, path, strerror(-fd));
		r = fd;
		goto out_keep;
	}
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    drgw_config_excluded(gw->cfg, path)) {
		r = SEALED_OR_NOTHING;
		goto out;
	}
	if (!drgw_name_ok(path)) {
		log_error("not backing up a file whose name is not valid UTF-8 or has control characters (%zu bytes); rename it",
			  strlen(path));
		r = SEALED_OR_NOTHING;
		goto out;
	}
	have_last = drgw_catalog_latest_version(gw->cat, path, &last) == 0;
	if (have_last && drgw_version_matches_file(&last, &st)) {
		r = SEALED_OR_NOTHING;
		goto out;
	}
	if (settle) {
		/* The mount's rule, "no write for the settle delay", with the
		 * kernel's ctime as the last write.  A ctime that stays ahead
		 * (another machine's clock on NFS) puts the seal off once. */
		struct drgw_node *n;
		int64_t ct = drgw_ts_ns(&st.st_ctim);
		int64_t wait = ct + gw->cfg->settle_ns - drgw_now_ns();

		drgw_nodes_lock(w->pending);
		n = drgw_nodes_get_locked(w->pending, path);
		if (n && wait > 0 && atomic_load(&n->last_write_ns) != ct) {
			atomic_store(&n->last_write_ns, ct);
			*ret_wait_ns = wait < gw->cfg->settle_ns ? wait :
								   gw->cfg->settle_ns;
			r = NOT_SETTLED;
		} else {
			r = SEALED_OR_NOTHING;
		}
		drgw_nodes_put_locked(w->pending, n);
		drgw_nodes_unlock(w->pending);
		if (r == NOT_SETTLED)
			goto out_keep;
	}
	r = drgw_writers_check(fd, who);
	if (r > 0) {
		r = BUSY;
		goto out_keep;
	}
	if (r < 0 && !w->warned_unknown) {
		w->warned_unknown = true;
		log_warning("cannot tell whether files in %s are open for writing (no lease, no /proc: %s); sealing them when they look finished",
			    w->dir, strerror(-r));
	}
	warn_hidden(w, who);
	/* A write that ended between the first look and the check is part
	 * of what gets sealed. */
	fstat(fd, &st);

	if (have_last && last.state == DRGW_VERSION_SEALED) {
		/* Waiting to be encoded: it will read the newer content. */
		r = drgw_catalog_reschedule_version(gw->cat, last.id, 0);
		if (r == 0)
			drgw_catalog_set_settling(gw->cat, path, false);
		drgw_gateway_kick_encoder(gw);
		goto out_keep;
	}
	drgw_make_vid(drgw_now_ns(), v.vid, sizeof(v.vid));
	v.name = (char *)path;
	drgw_version_stamp(&v, &st);
	v.created_ns = drgw_now_ns();
	r = drgw_catalog_add_version(gw->cat, &v);
	if (r < 0) {
		log_error("cannot record snapshot %s in the catalog: %s", path,
			  strerror(-r));
		goto out_keep;
	}
	log_info("sealed %s as version %s (%llu bytes)", path, v.vid,
		 (unsigned long long)v.size);
	drgw_gateway_kick_encoder(gw);
	goto out_keep;
out:
	drgw_catalog_set_settling(gw->cat, path, false);
out_keep:
	drgw_version_release(&last);
	if (fd >= 0)
		close(fd);
	return r;
}

static void describe_writer(const struct drgw_writer *who, char *buf,
			    size_t size)
{
	if (who->pid)
		snprintf(buf, size, " by pid %ld (%s)", (long)who->pid,
			 who->comm);
	else
		buf[0] = '\0';
}

/* --- drgw run --no-mount: the baseline --- */

static int add_base(struct drgw_watch *w, const char *name,
		    const struct stat *st, const struct drgw_file_state *f)
{
	struct drgw_file_state *e;

	if (w->n_base == w->cap_base) {
		size_t cap = w->cap_base ? w->cap_base * 2 : 64;

		e = realloc(w->base, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		w->base = e;
		w->cap_base = cap;
	}
	e = &w->base[w->n_base];
	if (st)
		*e = (struct drgw_file_state){
			.size = (uint64_t)st->st_size,
			.mtime_ns = drgw_ts_ns(&st->st_mtim),
			.ctime_ns = drgw_ts_ns(&st->st_ctim),
			.ino = (uint64_t)st->st_ino,
		};
	else
		*e = *f;
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	w->n_base++;
	return 0;
}

static int base_file(struct walker *k, const char *rel, const struct stat *st)
{
	return add_base(k->w, rel, st, NULL);
}

static int base_loaded(void *arg, const struct drgw_file_state *f)
{
	return add_base(arg, f->name, NULL, f);
}

static int cmp_base(const void *a, const void *b)
{
	return strcmp(((const struct drgw_file_state *)a)->name,
		      ((const struct drgw_file_state *)b)->name);
}

/* Unchanged since the baseline was taken? */
static bool in_base(const struct drgw_watch *w, const char *name,
		    const struct stat *st)
{
	struct drgw_file_state key = { .name = name }, *e;

	/* (bsearch() and qsort() want a base, even for no elements) */
	e = w->n_base ? bsearch(&key, w->base, w->n_base, sizeof(key), cmp_base) :
			NULL;
	return e && e->size == (uint64_t)st->st_size &&
	       e->mtime_ns == drgw_ts_ns(&st->st_mtim) &&
	       e->ctime_ns == drgw_ts_ns(&st->st_ctim) &&
	       e->ino == (uint64_t)st->st_ino;
}

static void drop_base(struct drgw_watch *w)
{
	for (size_t i = 0; i < w->n_base; i++)
		free((char *)w->base[i].name);
	w->n_base = 0;
}

/* Records what dir holds now as the baseline of the command to come. */
static int take_base(struct drgw_watch *w, struct drgw_err *err)
{
	struct walker k = { .w = w, .file = base_file };
	int r;

	drop_base(w);
	r = walk_dir(&k, "", 0);
	if (r == 0)
		r = drgw_catalog_baseline_save(w->gw->cat, w->dir, drgw_now_ns(),
					       w->base, w->n_base);
	if (r < 0) {
		drgw_err_set(err, "cannot record what %s holds: %s", w->dir,
			     strerror(-r));
		return r;
	}
	if (w->n_base)
		qsort(w->base, w->n_base, sizeof(*w->base), cmp_base);
	log_info("%s holds %zu files before the command runs", w->dir,
		 w->n_base);
	return 0;
}

static int start_run(struct drgw_watch *w, struct drgw_err *err)
{
	int64_t taken;
	char when[32];
	int r;

	r = drgw_catalog_baseline_load(w->gw->cat, w->dir, &taken, base_loaded,
				       w);
	if (r == -ENOENT)
		return take_base(w, err);
	if (r < 0) {
		drgw_err_set(err, "cannot read what %s held: %s", w->dir,
			     strerror(-r));
		return r;
	}
	drgw_format_time(taken, when, sizeof(when));
	log_warning("an earlier run on %s stopped before it sealed everything; sealing what changed since %s",
		    w->dir, when);
	w->leftover_base = true;
	if (w->n_base)
		qsort(w->base, w->n_base, sizeof(*w->base), cmp_base);
	return 0;
}

struct candidates {
	char **paths;
	size_t n, cap;
};

static int push_path(struct candidates *c, const char *path)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		char **p = realloc(c->paths, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		c->paths = p;
		c->cap = cap;
	}
	c->paths[c->n] = strdup(path);
	if (!c->paths[c->n])
		return -ENOMEM;
	c->n++;
	return 0;
}

static int changed_file(struct walker *k, const char *rel, const struct stat *st)
{
	struct drgw_gateway *gw = k->w->gw;
	struct drgw_version last;
	bool same = false;

	if (in_base(k->w, rel, st))
		return 0;
	if (drgw_catalog_latest_version(gw->cat, rel, &last) == 0) {
		same = drgw_version_matches_file(&last, st);
		drgw_version_release(&last);
	}
	if (same)
		return 0; /* sealed by an earlier, interrupted run */
	drgw_catalog_set_settling(gw->cat, rel, true);
	return push_path(k->arg, rel);
}

/* The command exited: seal everything it wrote, waiting for files still
 * open for writing until drain-timeout. */
static void seal_run(struct drgw_watch *w)
{
	struct drgw_gateway *gw = w->gw;
	struct candidates c = { 0 };
	struct walker k = { .w = w, .file = changed_file, .arg = &c };
	int64_t deadline = w->run_deadline ?
				   w->run_deadline :
				   drgw_mono_ns() + gw->cfg->drain_timeout_ns;
	uint64_t seen = 0;
	unsigned unsealed = 0;
	bool failed = false;
	int r;

	r = walk_dir(&k, "", 0);
	if (r < 0) {
		log_error("cannot scan %s: %s; the next run seals what was missed",
			  w->dir, strerror(-r));
		failed = true;
	}
	atomic_store(&w->run_left, (unsigned)c.n);
	log_info("the command wrote %zu new or changed files in %s", c.n,
		 w->dir);
	for (bool first = true;; first = false) {
		size_t left = 0;

		for (size_t i = 0; i < c.n; i++) {
			struct drgw_writer who;
			char by[64];
			int64_t wait;

			r = try_seal(w, c.paths[i], false, &who, &wait);
			if (r == SEALED_OR_NOTHING || r == UNREADABLE) {
				unsealed += r == UNREADABLE;
				free(c.paths[i]);
				continue;
			}
			if (r == BUSY && first) {
				describe_writer(&who, by, sizeof(by));
				log_info("%s is still open for writing%s; sealing it once it is closed",
					 c.paths[i], by);
			}
			c.paths[left++] = c.paths[i];
		}
		c.n = left;
		atomic_store(&w->run_left, (unsigned)c.n);
		if (!c.n || drgw_mono_ns() >= deadline ||
		    atomic_load(&gw->abort_drain) || atomic_load(&gw->exiting))
			break;
		drgw_gateway_wait(gw, &gw->seal_cond, &gw->seal_kicks, &seen,
				  BUSY_POLL_NS);
	}
	/* The deadline passed: one last look, then say what is left. */
	for (size_t i = 0; i < c.n; i++) {
		struct drgw_writer who = { 0 };
		int64_t wait;
		char by[64];

		r = try_seal(w, c.paths[i], false, &who, &wait);
		if (r == BUSY) {
			describe_writer(&who, by, sizeof(by));
			log_error("%s is still open for writing%s: not sealed; the next run seals it once it is closed",
				  c.paths[i], by);
			unsealed++;
		} else if (r < 0) {
			log_error("cannot seal %s; the next run tries again",
				  c.paths[i]);
			unsealed++;
		} else {
			unsealed += r == UNREADABLE;
		}
		free(c.paths[i]);
	}
	w->unsealed = unsealed + w->leftover_procs;
	/* Those left are "settling" in the catalog: counted there. */
	atomic_store(&w->run_left, 0);
	free(c.paths);
	/* Everything is in the catalog now, and nothing of the command's
	 * writes any more: the next run starts afresh. */
	if (!w->unsealed && !failed)
		drgw_catalog_baseline_drop(gw->cat, w->dir);
}

/* --- drgw watch: inotify --- */

static int cmp_wd(const void *a, const void *b)
{
	int x = ((const struct wd_entry *)a)->wd, y = ((const struct wd_entry *)b)->wd;

	return (x > y) - (x < y);
}

static struct wd_entry *find_wd(struct drgw_watch *w, int wd)
{
	struct wd_entry key = { .wd = wd };

	return w->n_wds ? bsearch(&key, w->wds, w->n_wds, sizeof(key), cmp_wd) :
			  NULL;
}

static int set_wd(struct drgw_watch *w, int wd, const char *dir)
{
	struct wd_entry *e = find_wd(w, wd);
	char *copy = strdup(dir);
	size_t i;

	if (!copy)
		return -ENOMEM;
	if (e) {
		free(e->dir);
		e->dir = copy;
		return 0;
	}
	if (w->n_wds == w->cap_wds) {
		size_t cap = w->cap_wds ? w->cap_wds * 2 : 64;

		e = realloc(w->wds, cap * sizeof(*e));
		if (!e) {
			free(copy);
			return -ENOMEM;
		}
		w->wds = e;
		w->cap_wds = cap;
	}
	/* The kernel hands out increasing numbers: usually an append. */
	for (i = w->n_wds; i > 0 && w->wds[i - 1].wd > wd; i--)
		w->wds[i] = w->wds[i - 1];
	w->wds[i] = (struct wd_entry){ .wd = wd, .dir = copy };
	w->n_wds++;
	return 0;
}

static void drop_wd(struct drgw_watch *w, int wd)
{
	struct wd_entry *e = find_wd(w, wd);
	size_t i;

	if (!e)
		return;
	i = (size_t)(e - w->wds);
	free(e->dir);
	memmove(e, e + 1, (w->n_wds - i - 1) * sizeof(*e));
	w->n_wds--;
}

static void clear_wds(struct drgw_watch *w)
{
	for (size_t i = 0; i < w->n_wds; i++)
		free(w->wds[i].dir);
	w->n_wds = 0;
}

static int watch_dir(struct walker *k, const char *rel)
{
	struct drgw_watch *w = k->w;
	char path[PATH_MAX];
	int wd;

	snprintf(path, sizeof(path), "%s%s%s", w->gw->files_dir, *rel ? "/" : "",
		 rel);
	wd = inotify_add_watch(w->ino_fd, path, DIR_MASK);
	if (wd < 0) {
		if (!w->unwatched)
			log_warning("cannot watch %s: %s; scanning %s every %llds instead%s",
				    path, strerror(errno), w->dir,
				    (long long)(RESCAN_NS / NSEC_PER_SEC),
				    errno == ENOSPC ?
					    " (raise fs.inotify.max_user_watches)" :
					    "");
		w->unwatched = true;
		return 0;
	}
	return set_wd(w, wd, rel);
}

/* Puts path on the settle clock: sealed settle-delay from now. */
static void schedule(struct drgw_watch *w, const char *path, int64_t delay)
{
	struct drgw_node *n;

	drgw_nodes_lock(w->pending);
	n = drgw_nodes_get_locked(w->pending, path);
	if (n) {
		n->seal_at = drgw_mono_ns() + delay;
		atomic_store(&n->dirty, true);
		drgw_nodes_put_locked(w->pending, n);
	}
	drgw_nodes_unlock(w->pending);
	drgw_catalog_set_settling(w->gw->cat, path, true);
}

static void forget(struct drgw_watch *w, const char *path)
{
	drgw_nodes_lock(w->pending);
	drgw_nodes_unlink_locked(w->pending, path);
	drgw_nodes_unlock(w->pending);
	drgw_catalog_set_settling(w->gw->cat, path, false);
}

static int scan_file(struct walker *k, const char *rel, const struct stat *st)
{
	struct drgw_watch *w = k->w;
	struct drgw_version last;
	bool same = false;

	if (drgw_catalog_latest_version(w->gw->cat, rel, &last) == 0) {
		same = drgw_version_matches_file(&last, st);
		drgw_version_release(&last);
	}
	if (!same)
		schedule(w, rel, w->gw->cfg->settle_ns);
	return 0;
}

/* Watches every directory below rel and schedules the files whose
 * content has no version; what a missed event may have hidden. */
static void scan_tree(struct drgw_watch *w, const char *rel)
{
	struct walker k = { .w = w, .file = scan_file, .dir = watch_dir };
	int r = walk_dir(&k, rel, 0);

	if (r < 0)
		log_error("cannot scan %s%s%s: %s", w->dir, *rel ? "/" : "", rel,
			  strerror(-r));
}

static int open_inotify(struct drgw_watch *w)
{
	if (w->ino_fd >= 0)
		close(w->ino_fd);
	clear_wds(w);
	w->unwatched = false;
	w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	return w->ino_fd < 0 ? -errno : 0;
}

static void full_scan(struct drgw_watch *w)
{
	if (w->rebuild) {
		/* Directories moved: the watches' paths are stale. */
		int r = open_inotify(w);

		if (r < 0)
			log_error("cannot watch %s again: %s", w->dir,
				  strerror(-r));
	}
	w->rescan = w->rebuild = false;
	scan_tree(w, "");
	w->next_rescan = drgw_mono_ns() + RESCAN_NS;
}

static void handle_event(struct drgw_watch *w, const struct inotify_event *ev)
{
	struct wd_entry *e;
	char path[PATH_MAX];

	if (ev->mask & IN_Q_OVERFLOW) {
		log_warning("too many changes in %s at once (inotify queue overflow); scanning it",
			    w->dir);
		w->rescan = true;
		return;
	}
	e = find_wd(w, ev->wd);
	if (!e)
		return;
	if (ev->mask & IN_IGNORED) {
		drop_wd(w, ev->wd);
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (!*e->dir)
			log_error("%s was removed or moved; nothing there to watch",
				  w->dir);
		return;
	}
	if (!ev->len ||
	    (size_t)snprintf(path, sizeof(path), "%s%s%s", e->dir,
			     *e->dir ? "/" : "", ev->name) >= sizeof(path))
		return;
	if (ev->mask & IN_ISDIR) {
		if (ev->mask & (IN_MOVED_FROM | IN_MOVED_TO))
			w->rebuild = w->rescan = true;
		else if (ev->mask & IN_CREATE)
			scan_tree(w, path);
		return;
	}
	if (drgw_config_excluded(w->gw->cfg, path))
		return;
	/* A new name (a hard link too) and a chmod are versions, as in the
	 * mount.  A write without a close (truncate(2) by path) is not seen
	 * until the next start: IN_MODIFY would come for every write(). */
	if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB))
		schedule(w, path, w->gw->cfg->settle_ns);
	else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
		forget(w, path);
}

static void read_events(struct drgw_watch *w)
{
	char buf[64 * 1024]
		__attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		ssize_t n = read(w->ino_fd, buf, sizeof(buf));

		if (n <= 0)
			return;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;

			handle_event(w, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
}

/* Lets the table forget path unless it was scheduled again. */
static void settled(struct drgw_watch *w, const char *path)
{
	struct drgw_node *n;

	drgw_nodes_lock(w->pending);
	n = drgw_nodes_get_locked(w->pending, path);
	if (n && !n->seal_at)
		atomic_store(&n->dirty, false);
	drgw_nodes_put_locked(w->pending, n);
	drgw_nodes_unlock(w->pending);
}

struct due {
	char **paths;
	size_t n, cap;
	int64_t now, next;
	bool stopping;
};

static int collect_due(struct drgw_node *n, void *arg)
{
	struct due *d = arg;

	if (!n->seal_at)
		return 0;
	if (!d->stopping && n->seal_at > d->now) {
		if (n->seal_at < d->next)
			d->next = n->seal_at;
		return 0;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		char **p = realloc(d->paths, cap * sizeof(*p));

		if (!p)
			return 0; /* the next round */
		d->paths = p;
		d->cap = cap;
	}
	d->paths[d->n] = strdup(n->path);
	if (d->paths[d->n]) {
		d->n++;
		n->seal_at = 0;
	}
	return 0;
}

/* Seals what is due (everything, when stopping); returns the next
 * deadline (monotonic), INT64_MAX if none. */
static int64_t seal_due(struct drgw_watch *w, bool stopping)
{
	struct due d = { .now = drgw_mono_ns(), .next = INT64_MAX,
			 .stopping = stopping };

	drgw_nodes_lock(w->pending);
	drgw_nodes_each_locked(w->pending, collect_due, &d);
	drgw_nodes_unlock(w->pending);
	for (size_t i = 0; i < d.n; i++) {
		struct drgw_writer who;
		int64_t wait = 0;
		char by[64];
		int r = try_seal(w, d.paths[i], !stopping, &who, &wait);

		if (r == NOT_SETTLED) {
			schedule(w, d.paths[i], wait);
			if (d.now + wait < d.next)
				d.next = d.now + wait;
		} else if (r == UNREADABLE) {
			w->unsealed += stopping;
		} else if (r == BUSY || r < 0) {
			describe_writer(&who, by, sizeof(by));
			if (stopping) {
				w->unsealed++;
				if (r == BUSY)
					log_warning("%s is open for writing%s: not sealed; the next start seals it",
						    d.paths[i], by);
				else
					log_warning("%s could not be sealed (%s); the next start seals it",
						    d.paths[i], strerror(-r));
			} else if (r == BUSY) {
				/* Its close is the next event. */
				log_debug("%s is open for writing%s; waiting for it to be closed",
					  d.paths[i], by);
				drgw_catalog_set_settling(w->gw->cat, d.paths[i],
							  false);
			} else {
				schedule(w, d.paths[i], w->gw->cfg->retry_min_ns);
			}
		}
		settled(w, d.paths[i]);
		free(d.paths[i]);
	}
	free(d.paths);
	return d.next;
}

static void run_daemon(struct drgw_watch *w)
{
	struct drgw_gateway *gw = w->gw;

	for (;;) {
		bool stopping = atomic_load(&gw->sealing_stopped);
		struct pollfd pfd[2] = {
			{ .fd = w->ino_fd, .events = POLLIN },
			{ .fd = w->wake_fd, .events = POLLIN },
		};
		int64_t next, left, timeout;
		uint64_t junk;

		read_events(w);
		if (w->rescan || w->rebuild ||
		    (w->unwatched && drgw_mono_ns() >= w->next_rescan))
			full_scan(w);
		next = seal_due(w, stopping);
		if (stopping) {
			atomic_store(&w->final_done, true);
			return;
		}
		if (w->unwatched && w->next_rescan < next)
			next = w->next_rescan;
		left = next - drgw_mono_ns();
		if (next == INT64_MAX)
			timeout = -1;
		else if (left <= 0)
			timeout = 0; /* fell due while others were sealed */
		else
			timeout = left >= 60 * NSEC_PER_SEC ?
					  60 * 1000 :
					  left / NSEC_PER_MSEC + 1;
		poll(pfd, 2, (int)timeout);
		if (pfd[1].revents & POLLIN)
			(void)!read(w->wake_fd, &junk, sizeof(junk));
	}
}

/* --- the gateway's side --- */

void *drgw_watch_main(void *arg)
{
	struct drgw_gateway *gw = arg;
	struct drgw_watch *w = gw->watch;
	uint64_t seen = 0;

	if (w->kind == DRGW_WATCH_DAEMON) {
		run_daemon(w);
		return NULL;
	}
	while (!atomic_load(&gw->sealing_stopped))
		drgw_gateway_wait(gw, &gw->seal_cond, &gw->seal_kicks, &seen,
				  INT64_MAX);
	seal_run(w);
	return NULL;
}

int drgw_watch_seal_leftovers(struct drgw_gateway *gw, struct drgw_err *err)
{
	struct drgw_watch *w = gw->watch;
	struct candidates c = { 0 };
	struct walker k = { .w = w, .file = changed_file, .arg = &c };
	struct drgw_queue_stats qs = { .versions_unencoded = 1 };
	int64_t deadline = drgw_mono_ns() + gw->cfg->drain_timeout_ns;
	unsigned left = 0;
	int r;

	if (!w->leftover_base)
		return 0;
	r = walk_dir(&k, "", 0);
	for (size_t i = 0; i < c.n; i++) {
		struct drgw_writer who;
		int64_t wait;

		if (r == 0 && try_seal(w, c.paths[i], false, &who, &wait) !=
				      SEALED_OR_NOTHING)
			left++;
		free(c.paths[i]);
	}
	free(c.paths);
	/* Encoded is read: the command may overwrite them now. */
	while (r == 0 && drgw_mono_ns() < deadline &&
	       drgw_catalog_queue_stats(gw->cat, NULL, &qs) == 0 &&
	       qs.versions_unencoded > 0)
		usleep(50 * 1000);
	if (r < 0 || left || qs.versions_unencoded) {
		/* Today's backup matters more: run the command all the same
		 * (the old baseline stays, so this run seals those too). */
		log_warning("cannot secure what an earlier, killed run left in %s before the command runs (%s); a file it overwrites keeps only its new content",
			    w->dir, r < 0 ? strerror(-r) :
			    left ? "files still open for writing or unreadable" :
				   "not encoded within drain-timeout");
		return 0;
	}
	log_info("what the earlier run left is backed up (%s)", w->dir);
	w->leftover_base = false;
	return take_base(w, err);
}

void drgw_watch_wake(struct drgw_watch *w)
{
	uint64_t one = 1;

	if (w && w->wake_fd >= 0)
		(void)!write(w->wake_fd, &one, sizeof(one));
}

void drgw_watch_run_ended(struct drgw_watch *w, int64_t deadline,
			  unsigned leftover_procs)
{
	w->run_deadline = deadline;
	w->leftover_procs = leftover_procs;
}

static int count_due(struct drgw_node *n, void *arg)
{
	if (n->seal_at)
		(*(uint64_t *)arg)++;
	return 0;
}

uint64_t drgw_watch_pending(struct drgw_watch *w)
{
	uint64_t n = 0;

	if (!w)
		return 0;
	if (w->kind == DRGW_WATCH_RUN)
		return atomic_load(&w->run_left);
	drgw_nodes_lock(w->pending);
	drgw_nodes_each_locked(w->pending, count_due, &n);
	drgw_nodes_unlock(w->pending);
	if (atomic_load(&w->gw->sealing_stopped) && !atomic_load(&w->final_done))
		n++;
	return n;
}

unsigned drgw_watch_unsealed(const struct drgw_watch *w)
{
	return w ? w->unsealed : 0;
}

int drgw_watch_start(struct drgw_gateway *gw, struct drgw_err *err)
{
	struct drgw_watch *w = gw->watch;
	int r;

	/* Left over from a daemon that was killed; found again below. */
	r = drgw_catalog_clear_settling(gw->cat);
	if (r < 0) {
		drgw_err_set(err, "cannot update the catalog: %s", strerror(-r));
		return r;
	}
	if (w->kind == DRGW_WATCH_RUN)
		return start_run(w, err);
	r = open_inotify(w);
	if (r < 0) {
		drgw_err_set(err, "cannot watch %s: %s (inotify)", w->dir,
			     strerror(-r));
		return r;
	}
	full_scan(w);
	log_info("watching %s (%zu directories)", w->dir, w->n_wds);
	return 0;
}

int drgw_watch_attach(struct drgw_gateway *gw, const char *dir,
		      enum drgw_watch_kind kind, struct drgw_err *err)
{
	struct drgw_watch *w;
	struct stat st, cst = { 0 };
	int fd;

	if (!realpath(dir, gw->files_dir) || stat(gw->files_dir, &st) < 0) {
		drgw_err_set(err, "cannot use directory %s: %s", dir,
			     strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		drgw_err_set(err, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	if (stat(gw->cache_dir, &cst) == 0 && st.st_dev == cst.st_dev &&
	    st.st_ino == cst.st_ino) {
		drgw_err_set(err,
			     "%s is the cache directory; back up another directory, or put the cache elsewhere",
			     dir);
		return -EINVAL;
	}
	fd = open(gw->files_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		drgw_err_set(err, "cannot open %s: %s", dir, strerror(errno));
		return -errno;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		close(fd);
		return -ENOMEM;
	}
	w->gw = gw;
	w->kind = kind;
	w->ino_fd = -1;
	/* RUN: the final scan is still to come. */
	atomic_init(&w->run_left, kind == DRGW_WATCH_RUN ? 1 : 0);
	atomic_init(&w->final_done, false);
	w->cache_dev = cst.st_dev;
	w->cache_ino = cst.st_ino;
	drgw_strlcpy(w->dir, gw->files_dir, sizeof(w->dir));
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->pending = drgw_nodes_new();
	if (w->wake_fd < 0 || !w->pending) {
		close(fd);
		drgw_watch_free(w);
		drgw_err_set(err, "cannot set up watching %s", dir);
		return -ENOMEM;
	}
	gw->files_fd = fd;
	gw->watch = w;
	return 0;
}

struct drgw_watch *drgw_watch_free(struct drgw_watch *w)
{
	if (!w)
		return NULL;
	drop_base(w);
	free(w->base);
	clear_wds(w);
	free(w->wds);
	if (w->ino_fd >= 0)
		close(w->ino_fd);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	drgw_nodes_free(w->pending);
	free(w);
	return NULL;
}

/* --- the encoder's side --- */

int drgw_watch_encode_begin(struct drgw_gateway *gw, int fd, struct stat *st)
{
	struct drgw_watch *w = gw->watch;
	struct drgw_writer who;
	int r = drgw_writers_lease(fd);

	w->enc_leased = r == 0;
	if (r == -EBUSY)
		return -EBUSY;
	if (r < 0) {
		if (drgw_writers_scan_proc(st->st_dev, st->st_ino, &who) > 0)
			return -EBUSY;
		warn_hidden(w, &who);
		w->enc_last_proc = drgw_mono_ns();
	}
	/* What was written before the lease is what gets encoded. */
	fstat(fd, st);
	if (!w->enc_leased)
		drgw_wait_ctime_past(fd, st);
	return 0;
}

void drgw_watch_encode_release(struct drgw_gateway *gw, int fd)
{
	struct drgw_watch *w = gw->watch;

	if (w->enc_leased)
		drgw_writers_unlease(fd);
	w->enc_leased = false;
}

int drgw_watch_encode_check(struct drgw_gateway *gw, int fd)
{
	struct drgw_watch *w = gw->watch;
	struct drgw_writer who;
	struct stat st;

	if (w->enc_leased) {
		if (!drgw_writers_lease_broken(fd))
			return 0;
		/* This encode is void: let the writer go on at once. */
		drgw_writers_unlease(fd);
		w->enc_leased = false;
		return -ESTALE;
	}
	if (drgw_mono_ns() - w->enc_last_proc < PROC_CHECK_NS)
		return 0;
	w->enc_last_proc = drgw_mono_ns();
	if (fstat(fd, &st) == 0 &&
	    drgw_writers_scan_proc(st.st_dev, st.st_ino, &who) > 0)
		return -ESTALE;
	return 0;
}
