/* SPDX-License-Identifier: MIT */
/*
 * `drgw prune`: applies each backend's retention policy (policy.h) to what
 * the backend holds (prune.h), and prints the plan as a table or as one
 * JSON object per version and backend.  `drgw run --prune` calls the same
 * code after a successful backup, with a summary in the log instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "prune.h"
#include "restore.h"

enum { OPT_BACKEND = 1000, OPT_PATTERN, OPT_DRY_RUN, OPT_JSON };

#define MAX_PATTERNS 64

struct args {
	struct drgw_config *cfg;
	struct drgw_prune_cli cli;
	const char *only[DRGW_MAX_BACKENDS];
	const char *patterns[MAX_PATTERNS];
};

static const struct cli_opt prune_opts[] = {
	{ "backend", required_argument, OPT_BACKEND, 0 },
	{ "pattern", required_argument, OPT_PATTERN, 0 },
	{ "dry-run", no_argument, OPT_DRY_RUN, 'n' },
	{ "json", no_argument, OPT_JSON, 0 },
	{ 0 },
};

static const struct cli_cmd prune_cmd = {
	.name = "prune",
	.synopsis = "[--backend NAME]... [--keep-* N]... [--pattern GLOB]... [--dry-run] [--json]",
	.help = "Removes from each backend the snapshot versions its retention policy does\n"
		"not keep, with restic's `forget` rules: a snapshot kept by any rule is\n"
		"kept; --keep-daily N keeps the newest snapshot of each of the last N days\n"
		"that have one (hours, ISO weeks, months and years alike, in UTC);\n"
		"--keep-within DUR keeps everything within DUR of the group's newest\n"
		"snapshot (not of now: when backups stop, nothing more is removed).\n"
		"A group is one backend and one name pattern (digits become '*', so\n"
		"app-20261201.db and app-20261202.db are one series).  The policy comes\n"
		"from the configuration ([drgw] and per [backend \"NAME\"]); keep-*\n"
		"options replace it.  Never removed: the newest version of every group,\n"
		"objects an Object Lock or GCS retention or hold protects (shown as\n"
		"locked), objects drgw cannot read.  Without a policy nothing is\n"
		"removed and drgw prune exits 2.  It works from the backends alone:\n"
		"without --cache the catalog is a temporary one.\n\n"
		"exit status: 0 done, 1 a backend failed (the others were pruned),\n"
		"2 usage error or no policy",
	.opts = prune_opts,
	.opts_help = "options:\n"
		     "  --backend NAME     prune only this backend (repeatable; NAME=URL configures one)\n"
		     "  --pattern GLOB     only the groups whose name pattern matches GLOB (repeatable)\n"
		     "  -n, --dry-run      change nothing; print what would be kept and removed\n"
		     "  --json             one JSON object per line and version: backend, name,\n"
		     "                     version, time, action (keep/remove), reasons, ...\n",
	.common = CLI_COMMON_CACHE | CLI_COMMON_KEY | CLI_COMMON_BACKEND |
		  CLI_COMMON_READ | CLI_COMMON_POLICY,
};

static int on_opt(void *arg, int id, const char *value)
{
	struct args *a = arg;
	struct drgw_err err = { 0 };

	switch (id) {
	case OPT_BACKEND:
		/* NAME=URL configures a backend; a bare NAME picks one. */
		if (strchr(value, '=')) {
			if (drgw_config_add_backend_arg(a->cfg, value, &err) == 0)
				return 0;
			drgw_cli_usage_error(&prune_cmd, "%s", err.msg);
			return -EINVAL;
		}
		if (a->cli.n_only == DRGW_MAX_BACKENDS) {
			drgw_cli_usage_error(&prune_cmd, "too many --backend");
			return -EINVAL;
		}
		a->only[a->cli.n_only++] = value;
		return 0;
	case OPT_PATTERN:
		if (a->cli.n_patterns == MAX_PATTERNS) {
			drgw_cli_usage_error(&prune_cmd, "too many --pattern");
			return -EINVAL;
		}
		a->patterns[a->cli.n_patterns++] = value;
		return 0;
	case OPT_DRY_RUN:
		a->cli.dry_run = true;
		return 0;
	case OPT_JSON:
		a->cli.json = true;
		return 0;
	}
	return -EINVAL;
}

static bool selected(const struct drgw_prune_cli *a, const char *name)
{
	if (!a->n_only)
		return true;
	for (size_t i = 0; i < a->n_only; i++)
		if (!strcmp(a->only[i], name))
			return true;
	return false;
}

int drgw_cli_prune_check(const char *cmd, const struct drgw_config *cfg,
			 const struct drgw_prune_cli *a)
{
	for (size_t i = 0; i < a->n_only; i++) {
		size_t b;

		for (b = 0; b < cfg->n_backends; b++)
			if (!strcmp(cfg->backends[b].name, a->only[i]))
				break;
		if (b == cfg->n_backends) {
			fprintf(stderr, "drgw %s: no backend named %s is configured (see 'drgw %s --help')\n",
				cmd, a->only[i], cmd);
			return EXIT_USAGE;
		}
	}
	for (size_t i = 0; i < cfg->n_backends; i++) {
		if (!selected(a, cfg->backends[i].name))
			continue;
		if (drgw_policy_empty(drgw_config_policy(cfg, i))) {
			fprintf(stderr,
				"drgw %s: no retention policy for backend %s, so nothing would be kept: set keep-daily, keep-weekly, ... in the config ([drgw] or [backend \"%s\"]) or pass --keep-* (see 'drgw prune --help')\n",
				cmd, cfg->backends[i].name, cfg->backends[i].name);
			return EXIT_USAGE;
		}
	}
	if (!cfg->n_backends) {
		fprintf(stderr, "drgw %s: no backend: pass --backend NAME=URL or add a [backend \"NAME\"] section to the config\n",
			cmd);
		return EXIT_USAGE;
	}
	return 0;
}

/* --- output --- */

struct out {
	const struct drgw_prune_cli *a;
	bool header;
};

static void print_json(const char *backend, const struct drgw_prune_item *it,
		       bool dry_run)
{
	json_t *o = json_object(), *reasons = json_array();
	char t[40], *line;
	bool remove = !it->reasons;

	drgw_format_time(it->time_ns, t, sizeof(t));
	json_object_set_new(o, "backend", json_string(backend));
	json_object_set_new(o, "group", json_string(it->pattern));
	json_object_set_new(o, "name", json_string(it->name));
	json_object_set_new(o, "version", json_string(it->vid));
	json_object_set_new(o, "key", json_string(it->key));
	json_object_set_new(o, "time", json_string(t));
	json_object_set_new(o, "bytes", json_integer((json_int_t)it->bytes));
	json_object_set_new(o, "action", json_string(remove ? "remove" : "keep"));
	for (unsigned b = 0; b < DRGW_REASON_BITS; b++)
		if ((it->reasons & (1ULL << b)) && drgw_reason_name(b))
			json_array_append_new(reasons,
					      json_string(drgw_reason_name(b)));
	json_object_set_new(o, "reasons", reasons);
	if (it->reasons & DRGW_REASON_LOCKED) {
		if (it->retain_until_ns == INT64_MAX) {
			json_object_set_new(o, "retain_until", json_null());
			json_object_set_new(o, "hold", json_true());
		} else {
			drgw_format_time(it->retain_until_ns, t, sizeof(t));
			json_object_set_new(o, "retain_until", json_string(t));
		}
	}
	if (remove && !dry_run)
		json_object_set_new(o, "removed", json_boolean(it->removed));
	if (remove && !dry_run && it->error)
		json_object_set_new(o, "error",
				    json_string(it->error == -ECANCELED ?
							"not removed: the prune of this backend stopped" :
							strerror(-it->error)));
	if (dry_run)
		json_object_set_new(o, "dry_run", json_true());
	line = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (line)
		printf("%s\n", line);
	free(line);
	json_decref(o);
}

static void report(void *arg, const char *backend,
		   const struct drgw_prune_item *it)
{
	struct out *x = arg;
	char t[40], why[256], until[40];

	if (x->a->quiet)
		return;
	if (x->a->json) {
		print_json(backend, it, x->a->dry_run);
		return;
	}
	if (!x->header) {
		printf("%-10s %-22s %-30s %-26s %-21s %-7s %s\n", "BACKEND",
		       "GROUP", "NAME", "VERSION", "SEALED", "ACTION", "REASONS");
		x->header = true;
	}
	drgw_format_time(it->time_ns, t, sizeof(t));
	drgw_reasons_format(it->reasons, why, sizeof(why));
	if (it->reasons & DRGW_REASON_LOCKED) {
		size_t len = strlen(why);

		if (it->retain_until_ns == INT64_MAX)
			snprintf(until, sizeof(until), "held");
		else
			drgw_format_time(it->retain_until_ns, until,
					 sizeof(until));
		snprintf(why + len, sizeof(why) - len, " (%s)", until);
	}
	printf("%-10s %-22s %-30s %-26s %-21s %-7s %s\n", backend, it->pattern,
	       it->name, it->vid, t,
	       it->reasons ? "keep" :
	       x->a->dry_run || it->removed ? "remove" : "FAILED",
	       it->reasons ? why :
	       !x->a->dry_run && !it->removed ?
		       (it->error == -ECANCELED ? "not tried" : strerror(-it->error)) :
		       "");
}

static void warn(void *arg, const char *backend, const char *msg)
{
	struct out *x = arg;

	if (x->a->quiet)
		log_warning("prune: backend %s: %s", backend, msg);
	else
		drgw_cli_error("warning: backend %s: %s", backend, msg);
}

int drgw_cli_prune(struct drgw_gateway *gw, const struct drgw_prune_cli *a)
{
	struct drgw_reader_opts ro;
	struct drgw_reader *rd = NULL;
	struct out x = { .a = a };
	int failed = 0, r;

	drgw_reader_opts_from_config(gw->cfg, &ro);
	r = drgw_reader_new(&ro, &gw->keys, &rd);
	if (r < 0) {
		drgw_cli_error("cannot set up reading: %s", strerror(-r));
		return 1;
	}
	for (size_t b = 0; b < gw->n_backends; b++) {
		const struct drgw_policy *pol = drgw_config_policy(gw->cfg, b);
		struct drgw_prune_opts o = {
			.policy = pol, .dry_run = a->dry_run,
			.patterns = a->patterns, .n_patterns = a->n_patterns,
			.report = report, .warn = warn, .arg = &x,
		};
		struct drgw_prune_summary sum = { 0 };
		struct drgw_err err = { 0 };
		char desc[256], kb[32], rb[32];
		const char *name = gw->backend_names[b];

		if (!selected(a, name))
			continue;
		drgw_policy_describe(pol, desc, sizeof(desc));
		if (a->quiet)
			log_info("prune: backend %s: %s", name, desc);
		r = drgw_prune_backend(gw, rd, b, &o, &sum, &err);
		if (r < 0) {
			failed++;
			if (a->quiet)
				log_error("prune: backend %s: %s", name, err.msg);
			else
				drgw_cli_error("backend %s: prune failed: %s", name,
					       err.msg);
			continue;
		}
		drgw_format_size(sum.kept_bytes, kb, sizeof(kb));
		drgw_format_size(sum.removed_bytes, rb, sizeof(rb));
		if (a->quiet)
			log_info("prune: backend %s: kept %llu snapshots (%s), removed %llu (%s freed), %llu locked",
				 name, (unsigned long long)sum.kept, kb,
				 (unsigned long long)sum.removed, rb,
				 (unsigned long long)sum.locked);
		else if (!a->json)
			printf("%s%s (%s): kept %llu (%s), %s %llu (%s %s), %llu locked\n",
			       x.header ? "\n" : "", name, desc,
			       (unsigned long long)sum.kept, kb,
			       a->dry_run ? "would remove" : "removed",
			       (unsigned long long)sum.removed, rb,
			       a->dry_run ? "to free" : "freed",
			       (unsigned long long)sum.locked);
		x.header = false;
	}
	drgw_reader_free(rd);
	fflush(stdout);
	return failed ? 1 : 0;
}

int drgw_cmd_prune(int argc, char **argv)
{
	struct drgw_config cfg;
	struct args a = { .cfg = &cfg };
	struct drgw_gateway *gw = NULL;
	struct drgw_err err = { 0 };
	char tmp[256] = "";
	int i, r;

	drgw_config_init(&cfg);
	a.cli.only = a.only;
	a.cli.patterns = a.patterns;
	i = drgw_cli_parse(&prune_cmd, argc, argv, &cfg, on_opt, &a);
	if (i < 0 || argc > i) {
		drgw_config_release(&cfg);
		return i == -2 ? 0 :
		       i < 0	? EXIT_USAGE :
				  drgw_cli_usage_error(&prune_cmd, "unexpected argument '%s'", argv[i]);
	}
	drgw_cli_apply_log(&cfg);
	r = drgw_cli_prune_check("prune", &cfg, &a.cli);
	if (r) {
		drgw_config_release(&cfg);
		return r;
	}
	/* Works from the backends alone: a new cluster has no cache. */
	if (!cfg.cache_dir && drgw_cli_temp_cache(&cfg, tmp, sizeof(tmp)) < 0) {
		drgw_cli_error("cannot create a temporary cache directory");
		drgw_config_release(&cfg);
		return 1;
	}
	r = drgw_gateway_open(&cfg, DRGW_MODE_CLIENT_BACKENDS,
			      DRGW_OPEN_NEED_KEY | DRGW_OPEN_NEED_BACKENDS |
				      (a.cli.dry_run ? 0 : DRGW_OPEN_WRITE_BACKENDS),
			      &gw, &err);
	if (r < 0) {
		drgw_cli_error("%s", err.msg);
		r = 1;
	} else {
		r = drgw_cli_prune(gw, &a.cli);
	}
	drgw_gateway_close(gw);
	drgw_cli_temp_cache_remove(tmp);
	drgw_config_release(&cfg);
	return r;
}
