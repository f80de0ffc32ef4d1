/* SPDX-License-Identifier: MIT */
/*
 * Backing files for FUSE passthrough: the kernel's ids for the working-set
 * files it reads and writes itself, bypassing the daemon.
 *
 * The kernel allows one backing file per FUSE inode at a time (a second
 * open that names another one fails with EIO), so every passthrough open
 * of the same file shares one id: the table counts the handles using each
 * id and gives the id back to the kernel when the last one is released.
 * Files are identified by device and inode number, which stay unique while
 * a handle keeps the file open.
 *
 * Only built to do anything with libfuse >= 3.17 (DRGW_FUSE_PASSTHROUGH);
 * otherwise every call fails with -EOPNOTSUPP.
 */
#ifndef DRGW_BACKING_H
#define DRGW_BACKING_H

#include <stdbool.h>
#include <stddef.h>

struct drgw_backing;
struct drgw_backing_file;

/* Whether this process may register backing files: the kernel requires
 * CAP_SYS_ADMIN in the initial user namespace.  If not, why not, in why.
 * Known before the mount is set up, when the kernel cannot be asked yet. */
bool drgw_backing_permitted(char *why, size_t size);

/* A table registering backing files on the FUSE connection of dev_fd (the
 * session's /dev/fuse descriptor, which stays the caller's).  NULL on
 * ENOMEM. */
struct drgw_backing *drgw_backing_new(int dev_fd);
/* Frees the table; ids still registered are left to the connection, which
 * releases them when it goes away.  Accepts NULL. */
struct drgw_backing *drgw_backing_free(struct drgw_backing *t);

/*
 * The backing file for the working-set file open as fd (a regular file,
 * any access mode), registered with the kernel on first use; takes a
 * reference that drgw_backing_put() drops.  Thread-safe.  Errors are the
 * kernel's: -EPERM without CAP_SYS_ADMIN in the initial user namespace or
 * when the connection did not negotiate passthrough, -ELOOP when fd is on
 * a file system stacked too deep, -ENOMEM; -EOPNOTSUPP without support.
 */
int drgw_backing_get(struct drgw_backing *t, int fd,
		     struct drgw_backing_file **ret);
/* The id to put in fuse_file_info.backing_id. */
int drgw_backing_id(const struct drgw_backing_file *b);
/* Drops a reference; the last one closes the id.  Accepts NULL. */
void drgw_backing_put(struct drgw_backing *t, struct drgw_backing_file *b);

#endif
