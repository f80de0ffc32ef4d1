/* SPDX-License-Identifier: MIT */
/*
 * The local-directory backend: local:///abs/dir stores each object as a file
 * under that directory, which may be a local disk or an NFS/SMB mount.
 *
 * Objects are published the way a crash-safe writer must on any POSIX file
 * system: data goes to a hidden temp file beside the final name, which is
 * fsync()ed, renamed over the final name and followed by an fsync() of the
 * directory.  A reader therefore never sees a partial object under its final
 * name.  The temp name is derived from the key, not random: the gateway never
 * uploads the same key twice at once, so a crashed attempt's leftovers are
 * reused (resume) or overwritten instead of piling up.
 *
 * The directory may be shared with people who must not gain the daemon's
 * (root's) rights through it, and the temp name is predictable.  So every
 * name below the root is reached from a directory fd with O_NOFOLLOW, a
 * temp file is created with O_EXCL after removing whatever held its name,
 * a temp file is reused only if it is a regular file with one link, the
 * rename happens only if the temp name still is the file we wrote, and
 * get/stat refuse anything that is not a regular file: a planted symlink
 * or FIFO is never followed, written through or read.
 *
 * Resume: every RESUME_STEP bytes the temp file is fdatasync()ed and its
 * length saved as the resume token; a resumed put() keeps that prefix.  A
 * put() that finds no temp file but the final object with the source's
 * bytes (a crash after the rename, before the gateway recorded it) is
 * done without copying again.
 *
 * Streaming (DRGW_CAP_STREAMING_PUT): a growing source is copied as the
 * encoder writes it, and renamed into place only once it is complete.
 * Nothing is resumed from a growing source: its token would name bytes of
 * an object that a crash makes the gateway encode again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <drgw/backend.h>

#define COPY_BUF (1 << 20)
#define RESUME_STEP (64ULL << 20)
#define PAGE_KEYS 1000
#define TOKEN_MAGIC "drgw-local-1:"

struct local {
	char root[PATH_MAX];
	int read_only;
	const struct drgw_host *host;
};

static void set_err(struct drgw_err *err, const char *fmt, ...)
	DRGW_PRINTF(2, 3);
static void set_err(struct drgw_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* Keys come from the gateway, but a key read back from a listing of a
 * shared directory must not escape the root either. */
static int key_ok(const char *key)
{
	const char *p = key;

	if (!*key || *key == '/' || strlen(key) > 1024)
		return 0;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

#define TEMP_SUFFIX ".part"

static int root_missing(struct local *l, struct drgw_err *err)
{
	struct stat st;

	if (stat(l->root, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	set_err(err,
		"local backend directory %s does not exist; create it or mount the volume",
		l->root);
	return -EHOSTUNREACH;
}

/* The root as the operator configured it (symlinks in it are theirs). */
static int open_root(struct local *l, struct drgw_err *err)
{
	int fd = open(l->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT || errno == ENOTDIR)
		return root_missing(l, err) ?: -ENOENT;
	set_err(err, "cannot open local backend directory %s: %s", l->root,
		strerror(errno));
	return -errno;
}

/*
 * Opens the directory that holds key (creating the missing ones when
 * create is set) without following a symlink anywhere below the root, and
 * points *ret_base at the key's last component.
 * @return the directory fd, or a negative errno with err set: -ENOENT
 * when a directory is missing and create is not set, -EIO when something
 * that is not a directory stands in the way.
 */
static int open_parent(struct local *l, const char *key, int create,
		       const char **ret_base, struct drgw_err *err)
{
	const char *p = key, *slash;
	int dfd;

	if (!key_ok(key)) {
		set_err(err, "invalid object key '%s'", key);
		return -EINVAL;
	}
	dfd = open_root(l, err);
	while (dfd >= 0 && (slash = strchr(p, '/'))) {
		char comp[NAME_MAX + 1];
		size_t n = (size_t)(slash - p);
		int fd;

		if (n > NAME_MAX) {
			set_err(err, "object key too long: '%s'", key);
			close(dfd);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					       O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && create &&
		    (mkdirat(dfd, comp, 0755) == 0 || errno == EEXIST))
			fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY |
						       O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;

			if (e == ENOENT && !create) {
				fd = -ENOENT;
			} else if (e == ELOOP || e == ENOTDIR) {
				set_err(err,
					"refusing to use %s/%.*s: not a directory (a symlink or file was put there); remove it",
					l->root, (int)(slash - key), key);
				fd = -EIO;
			} else {
				set_err(err, "cannot open directory %s/%.*s: %s",
					l->root, (int)(slash - key), key,
					strerror(e));
				fd = -e;
			}
		}
		close(dfd);
		dfd = fd;
		p = slash + 1;
	}
	if (dfd >= 0)
		*ret_base = p;
	return dfd;
}

/* Temp name of an object: ".<name>.part" in the object's own directory,
 * so the final rename never crosses a directory (or an NFS export). */
static int temp_name(const char *base, char *buf, size_t size)
{
	int n = snprintf(buf, size, ".%s" TEMP_SUFFIX, base);

	return (n < 0 || (size_t)n >= size) ? -ENAMETOOLONG : 0;
}

/*
 * Opens base in dfd for reading only if it is a regular file: a symlink
 * is not followed, a FIFO or device not waited on.  *ret_st gets its
 * stat.  @return the fd, -ENOENT, or -EIO with err set.
 */
static int open_regular(struct local *l, int dfd, const char *key,
			const char *base, struct stat *ret_st,
			struct drgw_err *err)
{
	struct stat st;
	int fd, e;

	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		e = errno;
		if (e != ENOENT)
			set_err(err, "cannot stat %s/%s: %s", l->root, key,
				strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode))
		goto not_regular;
	fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP)
			goto not_regular;
		if (e != ENOENT)
			set_err(err, "cannot open %s/%s: %s", l->root, key,
				strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		goto not_regular;
	}
	*ret_st = st;
	return fd;
not_regular:
	set_err(err,
		"refusing to read %s/%s: not a regular file (a symlink or other file was put in its place)",
		l->root, key);
	return -EIO;
}

static int fsync_dir(int dfd)
{
	/* Some network file systems refuse fsync on directories; their
	 * rename is synchronous on the server anyway. */
	if (fsync(dfd) < 0 && errno != EINVAL && errno != ENOTSUP)
		return -errno;
	return 0;
}

static int parse_token(struct drgw_put_source *src, uint64_t *ret_off)
{
	char tok[64];
	char *end;
	unsigned long long v;

	if (!src->resume_token || src->resume_token_len >= sizeof(tok) ||
	    src->resume_token_len <= strlen(TOKEN_MAGIC))
		return -EINVAL;
	memcpy(tok, src->resume_token, src->resume_token_len);
	tok[src->resume_token_len] = '\0';
	if (strncmp(tok, TOKEN_MAGIC, strlen(TOKEN_MAGIC)))
		return -EINVAL;
	errno = 0;
	v = strtoull(tok + strlen(TOKEN_MAGIC), &end, 10);
	if (errno || *end || v > src->size)
		return -EINVAL;
	*ret_off = v;
	return 0;
}

static int save_progress(struct drgw_put_source *src, int fd, uint64_t off)
{
	char tok[64];
	int n;

	if (fdatasync(fd) < 0)
		return -errno;
	n = snprintf(tok, sizeof(tok), TOKEN_MAGIC "%llu",
		     (unsigned long long)off);
	return src->save_resume_token(src, tok, (size_t)n);
}

static int local_open(void *inst, const struct drgw_backend_config *cfg,
		      struct drgw_err *err)
{
	struct local *l = inst;
	const char *path;
	size_t len;

	if (strncmp(cfg->url, "local://", 8)) {
		set_err(err, "not a local backend URL: %s", cfg->url);
		return -EINVAL;
	}
	path = cfg->url + 8;
	if (path[0] != '/') {
		set_err(err,
			"local backend URL needs an absolute path: local:///abs/dir, got %s",
			cfg->url);
		return -EINVAL;
	}
	if (cfg->n_options) {
		set_err(err, "local backend has no option '%s'",
			cfg->options[0].key);
		return -EINVAL;
	}
	len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len >= sizeof(l->root) - 256) {
		set_err(err, "local backend path too long");
		return -ENAMETOOLONG;
	}
	memcpy(l->root, path, len);
	l->root[len] = '\0';
	l->read_only = cfg->read_only;
	l->host = cfg->host;
	return 0;
}

static void local_close(void *inst)
{
}

/* How many bytes of src exist: all of them, or what a growing source has
 * so far (waiting for at least want, or the end).  *ret_complete is set
 * when the result is the final size. */
static int available(struct drgw_put_source *src, uint64_t want,
		     uint64_t *ret_size, int *ret_complete,
		     struct drgw_err *err)
{
	int r;

	if (!src->grow) {
		*ret_size = src->size;
		*ret_complete = 1;
		return 0;
	}
	r = src->grow(src, want, ret_size, ret_complete);
	if (r == -ESTALE)
		set_err(err, "object abandoned while it was being written");
	else if (r < 0)
		set_err(err, "upload cancelled");
	return r;
}

static int copy_range(struct drgw_put_source *src, int fd, uint64_t off,
		      char *buf, struct drgw_err *err)
{
	uint64_t next_save = off + RESUME_STEP, size;
	int complete = 0, r;

	for (;;) {
		size_t n;
		ssize_t w;

		r = available(src, off + COPY_BUF, &size, &complete, err);
		if (r < 0)
			return r;
		if (off >= size) {
			if (complete)
				return 0;
			continue;
		}
		n = size - off < COPY_BUF ? (size_t)(size - off) : COPY_BUF;

		if (src->cancelled && src->cancelled(src)) {
			if (!src->grow)
				save_progress(src, fd, off);
			set_err(err, "upload cancelled");
			return -ECANCELED;
		}
		r = src->read_at(src, buf, n, off);
		if (r < 0) {
			set_err(err, "cannot read spool object: %s", strerror(-r));
			return r;
		}
		w = pwrite(fd, buf, n, (off_t)off);
		if (w != (ssize_t)n) {
			int e = w < 0 ? errno : ENOSPC;

			set_err(err, "cannot write to %s: %s", "backend directory",
				strerror(e));
			return -e;
		}
		off += n;
		if (src->progress)
			src->progress(src, off);
		if (!src->grow && off >= next_save && off < src->size) {
			r = save_progress(src, fd, off);
			if (r < 0) {
				set_err(err, "cannot save upload progress: %s",
					strerror(-r));
				return r;
			}
			next_save = off + RESUME_STEP;
		}
	}
}

/* The temp file of an earlier attempt, if it is a regular file with one
 * link that holds the off bytes the token vouches for; else -1. */
static int reuse_temp(int dfd, const char *tmp, uint64_t off)
{
	struct stat st;
	int fd;

	fd = openat(dfd, tmp, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_nlink == 1 && (uint64_t)st.st_size >= off)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* A new temp file, created exclusively after removing whatever held the
 * name, so that nothing planted there is written through. */
static int create_temp(struct local *l, int dfd, const char *tmp,
		       struct drgw_err *err)
{
	int fd = -1, e;

	/* A name that reappears between unlinkat() and openat() is someone
	 * racing us on purpose: give up after a few rounds. */
	for (int i = 0; i < 3; i++) {
		if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT &&
		    errno != EISDIR)
			break;
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					      O_CLOEXEC, 0644);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd >= 0)
		return fd;
	e = errno;
	set_err(err, "cannot create %s/%s: %s", l->root, tmp,
		e == EEXIST ? "the name is taken by something that cannot be removed" :
			      strerror(e));
	return -e;
}

/*
 * Whether base already holds exactly src's bytes: a put() of the same
 * object whose rename happened but whose success the gateway never
 * recorded (a crash in between).  Reads both; any doubt says no.
 */
static int already_stored(struct local *l, int dfd, const char *key,
			  const char *base, struct drgw_put_source *src,
			  char *buf)
{
	size_t half = COPY_BUF / 2;
	struct stat st;
	uint64_t off = 0;
	int fd, same = 1;

	fd = open_regular(l, dfd, key, base, &st, NULL);
	if (fd < 0)
		return 0;
	if ((uint64_t)st.st_size != src->size) {
		close(fd);
		return 0;
	}
	while (same && off < src->size) {
		size_t n = src->size - off < half ? (size_t)(src->size - off) :
						    half;
		ssize_t got = pread(fd, buf, n, (off_t)off);

		same = got == (ssize_t)n &&
		       src->read_at(src, buf + half, n, off) == 0 &&
		       !memcmp(buf, buf + half, n);
		off += n;
	}
	close(fd);
	return same;
}

static int local_put(void *inst, const char *key, struct drgw_put_source *src,
		     struct drgw_err *err)
{
	struct local *l = inst;
	char tmp[NAME_MAX + 1];
	struct stat st, now;
	const char *base;
	uint64_t off = 0;
	char *buf = NULL;
	int dfd, fd = -1, r;

	if (l->read_only) {
		set_err(err, "backend is read-only");
		return -EROFS;
	}
	dfd = open_parent(l, key, 1, &base, err);
	if (dfd < 0)
		return dfd;
	if (temp_name(base, tmp, sizeof(tmp)) < 0) {
		set_err(err, "object key too long: '%s'", key);
		r = -ENAMETOOLONG;
		goto out;
	}
	buf = malloc(COPY_BUF);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	/* Resume only if the temp file really holds the saved prefix. */
	if (!src->grow && parse_token(src, &off) == 0 && off &&
	    (fd = reuse_temp(dfd, tmp, off)) < 0)
		off = 0;
	if (!src->grow && fd < 0 &&
	    already_stored(l, dfd, key, base, src, buf)) {
		if (l->host && l->host->log)
			l->host->log(DRGW_LOG_DEBUG,
				     "local: %s/%s is already stored with the same content",
				     l->root, key);
		r = fsync_dir(dfd);
		goto out;
	}
	if (fd < 0) {
		off = 0;
		fd = create_temp(l, dfd, tmp, err);
	}
	if (fd < 0) {
		r = fd;
		goto out;
	}
	/* Keep only the prefix the token vouches for. */
	if (ftruncate(fd, (off_t)off) < 0) {
		r = -errno;
		set_err(err, "cannot truncate %s/%s: %s", l->root, tmp,
			strerror(-r));
		goto out;
	}
	/* A growing source: record that a temp file exists, so that the
	 * gateway can abort (remove) it should it never be finished. */
	if (src->grow && (r = save_progress(src, fd, 0)) < 0) {
		set_err(err, "cannot save upload state: %s", strerror(-r));
		goto out;
	}
	r = copy_range(src, fd, off, buf, err);
	if (r < 0)
		goto out;
	if (fsync(fd) < 0) {
		r = -errno;
		set_err(err, "cannot fsync %s/%s: %s", l->root, tmp,
			strerror(-r));
		goto out;
	}
	/* Publish only the file we wrote, not what someone swapped in. */
	if (fstat(fd, &st) < 0 ||
	    fstatat(dfd, tmp, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_dev != now.st_dev || st.st_ino != now.st_ino) {
		set_err(err,
			"refusing to publish %s/%s: its temp file %s was replaced while it was written",
			l->root, key, tmp);
		r = -EIO;
		goto out;
	}
	if (renameat(dfd, tmp, dfd, base) < 0) {
		r = -errno;
		set_err(err, "cannot rename %s to %s in %s: %s", tmp, base,
			l->root, strerror(-r));
		goto out;
	}
	r = fsync_dir(dfd);
	if (r < 0)
		set_err(err, "cannot fsync the directory of %s/%s: %s", l->root,
			key, strerror(-r));
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	close(dfd);
	return r;
}

/* Opens key for reading, a regular file only.  -ENOENT, -EHOSTUNREACH
 * when the root is missing, -EIO for something else in its place. */
static int open_object(struct local *l, const char *key, struct stat *ret_st,
		       struct drgw_err *err)
{
	const char *base;
	int dfd, fd;

	dfd = open_parent(l, key, 0, &base, err);
	if (dfd < 0)
		return dfd;
	fd = open_regular(l, dfd, key, base, ret_st, err);
	close(dfd);
	return fd;
}

static int local_get(void *inst, const char *key, uint64_t off, void *buf,
		     size_t len, size_t *ret_len, struct drgw_err *err)
{
	struct local *l = inst;
	size_t done = 0;
	struct stat st;
	int fd, r;

	fd = open_object(l, key, &st, err);
	if (fd < 0) {
		if (fd == -ENOENT)
			set_err(err, "cannot open %s/%s: %s", l->root, key,
				strerror(ENOENT));
		return fd;
	}
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			set_err(err, "cannot read %s/%s: %s", l->root, key,
				strerror(-r));
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	*ret_len = done;
	return 0;
}

static void fill_info(const struct stat *st, struct drgw_object_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = (uint64_t)st->st_size;
	info->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL +
			 st->st_mtim.tv_nsec;
	snprintf(info->etag, sizeof(info->etag), "%llx-%llx",
		 (unsigned long long)st->st_ino,
		 (unsigned long long)info->mtime_ns);
}

static int local_stat(void *inst, const char *key,
		      struct drgw_object_info *ret_info, struct drgw_err *err)
{
	struct local *l = inst;
	const char *base;
	struct stat st;
	int dfd, r;

	dfd = open_parent(l, key, 0, &base, err);
	if (dfd < 0) {
		if (dfd == -ENOENT)
			set_err(err, "cannot stat %s/%s: %s", l->root, key,
				strerror(ENOENT));
		return dfd;
	}
	r = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	close(dfd);
	if (r < 0) {
		set_err(err, "cannot stat %s/%s: %s", l->root, key,
			strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err,
			"refusing to read %s/%s: not a regular file (a symlink or other file was put in its place)",
			l->root, key);
		return -EIO;
	}
	fill_info(&st, ret_info);
	return 0;
}

/* A growable array of keys, for sorting a whole tree before paging. */
struct keylist {
	char **keys;
	size_t n, cap;
};

static int keylist_add(struct keylist *kl, const char *key)
{
	if (kl->n == kl->cap) {
		size_t cap = kl->cap ? kl->cap * 2 : 256;
		char **k = realloc(kl->keys, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		kl->keys = k;
		kl->cap = cap;
	}
	kl->keys[kl->n] = strdup(key);
	if (!kl->keys[kl->n])
		return -ENOMEM;
	kl->n++;
	return 0;
}

static void keylist_clear(struct keylist *kl)
{
	for (size_t i = 0; i < kl->n; i++)
		free(kl->keys[i]);
	free(kl->keys);
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects regular files below the directory dfd (relative name rel)
 * whose key starts with prefix; closes dfd.  Hidden names are temp files
 * or foreign: skipped.  Symlinks are neither listed nor followed. */
static int walk(int dfd, const char *rel, const char *prefix,
		struct keylist *kl, int depth)
{
	size_t pl = strlen(prefix);
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (depth > 16) {
		close(dfd);
		return 0;
	}
	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	while ((de = readdir(d))) {
		char key[PATH_MAX];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(key, sizeof(key), "%s%s%s", rel,
				     *rel ? "/" : "",
				     de->d_name) >= sizeof(key))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			size_t kl_len = strlen(key);
			int sub;

			/* Descend only where prefix and key can still meet. */
			if (strncmp(key, prefix, kl_len < pl ? kl_len : pl))
				continue;
			sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
							       O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				continue; /* removed or replaced meanwhile */
			r = walk(sub, key, prefix, kl, depth + 1);
		} else if (S_ISREG(st.st_mode) && !strncmp(key, prefix, pl)) {
			r = keylist_add(kl, key);
		}
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

static int local_list_range(void *inst, const char *prefix,
			    const char *after, const char *before,
			    const char *page_token, drgw_list_fn fn, void *arg,
			    char *next_token, size_t next_token_size,
			    struct drgw_err *err)
{
	struct local *l = inst;
	struct keylist kl = { 0 };
	size_t i, sent = 0;
	int r;

	next_token[0] = '\0';
	r = open_root(l, err);
	if (r < 0)
		return r;
	r = walk(r, "", prefix ? prefix : "", &kl, 0);
	if (r < 0) {
		set_err(err, "cannot list %s: %s", l->root, strerror(-r));
		keylist_clear(&kl);
		return r;
	}
	if (kl.n) /* keys is NULL for an empty directory */
		qsort(kl.keys, kl.n, sizeof(*kl.keys), cmp_keys);
	for (i = 0; i < kl.n; i++) {
		struct drgw_object_info info;
		struct drgw_err e2;

		/* The page token is the last key sent. */
		if (page_token ? strcmp(kl.keys[i], page_token) <= 0 :
				 after && strcmp(kl.keys[i], after) <= 0)
			continue;
		if (before && strcmp(kl.keys[i], before) >= 0)
			break;
		if (sent == PAGE_KEYS) {
			snprintf(next_token, next_token_size, "%s",
				 kl.keys[i - 1]);
			break;
		}
		if (local_stat(l, kl.keys[i], &info, &e2) < 0)
			continue; /* deleted while listing */
		sent++;
		if (fn(arg, kl.keys[i], &info))
			break;
	}
	keylist_clear(&kl);
	return 0;
}

static int local_list(void *inst, const char *prefix, const char *page_token,
		      drgw_list_fn fn, void *arg, char *next_token,
		      size_t next_token_size, struct drgw_err *err)
{
	return local_list_range(inst, prefix, NULL, NULL, page_token, fn, arg,
				next_token, next_token_size, err);
}

static int local_remove(void *inst, const char *key, struct drgw_err *err)
{
	struct local *l = inst;
	const char *base;
	int dfd, r = 0;

	if (l->read_only) {
		set_err(err, "backend is read-only");
		return -EROFS;
	}
	dfd = open_parent(l, key, 0, &base, err);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	/* unlinkat() removes a symlink itself, never its target. */
	if (unlinkat(dfd, base, 0) < 0 && errno != ENOENT) {
		r = -errno;
		set_err(err, "cannot remove %s/%s: %s", l->root, key,
			strerror(-r));
	}
	close(dfd);
	return r;
}

static int local_abort_put(void *inst, const char *key, const void *token,
			   size_t token_len, struct drgw_err *err)
{
	struct local *l = inst;
	char tmp[NAME_MAX + 1];
	const char *base;
	int dfd, r = 0;

	dfd = open_parent(l, key, 0, &base, err);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	if (temp_name(base, tmp, sizeof(tmp)) == 0 &&
	    unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT) {
		r = -errno;
		set_err(err, "cannot remove %s/%s: %s", l->root, tmp,
			strerror(-r));
	}
	close(dfd);
	return r;
}

static int local_ctl(void *inst, int op, void *arg)
{
	struct local *l = inst;

	switch (op) {
	case DRGW_CTL_DESCRIBE:
		set_err(arg, "directory %s", l->root);
		return 0;
	case DRGW_CTL_PING:
		return root_missing(l, arg);
	default:
		return -ENOTSUP;
	}
}

static const struct drgw_backend_ops local_ops = {
	.abi_version = DRGW_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct drgw_backend_ops),
	.name = "local",
	.caps = DRGW_CAP_RANGE_READ | DRGW_CAP_RESUMABLE_PUT |
		DRGW_CAP_STREAMING_PUT,
	.scheme = "local",
	.instance_size = sizeof(struct local),
	.open = local_open,
	.close = local_close,
	.put = local_put,
	.get = local_get,
	.stat = local_stat,
	.list = local_list,
	.remove = local_remove,
	.abort_put = local_abort_put,
	.ctl = local_ctl,
	.list_range = local_list_range,
};

DRGW_BACKEND_EXPORT const struct drgw_backend_ops *drgw_backend_entry_v1(void)
{
	return &local_ops;
}
