/* SPDX-License-Identifier: MIT */
/*
 * The gateway: everything one drgw process holds for a cache directory.
 *
 *   <cache>/files/     the working set the mount shows (gateway mode); a
 *                      gateway without a mount (watch.h) has the user's
 *                      directory as its working set instead
 *   <cache>/spool/     encoded objects waiting for replication
 *   <cache>/held/      files removed before their version was encoded
 *   <cache>/catalog.db the catalog (catalog.h)
 *   <cache>/lock       flock()ed by the daemon; holds its pid
 *
 * drgw_gateway_open() checks and loads everything that can be wrong in the
 * configuration (cache dir, key, backends) so the daemon fails before it
 * mounts; drgw_gateway_start() starts the sealer, encoder and replicator
 * threads (seal.c, spool.c, replicate.c); drgw_gateway_stop() drains and
 * stops them.
 */
#ifndef DRGW_GATEWAY_H
#define DRGW_GATEWAY_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "backend.h"
#include "catalog.h"
#include "config.h"
#include "format.h"
#include "key.h"
#include "nodes.h"

enum drgw_gateway_mode {
	/* The daemon behind a gateway mount: exclusive, read-write. */
	DRGW_MODE_DAEMON,
	/* The daemon behind a restore mount: exclusive, backends read-only. */
	DRGW_MODE_RESTORE,
	/* A CLI command next to a running daemon: shared, catalog only. */
	DRGW_MODE_CLIENT,
	/* A CLI command that reads backends (restore, verify). */
	DRGW_MODE_CLIENT_BACKENDS,
};

/* Flags for drgw_gateway_open().  NEED_KEY: something that decrypts (a
 * master key or an identity); ENCRYPT: something to encrypt to (a master
 * key or a recipient).  Both load every key setting there is. */
#define DRGW_OPEN_NEED_KEY (1u << 0)
#define DRGW_OPEN_ENCRYPT (1u << 3)
#define DRGW_OPEN_NEED_BACKENDS (1u << 1)
/* Client modes: open the backends for writing too (drgw backfill). */
#define DRGW_OPEN_WRITE_BACKENDS (1u << 2)
/* Daemon mode without a mount: no <cache>/files; drgw_watch_attach()
 * gives the gateway its working set (watch.h). */
#define DRGW_OPEN_NO_MOUNT (1u << 4)

struct drgw_watch;

struct drgw_gateway {
	const struct drgw_config *cfg;
	enum drgw_gateway_mode mode;
	char cache_dir[PATH_MAX - 64];
	char files_dir[PATH_MAX];
	int files_fd;
	int spool_fd;
	/* <cache>/held: hard links to files removed before their version
	 * was encoded, named by version id. */
	int held_fd;
	/* <cache>/blocks: block maps of the newest version of each series,
	 * what its next version can be an increment of (delta.h). */
	int blocks_fd;
	int lock_fd;
	struct drgw_catalog *cat;
	struct drgw_keyring keys;
	/* The repository new objects are bound to (daemon), or the one a
	 * reader expects (have_repo false: none given, accept any one). */
	uint8_t repo_id[DRGW_REPO_ID_BYTES];
	bool have_repo;
	const char *repo_source; /* "new", "from the catalog", ... */
	struct drgw_backend *backends[DRGW_MAX_BACKENDS];
	const char *backend_names[DRGW_MAX_BACKENDS];
	size_t n_backends;
	/* With a mount: what fs.c tells about files.  NULL without. */
	struct drgw_nodes *nodes;
	/* Without a mount: the directory watch.c seals from.  NULL with. */
	struct drgw_watch *watch;

	/* Protects the wait conditions below and the replicator's counters. */
	pthread_mutex_t lock;
	pthread_cond_t seal_cond;
	pthread_cond_t encode_cond;
	pthread_cond_t replicate_cond;
	/* Wake-up counters, under lock: a waiter sleeps only if the counter
	 * did not move since it last looked, so no kick is ever lost. */
	uint64_t seal_kicks;
	uint64_t encode_kicks;
	uint64_t replicate_kicks;
	/* Workers sleep at most this long between catalog polls. */
	int64_t poll_ns;

	/* Shutdown phases, in order: no new seals are scheduled and pending
	 * ones are sealed at once; then threads exit when idle; then uploads
	 * in flight are cancelled (they save their resume tokens). */
	atomic_bool sealing_stopped;
	atomic_bool draining;
	atomic_bool exiting;
	atomic_bool cancel_uploads;
	/* Set from a signal handler: give up draining now. */
	atomic_bool abort_drain;

	/* Files taken off the node table to be sealed right now. */
	atomic_uint_fast64_t seals_in_flight;
	/* What the lock file says of it (drgw_seal_publish()). */
	atomic_uint_fast64_t published_unsealed;

	/* Index records (index.h): replicas done per backend since its last
	 * index (atomic), and when that was written (under lock). */
	atomic_uint index_dirty[DRGW_MAX_BACKENDS];
	int64_t index_at[DRGW_MAX_BACKENDS];
	bool index_busy[DRGW_MAX_BACKENDS];
	/* The backend refused to delete an old index record: do not ask
	 * again in this process (under lock: only the writer of b). */
	bool index_no_delete[DRGW_MAX_BACKENDS];

	/* Replicator state, under lock. */
	unsigned inflight[DRGW_MAX_BACKENDS];
	unsigned inflight_total;
	unsigned streams_active; /* uploads following the encoder */
	struct drgw_stream_ended *streams_ended; /* stream.c, to join */
	bool encoding; /* the encoder is busy with a version */

	pthread_t sealer;
	pthread_t encoder;
	pthread_t *replicators;
	unsigned n_replicators;
	bool started;
};

/* Index of the configured backend called name, or -1. */
ssize_t drgw_gateway_backend_index(const struct drgw_gateway *gw,
				   const char *name);

int drgw_gateway_open(const struct drgw_config *cfg, enum drgw_gateway_mode mode,
		      unsigned flags, struct drgw_gateway **ret,
		      struct drgw_err *err);
struct drgw_gateway *drgw_gateway_close(struct drgw_gateway *gw);

/* Starts the sealer, encoder and replicator threads (daemon mode).  Call
 * after fork()ing into the background. */
int drgw_gateway_start(struct drgw_gateway *gw, struct drgw_err *err);
/* Seals what is waiting, then lets the encoder and the replicator work
 * until done(gw, arg) says enough (NULL: until nothing is left to do) or
 * drain_ns passed, then cancels what is left and joins all threads.
 * Returns the number of versions and replicas still pending. */
uint64_t drgw_gateway_stop(struct drgw_gateway *gw, int64_t drain_ns,
			   bool (*done)(struct drgw_gateway *gw, void *arg),
			   void *arg);

/* Is a daemon holding the cache dir's lock?  *ret_pid when known. */
bool drgw_gateway_daemon_running(const char *cache_dir, long *ret_pid);
/* Files the running daemon has closed and not sealed yet, as it last
 * published them in its lock file (drgw_gateway_publish_unsealed()); 0
 * without a daemon. */
uint64_t drgw_gateway_daemon_unsealed(const char *cache_dir);
void drgw_gateway_publish_unsealed(struct drgw_gateway *gw, uint64_t n);

/* Wakes the threads.  Callers may hold the nodes lock but not gw->lock. */
void drgw_gateway_kick_sealer(struct drgw_gateway *gw);
void drgw_gateway_kick_encoder(struct drgw_gateway *gw);
void drgw_gateway_kick_replicators(struct drgw_gateway *gw);
/* Sleeps on cond for up to timeout_ns (capped at poll_ns) unless *kicks
 * moved past *seen; updates *seen.  Takes gw->lock itself. */
void drgw_gateway_wait(struct drgw_gateway *gw, pthread_cond_t *cond,
		       const uint64_t *kicks, uint64_t *seen,
		       int64_t timeout_ns);

/* Backoff before attempt n+1: full jitter between retry-min and
 * min(retry-max, retry-min * 2^n). */
int64_t drgw_gateway_backoff(const struct drgw_gateway *gw, unsigned attempts);

/* --- seal.c --- */
/* A new version id for a time: "20261125T231858Z-1f2e3d4c", sorting by
 * time, unique per gateway. */
void drgw_make_vid(int64_t now_ns, char *buf, size_t size);
/* Records size, mtime, ctime and permission bits of st in v. */
void drgw_version_stamp(struct drgw_version *v, const struct stat *st);
/* Does st still describe the content v was sealed from?  ctime is what
 * catches a rewrite that put size and mtime back (cp -p, rsync -t). */
bool drgw_version_matches_file(const struct drgw_version *v,
			       const struct stat *st);
/* Scans the working set for files changed while no daemon ran and
 * schedules them for sealing. */
int drgw_seal_scan(struct drgw_gateway *gw);
/* The same for the files below dir (after a directory was renamed). */
int drgw_seal_scan_dir(struct drgw_gateway *gw, const char *dir);
/* Schedules n (held under the nodes lock) to be sealed after the settle
 * delay, unless excluded or open for writing. */
void drgw_seal_schedule_locked(struct drgw_gateway *gw, struct drgw_node *n);
void *drgw_sealer_main(void *arg);
/* Closed files not sealed yet (waiting out the settle delay, being
 * sealed, or waiting to retry a seal that failed). */
uint64_t drgw_seal_pending(struct drgw_gateway *gw);
/* Writes drgw_seal_pending() + extra into the lock file, if it changed. */
void drgw_seal_publish(struct drgw_gateway *gw, uint64_t extra);
/* What `drgw run` waits for: drgw_catalog_run_pending() plus the files
 * only this process knows are waiting to be sealed. */
uint64_t drgw_gateway_run_pending(struct drgw_gateway *gw,
				  unsigned min_backends);

/* --- spool.c --- */
void *drgw_encoder_main(void *arg);
/* Removes leftovers in the spool: temp files and objects of versions that
 * are fully replicated or unknown. */
int drgw_spool_cleanup(struct drgw_gateway *gw);
/* Before name is unlinked or replaced: if its newest version is not
 * encoded yet, keep the content for the encoder.  Called by fs.c. */
void drgw_spool_hold(struct drgw_gateway *gw, const char *name);
/* "<vid>.drgw": the key of a version's object, in the spool and remotely. */
void drgw_spool_name(const char *vid, char *buf, size_t size);

/* --- replicate.c --- */
void *drgw_replicator_main(void *arg);
/* Writes the index record of every backend that got uploads since its
 * last one, if due (force: now, as when stopping).  Called by idle
 * replicators and by drgw_gateway_stop(). */
void drgw_replicate_write_indexes(struct drgw_gateway *gw, bool force);

#endif
