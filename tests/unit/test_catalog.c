/* SPDX-License-Identifier: MIT */
/*
 * Catalog state machine: sealed -> encoded with a pending replica per
 * backend; claim -> uploading -> done/failing; failing waits out its
 * backoff; uploading returns to pending after a crash with its resume
 * token; settling files and queue statistics.
 */
#define TEST_MAIN
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "catalog.h"

static char dir[64];

static struct drgw_catalog *fresh(void)
{
	struct drgw_catalog *c;
	struct drgw_err err = { 0 };
	char path[128];

	snprintf(dir, sizeof(dir), "/tmp/drgw-test-catalog-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/catalog.db", dir);
	if (drgw_catalog_open(path, false, &c, &err))
		FAIL("open: %s", err.msg);
	return c;
}

static void done(struct drgw_catalog *c)
{
	char cmd[160];

	drgw_catalog_close(c);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_OK(system(cmd));
}

static struct drgw_version sealed(struct drgw_catalog *c, const char *vid,
				  const char *name, int64_t created)
{
	struct drgw_version v = { 0 };

	snprintf(v.vid, sizeof(v.vid), "%s", vid);
	v.name = (char *)name;
	v.size = 1000;
	v.mtime_ns = created - 5;
	v.mode = 0644;
	v.created_ns = created;
	CHECK_OK(drgw_catalog_add_version(c, &v));
	CHECK(v.id > 0);
	return v;
}

static const char *const backends[] = { "a", "b" };

static void encode(struct drgw_catalog *c, struct drgw_version *v)
{
	v->stored_size = 400;
	snprintf(v->sha256, sizeof(v->sha256), "%064d", 1);
	snprintf(v->object_sha256, sizeof(v->object_sha256), "%064d", 2);
	v->encoded_ns = v->created_ns + 1;
	CHECK_OK(drgw_catalog_set_encoded(c, v, backends, 2, NULL, "key.drgw"));
}

TEST(version_lifecycle)
{
	struct drgw_catalog *c = fresh();
	struct drgw_version v = sealed(c, "v1", "app.db", 100), got;
	struct drgw_queue_stats qs;

	CHECK_OK(drgw_catalog_next_sealed(c, 1000, &got));
	CHECK_STR(got.vid, "v1");
	CHECK_INT(got.state, ==, DRGW_VERSION_SEALED);
	drgw_version_release(&got);

	/* A failed encode waits for its next attempt. */
	CHECK_OK(drgw_catalog_set_encode_failed(c, v.id, "disk full", 5000));
	CHECK_INT(drgw_catalog_next_sealed(c, 1000, &got), ==, -ENOENT);
	CHECK_INT(drgw_catalog_next_sealed_due(c), ==, 5000);
	CHECK_OK(drgw_catalog_next_sealed(c, 5000, &got));
	CHECK_STR(got.error, "disk full");
	CHECK_INT(got.attempts, ==, 1);
	drgw_version_release(&got);

	encode(c, &v);
	CHECK_INT(drgw_catalog_next_sealed(c, 1 << 30, &got), ==, -ENOENT);
	CHECK_OK(drgw_catalog_get_version(c, "v1", &got));
	CHECK_INT(got.state, ==, DRGW_VERSION_ENCODED);
	CHECK_INT(got.stored_size, ==, 400);
	CHECK(got.error == NULL);
	drgw_version_release(&got);

	CHECK_OK(drgw_catalog_queue_stats(c, NULL, &qs));
	CHECK_INT(qs.replicas_pending, ==, 2);
	CHECK_INT(qs.bytes_pending, ==, 800);
	CHECK_INT(qs.oldest_pending_ns, ==, 100);
	CHECK_INT(qs.versions_replicated, ==, 0);
	done(c);
}

TEST(replica_lifecycle_and_backoff)
{
	struct drgw_catalog *c = fresh();
	struct drgw_version v1 = sealed(c, "v1", "x.db", 100);
	struct drgw_version v2 = sealed(c, "v2", "y.db", 200);
	bool busy[2] = { false, false }, all;
	struct drgw_replica r;
	struct drgw_queue_stats qs;
	int64_t due;

	encode(c, &v1);
	encode(c, &v2);
	/* Oldest snapshot first. */
	CHECK_OK(drgw_catalog_claim_replica(c, 1000, backends, busy, 2, &r, &due));
	CHECK_INT(r.version_id, ==, v1.id);
	CHECK_INT(r.state, ==, DRGW_REPLICA_UPLOADING);
	CHECK_OK(drgw_catalog_save_token(c, r.version_id, r.backend, "tok", 3));
	CHECK_STR(r.backend, "a");
	/* A claimed replica is not handed out twice: next is v1 on b. */
	{
		struct drgw_replica r2;

		CHECK_OK(drgw_catalog_claim_replica(c, 1000, backends, busy, 2,
						    &r2, &due));
		CHECK_INT(r2.version_id, ==, v1.id);
		CHECK_STR(r2.backend, "b");
		CHECK_OK(drgw_catalog_replica_failed(c, r2.version_id, r2.backend,
						     "503 SlowDown", 9000));
		drgw_replica_release(&r2);
	}
	/* Crash: uploading goes back to pending with its token. */
	CHECK_OK(drgw_catalog_recover(c));
	drgw_replica_release(&r);
	CHECK_OK(drgw_catalog_claim_replica(c, 1000, backends, busy, 2, &r, &due));
	CHECK_INT(r.token_len, ==, 3);
	CHECK(memcmp(r.token, "tok", 3) == 0);
	CHECK_OK(drgw_catalog_replica_done(c, r.version_id, r.backend, 400));
	drgw_replica_release(&r);

	/* Busy backends are skipped: with a busy, only v2 on b is due (v1 on
	 * b waits out its backoff until 9000). */
	busy[0] = true;
	CHECK_OK(drgw_catalog_claim_replica(c, 1000, backends, busy, 2, &r, &due));
	CHECK_STR(r.backend, "b");
	CHECK_INT(r.version_id, ==, v2.id);
	CHECK_OK(drgw_catalog_replica_done(c, r.version_id, r.backend, 400));
	drgw_replica_release(&r);
	CHECK_INT(drgw_catalog_claim_replica(c, 1000, backends, busy, 2, &r, &due),
		  ==, -ENOENT);
	busy[0] = false;
	CHECK_OK(drgw_catalog_claim_replica(c, 1000, backends, busy, 2, &r, &due));
	CHECK_STR(r.backend, "a");
	CHECK_INT(r.version_id, ==, v2.id);
	CHECK_OK(drgw_catalog_replica_done(c, r.version_id, r.backend, 400));
	drgw_replica_release(&r);
	CHECK_INT(drgw_catalog_claim_replica(c, 1000, backends, busy, 2, &r, &due),
		  ==, -ENOENT);
	CHECK_INT(due, ==, 9000);

	CHECK_OK(drgw_catalog_queue_stats(c, "a", &qs));
	CHECK_INT(qs.replicas_failing, ==, 0);
	CHECK_INT(qs.replicas_pending, ==, 0);
	CHECK_OK(drgw_catalog_queue_stats(c, "b", &qs));
	CHECK_INT(qs.replicas_failing, ==, 1);
	CHECK_INT(qs.replicas_pending, ==, 1);
	CHECK_OK(drgw_catalog_all_replicated(c, v1.id, &all));
	CHECK_INT(all, ==, 0);
	CHECK_OK(drgw_catalog_all_replicated(c, v2.id, &all));
	CHECK_INT(all, ==, 1);
	CHECK_OK(drgw_catalog_claim_replica(c, 9000, backends, busy, 2, &r, &due));
	CHECK_STR(r.last_error, "503 SlowDown");
	CHECK_INT(r.attempts, ==, 1);
	CHECK_OK(drgw_catalog_replica_done(c, r.version_id, r.backend, 400));
	drgw_replica_release(&r);
	CHECK_OK(drgw_catalog_queue_stats(c, NULL, &qs));
	CHECK_INT(qs.replicas_pending, ==, 0);
	CHECK_INT(qs.versions_replicated, ==, 2);
	CHECK_INT(qs.newest_replicated_ns, ==, 200);
	done(c);
}

TEST(settling_and_merging)
{
	struct drgw_catalog *c = fresh();
	struct drgw_queue_stats qs;
	struct drgw_version v, got;

	CHECK_OK(drgw_catalog_set_settling(c, "app.db", true));
	CHECK_OK(drgw_catalog_set_settling(c, "app.db", true));
	CHECK_OK(drgw_catalog_queue_stats(c, NULL, &qs));
	CHECK_INT(qs.files_settling, ==, 1);
	/* Sealing ends settling in the same transaction. */
	v = sealed(c, "v1", "app.db", 100);
	CHECK_OK(drgw_catalog_queue_stats(c, NULL, &qs));
	CHECK_INT(qs.files_settling, ==, 0);
	CHECK_INT(qs.versions_unencoded, ==, 1);
	CHECK_OK(drgw_catalog_reschedule_version(c, v.id, 777));
	CHECK_INT(drgw_catalog_next_sealed_due(c), ==, 777);
	CHECK_OK(drgw_catalog_latest_version(c, "app.db", &got));
	CHECK_STR(got.vid, "v1");
	drgw_version_release(&got);
	CHECK_OK(drgw_catalog_delete_version(c, v.id));
	CHECK_INT(drgw_catalog_latest_version(c, "app.db", &got), ==, -ENOENT);
	done(c);
}

static int count_versions(void *arg, const struct drgw_version *v)
{
	(*(int *)arg)++;
	return 0;
}

TEST(listing_latest_and_by_name)
{
	struct drgw_catalog *c = fresh();
	const char *names[] = { "b.db", NULL };
	int n = 0;

	sealed(c, "v1", "a.db", 100);
	sealed(c, "v2", "a.db", 200);
	sealed(c, "v3", "b.db", 300);
	CHECK_OK(drgw_catalog_each_version(c, false, NULL, count_versions, &n));
	CHECK_INT(n, ==, 3);
	n = 0;
	CHECK_OK(drgw_catalog_each_version(c, true, NULL, count_versions, &n));
	CHECK_INT(n, ==, 2);
	n = 0;
	CHECK_OK(drgw_catalog_each_version(c, false, names, count_versions, &n));
	CHECK_INT(n, ==, 1);
	done(c);
}

TEST(remote_listing_cache)
{
	struct drgw_catalog *c = fresh();
	struct drgw_remote_object o = { .backend = "s3", .object_size = 99,
					.etag = "e1", .vid = "v1", .size = 7,
					.mtime_ns = 5, .created_ns = 6, .mode = 0600 };
	struct drgw_remote_object got;

	o.key = (char *)"v1.drgw";
	o.name = (char *)"dir/app.db";
	snprintf(o.sha256, sizeof(o.sha256), "%064d", 3);
	CHECK_OK(drgw_catalog_put_remote(c, &o));
	CHECK_OK(drgw_catalog_get_remote(c, "s3", "v1.drgw", 99, "e1", &got));
	CHECK_STR(got.name, "dir/app.db");
	CHECK_INT(got.mode, ==, 0600);
	drgw_remote_object_release(&got);
	/* A changed object (other etag or size) is not served from cache. */
	CHECK_INT(drgw_catalog_get_remote(c, "s3", "v1.drgw", 99, "e2", &got), ==, -ENOENT);
	CHECK_INT(drgw_catalog_get_remote(c, "s3", "v1.drgw", 98, "e1", &got), ==, -ENOENT);
	done(c);
}

TEST(remote_tail_kept)
{
	struct drgw_catalog *c = fresh();
	struct drgw_remote_object o = { .backend = "s3", .object_size = 99,
					.etag = "e1", .vid = "v1", .size = 7 };
	static const uint8_t tail[5] = { 1, 0, 2, 0, 3 };
	void *got;
	size_t len;

	o.key = (char *)"v1.drgw";
	o.name = (char *)"app.db";
	/* Without a tail, none is found. */
	CHECK_OK(drgw_catalog_put_remote(c, &o));
	CHECK_INT(drgw_catalog_get_remote_tail(c, "s3", "v1.drgw", 99, &got, &len), ==, -ENOENT);
	o.tail = tail;
	o.tail_len = sizeof(tail);
	CHECK_OK(drgw_catalog_put_remote(c, &o));
	CHECK_OK(drgw_catalog_get_remote_tail(c, "s3", "v1.drgw", 99, &got, &len));
	CHECK_INT(len, ==, sizeof(tail));
	CHECK(!memcmp(got, tail, sizeof(tail)));
	free(got);
	/* Another size is another object. */
	CHECK_INT(drgw_catalog_get_remote_tail(c, "s3", "v1.drgw", 98, &got, &len), ==, -ENOENT);
	CHECK_INT(drgw_catalog_get_remote_tail(c, "gcs", "v1.drgw", 99, &got, &len), ==, -ENOENT);
	done(c);
}

TEST(backend_added_later_and_backfilled)
{
	struct drgw_catalog *c = fresh();
	struct drgw_version v1 = sealed(c, "v1", "x.db", 100);
	struct drgw_version v2 = sealed(c, "v2", "x.db", 200);
	bool all = false;

	encode(c, &v1);
	CHECK_INT(drgw_catalog_count_newest_missing(c, "a"), ==, 0);
	/* "c" was not configured when v1 was encoded; v2 is not encoded. */
	CHECK_INT(drgw_catalog_count_newest_missing(c, "c"), ==, 1);
	CHECK_OK(drgw_catalog_adopt_replica(c, "v1", "c", "v1.drgw", 400));
	CHECK_INT(drgw_catalog_count_newest_missing(c, "c"), ==, 0);
	/* Unknown or unencoded versions are left alone. */
	CHECK_OK(drgw_catalog_adopt_replica(c, "v2", "c", "v2.drgw", 400));
	CHECK_OK(drgw_catalog_adopt_replica(c, "nope", "c", "nope.drgw", 400));
	/* v2 becomes x.db's newest: c lacks it; v1, older, no longer counts. */
	encode(c, &v2);
	CHECK_INT(drgw_catalog_count_newest_missing(c, "c"), ==, 1);
	CHECK_OK(drgw_catalog_adopt_replica(c, "v2", "c", "v2.drgw", 400));
	CHECK_INT(drgw_catalog_count_newest_missing(c, "c"), ==, 0);
	CHECK_INT(drgw_catalog_count_newest_missing(c, "d"), ==, 1);
	/* Adopting a replica the replicator still has pending completes it. */
	CHECK_OK(drgw_catalog_adopt_replica(c, "v1", "a", "v1.drgw", 400));
	CHECK_OK(drgw_catalog_all_replicated(c, v1.id, &all));
	CHECK(!all); /* b is still pending */
	CHECK_OK(drgw_catalog_adopt_replica(c, "v1", "b", "v1.drgw", 400));
	CHECK_OK(drgw_catalog_all_replicated(c, v1.id, &all));
	CHECK(all);
	done(c);
}

/* A catalog written by the first release (schema 1, tests/unit/
 * catalog-v1.sql) opens, keeps its rows and gains every later column. */
TEST(schema_1_catalog_is_migrated)
{
	struct drgw_catalog *c;
	struct drgw_version got;
	struct drgw_err err = { 0 };
	char path[128], cmd[800];

	snprintf(dir, sizeof(dir), "/tmp/drgw-test-catalog-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/catalog.db", dir);
	snprintf(cmd, sizeof(cmd), "sqlite3 %s < %s/catalog-v1.sql", path,
		 SOURCE_DIR);
	CHECK_OK(system(cmd));
	if (drgw_catalog_open(path, false, &c, &err))
		FAIL("open: %s", err.msg);
	CHECK_OK(drgw_catalog_get_version(c, "v1", &got));
	CHECK_STR(got.name, "old.db");
	CHECK_INT(got.id, ==, 7);
	CHECK_INT(got.ctime_ns, ==, 0);
	CHECK(got.problem == NULL);
	/* Sealed before drgw checked: not checked, truthfully. */
	CHECK_INT(got.check.verdict, ==, DRGW_SQLCHECK_NOT_CHECKED);
	drgw_version_release(&got);
	/* And it works as a current one: a new version, a second open. */
	sealed(c, "v2", "new.db", 2000);
	drgw_catalog_close(c);
	if (drgw_catalog_open(path, false, &c, &err))
		FAIL("reopen: %s", err.msg);
	CHECK_OK(drgw_catalog_get_version(c, "v2", &got));
	drgw_version_release(&got);
	done(c);
}

/* The callbacks' buffers are 64+ bytes; the tests stay well below. */
static void append(char *buf, size_t size, const char *s)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, "%s", s);
}

static int add_key(void *arg, const char *key)
{
	append(arg, 64, key);
	append(arg, 64, " ");
	return 0;
}

static int add_backend_name(void *arg, const char *backend, int64_t since)
{
	CHECK(since > 0);
	append(arg, 64, backend);
	return 0;
}

static int last_run(void *arg, const struct drgw_prune_run *p)
{
	*(struct drgw_prune_run *)arg = *p;
	return 0;
}

/* drgw prune's records: "removing" before the delete, then removed (the
 * replica goes, the other backend's stays) or forgotten (it failed). */
TEST(prune_records)
{
	struct drgw_catalog *c = fresh();
	struct drgw_version v1 = sealed(c, "v1", "app-1.db", 100);
	struct drgw_version v2 = sealed(c, "v2", "app-2.db", 200);
	struct drgw_prune_entry e[2] = {
		{ .key = "v1.drgw", .vid = "v1", .name = "app-1.db",
		  .created_ns = 100, .bytes = 400 },
		{ .key = "v2.drgw", .vid = "v2", .name = "app-2.db",
		  .created_ns = 200, .bytes = 400 },
	};
	const char *keys[2] = { "v1.drgw", "v2.drgw" };
	int results[2] = { 0, -EACCES };
	struct drgw_prune_run run = { .backend = "a", .ok = true, .removed = 1,
				      .window_ns = 7 }, got;
	struct drgw_queue_stats qs;
	char listed[256] = "", names[64] = "";
	bool all;

	CHECK_OK(drgw_catalog_set_encoded(c, &v1, backends, 2, NULL, "v1.drgw"));
	CHECK_OK(drgw_catalog_set_encoded(c, &v2, backends, 2, NULL, "v2.drgw"));
	for (int i = 0; i < 2; i++) {
		CHECK_OK(drgw_catalog_replica_done(c, v1.id, backends[i], 400));
		CHECK_OK(drgw_catalog_replica_done(c, v2.id, backends[i], 400));
	}
	CHECK_OK(drgw_catalog_prune_intend(c, "a", e, 2));
	CHECK_OK(drgw_catalog_each_prune_pending(c, "a", add_key, listed));
	CHECK_STR(listed, "v1.drgw v2.drgw ");
	listed[0] = '\0';
	CHECK_OK(drgw_catalog_each_prune_pending(c, "b", add_key, listed));
	CHECK_STR(listed, "");
	/* "removing" is no removal yet. */
	CHECK_OK(drgw_catalog_each_pruned_of(c, "v1", add_backend_name, names));
	CHECK_STR(names, "");

	CHECK_OK(drgw_catalog_prune_done(c, "a", keys, results, 2));
	CHECK_OK(drgw_catalog_each_prune_pending(c, "a", add_key, listed));
	CHECK_STR(listed, "");
	CHECK_OK(drgw_catalog_each_pruned_of(c, "v1", add_backend_name, names));
	CHECK_STR(names, "a");
	names[0] = '\0';
	CHECK_OK(drgw_catalog_each_pruned_of(c, "v2", add_backend_name, names));
	CHECK_STR(names, "");
	/* v1's replica on a is gone, on b it stays; a prune is no reason to
	 * upload again or to suggest a backfill. */
	CHECK_OK(drgw_catalog_all_replicated(c, v1.id, &all));
	CHECK(all);
	CHECK_OK(drgw_catalog_queue_stats(c, "a", &qs));
	CHECK_INT(qs.replicas_pending, ==, 0);
	CHECK_INT(drgw_catalog_count_newest_missing(c, "a"), ==, 0);

	CHECK_OK(drgw_catalog_add_prune_run(c, &run));
	run.removed = 2;
	CHECK_OK(drgw_catalog_add_prune_run(c, &run));
	CHECK_OK(drgw_catalog_each_latest_prune_run(c, last_run, &got));
	CHECK_STR(got.backend, "a");
	CHECK_INT(got.removed, ==, 2);
	CHECK_INT(got.window_ns, ==, 7);
	CHECK(got.ok && !got.error[0]);
	done(c);
}

/* The ctime of a version is recorded when sealed and replaced by the one
 * the encoder saw. */
TEST(version_ctime)
{
	struct drgw_catalog *c = fresh();
	struct drgw_version v = { 0 }, got;

	snprintf(v.vid, sizeof(v.vid), "v1");
	v.name = (char *)"a.db";
	v.size = 10;
	v.mtime_ns = 5;
	v.ctime_ns = 7;
	v.created_ns = 100;
	CHECK_OK(drgw_catalog_add_version(c, &v));
	CHECK_OK(drgw_catalog_latest_version(c, "a.db", &got));
	CHECK_INT(got.ctime_ns, ==, 7);
	drgw_version_release(&got);
	v.ctime_ns = 9;
	CHECK_OK(drgw_catalog_set_encoded(c, &v, backends, 2, NULL, "v1.drgw"));
	CHECK_OK(drgw_catalog_get_version(c, "v1", &got));
	CHECK_INT(got.ctime_ns, ==, 9);
	CHECK_INT(got.state, ==, DRGW_VERSION_ENCODED);
	drgw_version_release(&got);
	done(c);
}

struct collected {
	char names[8][32];
	int64_t ctimes[8];
	size_t n;
};

static int collect(void *arg, const struct drgw_file_state *f)
{
	struct collected *x = arg;

	CHECK(x->n < 8);
	snprintf(x->names[x->n], sizeof(x->names[0]), "%s", f->name);
	x->ctimes[x->n++] = f->ctime_ns;
	return 0;
}

/* A baseline is per directory, replaced by the next save, kept until
 * dropped; an empty one is still a baseline. */
TEST(baselines)
{
	struct drgw_catalog *c = fresh();
	struct drgw_file_state files[] = {
		{ .name = "a.db", .size = 1, .mtime_ns = 2, .ctime_ns = 3, .ino = 4 },
		{ .name = "sub/b.db", .size = 5, .mtime_ns = 6, .ctime_ns = 7, .ino = 8 },
	};
	struct collected x = { 0 };
	int64_t taken = 0;

	CHECK_INT(drgw_catalog_baseline_load(c, "/d", &taken, collect, &x), ==,
		  -ENOENT);
	CHECK_OK(drgw_catalog_baseline_save(c, "/d", 42, files, 2));
	CHECK_OK(drgw_catalog_baseline_save(c, "/other", 43, NULL, 0));
	CHECK_OK(drgw_catalog_baseline_load(c, "/d", &taken, collect, &x));
	CHECK_INT(taken, ==, 42);
	CHECK_INT(x.n, ==, 2);
	CHECK(!strcmp(x.names[0], "sub/b.db") || !strcmp(x.names[1], "sub/b.db"));
	CHECK_INT(x.ctimes[0] + x.ctimes[1], ==, 10);
	/* Replaced, not merged. */
	CHECK_OK(drgw_catalog_baseline_save(c, "/d", 44, files, 1));
	x.n = 0;
	CHECK_OK(drgw_catalog_baseline_load(c, "/d", &taken, collect, &x));
	CHECK_INT(x.n, ==, 1);
	CHECK_INT(taken, ==, 44);
	x.n = 0;
	CHECK_OK(drgw_catalog_baseline_load(c, "/other", &taken, collect, &x));
	CHECK_INT(x.n, ==, 0);
	CHECK_OK(drgw_catalog_baseline_drop(c, "/d"));
	CHECK_INT(drgw_catalog_baseline_load(c, "/d", &taken, collect, &x), ==,
		  -ENOENT);
	CHECK_OK(drgw_catalog_baseline_load(c, "/other", &taken, collect, &x));
	done(c);
}

static void checked(struct drgw_catalog *c, struct drgw_version *v,
		    enum drgw_sqlcheck_verdict verdict, const char *msg)
{
	struct drgw_sqlcheck_result res = { .verdict = (uint8_t)verdict,
					    .level = DRGW_SQLCHECK_QUICK };

	snprintf(res.message, sizeof(res.message), "%s", msg);
	CHECK_OK(drgw_catalog_set_check(c, v->id, &res));
	encode(c, v);
}

struct series_seen {
	char text[1024];
};

static int on_series(void *arg, const char *pattern,
		     const struct drgw_version *newest,
		     const struct drgw_version *good)
{
	struct series_seen *s = arg;
	size_t n = strlen(s->text);

	snprintf(s->text + n, sizeof(s->text) - n, "%s:%s=%s,%s;", pattern,
		 newest->vid, drgw_sqlcheck_verdict_name(newest->check.verdict),
		 good ? good->vid : "-");
	return 0;
}

/* Verdicts are stored with the version; the series query finds the newest
 * and the newest good version of every name pattern. */
TEST(check_verdicts_and_series)
{
	struct drgw_catalog *c = fresh();
	struct drgw_version a1 = sealed(c, "a1", "app-20260101.db", 100),
			    a2 = sealed(c, "a2", "app-20260102.db", 200),
			    a3 = sealed(c, "a3", "app-20260103.db", 300),
			    b1 = sealed(c, "b1", "db/b-1.db", 150),
			    e1 = sealed(c, "e1", "empty-1.db", 400),
			    e2 = sealed(c, "e2", "empty-2.db", 500),
			    t1 = sealed(c, "t1", "notes-1.txt", 160),
			    u1 = sealed(c, "u1", "unchecked-1.db", 170),
			    s1 = sealed(c, "s1", "sealed-1.db", 180), got;
	struct drgw_version a4 = { .vid = "a4", .name = (char *)"app-20260104.db",
				   .size = 1000, .mtime_ns = 345, .mode = 0644,
				   .created_ns = 350 };
	uint64_t counts[DRGW_SQLCHECK_VERDICTS];
	struct series_seen seen = { "" };

	checked(c, &a1, DRGW_SQLCHECK_OK, "");
	checked(c, &a2, DRGW_SQLCHECK_CORRUPT, "Page 5: never used");
	checked(c, &a3, DRGW_SQLCHECK_TRUNCATED, "short");
	checked(c, &b1, DRGW_SQLCHECK_OK, "");
	/* A series whose newest file is no database at all. */
	checked(c, &e1, DRGW_SQLCHECK_OK, "");
	checked(c, &e2, DRGW_SQLCHECK_NOT_SQLITE, "");
	checked(c, &t1, DRGW_SQLCHECK_NOT_SQLITE, "");
	encode(c, &u1);
	(void)s1; /* sealed only: no verdict yet */
	/* Its pages are fine, but its writer saw an error: not good. */
	a4.problem = (char *)"incomplete: writing it failed";
	CHECK_OK(drgw_catalog_add_version(c, &a4));
	checked(c, &a4, DRGW_SQLCHECK_OK, "");

	CHECK(drgw_catalog_version_good(c, "a1"));
	CHECK(!drgw_catalog_version_good(c, "a2"));
	CHECK(!drgw_catalog_version_good(c, "a4"));
	CHECK(!drgw_catalog_version_good(c, "s1"));
	CHECK(!drgw_catalog_version_good(c, "unknown"));

	CHECK_OK(drgw_catalog_get_version(c, "a2", &got));
	CHECK_INT(got.check.verdict, ==, DRGW_SQLCHECK_CORRUPT);
	CHECK_INT(got.check.level, ==, DRGW_SQLCHECK_QUICK);
	CHECK_STR(got.check.message, "Page 5: never used");
	drgw_version_release(&got);

	CHECK_OK(drgw_catalog_check_counts(c, counts));
	CHECK_INT(counts[DRGW_SQLCHECK_OK], ==, 4);
	CHECK_INT(counts[DRGW_SQLCHECK_CORRUPT], ==, 1);
	CHECK_INT(counts[DRGW_SQLCHECK_TRUNCATED], ==, 1);
	CHECK_INT(counts[DRGW_SQLCHECK_NOT_SQLITE], ==, 2);
	CHECK_INT(counts[DRGW_SQLCHECK_NOT_CHECKED], ==, 1);

	CHECK_INT(drgw_catalog_count_failed_checks(c, 0), ==, 2);
	CHECK_INT(drgw_catalog_count_failed_checks(c, 250), ==, 1);
	CHECK_INT(drgw_catalog_count_failed_checks(c, 301), ==, 0);

	/* notes-*.txt and unchecked-*.db have no SQLite verdict: no series. */
	CHECK_OK(drgw_catalog_each_series(c, on_series, &seen));
	CHECK_STR(seen.text, "app-*.db:a4=ok,a1;db/b-*.db:b1=ok,b1;"
			     "empty-*.db:e2=not_sqlite,e1;");
	done(c);
}
