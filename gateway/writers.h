/* SPDX-License-Identifier: MIT */
/*
 * Is a file open for writing by some process?  Without the FUSE mount
 * nothing tells drgw when a file is written (drgw run --no-mount, drgw
 * watch), so before it seals or encodes a file it asks the kernel, in the
 * most complete way the file and drgw's privileges allow:
 *
 * 1. A read lease (fcntl F_SETLEASE F_RDLCK).  The kernel grants it only
 *    while no process on this machine has the file open for writing, in
 *    any container or PID namespace, through a descriptor or a shared
 *    writable mapping.  While drgw holds it, an open for writing or a
 *    truncate by anyone breaks it: F_GETLEASE then says so, and the opener
 *    waits until drgw lets go (at most /proc/sys/fs/lease-break-time).  It
 *    needs the file's owner's uid (or CAP_LEASE) and a local file system.
 * 2. Otherwise /proc: the descriptors (/proc/PID/fd, the flags in
 *    /proc/PID/fdinfo) and shared writable mappings (/proc/PID/maps) of
 *    every process drgw may inspect: its own user's, or all with
 *    CAP_SYS_PTRACE, in its PID namespace.  The processes it may not
 *    inspect are counted; what they do is unknown.
 *
 * Neither sees writers on other machines (NFS clients elsewhere).
 * docs/OPERATIONS.md, "Without FUSE", says what that means for users.
 */
#ifndef DRGW_WRITERS_H
#define DRGW_WRITERS_H

#include <stdbool.h>
#include <sys/types.h>

struct drgw_writer {
	/* A process found with the file open for writing (through /proc),
	 * 0 if the lease said so or none was found. */
	pid_t pid;
	char comm[32];
	/* Processes whose open files /proc did not show (another user's,
	 * without CAP_SYS_PTRACE).  0 when a lease answered. */
	unsigned hidden;
	/* The answer came from a lease: it covers every process. */
	bool by_lease;
};

/* 1 if the file of fd (opened O_RDONLY) is open for writing by any
 * process, 0 if not, -errno if neither a lease nor /proc could tell.
 * ret (may be NULL) says how it was found out and by whom. */
int drgw_writers_check(int fd, struct drgw_writer *ret);

/* Takes a read lease on fd (opened O_RDONLY) for as long as the file is
 * read: 0; -EBUSY if the file is open for writing; -EOPNOTSUPP if no lease
 * can be had here (another user's file, a file system without leases):
 * use drgw_writers_check() instead.  The lease ends with
 * drgw_writers_unlease() or when fd is closed.  Leases make the kernel
 * send SIGIO, which this module ignores process-wide. */
int drgw_writers_lease(int fd);
/* True once somebody opened fd's file for writing (or truncated it) since
 * drgw_writers_lease(), or the lease is gone. */
bool drgw_writers_lease_broken(int fd);
/* Lets go of the lease, so that a writer waiting for it goes on now. */
void drgw_writers_unlease(int fd);

/* The /proc half alone: is (dev, ino) open for writing by a process drgw
 * may inspect?  1, 0, or -errno if /proc cannot be read. */
int drgw_writers_scan_proc(dev_t dev, ino_t ino, struct drgw_writer *ret);

#endif
