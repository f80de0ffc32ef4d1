/* SPDX-License-Identifier: MIT */
/*
 * Metrics rendering; see metrics.h.  Gauges that are ages are computed at
 * render time, so a scrape always sees the current RPO even when nothing
 * happens.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

char *drgw_name_pattern(const char *name)
{
	const char *base = strrchr(name, '/');
	char *out = malloc(strlen(name) + 1), *o = out;

	if (!out)
		return NULL;
	base = base ? base + 1 : name;
	memcpy(o, name, (size_t)(base - name));
	o += base - name;
	for (const char *p = base; *p;) {
		if (*p >= '0' && *p <= '9') {
			*o++ = '*';
			while (*p >= '0' && *p <= '9')
				p++;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

/* A label value with \, " and newline escaped, as the format requires. */
static void label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
	fputc('"', f);
}

static void header(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static double seconds(int64_t ns)
{
	return (double)ns / NSEC_PER_SEC;
}

struct render {
	FILE *f;
	struct drgw_catalog *c;
	int64_t now;
	/* Backends, collected first: each metric is one block of samples. */
	struct drgw_backend_row *b;
	struct drgw_queue_stats *qs;
	size_t n, cap;
};

static int collect_backend(void *arg, const struct drgw_backend_row *row)
{
	struct render *x = arg;

	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 4;
		struct drgw_backend_row *b = realloc(x->b, cap * sizeof(*b));
		struct drgw_queue_stats *qs;

		if (!b)
			return -ENOMEM;
		x->b = b;
		qs = realloc(x->qs, cap * sizeof(*qs));
		if (!qs)
			return -ENOMEM;
		x->qs = qs;
		x->cap = cap;
	}
	x->b[x->n] = *row;
	x->b[x->n].url = NULL; /* borrowed strings die after the callback */
	x->b[x->n].last_error = NULL;
	drgw_catalog_queue_stats(x->c, row->name, &x->qs[x->n]);
	x->n++;
	return 0;
}

enum bvalue {
	B_UP,
	B_RPO,
	B_NEWEST,
	B_PENDING,
	B_PENDING_BYTES,
	B_OLDEST_AGE,
	B_FAILING,
	B_UPLOADED,
	B_FAILURES,
	B_LAST_ERROR,
	B_LAST_OK,
};

static const struct {
	const char *name;
	const char *type;
	const char *help;
} bmetrics[] = {
	[B_UP] = { "drgw_backend_up", "gauge",
		   "1 unless the last upload to the backend failed" },
	[B_RPO] = { "drgw_backend_rpo_seconds", "gauge",
		    "Age of the newest snapshot replicated to the backend (live RPO)" },
	[B_NEWEST] = { "drgw_backend_newest_replicated_timestamp_seconds", "gauge",
		       "Seal time of the newest snapshot replicated to the backend" },
	[B_PENDING] = { "drgw_backend_pending_replicas", "gauge",
			"Snapshots waiting to be replicated to the backend" },
	[B_PENDING_BYTES] = { "drgw_backend_pending_bytes", "gauge",
			      "Bytes waiting to be uploaded to the backend" },
	[B_OLDEST_AGE] = { "drgw_backend_oldest_pending_age_seconds", "gauge",
			   "Age of the oldest snapshot not yet on the backend (0 if none)" },
	[B_FAILING] = { "drgw_backend_failing_replicas", "gauge",
			"Snapshots whose last upload to the backend failed" },
	[B_UPLOADED] = { "drgw_backend_uploaded_bytes_total", "counter",
			 "Bytes uploaded to the backend" },
	[B_FAILURES] = { "drgw_backend_failures_total", "counter",
			 "Failed uploads to the backend" },
	[B_LAST_ERROR] = { "drgw_backend_last_error_timestamp_seconds", "gauge",
			   "Time of the last failed upload (0 if none)" },
	[B_LAST_OK] = { "drgw_backend_last_success_timestamp_seconds", "gauge",
			"Time of the last successful upload (0 if none)" },
};

static void backend_value(struct render *x, size_t i, enum bvalue m)
{
	const struct drgw_backend_row *b = &x->b[i];
	const struct drgw_queue_stats *q = &x->qs[i];
	FILE *f = x->f;

	if (m == B_RPO && !q->newest_replicated_ns)
		return; /* no RPO yet: absent, not zero */
	fprintf(f, "%s{backend=", bmetrics[m].name);
	label(f, b->name);
	fputs("} ", f);
	switch (m) {
	case B_UP:
		fprintf(f, "%d\n", b->last_error_ns > b->last_ok_ns ? 0 : 1);
		break;
	case B_RPO:
		fprintf(f, "%.3f\n", seconds(x->now - q->newest_replicated_ns));
		break;
	case B_NEWEST:
		fprintf(f, "%.3f\n", seconds(q->newest_replicated_ns));
		break;
	case B_PENDING:
		fprintf(f, "%llu\n", (unsigned long long)q->replicas_pending);
		break;
	case B_PENDING_BYTES:
		fprintf(f, "%llu\n", (unsigned long long)q->bytes_pending);
		break;
	case B_OLDEST_AGE:
		fprintf(f, "%.3f\n", q->oldest_pending_ns ?
					     seconds(x->now - q->oldest_pending_ns) :
					     0.0);
		break;
	case B_FAILING:
		fprintf(f, "%llu\n", (unsigned long long)q->replicas_failing);
		break;
	case B_UPLOADED:
		fprintf(f, "%llu\n", (unsigned long long)b->uploaded_bytes);
		break;
	case B_FAILURES:
		fprintf(f, "%llu\n", (unsigned long long)b->failures);
		break;
	case B_LAST_ERROR:
		fprintf(f, "%.3f\n", seconds(b->last_error_ns));
		break;
	case B_LAST_OK:
		fprintf(f, "%.3f\n", seconds(b->last_ok_ns));
		break;
	}
}

/* Drill results are rendered in three passes over the same rows. */
struct drill_pass {
	FILE *f;
	int which;
};

static int drill_sample(void *arg, const struct drgw_drill *d)
{
	struct drill_pass *p = arg;
	static const char *const names[] = {
		"drgw_drill_last_run_timestamp_seconds",
		"drgw_drill_last_success",
		"drgw_drill_restore_seconds",
	};

	fprintf(p->f, "%s{backend=", names[p->which]);
	label(p->f, d->backend);
	fputs(",pattern=", p->f);
	label(p->f, d->pattern);
	fputs("} ", p->f);
	if (p->which == 0)
		fprintf(p->f, "%.3f\n", seconds(d->started_ns));
	else if (p->which == 1)
		fprintf(p->f, "%d\n", d->ok ? 1 : 0);
	else
		fprintf(p->f, "%.3f\n", d->restore_seconds);
	return 0;
}

/* The last prune of each backend, one metric per pass. */
enum pvalue {
	P_LAST_RUN,
	P_SUCCESS,
	P_KEPT,
	P_REMOVED,
	P_LOCKED,
	P_KEPT_BYTES,
	P_REMOVED_BYTES,
	P_NEWEST,
	P_WINDOW,
};

static const struct {
	const char *name;
	const char *help;
} pmetrics[] = {
	[P_LAST_RUN] = { "drgw_prune_last_run_timestamp_seconds",
			 "When the last drgw prune of the backend ended" },
	[P_SUCCESS] = { "drgw_prune_last_success",
			"1 if the last drgw prune of the backend succeeded" },
	[P_KEPT] = { "drgw_prune_kept_snapshots",
		     "Snapshot versions the last prune kept on the backend" },
	[P_REMOVED] = { "drgw_prune_removed_snapshots",
			"Snapshot versions the last prune removed from the backend" },
	[P_LOCKED] = { "drgw_prune_locked_snapshots",
		       "Versions the last prune would have removed but a lock protects" },
	[P_KEPT_BYTES] = { "drgw_prune_kept_bytes",
			   "Stored bytes of the versions the last prune kept" },
	[P_REMOVED_BYTES] = { "drgw_prune_removed_bytes",
			      "Stored bytes the last prune freed on the backend" },
	[P_NEWEST] = { "drgw_prune_newest_snapshot_timestamp_seconds",
		       "Seal time of the newest snapshot the last prune found on the backend" },
	[P_WINDOW] = { "drgw_prune_policy_shortest_window_seconds",
		       "The shortest window of the backend's retention policy at the last prune" },
};

struct prune_pass {
	FILE *f;
	enum pvalue which;
};

static int prune_sample(void *arg, const struct drgw_prune_run *r)
{
	struct prune_pass *p = arg;

	/* Unknown, or "unlimited" (no end to alert on): absent, not zero. */
	if ((p->which == P_NEWEST && !r->newest_ns) ||
	    (p->which == P_WINDOW && (!r->window_ns || r->window_ns == INT64_MAX)))
		return 0;
	fprintf(p->f, "%s{backend=", pmetrics[p->which].name);
	label(p->f, r->backend);
	fputs("} ", p->f);
	switch (p->which) {
	case P_LAST_RUN:
		fprintf(p->f, "%.3f\n", seconds(r->finished_ns));
		break;
	case P_SUCCESS:
		fprintf(p->f, "%d\n", r->ok ? 1 : 0);
		break;
	case P_KEPT:
		fprintf(p->f, "%llu\n", (unsigned long long)r->kept);
		break;
	case P_REMOVED:
		fprintf(p->f, "%llu\n", (unsigned long long)r->removed);
		break;
	case P_LOCKED:
		fprintf(p->f, "%llu\n", (unsigned long long)r->locked);
		break;
	case P_KEPT_BYTES:
		fprintf(p->f, "%llu\n", (unsigned long long)r->kept_bytes);
		break;
	case P_REMOVED_BYTES:
		fprintf(p->f, "%llu\n", (unsigned long long)r->removed_bytes);
		break;
	case P_NEWEST:
		fprintf(p->f, "%.3f\n", seconds(r->newest_ns));
		break;
	case P_WINDOW:
		fprintf(p->f, "%.3f\n", seconds(r->window_ns));
		break;
	}
	return 0;
}

/* SQLite check metrics per series, rendered in three passes. */
struct series_pass {
	FILE *f;
	int64_t now;
	int which;
};

static int series_sample(void *arg, const char *pattern,
			 const struct drgw_version *newest,
			 const struct drgw_version *good)
{
	struct series_pass *p = arg;
	static const char *const names[] = {
		"drgw_sqlite_check_newest_ok",
		"drgw_sqlite_check_good_timestamp_seconds",
		"drgw_sqlite_check_good_age_seconds",
	};

	if (p->which > 0 && !good)
		return 0; /* none passed: absent, not zero */
	fprintf(p->f, "%s{pattern=", names[p->which]);
	label(p->f, pattern);
	fputs("} ", p->f);
	if (p->which == 0)
		fprintf(p->f, "%d\n", good == newest);
	else if (p->which == 1)
		fprintf(p->f, "%.3f\n", seconds(good->created_ns));
	else
		fprintf(p->f, "%.3f\n", seconds(p->now - good->created_ns));
	return 0;
}

static int incomplete_sample(void *arg, const char *pattern, const char *vid,
			     const char *problem)
{
	FILE *f = arg;

	fputs("drgw_snapshot_newest_incomplete{pattern=", f);
	label(f, pattern);
	fprintf(f, "} %d\n", problem != NULL);
	return 0;
}

static void render_checks(FILE *f, struct drgw_catalog *c, int64_t now)
{
	static const char *const help[][2] = {
		{ "drgw_sqlite_check_newest_ok", "1 if the newest snapshot of the name pattern passed its SQLite check" },
		{ "drgw_sqlite_check_good_timestamp_seconds", "Seal time of the newest snapshot of the name pattern that passed its SQLite check" },
		{ "drgw_sqlite_check_good_age_seconds", "Age of the newest snapshot of the name pattern that passed its SQLite check" },
	};
	uint64_t counts[DRGW_SQLCHECK_VERDICTS];

	if (drgw_catalog_check_counts(c, counts) == 0) {
		header(f, "drgw_sqlite_check_versions", "gauge",
		       "Encoded snapshot versions by the verdict of their SQLite check");
		for (unsigned v = 0; v < DRGW_SQLCHECK_VERDICTS; v++)
			fprintf(f, "drgw_sqlite_check_versions{verdict=\"%s\"} %llu\n",
				drgw_sqlcheck_verdict_name(v),
				(unsigned long long)counts[v]);
	}
	for (int w = 0; w < 3; w++) {
		struct series_pass p = { .f = f, .now = now, .which = w };

		header(f, help[w][0], "gauge", help[w][1]);
		drgw_catalog_each_series(c, series_sample, &p);
	}
	header(f, "drgw_snapshot_newest_incomplete", "gauge",
	       "1 if the newest snapshot of the name pattern is marked incomplete (its writer saw an error or did not close it)");
	drgw_catalog_each_newest(c, incomplete_sample, f);
}

int drgw_metrics_render(struct drgw_catalog *c, bool daemon_running,
			char **ret_text)
{
	static const char *const drill_help[][2] = {
		{ "drgw_drill_last_run_timestamp_seconds", "When the last restore drill of the pattern ran" },
		{ "drgw_drill_last_success", "1 if the last restore drill of the pattern found no issue" },
		{ "drgw_drill_restore_seconds", "How long the last restore drill took to restore (RTO sample)" },
	};
	struct render x = { .c = c, .now = drgw_now_ns() };
	struct drgw_queue_stats all;
	char *text = NULL;
	size_t len = 0;
	int r;

	x.f = open_memstream(&text, &len);
	if (!x.f)
		return -ENOMEM;
	r = drgw_catalog_queue_stats(c, NULL, &all);
	if (r == 0)
		r = drgw_catalog_each_backend(c, collect_backend, &x);

	header(x.f, "drgw_up", "gauge", "1 when the catalog could be read");
	fprintf(x.f, "drgw_up %d\n", r == 0);
	header(x.f, "drgw_daemon_running", "gauge",
	       "1 when a drgw daemon holds the cache directory");
	fprintf(x.f, "drgw_daemon_running %d\n", daemon_running);
	if (r == 0) {
		header(x.f, "drgw_files_settling", "gauge",
		       "Closed files waiting out the settle delay");
		fprintf(x.f, "drgw_files_settling %llu\n",
			(unsigned long long)(daemon_running ? all.files_settling : 0));
		header(x.f, "drgw_versions_unencoded", "gauge",
		       "Sealed snapshots waiting to be encoded");
		fprintf(x.f, "drgw_versions_unencoded %llu\n",
			(unsigned long long)all.versions_unencoded);
		header(x.f, "drgw_snapshot_versions", "gauge",
		       "Snapshot versions in the catalog");
		fprintf(x.f, "drgw_snapshot_versions %llu\n",
			(unsigned long long)all.versions);
		for (size_t m = 0; m < ARRAY_SIZE(bmetrics) && x.n; m++) {
			header(x.f, bmetrics[m].name, bmetrics[m].type,
			       bmetrics[m].help);
			for (size_t i = 0; i < x.n; i++)
				backend_value(&x, i, (enum bvalue)m);
		}
		for (int w = 0; w < 3; w++) {
			struct drill_pass p = { .f = x.f, .which = w };

			header(x.f, drill_help[w][0], "gauge", drill_help[w][1]);
			drgw_catalog_each_latest_drill(c, drill_sample, &p);
		}
		for (size_t m = 0; m < ARRAY_SIZE(pmetrics); m++) {
			struct prune_pass p = { .f = x.f, .which = (enum pvalue)m };

			header(x.f, pmetrics[m].name, "gauge", pmetrics[m].help);
			drgw_catalog_each_latest_prune_run(c, prune_sample, &p);
		}
		render_checks(x.f, c, x.now);
	}
	free(x.b);
	free(x.qs);
	if (fclose(x.f) != 0) {
		free(text);
		return -ENOMEM;
	}
	*ret_text = text;
	return 0;
}
