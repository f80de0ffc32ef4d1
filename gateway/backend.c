/* SPDX-License-Identifier: MIT */
/*
 * Plugin loader; see backend.h.  Plugins are loaded only from the
 * configured plugin directory (never from an environment variable), with
 * RTLD_NOW | RTLD_LOCAL so a missing symbol fails at load time and two
 * plugins cannot see each other's symbols.
 */
#include <dlfcn.h>
#include <errno.h>
#include <openssl/evp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend.h"
#include "log.h"

#define INSTANCE_MAX (1u << 20)

/* The lock fields took reserved slots: the struct keeps its size. */
_Static_assert(sizeof(struct drgw_object_info) == 8 + 8 + 128 + 32,
	       "struct drgw_object_info changed size: that breaks the ABI");

static void host_log(enum drgw_log_level level, const char *fmt, ...)
	DRGW_PRINTF(2, 3);
static void host_log(enum drgw_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!drgw_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	drgw_log(level, "%s", msg);
}

/* The deadline of the plugin call this thread is in (0: none).  The core
 * is a static library built as PIC; initial-exec keeps the access a plain
 * offset from the thread pointer instead of a call into ld.so. */
static _Thread_local int64_t call_deadline_ns
	__attribute__((tls_model("initial-exec")));

static int64_t host_deadline_ns(void)
{
	return call_deadline_ns;
}

int64_t drgw_backend_set_deadline(int64_t deadline_ns)
{
	int64_t old = call_deadline_ns;

	call_deadline_ns = deadline_ns;
	return old;
}

static const struct drgw_host host = {
	.abi_version = DRGW_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct drgw_host),
	.log = host_log,
	.deadline_ns = host_deadline_ns,
};

/* <dir>/drgw-<scheme>.so, else <dir>/<scheme>/drgw-<scheme>.so (the
 * build tree's layout). */
static int find_plugin(const char *dir, const char *scheme, char *path,
		       size_t size, struct drgw_err *err)
{
	struct stat st;

	snprintf(path, size, "%s/drgw-%s.so", dir, scheme);
	if (stat(path, &st) < 0) {
		snprintf(path, size, "%s/%s/drgw-%s.so", dir, scheme, scheme);
		if (stat(path, &st) < 0) {
			drgw_err_set(err,
				     "no plugin for %s:// URLs in %s (looked for drgw-%s.so); check --plugin-dir",
				     scheme, dir, scheme);
			return -ENOENT;
		}
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 022)) {
		drgw_err_set(err,
			     "refusing to load plugin %s: not a regular file or writable by group/others",
			     path);
		return -EPERM;
	}
	return 0;
}

static int validate_ops(const struct drgw_backend_ops *ops, const char *scheme,
			const char *path, struct drgw_err *err)
{
	if (!ops || ops->abi_version < 1 ||
	    ops->abi_version > DRGW_BACKEND_ABI_VERSION) {
		drgw_err_set(err, "plugin %s has unsupported ABI version %u",
			     path, ops ? ops->abi_version : 0);
		return -EPROTONOSUPPORT;
	}
	if (ops->struct_size < offsetof(struct drgw_backend_ops, ctl) ||
	    !ops->open || !ops->close || !ops->scheme ||
	    strcmp(ops->scheme, scheme) || !ops->name ||
	    strlen(ops->name) > 64 || ops->instance_size > INSTANCE_MAX) {
		drgw_err_set(err, "plugin %s has an invalid ops table", path);
		return -EINVAL;
	}
	return 0;
}

/* A plugin's message may quote a server (an S3 error Code, a credentials
 * endpoint's answer): whatever it holds, it leaves here as one line. */
static void one_line(struct drgw_err *err)
{
	err->msg[sizeof(err->msg) - 1] = '\0';
	for (char *p = err->msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

int drgw_backend_load(const char *plugin_dir, const struct drgw_backend_conf *bc,
		      bool read_only, struct drgw_backend **ret,
		      struct drgw_err *err)
{
	const struct drgw_backend_ops *(*entry)(void);
	const struct drgw_backend_ops *ops;
	struct drgw_backend_config bcfg = { 0 };
	struct drgw_backend *b;
	struct drgw_err e2 = { 0 };
	char path[PATH_MAX];
	size_t n;
	int r;

	r = find_plugin(plugin_dir, bc->scheme, path, sizeof(path), err);
	if (r < 0)
		return r;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	drgw_strlcpy(b->name, bc->name, sizeof(b->name));
	b->url = strdup(bc->url);
	b->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!b->url || !b->dl) {
		drgw_err_set(err, "cannot load plugin %s: %s", path,
			     b->dl ? "out of memory" : dlerror());
		r = -ELIBBAD;
		goto fail;
	}
	*(void **)&entry = dlsym(b->dl, DRGW_BACKEND_ENTRY_SYMBOL);
	if (!entry) {
		drgw_err_set(err, "plugin %s does not export %s", path,
			     DRGW_BACKEND_ENTRY_SYMBOL);
		r = -ELIBBAD;
		goto fail;
	}
	ops = entry();
	r = validate_ops(ops, bc->scheme, path, err);
	if (r < 0)
		goto fail;
	/* Copy what the plugin has; newer fields stay NULL. */
	n = ops->struct_size < sizeof(b->ops) ? ops->struct_size : sizeof(b->ops);
	memcpy(&b->ops, ops, n);
	b->inst = calloc(1, b->ops.instance_size ? b->ops.instance_size : 1);
	if (!b->inst) {
		r = -ENOMEM;
		goto fail;
	}
	bcfg.struct_size = sizeof(bcfg);
	bcfg.name = b->name;
	bcfg.url = b->url;
	bcfg.options = bc->options;
	bcfg.n_options = bc->n_options;
	bcfg.read_only = read_only;
	bcfg.host = &host;
	r = b->ops.open(b->inst, &bcfg, &e2);
	one_line(&e2);
	if (r < 0) {
		drgw_err_set(err, "backend %s: %s", b->name,
			     e2.msg[0] ? e2.msg : strerror(-r));
		free(b->inst);
		b->inst = NULL;
		goto fail;
	}
	memset(&e2, 0, sizeof(e2));
	if (b->ops.ctl && b->ops.ctl(b->inst, DRGW_CTL_DESCRIBE, &e2) == 0 &&
	    e2.msg[0])
		drgw_strlcpy(b->description, e2.msg, sizeof(b->description));
	else
		drgw_strlcpy(b->description, b->url, sizeof(b->description));
	log_debug("loaded plugin %s (%s, abi %u, caps 0x%llx) for backend %s",
		  path, b->ops.name, b->ops.abi_version,
		  (unsigned long long)b->ops.caps, b->name);
	*ret = b;
	return 0;
fail:
	drgw_backend_free(b);
	return r;
}

struct drgw_backend *drgw_backend_free(struct drgw_backend *b)
{
	if (!b)
		return NULL;
	if (b->inst)
		b->ops.close(b->inst);
	free(b->inst);
	/* The module stays loaded: plugins keep per-thread state (curl
	 * handles) whose destructors run at thread exit, which must not find
	 * the code gone; and a plugin is loaded once per process anyway. */
	free(b->url);
	free(b);
	return NULL;
}

/* Makes sure a failure carries a message. */
static int check(struct drgw_backend *b, int r, struct drgw_err *err,
		 const char *what)
{
	if (r < 0 && err && !err->msg[0])
		drgw_err_set(err, "%s failed: %s", what, strerror(-r));
	else if (r < 0 && err)
		one_line(err);
	return r;
}

static void no_progress(struct drgw_put_source *src, uint64_t done)
{
	(void)src, (void)done;
}

static int never_cancelled(struct drgw_put_source *src)
{
	(void)src;
	return 0;
}

int drgw_backend_put(struct drgw_backend *b, const char *key,
		     struct drgw_put_source *src, struct drgw_err *err)
{
	if (!b->ops.put)
		return -ENOSYS;
	/* The ABI promises plugins these callbacks; callers may leave out
	 * the ones they have no use for. */
	if (!src->progress)
		src->progress = no_progress;
	if (!src->cancelled)
		src->cancelled = never_cancelled;
	return check(b, b->ops.put(b->inst, key, src, err), err, "upload");
}

int drgw_backend_read(struct drgw_backend *b, const char *key, uint64_t off,
		      void *buf, size_t len, struct drgw_err *err)
{
	size_t got = 0;
	int r;

	if (!b->ops.get)
		return -ENOSYS;
	r = check(b, b->ops.get(b->inst, key, off, buf, len, &got, err), err,
		  "read");
	if (r == 0 && got != len) {
		drgw_err_set(err,
			     "object %s is shorter than expected (got %zu of %zu bytes at offset %llu): truncated",
			     key, got, len, (unsigned long long)off);
		return -EIO;
	}
	return r;
}

int drgw_backend_hash(struct drgw_backend *b, const char *key, uint64_t size,
		      uint8_t ret_sha256[32], struct drgw_err *err)
{
	const size_t step = 4u << 20;
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	uint8_t *buf = malloc(step);
	int r = sha && buf ? 0 : -ENOMEM;

	if (r == 0)
		EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
	for (uint64_t off = 0; r == 0 && off < size; off += step) {
		size_t n = size - off < step ? (size_t)(size - off) : step;

		r = drgw_backend_read(b, key, off, buf, n, err);
		if (r == 0)
			EVP_DigestUpdate(sha, buf, n);
	}
	if (r == 0)
		EVP_DigestFinal_ex(sha, ret_sha256, NULL);
	EVP_MD_CTX_free(sha);
	free(buf);
	return r;
}

int drgw_backend_stat(struct drgw_backend *b, const char *key,
		      struct drgw_object_info *ret, struct drgw_err *err)
{
	if (!b->ops.stat)
		return -ENOSYS;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = check(b, b->ops.stat(b->inst, key, ret, err), err, "stat");
	drgw_backend_clean_info(b, ret);
	return r;
}

bool drgw_backend_knows_locks(const struct drgw_backend *b)
{
	return b->ops.struct_size >=
	       offsetof(struct drgw_backend_ops, remove_many) +
		       sizeof(b->ops.remove_many);
}

void drgw_backend_clean_info(const struct drgw_backend *b,
			     struct drgw_object_info *info)
{
	/* Built against a header where these were reserved: whatever is
	 * there means nothing. */
	if (!drgw_backend_knows_locks(b)) {
		info->retain_until_ns = 0;
		info->lock_flags = 0;
	}
}

/* Keeps a ranged listing inside its range whatever the plugin sends. */
struct range_filter {
	const char *after, *before;
	drgw_list_fn fn;
	void *arg;
	bool stopped;
};

static int filter_key(void *arg, const char *key,
		      const struct drgw_object_info *info)
{
	struct range_filter *f = arg;

	if (f->after && strcmp(key, f->after) <= 0)
		return 0;
	if ((f->before && strcmp(key, f->before) >= 0) ||
	    f->fn(f->arg, key, info)) {
		f->stopped = true;
		return 1;
	}
	return 0;
}

static int list_pages(struct drgw_backend *b, const char *prefix,
		      const char *after, const char *before, drgw_list_fn fn,
		      void *arg, struct drgw_err *err)
{
	struct range_filter rf = { after, before, fn, arg, false };
	bool ranged = after || before;
	char *token = NULL, *next = NULL;
	const size_t token_size = 8192;
	int r = 0;

	if (ranged ? !b->ops.list_range : !b->ops.list)
		return -ENOSYS;
	token = calloc(1, token_size);
	next = calloc(1, token_size);
	if (!token || !next) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		const char *t = token[0] ? token : NULL;
		char *swap;

		next[0] = '\0';
		r = ranged ? b->ops.list_range(b->inst, prefix, after, before, t,
					       filter_key, &rf, next,
					       token_size, err) :
			     b->ops.list(b->inst, prefix, t, fn, arg, next,
					 token_size, err);
		r = check(b, r, err, "list");
		if (r < 0 || !next[0] || rf.stopped)
			break;
		if (!strcmp(next, token)) {
			drgw_err_set(err, "backend returned the same page token twice");
			r = -EIO;
			break;
		}
		swap = token;
		token = next;
		next = swap;
	}
out:
	free(token);
	free(next);
	return r;
}

int drgw_backend_list_all(struct drgw_backend *b, const char *prefix,
			  drgw_list_fn fn, void *arg, struct drgw_err *err)
{
	return list_pages(b, prefix, NULL, NULL, fn, arg, err);
}

int drgw_backend_list_range(struct drgw_backend *b, const char *prefix,
			    const char *after, const char *before,
			    drgw_list_fn fn, void *arg, struct drgw_err *err)
{
	if (!after && !before)
		after = ""; /* still the ranged method: "" sorts first */
	return list_pages(b, prefix, after, before, fn, arg, err);
}

bool drgw_backend_lists_ranges(const struct drgw_backend *b)
{
	return b->ops.list_range != NULL;
}

int drgw_backend_remove(struct drgw_backend *b, const char *key,
			struct drgw_err *err)
{
	if (!b->ops.remove)
		return -ENOSYS;
	return check(b, b->ops.remove(b->inst, key, err), err, "remove");
}

int drgw_backend_remove_many(struct drgw_backend *b, const char *const *keys,
			     size_t n, int *results, struct drgw_err *err)
{
	int first = 0;

	if (!b->ops.remove_many && !b->ops.remove)
		return -ENOSYS;
	for (size_t i = 0; i < n;) {
		size_t m = n - i < DRGW_REMOVE_BATCH ? n - i : DRGW_REMOVE_BATCH;
		struct drgw_err e = { 0 };
		int r;

		if (!b->ops.remove_many) {
			/* A plugin of the first ABI 1 headers: one by one. */
			m = 1;
			r = b->ops.remove(b->inst, keys[i], &e);
			results[i] = r < 0 ? r : 0;
		} else {
			for (size_t k = 0; k < m; k++)
				results[i + k] = -EIO;
			r = b->ops.remove_many(b->inst, keys + i, m, results + i,
					       &e);
			/* 0 means every key is gone, whatever results say. */
			for (size_t k = 0; r == 0 && k < m; k++)
				results[i + k] = 0;
		}
		if (r < 0 && !first) {
			first = check(b, r, &e, "delete");
			if (err)
				*err = e;
		}
		i += m;
	}
	return first;
}

int drgw_backend_retention(struct drgw_backend *b, struct drgw_retention *ret,
			   struct drgw_err *err)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->struct_size = sizeof(*ret);
	if (!b->ops.ctl)
		return -ENOTSUP;
	r = b->ops.ctl(b->inst, DRGW_CTL_RETENTION, ret);
	if (r == -ENOSYS || r == -EOPNOTSUPP)
		r = -ENOTSUP;
	ret->source[sizeof(ret->source) - 1] = '\0';
	if (r < 0 && r != -ENOTSUP) {
		drgw_err_set(err, "cannot read the retention settings: %s",
			     ret->source[0] ? ret->source : strerror(-r));
		if (err)
			one_line(err);
	}
	return r;
}

int drgw_backend_abort_put(struct drgw_backend *b, const char *key,
			   const void *token, size_t len, struct drgw_err *err)
{
	if (!b->ops.abort_put)
		return 0;
	return check(b, b->ops.abort_put(b->inst, key, token, len, err), err,
		     "abort upload");
}

int drgw_backend_ping(struct drgw_backend *b, struct drgw_err *err)
{
	int r;

	if (!b->ops.ctl)
		return 0;
	r = b->ops.ctl(b->inst, DRGW_CTL_PING, err);
	return r == -ENOTSUP || r == -ENOSYS ? 0 : check(b, r, err, "ping");
}

bool drgw_backend_error_transient(int r)
{
	switch (r) {
	case -EAGAIN:
	case -ETIMEDOUT:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -ECONNABORTED:
	case -EBUSY:
	case -EINTR:
		return true;
	default:
		return false;
	}
}
