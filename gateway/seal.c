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

void drgw_seal_schedule_locked(struct drgw_gateway *gw, struct drgw_node *n)
{
	if (n->unlinked || n->writers > 0 || !atomic_load(&n->dirty) ||
	    drgw_config_excluded(gw->cfg, n->path))
		return;
	n->seal_at = drgw_mono_ns() + gw->cfg->settle_ns;
	drgw_gateway_kick_sealer(gw);
}

/* "20261125T231858Z-1f2e3d4c": sorts by time, unique per gateway. */
void drgw_seal_make_vid(int64_t now_ns, char *buf, size_t size)
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

static void seal_one(struct drgw_gateway *gw, const char *path)
{
	struct drgw_version v = { 0 }, last = { 0 };
	int64_t now = drgw_now_ns();
	struct stat st;
	int r;

	if (stat_beneath(gw, path, &st) < 0 || !S_ISREG(st.st_mode)) {
		drgw_catalog_set_settling(gw->cat, path, false);
		return;
	}
	/* Refused now, not found out at restore time: the object format
	 * (docs/FORMAT.md) only carries names every reader accepts. */
	if (!drgw_name_ok(path)) {
		log_error("not backing up a file whose name is not valid UTF-8 or has control characters (%zu bytes); rename it",
			  strlen(path));
		drgw_catalog_set_settling(gw->cat, path, false);
		return;
	}
	r = drgw_catalog_latest_version(gw->cat, path, &last);
	if (r == 0 && last.state == DRGW_VERSION_SEALED) {
		drgw_catalog_reschedule_version(gw->cat, last.id, 0);
		drgw_catalog_set_settling(gw->cat, path, false);
		drgw_version_release(&last);
		drgw_gateway_kick_encoder(gw);
		return;
	}
	if (r == 0 && last.size == (uint64_t)st.st_size &&
	    last.mtime_ns == (int64_t)st.st_mtim.tv_sec * NSEC_PER_SEC +
				     st.st_mtim.tv_nsec) {
		/* Opened for writing but left as it was. */
		drgw_catalog_set_settling(gw->cat, path, false);
		drgw_version_release(&last);
		return;
	}
	drgw_version_release(&last);

	drgw_seal_make_vid(now, v.vid, sizeof(v.vid));
	v.name = (char *)path;
	v.size = (uint64_t)st.st_size;
	v.mtime_ns = (int64_t)st.st_mtim.tv_sec * NSEC_PER_SEC + st.st_mtim.tv_nsec;
	v.mode = st.st_mode & 07777;
	v.created_ns = now;
	r = drgw_catalog_add_version(gw->cat, &v);
	if (r < 0) {
		/* The file stays as it is; the next start's scan seals it. */
		log_error("cannot record snapshot %s in the catalog: %s", path,
			  strerror(-r));
		return;
	}
	log_info("sealed %s as version %s (%llu bytes)", path, v.vid,
		 (unsigned long long)v.size);
	drgw_gateway_kick_encoder(gw);
}

struct due {
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
	if (!d->stopping && at > d->now) {
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
	/* Cleared before sealing: a write from now on dirties it again. */
	n->seal_at = 0;
	atomic_store(&n->dirty, false);
	return 0;
}

void *drgw_sealer_main(void *arg)
{
	struct drgw_gateway *gw = arg;
	uint64_t seen = 0;

	for (;;) {
		struct due d = { .cfg = gw->cfg, .now = drgw_mono_ns(),
				 .next = INT64_MAX };

		d.stopping = atomic_load(&gw->sealing_stopped);
		drgw_nodes_lock(gw->nodes);
		drgw_nodes_each_locked(gw->nodes, collect_due, &d);
		drgw_nodes_unlock(gw->nodes);
		for (size_t i = 0; i < d.n; i++) {
			seal_one(gw, d.paths[i]);
			free(d.paths[i]);
		}
		free(d.paths);
		if (d.stopping)
			break;
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
		changed = last.size != (uint64_t)st->st_size ||
			  last.mtime_ns != (int64_t)st->st_mtim.tv_sec *
							   NSEC_PER_SEC +
						   st->st_mtim.tv_nsec;
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

int drgw_seal_scan(struct drgw_gateway *gw)
{
	int r = drgw_catalog_clear_settling(gw->cat);

	return r < 0 ? r : scan_dir(gw, "", 0);
}

int drgw_seal_scan_dir(struct drgw_gateway *gw, const char *dir)
{
	return scan_dir(gw, dir, 0);
}
