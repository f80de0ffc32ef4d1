/* SPDX-License-Identifier: MIT */
/*
 * `drgw restore`, `drgw verify`, `drgw drill` and `drgw backfill`: reading
 * snapshots back without FUSE.  They find objects from the backends
 * themselves (remote.h), so they work on a new machine with nothing but
 * the key and the backend URLs.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cli.h"
#include "log.h"
#include "metrics.h"
#include "restore.h"

enum { OPT_VERSION = 1000, OPT_FORCE, OPT_JSON, OPT_ALL, OPT_BACKEND,
       OPT_CHECK_SQL, OPT_FROM, OPT_DRY_RUN, OPT_LATEST };

struct args {
	const char *vid;
	bool force;
	bool json;
	bool all;
	const char *only_backend;
	const char *check_sql;
	const char *from;
	bool dry_run;
	bool latest;
	struct drgw_config *cfg;
};

static int on_opt(void *arg, int id, const char *value)
{
	struct args *a = arg;

	switch (id) {
	case OPT_VERSION:
		if (!drgw_vid_ok(value)) {
			drgw_cli_error("invalid --version '%s'", value);
			return -EINVAL;
		}
		a->vid = value;
		return 0;
	case OPT_FORCE:
		a->force = true;
		return 0;
	case OPT_JSON:
		a->json = true;
		return 0;
	case OPT_ALL:
		a->all = true;
		return 0;
	case OPT_BACKEND: {
		/* NAME=URL configures a backend; a bare NAME picks one. */
		struct drgw_err err = { 0 };

		if (!strchr(value, '=')) {
			a->only_backend = value;
			return 0;
		}
		if (drgw_config_add_backend_arg(a->cfg, value, &err) == 0)
			return 0;
		drgw_cli_error("%s", err.msg);
		return -EINVAL;
	}
	case OPT_CHECK_SQL:
		a->check_sql = value;
		return 0;
	case OPT_FROM:
		a->from = value;
		return 0;
	case OPT_DRY_RUN:
		a->dry_run = true;
		return 0;
	case OPT_LATEST:
		a->latest = true;
		return 0;
	}
	return -EINVAL;
}

/* What the commands set up: a gateway on the backends, a reader, and the
 * scan of what the backends hold.  With --cache, the scan reads only the
 * tails of objects that cache has not seen, and a restore none at all;
 * without, a temporary cache holds them for this run. */
struct session {
	struct drgw_config cfg;
	char tmp_cache[256];
	struct drgw_gateway *gw;
	struct drgw_reader *rd;
	struct drgw_remote_set set;
	bool write_backends;	/* backfill uploads */
};

static void cli_warn(void *arg, const char *line)
{
	drgw_cli_error("warning: %s", line);
}

static int session_open(struct session *s, bool need_readable)
{
	struct drgw_reader_opts ro;
	struct drgw_err err = { 0 };
	int r;

	if (!s->cfg.cache_dir &&
	    drgw_cli_temp_cache(&s->cfg, s->tmp_cache, sizeof(s->tmp_cache)) < 0) {
		drgw_cli_error("cannot create a temporary cache directory: %s",
			       strerror(errno));
		return -1;
	}
	r = drgw_gateway_open(&s->cfg, DRGW_MODE_CLIENT_BACKENDS,
			      DRGW_OPEN_NEED_KEY | DRGW_OPEN_NEED_BACKENDS |
				      (s->write_backends ? DRGW_OPEN_WRITE_BACKENDS : 0),
			      &s->gw, &err);
	if (r == 0) {
		drgw_reader_opts_from_config(&s->cfg, &ro);
		r = drgw_reader_new(&ro, &s->gw->keys, &s->rd);
	}
	if (r == 0)
		r = drgw_remote_scan(s->gw, s->rd, &s->set, &err);
	if (r == 0 && need_readable)
		r = drgw_remote_require_readable(&s->set, &err);
	if (r < 0) {
		drgw_cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
		return -1;
	}
	drgw_remote_warn_unreachable(&s->set, s->gw, cli_warn, NULL);
	for (size_t i = 0; i < s->set.n_bad; i++)
		drgw_cli_error("warning: cannot read %s", s->set.bad[i].why);
	if (s->tmp_cache[0])
		drgw_cli_cache_hint(s->set.n_read);
	return 0;
}

static void session_close(struct session *s)
{
	drgw_remote_set_release(&s->set);
	drgw_reader_free(s->rd);
	drgw_gateway_close(s->gw);
	drgw_cli_temp_cache_remove(s->tmp_cache);
	drgw_config_release(&s->cfg);
}

/* --- restore --- */

static const struct cli_opt restore_opts[] = {
	{ "version", required_argument, OPT_VERSION, 0 },
	{ "latest", no_argument, OPT_LATEST, 0 },
	{ "force", no_argument, OPT_FORCE, 0 },
	{ 0 },
};

static const struct cli_cmd restore_cmd = {
	.name = "restore",
	.synopsis = "[--version VID | --latest] [--force] NAME DEST",
	.help = "Copies the newest version of snapshot NAME (or version VID) from the\n"
		"backends to DEST (a file, or a directory to put it in), checking its\n"
		"content hash; DEST gets the original mode and mtime.  If a backend\n"
		"fails, the next one holding the same version is used.  With --latest,\n"
		"NAME is a glob pattern ('app-*.db', quoted; '*' does not match '/')\n"
		"and the newest snapshot whose name matches it is restored: the one\n"
		"sealed last.  Needs no FUSE.  If the catalog of --cache says the\n"
		"version failed its SQLite check at ingest, a warning names the newest\n"
		"version of its series that passed (the exit status does not change).",
	.opts = restore_opts,
	.opts_help = "options:\n"
		     "  --version VID     restore that version instead of the newest\n"
		     "  --latest          NAME is a pattern: restore the newest match\n"
		     "  --force           replace DEST if it exists\n",
	.common = CLI_COMMON_CACHE | CLI_COMMON_KEY | CLI_COMMON_BACKEND |
		  CLI_COMMON_READ,
};

/* Restores s into dest via a temp file renamed into place. */
static int restore_to(struct session *s, const struct drgw_snapshot *sn,
		      const char *dest, bool force)
{
	char tmp[4200], sha[32];
	struct drgw_err err = { 0 };
	struct timespec times[2];
	int64_t t0 = drgw_mono_ns();
	struct stat st;
	mode_t mask = drgw_current_umask();
	size_t loc;
	int fd, r = -EIO;

	if (!force && lstat(dest, &st) == 0) {
		drgw_cli_error("%s exists; use --force to replace it", dest);
		return -EEXIST;
	}
	for (loc = 0; loc < sn->n_locs; loc++) {
		/* A fresh name each time (O_EXCL): a symlink planted in a
		 * shared directory cannot redirect what root writes. */
		snprintf(tmp, sizeof(tmp), "%s.drgw-restore-XXXXXX", dest);
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0) {
			drgw_cli_error("cannot create a file next to %s: %s", dest,
				       strerror(errno));
			return -errno;
		}
		memset(&err, 0, sizeof(err));
		r = drgw_restore_copy(s->gw, s->rd, sn, loc, fd, false,
				      (uint8_t *)sha, &err);
		/* Permission bits under the umask, as cp does; never set-id
		 * bits: the owner of the original is not restored. */
		if (r == 0 && fchmod(fd, sn->meta.mode & 0777 & ~mask) < 0)
			r = -errno;
		times[0].tv_sec = times[1].tv_sec = sn->meta.mtime_ns / NSEC_PER_SEC;
		times[0].tv_nsec = times[1].tv_nsec = sn->meta.mtime_ns % NSEC_PER_SEC;
		if (r == 0 && futimens(fd, times) < 0)
			r = -errno;
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
		close(fd);
		if (r == 0)
			break;
		unlink(tmp);
		log_error("cannot restore %s from %s: %s", sn->meta.name,
			  s->gw->backend_names[sn->locs[loc].backend],
			  err.msg[0] ? err.msg : strerror(-r));
	}
	if (r == 0 && rename(tmp, dest) < 0) {
		r = -errno;
		unlink(tmp);
	}
	if (r == 0)
		drgw_fsync_parent(dest);
	if (r < 0) {
		drgw_cli_error("cannot restore %s: %s", sn->meta.name,
			       err.msg[0] ? err.msg : strerror(-r));
		return r;
	}
	printf("restored %s (version %s, %llu bytes) from %s to %s in %.2fs\n",
	       sn->meta.name, sn->meta.vid, (unsigned long long)sn->meta.size,
	       s->gw->backend_names[sn->locs[loc].backend], dest,
	       (double)(drgw_mono_ns() - t0) / NSEC_PER_SEC);
	return 0;
}

/* The snapshot sealed last among the names matching pattern, or NULL. */
static const struct drgw_snapshot *find_latest(const struct drgw_remote_set *set,
					       const char *pattern)
{
	const struct drgw_snapshot *best = NULL;

	for (size_t i = 0; i < set->n; i++) {
		const struct drgw_snapshot *sn = &set->snaps[i];

		if (fnmatch(pattern, sn->meta.name, FNM_PATHNAME) != 0)
			continue;
		if (!best || sn->meta.created_ns > best->meta.created_ns ||
		    (sn->meta.created_ns == best->meta.created_ns &&
		     strcmp(sn->meta.name, best->meta.name) > 0))
			best = sn;
	}
	return best;
}

int drgw_cmd_restore(int argc, char **argv)
{
	struct session s = { 0 };
	const struct drgw_snapshot *sn;
	struct drgw_err err = { 0 };
	struct args a = { 0 };
	char dest[4096], warning[1024];
	struct stat st;
	int i, r = 1;

	drgw_config_init(&s.cfg);
	i = drgw_cli_parse(&restore_cmd, argc, argv, &s.cfg, on_opt, &a);
	if (i < 0 || argc - i != 2) {
		drgw_config_release(&s.cfg);
		return i == -2 ? 0 :
		       i < 0	? EXIT_USAGE :
				  drgw_cli_usage_error(&restore_cmd, "expected NAME and DEST");
	}
	if (a.latest && a.vid) {
		drgw_config_release(&s.cfg);
		return drgw_cli_usage_error(&restore_cmd,
					    "--latest and --version exclude each other");
	}
	drgw_cli_apply_log(&s.cfg);
	if (session_open(&s, true) < 0)
		goto out;
	sn = a.latest ? find_latest(&s.set, argv[i]) :
			drgw_remote_find(&s.set, argv[i], a.vid);
	if (!sn && a.latest) {
		drgw_cli_error("no snapshot matching %s on the backends (see 'drgw ls --remote')",
			       argv[i]);
		goto out;
	}
	if (!sn) {
		drgw_cli_error("no snapshot named %s%s%s on the backends (see 'drgw ls --remote')",
			       argv[i], a.vid ? " with version " : "",
			       a.vid ? a.vid : "");
		goto out;
	}
	/* An explicit --version is the operator's choice; "the newest" is
	 * checked against rollback. */
	if (!a.vid && !s.cfg.allow_older &&
	    drgw_remote_check_fresh(s.gw, sn, s.cfg.max_age_ns, &err) < 0) {
		drgw_cli_error("%s", err.msg);
		goto out;
	}
	/* Restore it anyway (it may be all there is), but say so. */
	if (drgw_restore_check_warning(s.gw->cat, &s.set, sn, warning,
				       sizeof(warning)))
		log_warning("%s", warning);
	if (stat(argv[i + 1], &st) == 0 && S_ISDIR(st.st_mode)) {
		char *name = strdup(sn->meta.name);

		snprintf(dest, sizeof(dest), "%s/%s", argv[i + 1],
			 name ? basename(name) : "restored");
		free(name);
	} else {
		drgw_strlcpy(dest, argv[i + 1], sizeof(dest));
	}
	r = restore_to(&s, sn, dest, a.force) < 0 ? 1 : 0;
out:
	session_close(&s);
	return r;
}

/* --- verify --- */

static const struct cli_opt verify_opts[] = {
	{ "json", no_argument, OPT_JSON, 0 },
	{ "all-versions", no_argument, OPT_ALL, 0 },
	{ 0 },
};

static const struct cli_cmd verify_cmd = {
	.name = "verify",
	.synopsis = "[--json] [--all-versions] [NAME...]",
	.help = "Re-reads every replica of the newest version of each snapshot (or of\n"
		"NAMEs; or every version) from every backend, authenticates every chunk\n"
		"and checks the content hash; and checks that what the catalog says is\n"
		"replicated is on the backends.  Exits 1 if anything is wrong.",
	.opts = verify_opts,
	.opts_help = "options:\n"
		     "  --json            machine-readable output\n"
		     "  --all-versions    check every version, not only the newest\n",
	.common = CLI_COMMON_CACHE | CLI_COMMON_KEY | CLI_COMMON_BACKEND |
		  CLI_COMMON_READ,
};

struct verify_ctx {
	struct session *s;
	json_t *json;
	unsigned ok, bad;
};

static void report(struct verify_ctx *x, const char *name, const char *vid,
		   const char *backend, const char *problem)
{
	if (problem)
		x->bad++;
	else
		x->ok++;
	if (x->json) {
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(name));
		json_object_set_new(o, "version", json_string(vid));
		json_object_set_new(o, "backend", json_string(backend));
		json_object_set_new(o, "ok", json_boolean(!problem));
		if (problem)
			json_object_set_new(o, "error", json_string(problem));
		json_array_append_new(x->json, o);
		return;
	}
	printf("%-32s %-26s %-12s %s\n", name, vid, backend,
	       problem ? problem : "ok");
}

static bool wanted(char **names, int n, const char *name)
{
	if (n == 0)
		return true;
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/* A replica the catalog calls done must be among what the scan found. */
struct catalog_check {
	struct verify_ctx *x;
	const struct drgw_version *v;
};

static int check_replica(void *arg, const struct drgw_replica *r)
{
	struct catalog_check *cc = arg;
	const struct drgw_snapshot *sn;
	size_t bi;

	if (r->state != DRGW_REPLICA_DONE)
		return 0;
	for (bi = 0; bi < cc->x->s->gw->n_backends; bi++)
		if (!strcmp(cc->x->s->gw->backend_names[bi], r->backend))
			break;
	if (bi == cc->x->s->gw->n_backends)
		return 0; /* not configured for this run */
	sn = drgw_remote_find(&cc->x->s->set, NULL, cc->v->vid);
	for (size_t l = 0; sn && l < sn->n_locs; l++)
		if (sn->locs[l].backend == bi)
			return 0;
	report(cc->x, cc->v->name, cc->v->vid, r->backend,
	       "catalog says replicated, but the backend does not have it");
	return 0;
}

static int check_version(void *arg, const struct drgw_version *v)
{
	struct catalog_check cc = { .x = arg, .v = v };

	return drgw_catalog_each_replica(cc.x->s->gw->cat, v->id, check_replica,
					 &cc);
}

int drgw_cmd_verify(int argc, char **argv)
{
	struct session s = { 0 };
	struct verify_ctx x = { .s = &s };
	struct args a = { 0 };
	int i, r = 1;

	drgw_config_init(&s.cfg);
	i = drgw_cli_parse(&verify_cmd, argc, argv, &s.cfg, on_opt, &a);
	if (i < 0) {
		drgw_config_release(&s.cfg);
		return i == -2 ? 0 : EXIT_USAGE;
	}
	drgw_cli_apply_log(&s.cfg);
	if (session_open(&s, false) < 0)
		goto out;
	x.json = a.json ? json_array() : NULL;
	if (!a.json)
		printf("%-32s %-26s %-12s %s\n", "NAME", "VERSION", "BACKEND",
		       "RESULT");
	for (size_t k = 0; k < s.set.n; k++) {
		const struct drgw_snapshot *sn = &s.set.snaps[k];

		if (!wanted(argv + i, argc - i, sn->meta.name) ||
		    (!a.all && !drgw_remote_is_latest(&s.set, k)))
			continue;
		for (size_t l = 0; l < sn->n_locs; l++) {
			struct drgw_err err = { 0 };
			struct drgw_version cv;
			uint8_t sha[32];
			char hex[65];
			int rr;

			rr = drgw_restore_copy(s.gw, s.rd, sn, l, -1, true,
					       sha, &err);
			drgw_hex(sha, 32, hex);
			/* The catalog's hash was taken when the file was
			 * encoded, before it ever left the machine. */
			if (rr == 0 &&
			    drgw_catalog_get_version(s.gw->cat, sn->meta.vid, &cv) == 0) {
				if (cv.state == DRGW_VERSION_ENCODED &&
				    strcmp(cv.sha256, hex)) {
					rr = -EBADMSG;
					drgw_err_set(&err, "content hash differs from the catalog's");
				}
				drgw_version_release(&cv);
			}
			report(&x, sn->meta.name, sn->meta.vid,
			       s.gw->backend_names[sn->locs[l].backend],
			       rr < 0 ? err.msg : NULL);
		}
	}
	drgw_catalog_each_version(s.gw->cat, !a.all,
				  argc > i ? (const char *const *)argv + i : NULL,
				  check_version, &x);
	for (size_t k = 0; k < s.set.n_bad; k++)
		report(&x, s.set.bad[k].key, "-",
		       s.gw->backend_names[s.set.bad[k].backend], s.set.bad[k].why);
	for (size_t k = 0; k < s.set.n_unreachable; k++)
		report(&x, "-", "-", s.gw->backend_names[s.set.unreachable[k].backend],
		       s.set.unreachable[k].why);
	if (x.json)
		drgw_cli_print_json(x.json);
	else
		printf("\n%u replicas ok, %u problems\n", x.ok, x.bad);
	r = x.bad || (x.ok == 0 && argc > i) ? 1 : 0;
	if (x.ok == 0 && x.bad == 0 && argc > i)
		drgw_cli_error("no snapshot named %s on the backends", argv[i]);
out:
	session_close(&s);
	return r;
}

/* --- drill --- */

static const struct cli_opt drill_opts[] = {
	{ "backend", required_argument, OPT_BACKEND, 0 },
	{ "check-sql", required_argument, OPT_CHECK_SQL, 0 },
	{ "json", no_argument, OPT_JSON, 0 },
	{ 0 },
};

static const struct cli_cmd drill_cmd = {
	.name = "drill",
	.synopsis = "[--backend NAME] [--check-sql SQL] [--json]",
	.help = "The restore test, automated: for each backend (or only NAME), restores\n"
		"the newest snapshot of every name pattern (digits become '*':\n"
		"app-20261125.db is app-*.db) into a scratch directory, reading every\n"
		"byte of it from the backend as after a disaster, checks its content\n"
		"hash, and for SQLite files runs PRAGMA integrity_check and the optional\n"
		"SQL probe.  Results go to the catalog of --cache (shown by drgw status\n"
		"--prometheus and /metrics), which also keeps what the scan of the\n"
		"backends read for the next drill, and to stdout.  Exits 1 if anything\n"
		"is wrong or a backend holds nothing.",
	.opts = drill_opts,
	.opts_help = "options:\n"
		     "  --backend NAME     drill only this backend (NAME=URL configures one)\n"
		     "  --check-sql SQL    also run SQL on SQLite snapshots (e.g. SELECT COUNT(*) FROM t)\n"
		     "  --json             machine-readable output\n",
	.common = CLI_COMMON_CACHE | CLI_COMMON_KEY | CLI_COMMON_BACKEND |
		  CLI_COMMON_READ,
};

struct drill_run {
	struct session *s;
	struct args *a;
	struct drgw_catalog *record; /* --cache's catalog, or NULL */
	char scratch[4200];
	json_t *json;
	unsigned ok, bad;
};

/* PRAGMA integrity_check and the probe on a restored SQLite file.  Adds
 * what is wrong to issues; the probe's first value goes to *ret_probe. */
static void check_sqlite(const char *path, const char *sql, char *issues,
			 size_t size, char **ret_probe)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char found[512] = "";
	int rc;

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
	while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const char *row = (const char *)sqlite3_column_text(st, 0);

		if (row && strcmp(row, "ok"))
			snprintf(found + strlen(found), sizeof(found) - strlen(found),
				 "%s%s", found[0] ? "; " : "", row);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_OK)
		snprintf(issues, size, "cannot open the restored database: %s",
			 db ? sqlite3_errmsg(db) : "out of memory");
	else if (found[0])
		snprintf(issues, size, "integrity_check: %s", found);
	if (rc == SQLITE_OK && sql) {
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
			const char *v = rc == SQLITE_ROW ?
						(const char *)sqlite3_column_text(st, 0) :
						NULL;

			*ret_probe = strdup(v ? v : "(no rows)");
		} else {
			snprintf(issues + strlen(issues), size - strlen(issues),
				 "%sprobe failed: %s", issues[0] ? "; " : "",
				 sqlite3_errmsg(db));
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

static bool is_sqlite(const char *path)
{
	char magic[16] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	drgw_pread_full(fd, magic, sizeof(magic), 0);
	close(fd);
	return !memcmp(magic, "SQLite format 3", 16);
}

static void drill_report(struct drill_run *x, const struct drgw_drill *d)
{
	char when[32];

	if (d->ok)
		x->ok++;
	else
		x->bad++;
	if (x->record)
		drgw_catalog_add_drill(x->record, d);
	if (x->json) {
		json_t *o = json_object();

		drgw_format_time(d->started_ns, when, sizeof(when));
		json_object_set_new(o, "backend", json_string(d->backend));
		json_object_set_new(o, "pattern", json_string(d->pattern));
		json_object_set_new(o, "snapshot", json_string(d->name ? d->name : ""));
		json_object_set_new(o, "version", json_string(d->vid));
		json_object_set_new(o, "date", json_string(when));
		json_object_set_new(o, "ok", json_boolean(d->ok));
		json_object_set_new(o, "restore_seconds", json_real(d->restore_seconds));
		json_object_set_new(o, "bytes", json_integer((json_int_t)d->bytes));
		if (d->issues)
			json_object_set_new(o, "issues", json_string(d->issues));
		if (d->probe)
			json_object_set_new(o, "probe", json_string(d->probe));
		json_array_append_new(x->json, o);
		return;
	}
	printf("%-12s %-24s %-32s %-26s %7.2fs  %s%s%s\n", d->backend, d->pattern,
	       d->name ? d->name : "-", d->vid[0] ? d->vid : "-",
	       d->restore_seconds, d->ok ? "ok" : d->issues,
	       d->probe ? "; probe: " : "", d->probe ? d->probe : "");
}

/* What the object's footer says the writer saw: marked incomplete, or a
 * failed SQLite check at ingest. */
static void footer_notes(struct drill_run *x, const struct drgw_snapshot *sn,
			 size_t loc, char *issues, size_t size)
{
	struct drgw_err err = { 0 };
	const struct drgw_obj_ext *ext;
	struct drgw_rfile *rf;

	if (drgw_remote_open(x->s->gw, x->s->rd, sn, loc, false, &rf, &err) < 0)
		return; /* the restore below says why */
	ext = drgw_rfile_ext(rf);
	if (ext->problem)
		snprintf(issues, size, "the snapshot is marked %s", ext->problem);
	else if (ext->check == DRGW_CHECK_FAILED)
		snprintf(issues, size, "it failed its SQLite check at ingest: %s",
			 ext->check_msg ? ext->check_msg : "");
	drgw_rfile_close(rf);
}

/* Restores snapshot sn from backend bi and checks it. */
static void drill_one(struct drill_run *x, size_t bi,
		      const struct drgw_snapshot *sn, const char *pattern)
{
	struct drgw_drill d = { .started_ns = drgw_now_ns() };
	struct drgw_err err = { 0 };
	char path[4300], issues[1024] = "";
	int64_t t0 = drgw_mono_ns();
	uint8_t sha[32];
	size_t loc;
	int fd, r;

	drgw_strlcpy(d.backend, x->s->gw->backend_names[bi], sizeof(d.backend));
	d.pattern = (char *)pattern;
	d.name = (char *)sn->meta.name;
	drgw_strlcpy(d.vid, sn->meta.vid, sizeof(d.vid));
	for (loc = 0; loc < sn->n_locs && sn->locs[loc].backend != bi; loc++)
		;
	/* A restore drill of "the newest" that is too old is a failed drill,
	 * whether or not the old one restores; so is one whose writer said
	 * it is no good backup. */
	if (drgw_remote_check_fresh(x->s->gw, sn, x->s->cfg.max_age_ns, &err) < 0)
		snprintf(issues, sizeof(issues), "%s", err.msg);
	else
		footer_notes(x, sn, loc, issues, sizeof(issues));
	snprintf(path, sizeof(path), "%s/restored", x->scratch);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(issues, sizeof(issues), "cannot create %s: %s", path,
			 strerror(errno));
	} else {
		r = drgw_restore_copy(x->s->gw, x->s->rd, sn, loc, fd, true,
				      sha, &err);
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
		close(fd);
		d.restore_seconds = (double)(drgw_mono_ns() - t0) / NSEC_PER_SEC;
		if (r < 0)
			snprintf(issues, sizeof(issues), "restore failed: %s",
				 err.msg[0] ? err.msg : strerror(-r));
		else
			d.bytes = sn->meta.size;
		if (r == 0 && is_sqlite(path))
			check_sqlite(path, x->a->check_sql, issues, sizeof(issues),
				     &d.probe);
	}
	unlink(path);
	d.ok = !issues[0];
	d.issues = d.ok ? NULL : issues;
	drill_report(x, &d);
	free(d.probe);
}

/* A version and its name pattern, for grouping. */
struct patterned {
	char *pattern;
	const struct drgw_snapshot *sn;
};

static int by_pattern(const void *a, const void *b)
{
	const struct patterned *x = a, *y = b;
	int c = strcmp(x->pattern, y->pattern);

	if (c)
		return c;
	if (x->sn->meta.created_ns != y->sn->meta.created_ns)
		return x->sn->meta.created_ns < y->sn->meta.created_ns ? -1 : 1;
	return strcmp(x->sn->meta.vid, y->sn->meta.vid);
}

static bool on_backend(const struct drgw_snapshot *sn, size_t bi)
{
	for (size_t l = 0; l < sn->n_locs; l++)
		if (sn->locs[l].backend == bi)
			return true;
	return false;
}

static void drill_backend(struct drill_run *x, size_t bi)
{
	const struct drgw_remote_set *set = &x->s->set;
	struct patterned *p = calloc(set->n + 1, sizeof(*p));
	size_t n = 0, found = 0;

	/* For each pattern, the newest snapshot this backend holds: the
	 * versions it holds sorted by pattern, then age. */
	for (size_t i = 0; p && i < set->n; i++) {
		if (!on_backend(&set->snaps[i], bi))
			continue;
		p[n].pattern = drgw_name_pattern(set->snaps[i].meta.name);
		p[n].sn = &set->snaps[i];
		if (p[n].pattern)
			n++;
	}
	if (n)
		qsort(p, n, sizeof(*p), by_pattern);
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && !strcmp(p[i].pattern, p[i + 1].pattern))
			continue;
		drill_one(x, bi, p[i].sn, p[i].pattern);
		found++;
	}
	if (!found) {
		struct drgw_drill d = { .started_ns = drgw_now_ns(),
					.pattern = (char *)"*",
					.issues = (char *)"the backend holds no readable snapshot" };

		drgw_strlcpy(d.backend, x->s->gw->backend_names[bi], sizeof(d.backend));
		drill_report(x, &d);
	}
	for (size_t i = 0; i < n; i++)
		free(p[i].pattern);
	free(p);
}

int drgw_cmd_drill(int argc, char **argv)
{
	struct session s = { 0 };
	struct args a = { .cfg = &s.cfg };
	struct drill_run x = { .s = &s, .a = &a };
	const char *tmp;
	size_t matched = 0;
	int i, r = 1;

	drgw_config_init(&s.cfg);
	i = drgw_cli_parse(&drill_cmd, argc, argv, &s.cfg, on_opt, &a);
	if (i < 0 || argc > i) {
		drgw_config_release(&s.cfg);
		return i == -2 ? 0 :
		       i < 0	? EXIT_USAGE :
				  drgw_cli_usage_error(&drill_cmd, "unexpected argument '%s'", argv[i]);
	}
	drgw_cli_apply_log(&s.cfg);
	if (session_open(&s, false) < 0)
		goto out;
	/* Results go to --cache's catalog.  The restores read everything
	 * from the backends (drill_one()), as after a disaster; only the
	 * scan's descriptions of older versions come from the cache. */
	if (!s.tmp_cache[0])
		x.record = s.gw->cat;
	tmp = getenv("TMPDIR");
	snprintf(x.scratch, sizeof(x.scratch), "%s/drgw-drill-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(x.scratch)) {
		drgw_cli_error("cannot create %s: %s", x.scratch, strerror(errno));
		x.scratch[0] = '\0';
		goto out;
	}
	x.json = a.json ? json_array() : NULL;
	if (!a.json)
		printf("%-12s %-24s %-32s %-26s %8s  %s\n", "BACKEND", "PATTERN",
		       "SNAPSHOT", "VERSION", "RESTORE", "RESULT");
	for (size_t b = 0; b < s.gw->n_backends; b++) {
		if (a.only_backend && strcmp(a.only_backend, s.gw->backend_names[b]))
			continue;
		matched++;
		drill_backend(&x, b);
	}
	if (a.only_backend && !matched) {
		drgw_cli_error("no backend named %s is configured", a.only_backend);
		json_decref(x.json);
		goto out;
	}
	/* An object that does not open is a backup that would not restore:
	 * a failed drill, not a footnote. */
	for (size_t k = 0; k < s.set.n_bad; k++) {
		struct drgw_drill d = { .started_ns = drgw_now_ns(),
					.pattern = (char *)"-",
					.name = (char *)s.set.bad[k].key,
					.issues = (char *)s.set.bad[k].why };

		if (a.only_backend &&
		    strcmp(a.only_backend, s.gw->backend_names[s.set.bad[k].backend]))
			continue;
		drgw_strlcpy(d.backend, s.gw->backend_names[s.set.bad[k].backend],
			     sizeof(d.backend));
		drill_report(&x, &d);
	}
	if (x.json)
		drgw_cli_print_json(x.json);
	else
		printf("\n%u drills ok, %u with issues\n", x.ok, x.bad);
	r = x.bad ? 1 : 0;
out:
	drgw_cli_temp_cache_remove(x.scratch);
	session_close(&s);
	return r;
}

/* --- backfill --- */

static const struct cli_opt backfill_opts[] = {
	{ "all-versions", no_argument, OPT_ALL, 0 },
	{ "from", required_argument, OPT_FROM, 0 },
	{ "dry-run", no_argument, OPT_DRY_RUN, 0 },
	{ 0 },
};

static const struct cli_cmd backfill_cmd = {
	.name = "backfill",
	.synopsis = "[--all-versions] [--from NAME] [--dry-run] TARGET",
	.help = "Copies to backend TARGET the snapshots the other backends hold and it\n"
		"lacks (the newest version of each name, or every version), as they\n"
		"are stored: nothing is decoded or re-encrypted.  Each copy is then\n"
		"read back from TARGET and checked end to end.  For a backend added\n"
		"after the fact (the daemon replicates only what it encodes later) and\n"
		"for rebuilding a lost backend from a surviving one.  Exits 1 if any\n"
		"copy failed.",
	.opts = backfill_opts,
	.opts_help = "options:\n"
		     "  --all-versions    copy every version, not only the newest\n"
		     "  --from NAME       read from backend NAME where it has the version\n"
		     "  --dry-run         only list what would be copied\n",
	.common = CLI_COMMON_CACHE | CLI_COMMON_KEY | CLI_COMMON_BACKEND |
		  CLI_COMMON_READ,
};

/*
 * The snapshots to copy, as indexes into s->set ending with SIZE_MAX:
 * every version (all) or the newest of each name, and the objects those
 * take blocks from (incremental objects), which come first, so that a
 * target never holds an increment without its base.  NULL on ENOMEM.
 */
static size_t *backfill_order(struct session *s, bool all)
{
	const struct drgw_remote_set *set = &s->set;
	/* 0: not wanted, 1: wanted, 2: referenced by a wanted one */
	uint8_t *want = calloc(set->n + 1, 1);
	size_t *order = malloc((set->n + 1) * sizeof(*order)), n = 0;

	if (!want || !order) {
		free(want);
		free(order);
		return NULL;
	}
	for (size_t k = 0; k < set->n; k++)
		want[k] = all || drgw_remote_is_latest(set, k);
	for (size_t k = 0; k < set->n; k++) {
		const struct drgw_obj_ref *refs;
		struct drgw_err err = { 0 };
		struct drgw_rfile *rf;
		size_t n_refs;

		if (want[k] != 1 ||
		    drgw_remote_open(s->gw, s->rd, &set->snaps[k], 0, false, &rf,
				     &err) < 0)
			continue; /* the copy fails later, with the reason */
		refs = drgw_rfile_refs(rf, &n_refs);
		for (size_t i = 0; i < n_refs; i++) {
			const struct drgw_snapshot *base =
				drgw_remote_find(set, NULL, refs[i].vid);

			if (base)
				want[base - set->snaps] = 2;
			else
				log_warning("%s version %s takes blocks from version %s, which no backend lists",
					    set->snaps[k].meta.name,
					    set->snaps[k].meta.vid, refs[i].vid);
		}
		drgw_rfile_close(rf);
	}
	for (uint8_t pass = 2; pass >= 1; pass--)
		for (size_t k = 0; k < set->n; k++)
			if (want[k] == pass)
				order[n++] = k;
	order[n] = SIZE_MAX;
	free(want);
	return order;
}

/* The location to copy sn from: on backend from if it has one, else the
 * first; -1 if sn is already on target. */
static ssize_t backfill_source(const struct drgw_snapshot *sn, size_t target,
			       ssize_t from)
{
	ssize_t pick = -1;

	for (size_t l = 0; l < sn->n_locs; l++) {
		if (sn->locs[l].backend == target)
			return -1;
		if (pick < 0 || (ssize_t)sn->locs[l].backend == from)
			pick = (ssize_t)l;
	}
	return pick;
}

/* Copies sn to target from location first, or failing that from any other
 * location.  The location used, or -1. */
static ssize_t copy_snapshot(struct session *s, const struct drgw_snapshot *sn,
			     size_t first, size_t target)
{
	const char *to = s->gw->backend_names[target];

	for (size_t n = 0; n < sn->n_locs; n++) {
		/* first, then the others in order */
		size_t l = n == 0 ? first : n <= first ? n - 1 : n;
		struct drgw_err err = { 0 };

		if (drgw_restore_copy_object(s->gw, sn, l, target, &err) == 0)
			return (ssize_t)l;
		log_error("cannot copy %s version %s from %s to %s: %s",
			  sn->meta.name, sn->meta.vid,
			  s->gw->backend_names[sn->locs[l].backend], to, err.msg);
	}
	return -1;
}

/* Reads the copy of vid on target back, end to end.  Its location there,
 * or NULL with the reason in err. */
static const struct drgw_location *check_copy(struct session *s,
					      const char *vid, size_t target,
					      struct drgw_err *err)
{
	const struct drgw_snapshot *sn = drgw_remote_find(&s->set, NULL, vid);
	uint8_t sha[32];

	for (size_t l = 0; sn && l < sn->n_locs; l++) {
		if (sn->locs[l].backend != target)
			continue;
		if (drgw_restore_copy(s->gw, s->rd, sn, l, -1, true, sha,
				      err) < 0)
			return NULL;
		return &sn->locs[l];
	}
	drgw_err_set(err, "the backend does not list the copy");
	return NULL;
}

/* --- backfill by a writer that cannot decrypt --- */

struct catalog_fill {
	struct drgw_gateway *gw;
	size_t target;
	ssize_t from;
	bool dry_run;
	/* Keys the target lists, sorted. */
	char **have;
	size_t n_have, cap_have;
	/* Versions to copy (vids), references first. */
	char (*todo)[DRGW_OBJ_VID_MAX + 1];
	size_t n_todo, cap_todo;
	size_t copied, present, failed;
};

static int on_target_key(void *arg, const char *key,
			 const struct drgw_object_info *info)
{
	struct catalog_fill *f = arg;

	if (f->n_have == f->cap_have) {
		size_t c = f->cap_have ? 2 * f->cap_have : 256;
		char **p = realloc(f->have, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		f->have = p;
		f->cap_have = c;
	}
	f->have[f->n_have] = strdup(key);
	return f->have[f->n_have++] ? 0 : -ENOMEM;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool target_has(struct catalog_fill *f, const char *vid)
{
	char key[DRGW_OBJ_VID_MAX + 8];
	const char *k = key;

	drgw_spool_name(vid, key, sizeof(key));
	return f->n_have &&
	       bsearch(&k, f->have, f->n_have, sizeof(*f->have), cmp_str);
}

static int add_todo(struct catalog_fill *f, const char *vid)
{
	for (size_t i = 0; i < f->n_todo; i++)
		if (!strcmp(f->todo[i], vid))
			return 0;
	if (f->n_todo == f->cap_todo) {
		size_t c = f->cap_todo ? 2 * f->cap_todo : 64;
		void *p = realloc(f->todo, c * sizeof(*f->todo));

		if (!p)
			return -ENOMEM;
		f->todo = p;
		f->cap_todo = c;
	}
	drgw_strlcpy(f->todo[f->n_todo++], vid, sizeof(*f->todo));
	return 0;
}

/* Wanted versions: their references first (from the catalog), then them. */
static int want_version(void *arg, const struct drgw_version *v)
{
	struct catalog_fill *f = arg;
	char *list = v->delta_refs ? strdup(v->delta_refs) : NULL;
	int r = 0;

	if (v->state != DRGW_VERSION_ENCODED) {
		free(list);
		return 0;
	}
	for (char *t = list, *next; r == 0 && t && *t; t = next) {
		next = strchr(t, ',');
		if (next)
			*next++ = '\0';
		r = add_todo(f, t);
	}
	free(list);
	return r ? r : add_todo(f, v->vid);
}

struct source_pick {
	struct catalog_fill *f;
	ssize_t backend;
};

static int pick_source(void *arg, const struct drgw_replica *rp)
{
	struct source_pick *sp = arg;
	ssize_t b = drgw_gateway_backend_index(sp->f->gw, rp->backend);

	if (rp->state == DRGW_REPLICA_DONE && b >= 0 &&
	    (size_t)b != sp->f->target && (sp->backend < 0 || b == sp->f->from))
		sp->backend = b;
	return 0;
}

/* Copies version vid to the target: read from a backend the catalog says
 * holds it, checked against the SHA-256 of the object as it was uploaded
 * (the catalog's), and read back from the target the same way.  No byte
 * is decrypted: a writer with recipients only can do it. */
static void fill_one(struct catalog_fill *f, const char *vid)
{
	struct drgw_gateway *gw = f->gw;
	struct source_pick sp = { .f = f, .backend = -1 };
	struct drgw_err err = { 0 };
	struct drgw_version v;
	uint8_t want[32], got[32];
	char key[DRGW_OBJ_VID_MAX + 8];

	if (target_has(f, vid)) {
		f->present++;
		return;
	}
	if (drgw_catalog_get_version(gw->cat, vid, &v) < 0)
		return;
	drgw_spool_name(vid, key, sizeof(key));
	drgw_catalog_each_replica(gw->cat, v.id, pick_source, &sp);
	if (sp.backend < 0 || drgw_unhex(v.object_sha256, want, 32) < 0) {
		log_error("cannot copy %s version %s to %s: no configured backend holds it",
			  v.name, vid, gw->backend_names[f->target]);
		f->failed++;
		goto out;
	}
	if (f->dry_run) {
		printf("would copy %s version %s from %s to %s\n", v.name, vid,
		       gw->backend_names[sp.backend], gw->backend_names[f->target]);
		f->copied++;
		goto out;
	}
	if (drgw_restore_copy_key(gw, (size_t)sp.backend, key, v.stored_size,
				  f->target, want, &err) < 0) {
		log_error("cannot copy %s version %s from %s to %s: %s", v.name,
			  vid, gw->backend_names[sp.backend],
			  gw->backend_names[f->target], err.msg);
		f->failed++;
		goto out;
	}
	/* Read back: what the target serves must be the same bytes. */
	if (drgw_backend_hash(gw->backends[f->target], key, v.stored_size, got,
			      &err) < 0 || memcmp(got, want, 32)) {
		struct drgw_err ignored = { 0 };

		log_error("the copy of %s version %s on %s does not read back: %s",
			  v.name, vid, gw->backend_names[f->target],
			  err.msg[0] ? err.msg : "other bytes");
		drgw_backend_remove(gw->backends[f->target], key, &ignored);
		f->failed++;
		goto out;
	}
	printf("copied %s version %s from %s to %s\n", v.name, vid,
	       gw->backend_names[sp.backend], gw->backend_names[f->target]);
	drgw_catalog_adopt_replica(gw->cat, vid, gw->backend_names[f->target],
				   key, v.stored_size);
	f->copied++;
out:
	drgw_version_release(&v);
}

static int backfill_from_catalog(struct session *s, const struct args *a,
				 const char *target_name)
{
	struct catalog_fill f = { .from = -1, .dry_run = a->dry_run };
	struct drgw_err err = { 0 };
	ssize_t target;
	int r;

	if (!s->cfg.cache_dir) {
		drgw_cli_error("without an identity or key, backfill copies what the writer's catalog says: pass --cache (the gateway's), or --identity to read the backends");
		return 1;
	}
	r = drgw_gateway_open(&s->cfg, DRGW_MODE_CLIENT_BACKENDS,
			      DRGW_OPEN_ENCRYPT | DRGW_OPEN_NEED_BACKENDS |
				      DRGW_OPEN_WRITE_BACKENDS,
			      &s->gw, &err);
	if (r < 0) {
		drgw_cli_error("%s", err.msg);
		return 1;
	}
	f.gw = s->gw;
	target = drgw_gateway_backend_index(s->gw, target_name);
	if (target < 0 ||
	    (a->from && (f.from = drgw_gateway_backend_index(s->gw, a->from)) < 0)) {
		drgw_cli_error("no backend named %s is configured (--backend NAME=URL or the config)",
			       target < 0 ? target_name : a->from);
		return 1;
	}
	f.target = (size_t)target;
	r = drgw_backend_list_all(s->gw->backends[target], "", on_target_key, &f,
				  &err);
	if (r == 0) {
		if (f.n_have)
			qsort(f.have, f.n_have, sizeof(*f.have), cmp_str);
		r = drgw_catalog_each_version(s->gw->cat, !a->all, NULL,
					      want_version, &f);
	}
	if (r < 0) {
		drgw_cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
	} else {
		for (size_t i = 0; i < f.n_todo; i++)
			fill_one(&f, f.todo[i]);
		printf("\n%zu %s, %zu already on %s, %zu failed\n", f.copied,
		       a->dry_run ? "to copy" : "copied and verified", f.present,
		       target_name, f.failed);
	}
	for (size_t i = 0; i < f.n_have; i++)
		free(f.have[i]);
	free(f.have);
	free(f.todo);
	return r < 0 || f.failed ? 1 : 0;
}

int drgw_cmd_backfill(int argc, char **argv)
{
	struct session s = { .write_backends = true };
	struct args a = { 0 };
	char (*copied)[DRGW_OBJ_VID_MAX + 1] = NULL;
	size_t *order = NULL;
	size_t n_todo = 0, n_copied = 0, n_verified = 0, n_present = 0;
	size_t n_failed = 0;
	ssize_t target, from = -1;
	int i, r = 1;

	drgw_config_init(&s.cfg);
	a.cfg = &s.cfg;
	i = drgw_cli_parse(&backfill_cmd, argc, argv, &s.cfg, on_opt, &a);
	if (i < 0 || argc - i != 1) {
		drgw_config_release(&s.cfg);
		return i == -2 ? 0 :
		       i < 0	? EXIT_USAGE :
				  drgw_cli_usage_error(&backfill_cmd, "expected TARGET, the backend to fill");
	}
	drgw_cli_apply_log(&s.cfg);
	/* A writer with recipients only cannot read the objects' names: it
	 * copies what its catalog says, checked by the bytes' hash. */
	if (!s.cfg.n_key_files && !s.cfg.n_identity_files &&
	    (s.cfg.n_recipients || s.cfg.n_recipient_files)) {
		r = backfill_from_catalog(&s, &a, argv[i]);
		goto out;
	}
	if (session_open(&s, true) < 0)
		goto out;
	target = drgw_gateway_backend_index(s.gw, argv[i]);
	if (target < 0 || (a.from && (from = drgw_gateway_backend_index(s.gw, a.from)) < 0)) {
		drgw_cli_error("no backend named %s is configured (--backend NAME=URL or the config)",
			       target < 0 ? argv[i] : a.from);
		goto out;
	}
	if (from == target) {
		drgw_cli_error("--from and TARGET are the same backend");
		goto out;
	}
	copied = calloc(s.set.n ? s.set.n : 1, sizeof(*copied));
	order = backfill_order(&s, a.all);
	if (!copied || !order)
		goto out;
	for (size_t o = 0; order[o] != SIZE_MAX; o++) {
		size_t k = order[o];
		const struct drgw_snapshot *sn = &s.set.snaps[k];
		int64_t t0 = drgw_mono_ns();
		ssize_t l;
		char sz[32];

		l = backfill_source(sn, (size_t)target, from);
		if (l < 0) {
			n_present++;
			continue;
		}
		n_todo++;
		drgw_format_size(sn->locs[l].object_size, sz, sizeof(sz));
		if (a.dry_run) {
			printf("would copy %s version %s from %s to %s (%s)\n",
			       sn->meta.name, sn->meta.vid,
			       s.gw->backend_names[sn->locs[l].backend], argv[i], sz);
			continue;
		}
		l = copy_snapshot(&s, sn, (size_t)l, (size_t)target);
		if (l < 0) {
			n_failed++;
			continue;
		}
		printf("copied %s version %s from %s to %s (%s in %.2fs)\n",
		       sn->meta.name, sn->meta.vid,
		       s.gw->backend_names[sn->locs[l].backend], argv[i], sz,
		       (double)(drgw_mono_ns() - t0) / NSEC_PER_SEC);
		drgw_strlcpy(copied[n_copied++], sn->meta.vid, sizeof(*copied));
	}
	if (n_copied) {
		/* What the target lists now, read back through its own
		 * listing: a copy that does not open there is no copy. */
		struct drgw_err err = { 0 };

		drgw_remote_set_release(&s.set);
		if (drgw_remote_scan_only(s.gw, s.rd, target, &s.set, &err) < 0) {
			drgw_cli_error("%s", err.msg);
			goto out;
		}
		drgw_catalog_add_backend(s.gw->cat, argv[i],
					 s.gw->backends[target]->url);
	}
	for (size_t c = 0; c < n_copied; c++) {
		struct drgw_err err = { 0 };
		const struct drgw_location *loc =
			check_copy(&s, copied[c], (size_t)target, &err);

		if (!loc) {
			struct drgw_err ignored = { 0 };
			char key[DRGW_OBJ_VID_MAX + 8];

			/* Ours alone (TARGET lacked it): do not leave a copy
			 * behind that a restore would trip over. */
			drgw_spool_name(copied[c], key, sizeof(key));
			log_error("the copy of version %s on %s does not read back, %s: %s",
				  copied[c], argv[i],
				  drgw_backend_remove(s.gw->backends[target], key,
						      &ignored) < 0 ?
					  "and it could not be removed" :
					  "removed it",
				  err.msg);
			n_failed++;
			continue;
		}
		printf("verified version %s on %s\n", copied[c], argv[i]);
		n_verified++;
		drgw_catalog_adopt_replica(s.gw->cat, copied[c], argv[i], loc->key,
					   loc->object_size);
	}
	printf("\n%zu %s, %zu already on %s, %zu failed\n",
	       a.dry_run ? n_todo : n_verified,
	       a.dry_run ? "to copy" : "copied and verified", n_present,
	       argv[i], n_failed);
	r = n_failed ? 1 : 0;
out:
	free(order);
	free(copied);
	session_close(&s);
	return r;
}
