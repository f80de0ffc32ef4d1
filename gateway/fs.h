/* SPDX-License-Identifier: MIT */
/*
 * The two FUSE file systems drgw mounts, and the code that mounts them.
 * fs.c is the gateway mount (a working set that seals what is written);
 * restore_fs.c is the read-only restore view of the backends.
 */
#ifndef DRGW_FS_H
#define DRGW_FS_H

#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <stdbool.h>

#include "gateway.h"

const struct fuse_operations *drgw_fs_gateway_ops(void);
const struct fuse_operations *drgw_fs_restore_ops(void);

struct drgw_mount_opts {
	const char *mountpoint;
	bool foreground;
	bool read_only;
	bool allow_other;
	/* Extra -o options from the command line, or NULL. */
	const char *fuse_options;
	/* The kernel's read-ahead for the mount, KiB (0: its default, 128):
	 * how large the reads of a sequential reader reach the daemon. */
	unsigned read_ahead_kb;
	/* Called in the final process (after fork()ing into the background,
	 * if any) before requests are served; a negative return unmounts. */
	int (*started)(void *arg, struct drgw_err *err);
	void *arg;
};

/*
 * Mounts ops with private data priv and serves requests until unmounted or
 * signalled (SIGTERM, SIGINT, SIGHUP), then unmounts.  Errors before the
 * mount succeeded are returned with err set; the caller still owns priv.
 */
int drgw_fuse_run(const struct fuse_operations *ops, void *priv,
		  const struct drgw_mount_opts *mo, struct drgw_err *err);

#endif
