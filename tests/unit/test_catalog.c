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
	char path[128], cmd[512];

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
