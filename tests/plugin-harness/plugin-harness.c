/* SPDX-License-Identifier: MIT */
/*
 * plugin-harness: drives a backend plugin the way the gateway does, through
 * dlopen() and <drgw/backend.h> only.  One instance is opened per run.
 *
 *   plugin-harness [-v] [-r] [-o key=value]... PLUGIN.so URL COMMAND ARGS...
 *
 *   put [--token FILE] [--sha256 HEX] [--cancel-file FILE] [--rate BPS]
 *       [--kill-after-saves N] [--growing BPS [--size-hint N]
 *       [--abandon-at N]] KEY SRCFILE
 *        The token file stands in for the gateway's catalog: a token found
 *        there is passed as the resume token, and every token the plugin
 *        saves is written there atomically (fsync + rename) before the
 *        plugin goes on, so it survives a SIGKILL.  put() is cancelled once
 *        the cancel file exists.  --rate slows the source's reads down to
 *        BPS bytes per second (so that a test can interrupt an upload
 *        midway); --kill-after-saves makes the process SIGKILL itself right
 *        after the N-th token is durably saved (a crash at a known point).
 *        --growing hands the plugin a growing source whose bytes appear at
 *        BPS bytes per second (size_hint: the file's size unless given);
 *        reading a byte grow() did not report fails the run.  --abandon-at
 *        abandons it (grow() returns -ESTALE) once N bytes exist.
 *   get KEY OFFSET LENGTH OUTFILE      one ranged read
 *   cat KEY OUTFILE                    whole object by 4 MiB ranged reads
 *   stat KEY
 *   list [PREFIX]                      every page; "KEY<TAB>SIZE" per line
 *   list-range AFTER BEFORE [PREFIX]   the same with list_range() ("-":
 *                                      no bound); pages as the plugin
 *                                      sends them (the gateway filters)
 *   rm KEY
 *   rm-many KEY...                     remove_many(): "KEY<TAB>ERRNO-NAME|ok"
 *                                      per key; fails if one failed
 *   lock KEY                           stat(), then its lock fields:
 *                                      "known 0|1 hold 0|1 until NS"
 *   retention                          ctl(DRGW_CTL_RETENTION): "flags F
 *                                      period NS source TEXT"
 *   abort KEY TOKENFILE
 *   describe | ping
 *   ctl-msg OPCODE                     a private ctl() filling a drgw_err;
 *                                      prints its message
 *   ctl-u64 OPCODE                     a private ctl() filling a uint64_t;
 *                                      prints it in hex
 *   creds | caps                       ctl-msg 0x5301 | ctl-u64 0x5302 (the
 *                                      S3 plugin's; caps falls back to
 *                                      ops->caps)
 *   parallel N COMMAND ARGS...         runs COMMAND in N threads at once on
 *                                      the one instance ("{}" in ARGS
 *                                      becomes the thread's number); fails
 *                                      if any of them fails
 *   batch                              reads commands from stdin, one per
 *                                      line (fields separated by tabs if
 *                                      the line has any, else by spaces),
 *                                      on the one open instance, plus
 *                                      "sleep MS"; stops at the first
 *                                      failure
 *
 * Exit status 0 on success, 1 on failure with "plugin-harness: COMMAND:
 * ERRNO-NAME: message" on stderr, 2 on usage errors.  -v prints the
 * plugin's debug log on stderr; -r opens the backend read-only (get, cat,
 * stat and list always do).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <drgw/backend.h>

#define MAX_OPTS 32
#define CAT_CHUNK (4u << 20)
#define MAX_BATCH_ARGS 16
#define MAX_THREADS 64
#define S3_CTL_CREDS_SOURCE 0x5301
#define S3_CTL_INSTANCE_CAPS 0x5302

static int verbose;

struct source {
	struct drgw_put_source src;	/* first: the plugin gets &src */
	const char *token_path;
	const char *cancel_path;
	uint64_t rate;			/* bytes per second, 0: unlimited */
	int kill_after;			/* SIGKILL after this save, 0: never */
	/* A growing source: file_size bytes appearing at grow_rate. */
	uint64_t grow_rate, file_size, abandon_at;
	struct timespec grow_start;
	uint64_t reported;		/* the most grow() said exists (lock) */
	pthread_mutex_t lock;
	int saves;
};

static void host_log(enum drgw_log_level level, const char *fmt, ...)
	DRGW_PRINTF(2, 3);
static void host_log(enum drgw_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	va_list ap;

	if (level == DRGW_LOG_DEBUG && !verbose)
		return;
	fprintf(stderr, "[%s] ", names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const struct drgw_host host = {
	.abi_version = DRGW_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct drgw_host),
	.log = host_log,
};

static const char *errname(int e)
{
	switch (e) {
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	case EIO: return "EIO";
	case EAGAIN: return "EAGAIN";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ECANCELED: return "ECANCELED";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOSPC: return "ENOSPC";
	case EDQUOT: return "EDQUOT";
	case EROFS: return "EROFS";
	case ENOMEM: return "ENOMEM";
	case EFBIG: return "EFBIG";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case EEXIST: return "EEXIST";
	case ENOSYS: return "ENOSYS";
	case E2BIG: return "E2BIG";
	case ENETUNREACH: return "ENETUNREACH";
	case ESTALE: return "ESTALE";
	default: return "E?";
	}
}

static int fail(const char *cmd, int r, const struct drgw_err *err)
{
	fprintf(stderr, "plugin-harness: %s: %s: %s\n", cmd, errname(-r),
		err && err->msg[0] ? err->msg : strerror(-r));
	return 1;
}

/* Bytes of a growing source that exist now. */
static uint64_t grown(const struct source *s)
{
	struct timespec now;
	double t;

	clock_gettime(CLOCK_MONOTONIC, &now);
	t = (double)(now.tv_sec - s->grow_start.tv_sec) +
	    (double)(now.tv_nsec - s->grow_start.tv_nsec) / 1e9;
	return t * (double)s->grow_rate >= (double)s->file_size ?
		       s->file_size : (uint64_t)(t * (double)s->grow_rate);
}

static int grow(struct drgw_put_source *src, uint64_t want,
		uint64_t *ret_size, int *ret_complete)
{
	struct source *s = (struct source *)src;
	uint64_t have;

	for (;;) {
		struct timespec ts = { 0, 5000000 };

		have = grown(s);
		if (s->abandon_at && have >= s->abandon_at)
			return -ESTALE;
		if (s->cancel_path && access(s->cancel_path, F_OK) == 0)
			return -ECANCELED;
		if (have >= want || have == s->file_size)
			break;
		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&s->lock);
	if (have > s->reported)
		s->reported = have;
	pthread_mutex_unlock(&s->lock);
	*ret_size = have;
	*ret_complete = have == s->file_size;
	return 0;
}

static int read_at(struct drgw_put_source *src, void *buf, size_t len,
		   uint64_t off)
{
	struct source *s = (struct source *)src;
	size_t done = 0;

	if (s->grow_rate) {
		pthread_mutex_lock(&s->lock);
		done = off + len > s->reported;
		pthread_mutex_unlock(&s->lock);
		if (done) {
			fprintf(stderr, "plugin-harness: read of [%" PRIu64 ", %" PRIu64 ") beyond the bytes grow() reported\n",
				off, off + len);
			exit(3);
		}
	}

	if (s->rate) {
		uint64_t ns = (uint64_t)len * 1000000000u / s->rate;
		struct timespec ts = { (time_t)(ns / 1000000000u),
				       (long)(ns % 1000000000u) };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}

	while (done < len) {
		ssize_t n = pread(src->fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int save_token(struct drgw_put_source *src, const void *token,
		      size_t len)
{
	struct source *s = (struct source *)src;
	char tmp[4096];
	int fd, r;

	if (!s->token_path)
		return 0;
	if (len > 64 * 1024)
		return -E2BIG;
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->token_path);
	pthread_mutex_lock(&s->lock);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	r = fd < 0 ? -errno : write_all(fd, token, len);
	if (fd >= 0 && r == 0 && fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (r == 0 && rename(tmp, s->token_path) < 0)
		r = -errno;
	s->saves++;
	/* A crash right after the token became durable: the worst moment
	 * for a plugin that saves before it sends. */
	if (r == 0 && s->kill_after && s->saves == s->kill_after)
		raise(SIGKILL);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static void progress(struct drgw_put_source *src, uint64_t done)
{
}

static int cancelled(struct drgw_put_source *src)
{
	struct source *s = (struct source *)src;

	return s->cancel_path && access(s->cancel_path, F_OK) == 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int parse_sha(const char *hex, uint8_t out[32])
{
	if (strlen(hex) != 64)
		return -EINVAL;
	for (int i = 0; i < 32; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void *load_file(const char *path, size_t *ret_len)
{
	struct stat st;
	void *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return NULL;
	}
	if (read(fd, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		close(fd);
		return NULL;
	}
	close(fd);
	*ret_len = (size_t)st.st_size;
	return buf;
}

static int cmd_put(const struct drgw_backend_ops *ops, void *inst, int argc,
		   char **argv)
{
	struct source s = { 0 };
	struct drgw_err err = { 0 };
	struct stat st;
	void *token = NULL;
	size_t token_len = 0;
	uint64_t n;
	int i = 1, r;

	pthread_mutex_init(&s.lock, NULL);
	for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
		if (!strcmp(argv[i], "--token"))
			s.token_path = argv[i + 1];
		else if (!strcmp(argv[i], "--sha256") &&
			 parse_sha(argv[i + 1], s.src.sha256) == 0)
			;
		else if (!strcmp(argv[i], "--cancel-file"))
			s.cancel_path = argv[i + 1];
		else if (!strcmp(argv[i], "--rate") &&
			 parse_u64(argv[i + 1], &s.rate) == 0)
			;
		else if (!strcmp(argv[i], "--growing") &&
			 parse_u64(argv[i + 1], &s.grow_rate) == 0 &&
			 s.grow_rate)
			;
		else if (!strcmp(argv[i], "--size-hint") &&
			 parse_u64(argv[i + 1], &s.src.size_hint) == 0)
			;
		else if (!strcmp(argv[i], "--abandon-at") &&
			 parse_u64(argv[i + 1], &s.abandon_at) == 0)
			;
		else if (!strcmp(argv[i], "--kill-after-saves") &&
			 parse_u64(argv[i + 1], &n) == 0 && n < 1000000)
			s.kill_after = (int)n;
		else
			return 2;
	}
	if (argc - i != 2)
		return 2;
	s.src.fd = open(argv[i + 1], O_RDONLY | O_CLOEXEC);
	if (s.src.fd < 0 || fstat(s.src.fd, &st) < 0) {
		perror(argv[i + 1]);
		return 1;
	}
	if (s.token_path)
		token = load_file(s.token_path, &token_len);
	s.src.size = (uint64_t)st.st_size;
	s.src.read_at = read_at;
	s.src.resume_token = token;
	s.src.resume_token_len = token_len;
	s.src.save_resume_token = save_token;
	s.src.progress = progress;
	s.src.cancelled = cancelled;
	if (s.grow_rate) {
		s.file_size = s.src.size;
		s.src.size = 0;
		if (!s.src.size_hint)
			s.src.size_hint = s.file_size;
		s.src.grow = grow;
		clock_gettime(CLOCK_MONOTONIC, &s.grow_start);
	}
	r = ops->put(inst, argv[i], &s.src, &err);
	close(s.src.fd);
	free(token);
	if (r < 0)
		return fail("put", r, &err);
	printf("stored %s %" PRIu64 " bytes, %d token saves\n", argv[i],
	       s.grow_rate ? s.file_size : s.src.size, s.saves);
	return 0;
}

static int cmd_get(const struct drgw_backend_ops *ops, void *inst,
		   const char *key, uint64_t off, size_t len, const char *out)
{
	struct drgw_err err = { 0 };
	char *buf = malloc(len ? len : 1);
	size_t got = 0;
	int fd, r;

	if (!buf)
		return 1;
	r = ops->get(inst, key, off, buf, len, &got, &err);
	if (r < 0) {
		free(buf);
		return fail("get", r, &err);
	}
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, buf, got) < 0) {
		perror(out);
		free(buf);
		return 1;
	}
	close(fd);
	free(buf);
	printf("read %zu\n", got);
	return 0;
}

static int cmd_cat(const struct drgw_backend_ops *ops, void *inst,
		   const char *key, const char *out)
{
	struct drgw_object_info info;
	struct drgw_err err = { 0 };
	char *buf = malloc(CAT_CHUNK);
	uint64_t off = 0;
	int fd, r = 0;

	if (!buf)
		return 1;
	r = ops->stat(inst, key, &info, &err);
	if (r < 0) {
		free(buf);
		return fail("cat", r, &err);
	}
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(buf);
		perror(out);
		return 1;
	}
	while (off < info.size) {
		size_t got = 0;

		r = ops->get(inst, key, off, buf, CAT_CHUNK, &got, &err);
		if (r < 0)
			break;
		if (got == 0) {
			r = -EIO;
			snprintf(err.msg, sizeof(err.msg), "short object");
			break;
		}
		if (write_all(fd, buf, got) < 0) {
			r = -EIO;
			break;
		}
		off += got;
	}
	close(fd);
	free(buf);
	if (r < 0)
		return fail("cat", r, &err);
	printf("read %" PRIu64 "\n", off);
	return 0;
}

struct lister {
	uint64_t n;
};

static int on_key(void *arg, const char *key,
		  const struct drgw_object_info *info)
{
	struct lister *l = arg;

	printf("%s\t%" PRIu64 "\n", key, info->size);
	l->n++;
	return 0;
}

/* Every page of list(), or of list_range() when ranged. */
static int cmd_list(const struct drgw_backend_ops *ops, void *inst,
		    const char *prefix, bool ranged, const char *after,
		    const char *before)
{
	struct lister l = { 0 };
	char *token = NULL, *next = malloc(4096);
	int pages = 0, r;

	if (!next)
		return 1;
	if (ranged && !ops->list_range) {
		free(next);
		return fail("list-range", -ENOSYS, NULL);
	}
	do {
		struct drgw_err err = { 0 };

		r = ranged ? ops->list_range(inst, prefix, after, before, token,
					     on_key, &l, next, 4096, &err) :
			     ops->list(inst, prefix, token, on_key, &l, next,
				       4096, &err);
		pages++;
		if (r < 0) {
			free(token);
			free(next);
			return fail("list", r, &err);
		}
		free(token);
		token = next[0] ? strdup(next) : NULL;
	} while (token);
	free(next);
	fprintf(stderr, "pages %d keys %" PRIu64 "\n", pages, l.n);
	return 0;
}

/* Parses a decimal or 0x-prefixed hex ctl() opcode. */
static int parse_opcode(const char *s, int *ret)
{
	uint64_t v = 0;

	if (!strncmp(s, "0x", 2)) {
		if (!s[2])
			return -EINVAL;
		for (s += 2; *s; s++) {
			int d = hexval(*s >= 'A' && *s <= 'F' ? *s - 'A' + 'a' : *s);

			if (d < 0 || v > 0xfffffff)
				return -EINVAL;
			v = v * 16 + (uint64_t)d;
		}
	} else if (parse_u64(s, &v) < 0 || v > 0x7fffffff) {
		return -EINVAL;
	}
	*ret = (int)v;
	return 0;
}

static int ctl_msg(const struct drgw_backend_ops *ops, void *inst,
		   const char *cmd, int op)
{
	struct drgw_err err = { 0 };
	int r = ops->ctl(inst, op, &err);

	if (r < 0)
		return fail(cmd, r, &err);
	printf("%s\n", err.msg);
	return 0;
}

static int run_batch(const struct drgw_backend_ops *ops, void *inst);
static int run_command(const struct drgw_backend_ops *ops, void *inst,
		       int argc, char **argv, int in_batch);

struct par_job {
	pthread_t tid;
	const struct drgw_backend_ops *ops;
	void *inst;
	int argc;
	char *argv[MAX_BATCH_ARGS];
	int r;
};

static void *par_main(void *arg)
{
	struct par_job *j = arg;

	j->r = run_command(j->ops, j->inst, j->argc, j->argv, 2);
	return NULL;
}

/* Copies s with every "{}" replaced by n. */
static char *subst(const char *s, int n)
{
	size_t len = strlen(s) + 1, i = 0;
	char *out, num[16];
	int nlen = snprintf(num, sizeof(num), "%d", n);

	for (const char *p = strstr(s, "{}"); p; p = strstr(p + 2, "{}"))
		len += (size_t)nlen;
	out = malloc(len);
	if (!out)
		return NULL;
	while (*s) {
		if (s[0] == '{' && s[1] == '}') {
			memcpy(out + i, num, (size_t)nlen);
			i += (size_t)nlen;
			s += 2;
		} else {
			out[i++] = *s++;
		}
	}
	out[i] = '\0';
	return out;
}

static int run_parallel(const struct drgw_backend_ops *ops, void *inst,
			int n, int argc, char **argv)
{
	struct par_job *jobs = calloc((size_t)n, sizeof(*jobs));
	int started = 0, r = 0;

	if (!jobs || argc > MAX_BATCH_ARGS) {
		free(jobs);
		return 2;
	}
	for (; started < n; started++) {
		struct par_job *j = &jobs[started];

		j->ops = ops;
		j->inst = inst;
		j->argc = argc;
		for (int a = 0; a < argc; a++)
			if (!(j->argv[a] = subst(argv[a], started)))
				r = 1;
		if (r || pthread_create(&j->tid, NULL, par_main, j)) {
			r = 1;
			break;
		}
	}
	for (int i = 0; i < started; i++) {
		pthread_join(jobs[i].tid, NULL);
		if (jobs[i].r && !r)
			r = jobs[i].r;
	}
	for (int i = 0; i < n; i++)
		for (int a = 0; a < argc; a++)
			free(jobs[i].argv[a]);
	free(jobs);
	return r;
}

/* Runs one command (argv[0]) on the open instance; the exit status.
 * in_batch: 0 from argv, 1 from batch, 2 in a parallel thread. */
static int run_command(const struct drgw_backend_ops *ops, void *inst,
		       int argc, char **argv, int in_batch)
{
	const char *cmd = argv[0];
	struct drgw_err err = { 0 };
	uint64_t caps, ms;
	int r, op;

	if (!strcmp(cmd, "put")) {
		r = cmd_put(ops, inst, argc, argv);
	} else if (!strcmp(cmd, "get") && argc == 5) {
		uint64_t off, len;

		r = parse_u64(argv[2], &off) || parse_u64(argv[3], &len) ? 2 :
			cmd_get(ops, inst, argv[1], off, (size_t)len, argv[4]);
	} else if (!strcmp(cmd, "cat") && argc == 3) {
		r = cmd_cat(ops, inst, argv[1], argv[2]);
	} else if (!strcmp(cmd, "stat") && argc == 2) {
		struct drgw_object_info info;

		r = ops->stat(inst, argv[1], &info, &err);
		if (r < 0)
			r = fail("stat", r, &err);
		else
			printf("size %" PRIu64 " mtime %" PRId64 " etag %s\n",
			       info.size, info.mtime_ns, info.etag);
	} else if (!strcmp(cmd, "list") && argc <= 2) {
		r = cmd_list(ops, inst, argc == 2 ? argv[1] : "", false, NULL,
			     NULL);
	} else if (!strcmp(cmd, "list-range") && (argc == 3 || argc == 4)) {
		r = cmd_list(ops, inst, argc == 4 ? argv[3] : "", true,
			     strcmp(argv[1], "-") ? argv[1] : NULL,
			     strcmp(argv[2], "-") ? argv[2] : NULL);
	} else if (!strcmp(cmd, "rm") && argc == 2) {
		r = ops->remove(inst, argv[1], &err);
		r = r < 0 ? fail("rm", r, &err) : 0;
	} else if (!strcmp(cmd, "rm-many") && argc >= 2) {
		int *res = calloc((size_t)argc, sizeof(*res));

		if (!res || !ops->remove_many) {
			r = fail("rm-many", res ? -ENOSYS : -ENOMEM, NULL);
		} else {
			r = ops->remove_many(inst, (const char *const *)argv + 1,
					     (size_t)argc - 1, res, &err);
			for (int k = 1; k < argc; k++)
				printf("%s\t%s\n", argv[k],
				       res[k - 1] ? strerrorname_np(-res[k - 1]) :
						    "ok");
			r = r < 0 ? fail("rm-many", r, &err) : 0;
		}
		free(res);
	} else if ((!strcmp(cmd, "lock") || !strcmp(cmd, "prune-lock")) &&
		   argc == 2) {
		struct drgw_object_info info;

		/* prune-lock: as drgw prune asks, the bucket first. */
		if (!strcmp(cmd, "prune-lock")) {
			struct drgw_retention ret = { .struct_size = sizeof(ret) };

			ops->ctl(inst, DRGW_CTL_RETENTION, &ret);
		}
		memset(&info, 0, sizeof(info));
		r = ops->stat(inst, argv[1], &info, &err);
		if (r < 0)
			r = fail("lock", r, &err);
		else
			printf("known %d hold %d until %" PRId64 "\n",
			       !!(info.lock_flags & DRGW_LOCK_KNOWN),
			       !!(info.lock_flags & DRGW_LOCK_HOLD),
			       info.retain_until_ns);
	} else if (!strcmp(cmd, "retention") && argc == 1) {
		struct drgw_retention ret = { .struct_size = sizeof(ret) };

		r = ops->ctl(inst, DRGW_CTL_RETENTION, &ret);
		if (r < 0) {
			snprintf(err.msg, sizeof(err.msg), "%s", ret.source);
			r = fail("retention", r, &err);
		} else {
			printf("flags %u period %" PRId64 " source %s\n",
			       ret.flags, ret.period_ns, ret.source);
		}
	} else if (!strcmp(cmd, "abort") && argc == 3) {
		size_t len = 0;
		void *tok = load_file(argv[2], &len);

		r = ops->abort_put(inst, argv[1], tok, len, &err);
		free(tok);
		r = r < 0 ? fail("abort", r, &err) : 0;
	} else if (!strcmp(cmd, "describe") && argc == 1) {
		r = ctl_msg(ops, inst, cmd, DRGW_CTL_DESCRIBE);
	} else if (!strcmp(cmd, "creds") && argc == 1) {
		r = ctl_msg(ops, inst, cmd, S3_CTL_CREDS_SOURCE);
	} else if (!strcmp(cmd, "ctl-msg") && argc == 2 &&
		   parse_opcode(argv[1], &op) == 0) {
		r = ctl_msg(ops, inst, cmd, op);
	} else if (!strcmp(cmd, "ping") && argc == 1) {
		r = ops->ctl(inst, DRGW_CTL_PING, &err);
		r = r < 0 ? fail("ping", r, &err) : 0;
	} else if (!strcmp(cmd, "caps") && argc == 1) {
		r = ops->ctl(inst, S3_CTL_INSTANCE_CAPS, &caps);
		if (r < 0)
			caps = ops->caps;
		printf("0x%" PRIx64 "\n", caps);
		r = 0;
	} else if (!strcmp(cmd, "ctl-u64") && argc == 2 &&
		   parse_opcode(argv[1], &op) == 0) {
		r = ops->ctl(inst, op, &caps);
		if (r < 0)
			r = fail(cmd, r, NULL);
		else
			printf("0x%" PRIx64 "\n", caps);
	} else if (!strcmp(cmd, "sleep") && argc == 2 && in_batch &&
		   parse_u64(argv[1], &ms) == 0) {
		struct timespec ts = { (time_t)(ms / 1000),
				       (long)(ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		r = 0;
	} else if (!strcmp(cmd, "parallel") && argc >= 3 && in_batch < 2 &&
		   parse_u64(argv[1], &ms) == 0 && ms >= 1 && ms <= MAX_THREADS) {
		r = run_parallel(ops, inst, (int)ms, argc - 2, argv + 2);
	} else if (!strcmp(cmd, "batch") && argc == 1 && !in_batch) {
		r = run_batch(ops, inst);
	} else {
		fprintf(stderr, "plugin-harness: bad command or arguments: %s\n", cmd);
		r = 2;
	}
	fflush(stdout);
	return r;
}

static int run_batch(const struct drgw_backend_ops *ops, void *inst)
{
	char line[8192];
	int r = 0;

	while (!r && fgets(line, sizeof(line), stdin)) {
		char *args[MAX_BATCH_ARGS], *p = line;
		const char *sep = strchr(line, '\t') ? "\t" : " ";
		int n = 0;

		line[strcspn(line, "\r\n")] = '\0';
		/* strsep() rather than strtok(): empty fields stay fields. */
		while (p && n < MAX_BATCH_ARGS) {
			char *f = strsep(&p, sep);

			if (*f || *sep == '\t')
				args[n++] = f;
		}
		if (n == 0)
			continue;
		r = run_command(ops, inst, n, args, 1);
	}
	return r;
}

int main(int argc, char **argv)
{
	struct drgw_option opts[MAX_OPTS];
	struct drgw_backend_config cfg = { .struct_size = sizeof(cfg) };
	const struct drgw_backend_ops *(*entry)(void);
	const struct drgw_backend_ops *ops;
	struct drgw_err err = { 0 };
	size_t nopt = 0;
	void *dl, *inst;
	const char *cmd;
	int i = 1, r, read_only = 0;

	/* As the gateway does: a peer closing a connection must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "-v")) {
			verbose = 1;
		} else if (!strcmp(argv[i], "-r")) {
			read_only = 1;
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc &&
			   nopt < MAX_OPTS && strchr(argv[i + 1], '=')) {
			char *eq = strchr(argv[++i], '=');

			*eq = '\0';
			opts[nopt++] = (struct drgw_option){ argv[i], eq + 1 };
		} else {
			break;
		}
	}
	if (argc - i < 3) {
		fprintf(stderr, "usage: plugin-harness [-v] [-r] [-o key=value]... PLUGIN URL COMMAND ARGS...\n");
		return 2;
	}
	dl = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		fprintf(stderr, "plugin-harness: %s\n", dlerror());
		return 1;
	}
	entry = (const struct drgw_backend_ops *(*)(void))dlsym(dl, DRGW_BACKEND_ENTRY_SYMBOL);
	ops = entry ? entry() : NULL;
	if (!ops || ops->abi_version != DRGW_BACKEND_ABI_VERSION) {
		fprintf(stderr, "plugin-harness: %s is not an ABI 1 plugin\n", argv[i]);
		return 1;
	}
	inst = calloc(1, ops->instance_size);
	if (!inst)
		return 1;
	cfg.name = "harness";
	cfg.url = argv[i + 1];
	cfg.options = opts;
	cfg.n_options = nopt;
	cfg.host = &host;
	cmd = argv[i + 2];
	cfg.read_only = read_only || !strcmp(cmd, "get") || !strcmp(cmd, "cat") ||
			!strcmp(cmd, "stat") || !strcmp(cmd, "list");
	r = ops->open(inst, &cfg, &err);
	if (r < 0) {
		r = fail("open", r, &err);
		goto out_free;
	}
	r = run_command(ops, inst, argc - (i + 2), argv + i + 2, 0);
	ops->close(inst);
out_free:
	free(inst);
	/* No dlclose(): the process ends here anyway, and GCC 12's
	 * LeakSanitizer crashes walking the dynamic TLS of modules unloaded
	 * before exit (libcurl's TLS libraries), which would hide real leak
	 * reports in sanitizer runs. */
	(void)dl;
	return r;
}
