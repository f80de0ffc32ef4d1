/* SPDX-License-Identifier: MIT */
/*
 * A TEST TOOL, never for real backups: the faults:// backend wraps another
 * backend and makes chosen calls fail, stall, return corrupted bytes, or
 * kill the process, so that tests drive the gateway's error paths through
 * the public ABI alone (the network backends get the same faults from the
 * test proxies in front of their servers; see README.md).
 *
 *   faults://local:///srv/backup?faults=put@2:error=ECONNRESET;get@3:corrupt
 *
 * The URL after "faults://" is the wrapped backend's, which is loaded like
 * the gateway loads plugins (drgw-<scheme>.so beside this module, or in
 * ../<scheme>/ in the build tree, with the same checks) and gets every
 * option but "faults".  That option is a list of rules separated by ';':
 *
 *   OP@N[+]:ACTION[=ARG]     OP is put, get, stat, list, remove, abort or
 *                            any; N the call of OP it acts on (1-based),
 *                            N+ that one and all later, * every call
 *
 *   error=ERRNO     fail with -ERRNO (a name: EAGAIN, ECONNRESET, EIO, ...)
 *   stall=MS        sleep, then do the call
 *   cut=BYTES       put: the source ends after BYTES (the wrapped put
 *                   fails as a connection cut mid-body would), -ECONNRESET;
 *                   get: -ECONNRESET after the read (an answer cut short)
 *   corrupt         get: flip one byte of what was read (the middle one)
 *   outage=MS       this and every call for MS ms: -ECONNREFUSED
 *   kill            put: SIGKILL the process once the wrapped put
 *                   succeeded, before the gateway can record it
 *
 * Each injected fault is logged at debug level ("faults: get #3: ...");
 * open() logs a warning that fault injection is on.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <drgw/backend.h>

#define MAX_RULES 32
#define MAX_OPTIONS 64

enum op {
	OP_PUT,
	OP_GET,
	OP_STAT,
	OP_LIST,
	OP_REMOVE,
	OP_ABORT,
	OP_ANY,
	N_OPS,
};

static const char *const op_names[N_OPS] = {
	"put", "get", "stat", "list", "remove", "abort", "any",
};

enum action {
	ACT_ERROR,
	ACT_STALL,
	ACT_CUT,
	ACT_CORRUPT,
	ACT_OUTAGE,
	ACT_KILL,
};

struct rule {
	enum op op;
	uint64_t n;			/* 0: every call */
	int and_later;
	enum action action;
	uint64_t arg;			/* errno, ms or bytes */
};

struct faults {
	const struct drgw_backend_ops *ops;	/* the wrapped plugin's */
	void *inner;
	char *inner_url;
	struct drgw_option *options;		/* the wrapped backend's */
	size_t n_options;
	const struct drgw_host *host;
	struct rule rules[MAX_RULES];
	size_t n_rules;

	pthread_mutex_t lock;
	uint64_t calls[N_OPS];		/* lock */
	struct timespec outage_end;	/* lock; zero: none */
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

static const struct {
	const char *name;
	int value;
} errnos[] = {
	{ "EAGAIN", EAGAIN }, { "ETIMEDOUT", ETIMEDOUT },
	{ "ECONNREFUSED", ECONNREFUSED }, { "ECONNRESET", ECONNRESET },
	{ "EHOSTUNREACH", EHOSTUNREACH }, { "ENOENT", ENOENT },
	{ "EACCES", EACCES }, { "EPERM", EPERM }, { "EINVAL", EINVAL },
	{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
};

static int parse_num(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	if (!len || len > 12)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

/* One "OP@N[+]:ACTION[=ARG]" of length len. */
static int parse_rule(const char *s, size_t len, struct rule *r)
{
	const char *at = memchr(s, '@', len), *colon, *end = s + len, *eq;
	size_t i;

	if (!at || !(colon = memchr(at, ':', (size_t)(end - at))))
		return -EINVAL;
	for (i = 0; i < N_OPS; i++)
		if ((size_t)(at - s) == strlen(op_names[i]) &&
		    !memcmp(s, op_names[i], (size_t)(at - s)))
			break;
	if (i == N_OPS)
		return -EINVAL;
	r->op = (enum op)i;
	r->and_later = colon[-1] == '+';
	if (colon - at == 2 && at[1] == '*')
		r->n = 0;
	else if (parse_num(at + 1, (size_t)(colon - at - 1 - r->and_later),
			   &r->n) < 0 || r->n == 0)
		return -EINVAL;
	s = colon + 1;
	eq = memchr(s, '=', (size_t)(end - s));
#define IS(word) ((size_t)((eq ? eq : end) - s) == strlen(word) && \
		  !memcmp(s, word, strlen(word)))
	if (IS("error") && eq) {
		r->action = ACT_ERROR;
		for (i = 0; i < sizeof(errnos) / sizeof(*errnos); i++)
			if ((size_t)(end - eq - 1) == strlen(errnos[i].name) &&
			    !memcmp(eq + 1, errnos[i].name, strlen(errnos[i].name)))
				break;
		if (i == sizeof(errnos) / sizeof(*errnos))
			return -EINVAL;
		r->arg = (uint64_t)errnos[i].value;
		return 0;
	}
	if (IS("corrupt") && !eq && r->op == OP_GET) {
		r->action = ACT_CORRUPT;
		return 0;
	}
	if (IS("kill") && !eq && r->op == OP_PUT) {
		r->action = ACT_KILL;
		return 0;
	}
	if (!eq || parse_num(eq + 1, (size_t)(end - eq - 1), &r->arg) < 0)
		return -EINVAL;
	if (IS("stall"))
		r->action = ACT_STALL;
	else if (IS("outage"))
		r->action = ACT_OUTAGE;
	else if (IS("cut") && (r->op == OP_PUT || r->op == OP_GET))
		r->action = ACT_CUT;
	else
		return -EINVAL;
#undef IS
	return 0;
}

static int parse_rules(struct faults *f, const char *spec,
		       struct drgw_err *err)
{
	const char *p = spec;

	while (*p) {
		size_t len = strcspn(p, ";");

		if (len && (f->n_rules == MAX_RULES ||
			    parse_rule(p, len, &f->rules[f->n_rules++]) < 0)) {
			set_err(err,
				"faults: bad rule '%.*s': expected OP@N[+]:ACTION[=ARG] (see plugins/faults/README.md)",
				(int)len, p);
			return -EINVAL;
		}
		p += len;
		if (*p == ';')
			p++;
	}
	return 0;
}

/* The wrapped plugin: drgw-<scheme>.so beside this module, else in
 * ../<scheme>/ (the build tree), checked like the gateway checks. */
static int load_inner(const char *scheme, const struct drgw_backend_ops **ret,
		      struct drgw_err *err)
{
	const struct drgw_backend_ops *(*entry)(void);
	char dir[PATH_MAX], path[PATH_MAX];
	struct stat st;
	Dl_info info;
	char *slash;
	void *dl;

	if (!dladdr((void *)load_inner, &info) || !info.dli_fname ||
	    strlen(info.dli_fname) >= sizeof(dir)) {
		set_err(err, "faults: cannot find the plugin directory");
		return -EINVAL;
	}
	memcpy(dir, info.dli_fname, strlen(info.dli_fname) + 1);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		memcpy(dir, ".", 2);
	snprintf(path, sizeof(path), "%s/drgw-%s.so", dir, scheme);
	if (stat(path, &st) < 0)
		snprintf(path, sizeof(path), "%s/../%s/drgw-%s.so", dir, scheme,
			 scheme);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 022)) {
		set_err(err, "faults: no usable plugin for %s:// beside %s",
			scheme, info.dli_fname);
		return -EINVAL;
	}
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl)
		*(void **)&entry = dlsym(dl, DRGW_BACKEND_ENTRY_SYMBOL);
	if (!dl || !entry) {
		set_err(err, "faults: cannot load %s: %s", path, dlerror());
		return -EINVAL;
	}
	/* Never unloaded, as the gateway never unloads plugins. */
	*ret = entry();
	if (!*ret || (*ret)->abi_version != DRGW_BACKEND_ABI_VERSION ||
	    (*ret)->struct_size < sizeof(struct drgw_backend_ops) ||
	    !(*ret)->open || !(*ret)->close || !(*ret)->scheme ||
	    strcmp((*ret)->scheme, scheme)) {
		set_err(err, "faults: %s has an unusable ops table", path);
		return -EINVAL;
	}
	return 0;
}

static int faults_open(void *inst, const struct drgw_backend_config *cfg,
		       struct drgw_err *err)
{
	struct faults *f = inst;
	struct drgw_backend_config icfg = *cfg;
	const char *inner = cfg->url + strlen("faults://"), *sep;
	char scheme[32];
	int r;

	if (strncmp(cfg->url, "faults://", 9) || !(sep = strstr(inner, "://")) ||
	    (size_t)(sep - inner) >= sizeof(scheme) || sep == inner) {
		set_err(err, "not a faults URL: %s (expected faults://SCHEME://...)",
			cfg->url);
		return -EINVAL;
	}
	memcpy(scheme, inner, (size_t)(sep - inner));
	scheme[sep - inner] = '\0';
	if (!strcmp(scheme, "faults")) {
		set_err(err, "faults: cannot wrap itself");
		return -EINVAL;
	}
	if (cfg->n_options > MAX_OPTIONS) {
		set_err(err, "faults: too many options");
		return -EINVAL;
	}
	f->options = calloc(cfg->n_options + 1, sizeof(*f->options));
	f->inner_url = strdup(inner);
	if (!f->options || !f->inner_url) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_options; i++) {
		if (!strcmp(cfg->options[i].key, "faults")) {
			r = parse_rules(f, cfg->options[i].value ?
						   cfg->options[i].value : "",
					err);
			if (r < 0)
				goto fail;
		} else {
			f->options[f->n_options++] = cfg->options[i];
		}
	}
	r = load_inner(scheme, &f->ops, err);
	if (r < 0)
		goto fail;
	f->inner = calloc(1, f->ops->instance_size ? f->ops->instance_size : 1);
	if (!f->inner) {
		r = -ENOMEM;
		goto fail;
	}
	icfg.url = f->inner_url;
	icfg.options = f->options;
	icfg.n_options = f->n_options;
	r = f->ops->open(f->inner, &icfg, err);
	if (r < 0)
		goto fail;
	pthread_mutex_init(&f->lock, NULL);
	f->host = cfg->host;
	if (f->host && f->host->log)
		f->host->log(DRGW_LOG_WARNING,
			     "faults: fault injection is on for backend %s (rules: %zu, around %s): a test tool, never for real backups",
			     cfg->name, f->n_rules, f->inner_url);
	return 0;
fail:
	free(f->inner);
	free(f->inner_url);
	free(f->options);
	f->inner = NULL;
	f->inner_url = NULL;
	f->options = NULL;
	return r;
}

static void faults_close(void *inst)
{
	struct faults *f = inst;

	f->ops->close(f->inner);
	free(f->inner);
	free(f->inner_url);
	free(f->options);
	pthread_mutex_destroy(&f->lock);
}

static int after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Counts a call of op and picks the rule that acts on it (the first that
 * matches), or returns -ECONNREFUSED during an outage.  *ret_rule is
 * NULL when no rule acts; stalls are done here.
 */
static int begin(struct faults *f, enum op op, const struct rule **ret_rule,
		 struct drgw_err *err)
{
	const struct rule *hit = NULL;
	struct timespec now;
	uint64_t n, any;
	int down;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&f->lock);
	n = ++f->calls[op];
	any = ++f->calls[OP_ANY];
	for (size_t i = 0; i < f->n_rules && !hit; i++) {
		const struct rule *r = &f->rules[i];
		uint64_t k = r->op == OP_ANY ? any : r->op == op ? n : 0;

		if (k && (r->n == 0 || k == r->n || (r->and_later && k > r->n)))
			hit = r;
	}
	if (hit && hit->action == ACT_OUTAGE) {
		f->outage_end = now;
		f->outage_end.tv_sec += (time_t)(hit->arg / 1000);
		f->outage_end.tv_nsec += (long)(hit->arg % 1000) * 1000000L;
		if (f->outage_end.tv_nsec >= 1000000000L) {
			f->outage_end.tv_sec++;
			f->outage_end.tv_nsec -= 1000000000L;
		}
	}
	down = after(&f->outage_end, &now);
	pthread_mutex_unlock(&f->lock);
	*ret_rule = NULL;
	if (down) {
		set_err(err, "faults: %s #%llu: injected outage: connection refused",
			op_names[op], (unsigned long long)n);
		return -ECONNREFUSED;
	}
	if (!hit)
		return 0;
	if (f->host && f->host->log)
		f->host->log(DRGW_LOG_DEBUG, "faults: %s #%llu: injecting %s",
			     op_names[op], (unsigned long long)n,
			     hit->action == ACT_ERROR ? "an error" :
			     hit->action == ACT_STALL ? "a stall" :
			     hit->action == ACT_CUT ? "a cut" :
			     hit->action == ACT_CORRUPT ? "a corrupted byte" :
							  "a kill");
	if (hit->action == ACT_ERROR) {
		set_err(err, "faults: %s #%llu: injected error %s",
			op_names[op], (unsigned long long)n,
			strerror((int)hit->arg));
		return -(int)hit->arg;
	}
	if (hit->action == ACT_STALL)
		sleep_ms(hit->arg);
	else
		*ret_rule = hit;
	return 0;
}

/* The source the wrapped put() sees: the gateway's, possibly cut short. */
struct cut_source {
	struct drgw_put_source src;	/* first: the plugin gets &src */
	struct drgw_put_source *orig;
	uint64_t cut;			/* UINT64_MAX: no cut */
	int hit;			/* atomic */
};

static int cut_read_at(struct drgw_put_source *src, void *buf, size_t len,
		       uint64_t off)
{
	struct cut_source *c = (struct cut_source *)src;

	if (off + len > c->cut) {
		__atomic_store_n(&c->hit, 1, __ATOMIC_RELAXED);
		return -EIO;
	}
	return c->orig->read_at(c->orig, buf, len, off);
}

static int cut_save(struct drgw_put_source *src, const void *token, size_t len)
{
	struct cut_source *c = (struct cut_source *)src;

	return c->orig->save_resume_token ?
		       c->orig->save_resume_token(c->orig, token, len) : 0;
}

static void cut_progress(struct drgw_put_source *src, uint64_t done)
{
	struct cut_source *c = (struct cut_source *)src;

	if (c->orig->progress)
		c->orig->progress(c->orig, done);
}

static int cut_cancelled(struct drgw_put_source *src)
{
	struct cut_source *c = (struct cut_source *)src;

	return c->orig->cancelled && c->orig->cancelled(c->orig);
}

static int cut_grow(struct drgw_put_source *src, uint64_t want,
		    uint64_t *ret_size, int *ret_complete)
{
	struct cut_source *c = (struct cut_source *)src;

	return c->orig->grow(c->orig, want, ret_size, ret_complete);
}

static int faults_put(void *inst, const char *key, struct drgw_put_source *src,
		      struct drgw_err *err)
{
	struct faults *f = inst;
	struct cut_source c = { .orig = src, .cut = UINT64_MAX };
	const struct rule *rule;
	int r = begin(f, OP_PUT, &rule, err);

	if (r < 0)
		return r;
	c.src = *src;
	c.src.read_at = cut_read_at;
	c.src.save_resume_token = cut_save;
	c.src.progress = cut_progress;
	c.src.cancelled = cut_cancelled;
	c.src.grow = src->grow ? cut_grow : NULL;
	if (rule && rule->action == ACT_CUT)
		c.cut = rule->arg;
	if (src->grow && !(f->ops->caps & DRGW_CAP_STREAMING_PUT)) {
		/* The wrapped plugin takes complete objects only. */
		int complete;

		r = src->grow(src, UINT64_MAX, &c.src.size, &complete);
		if (r < 0) {
			set_err(err, "faults: put %s: the object was abandoned",
				key);
			return r;
		}
		c.src.grow = NULL;
	}
	r = f->ops->put(f->inner, key, &c.src, err);
	if (__atomic_load_n(&c.hit, __ATOMIC_RELAXED)) {
		set_err(err, "faults: put %s: injected connection cut after %llu bytes",
			key, (unsigned long long)c.cut);
		return -ECONNRESET;
	}
	if (r == 0 && rule && rule->action == ACT_KILL) {
		if (f->host && f->host->log)
			f->host->log(DRGW_LOG_DEBUG,
				     "faults: put %s stored; killing the process",
				     key);
		raise(SIGKILL);
	}
	return r;
}

static int faults_get(void *inst, const char *key, uint64_t off, void *buf,
		      size_t len, size_t *ret_len, struct drgw_err *err)
{
	struct faults *f = inst;
	const struct rule *rule;
	int r = begin(f, OP_GET, &rule, err);

	if (r < 0)
		return r;
	r = f->ops->get(f->inner, key, off, buf, len, ret_len, err);
	if (r < 0 || !rule)
		return r;
	if (rule->action == ACT_CUT) {
		set_err(err, "faults: get %s: injected connection cut", key);
		return -ECONNRESET;
	}
	if (rule->action == ACT_CORRUPT && *ret_len)
		((unsigned char *)buf)[*ret_len / 2] ^= 0x5a;
	return 0;
}

static int faults_stat(void *inst, const char *key,
		       struct drgw_object_info *ret_info, struct drgw_err *err)
{
	struct faults *f = inst;
	const struct rule *rule;
	int r = begin(f, OP_STAT, &rule, err);

	return r < 0 ? r : f->ops->stat(f->inner, key, ret_info, err);
}

static int faults_list(void *inst, const char *prefix, const char *page_token,
		       drgw_list_fn fn, void *arg, char *next_token,
		       size_t next_token_size, struct drgw_err *err)
{
	struct faults *f = inst;
	const struct rule *rule;
	int r = begin(f, OP_LIST, &rule, err);

	if (r < 0) {
		next_token[0] = '\0';
		return r;
	}
	return f->ops->list(f->inner, prefix, page_token, fn, arg, next_token,
			    next_token_size, err);
}

static int faults_list_range(void *inst, const char *prefix,
			     const char *after, const char *before,
			     const char *page_token, drgw_list_fn fn,
			     void *arg, char *next_token,
			     size_t next_token_size, struct drgw_err *err)
{
	struct faults *f = inst;
	const struct rule *rule;
	int r = begin(f, OP_LIST, &rule, err);

	next_token[0] = '\0';
	if (r < 0)
		return r;
	if (!f->ops->list_range)
		return -ENOSYS;
	return f->ops->list_range(f->inner, prefix, after, before, page_token,
				  fn, arg, next_token, next_token_size, err);
}

static int faults_remove(void *inst, const char *key, struct drgw_err *err)
{
	struct faults *f = inst;
	const struct rule *rule;
	int r = begin(f, OP_REMOVE, &rule, err);

	return r < 0 ? r : f->ops->remove(f->inner, key, err);
}

static int faults_abort_put(void *inst, const char *key, const void *token,
			    size_t token_len, struct drgw_err *err)
{
	struct faults *f = inst;
	const struct rule *rule;
	int r = begin(f, OP_ABORT, &rule, err);

	if (r < 0)
		return r;
	return f->ops->abort_put ?
		       f->ops->abort_put(f->inner, key, token, token_len, err) :
		       0;
}

static int faults_ctl(void *inst, int op, void *arg)
{
	struct faults *f = inst;
	struct drgw_err inner = { 0 };
	int r;

	if (op != DRGW_CTL_DESCRIBE)
		return f->ops->ctl ? f->ops->ctl(f->inner, op, arg) : -ENOTSUP;
	r = f->ops->ctl ? f->ops->ctl(f->inner, op, &inner) : -ENOTSUP;
	set_err(arg, "fault injection (a test tool) around %s",
		r == 0 && inner.msg[0] ? inner.msg : f->inner_url);
	return 0;
}

/* Caps are per plugin, not per instance: the wrapped backends (local,
 * s3, gcs) all read ranges and take streamed and resumed uploads. */
static const struct drgw_backend_ops faults_ops = {
	.abi_version = DRGW_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct drgw_backend_ops),
	.name = "faults",
	.caps = DRGW_CAP_RANGE_READ | DRGW_CAP_RESUMABLE_PUT |
		DRGW_CAP_STREAMING_PUT,
	.scheme = "faults",
	.instance_size = sizeof(struct faults),
	.open = faults_open,
	.close = faults_close,
	.put = faults_put,
	.get = faults_get,
	.stat = faults_stat,
	.list = faults_list,
	.remove = faults_remove,
	.abort_put = faults_abort_put,
	.ctl = faults_ctl,
	.list_range = faults_list_range,
};

DRGW_BACKEND_EXPORT const struct drgw_backend_ops *drgw_backend_entry_v1(void)
{
	return &faults_ops;
}
