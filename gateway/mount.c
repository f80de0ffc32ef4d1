/* SPDX-License-Identifier: MIT */
/*
 * Mounting and serving a FUSE file system; see fs.h.  Everything that can
 * fail for a reason the user can fix (mount point, permissions) fails
 * before we fork into the background, so `drgw mount` reports it on the
 * terminal with a non-zero exit code.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"

/* /proc/self/mountinfo writes ' ', '\t', '\n' and '\\' as octal escapes. */
static void unescape_octal(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The topmost mount on path, from /proc/self/mountinfo: its file system
 * type and device.  False if path is not a mount point.  A killed drgw
 * leaves its FUSE mount behind, and the kernel may still answer stat()
 * on it from its attribute cache, so ask /proc rather than the mount. */
static bool mount_of(const char *path, char *fstype, size_t size,
		     unsigned *ret_major, unsigned *ret_minor)
{
	char real[PATH_MAX], dir[PATH_MAX], type[64], line[2 * PATH_MAX];
	unsigned major, minor;
	bool found = false;
	FILE *f;

	if (!realpath(path, real))
		return false;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");

		if (!sep ||
		    sscanf(line, "%*u %*u %u:%u %*s %4095s", &major, &minor,
			   dir) != 3 ||
		    sscanf(sep, " - %63s", type) != 1)
			continue;
		unescape_octal(dir);
		if (!strcmp(dir, real)) {
			drgw_strlcpy(fstype, type, size);
			*ret_major = major;
			*ret_minor = minor;
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* Sets the kernel's read-ahead of the FUSE mount on mp (its own backing
 * device) to kb KiB.  Where /sys is read-only (a container) reads stay at
 * the default size. */
static void set_read_ahead(const char *mp, unsigned kb)
{
	char fstype[64], path[64];
	unsigned major, minor;
	FILE *f;

	if (!mount_of(mp, fstype, sizeof(fstype), &major, &minor))
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major, minor);
	f = fopen(path, "we");
	if (f) {
		fprintf(f, "%u\n", kb);
		if (fclose(f) == 0) {
			log_debug("kernel read-ahead of %s: %u KiB", mp, kb);
			return;
		}
	}
	log_info("kernel read-ahead of %s stays at its default (cannot write %s: %s)",
		 mp, path, strerror(errno));
}

static int check_mountpoint(const char *mp, struct drgw_err *err)
{
	char fstype[64];
	unsigned major, minor;
	struct stat st;

	if (mount_of(mp, fstype, sizeof(fstype), &major, &minor)) {
		if (!strcmp(fstype, "fuse.drgw"))
			drgw_err_set(err,
				     "%s is already a drgw mount (a running drgw, or a dead mount of a killed one: then run 'fusermount3 -u %s' or 'umount -l %s')",
				     mp, mp, mp);
		else
			drgw_err_set(err, "%s is already a mount point (%s); choose an empty directory",
				     mp, fstype);
		return -EBUSY;
	}
	if (stat(mp, &st) < 0) {
		int e = errno;

		if (e == ENOTCONN)
			drgw_err_set(err,
				     "%s is a dead FUSE mount (a drgw was killed); run 'fusermount3 -u %s' or 'umount -l %s' first",
				     mp, mp, mp);
		else
			drgw_err_set(err, "mount point %s: %s", mp, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		drgw_err_set(err, "mount point %s is not a directory", mp);
		return -ENOTDIR;
	}
	return 0;
}

int drgw_fuse_run(const struct fuse_operations *ops, void *priv,
		  const struct drgw_mount_opts *mo, struct drgw_err *err)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc = NULL;
	struct fuse_session *se;
	struct fuse *f = NULL;
	char opts[1024];
	int r;

	r = check_mountpoint(mo->mountpoint, err);
	if (r < 0)
		return r;
	if (mo->allow_other && geteuid() != 0)
		log_warning("allow-other needs root: only uid %u can use %s",
			    (unsigned)geteuid(), mo->mountpoint);
	snprintf(opts, sizeof(opts),
		 "fsname=drgw,subtype=drgw,default_permissions%s%s%s%s",
		 mo->read_only ? ",ro" : "",
		 mo->allow_other && geteuid() == 0 ? ",allow_other" : "",
		 mo->fuse_options ? "," : "",
		 mo->fuse_options ? mo->fuse_options : "");
	if (fuse_opt_add_arg(&args, "drgw") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts)) {
		r = -ENOMEM;
		goto out;
	}
	f = fuse_new(&args, ops, sizeof(*ops), priv);
	if (!f) {
		drgw_err_set(err, "invalid FUSE options: %s", opts);
		r = -EINVAL;
		goto out;
	}
	if (fuse_mount(f, mo->mountpoint) != 0) {
		drgw_err_set(err,
			     "cannot mount on %s: is /dev/fuse available and are you root (or in a privileged container)?",
			     mo->mountpoint);
		r = -EPERM;
		goto out_destroy;
	}
	if (mo->read_ahead_kb)
		set_read_ahead(mo->mountpoint, mo->read_ahead_kb);
	se = fuse_get_session(f);
	if (fuse_daemonize(mo->foreground) != 0) {
		drgw_err_set(err, "cannot go to the background");
		r = -ECHILD;
		goto out_unmount;
	}
	if (mo->started && (r = mo->started(mo->arg, err)) < 0)
		goto out_unmount;
	if (fuse_set_signal_handlers(se) != 0) {
		drgw_err_set(err, "cannot install signal handlers");
		r = -EIO;
		goto out_unmount;
	}
	lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, 16);
	log_info("serving %s", mo->mountpoint);
	r = fuse_loop_mt(f, lc);
	fuse_loop_cfg_destroy(lc);
	fuse_remove_signal_handlers(se);
	if (r != 0 && r != SIGTERM && r != SIGINT && r != SIGHUP) {
		drgw_err_set(err, "FUSE session ended with error %d", r);
		r = r < 0 ? r : -EIO;
	} else {
		r = 0;
	}
out_unmount:
	fuse_unmount(f);
out_destroy:
	fuse_destroy(f);
out:
	fuse_opt_free_args(&args);
	return r;
}
