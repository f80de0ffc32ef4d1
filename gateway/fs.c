/* SPDX-License-Identifier: MIT */
/*
 * The gateway mount: a pass-through of <cache>/files/ that tells the sealer
 * when files change and are closed.  Everything else is what a local file
 * system does, so sqlite3, cp, rsync, tar and mv run unchanged.
 *
 * Speed comes from FUSE passthrough where libfuse and the kernel offer it:
 * the kernel then reads and writes the working-set files itself, and only
 * opens, closes, fsync and metadata reach us (see io_path below).  Without
 * it, from the kernel's writeback cache: SQLite's page-sized pwrite()s land
 * in the page cache and reach us as large WRITE requests (up to 1 MiB),
 * which write_buf() splices into the backing file.  POSIX and flock locks
 * are left to the kernel (no lock handlers), which is exactly right for
 * one node; see docs/OPERATIONS.md.
 *
 * Change tracking: open-for-write, write, truncate and fallocate bump the
 * node's change counter before touching data (see nodes.h); release of the
 * last writable handle schedules the seal.  Passthrough writes never reach
 * us, but they need a writable handle, and opening one bumps the counter
 * before the kernel learns the backing file: that is what the encoder
 * relies on (spool.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "backing.h"
#include "drgw-build.h"
#include "fs.h"
#include "log.h"

#if DRGW_FUSE_PASSTHROUGH
#include <fuse_lowlevel.h> /* fuse_session_fd() */
#endif

/*
 * How file data moves between the mount's users and the working set,
 * decided per mount when the kernel offers its capabilities (gw_init()):
 *
 *   passthrough      the kernel reads and writes the working-set files
 *                    itself (libfuse >= 3.17, Linux >= 6.9, CAP_SYS_ADMIN);
 *                    we see open, flush, fsync, release and metadata only.
 *                    The kernel offers it only without the writeback cache.
 *   writeback-cache  data passes through us; the kernel's writeback cache
 *                    turns small writes into large WRITE requests.
 *   write-through    data passes through us write by write: the kernel
 *                    has no writeback cache, or it refused the first
 *                    backing file after passthrough was negotiated.
 */
enum io_path { IO_WRITEBACK_CACHE, IO_PASSTHROUGH, IO_WRITE_THROUGH };

static const char *const io_words[] = { "writeback-cache", "passthrough",
					"write-through" };

static struct {
	atomic_int path; /* enum io_path; passthrough may fall back once */
	struct drgw_backing *backing; /* passthrough: set in gw_init() */
	atomic_bool registered; /* the kernel took a backing file */
} io;

struct handle {
	int fd;
	struct drgw_node *node; /* NULL for read-only handles */
	/* Passthrough: the backing file the kernel uses for this handle. */
	struct drgw_backing_file *backing;
	/* Writable, and its writes bypass us (passthrough without direct
	 * I/O): a write error goes to the writer alone. */
	bool blind;
	struct handle *prev, *next; /* in open_handles */
};

/* Every handle not yet released.  The kernel sends RELEASE in the
 * background after close() returns, and an unmount right after the close
 * (drgw run, as soon as its command exits) can drop it: gw_destroy()
 * releases what is left, so that file is sealed like any closed file.
 * One gateway mount per process. */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handle *open_handles;

static void track(struct handle *h)
{
	pthread_mutex_lock(&handles_lock);
	h->prev = NULL;
	h->next = open_handles;
	if (open_handles)
		open_handles->prev = h;
	open_handles = h;
	pthread_mutex_unlock(&handles_lock);
}

static void untrack_locked(struct handle *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		open_handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
}

static struct drgw_gateway *gw_of(void)
{
	return fuse_get_context()->private_data;
}

/* "/a/b" -> "a/b"; "/" -> "." (for the *at() calls on files_fd). */
static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

/* Remembers the first write-back or fsync failure of the content. */
static int note_error(struct handle *h, int r)
{
	int none = 0;

	if (r < 0 && h->node)
		atomic_compare_exchange_strong(&h->node->write_error, &none, -r);
	return r;
}

/* New files belong to the caller, as on a local file system. */
static void chown_to_caller(int dirfd, const char *path, int fd)
{
	struct fuse_context *ctx = fuse_get_context();

	if (geteuid() != 0 || (ctx->uid == 0 && ctx->gid == 0))
		return;
	if (fd >= 0)
		(void)!fchown(fd, ctx->uid, ctx->gid);
	else
		(void)!fchownat(dirfd, path, ctx->uid, ctx->gid,
				AT_SYMLINK_NOFOLLOW);
}

/* Says how file data moves, in the log and for `drgw status` (the meta
 * row "mount_io" of the catalog, with our pid so that a row left by a
 * killed daemon is not taken for ours). */
static void report_io(struct drgw_gateway *gw, enum drgw_log_level level,
		      const char *why)
{
	enum io_path p = atomic_load(&io.path);
	char detail[512];
	json_t *o;
	char *s;

	if (p == IO_PASSTHROUGH)
		snprintf(detail, sizeof(detail),
			 "reads and writes go straight to the files in %s",
			 gw->files_dir);
	else
		snprintf(detail, sizeof(detail),
			 "data passes through drgw%s; passthrough unavailable: %s",
			 p == IO_WRITEBACK_CACHE ?
				 " and the kernel's writeback cache" :
				 " write by write",
			 why);
	drgw_log(level, "gateway I/O: %s (%s)", io_words[p], detail);
	o = json_pack("{s:I, s:s, s:s}", "pid", (json_int_t)getpid(), "io",
		      io_words[p], "detail", detail);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (s)
		drgw_catalog_set_meta(gw->cat, "mount_io", s);
	free(s);
	json_decref(o);
}

#if DRGW_FUSE_PASSTHROUGH
/* libfuse 3.17 keeps 64 capability bits in the _ext fields and refuses an
 * init() that changes both those and the old 32-bit ones. */
static bool conn_offers(const struct fuse_conn_info *conn, uint64_t cap)
{
	return conn->capable_ext & cap;
}

static void conn_want(struct fuse_conn_info *conn, uint64_t cap)
{
	fuse_set_feature_flag(conn, cap);
}

/* NULL if this mount can use passthrough, else why not. */
static const char *passthrough_unavailable(const struct drgw_gateway *gw,
					   const struct fuse_conn_info *conn,
					   char *buf, size_t size)
{
	bool offered = conn_offers(conn, FUSE_CAP_PASSTHROUGH);

#if DRGW_TEST_HOOKS
	/* A kernel without it, on one that has it. */
	if (getenv("DRGW_TEST_KERNEL_WITHOUT_PASSTHROUGH"))
		offered = false;
#endif
	if (!gw->cfg->passthrough)
		return "turned off (passthrough = off)";
	if (!offered)
		return "the kernel does not offer it (it needs Linux 6.9 or later built with CONFIG_FUSE_PASSTHROUGH)";
	return drgw_backing_permitted(buf, size) ? NULL : buf;
}
#else
static bool conn_offers(const struct fuse_conn_info *conn, uint64_t cap)
{
	return conn->capable & cap;
}

static void conn_want(struct fuse_conn_info *conn, uint64_t cap)
{
	conn->want |= cap;
}

static const char *passthrough_unavailable(const struct drgw_gateway *gw,
					   const struct fuse_conn_info *conn,
					   char *buf, size_t size)
{
	if (!gw->cfg->passthrough)
		return "turned off (passthrough = off)";
	snprintf(buf, size,
		 "drgw was built with libfuse %s; it needs 3.17 or later",
		 DRGW_LIBFUSE_VERSION);
	return buf;
}
#endif

static void *gw_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct drgw_gateway *gw = fuse_get_context()->private_data;
	const char *why;
	char buf[256];

	cfg->use_ino = 1;
	cfg->nullpath_ok = 1;
	/* Unlinked-but-open files stay usable through their handle, without
	 * libfuse's .fuse_hidden renames in the working set. */
	cfg->hard_remove = 1;
	cfg->entry_timeout = 1.0;
	cfg->attr_timeout = 1.0;
	cfg->negative_timeout = 0;
	conn->time_gran = 1;

	why = passthrough_unavailable(gw, conn, buf, sizeof(buf));
#if DRGW_FUSE_PASSTHROUGH
	if (!why && !(io.backing = drgw_backing_new(fuse_session_fd(
			      fuse_get_session(fuse_get_context()->fuse)))))
		why = "out of memory";
	if (!why) {
		conn_want(conn, FUSE_CAP_PASSTHROUGH);
		/* The cache directory may be on overlayfs (a container
		 * without a volume there); nothing stacks on this mount. */
		conn->max_backing_stack_depth = FUSE_BACKING_STACKED_OVER;
		atomic_store(&io.path, IO_PASSTHROUGH);
		report_io(gw, DRGW_LOG_INFO, NULL);
		return gw;
	}
#endif
	/* Without it, SQLite's 4 KiB page writes are one round trip each:
	 * .backup of 800 MiB took 7.9 s instead of 3.3 s here (bench/run). */
	if (conn_offers(conn, FUSE_CAP_WRITEBACK_CACHE)) {
		conn_want(conn, FUSE_CAP_WRITEBACK_CACHE);
		atomic_store(&io.path, IO_WRITEBACK_CACHE);
	} else {
		atomic_store(&io.path, IO_WRITE_THROUGH);
	}
	report_io(gw, DRGW_LOG_INFO, why);
	return gw;
}

static int gw_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct drgw_gateway *gw = gw_of();
	int r;

	if (fi)
		r = fstat(handle_of(fi)->fd, st);
	else
		r = fstatat(gw->files_fd, rel(path), st, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

static int gw_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n = readlinkat(gw_of()->files_fd, rel(path), buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int gw_mkdir(const char *path, mode_t mode)
{
	struct drgw_gateway *gw = gw_of();

	if (mkdirat(gw->files_fd, rel(path), mode) < 0)
		return -errno;
	chown_to_caller(gw->files_fd, rel(path), -1);
	return 0;
}

static int gw_symlink(const char *target, const char *path)
{
	struct drgw_gateway *gw = gw_of();

	if (symlinkat(target, gw->files_fd, rel(path)) < 0)
		return -errno;
	chown_to_caller(gw->files_fd, rel(path), -1);
	return 0;
}

static int gw_unlink(const char *path)
{
	struct drgw_gateway *gw = gw_of();

	drgw_spool_hold(gw, rel(path));
	if (unlinkat(gw->files_fd, rel(path), 0) < 0)
		return -errno;
	drgw_nodes_lock(gw->nodes);
	drgw_nodes_unlink_locked(gw->nodes, rel(path));
	drgw_nodes_unlock(gw->nodes);
	drgw_catalog_set_settling(gw->cat, rel(path), false);
	return 0;
}

static int gw_rmdir(const char *path)
{
	return unlinkat(gw_of()->files_fd, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* A file arrived under path by rename(): that name gets a snapshot of it,
 * unless it is excluded. */
static void mark_renamed(struct drgw_gateway *gw, const char *path)
{
	struct drgw_node *n;

	if (drgw_config_excluded(gw->cfg, path))
		return;
	drgw_nodes_lock(gw->nodes);
	n = drgw_nodes_get_locked(gw->nodes, path);
	if (n) {
		atomic_fetch_add(&n->gen, 1);
		atomic_store(&n->dirty, true);
		drgw_seal_schedule_locked(gw, n);
		drgw_nodes_put_locked(gw->nodes, n);
	}
	drgw_nodes_unlock(gw->nodes);
	drgw_catalog_set_settling(gw->cat, path, true);
}

static int gw_rename(const char *from, const char *to, unsigned int flags)
{
	struct drgw_gateway *gw = gw_of();
	struct stat st;
	int r;

	if (fstatat(gw->files_fd, rel(from), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	/* A target the rename replaces loses its last name: if its newest
	 * version is not encoded yet, keep the content.  (The source keeps
	 * its content under the new name, which gets a version of its own.) */
	if (S_ISREG(st.st_mode) && !(flags & RENAME_EXCHANGE)) {
		struct stat tst;

		if (fstatat(gw->files_fd, rel(to), &tst, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(tst.st_mode))
			drgw_spool_hold(gw, rel(to));
	}
	if (renameat2(gw->files_fd, rel(from), gw->files_fd, rel(to), flags) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && !(flags & RENAME_EXCHANGE))
		drgw_catalog_rename_writing(gw->cat, rel(from), rel(to));
	drgw_nodes_lock(gw->nodes);
	if (flags & RENAME_EXCHANGE) {
		/* Swap the two nodes through a name no file can have. */
		drgw_nodes_rename_locked(gw->nodes, rel(from), "/exchange", false);
		drgw_nodes_rename_locked(gw->nodes, rel(to), rel(from), false);
		r = drgw_nodes_rename_locked(gw->nodes, "/exchange", rel(to),
					     false);
	} else {
		r = drgw_nodes_rename_locked(gw->nodes, rel(from), rel(to),
					     S_ISDIR(st.st_mode));
	}
	drgw_nodes_unlock(gw->nodes);

	if (S_ISDIR(st.st_mode)) {
		/* Every file below has a new name; the scan seals those whose
		 * name has no snapshot of their content yet. */
		drgw_catalog_clear_settling_below(gw->cat, rel(from));
		drgw_seal_scan_dir(gw, rel(to));
		return r;
	}
	if (!S_ISREG(st.st_mode))
		return r;
	if (flags & RENAME_EXCHANGE) {
		mark_renamed(gw, rel(from));
	} else {
		drgw_catalog_set_settling(gw->cat, rel(from), false);
	}
	mark_renamed(gw, rel(to));
	return r;
}

static int gw_link(const char *from, const char *to)
{
	struct drgw_gateway *gw = gw_of();

	return linkat(gw->files_fd, rel(from), gw->files_fd, rel(to), 0) < 0 ?
		       -errno : 0;
}

static int gw_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int r;

	if (fi)
		r = fchmod(handle_of(fi)->fd, mode);
	else
		r = fchmodat(gw_of()->files_fd, rel(path), mode, 0);
	return r < 0 ? -errno : 0;
}

static int gw_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	int r;

	if (fi)
		r = fchown(handle_of(fi)->fd, uid, gid);
	else
		r = fchownat(gw_of()->files_fd, rel(path), uid, gid,
			     AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

/* A change to the data of path when no handle is at hand (truncate). */
static void touch_path(struct drgw_gateway *gw, const char *path)
{
	struct drgw_node *n;

	drgw_nodes_lock(gw->nodes);
	n = drgw_nodes_get_locked(gw->nodes, path);
	if (n) {
		drgw_node_touch(n);
		drgw_seal_schedule_locked(gw, n);
		drgw_nodes_put_locked(gw->nodes, n);
	}
	drgw_nodes_unlock(gw->nodes);
}

static int gw_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct drgw_gateway *gw = gw_of();
	int fd, r;

	if (fi) {
		struct handle *h = handle_of(fi);

		if (h->node)
			drgw_node_touch(h->node);
		return ftruncate(h->fd, size) < 0 ? -errno : 0;
	}
	touch_path(gw, rel(path));
	fd = openat(gw->files_fd, rel(path), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	r = ftruncate(fd, size) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int gw_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	int r;

	if (fi)
		r = futimens(handle_of(fi)->fd, tv);
	else
		r = utimensat(gw_of()->files_fd, rel(path), tv,
			      AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

/* With the writeback cache, write() returns once the page cache holds the
 * data, and a disk that turns out to be full is reported only at fsync()
 * or close() (SQLite: "disk I/O error").  When the cache disk runs low,
 * new writers bypass the page cache instead, and write() itself fails
 * with ENOSPC, as on any disk ("database or disk is full").  Journals,
 * WAL and SHM files keep the page cache: SHM needs shared mmap, which
 * direct I/O does not offer here. */
static bool low_on_space(struct drgw_gateway *gw, const char *path)
{
	struct statvfs sv;

	if (drgw_config_excluded(gw->cfg, path) ||
	    fstatvfs(gw->files_fd, &sv) < 0)
		return false;
	return (uint64_t)sv.f_bavail * sv.f_frsize < gw->cfg->write_through_below;
}

/* Less free than this on the cache disk when a passthrough writer closes,
 * and one of its writes may have failed with ENOSPC. */
#define FULL_BELOW (1u << 20)

static bool disk_full(struct drgw_gateway *gw)
{
	struct statvfs sv;

	return fstatvfs(gw->files_fd, &sv) == 0 &&
	       (uint64_t)sv.f_bavail * sv.f_frsize < FULL_BELOW;
}

#if DRGW_FUSE_PASSTHROUGH
/* The first backing file was refused, so none will be taken: the mount
 * goes on with data through us (without the writeback cache, which was
 * given up for passthrough at init). */
static void refuse_passthrough(struct drgw_gateway *gw, int r)
{
	char why[256];
	int expected = IO_PASSTHROUGH;

	if (!atomic_compare_exchange_strong(&io.path, &expected,
					    IO_WRITE_THROUGH))
		return;
	snprintf(why, sizeof(why), "the kernel refused the first backing file (%s)",
		 strerror(-r));
	report_io(gw, DRGW_LOG_WARNING, why);
}

/* Hands the kernel the backing file of h: 1 when it will use it, 0 when
 * passthrough is off for this mount, or -errno to fail the open. */
static int handle_passthrough(struct drgw_gateway *gw, struct handle *h,
			      struct fuse_file_info *fi)
{
	int r;

	if (atomic_load(&io.path) != IO_PASSTHROUGH)
		return 0;
	r = drgw_backing_get(io.backing, h->fd, &h->backing);
	if (r == 0) {
		atomic_store(&io.registered, true);
		fi->backing_id = drgw_backing_id(h->backing);
		return 1;
	}
	if (r == -ENOMEM || atomic_load(&io.registered))
		return r;
	refuse_passthrough(gw, r);
	return 0;
}
#else
static int handle_passthrough(struct drgw_gateway *gw, struct handle *h,
			      struct fuse_file_info *fi)
{
	return 0;
}
#endif

/* Sets up how the data of h moves (see io_path); -errno fails the open. */
static int handle_io(struct drgw_gateway *gw, struct handle *h,
		     const char *path, bool writable, struct fuse_file_info *fi)
{
	bool low = writable && low_on_space(gw, path);
	int r = handle_passthrough(gw, h, fi);

	if (r < 0)
		return r;
	/* With passthrough, direct I/O still wins for read() and write()
	 * (mmap uses the backing file): low on space, we see each write and
	 * its error. */
	fi->direct_io = low;
	h->blind = r > 0 && writable && !low;
	return 0;
}

/* Opens path with flags; registers a writer on its node if writable. */
static int open_handle(const char *path, int flags, mode_t mode, bool create,
		       struct fuse_file_info *fi)
{
	struct drgw_gateway *gw = gw_of();
	bool writable = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	struct handle *h;
	int fd, r;

	/* With the writeback cache the kernel reads pages of files opened
	 * write-only, and implements O_APPEND itself. */
	if ((flags & O_ACCMODE) == O_WRONLY) {
		flags &= ~O_ACCMODE;
		flags |= O_RDWR;
	}
	flags &= ~O_APPEND;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (writable) {
		bool first = false;

		drgw_nodes_lock(gw->nodes);
		h->node = drgw_nodes_get_locked(gw->nodes, rel(path));
		if (h->node) {
			first = h->node->writers++ == 0;
			h->node->seal_at = 0;
			/* Counted as a change before any byte moves, so an
			 * encoder reading the file right now discards it. */
			atomic_fetch_add(&h->node->gen, 1);
			if (create || (flags & O_TRUNC)) {
				/* New content: old failures are history. */
				atomic_store(&h->node->dirty, true);
				atomic_store(&h->node->write_error, 0);
				h->node->unclean = false;
				h->node->full_at_close = false;
			}
			/* Passthrough writes never reach us: the open is the
			 * change (sealing skips content left as it was). */
			if (atomic_load(&io.path) == IO_PASSTHROUGH)
				atomic_store(&h->node->dirty, true);
		}
		drgw_nodes_unlock(gw->nodes);
		if (!h->node) {
			free(h);
			return -ENOMEM;
		}
		/* Known at the next start if we die before the release. */
		if (first)
			drgw_catalog_set_writing(gw->cat, rel(path), true);
	}
	fd = openat(gw->files_fd, rel(path), flags | O_CLOEXEC | O_NOFOLLOW,
		    mode);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	if (create)
		chown_to_caller(gw->files_fd, rel(path), fd);
	h->fd = fd;
	r = handle_io(gw, h, rel(path), writable, fi);
	if (r < 0) {
		close(fd);
		goto fail;
	}
	fi->fh = (uintptr_t)h;
	track(h);
	return 0;
fail:
	if (h->node) {
		char *closed = NULL;

		drgw_nodes_lock(gw->nodes);
		if (--h->node->writers == 0 && !h->node->unlinked)
			closed = strdup(h->node->path);
		drgw_nodes_put_locked(gw->nodes, h->node);
		drgw_nodes_unlock(gw->nodes);
		if (closed)
			drgw_catalog_set_writing(gw->cat, closed, false);
		free(closed);
	}
	free(h);
	return r;
}

static int gw_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return open_handle(path, fi->flags | O_CREAT, mode, true, fi);
}

static int gw_open(const char *path, struct fuse_file_info *fi)
{
	return open_handle(path, fi->flags, 0, false, fi);
}

static int gw_read_buf(const char *path, struct fuse_bufvec **bufp,
		       size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec *bv = malloc(sizeof(*bv));

	if (!bv)
		return -ENOMEM;
	*bv = FUSE_BUFVEC_INIT(size);
	bv->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv->buf[0].fd = handle_of(fi)->fd;
	bv->buf[0].pos = off;
	*bufp = bv;
	return 0;
}

static int gw_write_buf(const char *path, struct fuse_bufvec *buf, off_t off,
			struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(fuse_buf_size(buf));

	if (h->node)
		drgw_node_touch(h->node);
	dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	dst.buf[0].fd = h->fd;
	dst.buf[0].pos = off;
	return note_error(h, (int)fuse_buf_copy(&dst, buf,
						FUSE_BUF_SPLICE_NONBLOCK));
}

static int gw_statfs(const char *path, struct statvfs *st)
{
	return fstatvfs(gw_of()->files_fd, st) < 0 ? -errno : 0;
}

static int gw_flush(const char *path, struct fuse_file_info *fi)
{
	struct drgw_gateway *gw = gw_of();
	struct handle *h = handle_of(fi);
	char *name = NULL;

	/* flush() is synchronous with close(2), unlike release(): record the
	 * settling file now, so a `drgw wait` right after close sees it. */
	if (!h->node || !atomic_load(&h->node->dirty))
		return 0;
	drgw_nodes_lock(gw->nodes);
	if (!h->node->unlinked && !drgw_config_excluded(gw->cfg, h->node->path))
		name = strdup(h->node->path);
	drgw_nodes_unlock(gw->nodes);
	/* Where the catalog cannot record it (a full cache disk), the lock
	 * file says it instead, until the sealer counts it. */
	if (name && drgw_catalog_set_settling(gw->cat, name, true) < 0)
		drgw_seal_publish(gw, 1);
	free(name);
	return 0;
}

static void release_handle(struct drgw_gateway *gw, struct handle *h)
{
	/* A writer that filled the disk got ENOSPC from write(), which we
	 * never saw; a full disk now is the trace it leaves. */
	bool full = h->blind && disk_full(gw);
	char *closed = NULL;

	close(h->fd);
	drgw_backing_put(io.backing, h->backing);
	if (h->node) {
		drgw_nodes_lock(gw->nodes);
		if (full)
			h->node->full_at_close = true;
		if (--h->node->writers == 0 && !h->node->unlinked)
			closed = strdup(h->node->path);
		drgw_seal_schedule_locked(gw, h->node);
		drgw_nodes_put_locked(gw->nodes, h->node);
		drgw_nodes_unlock(gw->nodes);
	}
	if (closed)
		drgw_catalog_set_writing(gw->cat, closed, false);
	free(closed);
	free(h);
}


static int gw_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);

	pthread_mutex_lock(&handles_lock);
	untrack_locked(h);
	pthread_mutex_unlock(&handles_lock);
	release_handle(gw_of(), h);
	return 0;
}

/* The mount is gone: no handle left can be used or released any more. */
static void gw_destroy(void *private_data)
{
	unsigned n = 0;

	for (;;) {
		struct handle *h;

		pthread_mutex_lock(&handles_lock);
		h = open_handles;
		if (h)
			untrack_locked(h);
		pthread_mutex_unlock(&handles_lock);
		if (!h)
			break;
		release_handle(private_data, h);
		n++;
	}
	if (n)
		log_info("released %u file handles the kernel did not close before the unmount",
			 n);
	io.backing = drgw_backing_free(io.backing);
	drgw_catalog_set_meta(((struct drgw_gateway *)private_data)->cat,
			      "mount_io", NULL);
}

static int gw_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);

	return note_error(h, (datasync ? fdatasync(h->fd) : fsync(h->fd)) < 0 ?
				     -errno : 0);
}

static int gw_opendir(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(gw_of()->files_fd, rel(path),
			O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	fi->fh = (uintptr_t)d;
	return 0;
}

static int gw_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	DIR *d = (DIR *)(uintptr_t)fi->fh;
	struct dirent *de;

	if (off == 0)
		rewinddir(d);
	else
		seekdir(d, off);
	while ((de = readdir(d))) {
		struct stat st = { .st_ino = de->d_ino,
				   .st_mode = (mode_t)DTTOIF(de->d_type) };

		if (filler(buf, de->d_name, &st, telldir(d), 0))
			break;
	}
	return 0;
}

static int gw_releasedir(const char *path, struct fuse_file_info *fi)
{
	closedir((DIR *)(uintptr_t)fi->fh);
	return 0;
}

static int gw_fsyncdir(const char *path, int datasync,
		       struct fuse_file_info *fi)
{
	int fd = dirfd((DIR *)(uintptr_t)fi->fh);

	return fsync(fd) < 0 ? -errno : 0;
}

static int gw_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);

	if (h->node)
		drgw_node_touch(h->node);
	return fallocate(h->fd, mode, off, len) < 0 ? -errno : 0;
}

static off_t gw_lseek(const char *path, off_t off, int whence,
		      struct fuse_file_info *fi)
{
	off_t r = lseek(handle_of(fi)->fd, off, whence);

	return r < 0 ? -errno : r;
}

static const struct fuse_operations gateway_ops = {
	.init = gw_init,
	.destroy = gw_destroy,
	.getattr = gw_getattr,
	.readlink = gw_readlink,
	.mkdir = gw_mkdir,
	.symlink = gw_symlink,
	.unlink = gw_unlink,
	.rmdir = gw_rmdir,
	.rename = gw_rename,
	.link = gw_link,
	.chmod = gw_chmod,
	.chown = gw_chown,
	.truncate = gw_truncate,
	.utimens = gw_utimens,
	.create = gw_create,
	.open = gw_open,
	.read_buf = gw_read_buf,
	.write_buf = gw_write_buf,
	.statfs = gw_statfs,
	.flush = gw_flush,
	.release = gw_release,
	.fsync = gw_fsync,
	.opendir = gw_opendir,
	.readdir = gw_readdir,
	.releasedir = gw_releasedir,
	.fsyncdir = gw_fsyncdir,
	.fallocate = gw_fallocate,
	.lseek = gw_lseek,
};

const struct fuse_operations *drgw_fs_gateway_ops(void)
{
	return &gateway_ops;
}
