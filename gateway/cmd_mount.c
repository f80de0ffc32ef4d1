/* SPDX-License-Identifier: MIT */
/*
 * `drgw mount`: the gateway daemon, or with --restore the restore view.
 * Everything that can be misconfigured is checked before mounting and
 * before going to the background, so errors reach the terminal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daemon.h"
#include "fs.h"
#include "log.h"
#include "restore.h"

enum { OPT_FOREGROUND = 1000, OPT_RESTORE, OPT_OPTIONS };

static const struct cli_opt mount_opts[] = {
	{ "foreground", no_argument, OPT_FOREGROUND, 'f' },
	{ "restore", no_argument, OPT_RESTORE, 0 },
	{ "options", required_argument, OPT_OPTIONS, 'o' },
	{ 0 },
};

static const struct cli_cmd mount_cmd = {
	.name = "mount",
	.synopsis = "[-f] [--restore] [options] MOUNTPOINT",
	.help = "Mounts the gateway on MOUNTPOINT: files written there are kept in the\n"
		"cache directory, and each finished file is compressed, encrypted and\n"
		"replicated to every backend.  With --restore, mounts a read-only view\n"
		"of the newest version of every snapshot on the backends instead.\n"
		"Unmount with 'fusermount3 -u MOUNTPOINT' or SIGTERM: pending uploads\n"
		"get --drain-timeout to finish, the rest resumes on the next mount.",
	.opts = mount_opts,
	.opts_help = "options:\n"
		     "  -f, --foreground  stay in the foreground, log to stderr\n"
		     "  --restore         mount the read-only restore view\n"
		     "  -o OPTS           extra FUSE mount options\n",
	.common = CLI_COMMON_CACHE | CLI_COMMON_KEY | CLI_COMMON_BACKEND |
		  CLI_COMMON_DAEMON | CLI_COMMON_READ,
};

struct mount_args {
	bool foreground;
	bool restore;
	const char *fuse_options;
};

static int on_opt(void *arg, int id, const char *value)
{
	struct mount_args *a = arg;

	switch (id) {
	case OPT_FOREGROUND:
		a->foreground = true;
		return 0;
	case OPT_RESTORE:
		a->restore = true;
		return 0;
	case OPT_OPTIONS:
		a->fuse_options = value;
		return 0;
	}
	return -EINVAL;
}

static int start_daemon(void *arg, struct drgw_err *err)
{
	return drgw_daemon_started(arg, err);
}

static int run_gateway(struct drgw_config *cfg, const struct mount_args *a,
		       const char *mountpoint)
{
	struct drgw_mount_opts mo = {
		.mountpoint = mountpoint,
		.foreground = a->foreground,
		.allow_other = drgw_config_allow_other(cfg, false),
		.fuse_options = a->fuse_options,
		.started = start_daemon,
	};
	struct drgw_err err = { 0 };
	struct drgw_daemon d;
	int r;

	if (drgw_daemon_open(&d, cfg) < 0)
		return 1;
	mo.arg = &d;
	r = drgw_fuse_run(drgw_fs_gateway_ops(), d.gw, &mo, &err);
	if (r < 0 && !d.gw->started) {
		drgw_cli_error("%s", err.msg);
		drgw_daemon_close(&d);
		return 1;
	}
	if (r < 0)
		log_error("%s", err.msg);
	drgw_daemon_drain(&d, NULL, NULL);
	drgw_daemon_close(&d);
	return r < 0 ? 1 : 0;
}

static int run_restore(struct drgw_config *cfg, const struct mount_args *a,
		       const char *mountpoint)
{
	struct drgw_mount_opts mo = {
		.mountpoint = mountpoint,
		.foreground = a->foreground,
		.read_only = true,
		.allow_other = drgw_config_allow_other(cfg, true),
		.fuse_options = a->fuse_options,
		/* Copies and restores read whole files: in a quarter of the
		 * default's requests, a 1 GiB read was 3-8 % faster.  libfuse
		 * allocates a buffer for each request; main() keeps buffers
		 * of this size in the heap. */
		.read_ahead_kb = 512,
	};
	struct drgw_restore_view *view = NULL;
	struct drgw_reader_opts ro;
	struct drgw_reader *rd = NULL;
	struct drgw_err err = { 0 };
	struct drgw_gateway *gw;
	int r;

	r = drgw_gateway_open(cfg, DRGW_MODE_RESTORE,
			      DRGW_OPEN_NEED_KEY | DRGW_OPEN_NEED_BACKENDS, &gw,
			      &err);
	if (r < 0) {
		drgw_cli_error("%s", err.msg);
		return 1;
	}
	drgw_reader_opts_from_config(cfg, &ro);
	r = drgw_reader_new(&ro, &gw->keys, &rd);
	if (r == 0)
		r = drgw_restore_view_new(gw, rd, &view, &err);
	/* A connection must not live on across fuse_daemonize()'s fork (see
	 * gateway.c); the view opens the catalog again once it runs. */
	gw->cat = drgw_catalog_close(gw->cat);
	mo.started = drgw_restore_view_started;
	mo.arg = view;
	if (r == 0)
		r = drgw_fuse_run(drgw_fs_restore_ops(), view, &mo, &err);
	if (r < 0)
		drgw_cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
	drgw_restore_view_free(view);
	drgw_reader_free(rd);
	drgw_gateway_close(gw);
	return r < 0 ? 1 : 0;
}

int drgw_cmd_mount(int argc, char **argv)
{
	struct mount_args a = { 0 };
	struct drgw_config cfg;
	char tmp_cache[256] = "", log_path[4200];
	int i, r;

	drgw_config_init(&cfg);
	i = drgw_cli_parse(&mount_cmd, argc, argv, &cfg, on_opt, &a);
	if (i < 0) {
		drgw_config_release(&cfg);
		return i == -2 ? 0 : EXIT_USAGE;
	}
	if (argc - i != 1) {
		drgw_config_release(&cfg);
		return drgw_cli_usage_error(&mount_cmd, "expected one MOUNTPOINT");
	}
	if (!cfg.cache_dir && a.restore &&
	    drgw_cli_temp_cache(&cfg, tmp_cache, sizeof(tmp_cache)) < 0) {
		drgw_cli_error("cannot create a temporary cache directory: %s",
			       strerror(errno));
		drgw_config_release(&cfg);
		return 1;
	}
	/* In the background stderr goes away; log next to the cache. */
	if (!a.foreground && !cfg.log_file && cfg.cache_dir) {
		drgw_mkdir_p(cfg.cache_dir, 0700);
		snprintf(log_path, sizeof(log_path), "%s/drgw.log", cfg.cache_dir);
		drgw_config_set(&cfg, "log-file", log_path, NULL);
	}
	drgw_cli_apply_log(&cfg);
	r = a.restore ? run_restore(&cfg, &a, argv[i]) :
			run_gateway(&cfg, &a, argv[i]);
	drgw_cli_temp_cache_remove(tmp_cache);
	drgw_config_release(&cfg);
	return r;
}
