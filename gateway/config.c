/* SPDX-License-Identifier: MIT */
/*
 * Configuration; see config.h.
 */
#include <errno.h>
#include <fnmatch.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *const default_excludes[] = {
	"*-journal", "*-wal", "*-shm", "*.tmp", ".*", "*~", "*.swp",
};

void drgw_config_init(struct drgw_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->settle_ns = 2 * NSEC_PER_SEC;
	cfg->write_through_below = 1ULL << 30;
	cfg->compression_level = 1;
	cfg->incremental = true;
	cfg->incremental_max_chain = 7;
	cfg->incremental_max_changed = 50;
	cfg->incremental_max_read = 125;
	cfg->incremental_min_size = 1u << 20;
	cfg->chunk_size = 1u << 20;
	cfg->check_sqlite = DRGW_SQLCHECK_QUICK;
	cfg->check_sqlite_timeout_ns = 600 * NSEC_PER_SEC;
	cfg->streaming = true;
	cfg->passthrough = true;
	cfg->upload_workers = 4;
	cfg->backend_concurrency = 2;
	cfg->retry_min_ns = 1 * NSEC_PER_SEC;
	cfg->retry_max_ns = 300 * NSEC_PER_SEC;
	cfg->drain_timeout_ns = 60 * NSEC_PER_SEC;
	cfg->index_interval_ns = 300 * NSEC_PER_SEC;
	cfg->read_cache_bytes = 32u << 20;
	cfg->read_deadline_ns = 30 * NSEC_PER_SEC;
	cfg->readahead_chunks = 16;
	cfg->read_request_bytes = 8u << 20;
	cfg->fetch_threads = 4;
	cfg->log_level = DRGW_LOG_INFO;
	cfg->log_format = DRGW_LOG_LOGFMT;
	cfg->allow_other = -1;
	cfg->view_uid = -1;
	cfg->view_gid = -1;
	cfg->view_umask = 077;
}

static void backend_conf_release(struct drgw_backend_conf *b)
{
	for (size_t i = 0; i < b->n_options; i++) {
		free((char *)b->options[i].key);
		free((char *)b->options[i].value);
	}
	free(b->options);
	free(b->url);
	memset(b, 0, sizeof(*b));
}

void drgw_config_release(struct drgw_config *cfg)
{
	free(cfg->cache_dir);
	for (size_t i = 0; i < cfg->n_key_files; i++)
		free(cfg->key_files[i]);
	for (size_t i = 0; i < cfg->n_recipients; i++)
		free(cfg->recipients[i]);
	for (size_t i = 0; i < cfg->n_recipient_files; i++)
		free(cfg->recipient_files[i]);
	for (size_t i = 0; i < cfg->n_identity_files; i++)
		free(cfg->identity_files[i]);
	free(cfg->repository);
	free(cfg->plugin_dir);
	for (size_t i = 0; i < cfg->n_backends; i++)
		backend_conf_release(&cfg->backends[i]);
	for (size_t i = 0; i < cfg->n_excludes; i++)
		free(cfg->excludes[i]);
	free(cfg->log_file);
	free(cfg->metrics_listen);
	memset(cfg, 0, sizeof(*cfg));
}

static int set_string(char **field, const char *value)
{
	char *s = strdup(value);

	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

/* Settings that take a value of a simple type, by name. */
enum kind { K_DURATION, K_SIZE, K_UINT, K_INT, K_BOOL };

struct simple {
	const char *name;
	enum kind kind;
	size_t offset;
	int64_t min, max;
};

#define FIELD(f) offsetof(struct drgw_config, f)

static const struct simple simple_settings[] = {
	{ "settle-delay", K_DURATION, FIELD(settle_ns), 0, 3600 * NSEC_PER_SEC },
	{ "write-through-below", K_SIZE, FIELD(write_through_below), 0,
	  INT64_MAX },
	{ "compression-level", K_INT, FIELD(compression_level), -5, 19 },
	{ "incremental", K_BOOL, FIELD(incremental), 0, 1 },
	{ "incremental-max-chain", K_UINT, FIELD(incremental_max_chain), 1, 60 },
	{ "incremental-max-changed", K_UINT, FIELD(incremental_max_changed), 1,
	  100 },
	{ "incremental-max-read", K_UINT, FIELD(incremental_max_read), 100,
	  10000 },
	{ "incremental-min-size", K_SIZE, FIELD(incremental_min_size), 0,
	  INT64_MAX },
	{ "chunk-size", K_SIZE, FIELD(chunk_size), 64 << 10, 16 << 20 },
	{ "encode-threads", K_UINT, FIELD(encode_threads), 0, 64 },
	{ "check-sqlite-timeout", K_DURATION, FIELD(check_sqlite_timeout_ns), 0,
	  86400 * NSEC_PER_SEC },
	{ "upload-workers", K_UINT, FIELD(upload_workers), 1, 64 },
	{ "backend-concurrency", K_UINT, FIELD(backend_concurrency), 1, 64 },
	{ "retry-min", K_DURATION, FIELD(retry_min_ns), 0, 86400 * NSEC_PER_SEC },
	{ "retry-max", K_DURATION, FIELD(retry_max_ns), 0, 86400 * NSEC_PER_SEC },
	{ "drain-timeout", K_DURATION, FIELD(drain_timeout_ns), 0,
	  86400 * NSEC_PER_SEC },
	{ "index-interval", K_DURATION, FIELD(index_interval_ns), 0,
	  86400 * NSEC_PER_SEC },
	{ "read-cache", K_SIZE, FIELD(read_cache_bytes), 4 << 20, 1LL << 40 },
	{ "read-deadline", K_DURATION, FIELD(read_deadline_ns), 0,
	  3600 * NSEC_PER_SEC },
	{ "readahead", K_UINT, FIELD(readahead_chunks), 0, 64 },
	{ "read-request-size", K_SIZE, FIELD(read_request_bytes), 0, 1LL << 30 },
	{ "fetch-threads", K_UINT, FIELD(fetch_threads), 1, 64 },
	{ "allow-other", K_BOOL, FIELD(allow_other), 0, 1 },
	{ "max-age", K_DURATION, FIELD(max_age_ns), 0, INT64_MAX },
	{ "allow-older", K_BOOL, FIELD(allow_older), 0, 1 },
	{ "uid", K_INT, FIELD(view_uid), 0, INT32_MAX },
	{ "gid", K_INT, FIELD(view_gid), 0, INT32_MAX },
	{ "streaming", K_BOOL, FIELD(streaming), 0, 1 },
	{ "passthrough", K_BOOL, FIELD(passthrough), 0, 1 },
};

static int set_simple(struct drgw_config *cfg, const struct simple *s,
		      const char *value, struct drgw_err *err)
{
	char *field = (char *)cfg + s->offset;
	int64_t v = 0;
	uint64_t u;
	bool b;
	int r;

	switch (s->kind) {
	case K_DURATION:
		r = drgw_parse_duration(value, &v);
		break;
	case K_SIZE:
		r = drgw_parse_size(value, &u);
		v = u > INT64_MAX ? INT64_MAX : (int64_t)u;
		break;
	case K_UINT:
		r = drgw_parse_u64(value, &u);
		v = u > INT64_MAX ? INT64_MAX : (int64_t)u;
		break;
	case K_INT:
		if (value[0] == '-') {
			r = drgw_parse_u64(value + 1, &u);
			v = u > INT32_MAX ? INT64_MIN : -(int64_t)u;
		} else {
			r = drgw_parse_u64(value, &u);
			v = u > INT32_MAX ? INT64_MAX : (int64_t)u;
		}
		break;
	case K_BOOL:
		r = drgw_parse_bool(value, &b);
		v = b;
		break;
	default:
		r = -EINVAL;
	}
	if (r < 0 || v < s->min || v > s->max) {
		drgw_err_set(err, "invalid value '%s' for %s", value, s->name);
		return -EINVAL;
	}
	if (!strcmp(s->name, "chunk-size") && (v & (v - 1))) {
		drgw_err_set(err, "chunk-size must be a power of two, got '%s'",
			     value);
		return -EINVAL;
	}
	switch (s->kind) {
	case K_DURATION:
		*(int64_t *)field = v;
		break;
	case K_SIZE:
		if (!strcmp(s->name, "chunk-size"))
			*(uint32_t *)field = (uint32_t)v;
		else
			*(uint64_t *)field = (uint64_t)v;
		break;
	case K_UINT:
		*(unsigned *)field = (unsigned)v;
		break;
	case K_INT:
		*(int *)field = (int)v;
		break;
	case K_BOOL:
		/* allow-other is the one tri-state (int, -1 unset). */
		if (!strcmp(s->name, "allow-other"))
			*(int *)field = v != 0;
		else
			*(bool *)field = v != 0;
		break;
	}
	return 0;
}

bool drgw_config_allow_other(const struct drgw_config *cfg, bool restore_view)
{
	return cfg->allow_other < 0 ? !restore_view : cfg->allow_other != 0;
}

/* "077", "0027": octal permission bits a umask may hold. */
static int set_umask(struct drgw_config *cfg, const char *value,
		     struct drgw_err *err)
{
	unsigned m = 0;
	size_t i;

	for (i = 0; value[i] >= '0' && value[i] <= '7' && i < 4; i++)
		m = m * 8 + (unsigned)(value[i] - '0');
	if (i == 0 || value[i] || m > 0777) {
		drgw_err_set(err, "invalid umask '%s' (octal, e.g. 077 or 022)",
			     value);
		return -EINVAL;
	}
	cfg->view_umask = m;
	return 0;
}

/* Appends value to a repeatable setting. */
static int add_string(char **list, size_t *n, const char *name,
		      const char *value, struct drgw_err *err)
{
	if (*n == DRGW_KEYRING_MAX_FILES) {
		drgw_err_set(err, "too many %s settings (max %d)", name,
			     DRGW_KEYRING_MAX_FILES);
		return -E2BIG;
	}
	list[*n] = strdup(value);
	if (!list[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int add_exclude(struct drgw_config *cfg, const char *value,
		       struct drgw_err *err)
{
	/* An empty value clears the list, defaults included. */
	if (!cfg->excludes_set || !*value) {
		for (size_t i = 0; i < cfg->n_excludes; i++)
			free(cfg->excludes[i]);
		cfg->n_excludes = 0;
		cfg->excludes_set = true;
	}
	if (!*value)
		return 0;
	if (cfg->n_excludes == DRGW_MAX_EXCLUDES) {
		drgw_err_set(err, "too many exclude patterns (max %d)",
			     DRGW_MAX_EXCLUDES);
		return -E2BIG;
	}
	cfg->excludes[cfg->n_excludes] = strdup(value);
	if (!cfg->excludes[cfg->n_excludes])
		return -ENOMEM;
	cfg->n_excludes++;
	return 0;
}

int drgw_config_set(struct drgw_config *cfg, const char *name,
		    const char *value, struct drgw_err *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(simple_settings); i++)
		if (!strcmp(name, simple_settings[i].name))
			return set_simple(cfg, &simple_settings[i], value, err);
	if (drgw_policy_key(name))
		return drgw_policy_set(cfg->loading_file ? &cfg->policy :
							   &cfg->cli_policy,
				       name, value, err);

	if (!strcmp(name, "cache") || !strcmp(name, "cache-dir")) {
		if (value[0] != '/') {
			drgw_err_set(err, "cache directory must be an absolute path: %s",
				     value);
			return -EINVAL;
		}
		return set_string(&cfg->cache_dir, value);
	}
	if (!strcmp(name, "key-file"))
		return add_string(cfg->key_files, &cfg->n_key_files, name, value,
				  err);
	if (!strcmp(name, "recipient"))
		return add_string(cfg->recipients, &cfg->n_recipients, name,
				  value, err);
	if (!strcmp(name, "recipient-file"))
		return add_string(cfg->recipient_files, &cfg->n_recipient_files,
				  name, value, err);
	if (!strcmp(name, "identity"))
		return add_string(cfg->identity_files, &cfg->n_identity_files,
				  name, value, err);
	if (!strcmp(name, "repository")) {
		uint8_t id[16];

		if (strlen(value) != 32 || drgw_unhex(value, id, sizeof(id)) < 0) {
			drgw_err_set(err,
				     "invalid repository '%s' (32 hex digits, as 'drgw status' shows)",
				     value);
			return -EINVAL;
		}
		return set_string(&cfg->repository, value);
	}
	if (!strcmp(name, "plugin-dir"))
		return set_string(&cfg->plugin_dir, value);
	if (!strcmp(name, "log-file"))
		return set_string(&cfg->log_file, value);
	if (!strcmp(name, "metrics-listen"))
		return set_string(&cfg->metrics_listen, value);
	if (!strcmp(name, "exclude"))
		return add_exclude(cfg, value, err);
	if (!strcmp(name, "umask"))
		return set_umask(cfg, value, err);
	if (!strcmp(name, "backend"))
		return drgw_config_add_backend_arg(cfg, value, err);
	if (!strcmp(name, "check-sqlite")) {
		if (drgw_sqlcheck_parse_level(value, &cfg->check_sqlite) == 0)
			return 0;
		drgw_err_set(err,
			     "invalid check-sqlite '%s' (off, header, quick, full)",
			     value);
		return -EINVAL;
	}
	if (!strcmp(name, "log-level")) {
		if (drgw_log_parse_level(value, &cfg->log_level) == 0)
			return 0;
		drgw_err_set(err,
			     "invalid log-level '%s' (error, warning, info, debug)",
			     value);
		return -EINVAL;
	}
	if (!strcmp(name, "log-format")) {
		if (drgw_log_parse_format(value, &cfg->log_format) == 0)
			return 0;
		drgw_err_set(err, "invalid log-format '%s' (logfmt, json)",
			     value);
		return -EINVAL;
	}
	drgw_err_set(err, "unknown setting '%s'", name);
	return -ENOENT;
}

const struct drgw_policy *drgw_config_policy(const struct drgw_config *cfg,
					     size_t i)
{
	if (cfg->cli_policy.set)
		return &cfg->cli_policy;
	if (i < cfg->n_backends && cfg->backends[i].policy.set)
		return &cfg->backends[i].policy;
	return &cfg->policy;
}

const struct drgw_policy *drgw_config_policy_of(const struct drgw_config *cfg,
						const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_backends; i++)
		if (!strcmp(cfg->backends[i].name, name))
			break;
	return drgw_config_policy(cfg, i);
}

bool drgw_backend_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > DRGW_BACKEND_NAME_MAX)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789_-") == n;
}

/* Percent-decodes s[0..len) into a new string; NULL on bad escapes. */
static char *url_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			char hex[3] = { 0 };
			uint8_t c;

			if (i + 2 >= len)
				goto bad;
			memcpy(hex, s + i + 1, 2);
			if (drgw_unhex(hex, &c, 1) < 0 || c == 0)
				goto bad;
			*o++ = (char)c;
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

int drgw_backend_conf_add_option(struct drgw_backend_conf *b, const char *key,
				 const char *value)
{
	struct drgw_option *o;
	char *k, *v;

	/* A later setting of the same key wins. */
	for (size_t i = 0; i < b->n_options; i++) {
		if (strcmp(b->options[i].key, key))
			continue;
		v = strdup(value);
		if (!v)
			return -ENOMEM;
		free((char *)b->options[i].value);
		b->options[i].value = v;
		return 0;
	}
	o = realloc(b->options, (b->n_options + 1) * sizeof(*o));
	if (!o)
		return -ENOMEM;
	b->options = o;
	k = strdup(key);
	v = strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	o[b->n_options].key = k;
	o[b->n_options].value = v;
	b->n_options++;
	return 0;
}

static int parse_query(struct drgw_backend_conf *b, const char *q,
		       struct drgw_err *err)
{
	while (*q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		char *k, *v;
		int r;

		if (len == 0) {
			q++;
			continue;
		}
		if (!eq) {
			drgw_err_set(err,
				     "backend %s: option '%.*s' needs a value (key=value)",
				     b->name, (int)len, q);
			return -EINVAL;
		}
		k = url_decode(q, (size_t)(eq - q));
		v = url_decode(eq + 1, len - (size_t)(eq - q) - 1);
		if (!k || !v || !*k) {
			free(k);
			free(v);
			drgw_err_set(err, "backend %s: bad option encoding in '%.*s'",
				     b->name, (int)len, q);
			return -EINVAL;
		}
		/* Retention is the gateway's business, not the plugin's. */
		if (drgw_policy_key(k)) {
			r = drgw_policy_set(&b->policy, k, v, err);
			if (r < 0)
				drgw_err_prefix(err, "backend %s", b->name);
		} else {
			r = drgw_backend_conf_add_option(b, k, v);
		}
		free(k);
		free(v);
		if (r < 0)
			return r;
		q += len;
		if (*q == '&')
			q++;
	}
	return 0;
}

int drgw_config_add_backend(struct drgw_config *cfg, const char *name,
			    const char *url, struct drgw_err *err)
{
	struct drgw_backend_conf nb = { 0 }, *slot = NULL;
	const char *sep = strstr(url, "://");
	const char *q;
	size_t slen;
	int r;

	if (!drgw_backend_name_ok(name)) {
		drgw_err_set(err,
			     "invalid backend name '%s': use 1-63 letters, digits, '-' or '_'",
			     name);
		return -EINVAL;
	}
	slen = sep ? (size_t)(sep - url) : 0;
	if (!sep || slen == 0 || slen >= sizeof(nb.scheme) ||
	    strspn(url, "abcdefghijklmnopqrstuvwxyz0123456789+-") != slen ||
	    !(url[0] >= 'a' && url[0] <= 'z')) {
		drgw_err_set(err,
			     "invalid backend URL '%s' for %s: expected scheme://..., e.g. local:///srv/backup or s3://bucket/prefix",
			     url, name);
		return -EINVAL;
	}
	memcpy(nb.scheme, url, slen);
	nb.scheme[slen] = '\0';
	drgw_strlcpy(nb.name, name, sizeof(nb.name));
	q = strchr(url, '?');
	nb.url = q ? strndup(url, (size_t)(q - url)) : strdup(url);
	if (!nb.url)
		return -ENOMEM;
	if (strlen(nb.url) == slen + 3) {
		drgw_err_set(err, "backend URL '%s' for %s names no location",
			     url, name);
		backend_conf_release(&nb);
		return -EINVAL;
	}
	if (q && (r = parse_query(&nb, q + 1, err)) < 0) {
		backend_conf_release(&nb);
		return r;
	}
	for (size_t i = 0; i < cfg->n_backends; i++)
		if (!strcmp(cfg->backends[i].name, name))
			slot = &cfg->backends[i];
	if (slot) {
		backend_conf_release(slot);
	} else {
		if (cfg->n_backends == DRGW_MAX_BACKENDS) {
			drgw_err_set(err, "too many backends (max %d)",
				     DRGW_MAX_BACKENDS);
			backend_conf_release(&nb);
			return -E2BIG;
		}
		slot = &cfg->backends[cfg->n_backends++];
	}
	*slot = nb;
	return 0;
}

int drgw_config_add_backend_arg(struct drgw_config *cfg, const char *arg,
				struct drgw_err *err)
{
	const char *eq = strchr(arg, '=');
	char name[DRGW_BACKEND_NAME_MAX + 2];

	if (!eq || (size_t)(eq - arg) >= sizeof(name)) {
		drgw_err_set(err,
			     "invalid --backend '%s': expected NAME=URL, e.g. offsite=s3://bucket/prefix",
			     arg);
		return -EINVAL;
	}
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = '\0';
	return drgw_config_add_backend(cfg, name, eq + 1, err);
}

const char *const *drgw_config_excludes(const struct drgw_config *cfg,
					size_t *ret_n)
{
	if (cfg->excludes_set) {
		*ret_n = cfg->n_excludes;
		return (const char *const *)cfg->excludes;
	}
	*ret_n = ARRAY_SIZE(default_excludes);
	return default_excludes;
}

bool drgw_config_excluded(const struct drgw_config *cfg, const char *path)
{
	const char *base = strrchr(path, '/');
	const char *const *pats;
	size_t n;

	base = base ? base + 1 : path;
	pats = drgw_config_excludes(cfg, &n);
	for (size_t i = 0; i < n; i++)
		if (fnmatch(pats[i], base, FNM_PERIOD) == 0 ||
		    (pats[i][0] == '.' && fnmatch(pats[i], base, 0) == 0))
			return true;
	return false;
}

/* --- INI loading --- */

struct ini_ctx {
	struct drgw_config *cfg;
	struct drgw_err *err;
	const char *path;
	int r;
	/* Backend sections may set options before their url; collect them. */
	char cur_backend[DRGW_BACKEND_NAME_MAX + 1];
	struct drgw_backend_conf pending;
	bool in_backend;
	/* libinih's callback has no line number (Debian builds it without
	 * INI_HANDLER_LINENO); the reader below counts lines instead. */
	FILE *file;
	int line;
};

/* 'backend "NAME"' or 'backend.NAME' -> NAME */
static int backend_section(const char *section, char *name, size_t size)
{
	const char *p;
	size_t n;

	if (!strncmp(section, "backend.", 8)) {
		p = section + 8;
		n = strlen(p);
	} else if (!strncmp(section, "backend \"", 9)) {
		p = section + 9;
		n = strlen(p);
		if (n == 0 || p[n - 1] != '"')
			return -EINVAL;
		n--;
	} else {
		return -ENOENT;
	}
	if (n == 0 || n >= size)
		return -EINVAL;
	memcpy(name, p, n);
	name[n] = '\0';
	return drgw_backend_name_ok(name) ? 0 : -EINVAL;
}

/* Moves the options collected for a backend section into the config. */
static int flush_backend(struct ini_ctx *x)
{
	struct drgw_backend_conf *b = NULL;
	int r = 0;

	if (!x->in_backend)
		return 0;
	x->in_backend = false;
	for (size_t i = 0; i < x->cfg->n_backends; i++)
		if (!strcmp(x->cfg->backends[i].name, x->cur_backend))
			b = &x->cfg->backends[i];
	if (!b) {
		drgw_err_set(x->err, "%s: backend \"%s\" has no url", x->path,
			     x->cur_backend);
		r = -EINVAL;
	}
	for (size_t i = 0; r == 0 && i < x->pending.n_options; i++)
		r = drgw_backend_conf_add_option(b, x->pending.options[i].key,
						 x->pending.options[i].value);
	if (r == 0 && x->pending.policy.set)
		b->policy = x->pending.policy;
	backend_conf_release(&x->pending);
	return r;
}

static char *read_line(char *buf, int size, void *stream)
{
	struct ini_ctx *x = stream;
	char *r = fgets(buf, size, x->file);

	if (r)
		x->line++;
	return r;
}

static int on_ini(void *user, const char *section, const char *name,
		  const char *value)
{
	struct ini_ctx *x = user;
	int lineno = x->line;

	/* libinih wants non-zero for "go on"; errors are kept in x->r. */
	char bname[DRGW_BACKEND_NAME_MAX + 1];
	int r;

	if (x->r < 0)
		return 1;
	r = backend_section(section, bname, sizeof(bname));
	if (x->in_backend && (r < 0 || strcmp(bname, x->cur_backend))) {
		x->r = flush_backend(x);
		if (x->r < 0)
			return 1;
	}
	if (r == -EINVAL) {
		drgw_err_set(x->err,
			     "%s:%d: invalid section [%s]: use [backend \"NAME\"] with NAME of letters, digits, '-' or '_'",
			     x->path, lineno, section);
		x->r = -EINVAL;
		return 1;
	}
	if (r == 0) {
		if (!x->in_backend) {
			x->in_backend = true;
			drgw_strlcpy(x->cur_backend, bname,
				     sizeof(x->cur_backend));
		}
		if (!strcmp(name, "url")) {
			r = drgw_config_add_backend(x->cfg, bname, value, x->err);
		} else if (drgw_policy_key(name)) {
			r = drgw_policy_set(&x->pending.policy, name, value,
					    x->err);
		} else {
			r = drgw_backend_conf_add_option(&x->pending, name,
							 value);
		}
	} else if (!strcmp(section, "drgw") || !*section) {
		r = drgw_config_set(x->cfg, name, value, x->err);
	} else {
		drgw_err_set(x->err,
			     "%s:%d: unknown section [%s] (expected [drgw] or [backend \"NAME\"])",
			     x->path, lineno, section);
		r = -EINVAL;
	}
	if (r < 0) {
		drgw_err_prefix(x->err, "%s:%d", x->path, lineno);
		x->r = r;
	}
	return 1;
}

int drgw_config_load(struct drgw_config *cfg, const char *path,
		     struct drgw_err *err)
{
	struct ini_ctx x = { .cfg = cfg, .err = err, .path = path };
	int line;

	x.file = fopen(path, "re");
	if (!x.file) {
		drgw_err_set(err, "cannot open config file %s: %s", path,
			     strerror(errno));
		return -ENOENT;
	}
	cfg->loading_file = true;
	line = ini_parse_stream(read_line, &x, on_ini, &x);
	cfg->loading_file = false;
	fclose(x.file);
	if (x.r == 0)
		x.r = flush_backend(&x);
	backend_conf_release(&x.pending);
	if (x.r < 0)
		return x.r;
	if (line > 0) {
		drgw_err_set(err, "%s:%d: syntax error (expected key = value)",
			     path, line);
		return -EINVAL;
	}
	return 0;
}
