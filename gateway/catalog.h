/* SPDX-License-Identifier: MIT */
/*
 * The catalog: SQLite (WAL) at <cache>/catalog.db.  It records every
 * snapshot version, the state of its replica on every backend, and a cache
 * of what restore mounts found on the backends.  Every state change is one
 * transaction, so after a crash the daemon resumes from exactly what the
 * catalog says.  The catalog is a cache of the truth, not the truth: remote
 * objects describe themselves, so a restore with an empty cache works.
 *
 * State machines (docs/OPERATIONS.md draws them):
 *   version: sealed --encode ok--> encoded      (file changed: row deleted)
 *            sealed --encode failed--> sealed with error and next attempt
 *   replica: pending --claim--> uploading --ok--> done
 *            uploading --error--> failing --claim--> uploading
 *            uploading --daemon restart--> pending (resume token kept)
 *
 * A struct drgw_catalog is one connection; all functions on it are
 * serialised by an internal mutex and thus thread-safe.  Several processes
 * may open the same catalog (the daemon writes, `drgw ls` reads).
 */
#ifndef DRGW_CATALOG_H
#define DRGW_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "sqlcheck.h"
#include "util.h"

struct drgw_catalog;

enum drgw_version_state {
	DRGW_VERSION_SEALED,
	DRGW_VERSION_ENCODED,
};

enum drgw_replica_state {
	DRGW_REPLICA_PENDING,
	DRGW_REPLICA_UPLOADING,
	DRGW_REPLICA_DONE,
	DRGW_REPLICA_FAILING,
};

struct drgw_version {
	int64_t id;
	char vid[64];
	char *name; /* malloc()ed; drgw_version_release() */
	uint64_t size;
	int64_t mtime_ns;
	/* ctime of the working-set file: size and mtime can be put back by
	 * cp -p or rsync -t, ctime cannot. */
	int64_t ctime_ns;
	uint32_t mode;
	int64_t created_ns;
	enum drgw_version_state state;
	uint64_t stored_size;
	char sha256[65];
	char object_sha256[65];
	char *error; /* malloc()ed or NULL */
	int64_t next_attempt_ns;
	uint32_t attempts;
	int64_t encoded_ns;
	/* Bumped whenever the version is made due again because its file
	 * changed; an encode that started before a bump must not commit. */
	int64_t reseal;
	/* malloc()ed or NULL: why this version may not be a good backup
	 * ("write-back failed: ...", "not closed cleanly: ..."). */
	char *problem;
	/* Incremental objects: increments since the last full object (0:
	 * full), and the version ids of the objects it takes blocks from,
	 * comma separated (malloc()ed, NULL for a full object). */
	unsigned delta_depth;
	char *delta_refs;
	/* The SQLite check's verdict (sqlcheck.h); NOT_CHECKED until the
	 * version is encoded. */
	struct drgw_sqlcheck_result check;
};

struct drgw_replica {
	int64_t version_id;
	char backend[64];
	char *key; /* malloc()ed */
	enum drgw_replica_state state;
	void *token; /* malloc()ed resume token or NULL */
	size_t token_len;
	uint32_t attempts;
	char *last_error;
	int64_t next_attempt_ns;
	uint64_t bytes_done;
	int64_t done_ns;
};

struct drgw_backend_row {
	char name[64];
	char *url;
	int64_t last_ok_ns;
	int64_t last_error_ns;
	char *last_error;
	uint64_t uploaded_bytes;
	uint64_t failures;
};

/* What a restore mount learnt about one remote object. */
struct drgw_remote_object {
	char backend[64];
	char *key;
	uint64_t object_size;
	char etag[128];
	char vid[64];
	char *name;
	uint64_t size;
	int64_t mtime_ns;
	int64_t created_ns;
	uint32_t mode;
	char sha256[65];
	/* Hex id of the key the object was written with. */
	char key_id[17];
	/* Hex repository id, "" for a version-1 object. */
	char repo[33];
	/* Its sealed footer and trailer (reader.h), or NULL; not owned, and
	 * only written (drgw_catalog_get_remote_tail() reads it). */
	const void *tail;
	size_t tail_len;
};

int drgw_catalog_open(const char *path, bool read_only,
		      struct drgw_catalog **ret, struct drgw_err *err);
struct drgw_catalog *drgw_catalog_close(struct drgw_catalog *c);

void drgw_version_release(struct drgw_version *v);
void drgw_replica_release(struct drgw_replica *r);
void drgw_backend_row_release(struct drgw_backend_row *b);
void drgw_remote_object_release(struct drgw_remote_object *o);

/* A value of the meta table (repository id, the mount's I/O path, ...):
 * 0, -ENOENT.  set: value NULL deletes the key. */
int drgw_catalog_get_meta(struct drgw_catalog *c, const char *key, char *buf,
			  size_t size);
int drgw_catalog_set_meta(struct drgw_catalog *c, const char *key,
			  const char *value);

/* --- writers (the daemon) --- */

/* Registers a configured backend (idempotent). */
int drgw_catalog_add_backend(struct drgw_catalog *c, const char *name,
			     const char *url);
/* After a crash: uploading replicas go back to pending (tokens kept). */
int drgw_catalog_recover(struct drgw_catalog *c);

/* Files closed after a change and waiting out the settle delay, so that
 * `drgw wait` and `drgw status` see them before they are sealed. */
int drgw_catalog_set_settling(struct drgw_catalog *c, const char *name,
			      bool settling);
int drgw_catalog_clear_settling(struct drgw_catalog *c);

/* Files open for writing through the mount, recorded while they are, so
 * that after a crash the next start knows which files may be partial. */
int drgw_catalog_set_writing(struct drgw_catalog *c, const char *name,
			     bool writing);
int drgw_catalog_rename_writing(struct drgw_catalog *c, const char *from,
				const char *to);
/* Calls fn for every file recorded as open for writing (by a daemon that
 * is gone, when called at start), then forgets them all. */
int drgw_catalog_take_writing(struct drgw_catalog *c,
			      int (*fn)(void *arg, const char *name), void *arg);
/* Ends settling of every file below directory dir (it was renamed). */
int drgw_catalog_clear_settling_below(struct drgw_catalog *c, const char *dir);

/* Inserts a sealed version (and ends name's settling); v->id is set. */
int drgw_catalog_add_version(struct drgw_catalog *c, struct drgw_version *v);
/* The oldest sealed version due for encoding, or -ENOENT. */
int drgw_catalog_next_sealed(struct drgw_catalog *c, int64_t now_ns,
			     struct drgw_version *ret);
/* Earliest next attempt of any sealed version, or INT64_MAX. */
int64_t drgw_catalog_next_sealed_due(struct drgw_catalog *c);
/* Marks v encoded and adds a replica per backend, atomically: pending, or
 * uploading where streaming[i] says an upload already follows the encoder
 * (streaming may be NULL).  -ESTALE (nothing changed) if v was resealed
 * since it was read. */
int drgw_catalog_set_encoded(struct drgw_catalog *c, const struct drgw_version *v,
			     const char *const *backends, size_t n_backends,
			     const bool *streaming, const char *key);
/* Makes a sealed version due again at next_attempt_ns without counting a
 * failure (the file changed; the next encode reads the newer content). */
int drgw_catalog_reschedule_version(struct drgw_catalog *c, int64_t id,
				    int64_t next_attempt_ns);
int drgw_catalog_set_encode_failed(struct drgw_catalog *c, int64_t id,
				   const char *error, int64_t next_attempt_ns);
/* Records the verdict of the SQLite check of version id (the encoder does
 * so just before it marks the version encoded). */
int drgw_catalog_set_check(struct drgw_catalog *c, int64_t id,
			   const struct drgw_sqlcheck_result *res);
int drgw_catalog_delete_version(struct drgw_catalog *c, int64_t id);

/* Snapshot names whose newest encoded version has no replica on backend
 * at all (encoded before the backend was configured).  -1 on error. */
int64_t drgw_catalog_count_newest_missing(struct drgw_catalog *c,
					  const char *backend);
/* Records that backend holds version vid under key, put there by `drgw
 * backfill` rather than by the replicator.  Nothing if the catalog does
 * not know vid as an encoded version. */
int drgw_catalog_adopt_replica(struct drgw_catalog *c, const char *vid,
			       const char *backend, const char *key,
			       uint64_t bytes);

/*
 * Claims the replica due first (next_attempt <= now) whose backend is one of
 * backends[] and not excluded by busy[i]; marks it uploading.  -ENOENT if
 * none is due; *ret_next_due then holds the earliest next attempt.
 */
int drgw_catalog_claim_replica(struct drgw_catalog *c, int64_t now_ns,
			       const char *const *backends, const bool *busy,
			       size_t n_backends, struct drgw_replica *ret,
			       int64_t *ret_next_due);
int drgw_catalog_save_token(struct drgw_catalog *c, int64_t version_id,
			    const char *backend, const void *token, size_t len);
int drgw_catalog_set_progress(struct drgw_catalog *c, int64_t version_id,
			      const char *backend, uint64_t bytes_done);
int drgw_catalog_replica_done(struct drgw_catalog *c, int64_t version_id,
			      const char *backend, uint64_t bytes);
int drgw_catalog_replica_failed(struct drgw_catalog *c, int64_t version_id,
				const char *backend, const char *error,
				int64_t next_attempt_ns);
/* A replica put back to pending without counting an attempt (shutdown). */
int drgw_catalog_replica_release(struct drgw_catalog *c, int64_t version_id,
				 const char *backend);
/* True when every replica of the version is done (spool can go). */
int drgw_catalog_all_replicated(struct drgw_catalog *c, int64_t version_id,
				bool *ret);

/* --- readers --- */

int drgw_catalog_get_version(struct drgw_catalog *c, const char *vid,
			     struct drgw_version *ret);
int drgw_catalog_get_version_by_id(struct drgw_catalog *c, int64_t id,
				   struct drgw_version *ret);
/* Newest version of name that is replicated (state done) to at least one
 * of backends[0..n), or -ENOENT. */
int drgw_catalog_newest_replicated(struct drgw_catalog *c, const char *name,
				   const char *const *backends, size_t n,
				   struct drgw_version *ret);
/* Latest encoded-or-sealed version of name, or -ENOENT. */
int drgw_catalog_latest_version(struct drgw_catalog *c, const char *name,
				struct drgw_version *ret);

typedef int (*drgw_version_fn)(void *arg, const struct drgw_version *v);
/* Versions ordered by name then created_ns; latest_only keeps the newest
 * of each name.  names (NULL-terminated, may be NULL) filters by name. */
int drgw_catalog_each_version(struct drgw_catalog *c, bool latest_only,
			      const char *const *names, drgw_version_fn fn,
			      void *arg);
/* Every version backend holds (replica done, not pruned), by vid. */
int drgw_catalog_each_on_backend(struct drgw_catalog *c, const char *backend,
				 drgw_version_fn fn, void *arg);
/* The version a new version of name could be an increment of: the newest
 * encoded version of its series (drgw_name_pattern()), or of name itself
 * if same_name, other than exclude, if every one of backends holds it.
 * -ENOENT. */
int drgw_catalog_delta_base(struct drgw_catalog *c, const char *name,
			    bool same_name, int64_t exclude,
			    const char *const *backends, size_t n_backends,
			    struct drgw_version *ret);
/* Calls fn for every version of name's series. */
int drgw_catalog_each_in_series(struct drgw_catalog *c, const char *name,
				drgw_version_fn fn, void *arg);
typedef int (*drgw_replica_fn)(void *arg, const struct drgw_replica *r);
int drgw_catalog_each_replica(struct drgw_catalog *c, int64_t version_id,
			      drgw_replica_fn fn, void *arg);
typedef int (*drgw_backend_fn)(void *arg, const struct drgw_backend_row *b);
int drgw_catalog_each_backend(struct drgw_catalog *c, drgw_backend_fn fn,
			      void *arg);
int drgw_catalog_set_backend_health(struct drgw_catalog *c, const char *name,
				    bool ok, const char *error);

/* Queue summary for `drgw status` and `drgw wait`. */
struct drgw_queue_stats {
	uint64_t files_settling;
	uint64_t versions_unencoded;
	uint64_t replicas_pending;
	uint64_t bytes_pending;
	uint64_t replicas_failing;
	/* created_ns of the oldest version not replicated everywhere, 0 if none */
	int64_t oldest_pending_ns;
	uint64_t versions;
	uint64_t versions_replicated;
	/* created_ns of the newest version replicated (to backend, or to any
	 * backend): how old the newest off-site copy is, the live RPO. */
	int64_t newest_replicated_ns;
};
/* backend NULL: all backends. */
int drgw_catalog_queue_stats(struct drgw_catalog *c, const char *backend,
			     struct drgw_queue_stats *ret);

/* --- SQLite checks (sqlcheck.h) --- */

/* Encoded versions by verdict: counts[v] for each known verdict v. */
int drgw_catalog_check_counts(struct drgw_catalog *c,
			      uint64_t counts[DRGW_SQLCHECK_VERDICTS]);
/* Versions sealed at or after since_ns whose check failed
 * (drgw_sqlcheck_failed()): what `drgw run` exits 5 for.  -1 on error. */
int64_t drgw_catalog_count_failed_checks(struct drgw_catalog *c,
					 int64_t since_ns);

/*
 * A series is the versions whose names share a name pattern
 * (drgw_name_pattern(): digits become '*', so app-20261125.db and
 * app-20261126.db are the series app-*.db).  For every series with at
 * least one encoded SQLite version (a verdict of ok or a failed one),
 * ordered by pattern, fn gets:
 *   newest  the newest encoded version with a verdict (not NOT_CHECKED),
 *           which may be a file that is not SQLite at all (a backup job
 *           that wrote an empty file);
 *   good    the newest encoded version whose check passed (verdict ok)
 *           and that is not marked incomplete (problem), or NULL.
 * Retention keeps `good` with reason "good"; metrics, the alert and the
 * restore warnings use both.  The versions are valid during the call.
 */
typedef int (*drgw_series_fn)(void *arg, const char *pattern,
			      const struct drgw_version *newest,
			      const struct drgw_version *good);
int drgw_catalog_each_series(struct drgw_catalog *c, drgw_series_fn fn,
			     void *arg);
/* Is version vid known good: encoded, its SQLite check passed, and not
 * marked incomplete?  false too when the catalog does not know it. */
bool drgw_catalog_version_good(struct drgw_catalog *c, const char *vid);
/* 1 if encoded version vid is marked incomplete (problem), 0 if not,
 * -ENOENT if the catalog has no such encoded version. */
int drgw_catalog_version_problem(struct drgw_catalog *c, const char *vid);
/* For every name pattern with an encoded version: its newest version and
 * why that one is incomplete (NULL: it is not).  Called after the catalog
 * lock is released, so fn may use the catalog. */
typedef int (*drgw_newest_fn)(void *arg, const char *pattern, const char *vid,
			      const char *problem);
int drgw_catalog_each_newest(struct drgw_catalog *c, drgw_newest_fn fn,
			     void *arg);

/* Versions not yet on min_backends backends (all of them when 0), plus
 * files settling: what `drgw run` waits for. */
int drgw_catalog_run_pending(struct drgw_catalog *c, unsigned min_backends,
			     uint64_t *ret_pending);

/* --- uploads that follow the encoder (stream.h) ---
 * Their resume tokens are kept here, by version id, until the upload ends,
 * so that a crash never leaves an upload (an S3 multipart upload) that
 * nobody will abort. */
struct drgw_stream_row {
	char vid[64];
	char backend[64];
	char key[80];
	void *token;
	size_t token_len;
};
int drgw_catalog_save_stream_token(struct drgw_catalog *c, const char *vid,
				   const char *backend, const char *key,
				   const void *token, size_t len);
int drgw_catalog_delete_stream(struct drgw_catalog *c, const char *vid,
			       const char *backend);
typedef int (*drgw_stream_fn)(void *arg, const struct drgw_stream_row *row);
int drgw_catalog_each_stream(struct drgw_catalog *c, drgw_stream_fn fn,
			     void *arg);

/* --- restore drills --- */
struct drgw_drill {
	int64_t started_ns;
	char backend[64];
	char *pattern;
	char *name;
	char vid[64];
	bool ok;
	double restore_seconds;
	uint64_t bytes;
	char *issues; /* NULL when ok */
	char *probe;  /* result of the SQL probe, or NULL */
};
void drgw_drill_release(struct drgw_drill *d);
int drgw_catalog_add_drill(struct drgw_catalog *c, const struct drgw_drill *d);
typedef int (*drgw_drill_fn)(void *arg, const struct drgw_drill *d);
/* The newest drill of every (backend, pattern). */
int drgw_catalog_each_latest_drill(struct drgw_catalog *c, drgw_drill_fn fn,
				   void *arg);

/* --- the baseline of `drgw run --no-mount` (watch.h) ---
 * What a directory held before the command ran, kept in the catalog until
 * everything the command wrote is sealed, so that a run killed before
 * that point leaves the next run the same baseline to compare with. */
struct drgw_file_state {
	const char *name;
	uint64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t ino;
};
/* Records dir's baseline (replacing an older one) in one transaction. */
int drgw_catalog_baseline_save(struct drgw_catalog *c, const char *dir,
			       int64_t taken_ns,
			       const struct drgw_file_state *files, size_t n);
typedef int (*drgw_file_state_fn)(void *arg, const struct drgw_file_state *f);
/* Calls fn for every file of dir's recorded baseline, under the catalog's
 * lock (fn must not call into the catalog; f->name lives until fn
 * returns).  -ENOENT if no baseline of dir is recorded. */
int drgw_catalog_baseline_load(struct drgw_catalog *c, const char *dir,
			       int64_t *ret_taken_ns, drgw_file_state_fn fn,
			       void *arg);
int drgw_catalog_baseline_drop(struct drgw_catalog *c, const char *dir);
/* --- drgw prune ---
 * A removal is recorded twice: as 'removing' before the backend is asked
 * to delete (prune_intend), then, in one transaction once it answered, as
 * removed, with the replica row and the cached description of the object
 * gone (prune_done; a key that failed loses its 'removing' row).  A prune
 * killed in between leaves 'removing' rows that the next prune finishes
 * by looking at what the backend still lists. */
struct drgw_prune_entry {
	const char *key;
	const char *vid;
	const char *name;
	int64_t created_ns;
	uint64_t bytes;
};
int drgw_catalog_prune_intend(struct drgw_catalog *c, const char *backend,
			      const struct drgw_prune_entry *e, size_t n);
/* results[i] == 0: keys[i] is gone from backend; else it stays. */
int drgw_catalog_prune_done(struct drgw_catalog *c, const char *backend,
			    const char *const *keys, const int *results,
			    size_t n);
typedef int (*drgw_prune_pending_fn)(void *arg, const char *key);
/* Keys of backend a prune was removing when it stopped. */
int drgw_catalog_each_prune_pending(struct drgw_catalog *c, const char *backend,
				    drgw_prune_pending_fn fn, void *arg);
typedef int (*drgw_pruned_fn)(void *arg, const char *backend, int64_t since_ns);
/* The backends a prune removed version vid from. */
int drgw_catalog_each_pruned_of(struct drgw_catalog *c, const char *vid,
				drgw_pruned_fn fn, void *arg);

typedef int (*drgw_replicated_fn)(void *arg, const char *vid, const char *name,
				  int64_t created_ns, uint64_t stored_size);
/* Every version replicated to backend (what a prune there would plan). */
int drgw_catalog_each_replicated(struct drgw_catalog *c, const char *backend,
				 drgw_replicated_fn fn, void *arg);

/* One prune of one backend, for `drgw status` and the metrics. */
struct drgw_prune_run {
	char backend[64];
	int64_t started_ns;
	int64_t finished_ns;
	bool ok;
	uint64_t kept, removed, locked;
	uint64_t kept_bytes, removed_bytes;
	/* Seal time of the newest snapshot the backend holds, and the
	 * policy's shortest window (policy.h), 0 if none. */
	int64_t newest_ns;
	int64_t window_ns;
	char error[512];
};
int drgw_catalog_add_prune_run(struct drgw_catalog *c,
			       const struct drgw_prune_run *p);
typedef int (*drgw_prune_run_fn)(void *arg, const struct drgw_prune_run *p);
/* The latest run of every backend. */
int drgw_catalog_each_latest_prune_run(struct drgw_catalog *c,
				       drgw_prune_run_fn fn, void *arg);

/* --- restore listing cache --- */
int drgw_catalog_put_remote(struct drgw_catalog *c,
			    const struct drgw_remote_object *o);
/* The tail kept with the remote object (backend, key) of that size:
 * *ret is malloc()ed.  -ENOENT if none. */
int drgw_catalog_get_remote_tail(struct drgw_catalog *c, const char *backend,
				 const char *key, uint64_t object_size,
				 void **ret, size_t *ret_len);
/* The cached entry for (backend, key) if its size and etag still match. */
int drgw_catalog_get_remote(struct drgw_catalog *c, const char *backend,
			    const char *key, uint64_t object_size,
			    const char *etag, struct drgw_remote_object *ret);

#endif
