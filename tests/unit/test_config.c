/* SPDX-License-Identifier: MIT */
/*
 * Configuration: the INI file, command-line settings, backend URLs and
 * their options, and the error messages a user sees for bad input.
 */
#define TEST_MAIN
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/drgw-test-conf-XXXXXX");
	CHECK(mkstemp(path) >= 0);
	f = fopen(path, "w");
	CHECK(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static const char *opt(const struct drgw_backend_conf *b, const char *key)
{
	for (size_t i = 0; i < b->n_options; i++)
		if (!strcmp(b->options[i].key, key))
			return b->options[i].value;
	return NULL;
}

TEST(ini_file_with_backends)
{
	struct drgw_config cfg;
	struct drgw_err err = { 0 };
	char *path = write_tmp(
		"# comment\n"
		"[drgw]\n"
		"cache = /var/lib/drgw\n"
		"key-file = /etc/drgw/key\n"
		"key-file = /etc/drgw/old-key\n"
		"settle-delay = 500ms\n"
		"chunk-size = 4MiB\n"
		"exclude = *.part\n"
		"exclude = *.tmp\n"
		"\n"
		"[backend \"offsite\"]\n"
		"region = eu-west-1\n"
		"url = s3://bucket/prefix?storage-class=STANDARD_IA\n"
		"endpoint = http://127.0.0.1:9000\n"
		"[backend.nfs]\n"
		"url = local:///mnt/nfs/backups\n");

	drgw_config_init(&cfg);
	if (drgw_config_load(&cfg, path, &err))
		FAIL("load: %s", err.msg);
	CHECK_STR(cfg.cache_dir, "/var/lib/drgw");
	CHECK_INT(cfg.n_key_files, ==, 2);
	CHECK_INT(cfg.settle_ns, ==, 500000000);
	CHECK_INT(cfg.chunk_size, ==, 4 << 20);
	CHECK_INT(cfg.n_backends, ==, 2);
	CHECK_STR(cfg.backends[0].name, "offsite");
	CHECK_STR(cfg.backends[0].scheme, "s3");
	CHECK_STR(cfg.backends[0].url, "s3://bucket/prefix");
	CHECK_STR(opt(&cfg.backends[0], "region"), "eu-west-1");
	CHECK_STR(opt(&cfg.backends[0], "storage-class"), "STANDARD_IA");
	CHECK_STR(opt(&cfg.backends[0], "endpoint"), "http://127.0.0.1:9000");
	CHECK_STR(cfg.backends[1].name, "nfs");
	CHECK_STR(cfg.backends[1].url, "local:///mnt/nfs/backups");
	/* An explicit exclude list replaces the defaults. */
	CHECK(drgw_config_excluded(&cfg, "dir/x.part"));
	CHECK(!drgw_config_excluded(&cfg, "app.db-journal"));
	drgw_config_release(&cfg);
	unlink(path);
}

TEST(command_line_overrides_and_adds)
{
	struct drgw_config cfg;
	struct drgw_err err = { 0 };

	drgw_config_init(&cfg);
	CHECK_OK(drgw_config_add_backend_arg(&cfg, "a=local:///x", &err));
	CHECK_OK(drgw_config_add_backend_arg(&cfg, "a=local:///y", &err));
	CHECK_INT(cfg.n_backends, ==, 1);
	CHECK_STR(cfg.backends[0].url, "local:///y");
	CHECK_OK(drgw_config_set(&cfg, "backend", "b=s3://bkt?region=us-east-2&endpoint=http%3A%2F%2Fh%3A1", &err));
	CHECK_STR(opt(&cfg.backends[1], "endpoint"), "http://h:1");
	CHECK_OK(drgw_config_set(&cfg, "compression-level", "-3", &err));
	CHECK_INT(cfg.compression_level, ==, -3);
	/* The gateway lets other writers in, the restore view does not. */
	CHECK(drgw_config_allow_other(&cfg, false));
	CHECK(!drgw_config_allow_other(&cfg, true));
	CHECK_OK(drgw_config_set(&cfg, "allow-other", "off", &err));
	CHECK(!drgw_config_allow_other(&cfg, false));
	CHECK_OK(drgw_config_set(&cfg, "allow-other", "on", &err));
	CHECK(drgw_config_allow_other(&cfg, true));
	CHECK_INT(cfg.view_umask, ==, 077);
	CHECK_OK(drgw_config_set(&cfg, "umask", "022", &err));
	CHECK_INT(cfg.view_umask, ==, 022);
	CHECK_INT(drgw_config_set(&cfg, "umask", "0800", &err), ==, -EINVAL);
	CHECK_INT(drgw_config_set(&cfg, "umask", "", &err), ==, -EINVAL);
	CHECK_INT(drgw_config_set(&cfg, "umask", "01777", &err), ==, -EINVAL);
	CHECK_OK(drgw_config_set(&cfg, "uid", "1000", &err));
	CHECK_INT(cfg.view_uid, ==, 1000);
	CHECK_INT(drgw_config_set(&cfg, "uid", "-1", &err), ==, -EINVAL);
	drgw_config_release(&cfg);
}

TEST(default_excludes)
{
	struct drgw_config cfg;

	drgw_config_init(&cfg);
	CHECK(drgw_config_excluded(&cfg, "app-1.db-journal"));
	CHECK(drgw_config_excluded(&cfg, "app.db-wal"));
	CHECK(drgw_config_excluded(&cfg, "app.db-shm"));
	CHECK(drgw_config_excluded(&cfg, "d/.app.db.XXXXXX"));
	CHECK(drgw_config_excluded(&cfg, "x.tmp"));
	CHECK(!drgw_config_excluded(&cfg, "app-20261125.db"));
	CHECK(!drgw_config_excluded(&cfg, "dir.d/file"));
	drgw_config_release(&cfg);
}

struct bad {
	const char *input;
	const char *message;
};

TEST(bad_values_say_what_is_wrong)
{
	static const struct bad settings[] = {
		{ "settle-delay=abc", "invalid value 'abc' for settle-delay" },
		{ "chunk-size=3000000", "power of two" },
		{ "chunk-size=1k", "invalid value '1k' for chunk-size" },
		{ "cache=relative/dir", "absolute path" },
		{ "log-level=loud", "invalid log-level" },
		{ "no-such=1", "unknown setting 'no-such'" },
		{ "upload-workers=0", "invalid value '0' for upload-workers" },
	};
	static const struct bad backends[] = {
		{ "nourl", "expected NAME=URL" },
		{ "bad name=local:///x", "invalid backend name" },
		{ "x=/just/a/path", "expected scheme://" },
		{ "x=S3://b", "expected scheme://" },
		{ "x=s3://", "names no location" },
		{ "x=s3://b?region", "needs a value" },
		{ "x=s3://b?k=%zz", "bad option encoding" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
		struct drgw_config cfg;
		struct drgw_err err = { 0 };
		char name[64];
		const char *eq = strchr(settings[i].input, '=');

		snprintf(name, sizeof(name), "%.*s", (int)(eq - settings[i].input),
			 settings[i].input);
		drgw_config_init(&cfg);
		CHECK(drgw_config_set(&cfg, name, eq + 1, &err) < 0);
		CHECK_CONTAINS(err.msg, settings[i].message);
		drgw_config_release(&cfg);
	}
	for (size_t i = 0; i < ARRAY_SIZE(backends); i++) {
		struct drgw_config cfg;
		struct drgw_err err = { 0 };

		drgw_config_init(&cfg);
		CHECK_INT(drgw_config_add_backend_arg(&cfg, backends[i].input, &err),
			  ==, -EINVAL);
		CHECK_CONTAINS(err.msg, backends[i].message);
		drgw_config_release(&cfg);
	}
}

TEST(bad_files_name_the_line)
{
	static const struct bad files[] = {
		{ "[drgw]\nsettle-delay = soon\n", ":2: invalid value 'soon'" },
		{ "[drgw]\ncache = /x\nthis line is wrong\n", ":3: syntax error" },
		{ "[backend \"a\"]\nregion = x\n", "backend \"a\" has no url" },
		{ "[backend \"bad name\"]\nurl = local:///x\n", "invalid section" },
		{ "[elsewhere]\nx = 1\n", "unknown section [elsewhere]" },
	};
	struct drgw_config cfg;
	struct drgw_err err = { 0 };

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char *path = write_tmp(files[i].input);

		memset(&err, 0, sizeof(err));
		drgw_config_init(&cfg);
		CHECK(drgw_config_load(&cfg, path, &err) < 0);
		CHECK_CONTAINS(err.msg, files[i].message);
		CHECK_CONTAINS(err.msg, path);
		drgw_config_release(&cfg);
		unlink(path);
	}
	drgw_config_init(&cfg);
	CHECK_INT(drgw_config_load(&cfg, "/nonexistent/drgw.conf", &err), ==, -ENOENT);
	CHECK_CONTAINS(err.msg, "cannot open config file /nonexistent/drgw.conf");
	drgw_config_release(&cfg);
}

/* Retention: [drgw] for every backend, a backend's section or URL query
 * for that backend, the command line over both; each level whole. */
TEST(retention_policy_levels)
{
	struct drgw_config cfg;
	struct drgw_err err = { 0 };
	const struct drgw_policy *p;
	char *path = write_tmp(
		"[drgw]\n"
		"keep-daily = 7\n"
		"keep-weekly = 4\n"
		"[backend \"nfs\"]\n"
		"keep-daily = 14\n"
		"url = local:///mnt/nfs\n"
		"[backend \"s3\"]\n"
		"url = s3://b/p?region=x&keep-monthly=12\n"
		"[backend \"gcs\"]\n"
		"url = gcs://b/p\n");

	drgw_config_init(&cfg);
	if (drgw_config_load(&cfg, path, &err))
		FAIL("%s", err.msg);
	unlink(path);
	CHECK_INT(cfg.n_backends, ==, 3);
	p = drgw_config_policy(&cfg, 0);
	CHECK(p->count[DRGW_KEEP_DAILY] == 14 && !p->count[DRGW_KEEP_WEEKLY]);
	CHECK_INT(cfg.backends[0].n_options, ==, 0); /* not a plugin option */
	p = drgw_config_policy(&cfg, 1);
	CHECK(p->count[DRGW_KEEP_MONTHLY] == 12 && !p->count[DRGW_KEEP_DAILY]);
	CHECK_STR(opt(&cfg.backends[1], "region"), "x");
	CHECK(!opt(&cfg.backends[1], "keep-monthly"));
	p = drgw_config_policy(&cfg, 2);
	CHECK(p->count[DRGW_KEEP_DAILY] == 7 && p->count[DRGW_KEEP_WEEKLY] == 4);
	/* The command line replaces all of them. */
	CHECK_OK(drgw_config_set(&cfg, "keep-last", "3", &err));
	for (size_t i = 0; i < 3; i++) {
		p = drgw_config_policy(&cfg, i);
		CHECK(p->count[DRGW_KEEP_LAST] == 3 && !p->count[DRGW_KEEP_DAILY] &&
		      !p->count[DRGW_KEEP_MONTHLY]);
	}
	CHECK_INT(drgw_config_set(&cfg, "keep-daily", "many", &err), ==, -EINVAL);
	CHECK_CONTAINS(err.msg, "keep-daily");
	drgw_config_release(&cfg);

	drgw_config_init(&cfg);
	path = write_tmp("[backend \"nfs\"]\nurl = local:///x\nkeep-within = 2w\n");
	CHECK_INT(drgw_config_load(&cfg, path, &err), ==, -EINVAL);
	unlink(path);
	CHECK_CONTAINS(err.msg, ":3");
	CHECK_CONTAINS(err.msg, "30d");
	drgw_config_release(&cfg);
}
