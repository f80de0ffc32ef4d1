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
 * Resume: every RESUME_STEP bytes the temp file is fdatasync()ed and its
 * length saved as the resume token; a resumed put() keeps that prefix.
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

static int key_path(struct local *l, const char *key, char *buf, size_t size,
		    struct drgw_err *err)
{
	if (!key_ok(key)) {
		set_err(err, "invalid object key '%s'", key);
		return -EINVAL;
	}
	if ((size_t)snprintf(buf, size, "%s/%s", l->root, key) >= size) {
		set_err(err, "object key too long: '%s'", key);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Temp path of key: ".<basename>.part" in the object's own directory, so
 * the final rename never crosses a directory (or an NFS export). */
static int temp_path(const char *path, char *buf, size_t size)
{
	const char *base = strrchr(path, '/') + 1;
	int n = snprintf(buf, size, "%.*s.%s.part", (int)(base - path), path,
			 base);

	return (n < 0 || (size_t)n >= size) ? -ENAMETOOLONG : 0;
}

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

/* mkdir -p for the directories between the root and the object. */
static int make_parents(struct local *l, const char *path,
			struct drgw_err *err)
{
	char tmp[PATH_MAX];
	size_t rootlen = strlen(l->root);
	char *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + rootlen + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
			int e = errno;

			set_err(err, "cannot create directory %s: %s", tmp,
				strerror(e));
			return -e;
		}
		*p = '/';
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, r = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Some network file systems refuse fsync on directories; their rename
	 * is synchronous on the server anyway. */
	if (fsync(fd) < 0 && errno != EINVAL && errno != ENOTSUP)
		r = -errno;
	close(fd);
	return r;
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

static int local_put(void *inst, const char *key, struct drgw_put_source *src,
		     struct drgw_err *err)
{
	struct local *l = inst;
	char path[PATH_MAX], tmp[PATH_MAX];
	uint64_t off = 0;
	char *buf = NULL;
	struct stat st;
	int fd = -1, r;

	if (l->read_only) {
		set_err(err, "backend is read-only");
		return -EROFS;
	}
	r = key_path(l, key, path, sizeof(path), err);
	if (r < 0)
		return r;
	r = root_missing(l, err);
	if (r < 0)
		return r;
	if (temp_path(path, tmp, sizeof(tmp)) < 0) {
		set_err(err, "object key too long: '%s'", key);
		return -ENAMETOOLONG;
	}
	r = make_parents(l, path, err);
	if (r < 0)
		return r;

	fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		set_err(err, "cannot create %s: %s", tmp, strerror(-r));
		return r;
	}
	/* Resume only if the temp file really holds the saved prefix. */
	if (src->grow || parse_token(src, &off) < 0 || fstat(fd, &st) < 0 ||
	    (uint64_t)st.st_size < off)
		off = 0;
	if (ftruncate(fd, (off_t)off) < 0) {
		r = -errno;
		set_err(err, "cannot truncate %s: %s", tmp, strerror(-r));
		goto out;
	}
	buf = malloc(COPY_BUF);
	if (!buf) {
		r = -ENOMEM;
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
		set_err(err, "cannot fsync %s: %s", tmp, strerror(-r));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		set_err(err, "cannot rename %s to %s: %s", tmp, path,
			strerror(-r));
		goto out;
	}
	r = fsync_dir_of(path);
	if (r < 0)
		set_err(err, "cannot fsync directory of %s: %s", path,
			strerror(-r));
out:
	free(buf);
	close(fd);
	return r;
}

static int local_get(void *inst, const char *key, uint64_t off, void *buf,
		     size_t len, size_t *ret_len, struct drgw_err *err)
{
	struct local *l = inst;
	char path[PATH_MAX];
	size_t done = 0;
	int fd, r;

	r = key_path(l, key, path, sizeof(path), err);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			r = root_missing(l, err) ?: -ENOENT;
		if (r != -EHOSTUNREACH)
			set_err(err, "cannot open %s: %s", path, strerror(errno));
		return r;
	}
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			set_err(err, "cannot read %s: %s", path, strerror(-r));
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

static int local_stat(void *inst, const char *key,
		      struct drgw_object_info *ret_info, struct drgw_err *err)
{
	struct local *l = inst;
	char path[PATH_MAX];
	struct stat st;
	int r;

	r = key_path(l, key, path, sizeof(path), err);
	if (r < 0)
		return r;
	if (stat(path, &st) < 0) {
		r = -errno;
		if (r == -ENOENT && root_missing(l, err))
			return -EHOSTUNREACH;
		set_err(err, "cannot stat %s: %s", path, strerror(-r));
		return r;
	}
	memset(ret_info, 0, sizeof(*ret_info));
	ret_info->size = (uint64_t)st.st_size;
	ret_info->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL +
			     st.st_mtim.tv_nsec;
	snprintf(ret_info->etag, sizeof(ret_info->etag), "%llx-%llx",
		 (unsigned long long)st.st_ino,
		 (unsigned long long)ret_info->mtime_ns);
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

/* Collects regular files below dir (relative name rel) whose key starts
 * with prefix.  Hidden names are temp files or foreign; skip them. */
static int walk(const char *dir, const char *rel, const char *prefix,
		struct keylist *kl, int depth)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (depth > 16)
		return 0;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT && depth > 0 ? 0 : -errno;
	while ((de = readdir(d))) {
		char path[PATH_MAX], key[PATH_MAX];
		struct stat st;
		size_t pl;

		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
				     de->d_name) >= sizeof(path) ||
		    (size_t)snprintf(key, sizeof(key), "%s%s%s", rel,
				     *rel ? "/" : "",
				     de->d_name) >= sizeof(key))
			continue;
		if (lstat(path, &st) < 0)
			continue;
		pl = strlen(prefix);
		if (S_ISDIR(st.st_mode)) {
			size_t kl_len = strlen(key);
			/* Descend only where prefix and key can still meet. */
			if (strncmp(key, prefix, kl_len < pl ? kl_len : pl))
				continue;
			r = walk(path, key, prefix, kl, depth + 1);
		} else if (S_ISREG(st.st_mode) && !strncmp(key, prefix, pl)) {
			r = keylist_add(kl, key);
		}
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

static int local_list(void *inst, const char *prefix, const char *page_token,
		      drgw_list_fn fn, void *arg, char *next_token,
		      size_t next_token_size, struct drgw_err *err)
{
	struct local *l = inst;
	struct keylist kl = { 0 };
	size_t i, sent = 0;
	int r;

	next_token[0] = '\0';
	r = root_missing(l, err);
	if (r < 0)
		return r;
	r = walk(l->root, "", prefix ? prefix : "", &kl, 0);
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

		if (page_token && strcmp(kl.keys[i], page_token) <= 0)
			continue;
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

static int local_remove(void *inst, const char *key, struct drgw_err *err)
{
	struct local *l = inst;
	char path[PATH_MAX];
	int r;

	if (l->read_only) {
		set_err(err, "backend is read-only");
		return -EROFS;
	}
	r = key_path(l, key, path, sizeof(path), err);
	if (r < 0)
		return r;
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		set_err(err, "cannot remove %s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}

static int local_abort_put(void *inst, const char *key, const void *token,
			   size_t token_len, struct drgw_err *err)
{
	struct local *l = inst;
	char path[PATH_MAX], tmp[PATH_MAX];
	int r;

	r = key_path(l, key, path, sizeof(path), err);
	if (r < 0)
		return r;
	if (temp_path(path, tmp, sizeof(tmp)) == 0 && unlink(tmp) < 0 &&
	    errno != ENOENT) {
		r = -errno;
		set_err(err, "cannot remove %s: %s", tmp, strerror(-r));
		return r;
	}
	return 0;
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
};

DRGW_BACKEND_EXPORT const struct drgw_backend_ops *drgw_backend_entry_v1(void)
{
	return &local_ops;
}
