/* SPDX-License-Identifier: MIT */
/*
 * The SQLite checks on real files written by the SQLite library: a healthy
 * database at every level; each header problem (truncated, torn, page size,
 * zero pages, versions) with its own verdict; a b-tree page overwritten so
 * that quick_check reports it; a hot journal and a -wal with commits
 * beside a database; a check stopped by its timeout; not-SQLite files.
 */
#define TEST_MAIN
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sqlcheck.h"

static char dir[64];
static int dir_fd = -1;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/drgw-test-sqlcheck-XXXXXX");
	CHECK(mkdtemp(dir));
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dir_fd >= 0);
}

static void teardown(void)
{
	char cmd[160];

	close(dir_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_OK(system(cmd));
}

static void path_of(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

/* Runs sql on database name (created if needed); returns the connection
 * if keep, else closes it. */
static sqlite3 *sql(const char *name, const char *text, bool keep)
{
	char path[128], *msg = NULL;
	sqlite3 *db;

	path_of(name, path, sizeof(path));
	CHECK_INT(sqlite3_open(path, &db), ==, SQLITE_OK);
	if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK)
		FAIL("%s: %s", text, msg);
	if (keep)
		return db;
	CHECK_INT(sqlite3_close(db), ==, SQLITE_OK);
	return NULL;
}

static void make_db(const char *name, int rows)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "PRAGMA page_size=1024; PRAGMA synchronous=OFF;"
		 "PRAGMA journal_mode=OFF; BEGIN;"
		 "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT);"
		 "CREATE INDEX tx ON t(x);"
		 "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
		 "FROM s WHERE i < %d) "
		 "INSERT INTO t(x) SELECT hex(randomblob(100)) FROM s; COMMIT;",
		 rows);
	sql(name, text, false);
}

static void patch(const char *name, off_t off, const void *data, size_t len)
{
	char path[128];
	int fd;

	path_of(name, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_INT(pwrite(fd, data, len, off), ==, len);
	close(fd);
}

static void resize(const char *name, off_t size)
{
	char path[128];

	path_of(name, path, sizeof(path));
	CHECK_OK(truncate(path, size));
}

static void copy(const char *from, const char *to)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "cp %s/%s %s/%s", dir, from, dir, to);
	CHECK_OK(system(cmd));
}

static struct drgw_sqlcheck_result check(const char *name,
					 enum drgw_sqlcheck_level level,
					 bool siblings)
{
	struct drgw_sqlcheck_result r;
	char path[128];
	int fd;

	path_of(name, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	drgw_sqlcheck_file(fd, siblings ? dir_fd : -1, name, level,
			   60 * NSEC_PER_SEC, &r);
	close(fd);
	return r;
}

#define CHECK_VERDICT(r, v)                                                \
	do {                                                               \
		if ((r).verdict != (v))                                    \
			FAIL("verdict %s (%s), expected %s",               \
			     drgw_sqlcheck_verdict_name((r).verdict),      \
			     (r).message, drgw_sqlcheck_verdict_name(v)); \
	} while (0)

TEST(healthy_database_every_level)
{
	struct drgw_sqlcheck_result r;
	char text[300];

	setup();
	make_db("ok.db", 2000);
	r = check("ok.db", DRGW_SQLCHECK_HEADER, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_OK);
	CHECK_INT(r.level, ==, DRGW_SQLCHECK_HEADER);
	r = check("ok.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_OK);
	CHECK_INT(r.level, ==, DRGW_SQLCHECK_QUICK);
	CHECK_STR(r.message, "");
	r = check("ok.db", DRGW_SQLCHECK_FULL, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_OK);
	CHECK_INT(r.level, ==, DRGW_SQLCHECK_FULL);
	drgw_sqlcheck_describe(&r, text, sizeof(text));
	CHECK_STR(text, "ok");
	r = check("ok.db", DRGW_SQLCHECK_OFF, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_NOT_CHECKED);
	drgw_sqlcheck_describe(&r, text, sizeof(text));
	CHECK_STR(text, "not checked");
	teardown();
}

TEST(not_sqlite)
{
	struct drgw_sqlcheck_result r;
	int fd;

	setup();
	fd = openat(dir_fd, "text.db", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, "hello, world\n", 13), ==, 13);
	close(fd);
	r = check("text.db", DRGW_SQLCHECK_FULL, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_NOT_SQLITE);
	/* An empty file is no database either (SQLite would make it one). */
	fd = openat(dir_fd, "empty.db", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	close(fd);
	r = check("empty.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_NOT_SQLITE);
	CHECK(!drgw_sqlcheck_failed(r.verdict));
	teardown();
}

TEST(truncated)
{
	struct drgw_sqlcheck_result r;

	setup();
	make_db("a.db", 500);
	copy("a.db", "short.db");
	resize("short.db", 10 * 1024); /* whole pages, fewer than the header's */
	r = check("short.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_TRUNCATED);
	CHECK_CONTAINS(r.message, "but the file has 10240 bytes");
	CHECK(drgw_sqlcheck_failed(r.verdict));
	copy("a.db", "mid.db");
	resize("mid.db", 10 * 1024 + 100);
	r = check("mid.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_TRUNCATED);
	CHECK_CONTAINS(r.message, "it ends inside page 11");
	copy("a.db", "head.db");
	resize("head.db", 60);
	r = check("head.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_TRUNCATED);
	CHECK_CONTAINS(r.message, "inside the 100-byte SQLite header");
	copy("a.db", "magic.db");
	resize("magic.db", 9);
	r = check("magic.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_TRUNCATED);
	teardown();
}

TEST(torn_longer_than_header)
{
	struct drgw_sqlcheck_result r;
	struct stat st;

	setup();
	make_db("a.db", 500);
	CHECK_OK(fstatat(dir_fd, "a.db", &st, 0));
	resize("a.db", st.st_size + 2048);
	r = check("a.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_TORN);
	CHECK_CONTAINS(r.message, "2 more than its header says");
	teardown();
}

TEST(bad_headers)
{
	static const uint8_t ps_1000[2] = { 0x03, 0xe8 }, ps_256[2] = { 1, 0 },
			     zero[4] = { 0 }, v3[2] = { 3, 1 }, frac[1] = { 65 };
	struct drgw_sqlcheck_result r;

	setup();
	make_db("a.db", 100);
	copy("a.db", "ps.db");
	patch("ps.db", 16, ps_1000, 2);
	r = check("ps.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_BAD_HEADER);
	CHECK_CONTAINS(r.message, "page size 1000 is not a power of two");
	copy("a.db", "ps256.db");
	patch("ps256.db", 16, ps_256, 2);
	r = check("ps256.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_BAD_HEADER);
	copy("a.db", "zero.db");
	patch("zero.db", 28, zero, 4);
	r = check("zero.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_BAD_HEADER);
	CHECK_CONTAINS(r.message, "0 pages");
	copy("a.db", "v3.db");
	patch("v3.db", 18, v3, 2);
	r = check("v3.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_BAD_HEADER);
	CHECK_CONTAINS(r.message, "versions 3/1");
	copy("a.db", "frac.db");
	patch("frac.db", 21, frac, 1);
	r = check("frac.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_BAD_HEADER);
	teardown();
}

TEST(btree_page_overwritten)
{
	static const uint8_t ff[32] = { [0 ... 31] = 0xff };
	struct drgw_sqlcheck_result r;
	char text[400];

	setup();
	make_db("a.db", 500);
	/* The cell pointers of page 5: offsets past the page end. */
	patch("a.db", 4 * 1024 + 8, ff, sizeof(ff));
	/* The header alone cannot see it. */
	r = check("a.db", DRGW_SQLCHECK_HEADER, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_OK);
	r = check("a.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_CORRUPT);
	CHECK_INT(r.level, ==, DRGW_SQLCHECK_QUICK);
	CHECK_CONTAINS(r.message, "page 5");
	CHECK(!strstr(r.message, "***"));
	drgw_sqlcheck_describe(&r, text, sizeof(text));
	CHECK(!strncmp(text, "corrupt: ", 9));
	r = check("a.db", DRGW_SQLCHECK_FULL, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_CORRUPT);
	teardown();
}

/* SQLite's own first problem of a file, read by its unix VFS. */
static void sqlite_says(const char *name, char *buf, size_t size)
{
	char path[128];
	sqlite3_stmt *st;
	sqlite3 *db;

	path_of(name, path, sizeof(path));
	CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), ==,
		  SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st,
				     NULL), ==, SQLITE_OK);
	CHECK_INT(sqlite3_step(st), ==, SQLITE_ROW);
	snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* A file of thousands of pages in b-tree order (the index built after
 * the rows, as by VACUUM), read in windows of up to 256 KiB as the check
 * walks it backwards: healthy, it is ok at every level; with a page deep
 * inside damaged, the check names the problem SQLite itself finds there
 * (a window off by a page would not). */
TEST(large_database_read_in_windows)
{
	static const uint8_t junk[16] = { [0 ... 15] = 0x7f };
	struct drgw_sqlcheck_result r;
	char want[256];

	setup();
	sql("big.db",
	    "PRAGMA page_size=1024; PRAGMA journal_mode=OFF; BEGIN;"
	    "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT);"
	    "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
	    "FROM s WHERE i < 40000) "
	    "INSERT INTO t(x) SELECT hex(randomblob(100)) FROM s;"
	    "CREATE INDEX tx ON t(x); COMMIT;", false);
	r = check("big.db", DRGW_SQLCHECK_QUICK, false);
	CHECK_VERDICT(r, DRGW_SQLCHECK_OK);
	r = check("big.db", DRGW_SQLCHECK_FULL, false);
	CHECK_VERDICT(r, DRGW_SQLCHECK_OK);
	/* Cell pointers of a table leaf in the middle of the file. */
	patch("big.db", 3000 * 1024 + 8, junk, sizeof(junk));
	sqlite_says("big.db", want, sizeof(want));
	CHECK(strcmp(want, "ok"));
	r = check("big.db", DRGW_SQLCHECK_QUICK, false);
	CHECK_VERDICT(r, DRGW_SQLCHECK_CORRUPT);
	CHECK_CONTAINS(want, r.message);
	teardown();
}

TEST(schema_page_overwritten)
{
	static const uint8_t junk[64] = { [0 ... 63] = 0x5a };
	struct drgw_sqlcheck_result r;

	setup();
	make_db("a.db", 100);
	/* The schema table's cells at the end of page 1. */
	patch("a.db", 1024 - 64, junk, sizeof(junk));
	r = check("a.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_CORRUPT);
	CHECK(r.message[0]);
	teardown();
}

TEST(hot_journal_beside)
{
	struct drgw_sqlcheck_result r;
	sqlite3 *db;
	char text[300];

	setup();
	make_db("a.db", 2000);
	/* A transaction bigger than the page cache spills into the file and
	 * leaves the journal hot while it is open: copy both now. */
	db = sql("a.db", "PRAGMA synchronous=OFF; PRAGMA cache_size=10; BEGIN; UPDATE t SET x = x || 'y';",
		 true);
	copy("a.db", "b.db");
	copy("a.db-journal", "b.db-journal");
	CHECK_INT(sqlite3_close(db), ==, SQLITE_OK);
	r = check("b.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_HOT_JOURNAL);
	CHECK_CONTAINS(r.message, "b.db-journal");
	drgw_sqlcheck_describe(&r, text, sizeof(text));
	CHECK(!strncmp(text, "hot journal: ", 13));
	/* A removed file has no siblings to look at. */
	r = check("b.db", DRGW_SQLCHECK_HEADER, false);
	CHECK(r.verdict != DRGW_SQLCHECK_HOT_JOURNAL);
	teardown();
}

TEST(wal_with_commits_beside)
{
	struct drgw_sqlcheck_result r;
	struct drgw_sqlite_wal wal;
	uint8_t head[32];
	sqlite3 *db;
	int fd;

	setup();
	sql("a.db", "PRAGMA page_size=1024; PRAGMA journal_mode=WAL;"
		    "CREATE TABLE t(x); INSERT INTO t VALUES(1);", false);
	/* Commits that stay in the -wal while the writer keeps it open. */
	db = sql("a.db", "PRAGMA wal_autocheckpoint=0;"
			 "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
			 "FROM s WHERE i < 50) "
			 "INSERT INTO t SELECT randomblob(300) FROM s;",
		 true);
	copy("a.db", "b.db");
	copy("a.db-wal", "b.db-wal");
	fd = openat(dir_fd, "b.db-wal", O_RDONLY | O_CLOEXEC);
	CHECK_INT(pread(fd, head, sizeof(head), 0), ==, 32);
	close(fd);
	CHECK_OK(drgw_sqlcheck_wal_header(head, sizeof(head), &wal));
	CHECK_INT(wal.page_size, ==, 1024);
	head[27] ^= 1;
	CHECK_INT(drgw_sqlcheck_wal_header(head, sizeof(head), &wal), ==, -EINVAL);
	r = check("b.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_WAL);
	CHECK_CONTAINS(r.message, "b.db-wal beside it holds");
	/* The same database without its -wal: nothing in the file says so. */
	r = check("b.db", DRGW_SQLCHECK_QUICK, false);
	CHECK_VERDICT(r, DRGW_SQLCHECK_OK);
	/* After a checkpoint that resets the WAL, its frames are stale. */
	CHECK_INT(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
		  ==, SQLITE_OK);
	CHECK_INT(sqlite3_close(db), ==, SQLITE_OK);
	copy("a.db", "c.db");
	r = check("c.db", DRGW_SQLCHECK_QUICK, true);
	CHECK_VERDICT(r, DRGW_SQLCHECK_OK);
	teardown();
}

TEST(journal_and_wal_frames)
{
	static const uint8_t magic[8] = { 0xd9, 0xd5, 0x05, 0xf9,
					  0x20, 0xa1, 0x63, 0xd7 };
	struct drgw_sqlite_wal wal = { .page_size = 4096, .salt = { 7, 9 } };
	uint8_t frame[24] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9 };

	CHECK(drgw_sqlcheck_journal_hot(magic, 8));
	CHECK(!drgw_sqlcheck_journal_hot(magic, 7));
	CHECK(!drgw_sqlcheck_journal_hot((const uint8_t *)"\0\0\0\0\0\0\0\0", 8));
	CHECK_INT(drgw_sqlcheck_wal_frame(&wal, frame, 24), ==, 0);
	frame[7] = 3; /* a commit: the database has 3 pages after it */
	CHECK_INT(drgw_sqlcheck_wal_frame(&wal, frame, 24), ==, 1);
	frame[15] = 8;
	CHECK_INT(drgw_sqlcheck_wal_frame(&wal, frame, 24), ==, -1);
	CHECK_INT(drgw_sqlcheck_wal_frame(&wal, frame, 23), ==, -1);
}

TEST(timeout_stops_the_check)
{
	struct drgw_sqlcheck_result r;
	struct drgw_sqlcheck *c;
	char path[128], text[400];
	atomic_bool stopping = true;
	int fd;

	setup();
	make_db("big.db", 10000);
	path_of("big.db", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	/* integrity_check of 3 MB takes far longer than no time at all. */
	c = drgw_sqlcheck_start(fd, dir_fd, "big.db", DRGW_SQLCHECK_FULL, 0, NULL);
	CHECK(c);
	CHECK_OK(drgw_sqlcheck_finish(c, true, "v1", &r));
	CHECK_VERDICT(r, DRGW_SQLCHECK_OK);
	CHECK_INT(r.level, ==, DRGW_SQLCHECK_HEADER);
	CHECK_CONTAINS(r.message, "integrity_check did not finish within");
	drgw_sqlcheck_describe(&r, text, sizeof(text));
	CHECK(!strncmp(text, "ok (header; integrity_check did not finish", 42));
	/* An abandoned check ends at once and gives nothing. */
	c = drgw_sqlcheck_start(fd, dir_fd, "big.db", DRGW_SQLCHECK_FULL,
				60 * NSEC_PER_SEC, NULL);
	CHECK_INT(drgw_sqlcheck_finish(c, false, "v1", &r), ==, -ENOENT);
	CHECK(!drgw_sqlcheck_start(fd, dir_fd, "big.db", DRGW_SQLCHECK_OFF, 0, NULL));
	/* A stopping daemon stops the check; the header's verdict stands. */
	c = drgw_sqlcheck_start(fd, dir_fd, "big.db", DRGW_SQLCHECK_FULL,
				60 * NSEC_PER_SEC, &stopping);
	CHECK_OK(drgw_sqlcheck_finish(c, true, "v1", &r));
	CHECK_VERDICT(r, DRGW_SQLCHECK_OK);
	CHECK_INT(r.level, ==, DRGW_SQLCHECK_HEADER);
	CHECK_CONTAINS(r.message, "integrity_check did not finish: drgw was stopping");
	close(fd);
	teardown();
}

TEST(names_and_levels)
{
	enum drgw_sqlcheck_level l;

	CHECK_OK(drgw_sqlcheck_parse_level("quick", &l));
	CHECK_INT(l, ==, DRGW_SQLCHECK_QUICK);
	CHECK_OK(drgw_sqlcheck_parse_level("off", &l));
	CHECK_INT(l, ==, DRGW_SQLCHECK_OFF);
	CHECK_INT(drgw_sqlcheck_parse_level("fast", &l), ==, -EINVAL);
	CHECK_STR(drgw_sqlcheck_verdict_name(DRGW_SQLCHECK_HOT_JOURNAL),
		  "hot_journal");
	CHECK_STR(drgw_sqlcheck_verdict_name(200), "?");
	/* A verdict a newer drgw wrote counts as failed. */
	CHECK(drgw_sqlcheck_failed(200));
	CHECK(!drgw_sqlcheck_failed(DRGW_SQLCHECK_OK));
	CHECK(!drgw_sqlcheck_failed(DRGW_SQLCHECK_NOT_CHECKED));
}
