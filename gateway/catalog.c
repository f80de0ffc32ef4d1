/* SPDX-License-Identifier: MIT */
/*
 * The catalog; see catalog.h.  Plain SQL with prepared statements, one
 * transaction per state change.
 *
 * synchronous=NORMAL: in WAL mode a commit then survives a crash of the
 * process (SIGKILL, OOM) but not necessarily a power cut, and commits do
 * not fsync.  That is the right trade here: on ext4 an fsync waits for the
 * data of every file written before it, so a FULL commit right after a
 * 1 GiB backup stalled sealing by a second.  What a power cut can undo is
 * recovered by design: the start-up scan re-seals files whose content has
 * no version, a lost "replicated" mark re-uploads to the same key, and a
 * lost resume token restarts that upload.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "metrics.h"

struct drgw_catalog {
	sqlite3 *db;
	pthread_mutex_t lock;
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);\n"
	"CREATE TABLE IF NOT EXISTS versions(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  vid TEXT NOT NULL UNIQUE,\n"
	"  name TEXT NOT NULL,\n"
	"  size INTEGER NOT NULL,\n"
	"  mtime_ns INTEGER NOT NULL,\n"
	"  mode INTEGER NOT NULL,\n"
	"  created_ns INTEGER NOT NULL,\n"
	"  state TEXT NOT NULL CHECK(state IN ('sealed','encoded')),\n"
	"  stored_size INTEGER NOT NULL DEFAULT 0,\n"
	"  sha256 TEXT NOT NULL DEFAULT '',\n"
	"  object_sha256 TEXT NOT NULL DEFAULT '',\n"
	"  error TEXT,\n"
	"  next_attempt_ns INTEGER NOT NULL DEFAULT 0,\n"
	"  attempts INTEGER NOT NULL DEFAULT 0,\n"
	"  encoded_ns INTEGER NOT NULL DEFAULT 0,\n"
	"  reseal INTEGER NOT NULL DEFAULT 0);\n"
	"CREATE INDEX IF NOT EXISTS versions_by_name ON versions(name, created_ns);\n"
	"CREATE INDEX IF NOT EXISTS versions_by_state ON versions(state, next_attempt_ns);\n"
	"CREATE TABLE IF NOT EXISTS backends(\n"
	"  name TEXT PRIMARY KEY,\n"
	"  url TEXT NOT NULL,\n"
	"  last_ok_ns INTEGER NOT NULL DEFAULT 0,\n"
	"  last_error_ns INTEGER NOT NULL DEFAULT 0,\n"
	"  last_error TEXT,\n"
	"  uploaded_bytes INTEGER NOT NULL DEFAULT 0,\n"
	"  failures INTEGER NOT NULL DEFAULT 0);\n"
	"CREATE TABLE IF NOT EXISTS replicas(\n"
	"  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,\n"
	"  backend TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  state TEXT NOT NULL CHECK(state IN ('pending','uploading','done','failing')),\n"
	"  resume_token BLOB,\n"
	"  attempts INTEGER NOT NULL DEFAULT 0,\n"
	"  last_error TEXT,\n"
	"  next_attempt_ns INTEGER NOT NULL DEFAULT 0,\n"
	"  bytes_done INTEGER NOT NULL DEFAULT 0,\n"
	"  done_ns INTEGER NOT NULL DEFAULT 0,\n"
	"  PRIMARY KEY(version_id, backend));\n"
	"CREATE INDEX IF NOT EXISTS replicas_due ON replicas(state, next_attempt_ns);\n"
	"CREATE TABLE IF NOT EXISTS drills(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  started_ns INTEGER NOT NULL,\n"
	"  backend TEXT NOT NULL,\n"
	"  pattern TEXT NOT NULL,\n"
	"  name TEXT NOT NULL,\n"
	"  vid TEXT NOT NULL,\n"
	"  ok INTEGER NOT NULL,\n"
	"  restore_seconds REAL NOT NULL,\n"
	"  bytes INTEGER NOT NULL,\n"
	"  issues TEXT,\n"
	"  probe TEXT);\n"
	"CREATE TABLE IF NOT EXISTS streams(\n"
	"  vid TEXT NOT NULL,\n"
	"  backend TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  token BLOB NOT NULL,\n"
	"  PRIMARY KEY(vid, backend));\n"
	"CREATE TABLE IF NOT EXISTS settling(\n"
	"  name TEXT PRIMARY KEY,\n"
	"  since_ns INTEGER NOT NULL);\n"
	"CREATE TABLE IF NOT EXISTS remote_objects(\n"
	"  backend TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  object_size INTEGER NOT NULL,\n"
	"  etag TEXT NOT NULL,\n"
	"  vid TEXT NOT NULL,\n"
	"  name TEXT NOT NULL,\n"
	"  size INTEGER NOT NULL,\n"
	"  mtime_ns INTEGER NOT NULL,\n"
	"  created_ns INTEGER NOT NULL,\n"
	"  mode INTEGER NOT NULL,\n"
	"  sha256 TEXT NOT NULL,\n"
	"  key_id TEXT NOT NULL,\n"
	"  PRIMARY KEY(backend, key));\n";

/*
 * Schema changes since version 1, oldest first: migrations[i] takes a
 * catalog from version i + 1 to i + 2.  Each runs in one transaction with
 * the version bump, so a crash leaves the old or the new schema, never a
 * mix.  New columns need defaults that describe existing rows truthfully.
 * Append only; never edit an entry that shipped.
 */
static const char *const migrations[] = {
	/* 2: the backing file's ctime, which no write can keep unchanged
	 * (cp -p and rsync -t restore size and mtime, not ctime). */
	"ALTER TABLE versions ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;",
	/* 3: why a version may not be a good backup (write-back failed, not
	 * closed cleanly), and which files are open for writing right now,
	 * so that a crash is known at the next start. */
	"ALTER TABLE versions ADD COLUMN problem TEXT;"
	"CREATE TABLE writing(name TEXT PRIMARY KEY, since_ns INTEGER NOT NULL);",
	/* 4: the repository of cached remote objects (format version 2); the
	 * cache is emptied, as rows from before cannot say. */
	"DELETE FROM remote_objects;"
	"ALTER TABLE remote_objects ADD COLUMN repo TEXT NOT NULL DEFAULT '';",
	/* 5: drgw prune.  pruned: objects removed from a backend, and the
	 * ones a prune is removing right now ('removing' is written before
	 * the backend is asked, so a killed prune is finished by the next);
	 * prune_runs: one row per backend and run, for status and metrics. */
	"CREATE TABLE IF NOT EXISTS pruned(\n"
	"  backend TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  vid TEXT NOT NULL,\n"
	"  name TEXT NOT NULL,\n"
	"  created_ns INTEGER NOT NULL,\n"
	"  bytes INTEGER NOT NULL,\n"
	"  state TEXT NOT NULL CHECK(state IN ('removing','removed')),\n"
	"  since_ns INTEGER NOT NULL,\n"
	"  PRIMARY KEY(backend, key));\n"
	"CREATE INDEX IF NOT EXISTS pruned_by_vid ON pruned(vid);\n"
	"CREATE TABLE IF NOT EXISTS prune_runs(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  backend TEXT NOT NULL,\n"
	"  started_ns INTEGER NOT NULL,\n"
	"  finished_ns INTEGER NOT NULL,\n"
	"  ok INTEGER NOT NULL,\n"
	"  kept INTEGER NOT NULL,\n"
	"  removed INTEGER NOT NULL,\n"
	"  locked INTEGER NOT NULL,\n"
	"  kept_bytes INTEGER NOT NULL,\n"
	"  removed_bytes INTEGER NOT NULL,\n"
	"  newest_ns INTEGER NOT NULL,\n"
	"  window_ns INTEGER NOT NULL,\n"
	"  error TEXT);",
	/* 6: incremental objects: increments since the last full object
	 * (0: full) and the versions whose objects it takes blocks from. */
	"ALTER TABLE versions ADD COLUMN delta_depth INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE versions ADD COLUMN delta_refs TEXT;",
	/* 7: what `drgw run --no-mount` found in its directory before the
	 * command ran, kept until everything new is sealed (watch.c). */
	"CREATE TABLE IF NOT EXISTS baselines(dir TEXT PRIMARY KEY, taken_ns INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS baseline_files(\n"
	"  dir TEXT NOT NULL REFERENCES baselines(dir) ON DELETE CASCADE,\n"
	"  name TEXT NOT NULL,\n"
	"  size INTEGER NOT NULL,\n"
	"  mtime_ns INTEGER NOT NULL,\n"
	"  ctime_ns INTEGER NOT NULL,\n"
	"  ino INTEGER NOT NULL,\n"
	"  PRIMARY KEY(dir, name));",
	/* 8: the SQLite check's verdict (sqlcheck.h); 0 = not checked. */
	"ALTER TABLE versions ADD COLUMN check_verdict INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE versions ADD COLUMN check_level INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE versions ADD COLUMN check_message TEXT;",
	/* 9: the sealed tail of a remote object, so that a restore opens it
	 * without reading its tail again (NULL: not kept). */
	"ALTER TABLE remote_objects ADD COLUMN tail BLOB;",
};
#define SCHEMA_VERSION (1 + (int)ARRAY_SIZE(migrations))

static const char *const version_states[] = { "sealed", "encoded" };
static const char *const replica_states[] = { "pending", "uploading", "done",
					      "failing" };

static int sql_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static sqlite3_stmt *prep(struct drgw_catalog *c, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	return st;
}

/* Runs a statement that returns no rows; finalises it. */
static int run(sqlite3_stmt *st)
{
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_errno(rc) ?: -EIO;
}

static int exec(struct drgw_catalog *c, const char *sql)
{
	return sql_errno(sqlite3_exec(c->db, sql, NULL, NULL, NULL));
}

static char *col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? strdup((const char *)s) : NULL;
}

/* rows, or rows moved to make room for element n (NULL, rows untouched,
 * if memory is short). */
static void *rows_reserve(void *rows, size_t *cap, size_t n, size_t size)
{
	size_t new_cap = *cap ? *cap * 2 : 16;
	void *p;

	if (n < *cap)
		return rows;
	p = realloc(rows, new_cap * size);
	if (p)
		*cap = new_cap;
	return p;
}

static void col_copy(sqlite3_stmt *st, int i, char *buf, size_t size)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	drgw_strlcpy(buf, s ? (const char *)s : "", size);
}

static int parse_state(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s && !strcmp(s, names[i]))
			return (int)i;
	return 0;
}

static int schema_version(struct drgw_catalog *c)
{
	sqlite3_stmt *st =
		prep(c, "SELECT value FROM meta WHERE key='schema_version'");
	int v = -1;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Brings an older catalog up to SCHEMA_VERSION.  BEGIN
 * IMMEDIATE: two processes opening an old catalog at once migrate it once. */
static int migrate(struct drgw_catalog *c)
{
	for (;;) {
		char sql[64];
		int v, r;

		r = exec(c, "BEGIN IMMEDIATE");
		if (r < 0)
			return r;
		v = schema_version(c);
		if (v < 1 || v >= SCHEMA_VERSION) {
			exec(c, "COMMIT");
			return 0;
		}
		snprintf(sql, sizeof(sql),
			 "UPDATE meta SET value='%d' WHERE key='schema_version'",
			 v + 1);
		r = exec(c, migrations[v - 1]);
		if (r == 0)
			r = exec(c, sql);
		if (r == 0)
			r = exec(c, "COMMIT");
		if (r < 0) {
			exec(c, "ROLLBACK");
			return r;
		}
	}
}

/* The catalog holds resume tokens, and a GCS session URI is a bearer
 * capability: mode 0600 whatever the umask, for the database and the
 * -wal and -shm files SQLite creates with the database's mode. */
static void make_private(const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char p[4200];

	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		struct stat st;
		int fd;

		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
				     (i == 0 ? O_CREAT : 0),
			  0600);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && (st.st_mode & 077) &&
		    st.st_uid == geteuid())
			(void)!fchmod(fd, st.st_mode & 0700);
		close(fd);
	}
}

int drgw_catalog_open(const char *path, bool read_only,
		      struct drgw_catalog **ret, struct drgw_err *err)
{
	struct drgw_catalog *c;
	int flags = SQLITE_OPEN_FULLMUTEX |
		    (read_only ? SQLITE_OPEN_READONLY :
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	int rc, r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	if (!read_only)
		make_private(path);
	rc = sqlite3_open_v2(path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		drgw_err_set(err, "cannot open catalog %s: %s", path,
			     c->db ? sqlite3_errmsg(c->db) : "out of memory");
		r = sql_errno(rc) ?: -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(c->db, 10000);
	sqlite3_extended_result_codes(c->db, 0);
	if (!read_only) {
		r = exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
		if (r == 0)
			r = exec(c, schema_sql);
		if (r == 0)
			r = exec(c,
				 "INSERT OR IGNORE INTO meta VALUES('schema_version','1')");
		if (r == 0)
			r = migrate(c);
		if (r < 0) {
			drgw_err_set(err, "cannot initialise catalog %s: %s", path,
				     sqlite3_errmsg(c->db));
			goto fail;
		}
	}
	r = exec(c, "PRAGMA foreign_keys=ON;");
	if (r == 0) {
		sqlite3_stmt *st =
			prep(c, "SELECT value FROM meta WHERE key='schema_version'");
		if (st && sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_int(st, 0) > SCHEMA_VERSION) {
			drgw_err_set(err,
				     "catalog %s was written by a newer drgw; upgrade drgw",
				     path);
			r = -EPROTONOSUPPORT;
		} else if (!st) {
			drgw_err_set(err, "catalog %s is not a drgw catalog: %s",
				     path, sqlite3_errmsg(c->db));
			r = -EIO;
		}
		sqlite3_finalize(st);
	}
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return r;
}

struct drgw_catalog *drgw_catalog_close(struct drgw_catalog *c)
{
	if (!c)
		return NULL;
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

int drgw_catalog_get_meta(struct drgw_catalog *c, const char *key, char *buf,
			  size_t size)
{
	sqlite3_stmt *st;
	int r = -ENOENT;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT value FROM meta WHERE key = ?");
	if (!st) {
		r = -EIO;
	} else {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW) {
			col_copy(st, 0, buf, size);
			r = 0;
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_set_meta(struct drgw_catalog *c, const char *key,
			  const char *value)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, value ? "INSERT OR REPLACE INTO meta VALUES(?1, ?2)" :
			     "DELETE FROM meta WHERE key = ?1");
	if (st) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		if (value)
			sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

void drgw_version_release(struct drgw_version *v)
{
	free(v->name);
	free(v->error);
	free(v->problem);
	free(v->delta_refs);
	v->name = v->error = v->problem = v->delta_refs = NULL;
}

void drgw_replica_release(struct drgw_replica *r)
{
	free(r->key);
	free(r->token);
	free(r->last_error);
	r->key = r->last_error = NULL;
	r->token = NULL;
}

void drgw_backend_row_release(struct drgw_backend_row *b)
{
	free(b->url);
	free(b->last_error);
	b->url = b->last_error = NULL;
}

void drgw_remote_object_release(struct drgw_remote_object *o)
{
	free(o->key);
	free(o->name);
	o->key = o->name = NULL;
}

#define VERSION_COLS                                                         \
	"id, vid, name, size, mtime_ns, mode, created_ns, state, stored_size, " \
	"sha256, object_sha256, error, next_attempt_ns, attempts, encoded_ns, " \
	"reseal, ctime_ns, problem, delta_depth, delta_refs, check_verdict, " \
	"check_level, check_message"

static void read_version(sqlite3_stmt *st, struct drgw_version *v)
{
	memset(v, 0, sizeof(*v));
	v->id = sqlite3_column_int64(st, 0);
	col_copy(st, 1, v->vid, sizeof(v->vid));
	v->name = col_strdup(st, 2);
	v->size = (uint64_t)sqlite3_column_int64(st, 3);
	v->mtime_ns = sqlite3_column_int64(st, 4);
	v->mode = (uint32_t)sqlite3_column_int64(st, 5);
	v->created_ns = sqlite3_column_int64(st, 6);
	v->state = parse_state((const char *)sqlite3_column_text(st, 7),
			       version_states, ARRAY_SIZE(version_states));
	v->stored_size = (uint64_t)sqlite3_column_int64(st, 8);
	col_copy(st, 9, v->sha256, sizeof(v->sha256));
	col_copy(st, 10, v->object_sha256, sizeof(v->object_sha256));
	v->error = col_strdup(st, 11);
	v->next_attempt_ns = sqlite3_column_int64(st, 12);
	v->attempts = (uint32_t)sqlite3_column_int64(st, 13);
	v->encoded_ns = sqlite3_column_int64(st, 14);
	v->reseal = sqlite3_column_int64(st, 15);
	v->ctime_ns = sqlite3_column_int64(st, 16);
	v->problem = col_strdup(st, 17);
	v->delta_depth = (unsigned)sqlite3_column_int(st, 18);
	v->delta_refs = col_strdup(st, 19);
	v->check.verdict = (uint8_t)sqlite3_column_int(st, 20);
	v->check.level = (uint8_t)sqlite3_column_int(st, 21);
	col_copy(st, 22, v->check.message, sizeof(v->check.message));
}

#define REPLICA_COLS                                                      \
	"version_id, backend, key, state, resume_token, attempts, last_error, " \
	"next_attempt_ns, bytes_done, done_ns"

static int read_replica(sqlite3_stmt *st, struct drgw_replica *r)
{
	const void *tok = sqlite3_column_blob(st, 4);
	int tok_len = sqlite3_column_bytes(st, 4);

	memset(r, 0, sizeof(*r));
	r->version_id = sqlite3_column_int64(st, 0);
	col_copy(st, 1, r->backend, sizeof(r->backend));
	r->key = col_strdup(st, 2);
	r->state = parse_state((const char *)sqlite3_column_text(st, 3),
			       replica_states, ARRAY_SIZE(replica_states));
	if (tok && tok_len > 0) {
		r->token = drgw_memdup(tok, (size_t)tok_len);
		if (!r->token)
			return -ENOMEM;
		r->token_len = (size_t)tok_len;
	}
	r->attempts = (uint32_t)sqlite3_column_int64(st, 5);
	r->last_error = col_strdup(st, 6);
	r->next_attempt_ns = sqlite3_column_int64(st, 7);
	r->bytes_done = (uint64_t)sqlite3_column_int64(st, 8);
	r->done_ns = sqlite3_column_int64(st, 9);
	return r->key ? 0 : -ENOMEM;
}

int drgw_catalog_add_backend(struct drgw_catalog *c, const char *name,
			     const char *url)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "INSERT INTO backends(name, url) VALUES(?, ?) "
		     "ON CONFLICT(name) DO UPDATE SET url = excluded.url");
	if (st) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, url, -1, SQLITE_TRANSIENT);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_recover(struct drgw_catalog *c)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = exec(c, "UPDATE replicas SET state = 'pending' "
		    "WHERE state = 'uploading'");
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_set_settling(struct drgw_catalog *c, const char *name,
			      bool settling)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, settling ? "INSERT OR IGNORE INTO settling VALUES(?1, ?2)" :
				"DELETE FROM settling WHERE name = ?1");
	if (st) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		if (settling)
			sqlite3_bind_int64(st, 2, drgw_now_ns());
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_set_writing(struct drgw_catalog *c, const char *name,
			     bool writing)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, writing ? "INSERT OR IGNORE INTO writing VALUES(?1, ?2)" :
			       "DELETE FROM writing WHERE name = ?1");
	if (st) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		if (writing)
			sqlite3_bind_int64(st, 2, drgw_now_ns());
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_rename_writing(struct drgw_catalog *c, const char *from,
				const char *to)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "UPDATE OR REPLACE writing SET name = ?2 WHERE name = ?1");
	if (st) {
		sqlite3_bind_text(st, 1, from, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, to, -1, SQLITE_TRANSIENT);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_take_writing(struct drgw_catalog *c,
			      int (*fn)(void *arg, const char *name), void *arg)
{
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT name FROM writing");
	if (!st)
		r = -EIO;
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (name)
			r = fn(arg, name);
	}
	sqlite3_finalize(st);
	if (r == 0)
		r = exec(c, "DELETE FROM writing");
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_clear_settling(struct drgw_catalog *c)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = exec(c, "DELETE FROM settling");
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_clear_settling_below(struct drgw_catalog *c, const char *dir)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	/* substr(), not LIKE: names may contain % and _. */
	st = prep(c, "DELETE FROM settling WHERE "
		     "substr(name, 1, length(?1) + 1) = ?1 || '/'");
	if (st)
		sqlite3_bind_text(st, 1, dir, -1, SQLITE_TRANSIENT);
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_add_version(struct drgw_catalog *c, struct drgw_version *v)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	r = exec(c, "BEGIN IMMEDIATE");
	if (r < 0)
		goto out;
	st = prep(c, "INSERT INTO versions(vid, name, size, mtime_ns, mode, "
		     "created_ns, ctime_ns, problem, state) "
		     "VALUES(?, ?, ?, ?, ?, ?, ?, ?, 'sealed')");
	if (st) {
		sqlite3_bind_int64(st, 7, v->ctime_ns);
		if (v->problem)
			sqlite3_bind_text(st, 8, v->problem, -1,
					  SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 1, v->vid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, v->name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)v->size);
		sqlite3_bind_int64(st, 4, v->mtime_ns);
		sqlite3_bind_int64(st, 5, v->mode);
		sqlite3_bind_int64(st, 6, v->created_ns);
	}
	r = run(st);
	if (r == 0) {
		v->id = sqlite3_last_insert_rowid(c->db);
		v->state = DRGW_VERSION_SEALED;
		st = prep(c, "DELETE FROM settling WHERE name = ?");
		if (st)
			sqlite3_bind_text(st, 1, v->name, -1, SQLITE_TRANSIENT);
		r = run(st);
	}
	if (r == 0)
		r = exec(c, "COMMIT");
	if (r < 0)
		exec(c, "ROLLBACK");
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_reschedule_version(struct drgw_catalog *c, int64_t id,
				    int64_t next_attempt_ns)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "UPDATE versions SET next_attempt_ns = ?, reseal = reseal + 1 "
		     "WHERE id = ? AND state = 'sealed'");
	if (st) {
		sqlite3_bind_int64(st, 1, next_attempt_ns);
		sqlite3_bind_int64(st, 2, id);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Runs a query expected to return at most one version row. */
static int one_version(sqlite3_stmt *st, struct drgw_version *ret)
{
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_version(st, ret);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return ret->name ? 0 : -ENOMEM;
	return rc == SQLITE_DONE ? -ENOENT : sql_errno(rc) ?: -EIO;
}

int drgw_catalog_next_sealed(struct drgw_catalog *c, int64_t now_ns,
			     struct drgw_version *ret)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT " VERSION_COLS " FROM versions WHERE "
		     "state = 'sealed' AND next_attempt_ns <= ? "
		     "ORDER BY created_ns, id LIMIT 1");
	if (st)
		sqlite3_bind_int64(st, 1, now_ns);
	r = one_version(st, ret);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Runs a query returning one integer, default when NULL or no row. */
static int64_t one_int(sqlite3_stmt *st, int64_t dflt)
{
	int64_t v = dflt;

	if (st && sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int64_t drgw_catalog_next_sealed_due(struct drgw_catalog *c)
{
	int64_t v;

	pthread_mutex_lock(&c->lock);
	v = one_int(prep(c, "SELECT MIN(next_attempt_ns) FROM versions "
			    "WHERE state = 'sealed'"),
		    INT64_MAX);
	pthread_mutex_unlock(&c->lock);
	return v;
}

int64_t drgw_catalog_count_newest_missing(struct drgw_catalog *c,
				       const char *backend)
{
	sqlite3_stmt *st;
	int64_t n;

	pthread_mutex_lock(&c->lock);
	/* What a prune removed from the backend is not missing there. */
	st = prep(c, "SELECT COUNT(*) FROM versions v WHERE v.id = "
		     "(SELECT id FROM versions WHERE name = v.name "
		     "AND state = 'encoded' ORDER BY created_ns DESC, id DESC "
		     "LIMIT 1) AND NOT EXISTS (SELECT 1 FROM replicas r "
		     "WHERE r.version_id = v.id AND r.backend = ?1) "
		     "AND NOT EXISTS (SELECT 1 FROM pruned p WHERE "
		     "p.vid = v.vid AND p.backend = ?1)");
	if (st)
		sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
	n = one_int(st, -1);
	pthread_mutex_unlock(&c->lock);
	return n;
}

int drgw_catalog_set_encoded(struct drgw_catalog *c, const struct drgw_version *v,
			     const char *const *backends, size_t n_backends,
			     const bool *streaming, const char *key)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	r = exec(c, "BEGIN IMMEDIATE");
	if (r < 0)
		goto out;
	st = prep(c, "UPDATE versions SET state = 'encoded', stored_size = ?, "
		     "sha256 = ?, object_sha256 = ?, error = NULL, "
		     "encoded_ns = ?, size = ?, mtime_ns = ?, ctime_ns = ?, "
		     "mode = ?, delta_depth = ?, delta_refs = ? WHERE id = ? "
		     "AND state = 'sealed' AND reseal = ?");
	if (st) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)v->stored_size);
		sqlite3_bind_text(st, 2, v->sha256, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, v->object_sha256, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, v->encoded_ns);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)v->size);
		sqlite3_bind_int64(st, 6, v->mtime_ns);
		sqlite3_bind_int64(st, 7, v->ctime_ns);
		sqlite3_bind_int64(st, 8, v->mode);
		sqlite3_bind_int64(st, 9, v->delta_depth);
		if (v->delta_refs)
			sqlite3_bind_text(st, 10, v->delta_refs, -1,
					  SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 11, v->id);
		sqlite3_bind_int64(st, 12, v->reseal);
	}
	r = run(st);
	/* Resealed (the file changed) while we encoded: the object is stale. */
	if (r == 0 && sqlite3_changes(c->db) == 0)
		r = -ESTALE;
	for (size_t i = 0; r == 0 && i < n_backends; i++) {
		st = prep(c, "INSERT OR IGNORE INTO replicas(version_id, backend, "
			     "key, state) VALUES(?, ?, ?, ?)");
		if (st) {
			sqlite3_bind_int64(st, 1, v->id);
			sqlite3_bind_text(st, 2, backends[i], -1,
					  SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 4,
					  streaming && streaming[i] ? "uploading" :
								      "pending",
					  -1, SQLITE_STATIC);
		}
		r = run(st);
	}
	if (r == 0)
		r = exec(c, "COMMIT");
	if (r < 0)
		exec(c, "ROLLBACK");
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_set_encode_failed(struct drgw_catalog *c, int64_t id,
				   const char *error, int64_t next_attempt_ns)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "UPDATE versions SET error = ?, next_attempt_ns = ?, "
		     "attempts = attempts + 1 WHERE id = ?");
	if (st) {
		sqlite3_bind_text(st, 1, error, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, next_attempt_ns);
		sqlite3_bind_int64(st, 3, id);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_delete_version(struct drgw_catalog *c, int64_t id)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "DELETE FROM versions WHERE id = ?");
	if (st)
		sqlite3_bind_int64(st, 1, id);
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_claim_replica(struct drgw_catalog *c, int64_t now_ns,
			       const char *const *backends, const bool *busy,
			       size_t n_backends, struct drgw_replica *ret,
			       int64_t *ret_next_due)
{
	int64_t next_due = INT64_MAX;
	sqlite3_stmt *st;
	bool found = false;
	int r = 0, rc;

	pthread_mutex_lock(&c->lock);
	/* Oldest snapshots first, so the RPO of each backend is as good as it
	 * can be; a failing backend's rows wait out their backoff and do not
	 * block the others (no head-of-line blocking). */
	st = prep(c, "SELECT r.version_id, r.backend, r.key, r.state, "
		     "r.resume_token, r.attempts, r.last_error, "
		     "r.next_attempt_ns, r.bytes_done, r.done_ns "
		     "FROM replicas r JOIN versions v ON v.id = r.version_id "
		     "WHERE r.state IN ('pending', 'failing') "
		     "ORDER BY r.next_attempt_ns > ?, v.created_ns, v.id");
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, now_ns);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *b = (const char *)sqlite3_column_text(st, 1);
		int64_t due = sqlite3_column_int64(st, 7);
		size_t i;

		for (i = 0; i < n_backends; i++)
			if (b && !strcmp(b, backends[i]))
				break;
		if (i == n_backends || busy[i])
			continue;
		if (due > now_ns) {
			if (due < next_due)
				next_due = due;
			continue;
		}
		r = read_replica(st, ret);
		found = r == 0;
		break;
	}
	sqlite3_finalize(st);
	if (r < 0)
		goto out;
	if (!found) {
		*ret_next_due = next_due;
		r = -ENOENT;
		goto out;
	}
	st = prep(c, "UPDATE replicas SET state = 'uploading' "
		     "WHERE version_id = ? AND backend = ?");
	if (st) {
		sqlite3_bind_int64(st, 1, ret->version_id);
		sqlite3_bind_text(st, 2, ret->backend, -1, SQLITE_TRANSIENT);
	}
	r = run(st);
	if (r < 0)
		drgw_replica_release(ret);
	else
		ret->state = DRGW_REPLICA_UPLOADING;
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* UPDATE replicas ... WHERE version_id = ?1 AND backend = ?2, with the
 * statement's own parameters from ?3 on bound by the caller. */
static sqlite3_stmt *prep_replica(struct drgw_catalog *c, const char *sql,
				  int64_t version_id, const char *backend)
{
	sqlite3_stmt *st = prep(c, sql);

	if (st) {
		sqlite3_bind_int64(st, 1, version_id);
		sqlite3_bind_text(st, 2, backend, -1, SQLITE_TRANSIENT);
	}
	return st;
}

int drgw_catalog_save_token(struct drgw_catalog *c, int64_t version_id,
			    const char *backend, const void *token, size_t len)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep_replica(c, "UPDATE replicas SET resume_token = ?3 "
			     "WHERE version_id = ?1 AND backend = ?2",
			  version_id, backend);
	if (st)
		sqlite3_bind_blob(st, 3, token, (int)len, SQLITE_TRANSIENT);
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_set_progress(struct drgw_catalog *c, int64_t version_id,
			      const char *backend, uint64_t bytes_done)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep_replica(c, "UPDATE replicas SET bytes_done = ?3 "
			     "WHERE version_id = ?1 AND backend = ?2",
			  version_id, backend);
	if (st)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)bytes_done);
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_replica_done(struct drgw_catalog *c, int64_t version_id,
			      const char *backend, uint64_t bytes)
{
	int64_t now = drgw_now_ns();
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	r = exec(c, "BEGIN IMMEDIATE");
	if (r < 0)
		goto out;
	st = prep_replica(c, "UPDATE replicas SET state = 'done', "
			     "resume_token = NULL, last_error = NULL, "
			     "bytes_done = ?3, done_ns = ?4, "
			     "attempts = attempts + 1 "
			     "WHERE version_id = ?1 AND backend = ?2",
			  version_id, backend);
	if (st) {
		sqlite3_bind_int64(st, 3, (sqlite3_int64)bytes);
		sqlite3_bind_int64(st, 4, now);
	}
	r = run(st);
	if (r == 0) {
		st = prep(c, "UPDATE backends SET last_ok_ns = ?, "
			     "uploaded_bytes = uploaded_bytes + ? WHERE name = ?");
		if (st) {
			sqlite3_bind_int64(st, 1, now);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)bytes);
			sqlite3_bind_text(st, 3, backend, -1, SQLITE_TRANSIENT);
		}
		r = run(st);
	}
	if (r == 0)
		r = exec(c, "COMMIT");
	if (r < 0)
		exec(c, "ROLLBACK");
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_adopt_replica(struct drgw_catalog *c, const char *vid,
			       const char *backend, const char *key,
			       uint64_t bytes)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "INSERT INTO replicas(version_id, backend, key, state, "
		     "bytes_done, done_ns) "
		     "SELECT id, ?2, ?3, 'done', ?4, ?5 FROM versions "
		     "WHERE vid = ?1 AND state = 'encoded' "
		     "ON CONFLICT(version_id, backend) DO UPDATE SET "
		     "state = 'done', key = excluded.key, resume_token = NULL, "
		     "last_error = NULL, bytes_done = excluded.bytes_done, "
		     "done_ns = excluded.done_ns");
	if (st) {
		sqlite3_bind_text(st, 1, vid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, backend, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)bytes);
		sqlite3_bind_int64(st, 5, drgw_now_ns());
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_replica_failed(struct drgw_catalog *c, int64_t version_id,
				const char *backend, const char *error,
				int64_t next_attempt_ns)
{
	int64_t now = drgw_now_ns();
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	r = exec(c, "BEGIN IMMEDIATE");
	if (r < 0)
		goto out;
	st = prep_replica(c, "UPDATE replicas SET state = 'failing', "
			     "last_error = ?3, next_attempt_ns = ?4, "
			     "attempts = attempts + 1 "
			     "WHERE version_id = ?1 AND backend = ?2",
			  version_id, backend);
	if (st) {
		sqlite3_bind_text(st, 3, error, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, next_attempt_ns);
	}
	r = run(st);
	if (r == 0) {
		st = prep(c, "UPDATE backends SET last_error = ?, "
			     "last_error_ns = ?, failures = failures + 1 "
			     "WHERE name = ?");
		if (st) {
			sqlite3_bind_text(st, 1, error, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 2, now);
			sqlite3_bind_text(st, 3, backend, -1, SQLITE_TRANSIENT);
		}
		r = run(st);
	}
	if (r == 0)
		r = exec(c, "COMMIT");
	if (r < 0)
		exec(c, "ROLLBACK");
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_replica_release(struct drgw_catalog *c, int64_t version_id,
				 const char *backend)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep_replica(c, "UPDATE replicas SET state = CASE WHEN "
			     "last_error IS NULL THEN 'pending' ELSE 'failing' END "
			     "WHERE version_id = ?1 AND backend = ?2 "
			     "AND state = 'uploading'",
			  version_id, backend);
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_all_replicated(struct drgw_catalog *c, int64_t version_id,
				bool *ret)
{
	sqlite3_stmt *st;
	int64_t n;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT COUNT(*) FROM replicas WHERE version_id = ? "
		     "AND state != 'done'");
	if (st)
		sqlite3_bind_int64(st, 1, version_id);
	n = one_int(st, -1);
	pthread_mutex_unlock(&c->lock);
	if (n < 0)
		return -EIO;
	*ret = n == 0;
	return 0;
}

int drgw_catalog_get_version(struct drgw_catalog *c, const char *vid,
			     struct drgw_version *ret)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT " VERSION_COLS " FROM versions WHERE vid = ?");
	if (st)
		sqlite3_bind_text(st, 1, vid, -1, SQLITE_TRANSIENT);
	r = one_version(st, ret);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_get_version_by_id(struct drgw_catalog *c, int64_t id,
				   struct drgw_version *ret)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT " VERSION_COLS " FROM versions WHERE id = ?");
	if (st)
		sqlite3_bind_int64(st, 1, id);
	r = one_version(st, ret);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_newest_replicated(struct drgw_catalog *c, const char *name,
				   const char *const *backends, size_t n,
				   struct drgw_version *ret)
{
	sqlite3_stmt *st;
	int r = -ENOENT;

	pthread_mutex_lock(&c->lock);
	/* Replicated and not pruned since: a pruned version is expected to
	 * be gone, not a sign of a rollback. */
	st = prep(c, "SELECT r.backend, v.id FROM versions v JOIN replicas r "
		     "ON r.version_id = v.id WHERE v.name = ? AND "
		     "r.state = 'done' AND NOT EXISTS (SELECT 1 FROM pruned p "
		     "WHERE p.backend = r.backend AND p.vid = v.vid) "
		     "ORDER BY v.created_ns DESC, v.id DESC");
	if (!st)
		r = -EIO;
	else
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	while (r == -ENOENT && sqlite3_step(st) == SQLITE_ROW) {
		const char *b = (const char *)sqlite3_column_text(st, 0);
		int64_t id = sqlite3_column_int64(st, 1);
		sqlite3_stmt *one;

		for (size_t i = 0; i < n && r == -ENOENT; i++) {
			if (!b || strcmp(b, backends[i]))
				continue;
			one = prep(c, "SELECT " VERSION_COLS
				      " FROM versions WHERE id = ?");
			if (one)
				sqlite3_bind_int64(one, 1, id);
			r = one_version(one, ret);
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Versions of name's series, newest first, encoded only if encoded. */
static sqlite3_stmt *series_stmt(struct drgw_catalog *c, bool encoded)
{
	return prep(c, encoded ?
			       "SELECT " VERSION_COLS " FROM versions WHERE "
			       "state = 'encoded' ORDER BY created_ns DESC, id DESC" :
			       "SELECT " VERSION_COLS " FROM versions "
			       "ORDER BY created_ns DESC, id DESC");
}

static bool in_series(const char *pattern, const char *name)
{
	char *p = drgw_name_pattern(name);
	bool same = p && !strcmp(p, pattern);

	free(p);
	return same;
}

int drgw_catalog_delta_base(struct drgw_catalog *c, const char *name,
			    bool same_name, int64_t exclude,
			    const char *const *backends, size_t n_backends,
			    struct drgw_version *ret)
{
	char *pattern = drgw_name_pattern(name);
	sqlite3_stmt *st;
	int r = -ENOENT;

	if (!pattern)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	st = series_stmt(c, true);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 2);
		sqlite3_stmt *q;

		if (sqlite3_column_int64(st, 0) == exclude || !n ||
		    !in_series(pattern, n) || (same_name && strcmp(n, name)))
			continue;
		/* The newest of the series, and only if it is done on every
		 * backend the increment will go to: an increment must never
		 * land before its base, nor on a backend added since. */
		bool everywhere = true;

		for (size_t i = 0; everywhere && i < n_backends; i++) {
			q = prep(c, "SELECT COUNT(*) FROM replicas WHERE "
				    "version_id = ? AND backend = ? AND "
				    "state = 'done'");
			if (q) {
				sqlite3_bind_int64(q, 1,
						   sqlite3_column_int64(st, 0));
				sqlite3_bind_text(q, 2, backends[i], -1,
						  SQLITE_TRANSIENT);
			}
			everywhere = one_int(q, 0) == 1;
		}
		if (everywhere) {
			read_version(st, ret);
			r = ret->name ? 0 : -ENOMEM;
		}
		break;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	free(pattern);
	return r;
}

int drgw_catalog_latest_version(struct drgw_catalog *c, const char *name,
				struct drgw_version *ret)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT " VERSION_COLS " FROM versions WHERE name = ? "
		     "ORDER BY created_ns DESC, id DESC LIMIT 1");
	if (st)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	r = one_version(st, ret);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Filters of each_version_row(): a NULL-terminated list of names (NULL:
 * all), or the pattern of a series. */
static bool name_wanted(const void *names, const char *name)
{
	const char *const *p = names;

	if (!p)
		return true;
	for (; *p; p++)
		if (!strcmp(*p, name))
			return true;
	return false;
}

static bool name_in_series(const void *pattern, const char *name)
{
	return in_series(pattern, name);
}

/* Runs st (bound, not yet stepped; the caller holds the lock) and hands
 * every version row whose name want() takes to fn, after the lock is
 * dropped, so fn may call back into the catalog. */
static int each_version_row(struct drgw_catalog *c, sqlite3_stmt *st,
			    bool (*want)(const void *warg, const char *name),
			    const void *warg, drgw_version_fn fn, void *arg)
{
	struct drgw_version *rows = NULL;
	size_t n = 0, cap = 0;
	int r = st ? 0 : -EIO;

	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 2);
		void *more;

		if (!name || !want(warg, name))
			continue;
		more = rows_reserve(rows, &cap, n, sizeof(*rows));
		if (!more) {
			r = -ENOMEM;
			break;
		}
		rows = more;
		read_version(st, &rows[n++]);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = fn(arg, &rows[i]);
		drgw_version_release(&rows[i]);
	}
	free(rows);
	return r;
}

int drgw_catalog_each_on_backend(struct drgw_catalog *c, const char *backend,
				 drgw_version_fn fn, void *arg)
{
	sqlite3_stmt *st;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT " VERSION_COLS " FROM versions v WHERE id IN "
		     "(SELECT version_id FROM replicas WHERE backend = ?1 AND "
		     "state = 'done') AND NOT EXISTS (SELECT 1 FROM pruned p "
		     "WHERE p.backend = ?1 AND p.vid = v.vid) ORDER BY vid");
	if (st)
		sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
	return each_version_row(c, st, name_wanted, NULL, fn, arg);
}

int drgw_catalog_each_version(struct drgw_catalog *c, bool latest_only,
			      const char *const *names, drgw_version_fn fn,
			      void *arg)
{
	sqlite3_stmt *st;

	pthread_mutex_lock(&c->lock);
	st = prep(c, latest_only ?
			     "SELECT " VERSION_COLS " FROM versions v WHERE id = "
			     "(SELECT id FROM versions w WHERE w.name = v.name "
			     "ORDER BY created_ns DESC, id DESC LIMIT 1) "
			     "ORDER BY name" :
			     "SELECT " VERSION_COLS " FROM versions "
			     "ORDER BY name, created_ns, id");
	return each_version_row(c, st, name_wanted, names, fn, arg);
}

int drgw_catalog_each_in_series(struct drgw_catalog *c, const char *name,
				drgw_version_fn fn, void *arg)
{
	char *pattern = drgw_name_pattern(name);
	int r;

	if (!pattern)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	r = each_version_row(c, series_stmt(c, false), name_in_series, pattern,
			     fn, arg);
	free(pattern);
	return r;
}

int drgw_catalog_each_replica(struct drgw_catalog *c, int64_t version_id,
			      drgw_replica_fn fn, void *arg)
{
	struct drgw_replica *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT " REPLICA_COLS " FROM replicas WHERE "
		     "version_id = ? ORDER BY backend");
	if (!st)
		r = -EIO;
	else
		sqlite3_bind_int64(st, 1, version_id);
	while (st && r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		void *more = rows_reserve(rows, &cap, n, sizeof(*rows));

		if (!more) {
			r = -ENOMEM;
			break;
		}
		rows = more;
		r = read_replica(st, &rows[n++]);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = fn(arg, &rows[i]);
		drgw_replica_release(&rows[i]);
	}
	free(rows);
	return r;
}

int drgw_catalog_each_backend(struct drgw_catalog *c, drgw_backend_fn fn,
			      void *arg)
{
	struct drgw_backend_row *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT name, url, last_ok_ns, last_error_ns, last_error, "
		     "uploaded_bytes, failures FROM backends ORDER BY name");
	if (!st)
		r = -EIO;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		struct drgw_backend_row *b;
		void *more;

		more = rows_reserve(rows, &cap, n, sizeof(*rows));
		if (!more) {
			r = -ENOMEM;
			break;
		}
		rows = more;
		b = &rows[n++];
		memset(b, 0, sizeof(*b));
		col_copy(st, 0, b->name, sizeof(b->name));
		b->url = col_strdup(st, 1);
		b->last_ok_ns = sqlite3_column_int64(st, 2);
		b->last_error_ns = sqlite3_column_int64(st, 3);
		b->last_error = col_strdup(st, 4);
		b->uploaded_bytes = (uint64_t)sqlite3_column_int64(st, 5);
		b->failures = (uint64_t)sqlite3_column_int64(st, 6);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = fn(arg, &rows[i]);
		drgw_backend_row_release(&rows[i]);
	}
	free(rows);
	return r;
}

int drgw_catalog_set_backend_health(struct drgw_catalog *c, const char *name,
				    bool ok, const char *error)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, ok ? "UPDATE backends SET last_ok_ns = ?1 WHERE name = ?2" :
			  "UPDATE backends SET last_error_ns = ?1, "
			  "last_error = ?3 WHERE name = ?2");
	if (st) {
		sqlite3_bind_int64(st, 1, drgw_now_ns());
		sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
		if (!ok)
			sqlite3_bind_text(st, 3, error, -1, SQLITE_TRANSIENT);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_queue_stats(struct drgw_catalog *c, const char *backend,
			     struct drgw_queue_stats *ret)
{
	sqlite3_stmt *st;
	int r = 0;

	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&c->lock);
	ret->files_settling = (uint64_t)one_int(
		prep(c, "SELECT COUNT(*) FROM settling"), 0);
	ret->versions_unencoded = (uint64_t)one_int(
		prep(c, "SELECT COUNT(*) FROM versions WHERE state = 'sealed'"),
		0);
	st = prep(c, "SELECT COUNT(*), SUM(v.stored_size - r.bytes_done), "
		     "SUM(r.state = 'failing') FROM replicas r "
		     "JOIN versions v ON v.id = r.version_id "
		     "WHERE r.state != 'done' AND (?1 IS NULL OR r.backend = ?1)");
	if (st) {
		sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW) {
			ret->replicas_pending = (uint64_t)sqlite3_column_int64(st, 0);
			ret->bytes_pending = (uint64_t)sqlite3_column_int64(st, 1);
			ret->replicas_failing = (uint64_t)sqlite3_column_int64(st, 2);
		}
		sqlite3_finalize(st);
	} else {
		r = -EIO;
	}
	/* Unencoded versions count as pending everywhere; their size is the
	 * best estimate of the bytes they will need. */
	if (!backend) {
		st = prep(c, "SELECT COALESCE(SUM(size), 0) FROM versions "
			     "WHERE state = 'sealed'");
		ret->bytes_pending += (uint64_t)one_int(st, 0);
	}
	st = prep(c, "SELECT MIN(v.created_ns) FROM versions v WHERE "
		     "(?1 IS NULL AND v.state = 'sealed') OR EXISTS "
		     "(SELECT 1 FROM replicas r WHERE r.version_id = v.id AND "
		     "r.state != 'done' AND (?1 IS NULL OR r.backend = ?1))");
	if (st)
		sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
	ret->oldest_pending_ns = one_int(st, 0);
	ret->versions = (uint64_t)one_int(prep(c, "SELECT COUNT(*) FROM versions"),
					  0);
	/* A version drgw prune removed from its last backend is nowhere. */
	st = prep(c, "SELECT COUNT(*) FROM versions v WHERE v.state = "
		     "'encoded' AND NOT EXISTS (SELECT 1 FROM replicas r WHERE "
		     "r.version_id = v.id AND r.state != 'done' AND "
		     "(?1 IS NULL OR r.backend = ?1)) AND EXISTS (SELECT 1 FROM "
		     "replicas r WHERE r.version_id = v.id)");
	if (st)
		sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
	ret->versions_replicated = (uint64_t)one_int(st, 0);
	st = prep(c, "SELECT MAX(v.created_ns) FROM versions v JOIN replicas r "
		     "ON r.version_id = v.id WHERE r.state = 'done' AND "
		     "(?1 IS NULL OR r.backend = ?1)");
	if (st)
		sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
	ret->newest_replicated_ns = one_int(st, 0);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_put_remote(struct drgw_catalog *c,
			    const struct drgw_remote_object *o)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "INSERT OR REPLACE INTO remote_objects(backend, key, "
		     "object_size, etag, vid, name, size, mtime_ns, created_ns, "
		     "mode, sha256, key_id, repo, tail) "
		     "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	if (st) {
		sqlite3_bind_text(st, 1, o->backend, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, o->key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)o->object_size);
		sqlite3_bind_text(st, 4, o->etag, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, o->vid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 6, o->name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 7, (sqlite3_int64)o->size);
		sqlite3_bind_int64(st, 8, o->mtime_ns);
		sqlite3_bind_int64(st, 9, o->created_ns);
		sqlite3_bind_int64(st, 10, o->mode);
		sqlite3_bind_text(st, 11, o->sha256, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 12, o->key_id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 13, o->repo, -1, SQLITE_TRANSIENT);
		if (o->tail)
			sqlite3_bind_blob(st, 14, o->tail, (int)o->tail_len,
					  SQLITE_STATIC);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_get_remote(struct drgw_catalog *c, const char *backend,
			    const char *key, uint64_t object_size,
			    const char *etag, struct drgw_remote_object *ret)
{
	sqlite3_stmt *st;
	int r = -ENOENT;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT vid, name, size, mtime_ns, created_ns, mode, "
		     "sha256, key_id, repo FROM remote_objects WHERE backend = ? AND key = ? "
		     "AND object_size = ? AND etag = ?");
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)object_size);
	sqlite3_bind_text(st, 4, etag, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		memset(ret, 0, sizeof(*ret));
		drgw_strlcpy(ret->backend, backend, sizeof(ret->backend));
		ret->key = strdup(key);
		ret->object_size = object_size;
		drgw_strlcpy(ret->etag, etag, sizeof(ret->etag));
		col_copy(st, 0, ret->vid, sizeof(ret->vid));
		ret->name = col_strdup(st, 1);
		ret->size = (uint64_t)sqlite3_column_int64(st, 2);
		ret->mtime_ns = sqlite3_column_int64(st, 3);
		ret->created_ns = sqlite3_column_int64(st, 4);
		ret->mode = (uint32_t)sqlite3_column_int64(st, 5);
		col_copy(st, 6, ret->sha256, sizeof(ret->sha256));
		col_copy(st, 7, ret->key_id, sizeof(ret->key_id));
		col_copy(st, 8, ret->repo, sizeof(ret->repo));
		r = ret->key && ret->name ? 0 : -ENOMEM;
		if (r < 0)
			drgw_remote_object_release(ret);
	}
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_get_remote_tail(struct drgw_catalog *c, const char *backend,
				 const char *key, uint64_t object_size,
				 void **ret, size_t *ret_len)
{
	sqlite3_stmt *st;
	int r = -ENOENT;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT tail FROM remote_objects WHERE backend = ? AND "
		     "key = ? AND object_size = ? AND tail IS NOT NULL");
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)object_size);
	if (sqlite3_step(st) == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		void *p = drgw_memdup(sqlite3_column_blob(st, 0), len ? len : 1);

		r = p ? 0 : -ENOMEM;
		if (p) {
			*ret = p;
			*ret_len = len;
		}
	}
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}


int drgw_catalog_run_pending(struct drgw_catalog *c, unsigned min_backends,
			     uint64_t *ret_pending)
{
	sqlite3_stmt *st;
	int64_t n;

	pthread_mutex_lock(&c->lock);
	/* A version is done when it is encoded and replicated to enough
	 * backends: min_backends, or every backend it was queued for. */
	st = prep(c, "SELECT (SELECT COUNT(*) FROM settling) + "
		     "(SELECT COUNT(*) FROM versions v WHERE "
		     " (v.state = 'sealed' OR "
		     "  (SELECT COUNT(*) FROM replicas r WHERE r.version_id = v.id "
		     "   AND r.state = 'done') < "
		     "  CASE WHEN ?1 > 0 THEN MIN(?1, (SELECT COUNT(*) FROM replicas r "
		     "   WHERE r.version_id = v.id)) ELSE "
		     "  (SELECT COUNT(*) FROM replicas r WHERE r.version_id = v.id) END))");
	if (st)
		sqlite3_bind_int64(st, 1, min_backends);
	n = one_int(st, -1);
	pthread_mutex_unlock(&c->lock);
	if (n < 0)
		return -EIO;
	*ret_pending = (uint64_t)n;
	return 0;
}

void drgw_drill_release(struct drgw_drill *d)
{
	free(d->pattern);
	free(d->name);
	free(d->issues);
	free(d->probe);
	d->pattern = d->name = d->issues = d->probe = NULL;
}

int drgw_catalog_add_drill(struct drgw_catalog *c, const struct drgw_drill *d)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "INSERT INTO drills(started_ns, backend, pattern, name, vid, "
		     "ok, restore_seconds, bytes, issues, probe) "
		     "VALUES(?,?,?,?,?,?,?,?,?,?)");
	if (st) {
		sqlite3_bind_int64(st, 1, d->started_ns);
		sqlite3_bind_text(st, 2, d->backend, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, d->pattern, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, d->name ? d->name : "", -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, d->vid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 6, d->ok);
		sqlite3_bind_double(st, 7, d->restore_seconds);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)d->bytes);
		sqlite3_bind_text(st, 9, d->issues, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 10, d->probe, -1, SQLITE_TRANSIENT);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_each_latest_drill(struct drgw_catalog *c, drgw_drill_fn fn,
				   void *arg)
{
	struct drgw_drill *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT started_ns, backend, pattern, name, vid, ok, "
		     "restore_seconds, bytes, issues, probe FROM drills d WHERE id = "
		     "(SELECT MAX(id) FROM drills e WHERE e.backend = d.backend "
		     "AND e.pattern = d.pattern) ORDER BY backend, pattern");
	if (!st)
		r = -EIO;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		struct drgw_drill *d;
		void *more;

		more = rows_reserve(rows, &cap, n, sizeof(*rows));
		if (!more) {
			r = -ENOMEM;
			break;
		}
		rows = more;
		d = &rows[n++];
		memset(d, 0, sizeof(*d));
		d->started_ns = sqlite3_column_int64(st, 0);
		col_copy(st, 1, d->backend, sizeof(d->backend));
		d->pattern = col_strdup(st, 2);
		d->name = col_strdup(st, 3);
		col_copy(st, 4, d->vid, sizeof(d->vid));
		d->ok = sqlite3_column_int(st, 5) != 0;
		d->restore_seconds = sqlite3_column_double(st, 6);
		d->bytes = (uint64_t)sqlite3_column_int64(st, 7);
		d->issues = col_strdup(st, 8);
		d->probe = col_strdup(st, 9);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = fn(arg, &rows[i]);
		drgw_drill_release(&rows[i]);
	}
	free(rows);
	return r;
}

int drgw_catalog_save_stream_token(struct drgw_catalog *c, const char *vid,
				   const char *backend, const char *key,
				   const void *token, size_t len)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "INSERT OR REPLACE INTO streams VALUES(?, ?, ?, ?)");
	if (st) {
		sqlite3_bind_text(st, 1, vid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, backend, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_blob(st, 4, token, (int)len, SQLITE_TRANSIENT);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_delete_stream(struct drgw_catalog *c, const char *vid,
			       const char *backend)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "DELETE FROM streams WHERE vid = ? AND backend = ?");
	if (st) {
		sqlite3_bind_text(st, 1, vid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, backend, -1, SQLITE_TRANSIENT);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_each_stream(struct drgw_catalog *c, drgw_stream_fn fn,
			     void *arg)
{
	struct drgw_stream_row *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT vid, backend, key, token FROM streams");
	if (!st)
		r = -EIO;
	while (st && r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		struct drgw_stream_row *row;
		const void *tok = sqlite3_column_blob(st, 3);
		int len = sqlite3_column_bytes(st, 3);
		void *more;

		more = rows_reserve(rows, &cap, n, sizeof(*rows));
		if (!more) {
			r = -ENOMEM;
			break;
		}
		rows = more;
		row = &rows[n++];
		memset(row, 0, sizeof(*row));
		col_copy(st, 0, row->vid, sizeof(row->vid));
		col_copy(st, 1, row->backend, sizeof(row->backend));
		col_copy(st, 2, row->key, sizeof(row->key));
		row->token_len = len > 0 ? (size_t)len : 0;
		row->token = drgw_memdup(tok, row->token_len);
		if (!row->token) {
			r = -ENOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = fn(arg, &rows[i]);
		free(rows[i].token);
	}
	free(rows);
	return r;
}

/* --- drgw prune --- */

int drgw_catalog_prune_intend(struct drgw_catalog *c, const char *backend,
			      const struct drgw_prune_entry *e, size_t n)
{
	int64_t now = drgw_now_ns();
	int r;

	pthread_mutex_lock(&c->lock);
	r = exec(c, "BEGIN IMMEDIATE");
	for (size_t i = 0; r == 0 && i < n; i++) {
		sqlite3_stmt *st = prep(c, "INSERT OR REPLACE INTO pruned(backend, "
					   "key, vid, name, created_ns, bytes, "
					   "state, since_ns) VALUES(?, ?, ?, ?, ?, "
					   "?, 'removing', ?)");

		if (st) {
			sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 2, e[i].key, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 3, e[i].vid, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 4, e[i].name, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 5, e[i].created_ns);
			sqlite3_bind_int64(st, 6, (sqlite3_int64)e[i].bytes);
			sqlite3_bind_int64(st, 7, now);
		}
		r = run(st);
	}
	if (r == 0)
		r = exec(c, "COMMIT");
	if (r < 0)
		exec(c, "ROLLBACK");
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* One key of backend is gone: the record says so, the replica and the
 * cached description of the object go. */
static int prune_removed(struct drgw_catalog *c, const char *backend,
			 const char *key, int64_t now)
{
	static const char *const sql[] = {
		"UPDATE pruned SET state = 'removed', since_ns = ?3 "
		"WHERE backend = ?1 AND key = ?2",
		"DELETE FROM replicas WHERE backend = ?1 AND version_id IN "
		"(SELECT v.id FROM versions v JOIN pruned p ON p.vid = v.vid "
		"WHERE p.backend = ?1 AND p.key = ?2)",
		"DELETE FROM remote_objects WHERE backend = ?1 AND key = ?2",
	};
	int r = 0;

	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(sql); i++) {
		sqlite3_stmt *st = prep(c, sql[i]);

		if (st) {
			sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
			if (i == 0)
				sqlite3_bind_int64(st, 3, now);
		}
		r = run(st);
	}
	return r;
}

static int prune_forget(struct drgw_catalog *c, const char *backend,
			const char *key)
{
	sqlite3_stmt *st = prep(c, "DELETE FROM pruned WHERE backend = ? AND "
				   "key = ? AND state = 'removing'");

	if (st) {
		sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	}
	return run(st);
}

int drgw_catalog_prune_done(struct drgw_catalog *c, const char *backend,
			    const char *const *keys, const int *results,
			    size_t n)
{
	int64_t now = drgw_now_ns();
	int r;

	pthread_mutex_lock(&c->lock);
	r = exec(c, "BEGIN IMMEDIATE");
	for (size_t i = 0; r == 0 && i < n; i++)
		r = results[i] == 0 ? prune_removed(c, backend, keys[i], now) :
				      prune_forget(c, backend, keys[i]);
	if (r == 0)
		r = exec(c, "COMMIT");
	if (r < 0)
		exec(c, "ROLLBACK");
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_each_prune_pending(struct drgw_catalog *c, const char *backend,
				    drgw_prune_pending_fn fn, void *arg)
{
	char **keys = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT key FROM pruned WHERE backend = ? AND "
		     "state = 'removing' ORDER BY key");
	if (!st)
		r = -EIO;
	else
		sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		void *more = rows_reserve(keys, &cap, n, sizeof(*keys));

		if (!more) {
			r = -ENOMEM;
			break;
		}
		keys = more;
		keys[n] = col_strdup(st, 0);
		if (!keys[n++]) {
			r = -ENOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = fn(arg, keys[i]);
		free(keys[i]);
	}
	free(keys);
	return r;
}

int drgw_catalog_each_pruned_of(struct drgw_catalog *c, const char *vid,
				drgw_pruned_fn fn, void *arg)
{
	char (*rows)[64] = NULL;
	int64_t *since = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT backend, since_ns FROM pruned WHERE vid = ? AND "
		     "state = 'removed' ORDER BY backend");
	if (!st)
		r = -EIO;
	else
		sqlite3_bind_text(st, 1, vid, -1, SQLITE_TRANSIENT);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		size_t old_cap = cap;
		void *more = rows_reserve(rows, &cap, n, sizeof(*rows));
		void *more2;

		if (!more) {
			r = -ENOMEM;
			break;
		}
		rows = more;
		more2 = cap != old_cap ? realloc(since, cap * sizeof(*since)) :
					 since;
		if (!more2) {
			r = -ENOMEM;
			break;
		}
		since = more2;
		col_copy(st, 0, rows[n], sizeof(rows[n]));
		since[n++] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = fn(arg, rows[i], since[i]);
	free(rows);
	free(since);
	return r;
}

int drgw_catalog_add_prune_run(struct drgw_catalog *c,
			       const struct drgw_prune_run *p)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "INSERT INTO prune_runs(backend, started_ns, finished_ns, "
		     "ok, kept, removed, locked, kept_bytes, removed_bytes, "
		     "newest_ns, window_ns, error) "
		     "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
	if (st) {
		sqlite3_bind_text(st, 1, p->backend, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, p->started_ns);
		sqlite3_bind_int64(st, 3, p->finished_ns);
		sqlite3_bind_int(st, 4, p->ok);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)p->kept);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)p->removed);
		sqlite3_bind_int64(st, 7, (sqlite3_int64)p->locked);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)p->kept_bytes);
		sqlite3_bind_int64(st, 9, (sqlite3_int64)p->removed_bytes);
		sqlite3_bind_int64(st, 10, p->newest_ns);
		sqlite3_bind_int64(st, 11, p->window_ns);
		sqlite3_bind_text(st, 12, p->error[0] ? p->error : NULL, -1,
				  SQLITE_TRANSIENT);
	}
	r = run(st);
	/* The history is for humans; the newest few runs are plenty. */
	if (r == 0) {
		st = prep(c, "DELETE FROM prune_runs WHERE backend = ?1 AND id <= "
			     "(SELECT MAX(id) FROM prune_runs WHERE backend = ?1) - 100");
		if (st)
			sqlite3_bind_text(st, 1, p->backend, -1, SQLITE_TRANSIENT);
		run(st);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_each_latest_prune_run(struct drgw_catalog *c,
				       drgw_prune_run_fn fn, void *arg)
{
	struct drgw_prune_run *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT backend, started_ns, finished_ns, ok, kept, "
		     "removed, locked, kept_bytes, removed_bytes, newest_ns, "
		     "window_ns, error FROM prune_runs p WHERE id = "
		     "(SELECT MAX(id) FROM prune_runs q WHERE q.backend = "
		     "p.backend) ORDER BY backend");
	if (!st)
		r = -EIO;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		struct drgw_prune_run *p;
		void *more = rows_reserve(rows, &cap, n, sizeof(*rows));

		if (!more) {
			r = -ENOMEM;
			break;
		}
		rows = more;
		p = &rows[n++];
		memset(p, 0, sizeof(*p));
		col_copy(st, 0, p->backend, sizeof(p->backend));
		p->started_ns = sqlite3_column_int64(st, 1);
		p->finished_ns = sqlite3_column_int64(st, 2);
		p->ok = sqlite3_column_int(st, 3) != 0;
		p->kept = (uint64_t)sqlite3_column_int64(st, 4);
		p->removed = (uint64_t)sqlite3_column_int64(st, 5);
		p->locked = (uint64_t)sqlite3_column_int64(st, 6);
		p->kept_bytes = (uint64_t)sqlite3_column_int64(st, 7);
		p->removed_bytes = (uint64_t)sqlite3_column_int64(st, 8);
		p->newest_ns = sqlite3_column_int64(st, 9);
		p->window_ns = sqlite3_column_int64(st, 10);
		col_copy(st, 11, p->error, sizeof(p->error));
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = fn(arg, &rows[i]);
	free(rows);
	return r;
}

int drgw_catalog_each_replicated(struct drgw_catalog *c, const char *backend,
				 drgw_replicated_fn fn, void *arg)
{
	struct row {
		char vid[64];
		char *name;
		int64_t created_ns;
		uint64_t bytes;
	} *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT v.vid, v.name, v.created_ns, v.stored_size "
		     "FROM versions v JOIN replicas r ON r.version_id = v.id "
		     "WHERE r.backend = ? AND r.state = 'done'");
	if (!st)
		r = -EIO;
	else
		sqlite3_bind_text(st, 1, backend, -1, SQLITE_TRANSIENT);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		void *more = rows_reserve(rows, &cap, n, sizeof(*rows));

		if (!more) {
			r = -ENOMEM;
			break;
		}
		rows = more;
		col_copy(st, 0, rows[n].vid, sizeof(rows[n].vid));
		rows[n].name = col_strdup(st, 1);
		rows[n].created_ns = sqlite3_column_int64(st, 2);
		rows[n].bytes = (uint64_t)sqlite3_column_int64(st, 3);
		if (!rows[n++].name) {
			r = -ENOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = fn(arg, rows[i].vid, rows[i].name, rows[i].created_ns,
			       rows[i].bytes);
		free(rows[i].name);
	}
	free(rows);
	return r;
}

int drgw_catalog_baseline_save(struct drgw_catalog *c, const char *dir,
			       int64_t taken_ns,
			       const struct drgw_file_state *files, size_t n)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	r = exec(c, "BEGIN IMMEDIATE");
	if (r < 0)
		goto out;
	st = prep(c, "DELETE FROM baseline_files WHERE dir = ?");
	if (st)
		sqlite3_bind_text(st, 1, dir, -1, SQLITE_TRANSIENT);
	r = run(st);
	if (r == 0) {
		st = prep(c, "INSERT OR REPLACE INTO baselines VALUES(?, ?)");
		if (st) {
			sqlite3_bind_text(st, 1, dir, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 2, taken_ns);
		}
		r = run(st);
	}
	/* One statement for every row: a directory may hold many files. */
	st = r == 0 ? prep(c, "INSERT INTO baseline_files VALUES(?, ?, ?, ?, ?, ?)") :
		      NULL;
	if (r == 0 && !st)
		r = -EIO;
	for (size_t i = 0; r == 0 && i < n; i++) {
		int rc;

		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, dir, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, files[i].name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)files[i].size);
		sqlite3_bind_int64(st, 4, files[i].mtime_ns);
		sqlite3_bind_int64(st, 5, files[i].ctime_ns);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)files[i].ino);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			r = sql_errno(rc) ?: -EIO;
	}
	sqlite3_finalize(st);
	if (r == 0)
		r = exec(c, "COMMIT");
	if (r < 0)
		exec(c, "ROLLBACK");
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_baseline_load(struct drgw_catalog *c, const char *dir,
			       int64_t *ret_taken_ns, drgw_file_state_fn fn,
			       void *arg)
{
	sqlite3_stmt *st;
	int64_t taken;
	int r = 0, rc = SQLITE_DONE;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT taken_ns FROM baselines WHERE dir = ?");
	if (st)
		sqlite3_bind_text(st, 1, dir, -1, SQLITE_TRANSIENT);
	taken = one_int(st, -1);
	if (taken < 0) {
		r = -ENOENT;
		goto out;
	}
	st = prep(c, "SELECT name, size, mtime_ns, ctime_ns, ino "
		     "FROM baseline_files WHERE dir = ?");
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, dir, -1, SQLITE_TRANSIENT);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct drgw_file_state f = {
			.name = (const char *)sqlite3_column_text(st, 0),
			.size = (uint64_t)sqlite3_column_int64(st, 1),
			.mtime_ns = sqlite3_column_int64(st, 2),
			.ctime_ns = sqlite3_column_int64(st, 3),
			.ino = (uint64_t)sqlite3_column_int64(st, 4),
		};

		r = f.name ? fn(arg, &f) : -ENOMEM;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sql_errno(rc) ?: -EIO;
	sqlite3_finalize(st);
	if (r == 0)
		*ret_taken_ns = taken;
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_baseline_drop(struct drgw_catalog *c, const char *dir)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "DELETE FROM baselines WHERE dir = ?");
	if (st)
		sqlite3_bind_text(st, 1, dir, -1, SQLITE_TRANSIENT);
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_set_check(struct drgw_catalog *c, int64_t id,
			   const struct drgw_sqlcheck_result *res)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "UPDATE versions SET check_verdict = ?, check_level = ?, "
		     "check_message = ? WHERE id = ?");
	if (st) {
		sqlite3_bind_int(st, 1, res->verdict);
		sqlite3_bind_int(st, 2, res->level);
		sqlite3_bind_text(st, 3, res->message, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, id);
	}
	r = run(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int drgw_catalog_check_counts(struct drgw_catalog *c,
			      uint64_t counts[DRGW_SQLCHECK_VERDICTS])
{
	sqlite3_stmt *st;
	int r = 0, rc;

	memset(counts, 0, DRGW_SQLCHECK_VERDICTS * sizeof(counts[0]));
	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT check_verdict, COUNT(*) FROM versions "
		     "WHERE state = 'encoded' GROUP BY check_verdict");
	while (st && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(st, 0);

		if (v >= 0 && v < DRGW_SQLCHECK_VERDICTS)
			counts[v] = (uint64_t)sqlite3_column_int64(st, 1);
	}
	if (!st)
		r = -EIO;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int64_t drgw_catalog_count_failed_checks(struct drgw_catalog *c,
					 int64_t since_ns)
{
	sqlite3_stmt *st;
	int64_t n;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT COUNT(*) FROM versions WHERE created_ns >= ? "
		     "AND check_verdict >= ?");
	if (st) {
		sqlite3_bind_int64(st, 1, since_ns);
		sqlite3_bind_int(st, 2, DRGW_SQLCHECK_CORRUPT);
	}
	n = one_int(st, -1);
	pthread_mutex_unlock(&c->lock);
	return n;
}

struct series {
	char *pattern;
	size_t newest, good; /* indexes into the rows; good SIZE_MAX: none */
	bool sqlite;
};

static int cmp_series(const void *a, const void *b)
{
	return strcmp(((const struct series *)a)->pattern,
		      ((const struct series *)b)->pattern);
}

int drgw_catalog_each_series(struct drgw_catalog *c, drgw_series_fn fn,
			     void *arg)
{
	struct drgw_version *rows = NULL;
	struct series *ser = NULL;
	size_t n = 0, cap = 0, n_ser = 0, ser_cap = 0;
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT " VERSION_COLS " FROM versions WHERE "
		     "state = 'encoded' AND check_verdict != 0 "
		     "ORDER BY created_ns DESC, id DESC");
	if (!st)
		r = -EIO;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		void *more = rows_reserve(rows, &cap, n, sizeof(*rows));

		if (!more) {
			r = -ENOMEM;
			break;
		}
		rows = more;
		read_version(st, &rows[n]);
		if (!rows[n++].name) {
			r = -ENOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);

	/* Newest first: the first row of a pattern is its newest, the
	 * first ok row its newest good one.  Few series, so a linear
	 * search is fine. */
	for (size_t i = 0; r == 0 && i < n; i++) {
		char *pattern = drgw_name_pattern(rows[i].name);
		struct series *s = NULL;

		if (!pattern) {
			r = -ENOMEM;
			break;
		}
		for (size_t j = 0; j < n_ser && !s; j++)
			if (!strcmp(ser[j].pattern, pattern))
				s = &ser[j];
		if (!s) {
			void *more = rows_reserve(ser, &ser_cap, n_ser,
						  sizeof(*ser));

			if (!more) {
				free(pattern);
				r = -ENOMEM;
				break;
			}
			ser = more;
			s = &ser[n_ser++];
			*s = (struct series){ .pattern = pattern, .newest = i,
					      .good = SIZE_MAX };
		} else {
			free(pattern);
		}
		if (rows[i].check.verdict >= DRGW_SQLCHECK_OK)
			s->sqlite = true;
		/* An incomplete version (a failed write-back, a writer that
		 * died) is no good backup, whatever its pages say. */
		if (rows[i].check.verdict == DRGW_SQLCHECK_OK &&
		    !rows[i].problem && s->good == SIZE_MAX)
			s->good = i;
	}
	if (n_ser)
		qsort(ser, n_ser, sizeof(*ser), cmp_series);
	for (size_t j = 0; j < n_ser; j++) {
		if (r == 0 && ser[j].sqlite)
			r = fn(arg, ser[j].pattern, &rows[ser[j].newest],
			       ser[j].good == SIZE_MAX ? NULL : &rows[ser[j].good]);
		free(ser[j].pattern);
	}
	free(ser);
	for (size_t i = 0; i < n; i++)
		drgw_version_release(&rows[i]);
	free(rows);
	return r;
}

bool drgw_catalog_version_good(struct drgw_catalog *c, const char *vid)
{
	sqlite3_stmt *st;
	int64_t n;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT COUNT(*) FROM versions WHERE vid = ? AND "
		     "state = 'encoded' AND check_verdict = ? AND problem IS NULL");
	if (st) {
		sqlite3_bind_text(st, 1, vid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 2, DRGW_SQLCHECK_OK);
	}
	n = one_int(st, 0);
	pthread_mutex_unlock(&c->lock);
	return n > 0;
}

int drgw_catalog_version_problem(struct drgw_catalog *c, const char *vid)
{
	sqlite3_stmt *st;
	int64_t n;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT problem IS NOT NULL FROM versions WHERE vid = ? "
		     "AND state = 'encoded'");
	if (st)
		sqlite3_bind_text(st, 1, vid, -1, SQLITE_TRANSIENT);
	n = one_int(st, -1);
	pthread_mutex_unlock(&c->lock);
	return n < 0 ? -ENOENT : (int)n;
}

struct newest {
	char *pattern, *vid, *problem;
};

int drgw_catalog_each_newest(struct drgw_catalog *c, drgw_newest_fn fn,
			     void *arg)
{
	struct newest *seen = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	st = prep(c, "SELECT name, vid, problem FROM versions WHERE "
		     "state = 'encoded' ORDER BY created_ns DESC, id DESC");
	if (!st)
		r = -EIO;
	/* Newest first: the first row of a pattern is its newest.  Few
	 * patterns, so a linear search is fine. */
	while (r == 0 && st && sqlite3_step(st) == SQLITE_ROW) {
		char *pattern = drgw_name_pattern(
			(const char *)sqlite3_column_text(st, 0));
		const char *problem = (const char *)sqlite3_column_text(st, 2);
		bool known = false;
		void *more;

		if (!pattern) {
			r = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < n && !known; i++)
			known = !strcmp(seen[i].pattern, pattern);
		if (known) {
			free(pattern);
			continue;
		}
		more = rows_reserve(seen, &cap, n, sizeof(*seen));
		if (!more) {
			free(pattern);
			r = -ENOMEM;
			break;
		}
		seen = more;
		seen[n] = (struct newest){
			.pattern = pattern,
			.vid = col_strdup(st, 1),
			.problem = problem ? strdup(problem) : NULL,
		};
		if (!seen[n].vid || (problem && !seen[n].problem))
			r = -ENOMEM;
		n++;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = fn(arg, seen[i].pattern, seen[i].vid, seen[i].problem);
		free(seen[i].pattern);
		free(seen[i].vid);
		free(seen[i].problem);
	}
	free(seen);
	return r;
}
