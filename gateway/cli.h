/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the drgw command line: option parsing (every setting of
 * config.h is a long option of every subcommand), output helpers, and the
 * subcommand entry points.  Exit codes: 0 success, 1 runtime failure,
 * 2 usage error (DESIGN.md).
 */
#ifndef DRGW_CLI_H
#define DRGW_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>

#include "config.h"

#define EXIT_USAGE 2

/* A subcommand's own option.  id >= 1000; has_arg as for getopt_long. */
struct cli_opt {
	const char *name;
	int has_arg;
	int id;
	char short_name;
};

struct cli_cmd {
	const char *name;
	/* "[options] MOUNTPOINT" */
	const char *synopsis;
	/* Paragraph printed under --help. */
	const char *help;
	const struct cli_opt *opts;
	/* Help lines of the command's own options. */
	const char *opts_help;
	/* Which common options apply; see CLI_COMMON_*. */
	unsigned common;
};

#define CLI_COMMON_CACHE (1u << 0)
#define CLI_COMMON_KEY (1u << 1)
#define CLI_COMMON_BACKEND (1u << 2)
#define CLI_COMMON_DAEMON (1u << 3) /* sealing, encoding, replication */
#define CLI_COMMON_READ (1u << 4)   /* restore reads */
#define CLI_COMMON_POLICY (1u << 5) /* retention: keep-* (drgw prune) */

typedef int (*cli_opt_fn)(void *arg, int id, const char *value);

/*
 * Parses argv for cmd into cfg: first --config (loaded before everything
 * else so the command line overrides it), then the rest in order.
 * Returns the index of the first operand, or -1 after printing a one-line
 * error (exit 2), or -2 after printing --help (exit 0).
 */
int drgw_cli_parse(const struct cli_cmd *cmd, int argc, char **argv,
		   struct drgw_config *cfg, cli_opt_fn fn, void *arg);

/* "drgw: <message>" on stderr. */
void drgw_cli_error(const char *fmt, ...) DRGW_PRINTF(1, 2);
/* Prints a usage error and returns EXIT_USAGE. */
int drgw_cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
	DRGW_PRINTF(2, 3);
/* Applies log settings of cfg to the process. */
void drgw_cli_apply_log(const struct drgw_config *cfg);
/* Dumps a JSON value to stdout with a newline; returns 0 or 1. */
int drgw_cli_print_json(json_t *v);

/* A temporary cache directory for commands run without --cache; removed
 * by drgw_cli_temp_cache_remove(). */
int drgw_cli_temp_cache(struct drgw_config *cfg, char *buf, size_t size);
void drgw_cli_temp_cache_remove(const char *dir);

/* drgw prune, also run by drgw run --prune (cmd_prune.c). */
struct drgw_gateway;
struct drgw_prune_cli {
	bool json;
	bool dry_run;
	/* Summary and warnings to the log instead of a table (drgw run). */
	bool quiet;
	/* Only these backends (NULL/0: all) and groups (fnmatch). */
	const char *const *only;
	size_t n_only;
	const char *const *patterns;
	size_t n_patterns;
};
/* Usage checks before anything is opened: the backends named exist and
 * each one to prune has a policy.  0, or EXIT_USAGE after one line. */
int drgw_cli_prune_check(const char *cmd, const struct drgw_config *cfg,
			 const struct drgw_prune_cli *a);
/* Prunes the backends of gw (opened for writing): 0, or 1 if one failed. */
int drgw_cli_prune(struct drgw_gateway *gw, const struct drgw_prune_cli *a);

int drgw_cmd_keygen(int argc, char **argv);
int drgw_cmd_mount(int argc, char **argv);
int drgw_cmd_ls(int argc, char **argv);
int drgw_cmd_status(int argc, char **argv);
int drgw_cmd_wait(int argc, char **argv);
int drgw_cmd_restore(int argc, char **argv);
int drgw_cmd_verify(int argc, char **argv);
int drgw_cmd_run(int argc, char **argv);
int drgw_cmd_drill(int argc, char **argv);
int drgw_cmd_backfill(int argc, char **argv);
int drgw_cmd_prune(int argc, char **argv);

#endif
