/* SPDX-License-Identifier: MIT */
/*
 * Sealing: deciding that a file is finished and recording it as a new
 * snapshot version.  A file is due when its last writable handle was
 * released (or it was renamed into place), it changed, and no write touched
 * it for the settle delay.  Excluded names (journals, temp and dot files)
 * are never sealed.
 *
 * If the name already has a version waiting to be encoded, no second
 * version is made: the waiting one is made due again and will read the
 * newer content, so a file rewritten in quick succession yields one
 * snapshot, not a queue of stale ones.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"
#include "log.h"
#include "testhook.h"
#include "watch.h"

void drgw_seal_schedule_locked(struct drgw_gateway *gw, struct drgw_node *n)
{
	if (n->unlinked || n->writers > 0 || !atomic_load(&n->dirty) ||
	    drgw_config_excluded(gw->cfg, n->path))
		return;
	n->seal_at = drgw_mono_ns() + gw->cfg->settle_ns;
	drgw_gateway_kick_sealer(gw);
}

/* "20261125T231858Z-1f2e3d4c": sorts by time, unique per gateway. */
void drgw_make_vid(int64_t now_ns, char *buf, size_t size)
{
	time_t t = (time_t)(now_ns / NSEC_PER_SEC);
	struct tm tm;
	char ts[32];

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(buf, size, "%s-%08x", ts, randombytes_random());
}

/* stat() of a working-set file without following any symlink. */
static int stat_beneath(struct drgw_gateway *gw, const char *path,
			struct stat *st)
{
	int fd = drgw_openat_beneath(gw->files_fd, path, O_PATH);
	int r;

	if (fd < 0)
		return fd;
	r = fstat(fd, st) < 0 ? -errno : 0;
	close(fd);
	return r;
}

void drgw_version_stamp(struct drgw_version *v, const struct stat *st)
{
	v->size = (uint64_t)st->st_size;
	v->mtime_ns = drgw_ts_ns(&st->st_mtim);
	v->ctime_ns = drgw_ts_ns(&st->st_ctim);
	/* Permission bits only: a restore never recreates set-uid, set-gid
	 * or sticky bits (it does not restore the owner either). */
	v->mode = st->st_mode & 0777;
}

bool drgw_version_matches_file(const struct drgw_version *v,
			       const struct stat *st)
{
	/* A version sealed before ctime was recorded (a catalog of schema
	 * 1) never matches: a cp -p of other bytes keeps size and mtime, so
	 * each such file is sealed once more after the upgrade rather than
	 * a rewrite missed. */
	return v->size == (uint64_t)st->st_size &&
	       v->mtime_ns == drgw_ts_ns(&st->st_mtim) &&
	       v->ctime_ns == drgw_ts_ns(&st->st_ctim);
}

/* Why the content of path may not be a good backup, from what the mount
 * saw happen to it; "" if nothing went wrong. */
static void problem(struct drgw_gateway *gw, const char *path, char *buf,
		    size_t size)
{
	struct drgw_node *n;
	bool unclean = false, full = false;
	int e = 0;

	drgw_nodes_lock(gw->nodes);
	n = drgw_nodes_find_locked(gw->nodes, path);
	if (n) {
		unclean = n->unclean;
		full = n->full_at_close;
		e = atomic_load(&n->write_error);
	}
	drgw_nodes_unlock(gw->nodes);
	buf[0] = '\0';
	if (e)
		snprintf(buf, size,
			 "incomplete: writing it failed (%s); the writer saw an error at write, fsync or close",
			 strerror(e));
	else if (full)
		snprintf(buf, size,
			 "incomplete: the cache disk was full when the writer closed it, so a write may have failed (ENOSPC at write, which passthrough does not show drgw)");
	else if (unclean)
		snprintf(buf, size,
			 "incomplete: drgw stopped while it was open for writing, so data the writer had not fsynced may be missing");
}

/* Seals path.  A negative errno when the catalog could not record it
 * and it must be tried again later; every other outcome is final. */
static int seal_one(struct drgw_gateway *gw, const char *path)
{
	struct drgw_version v = { 0 }, last = { 0 };
	char problem_buf[256];
	int64_t now = drgw_now_ns();
	struct stat st;
	int r;

	if (stat_beneath(gw, path, &st) < 0 || !S_ISREG(st.st_mode)) {
		drgw_catalog_set_settling(gw->cat, path, false);
		return 0;
	}
	/* Refused now, not found out at restore time: the object format
	 * (docs/FORMAT.md) only carries names every reader accepts. */
	if (!drgw_name_ok(path)) {
		log_error("not backing up a file whose name is not valid UTF-8 or has control characters (%zu bytes); rename it",
			  strlen(path));
		drgw_catalog_set_settling(gw->cat, path, false);
		return 0;
	}
	r = drgw_catalog_latest_version(gw->cat, path, &last);
	if (r < 0 && r != -ENOENT)
		goto retry;
	if (r == 0 && last.state == DRGW_VERSION_SEALED) {
		r = drgw_catalog_reschedule_version(gw->cat, last.id, 0);
		drgw_version_release(&last);
		if (r < 0)
			goto retry;
		drgw_catalog_set_settling(gw->cat, path, false);
		drgw_gateway_kick_encoder(gw);
		return 0;
	}
	if (r == 0 && drgw_version_matches_file(&last, &st)) {
		/* Opened for writing but left as it was. */
		drgw_catalog_set_settling(gw->cat, path, false);
		drgw_version_release(&last);
		return 0;
	}
	drgw_version_release(&last);

	drgw_make_vid(now, v.vid, sizeof(v.vid));
	v.name = (char *)path;
	drgw_version_stamp(&v, &st);
	v.created_ns = now;
	problem(gw, path, v.problem = problem_buf, sizeof(problem_buf));
	if (!problem_buf[0])
		v.problem = NULL;
	drgw_test_point("seal-before-record");
	r = drgw_catalog_add_version(gw->cat, &v);
	if (r < 0)
		goto retry;
	drgw_test_point("seal-recorded");
	if (v.problem)
		log_warning("sealed %s as version %s (%llu bytes), but it is not a good backup: %s",
			    path, v.vid, (unsigned long long)v.size, v.problem);
	else
		log_info("sealed %s as version %s (%llu bytes)", path, v.vid,
			 (unsigned long long)v.size);
	drgw_gateway_kick_encoder(gw);
	return 0;
retry:
	return r;
}

/* Seals path, or arms its node to be tried again after a backoff. */
static void seal_or_retry(struct drgw_gateway *gw, const char *path)
{
	struct drgw_node *n;
	unsigned failures = 0;
	int r = seal_one(gw, path);

	if (r == 0) {
		/* The sealed content carries its problems; new content
		 * starts clean, unless a writer came since (dirty again):
		 * what went wrong for it is not this version's to clear. */
		drgw_nodes_lock(gw->nodes);
		n = drgw_nodes_find_locked(gw->nodes, path);
		if (n)
			n->seal_failures = 0;
		if (n && !atomic_load(&n->dirty) && !n->writers) {
			n->unclean = false;
			n->full_at_close = false;
			atomic_store(&n->write_error, 0);
		}
		drgw_nodes_unlock(gw->nodes);
		return;
	}
	drgw_nodes_lock(gw->nodes);
	n = drgw_nodes_get_locked(gw->nodes, path);
	if (n) {
		failures = n->seal_failures++;
		atomic_store(&n->dirty, true);
		/* Not drgw_seal_schedule_locked(): a writer may hold the file
		 * open again, and its release re-arms the seal anyway. */
		if (!n->writers)
			n->seal_at = drgw_mono_ns() +
				     drgw_gateway_backoff(gw, failures);
		drgw_nodes_put_locked(gw->nodes, n);
	}
	drgw_nodes_unlock(gw->nodes);
	/* The first failure is an error; repeats (a disk that stays full)
	 * only warnings, so the log does not fill at error level. */
	drgw_log(failures == 0 ? DRGW_LOG_ERROR : DRGW_LOG_WARNING,
		 "cannot record snapshot %s in the catalog: %s; trying again",
		 path, strerror(-r));
	drgw_gateway_kick_sealer(gw);
}

struct due {
	struct drgw_gateway *gw;
	const struct drgw_config *cfg;
	char **paths;
	size_t n, cap;
	int64_t now;
	int64_t next; /* earliest future deadline */
	bool stopping;
};

static int collect_due(struct drgw_node *n, void *arg)
{
	struct due *d = arg;
	int64_t quiet_at = atomic_load(&n->last_write_ns) + d->cfg->settle_ns;
	int64_t at = n->seal_at > quiet_at ? n->seal_at : quiet_at;

	if (!n->seal_at || n->writers > 0)
		return 0;
	/* Renamed to an excluded name while it settled. */
	if (drgw_config_excluded(d->cfg, n->path)) {
		n->seal_at = 0;
		return 0;
	}
	/* Stopping seals at once, but a failed seal still waits out its
	 * backoff: a full disk is not fixed by trying in a loop. */
	if (d->stopping && !n->seal_failures)
		at = d->now;
	if (at > d->now) {
		if (at < d->next)
			d->next = at;
		return 0;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		char **p = realloc(d->paths, cap * sizeof(*p));

		if (!p)
			return 0; /* try again next round */
		d->paths = p;
		d->cap = cap;
	}
	d->paths[d->n] = strdup(n->path);
	if (!d->paths[d->n])
		return 0;
	d->n++;
	/* Cleared before sealing: a write from now on dirties it again.
	 * Counted as in flight until sealed, so nobody sees it as done. */
	n->seal_at = 0;
	atomic_store(&n->dirty, false);
	atomic_fetch_add(&d->gw->seals_in_flight, 1);
	return 0;
}

static int count_unsealed(struct drgw_node *n, void *arg)
{
	if (n->seal_at && !n->unlinked)
		(*(uint64_t *)arg)++;
	return 0;
}

void drgw_seal_publish(struct drgw_gateway *gw, uint64_t extra)
{
	uint64_t n = drgw_seal_pending(gw) + extra;

	if (atomic_exchange(&gw->published_unsealed, n) != n)
		drgw_gateway_publish_unsealed(gw, n);
}

uint64_t drgw_seal_pending(struct drgw_gateway *gw)
{
	uint64_t n = 0;

	if (!gw->nodes) /* no mount: watch.c seals */
		return drgw_watch_pending(gw->watch);
	drgw_nodes_lock(gw->nodes);
	drgw_nodes_each_locked(gw->nodes, count_unsealed, &n);
	n += atomic_load(&gw->seals_in_flight);
	drgw_nodes_unlock(gw->nodes);
	return n;
}

void *drgw_sealer_main(void *arg)
{
	struct drgw_gateway *gw = arg;
	uint64_t seen = 0;

	/* Runs until the gateway exits, not merely until sealing stopped:
	 * a seal that failed keeps being retried while the drain lasts. */
	while (!atomic_load(&gw->exiting)) {
		struct due d = { .gw = gw, .cfg = gw->cfg,
				 .now = drgw_mono_ns(), .next = INT64_MAX };

		d.stopping = atomic_load(&gw->sealing_stopped);
		drgw_nodes_lock(gw->nodes);
		drgw_nodes_each_locked(gw->nodes, collect_due, &d);
		drgw_nodes_unlock(gw->nodes);
		for (size_t i = 0; i < d.n; i++) {
			seal_or_retry(gw, d.paths[i]);
			atomic_fetch_sub(&gw->seals_in_flight, 1);
			free(d.paths[i]);
		}
		free(d.paths);
		drgw_seal_publish(gw, 0);
		if (d.n)
			continue;
		drgw_gateway_wait(gw, &gw->seal_cond, &gw->seal_kicks, &seen,
				  d.next == INT64_MAX ? INT64_MAX :
							d.next - drgw_mono_ns());
	}
	return NULL;
}

/* --- startup scan --- */

static void scan_file(struct drgw_gateway *gw, const char *path,
		      const struct stat *st)
{
	struct drgw_version last = { 0 };
	struct drgw_node *n;
	bool changed = true;

	if (drgw_config_excluded(gw->cfg, path))
		return;
	if (drgw_catalog_latest_version(gw->cat, path, &last) == 0) {
		changed = !drgw_version_matches_file(&last, st);
		drgw_version_release(&last);
	}
	if (!changed)
		return;
	log_debug("%s has no snapshot of its current content; sealing it", path);
	drgw_catalog_set_settling(gw->cat, path, true);
	drgw_nodes_lock(gw->nodes);
	n = drgw_nodes_get_locked(gw->nodes, path);
	if (n) {
		atomic_store(&n->dirty, true);
		drgw_seal_schedule_locked(gw, n);
		drgw_nodes_put_locked(gw->nodes, n);
	}
	drgw_nodes_unlock(gw->nodes);
}

static int scan_dir(struct drgw_gateway *gw, const char *rel, int depth)
{
	DIR *d;
	struct dirent *de;
	int fd;

	if (depth > 64)
		return 0;
	fd = drgw_openat_beneath(gw->files_fd, *rel ? rel : ".",
				 O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel,
				     *rel ? "/" : "", de->d_name) >= sizeof(path))
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			scan_dir(gw, path, depth + 1);
		else if (S_ISREG(st.st_mode))
			scan_file(gw, path, &st);
	}
	closedir(d);
	return 0;
}

/* A file the last daemon saw open for writing and never saw closed. */
static int mark_unclean(void *arg, const char *name)
{
	struct drgw_gateway *gw = arg;
	struct drgw_node *n;

	if (drgw_config_excluded(gw->cfg, name))
		return 0;
	log_warning("%s was open for writing when drgw stopped; its next snapshot is marked incomplete",
		    name);
	drgw_nodes_lock(gw->nodes);
	n = drgw_nodes_get_locked(gw->nodes, name);
	if (n) {
		n->unclean = true;
		atomic_store(&n->dirty, true);
		drgw_seal_schedule_locked(gw, n);
		drgw_nodes_put_locked(gw->nodes, n);
	}
	drgw_nodes_unlock(gw->nodes);
	return 0;
}

int drgw_seal_scan(struct drgw_gateway *gw)
{
	int r = drgw_catalog_clear_settling(gw->cat);

	if (r == 0)
		r = drgw_catalog_take_writing(gw->cat, mark_unclean, gw);
	return r < 0 ? r : scan_dir(gw, "", 0);
}

int drgw_seal_scan_dir(struct drgw_gateway *gw, const char *dir)
{
	return scan_dir(gw, dir, 0);
}
