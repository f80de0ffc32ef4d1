/* SPDX-License-Identifier: MIT */
/*
 * Gateway lifecycle; see gateway.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drgw-build.h"
#include "gateway.h"
#include "log.h"
#include "stream.h"
#include "watch.h"

static int open_dir(const char *path, int *ret_fd, struct drgw_err *err)
{
	int r = drgw_mkdir_p(path, 0700);

	if (r == 0) {
		*ret_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = *ret_fd < 0 ? -errno : 0;
	}
	if (r < 0)
		drgw_err_set(err, "cannot use directory %s: %s", path,
			     strerror(-r));
	return r;
}

/* The cache holds the working set, the catalog (resume tokens) and the
 * spool: nobody else's business, also in a directory made before with a
 * looser mode. */
static void make_private_dir(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 077) &&
	    st.st_uid == geteuid()) {
		if (chmod(path, st.st_mode & 0700) == 0)
			log_warning("cache directory %s was accessible by group or others (mode %04o); made it 0700",
				    path, (unsigned)(st.st_mode & 07777));
	}
}

/* The pid in the lock file is for messages only; the flock() is what
 * excludes a second daemon.  Its second line counts the files closed and
 * not sealed yet (drgw_seal_publish()), at a fixed place, so that it is
 * rewritten in place: it must tell `drgw wait` the truth when the cache
 * disk is too full for the catalog to record them. */
#define LOCK_UNSEALED_AT 20

static int write_pid(struct drgw_gateway *gw)
{
	char pid[64];
	int n = snprintf(pid, sizeof(pid), "%010ld\nunsealed %010d\n",
			 (long)getpid(), 0);

	if (ftruncate(gw->lock_fd, 0) < 0)
		return -errno;
	return drgw_pwrite_full(gw->lock_fd, pid, (size_t)n, 0);
}

static int take_lock(struct drgw_gateway *gw, struct drgw_err *err)
{
	char path[PATH_MAX + 8];
	long other = 0;

	snprintf(path, sizeof(path), "%s/lock", gw->cache_dir);
	gw->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (gw->lock_fd < 0) {
		drgw_err_set(err, "cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(gw->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		drgw_gateway_daemon_running(gw->cache_dir, &other);
		if (e == EWOULDBLOCK)
			drgw_err_set(err,
				     "cache directory %s is in use by another drgw (pid %ld); stop it or use another --cache",
				     gw->cache_dir, other);
		else
			drgw_err_set(err, "cannot lock %s: %s", path, strerror(e));
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	if (write_pid(gw) < 0) {
		drgw_err_set(err, "cannot write %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

void drgw_gateway_publish_unsealed(struct drgw_gateway *gw, uint64_t n)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%010llu", (unsigned long long)n);
	if (gw->lock_fd >= 0)
		(void)drgw_pwrite_full(gw->lock_fd, buf, 10, LOCK_UNSEALED_AT);
}

uint64_t drgw_gateway_daemon_unsealed(const char *cache_dir)
{
	char path[PATH_MAX + 8], buf[64] = "";
	uint64_t n = 0;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/lock", cache_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	len = drgw_pread_full(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (len >= LOCK_UNSEALED_AT + 10 &&
	    !memcmp(buf + LOCK_UNSEALED_AT - 9, "unsealed ", 9)) {
		buf[LOCK_UNSEALED_AT + 10] = '\0';
		if (drgw_parse_u64(buf + LOCK_UNSEALED_AT, &n) < 0)
			n = 0;
	}
	return n;
}

bool drgw_gateway_daemon_running(const char *cache_dir, long *ret_pid)
{
	char path[PATH_MAX + 8], buf[32] = "";
	bool running = false;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/lock", cache_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
		running = true;
	n = drgw_pread_full(fd, buf, sizeof(buf) - 1, 0);
	if (n > 0 && ret_pid) {
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		uint64_t pid;
		*ret_pid = drgw_parse_u64(buf, &pid) == 0 ? (long)pid : 0;
	}
	close(fd);
	return running;
}

static int load_keys(struct drgw_gateway *gw, unsigned flags,
		     struct drgw_err *err)
{
	const struct drgw_config *cfg = gw->cfg;
	int r = 0;

	for (size_t i = 0; r == 0 && i < cfg->n_key_files; i++)
		r = drgw_keyring_add_file(&gw->keys, cfg->key_files[i], err);
	for (size_t i = 0; r == 0 && i < cfg->n_identity_files; i++)
		r = drgw_keyring_add_identity_file(&gw->keys,
						   cfg->identity_files[i], err);
	for (size_t i = 0; r == 0 && i < cfg->n_recipients; i++)
		r = drgw_keyring_add_recipient(&gw->keys, cfg->recipients[i],
					       err);
	for (size_t i = 0; r == 0 && i < cfg->n_recipient_files; i++)
		r = drgw_keyring_add_recipient_file(&gw->keys,
						    cfg->recipient_files[i], err);
	if (r < 0)
		return r;
	if ((flags & DRGW_OPEN_ENCRYPT) && !drgw_keyring_can_encrypt(&gw->keys)) {
		drgw_err_set(err,
			     "no key to encrypt with: pass --key-file FILE (create one with 'drgw keygen FILE') or --recipient drgw1... (from 'drgw keygen --identity FILE')");
		return -ENOKEY;
	}
	if ((flags & DRGW_OPEN_ENCRYPT) &&
	    (gw->keys.n ? 1 : 0) + gw->keys.n_recips > DRGW_OBJ_STANZAS_MAX) {
		drgw_err_set(err,
			     "an object can be encrypted to at most %d keys and recipients (the key file counts as one): %zu given",
			     DRGW_OBJ_STANZAS_MAX,
			     (gw->keys.n ? 1 : 0) + gw->keys.n_recips);
		return -E2BIG;
	}
	if ((flags & DRGW_OPEN_NEED_KEY) && !drgw_keyring_can_decrypt(&gw->keys)) {
		drgw_err_set(err,
			     gw->keys.n_recips ?
				     "recipients only encrypt; reading backups needs the identity: pass --identity FILE (or the --key-file they were written with)" :
				     "no key: pass --key-file FILE or --identity FILE (create one with 'drgw keygen'), or set key-file or identity in the config");
		return -ENOKEY;
	}
	return 0;
}

static int load_backends(struct drgw_gateway *gw, bool read_only,
			 struct drgw_err *err)
{
	const struct drgw_config *cfg = gw->cfg;
	const char *dir = cfg->plugin_dir ? cfg->plugin_dir : DRGW_PLUGIN_DIR;

	if (cfg->n_backends == 0) {
		drgw_err_set(err,
			     "no backend: pass --backend NAME=URL (e.g. --backend offsite=local:///srv/backup) or add a [backend \"NAME\"] section to the config");
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->n_backends; i++) {
		int r = drgw_backend_load(dir, &cfg->backends[i], read_only,
					  &gw->backends[i], err);

		if (r < 0)
			return r;
		gw->backend_names[i] = gw->backends[i]->name;
		gw->n_backends = i + 1;
	}
	return 0;
}

struct newest_key {
	char key[128];
};

static int on_key(void *arg, const char *key, const struct drgw_object_info *info)
{
	struct newest_key *nk = arg;
	size_t n = strlen(key);

	/* Version ids start with the seal time: the greatest is newest. */
	if (n > 5 && n < sizeof(nk->key) && !strchr(key, '/') &&
	    !strcmp(key + n - 5, ".drgw") && strcmp(key, nk->key) > 0)
		drgw_strlcpy(nk->key, key, sizeof(nk->key));
	return 0;
}

/* The repository id in the header of version-2 object key on backend b,
 * authenticated where the keyring can open it (a writer with recipients
 * only cannot: whoever may write the bucket can make such objects anyway,
 * for any repository). */
static int object_repository(struct drgw_gateway *gw, size_t b,
			     const char *key, uint8_t repo[DRGW_REPO_ID_BYTES])
{
	uint8_t *h = malloc(DRGW_OBJ_HEADER_MAX);
	struct drgw_err e = { 0 };
	size_t len;
	int r = -EIO;

	if (!h)
		return -ENOMEM;
	if (drgw_backend_read(gw->backends[b], key, 0, h, DRGW_OBJ_HEADER_FIXED,
			      &e) < 0 ||
	    memcmp(h, "DRGWOBJ\n", 8) || h[8] != 2 || h[9] != 0)
		goto out;
	len = (size_t)h[16] | (size_t)h[17] << 8 | (size_t)h[18] << 16 |
	      (size_t)h[19] << 24;
	if (drgw_keyring_can_decrypt(&gw->keys)) {
		struct drgw_obj hdr;

		if (len < DRGW_OBJ_HEADER_FIXED || len > DRGW_OBJ_HEADER_MAX ||
		    drgw_backend_read(gw->backends[b], key, 0, h, len, &e) < 0)
			goto out;
		r = drgw_obj_init_header(&hdr, h, len, &gw->keys, &e);
		drgw_obj_clear(&hdr);
		if (r < 0) {
			log_warning("not carrying on the repository of %s on %s: %s",
				    key, gw->backend_names[b], e.msg);
			goto out;
		}
	}
	memcpy(repo, h + 24, DRGW_REPO_ID_BYTES);
	r = 0;
out:
	free(h);
	return r;
}

/* The repository of the newest version-2 object on the backends: a new
 * cache (a rebuilt cluster) writing to the same buckets carries on the
 * same repository instead of starting a second one.  -ENOENT if there is
 * none.  A backend that cannot be listed now (an outage must not stop
 * backups) may hold it: then restores name both repositories, and
 * --repository picks one. */
static int repository_on_backends(struct drgw_gateway *gw,
				  uint8_t repo[DRGW_REPO_ID_BYTES])
{
	const char *unlisted = NULL;

	for (size_t b = 0; b < gw->n_backends; b++) {
		struct newest_key nk = { "" };
		struct drgw_err e = { 0 };

		if (drgw_backend_list_all(gw->backends[b], "", on_key, &nk, &e) < 0)
			unlisted = gw->backend_names[b];
		else if (nk.key[0] &&
			 object_repository(gw, b, nk.key, repo) == 0)
			return 0;
	}
	if (unlisted)
		log_warning("a new cache carries on the repository its backends hold, but %s cannot be listed now: starting a new one (set repository = ... to carry on the old; 'drgw status' of the old cache shows it)",
			    unlisted);
	return -ENOENT;
}

/*
 * The repository id: the configuration's, or the catalog's, or (a daemon
 * with a new cache) the one the backends already hold, or a new one.  A
 * daemon records it in the catalog; a reader only learns what to expect.
 */
static int establish_repository(struct drgw_gateway *gw, struct drgw_err *err)
{
	const char *cfg_repo = gw->cfg->repository;
	char hex[2 * DRGW_REPO_ID_BYTES + 1] = "";
	const char *how = "from the configuration";
	bool known = drgw_catalog_get_meta(gw->cat, "repository_id", hex,
					   sizeof(hex)) == 0;

	if (cfg_repo && known && strcmp(cfg_repo, hex)) {
		drgw_err_set(err,
			     "cache directory %s belongs to repository %s, but the configuration says %s; use another --cache",
			     gw->cache_dir, hex, cfg_repo);
		return -EINVAL;
	}
	if (cfg_repo) {
		drgw_unhex(cfg_repo, gw->repo_id, DRGW_REPO_ID_BYTES);
	} else if (known && drgw_unhex(hex, gw->repo_id, DRGW_REPO_ID_BYTES) == 0) {
		how = "from the catalog";
	} else if (gw->mode != DRGW_MODE_DAEMON) {
		return 0; /* a reader without expectations */
	} else if (repository_on_backends(gw, gw->repo_id) == 0) {
		how = "found on the backends";
	} else {
		randombytes_buf(gw->repo_id, DRGW_REPO_ID_BYTES);
		how = "new";
	}
	gw->have_repo = true;
	gw->repo_source = how;
	drgw_hex(gw->repo_id, DRGW_REPO_ID_BYTES, hex);
	if (gw->mode == DRGW_MODE_DAEMON && !known &&
	    drgw_catalog_set_meta(gw->cat, "repository_id", hex) < 0) {
		drgw_err_set(err, "cannot record the repository id in the catalog");
		return -EIO;
	}
	return 0;
}

ssize_t drgw_gateway_backend_index(const struct drgw_gateway *gw,
				   const char *name)
{
	for (size_t i = 0; i < gw->n_backends; i++)
		if (!strcmp(gw->backend_names[i], name))
			return (ssize_t)i;
	return -1;
}

/* A backend added to the configuration gets what is encoded from now on;
 * say how to give it what came before. */
static void hint_backfill(struct drgw_gateway *gw, const char *backend)
{
	int64_t n = drgw_catalog_count_newest_missing(gw->cat, backend);

	if (n > 0)
		log_warning("backend %s does not have the newest version of %lld snapshots, encoded before it was configured; 'drgw backfill %s' copies them from the other backends",
			    backend, (long long)n, backend);
}

int drgw_gateway_open(const struct drgw_config *cfg, enum drgw_gateway_mode mode,
		      unsigned flags, struct drgw_gateway **ret,
		      struct drgw_err *err)
{
	bool exclusive = mode == DRGW_MODE_DAEMON || mode == DRGW_MODE_RESTORE;
	pthread_condattr_t ca;
	char path[PATH_MAX + 16];
	struct drgw_gateway *gw;
	int r;

	if (!cfg->cache_dir) {
		drgw_err_set(err,
			     "no cache directory: pass --cache DIR or set cache in the config");
		return -EINVAL;
	}
	if (strlen(cfg->cache_dir) > PATH_MAX - 64) {
		drgw_err_set(err, "cache directory path is too long");
		return -ENAMETOOLONG;
	}
	if (sodium_init() < 0) {
		drgw_err_set(err, "cannot initialise libsodium");
		return -EIO;
	}
	gw = calloc(1, sizeof(*gw));
	if (!gw)
		return -ENOMEM;
	gw->cfg = cfg;
	gw->mode = mode;
	gw->files_fd = gw->spool_fd = gw->held_fd = gw->lock_fd = -1;
	gw->blocks_fd = -1;
	gw->poll_ns = 5 * NSEC_PER_SEC;
	pthread_mutex_init(&gw->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&gw->seal_cond, &ca);
	pthread_cond_init(&gw->encode_cond, &ca);
	pthread_cond_init(&gw->replicate_cond, &ca);
	pthread_condattr_destroy(&ca);
	drgw_strlcpy(gw->cache_dir, cfg->cache_dir, sizeof(gw->cache_dir));
	snprintf(gw->files_dir, sizeof(gw->files_dir), "%s/files", gw->cache_dir);

	if (exclusive) {
		r = drgw_mkdir_p(gw->cache_dir, 0700);
		if (r < 0) {
			drgw_err_set(err, "cannot create cache directory %s: %s",
				     gw->cache_dir, strerror(-r));
			goto fail;
		}
		make_private_dir(gw->cache_dir);
		r = take_lock(gw, err);
		if (r < 0)
			goto fail;
	} else if (access(gw->cache_dir, F_OK) < 0 &&
		   mode == DRGW_MODE_CLIENT) {
		drgw_err_set(err,
			     "cache directory %s does not exist: nothing was backed up with it yet",
			     gw->cache_dir);
		r = -ENOENT;
		goto fail;
	}
	if (mode == DRGW_MODE_DAEMON) {
		r = flags & DRGW_OPEN_NO_MOUNT ?
			    0 :
			    open_dir(gw->files_dir, &gw->files_fd, err);
		if (r == 0) {
			snprintf(path, sizeof(path), "%s/spool", gw->cache_dir);
			r = open_dir(path, &gw->spool_fd, err);
		}
		if (r == 0) {
			snprintf(path, sizeof(path), "%s/held", gw->cache_dir);
			r = open_dir(path, &gw->held_fd, err);
		}
		if (r == 0) {
			snprintf(path, sizeof(path), "%s/blocks", gw->cache_dir);
			r = open_dir(path, &gw->blocks_fd, err);
		}
		if (r < 0)
			goto fail;
	}
	if (mode == DRGW_MODE_CLIENT_BACKENDS)
		drgw_mkdir_p(gw->cache_dir, 0700);
	snprintf(path, sizeof(path), "%s/catalog.db", gw->cache_dir);
	if (mode == DRGW_MODE_CLIENT && access(path, F_OK) < 0) {
		drgw_err_set(err,
			     "no catalog in %s: nothing was backed up with this cache directory yet",
			     gw->cache_dir);
		r = -ENOENT;
		goto fail;
	}
	r = drgw_catalog_open(path, false, &gw->cat, err);
	if (r < 0)
		goto fail;
	if (flags & (DRGW_OPEN_NEED_KEY | DRGW_OPEN_ENCRYPT)) {
		r = load_keys(gw, flags, err);
		if (r < 0)
			goto fail;
	}
	if (flags & DRGW_OPEN_NEED_BACKENDS) {
		r = load_backends(gw, mode != DRGW_MODE_DAEMON &&
					      !(flags & DRGW_OPEN_WRITE_BACKENDS),
				  err);
		if (r < 0)
			goto fail;
	}
	r = establish_repository(gw, err);
	if (r < 0)
		goto fail;
	if (mode == DRGW_MODE_DAEMON) {
		for (size_t i = 0; i < gw->n_backends; i++) {
			r = drgw_catalog_add_backend(gw->cat, gw->backend_names[i],
						     gw->backends[i]->url);
			if (r < 0) {
				drgw_err_set(err, "cannot update catalog: %s",
					     strerror(-r));
				goto fail;
			}
			hint_backfill(gw, gw->backend_names[i]);
		}
		gw->nodes = flags & DRGW_OPEN_NO_MOUNT ? NULL : drgw_nodes_new();
		if (!gw->nodes && !(flags & DRGW_OPEN_NO_MOUNT)) {
			r = -ENOMEM;
			goto fail;
		}
	}
	*ret = gw;
	return 0;
fail:
	drgw_gateway_close(gw);
	return r;
}

struct drgw_gateway *drgw_gateway_close(struct drgw_gateway *gw)
{
	if (!gw)
		return NULL;
	if (gw->started)
		drgw_gateway_stop(gw, 0, NULL, NULL);
	for (size_t i = 0; i < gw->n_backends; i++)
		gw->backends[i] = drgw_backend_free(gw->backends[i]);
	drgw_catalog_close(gw->cat);
	drgw_keyring_clear(&gw->keys);
	drgw_nodes_free(gw->nodes);
	drgw_watch_free(gw->watch);
	if (gw->files_fd >= 0)
		close(gw->files_fd);
	if (gw->spool_fd >= 0)
		close(gw->spool_fd);
	if (gw->held_fd >= 0)
		close(gw->held_fd);
	if (gw->blocks_fd >= 0)
		close(gw->blocks_fd);
	if (gw->lock_fd >= 0)
		close(gw->lock_fd); /* releases the flock */
	pthread_cond_destroy(&gw->seal_cond);
	pthread_cond_destroy(&gw->encode_cond);
	pthread_cond_destroy(&gw->replicate_cond);
	pthread_mutex_destroy(&gw->lock);
	free(gw->replicators);
	free(gw);
	return NULL;
}

static void kick(struct drgw_gateway *gw, pthread_cond_t *cond,
		 uint64_t *kicks)
{
	pthread_mutex_lock(&gw->lock);
	(*kicks)++;
	pthread_cond_broadcast(cond);
	pthread_mutex_unlock(&gw->lock);
}

void drgw_gateway_kick_sealer(struct drgw_gateway *gw)
{
	kick(gw, &gw->seal_cond, &gw->seal_kicks);
	drgw_watch_wake(gw->watch);
}

void drgw_gateway_kick_encoder(struct drgw_gateway *gw)
{
	kick(gw, &gw->encode_cond, &gw->encode_kicks);
}

void drgw_gateway_kick_replicators(struct drgw_gateway *gw)
{
	kick(gw, &gw->replicate_cond, &gw->replicate_kicks);
}

void drgw_gateway_wait(struct drgw_gateway *gw, pthread_cond_t *cond,
		       const uint64_t *kicks, uint64_t *seen,
		       int64_t timeout_ns)
{
	struct timespec ts;
	int64_t abs;

	/* The condition variables run on the monotonic clock, so a clock step
	 * cannot make a worker sleep for hours; and no sleep is longer than
	 * poll_ns, so even a missed deadline costs little. */
	if (timeout_ns > gw->poll_ns)
		timeout_ns = gw->poll_ns;
	pthread_mutex_lock(&gw->lock);
	if (*kicks == *seen && timeout_ns > 0) {
		abs = drgw_mono_ns() + timeout_ns;
		ts.tv_sec = abs / NSEC_PER_SEC;
		ts.tv_nsec = abs % NSEC_PER_SEC;
		pthread_cond_timedwait(cond, &gw->lock, &ts);
	}
	*seen = *kicks;
	pthread_mutex_unlock(&gw->lock);
}

int64_t drgw_gateway_backoff(const struct drgw_gateway *gw, unsigned attempts)
{
	int64_t lo = gw->cfg->retry_min_ns, hi = lo;

	for (unsigned i = 0; i < attempts && hi < gw->cfg->retry_max_ns; i++)
		hi *= 2;
	if (hi > gw->cfg->retry_max_ns)
		hi = gw->cfg->retry_max_ns;
	if (hi <= lo)
		return lo;
	return lo + (int64_t)((double)(hi - lo) * randombytes_uniform(1u << 30) /
			      (double)(1u << 30));
}

/* fuse_daemonize() may have forked us since drgw_gateway_open().  SQLite's
 * POSIX locks belonged to the parent that exited, so the catalog must be
 * opened again by this process: with the old connection, a `drgw ls` that
 * closes the catalog would believe itself its last user and delete the
 * WAL the daemon still writes to. */
static int reopen_after_fork(struct drgw_gateway *gw, struct drgw_err *err)
{
	char path[PATH_MAX + 16];

	gw->cat = drgw_catalog_close(gw->cat);
	snprintf(path, sizeof(path), "%s/catalog.db", gw->cache_dir);
	write_pid(gw);
	return drgw_catalog_open(path, false, &gw->cat, err);
}

int drgw_gateway_start(struct drgw_gateway *gw, struct drgw_err *err)
{
	unsigned n = gw->cfg->upload_workers;
	char hex[2 * DRGW_REPO_ID_BYTES + 1];
	int r;

	drgw_hex(gw->repo_id, DRGW_REPO_ID_BYTES, hex);
	log_info("repository %s (%s)", hex, gw->repo_source);
	r = reopen_after_fork(gw, err);
	if (r < 0)
		return r;
	r = drgw_catalog_recover(gw->cat);
	if (r == 0)
		r = drgw_stream_recover(gw);
	if (r == 0)
		r = drgw_spool_cleanup(gw);
	if (r == 0 && !gw->watch)
		r = drgw_seal_scan(gw);
	if (r < 0) {
		drgw_err_set(err, "cannot recover state from %s: %s",
			     gw->cache_dir, strerror(-r));
		return r;
	}
	if (gw->watch) {
		r = drgw_watch_start(gw, err);
		if (r < 0)
			return r;
	}
	gw->replicators = calloc(n, sizeof(*gw->replicators));
	if (!gw->replicators)
		return -ENOMEM;
	if (pthread_create(&gw->sealer, NULL,
			   gw->watch ? drgw_watch_main : drgw_sealer_main, gw) ||
	    pthread_create(&gw->encoder, NULL, drgw_encoder_main, gw)) {
		drgw_err_set(err, "cannot start threads");
		return -EAGAIN;
	}
	gw->started = true;
	for (; gw->n_replicators < n; gw->n_replicators++)
		if (pthread_create(&gw->replicators[gw->n_replicators], NULL,
				   drgw_replicator_main, gw))
			break;
	return 0;
}

/* Nothing left that the threads could make progress on? */
static bool idle(struct drgw_gateway *gw, void *arg)
{
	struct drgw_queue_stats qs;
	bool in_flight;

	pthread_mutex_lock(&gw->lock);
	in_flight = gw->inflight_total > 0 || gw->streams_active > 0 ||
		    gw->encoding;
	pthread_mutex_unlock(&gw->lock);
	if (in_flight || drgw_seal_pending(gw))
		return false;
	/* A catalog that cannot be read is not "done": wait for the drain
	 * deadline rather than claim everything is replicated. */
	if (drgw_catalog_queue_stats(gw->cat, NULL, &qs) < 0)
		return false;
	return qs.versions_unencoded == 0 && qs.replicas_pending == 0 &&
	       qs.files_settling == 0;
}

uint64_t drgw_gateway_run_pending(struct drgw_gateway *gw,
				  unsigned min_backends)
{
	/* Files waiting to be sealed first, the catalog second: a seal that
	 * ends in between is then in the catalog.  The other way round, a
	 * file counted by neither would let `drgw run` stop too early. */
	uint64_t sealing = drgw_seal_pending(gw);
	uint64_t n = 1;

	if (drgw_catalog_run_pending(gw->cat, min_backends, &n) < 0)
		n = 1;
	return n + sealing;
}

uint64_t drgw_gateway_stop(struct drgw_gateway *gw, int64_t drain_ns,
			   bool (*done)(struct drgw_gateway *gw, void *arg),
			   void *arg)
{
	int64_t deadline = drgw_mono_ns() + drain_ns;
	struct drgw_queue_stats qs = { 0 };

	if (!gw->started)
		return 0;
	/* Phase 1: seal everything that is closed, without the settle delay
	 * (the sealer goes on retrying what fails until phase 3). */
	atomic_store(&gw->sealing_stopped, true);
	drgw_gateway_kick_sealer(gw);

	/* Phase 2: let the encoder and the replicators work until idle or
	 * until the drain deadline. */
	atomic_store(&gw->draining, true);
	drgw_gateway_kick_encoder(gw);
	drgw_gateway_kick_replicators(gw);
	if (!done)
		done = idle;
	while (drgw_mono_ns() < deadline && !atomic_load(&gw->abort_drain) &&
	       !done(gw, arg))
		usleep(50 * 1000);

	/* What was replicated is written into each backend's index, so the
	 * next empty-cache restore need not open every object. */
	if (drgw_mono_ns() < deadline && !atomic_load(&gw->abort_drain))
		drgw_replicate_write_indexes(gw, true);

	/* Phase 3: stop; uploads in flight save their resume tokens. */
	atomic_store(&gw->exiting, true);
	atomic_store(&gw->cancel_uploads, true);
	drgw_gateway_kick_sealer(gw);
	drgw_gateway_kick_encoder(gw);
	drgw_gateway_kick_replicators(gw);
	pthread_join(gw->sealer, NULL);
	pthread_join(gw->encoder, NULL);
	for (unsigned i = 0; i < gw->n_replicators; i++)
		pthread_join(gw->replicators[i], NULL);
	/* Streaming uploads end on cancel_uploads. */
	for (;;) {
		unsigned left;

		pthread_mutex_lock(&gw->lock);
		left = gw->streams_active;
		pthread_mutex_unlock(&gw->lock);
		if (!left)
			break;
		usleep(20 * 1000);
	}
	drgw_stream_join(gw);
	gw->started = false;
	if (drgw_catalog_queue_stats(gw->cat, NULL, &qs) < 0)
		qs.replicas_pending = 1; /* unknown is not "nothing left" */
	return qs.replicas_pending + qs.versions_unencoded +
	       qs.files_settling + drgw_seal_pending(gw);
}
