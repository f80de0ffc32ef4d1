/* SPDX-License-Identifier: MIT */
/*
 * SQLite-aware checks; see sqlcheck.h.  The field offsets and rules come
 * from SQLite's file format document (https://sqlite.org/fileformat.html):
 * the database header (section 1.3), the rollback journal (4.1) and the
 * WAL (4.3).
 *
 * The SQLite layer reads the version through a VFS of its own, "drgw-fd",
 * which serves exactly one thing: the file descriptor the check was given.
 * SQLite's unix VFS would open the file again by name, and the name may
 * meanwhile lead to another file (a rename) or to none (an unlink: the
 * encoder then reads a held copy).  The VFS refuses every other file, so
 * no journal, -wal or temporary file is ever opened, and it never writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sqlcheck.h"
#include "testhook.h"

static const char *const verdict_names[] = {
	[DRGW_SQLCHECK_NOT_CHECKED] = "not_checked",
	[DRGW_SQLCHECK_NOT_SQLITE] = "not_sqlite",
	[DRGW_SQLCHECK_OK] = "ok",
	[DRGW_SQLCHECK_CORRUPT] = "corrupt",
	[DRGW_SQLCHECK_TRUNCATED] = "truncated",
	[DRGW_SQLCHECK_TORN] = "torn",
	[DRGW_SQLCHECK_BAD_HEADER] = "bad_header",
	[DRGW_SQLCHECK_HOT_JOURNAL] = "hot_journal",
	[DRGW_SQLCHECK_WAL] = "wal",
};

static const char *const level_names[] = { "off", "header", "quick", "full" };

/* The SQL of each level that runs SQLite; (1): stop at the first problem. */
static const char *const level_sql[] = {
	[DRGW_SQLCHECK_QUICK] = "PRAGMA quick_check(1)",
	[DRGW_SQLCHECK_FULL] = "PRAGMA integrity_check(1)",
};
static const char *const level_pragma[] = {
	[DRGW_SQLCHECK_QUICK] = "quick_check",
	[DRGW_SQLCHECK_FULL] = "integrity_check",
};

const char *drgw_sqlcheck_verdict_name(unsigned verdict)
{
	return verdict < ARRAY_SIZE(verdict_names) ? verdict_names[verdict] :
						     "?";
}

const char *drgw_sqlcheck_level_name(unsigned level)
{
	return level < ARRAY_SIZE(level_names) ? level_names[level] : "?";
}

int drgw_sqlcheck_parse_level(const char *s, enum drgw_sqlcheck_level *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (!strcmp(s, level_names[i])) {
			*ret = (enum drgw_sqlcheck_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool drgw_sqlcheck_failed(unsigned verdict)
{
	return verdict >= DRGW_SQLCHECK_CORRUPT;
}

void drgw_sqlcheck_describe(const struct drgw_sqlcheck_result *r, char *buf,
			    size_t size)
{
	char word[32];
	size_t i;

	drgw_strlcpy(word, drgw_sqlcheck_verdict_name(r->verdict), sizeof(word));
	for (i = 0; word[i]; i++)
		if (word[i] == '_')
			word[i] = ' ';
	if (r->verdict == DRGW_SQLCHECK_OK && r->level == DRGW_SQLCHECK_HEADER)
		snprintf(buf, size, "ok (header%s%s)",
			 r->message[0] ? "; " : "", r->message);
	else if (r->message[0])
		snprintf(buf, size, "%s: %s", word, r->message);
	else
		snprintf(buf, size, "%s", word);
}

/* --- the header layer --- */

static uint32_t be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void verdict(struct drgw_sqlcheck_result *r, enum drgw_sqlcheck_verdict v,
		    const char *fmt, ...) DRGW_PRINTF(3, 4);
static void verdict(struct drgw_sqlcheck_result *r, enum drgw_sqlcheck_verdict v,
		    const char *fmt, ...)
{
	va_list ap;

	r->verdict = (uint8_t)v;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
}

#define HEADER_SIZE 100
static const char sqlite_magic[16] = "SQLite format 3";

void drgw_sqlcheck_header(const uint8_t *head, size_t len, uint64_t file_size,
			  struct drgw_sqlite_header *ret_hdr,
			  struct drgw_sqlcheck_result *ret)
{
	unsigned long long size = file_size, pages, count;
	uint32_t ps, free_trunk, free_count;

	memset(ret, 0, sizeof(*ret));
	ret->level = DRGW_SQLCHECK_HEADER;
	if (len > file_size)
		len = (size_t)file_size;
	if (len < sizeof(sqlite_magic) || memcmp(head, sqlite_magic, sizeof(sqlite_magic))) {
		/* A whole file that is the start of the magic was cut short
		 * inside it; anything else is simply not a database. */
		if (len == file_size && len >= 8 && len < sizeof(sqlite_magic) &&
		    !memcmp(head, sqlite_magic, len))
			verdict(ret, DRGW_SQLCHECK_TRUNCATED,
				"the file is %llu bytes: it ends inside the SQLite header",
				size);
		else
			ret->verdict = DRGW_SQLCHECK_NOT_SQLITE;
		return;
	}
	if (len < HEADER_SIZE) {
		verdict(ret, DRGW_SQLCHECK_TRUNCATED,
			"the file is %llu bytes: it ends inside the 100-byte SQLite header",
			size);
		return;
	}
	ps = be16(head + 16);
	if (ps == 1)
		ps = 65536;
	if (ps < 512 || ps > 65536 || (ps & (ps - 1))) {
		verdict(ret, DRGW_SQLCHECK_BAD_HEADER,
			"page size %u is not a power of two from 512 to 65536",
			be16(head + 16));
		return;
	}
	if (head[18] < 1 || head[18] > 2 || head[19] < 1 || head[19] > 2) {
		verdict(ret, DRGW_SQLCHECK_BAD_HEADER,
			"file format versions %u/%u are neither 1 (rollback journal) nor 2 (WAL)",
			head[18], head[19]);
		return;
	}
	if (ps - head[20] < 480) {
		verdict(ret, DRGW_SQLCHECK_BAD_HEADER,
			"%u reserved bytes leave less than 480 usable bytes in a %u-byte page",
			head[20], ps);
		return;
	}
	if (head[21] != 64 || head[22] != 32 || head[23] != 32) {
		verdict(ret, DRGW_SQLCHECK_BAD_HEADER,
			"payload fractions %u/%u/%u are not 64/32/32", head[21],
			head[22], head[23]);
		return;
	}
	if (be32(head + 44) > 4 || be32(head + 56) > 3) {
		verdict(ret, DRGW_SQLCHECK_BAD_HEADER,
			"schema format %u or text encoding %u is out of range",
			be32(head + 44), be32(head + 56));
		return;
	}
	ret_hdr->page_size = ps;
	ret_hdr->wal = head[18] == 2 || head[19] == 2;
	pages = size / ps;
	ret_hdr->page_count = pages > UINT32_MAX ? UINT32_MAX : (uint32_t)pages;
	if (size % ps) {
		verdict(ret, DRGW_SQLCHECK_TRUNCATED,
			"the file is %llu bytes, not a whole number of %u-byte pages: it ends inside page %llu",
			size, ps, pages + 1);
		return;
	}
	/* The header's page count is valid only where the change counter
	 * matches version-valid-for (SQLite before 3.7.0 wrote neither);
	 * otherwise SQLite goes by the file size, and so do we. */
	count = be32(head + 28);
	if (be32(head + 24) == be32(head + 92)) {
		if (count == 0) {
			verdict(ret, DRGW_SQLCHECK_BAD_HEADER,
				"the header says the database has 0 pages, the file has %llu",
				pages);
			return;
		}
		if (pages < count) {
			verdict(ret, DRGW_SQLCHECK_TRUNCATED,
				"the header says %llu pages (%llu bytes) but the file has %llu bytes",
				count, count * ps, size);
			return;
		}
		if (pages > count) {
			verdict(ret, DRGW_SQLCHECK_TORN,
				"the file has %llu pages, %llu more than its header says: it was copied while it was written (a live database copied with cp?); back it up with sqlite3 .backup",
				pages, pages - count);
			return;
		}
	} else {
		count = pages;
	}
	ret_hdr->page_count = (uint32_t)count;
	free_trunk = be32(head + 32);
	free_count = be32(head + 36);
	if (free_trunk > count || free_count >= count ||
	    (free_count && !free_trunk)) {
		verdict(ret, DRGW_SQLCHECK_BAD_HEADER,
			"freelist (first trunk page %u, %u pages) does not fit a database of %llu pages",
			free_trunk, free_count, count);
		return;
	}
	ret->verdict = DRGW_SQLCHECK_OK;
}

static const uint8_t journal_magic[8] = { 0xd9, 0xd5, 0x05, 0xf9,
					  0x20, 0xa1, 0x63, 0xd7 };

bool drgw_sqlcheck_journal_hot(const uint8_t *head, size_t len)
{
	return len >= sizeof(journal_magic) &&
	       !memcmp(head, journal_magic, sizeof(journal_magic));
}

#define WAL_HEADER_SIZE 32
#define WAL_FRAME_HEADER_SIZE 24

/* The WAL checksum over n bytes (a multiple of 8), in the byte order the
 * magic number chose. */
static void wal_checksum(const uint8_t *p, size_t n, bool big, uint32_t s[2])
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint32_t x0, x1;

		if (big) {
			x0 = be32(p + i);
			x1 = be32(p + i + 4);
		} else {
			x0 = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
			     (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
			x1 = (uint32_t)p[i + 4] | (uint32_t)p[i + 5] << 8 |
			     (uint32_t)p[i + 6] << 16 | (uint32_t)p[i + 7] << 24;
		}
		s[0] += x0 + s[1];
		s[1] += x1 + s[0];
	}
}

int drgw_sqlcheck_wal_header(const uint8_t *head, size_t len,
			     struct drgw_sqlite_wal *ret)
{
	uint32_t magic, ps, sum[2] = { 0, 0 };

	if (len < WAL_HEADER_SIZE)
		return -EINVAL;
	magic = be32(head);
	if ((magic & ~1u) != 0x377f0682 || be32(head + 4) != 3007000)
		return -EINVAL;
	ps = be32(head + 8);
	if (ps == 1)
		ps = 65536;
	if (ps < 512 || ps > 65536 || (ps & (ps - 1)))
		return -EINVAL;
	wal_checksum(head, 24, magic & 1, sum);
	if (sum[0] != be32(head + 24) || sum[1] != be32(head + 28))
		return -EINVAL;
	ret->page_size = ps;
	ret->salt[0] = be32(head + 16);
	ret->salt[1] = be32(head + 20);
	return 0;
}

int drgw_sqlcheck_wal_frame(const struct drgw_sqlite_wal *wal,
			    const uint8_t *frame, size_t len)
{
	if (len < WAL_FRAME_HEADER_SIZE || be32(frame) == 0 ||
	    be32(frame + 8) != wal->salt[0] || be32(frame + 12) != wal->salt[1])
		return -1;
	return be32(frame + 4) != 0;
}

/* --- the drgw-fd VFS --- */

/* quick_check walks b-trees, whose pages mostly lie near each other (a
 * fresh .backup keeps them in the order they were written), visiting a
 * page's children from the last to the first.  A read near the last one
 * (within RA_NEAR) fetches a window in the direction the reads go, which
 * doubles up to RA_MAX while they go on that way, so the pages next to it
 * cost no system call; a read far from the last goes straight to the
 * file.  One pread(2) per page costs as much as the check itself; an mmap
 * would cost less still, but turns a file truncated under the check into
 * a SIGBUS. */
#define RA_MAX ((uint64_t)256 * 1024)
#define RA_NEAR ((uint64_t)64 * 1024)

struct fd_file {
	sqlite3_file base;
	int fd;
	uint8_t *ra;		/* RA_MAX bytes, or NULL: no read-ahead */
	uint64_t ra_off;	/* the file's bytes in ra */
	size_t ra_len;
	uint64_t window;	/* what the next near read fetches */
	uint64_t last;		/* where the last read started */
};

static int fd_close(sqlite3_file *f)
{
	struct fd_file *ff = (struct fd_file *)f;

	close(ff->fd);
	free(ff->ra);
	return SQLITE_OK;
}

/* The buffered bytes at [off, off + amt), read into ra now if the read is
 * near the last one; NULL for a read to serve directly. */
static const uint8_t *fd_buffered(struct fd_file *ff, size_t amt,
				  uint64_t off)
{
	uint64_t start = off;
	ssize_t n;

	if (off >= ff->ra_off && off + amt <= ff->ra_off + ff->ra_len)
		return ff->ra + (off - ff->ra_off);
	if (!ff->ra || off + RA_NEAR < ff->last || off > ff->last + RA_NEAR) {
		ff->window = 0;
		return NULL;
	}
	ff->window = ff->window ? ff->window * 2 : 4 * (uint64_t)amt;
	if (ff->window > RA_MAX)
		ff->window = RA_MAX;
	if (amt > ff->window)
		return NULL;
	if (off < ff->last) /* backwards: the window ends with this read */
		start = off + amt > ff->window ? off + amt - ff->window : 0;
	n = drgw_pread_full(ff->fd, ff->ra, ff->window, start);
	ff->ra_len = 0;
	if (n < (ssize_t)(off - start + amt))
		return NULL; /* an error or the end: the direct read says */
	ff->ra_off = start;
	ff->ra_len = (size_t)n;
	return ff->ra + (off - start);
}

static int fd_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	struct fd_file *ff = (struct fd_file *)f;
	const uint8_t *b = fd_buffered(ff, (size_t)amt, (uint64_t)off);
	ssize_t n;

	if (b) {
		memcpy(buf, b, (size_t)amt);
		n = amt;
	} else {
		n = drgw_pread_full(ff->fd, buf, (size_t)amt, (uint64_t)off);
	}
	ff->last = (uint64_t)off;
	if (n < 0)
		return SQLITE_IOERR_READ;
	if (n < amt) {
		/* SQLite wants the rest zeroed on a short read. */
		memset((char *)buf + n, 0, (size_t)(amt - n));
		return SQLITE_IOERR_SHORT_READ;
	}
	return SQLITE_OK;
}

static int fd_write(sqlite3_file *f, const void *buf, int amt,
		    sqlite3_int64 off)
{
	return SQLITE_READONLY;
}

static int fd_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return SQLITE_READONLY;
}

static int fd_sync(sqlite3_file *f, int flags)
{
	return SQLITE_OK;
}

static int fd_size(sqlite3_file *f, sqlite3_int64 *ret)
{
	struct stat st;

	if (fstat(((struct fd_file *)f)->fd, &st) < 0)
		return SQLITE_IOERR_FSTAT;
	*ret = st.st_size;
	return SQLITE_OK;
}

/* No locks: the file is immutable for as long as the check runs (a
 * change makes the encoder drop the version, and the check with it). */
static int fd_lock(sqlite3_file *f, int level)
{
	return SQLITE_OK;
}

static int fd_reserved(sqlite3_file *f, int *ret)
{
	*ret = 0;
	return SQLITE_OK;
}

static int fd_control(sqlite3_file *f, int op, void *arg)
{
	return SQLITE_NOTFOUND;
}

static int fd_sector(sqlite3_file *f)
{
	return 512;
}

static int fd_device(sqlite3_file *f)
{
	return SQLITE_IOCAP_IMMUTABLE;
}

static const sqlite3_io_methods fd_methods = {
	.iVersion = 1,
	.xClose = fd_close,
	.xRead = fd_read,
	.xWrite = fd_write,
	.xTruncate = fd_truncate,
	.xSync = fd_sync,
	.xFileSize = fd_size,
	.xLock = fd_lock,
	.xUnlock = fd_lock,
	.xCheckReservedLock = fd_reserved,
	.xFileControl = fd_control,
	.xSectorSize = fd_sector,
	.xDeviceCharacteristics = fd_device,
};

#define VFS_NAME "drgw-fd"
#define VFS_PREFIX "/drgw-fd/"

/* The main database only, named VFS_PREFIX "<fd>"; anything else (a
 * journal, a -wal, a temporary file) is refused. */
static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
		    int flags, int *ret_flags)
{
	struct fd_file *ff = (struct fd_file *)f;
	uint64_t n;

	f->pMethods = NULL;
	if (!name || !(flags & SQLITE_OPEN_MAIN_DB) ||
	    (flags & (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) ||
	    strncmp(name, VFS_PREFIX, strlen(VFS_PREFIX)) ||
	    drgw_parse_u64(name + strlen(VFS_PREFIX), &n) < 0 || n > INT32_MAX)
		return SQLITE_CANTOPEN;
	memset(ff, 0, sizeof(*ff));
	ff->fd = fcntl((int)n, F_DUPFD_CLOEXEC, 0);
	if (ff->fd < 0)
		return SQLITE_CANTOPEN;
	ff->ra = malloc(RA_MAX); /* without it, one read per page */
	f->pMethods = &fd_methods;
	if (ret_flags)
		*ret_flags = SQLITE_OPEN_READONLY;
	return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	return SQLITE_IOERR_DELETE;
}

/* Nothing else exists: no hot journal, no -wal to look at. */
static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *ret)
{
	*ret = 0;
	return SQLITE_OK;
}

static int vfs_full_path(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	return drgw_strlcpy(out, name, (size_t)n) < 0 ? SQLITE_CANTOPEN :
							SQLITE_OK;
}

static void *vfs_dlopen(sqlite3_vfs *vfs, const char *name)
{
	return NULL;
}

static void vfs_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	drgw_strlcpy(msg, "no extensions", (size_t)n);
}

static void (*vfs_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	return NULL;
}

static void vfs_dlclose(sqlite3_vfs *vfs, void *h)
{
}

static int vfs_random(sqlite3_vfs *vfs, int n, char *out)
{
	sqlite3_vfs *base = vfs->pAppData;

	return base->xRandomness(base, n, out);
}

static int vfs_sleep(sqlite3_vfs *vfs, int us)
{
	sqlite3_vfs *base = vfs->pAppData;

	return base->xSleep(base, us);
}

static int vfs_time(sqlite3_vfs *vfs, double *ret)
{
	sqlite3_vfs *base = vfs->pAppData;

	return base->xCurrentTime(base, ret);
}

static int vfs_last_error(sqlite3_vfs *vfs, int n, char *msg)
{
	return 0;
}

static sqlite3_vfs fd_vfs = {
	.iVersion = 1,
	.szOsFile = sizeof(struct fd_file),
	.mxPathname = 64,
	.zName = VFS_NAME,
	.xOpen = vfs_open,
	.xDelete = vfs_delete,
	.xAccess = vfs_access,
	.xFullPathname = vfs_full_path,
	.xDlOpen = vfs_dlopen,
	.xDlError = vfs_dlerror,
	.xDlSym = vfs_dlsym,
	.xDlClose = vfs_dlclose,
	.xRandomness = vfs_random,
	.xSleep = vfs_sleep,
	.xCurrentTime = vfs_time,
	.xGetLastError = vfs_last_error,
};

static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static int vfs_rc = SQLITE_ERROR;

static void vfs_register(void)
{
	fd_vfs.pAppData = sqlite3_vfs_find(NULL);
	if (fd_vfs.pAppData)
		vfs_rc = sqlite3_vfs_register(&fd_vfs, 0);
}

/* --- running a check --- */

enum { RUNNING, STOP_TIMEOUT, STOP_EXIT, STOP_CANCEL };

struct drgw_sqlcheck {
	int fd;
	int dir_fd;
	char *name;
	enum drgw_sqlcheck_level level;
	int64_t start_ns; /* monotonic */
	int64_t deadline_ns;
	const atomic_bool *exit; /* the caller's "stop now", or NULL */
	pthread_t thread;
	bool threaded;

	/* Why the check should end early: RUNNING, STOP_TIMEOUT, STOP_EXIT
	 * or STOP_CANCEL.  Read by the check without the lock. */
	atomic_int stop;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Protected by lock. */
	sqlite3 *db; /* the connection to interrupt, while one is open */
	pid_t tid;
	bool waited; /* the caller waits: normal priority */
	bool done;
	struct drgw_sqlcheck_result res;
	int64_t cpu_ns;	 /* CPU time the check's thread used */
	int64_t wait_ns; /* how long the caller waited for it */
};

/* Takes the check's thread down to (or back up from) idle priority.
 * Best effort: a thread that stays at normal priority is still one thread
 * and still bounded in time. */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_BE 2
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_VALUE(cls, data) ((cls) << 13 | (data))

static void set_idle(pthread_t thread, pid_t tid, bool idle)
{
	struct sched_param sp = { 0 };

	pthread_setschedparam(thread, idle ? SCHED_IDLE : SCHED_OTHER, &sp);
	syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid,
		idle ? IOPRIO_VALUE(IOPRIO_CLASS_IDLE, 0) :
		       IOPRIO_VALUE(IOPRIO_CLASS_BE, 4));
}

/* Looks at name's -journal or -wal below dir_fd, by what the database's
 * header says its journal mode is. */
static void check_sibling(struct drgw_sqlcheck *c,
			  const struct drgw_sqlite_header *h,
			  struct drgw_sqlcheck_result *res)
{
	char path[4200];
	const char *base = strrchr(c->name, '/');
	uint8_t head[WAL_HEADER_SIZE];
	struct drgw_sqlite_wal wal;
	unsigned long long committed = 0, frames = 0;
	uint64_t off, frame_size;
	struct stat st;
	ssize_t n;
	int fd;

	base = base ? base + 1 : c->name;
	if (snprintf(path, sizeof(path), "%s%s", c->name,
		     h->wal ? "-wal" : "-journal") >= (int)sizeof(path))
		return;
	/* O_NONBLOCK: a FIFO of that name must not stop the check. */
	fd = drgw_openat_beneath(c->dir_fd, path, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out;
	n = drgw_pread_full(fd, head, sizeof(head), 0);
	if (n <= 0)
		goto out;
	if (!h->wal) {
		if (drgw_sqlcheck_journal_hot(head, (size_t)n))
			verdict(res, DRGW_SQLCHECK_HOT_JOURNAL,
				"%s-journal beside it is a hot journal: the database was copied in the middle of a transaction; back it up with sqlite3 .backup",
				base);
		goto out;
	}
	if (drgw_sqlcheck_wal_header(head, (size_t)n, &wal) < 0 ||
	    wal.page_size != h->page_size)
		goto out;
	/* Count the frames of the WAL's current generation up to its last
	 * commit: what a reader of the database would see on top of it. */
	frame_size = WAL_FRAME_HEADER_SIZE + (uint64_t)wal.page_size;
	for (off = WAL_HEADER_SIZE; off + frame_size <= (uint64_t)st.st_size;
	     off += frame_size) {
		uint8_t fh[WAL_FRAME_HEADER_SIZE];
		int r;

		if (atomic_load(&c->stop) != RUNNING ||
		    drgw_pread_exact(fd, fh, sizeof(fh), off) < 0)
			break;
		r = drgw_sqlcheck_wal_frame(&wal, fh, sizeof(fh));
		if (r < 0)
			break;
		frames++;
		if (r == 1)
			committed = frames;
	}
	if (committed)
		verdict(res, DRGW_SQLCHECK_WAL,
			"%s-wal beside it holds %llu committed frames: drgw does not back up -wal files, so the snapshot lacks whatever of them was not checkpointed; back it up with sqlite3 .backup",
			base, committed);
out:
	close(fd);
}

static int on_progress(void *arg)
{
	struct drgw_sqlcheck *c = arg;

	return atomic_load(&c->stop) != RUNNING;
}

/* The first line of a problem, without the "*** in database main ***"
 * heading integrity_check puts before problems of the main database. */
static void first_problem(const char *text, char *buf, size_t size)
{
	static const char heading[] = "*** in database main ***";
	size_t n;

	if (!strncmp(text, heading, strlen(heading)))
		text += strlen(heading);
	text += strspn(text, "\n ");
	n = strcspn(text, "\n");
	if (n >= size)
		n = size - 1;
	memcpy(buf, text, n);
	buf[n] = '\0';
}

static void check_sqlite(struct drgw_sqlcheck *c, struct drgw_sqlcheck_result *res)
{
	const char *pragma = level_pragma[c->level];
	char uri[64], problem[sizeof(res->message)] = "";
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	int rc, stop;

	pthread_once(&vfs_once, vfs_register);
	if (vfs_rc != SQLITE_OK) {
		snprintf(res->message, sizeof(res->message),
			 "%s could not run: cannot register the SQLite VFS",
			 pragma);
		return;
	}
	snprintf(uri, sizeof(uri), "file:" VFS_PREFIX "%d?immutable=1&mode=ro",
		 c->fd);
	rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
			     VFS_NAME);
	if (rc == SQLITE_OK) {
		/* The file is untrusted input (sqlite.org/security.html). */
		sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
		sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
		sqlite3_progress_handler(db, 10000, on_progress, c);
		pthread_mutex_lock(&c->lock);
		c->db = db;
		pthread_mutex_unlock(&c->lock);
		rc = sqlite3_exec(db, "PRAGMA temp_store=MEMORY; PRAGMA cell_size_check=ON",
				  NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, level_sql[c->level], -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const char *row = (const char *)sqlite3_column_text(st, 0);

			first_problem(row ? row : "", problem, sizeof(problem));
		}
	}
	stop = atomic_load(&c->stop);
	if (stop == STOP_EXIT) {
		snprintf(res->message, sizeof(res->message),
			 "%s did not finish: drgw was stopping", pragma);
	} else if (stop != RUNNING) {
		char limit[32];

		drgw_format_duration(c->deadline_ns - c->start_ns, limit,
				     sizeof(limit));
		snprintf(res->message, sizeof(res->message),
			 "%s did not finish within %s (check-sqlite-timeout)",
			 pragma, limit);
	} else if (rc == SQLITE_ROW && !strcmp(problem, "ok")) {
		res->level = (uint8_t)c->level;
	} else if (rc == SQLITE_ROW) {
		res->level = (uint8_t)c->level;
		verdict(res, DRGW_SQLCHECK_CORRUPT, "%s", problem[0] ? problem : "?");
	} else if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
		res->level = (uint8_t)c->level;
		verdict(res, DRGW_SQLCHECK_CORRUPT, "%s", db ? sqlite3_errmsg(db) :
							       sqlite3_errstr(rc));
	} else {
		snprintf(res->message, sizeof(res->message), "%s could not run: %s",
			 pragma, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	}
	sqlite3_finalize(st);
	pthread_mutex_lock(&c->lock);
	c->db = NULL;
	pthread_mutex_unlock(&c->lock);
	sqlite3_close(db);
}

static void run_check(struct drgw_sqlcheck *c, bool header_only,
		      struct drgw_sqlcheck_result *res)
{
	uint8_t head[HEADER_SIZE];
	struct drgw_sqlite_header h = { 0 };
	struct stat st;
	ssize_t n = fstat(c->fd, &st) < 0 ? -errno : 0;

	if (n == 0)
		n = drgw_pread_full(c->fd, head, sizeof(head), 0);
	if (n < 0) {
		memset(res, 0, sizeof(*res));
		snprintf(res->message, sizeof(res->message),
			 "cannot read the file: %s", strerror((int)-n));
		return;
	}
	drgw_sqlcheck_header(head, (size_t)n, (uint64_t)st.st_size, &h, res);
	/* A hot journal or a -wal explains a size that does not match the
	 * header better than the size does: they override it. */
	if (c->dir_fd >= 0 && h.page_size &&
	    (res->verdict == DRGW_SQLCHECK_OK ||
	     res->verdict == DRGW_SQLCHECK_TORN ||
	     res->verdict == DRGW_SQLCHECK_TRUNCATED))
		check_sibling(c, &h, res);
	if (res->verdict == DRGW_SQLCHECK_OK && !header_only &&
	    c->level >= DRGW_SQLCHECK_QUICK)
		check_sqlite(c, res);
}

static void *check_main(void *arg)
{
	struct drgw_sqlcheck *c = arg;
	struct drgw_sqlcheck_result res;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	struct timespec cpu;

	pthread_mutex_lock(&c->lock);
	c->tid = tid;
	/* Under the lock: the caller may already wait for the result. */
	if (!c->waited)
		set_idle(pthread_self(), tid, true);
	pthread_mutex_unlock(&c->lock);
	drgw_test_point("sqlcheck-run");
	run_check(c, false, &res);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
	pthread_mutex_lock(&c->lock);
	c->cpu_ns = cpu.tv_sec * NSEC_PER_SEC + cpu.tv_nsec;
	c->res = res;
	c->done = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static struct drgw_sqlcheck *check_free(struct drgw_sqlcheck *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->name);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

struct drgw_sqlcheck *drgw_sqlcheck_start(int fd, int dir_fd, const char *name,
					  enum drgw_sqlcheck_level level,
					  int64_t timeout_ns,
					  const atomic_bool *stop)
{
	struct drgw_sqlcheck *c;
	pthread_condattr_t ca;

	if (level == DRGW_SQLCHECK_OFF)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	c->dir_fd = dir_fd;
	c->name = strdup(name);
	c->level = level;
	c->start_ns = drgw_mono_ns();
	c->deadline_ns = c->start_ns + timeout_ns;
	c->exit = stop;
	atomic_init(&c->stop, RUNNING);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (c->fd < 0 || !c->name)
		return check_free(c);
	if (pthread_create(&c->thread, NULL, check_main, c) == 0) {
		c->threaded = true;
	} else {
		/* No thread: what costs next to nothing, here and now. */
		run_check(c, true, &c->res);
		c->done = true;
	}
	return c;
}

struct check_stats {
	int64_t run_ns, cpu_ns, wait_ns;
};

/* Ends the check: waits for it (until its deadline when keep, else stops
 * it at once), then frees it.  0 with *ret and *stats, or -ENOENT. */
static int check_end(struct drgw_sqlcheck *c, bool keep,
		     struct drgw_sqlcheck_result *ret, struct check_stats *stats)
{
	int64_t t, t0 = drgw_mono_ns();
	struct timespec ts;

	if (!c)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	c->waited = true;
	if (!c->done && c->tid)
		set_idle(c->thread, c->tid, false);
	if (!keep)
		atomic_store(&c->stop, STOP_CANCEL);
	while (!c->done) {
		if (atomic_load(&c->stop) == RUNNING && c->exit &&
		    atomic_load(c->exit))
			atomic_store(&c->stop, STOP_EXIT);
		if (atomic_load(&c->stop) == RUNNING &&
		    drgw_mono_ns() >= c->deadline_ns)
			atomic_store(&c->stop, STOP_TIMEOUT);
		/* Interrupting a connection between two statements is lost,
		 * so a stopped check is interrupted again until it ends. */
		if (atomic_load(&c->stop) != RUNNING && c->db)
			sqlite3_interrupt(c->db);
		/* Polled: *c->exit has no condition variable to wait on. */
		t = drgw_mono_ns() + (atomic_load(&c->stop) == RUNNING ?
					      200 * NSEC_PER_MSEC :
					      50 * NSEC_PER_MSEC);
		if (atomic_load(&c->stop) == RUNNING && t > c->deadline_ns)
			t = c->deadline_ns;
		ts.tv_sec = t / NSEC_PER_SEC;
		ts.tv_nsec = t % NSEC_PER_SEC;
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	c->wait_ns = drgw_mono_ns() - t0;
	pthread_mutex_unlock(&c->lock);
	if (c->threaded)
		pthread_join(c->thread, NULL);
	if (keep) {
		*ret = c->res;
		stats->run_ns = drgw_mono_ns() - c->start_ns;
		stats->cpu_ns = c->cpu_ns;
		stats->wait_ns = c->wait_ns;
	}
	check_free(c);
	return keep ? 0 : -ENOENT;
}

int drgw_sqlcheck_finish(struct drgw_sqlcheck *c, bool keep, const char *vid,
			 struct drgw_sqlcheck_result *ret)
{
	char name[4096], what[sizeof(ret->message) + 64];
	struct check_stats cs;
	int r;

	if (c)
		drgw_strlcpy(name, c->name, sizeof(name));
	r = check_end(c, keep, ret, &cs);
	if (r < 0)
		return r;
	drgw_sqlcheck_describe(ret, what, sizeof(what));
	if (drgw_sqlcheck_failed(ret->verdict))
		log_warning("%s (version %s) failed its SQLite check: %s; it is replicated anyway and marked in drgw ls",
			    name, vid, what);
	else if (ret->verdict == DRGW_SQLCHECK_OK)
		/* What bench/run reads: the check's cost, and how long the
		 * version waited for it after its encode. */
		log_info("sqlite check of %s version %s: %s in %.2fs (%.2fs CPU, %.2fs after the encode)",
			 name, vid, what, (double)cs.run_ns / NSEC_PER_SEC,
			 (double)cs.cpu_ns / NSEC_PER_SEC,
			 (double)cs.wait_ns / NSEC_PER_SEC);
	return 0;
}

void drgw_sqlcheck_file(int fd, int dir_fd, const char *name,
			enum drgw_sqlcheck_level level, int64_t timeout_ns,
			struct drgw_sqlcheck_result *ret)
{
	struct drgw_sqlcheck *c = drgw_sqlcheck_start(fd, dir_fd, name, level,
						      timeout_ns, NULL);
	struct check_stats cs;

	memset(ret, 0, sizeof(*ret));
	if (!c && level != DRGW_SQLCHECK_OFF)
		snprintf(ret->message, sizeof(ret->message),
			 "cannot start the check: out of memory");
	check_end(c, true, ret, &cs);
}
