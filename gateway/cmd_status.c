/* SPDX-License-Identifier: MIT */
/*
 * `drgw ls`, `drgw status` and `drgw wait`: what is where, read from the
 * catalog.  They work while the daemon runs (SQLite WAL lets them read
 * beside it) and after it stopped; `ls --remote` reads the backends
 * themselves instead.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "prune.h"
#include "restore.h"

enum {
	OPT_JSON = 1000,
	OPT_VERSIONS,
	OPT_REMOTE,
	OPT_TIMEOUT,
	OPT_PROMETHEUS,
};

static const char *const replica_words[] = { "pending", "uploading",
					     "replicated", "failing" };

struct ls_args {
	bool json;
	bool prometheus;
	bool versions;
	bool remote;
	int64_t timeout_ns;
};

static int on_opt(void *arg, int id, const char *value)
{
	struct ls_args *a = arg;

	switch (id) {
	case OPT_JSON:
		a->json = true;
		return 0;
	case OPT_VERSIONS:
		a->versions = true;
		return 0;
	case OPT_REMOTE:
		a->remote = true;
		return 0;
	case OPT_PROMETHEUS:
		a->prometheus = true;
		return 0;
	case OPT_TIMEOUT:
		if (drgw_parse_duration(value, &a->timeout_ns) == 0)
			return 0;
		drgw_cli_error("invalid --timeout '%s' (e.g. 300, 90s, 10m)",
			       value);
		return -EINVAL;
	}
	return -EINVAL;
}

/* Opens the catalog of cfg's cache, next to a daemon or without one. */
static int open_catalog(struct drgw_config *cfg, struct drgw_gateway **ret)
{
	struct drgw_err err = { 0 };

	if (drgw_gateway_open(cfg, DRGW_MODE_CLIENT, 0, ret, &err) < 0) {
		drgw_cli_error("%s", err.msg);
		return -1;
	}
	return 0;
}

/* --- ls --- */

struct ls_ctx {
	struct drgw_gateway *gw;
	struct ls_args *a;
	const struct drgw_config *cfg;
	json_t *json;
	/* Backend columns, from the catalog. */
	char backends[DRGW_MAX_BACKENDS][DRGW_BACKEND_NAME_MAX + 1];
	size_t n_backends;
	/* With --versions: what each backend's policy would keep. */
	struct drgw_prune_preview previews[DRGW_MAX_BACKENDS];
	bool has_preview[DRGW_MAX_BACKENDS];
	/* Failing replicas, printed under the table. */
	char *problems;
	size_t problems_len;
	size_t rows;
};

static int add_backend_col(void *arg, const struct drgw_backend_row *b)
{
	struct ls_ctx *x = arg;

	if (x->n_backends < DRGW_MAX_BACKENDS)
		drgw_strlcpy(x->backends[x->n_backends++], b->name,
			     sizeof(x->backends[0]));
	return 0;
}

struct row_ctx {
	struct ls_ctx *x;
	const struct drgw_version *v;
	char cells[DRGW_MAX_BACKENDS][40];
	json_t *replicas;
};

static void add_problem(struct ls_ctx *x, const char *fmt, ...)
	DRGW_PRINTF(2, 3);
static void add_problem(struct ls_ctx *x, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t n;
	char *p;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = strlen(line);
	p = realloc(x->problems, x->problems_len + n + 2);
	if (!p)
		return;
	memcpy(p + x->problems_len, line, n);
	p[x->problems_len + n] = '\n';
	p[x->problems_len + n + 1] = '\0';
	x->problems = p;
	x->problems_len += n + 1;
}

/* The policy's verdict on a replicated version, or NULL. */
static const struct drgw_prune_item *verdict(struct ls_ctx *x,
					     const char *backend,
					     const char *vid)
{
	for (size_t col = 0; col < x->n_backends; col++)
		if (x->has_preview[col] && !strcmp(x->backends[col], backend))
			return drgw_prune_preview_find(&x->previews[col], vid);
	return NULL;
}

static int on_pruned(void *arg, const char *backend, int64_t since_ns)
{
	struct row_ctx *rc = arg;
	char ts[40];

	if (rc->replicas) {
		json_t *o = json_object();

		drgw_format_time(since_ns, ts, sizeof(ts));
		json_object_set_new(o, "state", json_string("pruned"));
		json_object_set_new(o, "pruned_at", json_string(ts));
		json_object_set_new(rc->replicas, backend, o);
		return 0;
	}
	for (size_t col = 0; col < rc->x->n_backends; col++)
		if (!strcmp(rc->x->backends[col], backend))
			snprintf(rc->cells[col], sizeof(rc->cells[col]), "pruned");
	return 0;
}

static int on_replica(void *arg, const struct drgw_replica *r)
{
	struct row_ctx *rc = arg;
	const struct drgw_version *v = rc->v;
	const struct drgw_prune_item *pi = NULL;
	int64_t now = drgw_now_ns();
	char when[32], ts[40];
	size_t col;

	if (r->state == DRGW_REPLICA_DONE)
		pi = verdict(rc->x, r->backend, v->vid);
	if (rc->replicas) {
		json_t *o = json_object();

		if (pi) {
			json_t *pol = json_object(), *why = json_array();

			for (unsigned b = 0; b < DRGW_REASON_BITS; b++)
				if ((pi->reasons & (1ULL << b)) &&
				    drgw_reason_name(b))
					json_array_append_new(why,
							      json_string(drgw_reason_name(b)));
			json_object_set_new(pol, "action",
					    json_string(pi->reasons ? "keep" :
								      "remove"));
			json_object_set_new(pol, "reasons", why);
			json_object_set_new(o, "policy", pol);
		}

		/* A retry in progress is failing until it succeeds, as the
		 * table says. */
		json_object_set_new(o, "state",
				    json_string(r->state == DRGW_REPLICA_UPLOADING &&
							r->attempts && r->last_error ?
						"failing" :
						replica_words[r->state]));
		json_object_set_new(o, "key", json_string(r->key));
		json_object_set_new(o, "attempts", json_integer(r->attempts));
		json_object_set_new(o, "bytes_done",
				    json_integer((json_int_t)r->bytes_done));
		if (r->done_ns) {
			drgw_format_time(r->done_ns, ts, sizeof(ts));
			json_object_set_new(o, "replicated_at", json_string(ts));
		}
		if (r->last_error && r->state != DRGW_REPLICA_DONE) {
			json_object_set_new(o, "last_error",
					    json_string(r->last_error));
			drgw_format_time(r->next_attempt_ns, ts, sizeof(ts));
			json_object_set_new(o, "next_attempt", json_string(ts));
		}
		json_object_set_new(rc->replicas, r->backend, o);
		return 0;
	}
	for (col = 0; col < rc->x->n_backends; col++)
		if (!strcmp(rc->x->backends[col], r->backend))
			break;
	if (col == rc->x->n_backends)
		return 0;
	if (r->state == DRGW_REPLICA_UPLOADING && r->attempts && r->last_error) {
		/* A retry in progress is still a failing replica until it
		 * succeeds: say so, and why the last attempt failed. */
		snprintf(rc->cells[col], sizeof(rc->cells[col]), "failing");
		add_problem(rc->x, "  %s (%s) -> %s: %s; attempt %u in progress",
			    v->name, v->vid, r->backend, r->last_error,
			    r->attempts + 1);
	} else if (r->state == DRGW_REPLICA_UPLOADING && v->stored_size) {
		snprintf(rc->cells[col], sizeof(rc->cells[col]), "uploading %d%%",
			 (int)(100 * r->bytes_done / v->stored_size));
	} else if (pi) {
		snprintf(rc->cells[col], sizeof(rc->cells[col]), "%s",
			 pi->reasons ? "kept" : "to remove");
	} else {
		snprintf(rc->cells[col], sizeof(rc->cells[col]), "%s",
			 replica_words[r->state]);
	}
	if (r->state == DRGW_REPLICA_FAILING) {
		drgw_format_duration(r->next_attempt_ns - now, when, sizeof(when));
		add_problem(rc->x, "  %s (%s) -> %s: %s; attempt %u, next retry in %s",
			    v->name, v->vid, r->backend,
			    r->last_error ? r->last_error : "?", r->attempts,
			    r->next_attempt_ns > now ? when : "now");
	}
	return 0;
}

/* The CHECK column: the SQLite check's verdict; "-" for other files. */
static void check_cell(const struct drgw_version *v, char *buf, size_t size)
{
	if (v->state != DRGW_VERSION_ENCODED)
		snprintf(buf, size, "pending");
	else if (v->check.verdict == DRGW_SQLCHECK_NOT_SQLITE)
		snprintf(buf, size, "-");
	else
		drgw_sqlcheck_describe(&v->check, buf, size);
}

static json_t *check_json(const struct drgw_version *v)
{
	json_t *o = json_object();

	json_object_set_new(o, "verdict", json_string(drgw_sqlcheck_verdict_name(v->check.verdict)));
	json_object_set_new(o, "level", json_string(drgw_sqlcheck_level_name(v->check.level)));
	json_object_set_new(o, "failed", json_boolean(drgw_sqlcheck_failed(v->check.verdict)));
	if (v->check.message[0])
		json_object_set_new(o, "message", json_string(v->check.message));
	return o;
}

static int ls_row(void *arg, const struct drgw_version *v)
{
	struct ls_ctx *x = arg;
	struct row_ctx rc = { .x = x, .v = v };
	char size[32], stored[48], mtime[40], created[40];
	char check[sizeof(v->check.message) + 64];

	drgw_format_time(v->mtime_ns, mtime, sizeof(mtime));
	drgw_format_time(v->created_ns, created, sizeof(created));
	if (x->json) {
		json_t *o = json_object();

		rc.replicas = json_object();
		json_object_set_new(o, "name", json_string(v->name));
		json_object_set_new(o, "version", json_string(v->vid));
		json_object_set_new(o, "size", json_integer((json_int_t)v->size));
		json_object_set_new(o, "mtime", json_string(mtime));
		json_object_set_new(o, "mtime_ns", json_integer(v->mtime_ns));
		json_object_set_new(o, "sealed_at", json_string(created));
		json_object_set_new(o, "state",
				    json_string(v->state == DRGW_VERSION_ENCODED ?
							"encoded" :
							"encoding"));
		if (v->state == DRGW_VERSION_ENCODED) {
			json_object_set_new(o, "stored_size",
					    json_integer((json_int_t)v->stored_size));
			json_object_set_new(o, "sha256", json_string(v->sha256));
			json_object_set_new(o, "stored_as",
					    json_string(v->delta_depth ?
								"incremental" :
								"full"));
		}
		if (v->delta_depth) {
			/* The chain: what a restore of this version reads. */
			json_t *refs = json_array();
			char *list = v->delta_refs ? strdup(v->delta_refs) : NULL;

			for (char *t = list, *next; t && *t; t = next) {
				next = strchr(t, ',');
				if (next)
					*next++ = '\0';
				json_array_append_new(refs, json_string(t));
			}
			free(list);
			json_object_set_new(o, "increments", json_integer(v->delta_depth));
			json_object_set_new(o, "references", refs);
		}
		if (v->error)
			json_object_set_new(o, "error", json_string(v->error));
		if (v->problem)
			json_object_set_new(o, "problem", json_string(v->problem));
		if (v->state == DRGW_VERSION_ENCODED)
			json_object_set_new(o, "check", check_json(v));
		drgw_catalog_each_replica(x->gw->cat, v->id, on_replica, &rc);
		drgw_catalog_each_pruned_of(x->gw->cat, v->vid, on_pruned, &rc);
		json_object_set_new(o, "replicas", rc.replicas);
		json_array_append_new(x->json, o);
		return 0;
	}
	for (size_t i = 0; i < x->n_backends; i++)
		snprintf(rc.cells[i], sizeof(rc.cells[i]), "%s",
			 v->state == DRGW_VERSION_ENCODED ? "-" : "queued");
	drgw_catalog_each_replica(x->gw->cat, v->id, on_replica, &rc);
	drgw_catalog_each_pruned_of(x->gw->cat, v->vid, on_pruned, &rc);
	drgw_format_size(v->size, size, sizeof(size));
	if (v->state == DRGW_VERSION_ENCODED)
		drgw_format_size(v->stored_size, stored, sizeof(stored));
	else
		snprintf(stored, sizeof(stored), "encoding");
	if (v->delta_depth) {
		/* "+N": stored as the N-th increment after a full version. */
		size_t l = strlen(stored);

		snprintf(stored + l, sizeof(stored) - l, " +%u", v->delta_depth);
	}
	if (v->error)
		add_problem(x, "  %s (%s): %s", v->name, v->vid, v->error);
	if (v->problem)
		add_problem(x, "  %s (%s): %s", v->name, v->vid, v->problem);
	if (x->rows++ == 0) {
		printf("%-32s %s%-10s %-20s %-13s", "NAME",
		       x->a->versions ? "VERSION                    " : "",
		       "SIZE", "MODIFIED", "STORED");
		for (size_t i = 0; i < x->n_backends; i++)
			printf(" %-14s", x->backends[i]);
		printf(" CHECK\n");
	}
	printf("%-32s ", v->name);
	if (x->a->versions)
		printf("%-26s ", v->vid);
	printf("%-10s %-20s %-13s", size, mtime, stored);
	for (size_t i = 0; i < x->n_backends; i++)
		printf(" %-14s", rc.cells[i]);
	check_cell(v, check, sizeof(check));
	printf(" %s\n", check);
	/* The chain: what a restore of this version also reads. */
	if (x->a->versions && v->delta_refs)
		printf("%-32s   takes blocks from %s\n", "", v->delta_refs);
	return 0;
}

/* ls --remote: what the backends hold, from the objects themselves. */
static void cli_warn(void *arg, const char *line)
{
	drgw_cli_error("warning: %s", line);
}

static int ls_remote(struct drgw_config *cfg, struct ls_args *a)
{
	struct drgw_remote_set set = { 0 };
	struct drgw_reader_opts ro;
	struct drgw_reader *rd = NULL;
	struct drgw_err err = { 0 };
	struct drgw_gateway *gw = NULL;
	char tmp[256] = "";
	json_t *arr = NULL;
	int r;

	if (!cfg->cache_dir && drgw_cli_temp_cache(cfg, tmp, sizeof(tmp)) < 0) {
		drgw_cli_error("cannot create a temporary cache directory");
		return 1;
	}
	r = drgw_gateway_open(cfg, DRGW_MODE_CLIENT_BACKENDS,
			      DRGW_OPEN_NEED_KEY | DRGW_OPEN_NEED_BACKENDS, &gw,
			      &err);
	if (r == 0) {
		drgw_reader_opts_from_config(cfg, &ro);
		r = drgw_reader_new(&ro, &gw->keys, &rd);
		if (r == 0)
			r = drgw_remote_scan(gw, rd, &set, &err);
		if (r == 0)
			r = drgw_remote_require_readable(&set, &err);
	}
	if (r < 0) {
		drgw_cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
		goto out;
	}
	if (a->json)
		arr = json_array();
	else
		printf("%-32s %-26s %-10s %-20s %s\n", "NAME", "VERSION", "SIZE",
		       "MODIFIED", "BACKENDS");
	for (size_t i = 0; i < set.n; i++) {
		const struct drgw_snapshot *s = &set.snaps[i];
		char size[32], mtime[40], sha[65];

		if (!a->versions && !drgw_remote_is_latest(&set, i))
			continue;
		drgw_format_size(s->meta.size, size, sizeof(size));
		drgw_format_time(s->meta.mtime_ns, mtime, sizeof(mtime));
		if (a->json) {
			json_t *o = json_object(), *bk = json_object();

			drgw_hex(s->meta.sha256, 32, sha);
			json_object_set_new(o, "name", json_string(s->meta.name));
			json_object_set_new(o, "version", json_string(s->meta.vid));
			json_object_set_new(o, "size", json_integer((json_int_t)s->meta.size));
			json_object_set_new(o, "mtime", json_string(mtime));
			json_object_set_new(o, "sha256", json_string(sha));
			for (size_t l = 0; l < s->n_locs; l++)
				json_object_set_new(bk, gw->backend_names[s->locs[l].backend],
						    json_string(s->locs[l].key));
			json_object_set_new(o, "backends", bk);
			json_array_append_new(arr, o);
			continue;
		}
		printf("%-32s %-26s %-10s %-20s", s->meta.name, s->meta.vid, size,
		       mtime);
		for (size_t l = 0; l < s->n_locs; l++)
			printf("%s%s", l ? "," : " ",
			       gw->backend_names[s->locs[l].backend]);
		printf("\n");
	}
	if (arr)
		r = drgw_cli_print_json(arr) ? -EIO : 0;
	for (size_t i = 0; i < set.n_bad; i++)
		drgw_cli_error("warning: cannot read %s", set.bad[i].why);
	drgw_remote_warn_unreachable(&set, gw, cli_warn, NULL);
	if (tmp[0])
		drgw_cli_cache_hint(set.n_read);
out:
	drgw_remote_set_release(&set);
	drgw_reader_free(rd);
	drgw_gateway_close(gw);
	drgw_cli_temp_cache_remove(tmp);
	return r < 0 ? 1 : 0;
}

static const struct cli_opt ls_opts[] = {
	{ "json", no_argument, OPT_JSON, 0 },
	{ "versions", no_argument, OPT_VERSIONS, 0 },
	{ "remote", no_argument, OPT_REMOTE, 0 },
	{ 0 },
};

static const struct cli_cmd ls_cmd = {
	.name = "ls",
	.synopsis = "[--json] [--versions] [--remote] [NAME...]",
	.help = "Lists snapshots from the catalog: name, size, modified time, stored\n"
		"(encoded) size, each backend's state: replicated, pending,\n"
		"uploading, or failing (the problems under the table say why and\n"
		"when the next retry is), and the SQLite check's verdict: ok,\n"
		"corrupt, truncated, torn, bad header, hot journal or wal with the\n"
		"first problem found, not checked, or - for files that are not\n"
		"SQLite databases.  With --remote, lists what the backends hold\n"
		"instead, read from the objects themselves (needs the key).",
	.opts = ls_opts,
	.opts_help = "options:\n"
		     "  --json            machine-readable output\n"
		     "  --versions        every version, not only the newest of each name; with\n"
		     "                    a retention policy, which ones drgw prune keeps\n"
		     "  --remote          read the backends instead of the catalog\n",
	.common = CLI_COMMON_CACHE | CLI_COMMON_KEY | CLI_COMMON_BACKEND |
		  CLI_COMMON_READ | CLI_COMMON_POLICY,
};

int drgw_cmd_ls(int argc, char **argv)
{
	struct ls_args a = { 0 };
	struct ls_ctx x = { .a = &a };
	struct drgw_config cfg;
	int i, r = 0;

	drgw_config_init(&cfg);
	i = drgw_cli_parse(&ls_cmd, argc, argv, &cfg, on_opt, &a);
	if (i < 0) {
		drgw_config_release(&cfg);
		return i == -2 ? 0 : EXIT_USAGE;
	}
	drgw_cli_apply_log(&cfg);
	if (a.remote) {
		r = ls_remote(&cfg, &a);
		drgw_config_release(&cfg);
		return r;
	}
	if (open_catalog(&cfg, &x.gw) < 0) {
		drgw_config_release(&cfg);
		return 1;
	}
	x.json = a.json ? json_array() : NULL;
	x.cfg = &cfg;
	drgw_catalog_each_backend(x.gw->cat, add_backend_col, &x);
	for (size_t b = 0; a.versions && b < x.n_backends; b++) {
		const struct drgw_policy *pol =
			drgw_config_policy_of(&cfg, x.backends[b]);

		if (!drgw_policy_empty(pol) &&
		    drgw_prune_preview(x.gw->cat, x.backends[b], pol,
				       &x.previews[b]) == 0)
			x.has_preview[b] = true;
	}
	r = drgw_catalog_each_version(x.gw->cat, !a.versions,
				      argc > i ? (const char *const *)argv + i :
						 NULL,
				      ls_row, &x);
	if (r < 0)
		drgw_cli_error("cannot read the catalog: %s", strerror(-r));
	else if (x.json)
		r = drgw_cli_print_json(x.json) ? -EIO : 0;
	else if (x.rows == 0)
		printf("no snapshots yet\n");
	for (size_t b = 0, legend = 0; b < x.n_backends; b++) {
		char desc[256];

		if (!x.has_preview[b])
			continue;
		if (!x.json && x.rows) {
			drgw_policy_describe(drgw_config_policy_of(&cfg, x.backends[b]),
					     desc, sizeof(desc));
			printf("%s%s: %s: 'kept' or 'to remove' by drgw prune\n",
			       legend++ ? "" : "\n", x.backends[b], desc);
		}
		drgw_prune_preview_release(&x.previews[b]);
	}
	if (x.problems)
		printf("\nproblems:\n%s", x.problems);
	free(x.problems);
	drgw_gateway_close(x.gw);
	drgw_config_release(&cfg);
	return r < 0 ? 1 : 0;
}

/* --- status --- */

static const struct cli_opt status_opts[] = {
	{ "json", no_argument, OPT_JSON, 0 },
	{ "prometheus", no_argument, OPT_PROMETHEUS, 0 },
	{ 0 },
};

static const struct cli_cmd status_cmd = {
	.name = "status",
	.synopsis = "[--json]",
	.help = "Shows whether the daemon runs and how its mount moves file data\n"
		"(passthrough, writeback-cache or write-through), the replication\n"
		"queue (files settling, versions waiting to be encoded, replicas and\n"
		"bytes pending, the age of the oldest unreplicated snapshot) and each\n"
		"backend's health and RPO (the age of the newest snapshot it holds);\n"
		"with a retention policy (--config or --keep-*), what it keeps, and\n"
		"the last drgw prune.",
	.opts = status_opts,
	.opts_help = "options:\n"
		     "  --json            machine-readable output\n"
		     "  --prometheus      the metrics of --metrics-listen, for a textfile collector\n",
	.common = CLI_COMMON_CACHE | CLI_COMMON_POLICY,
};

struct status_ctx {
	struct drgw_gateway *gw;
	const struct drgw_config *cfg;
	json_t *backends;
	int64_t now;
	/* The last prune of each backend. */
	struct drgw_prune_run runs[DRGW_MAX_BACKENDS];
	size_t n_runs;
};

static int add_run(void *arg, const struct drgw_prune_run *p)
{
	struct status_ctx *x = arg;

	if (x->n_runs < DRGW_MAX_BACKENDS)
		x->runs[x->n_runs++] = *p;
	return 0;
}

/* The policy line and the last prune of backend b. */
static void status_prune(struct status_ctx *x, const struct drgw_backend_row *b,
			 json_t *o)
{
	const struct drgw_policy *pol = drgw_config_policy_of(x->cfg, b->name);
	const struct drgw_prune_run *run = NULL;
	struct drgw_prune_preview pv;
	char desc[256], kb[32], rb[32], t[40];

	for (size_t i = 0; i < x->n_runs; i++)
		if (!strcmp(x->runs[i].backend, b->name))
			run = &x->runs[i];
	if (!drgw_policy_empty(pol) &&
	    drgw_prune_preview(x->gw->cat, b->name, pol, &pv) == 0) {
		drgw_policy_describe(pol, desc, sizeof(desc));
		drgw_format_size(pv.keep_bytes, kb, sizeof(kb));
		drgw_format_size(pv.remove_bytes, rb, sizeof(rb));
		if (o) {
			json_t *p = json_object();

			json_object_set_new(p, "description", json_string(desc));
			json_object_set_new(p, "keep", json_integer((json_int_t)pv.keep));
			json_object_set_new(p, "remove", json_integer((json_int_t)pv.remove));
			json_object_set_new(p, "keep_bytes", json_integer((json_int_t)pv.keep_bytes));
			json_object_set_new(p, "remove_bytes", json_integer((json_int_t)pv.remove_bytes));
			json_object_set_new(o, "policy", p);
		} else {
			printf("  policy: %s: keeps %llu replicated snapshots (%s), would remove %llu (%s)\n",
			       desc, (unsigned long long)pv.keep, kb,
			       (unsigned long long)pv.remove, rb);
		}
		drgw_prune_preview_release(&pv);
	}
	if (!run)
		return;
	drgw_format_time(run->finished_ns, t, sizeof(t));
	drgw_format_size(run->removed_bytes, rb, sizeof(rb));
	if (o) {
		json_t *p = json_object();

		json_object_set_new(p, "finished", json_string(t));
		json_object_set_new(p, "ok", json_boolean(run->ok));
		json_object_set_new(p, "kept", json_integer((json_int_t)run->kept));
		json_object_set_new(p, "removed", json_integer((json_int_t)run->removed));
		json_object_set_new(p, "locked", json_integer((json_int_t)run->locked));
		json_object_set_new(p, "removed_bytes", json_integer((json_int_t)run->removed_bytes));
		if (!run->ok)
			json_object_set_new(p, "error", json_string(run->error));
		json_object_set_new(o, "last_prune", p);
	} else if (run->ok) {
		printf("  last prune: %s: kept %llu, removed %llu (%s), %llu locked\n",
		       t, (unsigned long long)run->kept,
		       (unsigned long long)run->removed, rb,
		       (unsigned long long)run->locked);
	} else {
		printf("  last prune: %s: FAILED: %s\n", t, run->error);
	}
}

static const char *health(const struct drgw_backend_row *b)
{
	if (b->last_error_ns > b->last_ok_ns)
		return "failing";
	return b->last_ok_ns ? "ok" : "unknown";
}

static int status_backend(void *arg, const struct drgw_backend_row *b)
{
	struct status_ctx *x = arg;
	struct drgw_queue_stats qs;
	char ok[40], errt[40], rpo[32], pend[32];

	drgw_catalog_queue_stats(x->gw->cat, b->name, &qs);
	drgw_format_time(b->last_ok_ns, ok, sizeof(ok));
	drgw_format_time(b->last_error_ns, errt, sizeof(errt));
	drgw_format_duration(qs.newest_replicated_ns ?
				     x->now - qs.newest_replicated_ns : -1,
			     rpo, sizeof(rpo));
	drgw_format_size(qs.bytes_pending, pend, sizeof(pend));
	if (x->backends) {
		json_t *o = json_object();

		json_object_set_new(o, "url", json_string(b->url));
		json_object_set_new(o, "health", json_string(health(b)));
		json_object_set_new(o, "last_success", json_string(ok));
		json_object_set_new(o, "last_error_time", json_string(errt));
		if (b->last_error)
			json_object_set_new(o, "last_error", json_string(b->last_error));
		json_object_set_new(o, "pending_replicas", json_integer((json_int_t)qs.replicas_pending));
		json_object_set_new(o, "failing_replicas", json_integer((json_int_t)qs.replicas_failing));
		json_object_set_new(o, "pending_bytes", json_integer((json_int_t)qs.bytes_pending));
		json_object_set_new(o, "uploaded_bytes", json_integer((json_int_t)b->uploaded_bytes));
		json_object_set_new(o, "failures", json_integer((json_int_t)b->failures));
		json_object_set_new(o, "rpo_seconds",
				    qs.newest_replicated_ns ?
					    json_integer((x->now - qs.newest_replicated_ns) / NSEC_PER_SEC) :
					    json_null());
		status_prune(x, b, o);
		json_object_set_new(x->backends, b->name, o);
		return 0;
	}
	printf("backend %s (%s): %s\n", b->name, b->url, health(b));
	printf("  newest replicated snapshot: %s old; last success %s\n",
	       qs.newest_replicated_ns ? rpo : "none", ok);
	printf("  pending: %llu replicas (%s), %llu failing\n",
	       (unsigned long long)qs.replicas_pending, pend,
	       (unsigned long long)qs.replicas_failing);
	if (b->last_error && b->last_error_ns > b->last_ok_ns)
		printf("  last error (%s): %s\n", errt, b->last_error);
	status_prune(x, b, NULL);
	return 0;
}

/* How the running daemon's mount moves file data (fs.c writes it when the
 * kernel sets the mount up), or NULL: no daemon, or one without a mount. */
static json_t *mount_io(struct drgw_gateway *gw, long pid)
{
	json_t *o = NULL, *p;
	char s[2048];

	if (drgw_catalog_get_meta(gw->cat, "mount_io", s, sizeof(s)) == 0)
		o = json_loads(s, 0, NULL);
	p = json_object_get(o, "pid");
	if (!json_is_integer(p) || json_integer_value(p) != pid ||
	    !json_is_string(json_object_get(o, "io")) ||
	    !json_is_string(json_object_get(o, "detail"))) {
		json_decref(o);
		return NULL;
	}
	json_object_del(o, "pid");
	return o;
}

/* Files settling: none without a daemon (the catalog's rows are stale),
 * else the catalog's count, or the daemon's own where that is more (the
 * catalog could not record them: a full cache disk). */
static uint64_t settling(const char *cache_dir, bool running,
			 uint64_t in_catalog)
{
	uint64_t n;

	if (!running)
		return 0;
	n = drgw_gateway_daemon_unsealed(cache_dir);
	return n > in_catalog ? n : in_catalog;
}

int drgw_cmd_status(int argc, char **argv)
{
	struct ls_args a = { 0 };
	struct status_ctx x = { .now = drgw_now_ns() };
	struct drgw_queue_stats qs;
	struct drgw_config cfg;
	char pend[32], age[32];
	json_t *mio = NULL;
	bool running;
	char repo[2 * DRGW_REPO_ID_BYTES + 1];
	long pid = 0;
	int i, r;

	drgw_config_init(&cfg);
	i = drgw_cli_parse(&status_cmd, argc, argv, &cfg, on_opt, &a);
	if (i < 0 || argc > i) {
		drgw_config_release(&cfg);
		return i == -2 ? 0 :
		       i < 0	? EXIT_USAGE :
				  drgw_cli_usage_error(&status_cmd, "unexpected argument '%s'", argv[i]);
	}
	drgw_cli_apply_log(&cfg);
	if (open_catalog(&cfg, &x.gw) < 0) {
		drgw_config_release(&cfg);
		return 1;
	}
	x.cfg = &cfg;
	drgw_catalog_each_latest_prune_run(x.gw->cat, add_run, &x);
	running = drgw_gateway_daemon_running(cfg.cache_dir, &pid);
	if (drgw_catalog_get_meta(x.gw->cat, "repository_id", repo,
				  sizeof(repo)) < 0)
		snprintf(repo, sizeof(repo), "none yet");
	r = drgw_catalog_queue_stats(x.gw->cat, NULL, &qs);
	qs.files_settling = settling(cfg.cache_dir, running, qs.files_settling);
	if (running)
		mio = mount_io(x.gw, pid);
	drgw_format_size(qs.bytes_pending, pend, sizeof(pend));
	drgw_format_duration(qs.oldest_pending_ns ? x.now - qs.oldest_pending_ns : -1,
			     age, sizeof(age));
	if (a.prometheus) {
		char *text = NULL;

		r = r < 0 ? r : drgw_metrics_render(x.gw->cat, running, &text);
		if (r == 0)
			fputs(text, stdout);
		else
			drgw_cli_error("cannot render metrics: %s", strerror(-r));
		free(text);
	} else if (a.json) {
		json_t *o = json_object();

		x.backends = json_object();
		json_object_set_new(o, "cache", json_string(cfg.cache_dir));
		json_object_set_new(o, "repository", repo[0] != 'n' ?
						     json_string(repo) :
						     json_null());
		json_object_set_new(o, "daemon_running", json_boolean(running));
		if (running)
			json_object_set_new(o, "daemon_pid", json_integer(pid));
		json_object_set(o, "mount", mio ? mio : json_null());
		json_object_set_new(o, "files_settling", json_integer((json_int_t)qs.files_settling));
		json_object_set_new(o, "versions_unencoded", json_integer((json_int_t)qs.versions_unencoded));
		json_object_set_new(o, "replicas_pending", json_integer((json_int_t)qs.replicas_pending));
		json_object_set_new(o, "replicas_failing", json_integer((json_int_t)qs.replicas_failing));
		json_object_set_new(o, "bytes_pending", json_integer((json_int_t)qs.bytes_pending));
		json_object_set_new(o, "oldest_pending_age_seconds",
				    qs.oldest_pending_ns ?
					    json_integer((x.now - qs.oldest_pending_ns) / NSEC_PER_SEC) :
					    json_null());
		json_object_set_new(o, "versions", json_integer((json_int_t)qs.versions));
		json_object_set_new(o, "versions_replicated", json_integer((json_int_t)qs.versions_replicated));
		drgw_catalog_each_backend(x.gw->cat, status_backend, &x);
		json_object_set_new(o, "backends", x.backends);
		r = drgw_cli_print_json(o) ? -EIO : r;
	} else {
		printf("cache:            %s\n", cfg.cache_dir);
		printf("repository:       %s\n", repo);
		if (running)
			printf("daemon:           running (pid %ld)\n", pid);
		else
			printf("daemon:           not running\n");
		if (mio)
			printf("mount I/O:        %s (%s)\n",
			       json_string_value(json_object_get(mio, "io")),
			       json_string_value(json_object_get(mio, "detail")));
		printf("settling:         %llu files\n", (unsigned long long)qs.files_settling);
		printf("to encode:        %llu versions\n", (unsigned long long)qs.versions_unencoded);
		printf("pending:          %llu replicas (%s), %llu failing\n",
		       (unsigned long long)qs.replicas_pending, pend,
		       (unsigned long long)qs.replicas_failing);
		printf("oldest pending:   %s\n", qs.oldest_pending_ns ? age : "none");
		printf("snapshots:        %llu versions, %llu replicated everywhere\n",
		       (unsigned long long)qs.versions,
		       (unsigned long long)qs.versions_replicated);
		drgw_catalog_each_backend(x.gw->cat, status_backend, &x);
	}
	json_decref(mio);
	drgw_gateway_close(x.gw);
	drgw_config_release(&cfg);
	return r < 0 ? 1 : 0;
}

/* --- wait --- */

static const struct cli_opt wait_opts[] = {
	{ "timeout", required_argument, OPT_TIMEOUT, 't' },
	{ 0 },
};

static const struct cli_cmd wait_cmd = {
	.name = "wait",
	.synopsis = "[--timeout DURATION]",
	.help = "Blocks until nothing is pending: every closed file is sealed, encoded\n"
		"and replicated to every backend.  Exits 0 then, or 1 after the timeout\n"
		"(or at once if no daemon runs while work is pending).",
	.opts = wait_opts,
	.opts_help = "options:\n"
		     "  -t, --timeout DUR  give up after DUR (e.g. 300, 90s, 10m); default: wait forever\n",
	.common = CLI_COMMON_CACHE,
};

int drgw_cmd_wait(int argc, char **argv)
{
	struct ls_args a = { .timeout_ns = -1 };
	struct drgw_gateway *gw = NULL;
	struct drgw_config cfg;
	int64_t start = drgw_mono_ns();
	int i, r = 1;

	drgw_config_init(&cfg);
	i = drgw_cli_parse(&wait_cmd, argc, argv, &cfg, on_opt, &a);
	if (i < 0 || argc > i) {
		drgw_config_release(&cfg);
		return i == -2 ? 0 :
		       i < 0	? EXIT_USAGE :
				  drgw_cli_usage_error(&wait_cmd, "unexpected argument '%s'", argv[i]);
	}
	drgw_cli_apply_log(&cfg);
	if (open_catalog(&cfg, &gw) < 0) {
		drgw_config_release(&cfg);
		return 1;
	}
	for (;;) {
		struct drgw_queue_stats qs;
		bool running = drgw_gateway_daemon_running(cfg.cache_dir, NULL);
		uint64_t left;

		if (drgw_catalog_queue_stats(gw->cat, NULL, &qs) < 0) {
			drgw_cli_error("cannot read the catalog");
			break;
		}
		qs.files_settling = settling(cfg.cache_dir, running,
					     qs.files_settling);
		left = qs.files_settling + qs.versions_unencoded + qs.replicas_pending;
		if (left == 0) {
			r = 0;
			break;
		}
		if (!running) {
			drgw_cli_error("no drgw daemon runs on %s and %llu snapshots/replicas are pending; mount again to resume",
				       cfg.cache_dir, (unsigned long long)left);
			break;
		}
		if (a.timeout_ns >= 0 && drgw_mono_ns() - start >= a.timeout_ns) {
			drgw_cli_error("timed out: %llu files settling, %llu versions to encode, %llu replicas pending (%llu failing; see 'drgw ls')",
				       (unsigned long long)qs.files_settling,
				       (unsigned long long)qs.versions_unencoded,
				       (unsigned long long)qs.replicas_pending,
				       (unsigned long long)qs.replicas_failing);
			break;
		}
		usleep(100 * 1000);
	}
	drgw_gateway_close(gw);
	drgw_config_release(&cfg);
	return r;
}
