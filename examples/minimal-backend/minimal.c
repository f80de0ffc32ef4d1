/* SPDX-License-Identifier: MIT */
/**
 * @file minimal.c
 * A minimal drgw backend, built outside the drgw tree against the installed
 * ABI header alone:
 *
 *     cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags drgw) \
 *        -o drgw-minimal.so minimal.c
 *
 * It stores each object as a file under the directory of its URL,
 * minimal:///abs/dir, and implements the five methods a backend needs:
 * put, get, stat, list and remove.  It leaves out what a real backend
 * should do (see plugins/local/local.c): no fsync, no resume tokens, no
 * atomic publish, no key validation beyond rejecting "..".  The optional
 * methods are left out too: without remove_many() drgw prune calls
 * remove() once per key, and without ctl(DRGW_CTL_RETENTION) and the lock
 * fields of struct drgw_object_info it takes nothing here to be locked.
 * Copy it as a starting point, not as a storage layer.
 */
#define DRGW_BACKEND_ABI 1
#include <drgw/backend.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct minimal {
	char dir[4096];
};

static int path_of(struct minimal *m, const char *key, char *buf, size_t size,
		   struct drgw_err *err)
{
	if (strstr(key, "..") || strchr(key, '/')) {
		snprintf(err->msg, sizeof(err->msg), "unsupported key %s", key);
		return -EINVAL;
	}
	snprintf(buf, size, "%s/%s", m->dir, key);
	return 0;
}

static int m_open(void *inst, const struct drgw_backend_config *cfg,
		  struct drgw_err *err)
{
	struct minimal *m = inst;

	if (strncmp(cfg->url, "minimal:///", 11) || cfg->n_options) {
		snprintf(err->msg, sizeof(err->msg),
			 "expected minimal:///abs/dir without options");
		return -EINVAL;
	}
	snprintf(m->dir, sizeof(m->dir), "%s", cfg->url + 10);
	return 0;
}

static void m_close(void *inst)
{
}

static int m_put(void *inst, const char *key, struct drgw_put_source *src,
		 struct drgw_err *err)
{
	char path[4200], buf[65536];
	uint64_t off = 0;
	FILE *f;
	int r = 0;

	if ((r = path_of(inst, key, path, sizeof(path), err)) < 0)
		return r;
	f = fopen(path, "we");
	if (!f) {
		snprintf(err->msg, sizeof(err->msg), "cannot create %.400s", path);
		return -errno;
	}
	while (r == 0 && off < src->size) {
		size_t n = src->size - off < sizeof(buf) ? src->size - off : sizeof(buf);

		r = src->read_at(src, buf, n, off);
		if (r == 0 && fwrite(buf, 1, n, f) != n)
			r = -EIO;
		off += n;
	}
	if (fclose(f) != 0 && r == 0)
		r = -EIO;
	if (r < 0)
		snprintf(err->msg, sizeof(err->msg), "cannot write %.400s", path);
	return r;
}

static int m_get(void *inst, const char *key, uint64_t off, void *buf,
		 size_t len, size_t *ret_len, struct drgw_err *err)
{
	char path[4200];
	FILE *f;
	int r;

	if ((r = path_of(inst, key, path, sizeof(path), err)) < 0)
		return r;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (fseeko(f, (off_t)off, SEEK_SET) != 0) {
		fclose(f);
		return -EIO;
	}
	*ret_len = fread(buf, 1, len, f);
	r = ferror(f) ? -EIO : 0;
	fclose(f);
	return r;
}

static int m_stat(void *inst, const char *key, struct drgw_object_info *ret,
		  struct drgw_err *err)
{
	char path[4200];
	struct stat st;
	int r;

	if ((r = path_of(inst, key, path, sizeof(path), err)) < 0)
		return r;
	if (stat(path, &st) < 0)
		return -errno;
	memset(ret, 0, sizeof(*ret));
	ret->size = (uint64_t)st.st_size;
	ret->mtime_ns = (int64_t)st.st_mtime * 1000000000;
	return 0;
}

/* One page holds everything: a directory of backups is small. */
static int m_list(void *inst, const char *prefix, const char *page_token,
		  drgw_list_fn fn, void *arg, char *next_token,
		  size_t next_token_size, struct drgw_err *err)
{
	struct minimal *m = inst;
	struct dirent *de;
	DIR *d;

	next_token[0] = '\0';
	d = opendir(m->dir);
	if (!d) {
		snprintf(err->msg, sizeof(err->msg), "cannot list %.400s", m->dir);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct drgw_object_info info;
		struct drgw_err e2;

		if (de->d_name[0] == '.' || strncmp(de->d_name, prefix, strlen(prefix)) ||
		    m_stat(m, de->d_name, &info, &e2) < 0)
			continue;
		if (fn(arg, de->d_name, &info))
			break;
	}
	closedir(d);
	return 0;
}

static int m_remove(void *inst, const char *key, struct drgw_err *err)
{
	char path[4200];
	int r;

	if ((r = path_of(inst, key, path, sizeof(path), err)) < 0)
		return r;
	return remove(path) < 0 && errno != ENOENT ? -errno : 0;
}

static const struct drgw_backend_ops minimal_ops = {
	.abi_version = DRGW_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct drgw_backend_ops),
	.name = "minimal",
	.caps = DRGW_CAP_RANGE_READ,
	.scheme = "minimal",
	.instance_size = sizeof(struct minimal),
	.open = m_open,
	.close = m_close,
	.put = m_put,
	.get = m_get,
	.stat = m_stat,
	.list = m_list,
	.remove = m_remove,
};

DRGW_BACKEND_EXPORT const struct drgw_backend_ops *drgw_backend_entry_v1(void)
{
	return &minimal_ops;
}
