/* SPDX-License-Identifier: MIT */
/*
 * SQLite-aware checks of sealed files: will a snapshot that looks like an
 * SQLite database restore into a working one?  Asked at ingest, from the
 * working-set copy, while the encoder reads the same bytes.
 *
 * Two layers.  The header layer is pure (bytes in, verdict out) and
 * fuzzed: the 100-byte database header against the file size, and the
 * -journal or -wal file that lies beside the database in the working set.
 * The SQLite layer runs PRAGMA quick_check or integrity_check on the
 * version's own file descriptor through a read-only VFS (immutable=1: no
 * locks, no journal, no -wal), in a thread of its own that runs at idle
 * CPU and I/O priority while the encoder works, bounded in time.
 *
 * A verdict is a small enum, the depth reached and the first message, so
 * that it fits a catalog row and an object footer alike.  Enum values are
 * stored: never renumber them, only append.
 */
#ifndef DRGW_SQLCHECK_H
#define DRGW_SQLCHECK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum drgw_sqlcheck_verdict {
	/* No check ran: check-sqlite = off, or sealed before drgw checked. */
	DRGW_SQLCHECK_NOT_CHECKED = 0,
	/* Not an SQLite database (by its header): nothing to check. */
	DRGW_SQLCHECK_NOT_SQLITE = 1,
	/* Every check that ran (see level) passed. */
	DRGW_SQLCHECK_OK = 2,
	/* The failed verdicts, from here on.  quick_check/integrity_check
	 * reported a problem, or SQLite refused the file as malformed. */
	DRGW_SQLCHECK_CORRUPT = 3,
	/* Shorter than its header says, or ends inside a page. */
	DRGW_SQLCHECK_TRUNCATED = 4,
	/* Longer than its header says: copied while it was being written. */
	DRGW_SQLCHECK_TORN = 5,
	/* A header field no SQLite writes (page size, versions, ...). */
	DRGW_SQLCHECK_BAD_HEADER = 6,
	/* A hot rollback journal beside it: copied mid-transaction. */
	DRGW_SQLCHECK_HOT_JOURNAL = 7,
	/* A WAL-mode database whose -wal beside it holds committed frames,
	 * which drgw does not back up. */
	DRGW_SQLCHECK_WAL = 8,
};
#define DRGW_SQLCHECK_VERDICTS 9

/* How deep to check (check-sqlite), and how deep a verdict got. */
enum drgw_sqlcheck_level {
	DRGW_SQLCHECK_OFF = 0,
	DRGW_SQLCHECK_HEADER = 1,
	DRGW_SQLCHECK_QUICK = 2, /* PRAGMA quick_check */
	DRGW_SQLCHECK_FULL = 3,	 /* PRAGMA integrity_check */
};

struct drgw_sqlcheck_result {
	uint8_t verdict; /* enum drgw_sqlcheck_verdict */
	uint8_t level;	 /* enum drgw_sqlcheck_level: deepest check completed */
	/* The first problem found, or a note on another verdict (a deeper
	 * check that could not finish); "" when there is nothing to say. */
	char message[256];
};

/* Stable identifiers ("ok", "not_checked", "hot_journal", ...) for JSON
 * and metric labels; "?" for values this drgw does not know. */
const char *drgw_sqlcheck_verdict_name(unsigned verdict);
/* "off", "header", "quick", "full". */
const char *drgw_sqlcheck_level_name(unsigned level);
/* Parses a level name.  0 or -EINVAL. */
int drgw_sqlcheck_parse_level(const char *s, enum drgw_sqlcheck_level *ret);
/* True for the verdicts that say the snapshot may not restore (values
 * from a newer drgw included). */
bool drgw_sqlcheck_failed(unsigned verdict);
/* What `drgw ls` shows: "ok", "not checked", "corrupt: <message>", ... */
void drgw_sqlcheck_describe(const struct drgw_sqlcheck_result *r, char *buf,
			    size_t size);

/* --- the header layer (pure) --- */

struct drgw_sqlite_header {
	uint32_t page_size;
	uint32_t page_count;
	bool wal; /* the file format versions say WAL mode */
};

/*
 * Judges a file's first min(file_size, 100) bytes (head, len) against its
 * size: NOT_SQLITE, OK, TRUNCATED, TORN or BAD_HEADER in *ret (level
 * HEADER), the message naming the field and what to do.  *ret_hdr is
 * filled unless the verdict is NOT_SQLITE or BAD_HEADER.
 */
void drgw_sqlcheck_header(const uint8_t *head, size_t len, uint64_t file_size,
			  struct drgw_sqlite_header *ret_hdr,
			  struct drgw_sqlcheck_result *ret);

/* Does a rollback journal that starts with these bytes make its database
 * hot?  (A committed journal is deleted, truncated or zeroed.) */
bool drgw_sqlcheck_journal_hot(const uint8_t *head, size_t len);

struct drgw_sqlite_wal {
	uint32_t page_size;
	uint32_t salt[2];
};
/* Parses the 32-byte header of a -wal file, checksum included.  0, or
 * -EINVAL if it is not one. */
int drgw_sqlcheck_wal_header(const uint8_t *head, size_t len,
			     struct drgw_sqlite_wal *ret);
/* A 24-byte frame header: 1 for a commit frame of the WAL's current
 * generation (its salts match), 0 for another frame of it, -1 for a frame
 * left from before the last reset (or garbage). */
int drgw_sqlcheck_wal_frame(const struct drgw_sqlite_wal *wal,
			    const uint8_t *frame, size_t len);

/* --- running a check --- */

struct drgw_sqlcheck;

/*
 * Starts checking the file open at fd (duplicated; name is copied) in a
 * thread of its own at idle CPU and I/O priority, so that it takes only
 * what the encoder leaves: the header layer, the file's -journal or -wal
 * (name is its path below dir_fd; dir_fd < 0 skips that, for a file that
 * was removed), then quick_check or integrity_check for levels QUICK and
 * FULL.  The SQLite check stops timeout_ns after the start, or once
 * *stop (may be NULL) is set while it is waited for; the verdict is then
 * the header's, with a note.  NULL for level OFF.  If no thread can be
 * started, the header layer runs here and now.
 */
struct drgw_sqlcheck *drgw_sqlcheck_start(int fd, int dir_fd, const char *name,
					  enum drgw_sqlcheck_level level,
					  int64_t timeout_ns,
					  const atomic_bool *stop);
/*
 * Waits for the check (at normal priority from now on: the caller waits
 * for it and does nothing else), at most until its timeout, and frees it.
 * With keep false (the version is abandoned) the check is stopped instead.
 * Logs a kept verdict once, naming the version vid.  0 with *ret filled,
 * or -ENOENT for a NULL check or keep false (*ret untouched).
 */
int drgw_sqlcheck_finish(struct drgw_sqlcheck *c, bool keep, const char *vid,
			 struct drgw_sqlcheck_result *ret);

/* start + finish, without logging: for tests and fuzzing. */
void drgw_sqlcheck_file(int fd, int dir_fd, const char *name,
			enum drgw_sqlcheck_level level, int64_t timeout_ns,
			struct drgw_sqlcheck_result *ret);

#endif
