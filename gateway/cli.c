/* SPDX-License-Identifier: MIT */
/*
 * Command-line parsing and output helpers; see cli.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"

/* Common options: every one is also a config setting of the same name. */
struct common {
	const char *name;
	unsigned group;
	const char *help;
};

static const struct common common_opts[] = {
	{ "cache", CLI_COMMON_CACHE, "DIR       cache directory (working set, spool, catalog)" },
	{ "key-file", CLI_COMMON_KEY, "FILE   master key file (repeat for older keys)" },
	{ "recipient", CLI_COMMON_KEY, "R     encrypt to recipient R (drgw1...; repeatable; no secret needed)" },
	{ "recipient-file", CLI_COMMON_KEY, "F encrypt to the recipients in file F (repeatable)" },
	{ "identity", CLI_COMMON_KEY, "FILE   identity that decrypts (from drgw keygen --identity; repeatable)" },
	{ "repository", CLI_COMMON_KEY, "ID   repository id objects are bound to (see drgw status)" },
	{ "backend", CLI_COMMON_BACKEND, "NAME=URL backend, e.g. offsite=s3://bucket/prefix (repeatable)" },
	{ "plugin-dir", CLI_COMMON_BACKEND, "DIR  where drgw-<scheme>.so plugins are" },
	{ "settle-delay", CLI_COMMON_DAEMON, "DUR quiet time before a closed file is sealed (2s)" },
	{ "write-through-below", CLI_COMMON_DAEMON, "SIZE write through (ENOSPC at write) when the cache has less free (1GiB)" },
	{ "passthrough", CLI_COMMON_DAEMON, "BOOL FUSE passthrough where libfuse and the kernel offer it (on)" },
	{ "exclude", CLI_COMMON_DAEMON, "GLOB    names never sealed (repeatable; '' clears the defaults)" },
	{ "compression-level", CLI_COMMON_DAEMON, "N zstd level (1)" },
	{ "incremental", CLI_COMMON_DAEMON, "BOOL store only what changed since the series' last version (on)" },
	{ "incremental-max-chain", CLI_COMMON_DAEMON, "N a full object after N increments (7)" },
	{ "incremental-max-changed", CLI_COMMON_DAEMON, "PCT a full object when more than PCT% changed (50)" },
	{ "incremental-max-read", CLI_COMMON_DAEMON, "PCT a full object when a restore of an increment would read more than PCT% of the file's bytes (125)" },
	{ "incremental-min-size", CLI_COMMON_DAEMON, "SIZE files smaller than SIZE are always stored whole (1MiB)" },
	{ "chunk-size", CLI_COMMON_DAEMON, "SIZE  plaintext bytes per chunk (1MiB)" },
	{ "encode-threads", CLI_COMMON_DAEMON, "N encoder threads (one per CPU)" },
	{ "check-sqlite", CLI_COMMON_DAEMON, "LEVEL check SQLite snapshots: off, header, quick (default), full" },
	{ "check-sqlite-timeout", CLI_COMMON_DAEMON, "DUR stop a check after DUR; only the header counts then (10m)" },
	{ "upload-workers", CLI_COMMON_DAEMON, "N concurrent uploads (4)" },
	{ "streaming", CLI_COMMON_DAEMON, "BOOL   upload while encoding, where the backend can (on)" },
	{ "backend-concurrency", CLI_COMMON_DAEMON, "N concurrent uploads per backend (2)" },
	{ "retry-min", CLI_COMMON_DAEMON, "DUR   first retry delay (1s)" },
	{ "retry-max", CLI_COMMON_DAEMON, "DUR   longest retry delay (5m)" },
	{ "index-interval", CLI_COMMON_DAEMON, "DUR how often a running daemon writes index records (5m; also at stop)" },
	{ "drain-timeout", CLI_COMMON_DAEMON, "DUR time to finish uploads when stopping (60s)" },
	{ "read-cache", CLI_COMMON_READ, "SIZE  memory for restore reads: decoded chunks and fetches in flight (32MiB)" },
	{ "read-deadline", CLI_COMMON_READ, "DUR one read from one backend, retries included, before the next is tried (30s; 0: none)" },
	{ "readahead", CLI_COMMON_READ, "N     chunks fetched ahead of sequential reads (16)" },
	{ "read-request-size", CLI_COMMON_READ, "SIZE of a file one read-ahead request covers (8MiB)" },
	{ "fetch-threads", CLI_COMMON_READ, "N concurrent chunk fetches for restore reads (4)" },
	{ "max-age", CLI_COMMON_READ, "DUR     refuse a newest version sealed longer ago than DUR (rollback)" },
	{ "allow-older", CLI_COMMON_READ, "[=BOOL] restore even if the catalog knows a newer replicated version" },
	{ "allow-other", CLI_COMMON_DAEMON | CLI_COMMON_READ, "[=BOOL] let other users use the mount (gateway: on; restore view: off)" },
	{ "uid", CLI_COMMON_READ, "UID       restore view: owner of the files (the mounting user)" },
	{ "gid", CLI_COMMON_READ, "GID       restore view: group of the files (the mounting user's)" },
	{ "umask", CLI_COMMON_READ, "MASK    restore view: permission bits never granted (077)" },
	{ "metrics-listen", CLI_COMMON_DAEMON, "ADDR serve /metrics, /healthz, /readyz on ADDR (:9110 is loopback; 0.0.0.0:9110 all interfaces)" },
	{ "keep-last", CLI_COMMON_POLICY, "N      retention: keep the N newest snapshots of each group" },
	{ "keep-hourly", CLI_COMMON_POLICY, "N    keep the newest snapshot of each of the last N hours" },
	{ "keep-daily", CLI_COMMON_POLICY, "N     ... of the last N days (UTC)" },
	{ "keep-weekly", CLI_COMMON_POLICY, "N    ... of the last N ISO weeks" },
	{ "keep-monthly", CLI_COMMON_POLICY, "N   ... of the last N months" },
	{ "keep-yearly", CLI_COMMON_POLICY, "N    ... of the last N years ('unlimited': all periods)" },
	{ "keep-within", CLI_COMMON_POLICY, "DUR  keep all within DUR (e.g. 30d, 1y6m) of the group's newest" },
	{ "keep-within-hourly", CLI_COMMON_POLICY, "DUR hourly snapshots within DUR of the newest" },
	{ "keep-within-daily", CLI_COMMON_POLICY, "DUR daily ... within DUR" },
	{ "keep-within-weekly", CLI_COMMON_POLICY, "DUR weekly ... within DUR" },
	{ "keep-within-monthly", CLI_COMMON_POLICY, "DUR monthly ... within DUR" },
	{ "keep-within-yearly", CLI_COMMON_POLICY, "DUR yearly ... within DUR" },
	{ "log-level", 0, "LEVEL  error, warning, info (default), debug" },
	{ "log-format", 0, "FMT   logfmt (default) or json" },
	{ "log-file", 0, "FILE    append the log to FILE" },
};

/* Above every short option character, below the commands' own ids. */
#define ID_CONFIG 256
#define ID_HELP 257
#define ID_COMMON 300

void drgw_cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("drgw: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int drgw_cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "drgw %s: %s (see 'drgw %s --help')\n", cmd->name, msg,
		cmd->name);
	return EXIT_USAGE;
}

/* A command's own option replaces a common one of the same name. */
static bool common_applies(const struct cli_cmd *cmd, size_t i)
{
	for (const struct cli_opt *o = cmd->opts; o && o->name; o++)
		if (!strcmp(o->name, common_opts[i].name))
			return false;
	return !common_opts[i].group || (common_opts[i].group & cmd->common);
}

static void print_help(const struct cli_cmd *cmd)
{
	printf("usage: drgw %s %s\n\n%s\n", cmd->name, cmd->synopsis, cmd->help);
	if (cmd->opts_help)
		printf("\n%s", cmd->opts_help);
	printf("\ncommon options:\n  --config FILE     read settings from an INI file (see drgw.conf(5) / docs/drgw.conf.example)\n");
	for (size_t i = 0; i < ARRAY_SIZE(common_opts); i++)
		if (common_applies(cmd, i))
			printf("  --%s %s\n", common_opts[i].name,
			       common_opts[i].help);
	printf("  -h, --help        show this help\n");
}

int drgw_cli_parse(const struct cli_cmd *cmd, int argc, char **argv,
		   struct drgw_config *cfg, cli_opt_fn fn, void *arg)
{
	struct option longopts[ARRAY_SIZE(common_opts) + 40];
	char shortopts[64] = "h";
	struct drgw_err err = { 0 };
	size_t n = 0;
	int c, r;

	longopts[n++] = (struct option){ "config", required_argument, NULL,
					 ID_CONFIG };
	longopts[n++] = (struct option){ "help", no_argument, NULL, ID_HELP };
	for (size_t i = 0; i < ARRAY_SIZE(common_opts); i++)
		if (common_applies(cmd, i))
			longopts[n++] = (struct option){
				common_opts[i].name,
				/* --allow-other alone means on */
				common_opts[i].help[0] == '[' ? optional_argument :
								required_argument,
				NULL, ID_COMMON + (int)i
			};
	for (const struct cli_opt *o = cmd->opts; o && o->name; o++) {
		longopts[n++] = (struct option){ o->name, o->has_arg, NULL, o->id };
		if (o->short_name) {
			size_t l = strlen(shortopts);

			shortopts[l] = o->short_name;
			shortopts[l + 1] = o->has_arg ? ':' : '\0';
			shortopts[l + 2] = '\0';
		}
	}
	longopts[n] = (struct option){ 0 };

	/* Pass 1: the config file, so the command line can override it. */
	opterr = 0;
	optind = 0; /* 0, not 1: glibc then re-initialises its state */
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (c != ID_CONFIG)
			continue;
		r = drgw_config_load(cfg, optarg, &err);
		if (r < 0) {
			drgw_cli_error("%s", err.msg);
			return -1;
		}
	}

	/* Pass 2: everything else, in order. */
	opterr = 0;
	optind = 0; /* 0, not 1: glibc then re-initialises its state */
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (c == ID_CONFIG)
			continue;
		if (c == ID_HELP || c == 'h') {
			print_help(cmd);
			return -2;
		}
		if (c == '?' || c == ':') {
			if (optopt && optopt < 256 && optopt != '?')
				drgw_cli_usage_error(cmd, "unknown or incomplete option '-%c'", optopt);
			else
				drgw_cli_usage_error(cmd, "unknown or incomplete option '%s'",
						     argv[optind - 1]);
			return -1;
		}
		if (c >= ID_COMMON && c < ID_COMMON + (int)ARRAY_SIZE(common_opts)) {
			memset(&err, 0, sizeof(err));
			r = drgw_config_set(cfg, common_opts[c - ID_COMMON].name,
					    optarg ? optarg : "on", &err);
			if (r < 0) {
				drgw_cli_usage_error(cmd, "%s", err.msg);
				return -1;
			}
			continue;
		}
		/* A short option comes back as its character. */
		for (const struct cli_opt *o = cmd->opts; o && o->name; o++)
			if (o->short_name && c == o->short_name)
				c = o->id;
		r = fn ? fn(arg, c, optarg) : -EINVAL;
		if (r < 0)
			return -1;
	}
	return optind;
}

void drgw_cli_apply_log(const struct drgw_config *cfg)
{
	drgw_log_set_level(cfg->log_level);
	drgw_log_set_format(cfg->log_format);
	if (cfg->log_file && drgw_log_open_file(cfg->log_file) < 0)
		drgw_cli_error("cannot open log file %s: %s; logging to stderr",
			       cfg->log_file, strerror(errno));
}

int drgw_cli_print_json(json_t *v)
{
	int r;

	if (!v)
		return 1;
	r = json_dumpf(v, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(v);
	fputc('\n', stdout);
	return r == 0 ? 0 : 1;
}

int drgw_cli_temp_cache(struct drgw_config *cfg, char *buf, size_t size)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(buf, size, "%s/drgw-cache-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(buf))
		return -errno;
	return drgw_config_set(cfg, "cache", buf, NULL);
}

/* rm -r of a directory drgw created itself (no symlink games possible:
 * it is ours and 0700). */
static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[4096];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR)
			remove_tree(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

void drgw_cli_temp_cache_remove(const char *dir)
{
	if (dir && *dir)
		remove_tree(dir);
}

void drgw_cli_cache_hint(size_t tails_read)
{
	/* A few requests are not worth a word. */
	if (tails_read >= 100)
		drgw_cli_error("note: read the tails of %zu objects to find what the backends hold; with --cache DIR the next run reads only those it has not seen",
			       tails_read);
}
