/* SPDX-License-Identifier: MIT */
/*
 * The gateway without FUSE: the working set is an ordinary directory of
 * the user's (an emptyDir, a PVC), written by programs that drgw does not
 * see, so nothing tells it when a file is written or closed.  This module
 * finds what changed and seals it; the encoder, the replicators and the
 * catalog are the mount's, so the objects and `drgw ls` are the same.
 *
 * Two ways to find what changed:
 *
 * - DRGW_WATCH_RUN (`drgw run --no-mount`): what the directory holds is
 *   recorded before the command runs (the baseline, kept in the catalog),
 *   and once sealing is stopped (the command exited) every file that
 *   differs from both the baseline and its newest version in the catalog
 *   is sealed.  A file still open for writing is sealed once closed, for
 *   up to drain-timeout.  The baseline is dropped only after everything
 *   was sealed, so a run killed before that leaves the next run the same
 *   baseline, and what the killed run did not seal is sealed then.
 * - DRGW_WATCH_DAEMON (`drgw watch`): inotify close-after-write and
 *   rename events on every directory, and a scan against the catalog at
 *   start and after an event queue overflow.  A file is sealed once no
 *   process has it open for writing and its ctime is older than the settle
 *   delay, the mount's rule with the kernel's word for "last write".
 *
 * "Same content" is the same size, mtime and ctime as the newest version
 * (cp -p and rsync -t restore size and mtime; nothing restores a ctime).
 * No file is ever sealed while a process has it open for writing, as far
 * as writers.h can tell, and the encoder holds a read lease (or checks
 * /proc) while it reads, so a file written during encoding is encoded
 * again, never shipped half old, half new.
 *
 * Unlike the mount there is no hold on deleted files: a file removed after
 * it was sealed and before it was encoded is not replicated (the encoder
 * logs it).  A hard link into the cache would change the file's ctime
 * and fail across file systems.
 */
#ifndef DRGW_WATCH_H
#define DRGW_WATCH_H

#include <sys/stat.h>

#include "gateway.h"

enum drgw_watch_kind {
	DRGW_WATCH_RUN,
	DRGW_WATCH_DAEMON,
};

/*
 * Makes dir the working set of gw (opened with DRGW_OPEN_NO_MOUNT):
 * gw->files_fd, gw->files_dir and gw->watch are set; the gateway frees the
 * watch.  Checks dir; fails with a message in err.
 */
int drgw_watch_attach(struct drgw_gateway *gw, const char *dir,
		      enum drgw_watch_kind kind, struct drgw_err *err);
struct drgw_watch *drgw_watch_free(struct drgw_watch *w);

/* From drgw_gateway_start(), before the threads: takes (or loads) the
 * baseline, or sets up inotify and scans. */
int drgw_watch_start(struct drgw_gateway *gw, struct drgw_err *err);
/* The sealer thread of a gateway without a mount. */
void *drgw_watch_main(void *arg);
/* Wakes drgw_watch_main (drgw_gateway_kick_sealer() calls it). */
void drgw_watch_wake(struct drgw_watch *w);
/* DRGW_WATCH_RUN: the command exited.  Sealing waits for files open for
 * writing until deadline (monotonic); leftover_procs of the command's
 * processes still run, so the baseline is kept for the next run. */
void drgw_watch_run_ended(struct drgw_watch *w, int64_t deadline,
			  unsigned leftover_procs);
/* Files known to wait to be sealed, for drgw_seal_pending(): what `drgw
 * run` and the drain wait for.  At least 1 from the moment sealing is
 * stopped until the last round of sealing is over. */
uint64_t drgw_watch_pending(struct drgw_watch *w);
/* Files that were changed but could not be sealed before sealing stopped
 * (still open for writing, or the catalog failed), plus the leftover
 * processes of drgw_watch_run_ended(). */
unsigned drgw_watch_unsealed(const struct drgw_watch *w);

/*
 * The encoder's side (spool.c).  begin: before reading fd (the file,
 * opened O_RDONLY, *st its fstat, refreshed here): -EBUSY if it is open
 * for writing now (encode it later), else 0, with a read lease held on fd
 * where possible.  check: between chunks: -ESTALE once a writer appeared.
 * Only the encoder thread calls them.
 */
int drgw_watch_encode_begin(struct drgw_gateway *gw, int fd, struct stat *st);
int drgw_watch_encode_check(struct drgw_gateway *gw, int fd);
/* drgw run --no-mount, before the command: seals and encodes what a
 * killed earlier run left (its baseline was still recorded), then takes
 * a fresh baseline, so that the command cannot overwrite it first.  What
 * cannot be secured is logged, and the command runs anyway.  -errno with
 * a message only when the fresh baseline cannot be recorded. */
int drgw_watch_seal_leftovers(struct drgw_gateway *gw, struct drgw_err *err);

/* Every byte was read: lets writers go on (what they write is the next
 * version). */
void drgw_watch_encode_release(struct drgw_gateway *gw, int fd);

#endif
