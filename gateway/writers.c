/* SPDX-License-Identifier: MIT */
/*
 * Writers of a file, asked of the kernel; see writers.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util.h"
#include "writers.h"

static pthread_once_t sigio_once = PTHREAD_ONCE_INIT;

/* A lease that is broken makes the kernel send SIGIO to its holder, whose
 * default action is to terminate the process.  drgw polls F_GETLEASE
 * instead, so the signal is not wanted at all. */
static void ignore_sigio(void)
{
	struct sigaction sa = { .sa_handler = SIG_IGN };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGIO, &sa, NULL);
}

int drgw_writers_lease(int fd)
{
	pthread_once(&sigio_once, ignore_sigio);
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0)
		return 0;
	/* EAGAIN: open for writing somewhere (or a conflicting lease).
	 * EACCES: not the owner and no CAP_LEASE; EINVAL: leases disabled
	 * or not supported by the file system; the rest is as unknown. */
	return errno == EAGAIN ? -EBUSY : -EOPNOTSUPP;
}

bool drgw_writers_lease_broken(int fd)
{
	/* While a break is pending, F_GETLEASE returns the type the lease is
	 * being broken to (F_UNLCK), not F_RDLCK. */
	return fcntl(fd, F_GETLEASE) != F_RDLCK;
}

void drgw_writers_unlease(int fd)
{
	fcntl(fd, F_SETLEASE, F_UNLCK);
}

/* Reads a small /proc file at dirfd/path into buf (terminated). */
static ssize_t read_small(int dirfd, const char *path, char *buf, size_t size)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = drgw_pread_full(fd, buf, size - 1, 0);
	close(fd);
	if (n < 0)
		return n;
	buf[n] = '\0';
	return n;
}

/* Is descriptor fd_name of the process (its /proc dir at pid_fd) open for
 * writing?  The access mode is in fdinfo's octal "flags:" line. */
static bool fd_writable(int pid_fd, const char *fd_name)
{
	char path[64], buf[512], *p;
	unsigned flags;

	snprintf(path, sizeof(path), "fdinfo/%s", fd_name);
	if (read_small(pid_fd, path, buf, sizeof(buf)) < 0)
		return false; /* closed meanwhile */
	p = strstr(buf, "flags:");
	if (!p || sscanf(p + 6, "%o", &flags) != 1)
		return false;
	return (flags & O_ACCMODE) != O_RDONLY;
}

/* Does the process (its /proc dir at pid_fd) have (dev, ino) open for
 * writing?  1, 0, or -EACCES if its descriptors cannot be inspected. */
static int process_writes(int pid_fd, dev_t dev, ino_t ino)
{
	int fds_fd = openat(pid_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	char line[4200];
	int found = 0;
	FILE *maps;
	DIR *d;

	if (fds_fd < 0)
		return errno == EACCES || errno == EPERM ? -EACCES : 0;
	d = fdopendir(fds_fd);
	if (!d) {
		close(fds_fd);
		return 0;
	}
	while (!found && (de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		/* Follows the magic link to the open file itself, also when
		 * it was unlinked or renamed since. */
		if (fstatat(fds_fd, de->d_name, &st, 0) == 0 &&
		    st.st_dev == dev && st.st_ino == ino &&
		    fd_writable(pid_fd, de->d_name))
			found = 1;
	}
	closedir(d);
	if (found)
		return 1;

	/* A shared writable mapping writes the file after its descriptor is
	 * closed: "addr perms offset MAJ:MIN inode path", perms "rw?s". */
	{
		int maps_fd = openat(pid_fd, "maps", O_RDONLY | O_CLOEXEC);

		maps = maps_fd >= 0 ? fdopen(maps_fd, "r") : NULL;
		if (!maps && maps_fd >= 0)
			close(maps_fd);
	}
	while (maps && !found && fgets(line, sizeof(line), maps)) {
		char perms[8];
		unsigned maj, min;
		unsigned long long inode;

		if (sscanf(line, "%*s %7s %*s %x:%x %llu", perms, &maj, &min,
			   &inode) == 4 &&
		    perms[1] == 'w' && perms[3] == 's' &&
		    maj == major(dev) && min == minor(dev) &&
		    inode == (unsigned long long)ino)
			found = 1;
	}
	if (maps)
		fclose(maps);
	return found;
}

int drgw_writers_scan_proc(dev_t dev, ino_t ino, struct drgw_writer *ret)
{
	int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct drgw_writer w = { 0 };
	struct dirent *de;
	DIR *d;

	if (proc_fd < 0)
		return -errno;
	d = fdopendir(proc_fd);
	if (!d) {
		close(proc_fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		uint64_t pid;
		int pid_fd, r;

		if (drgw_parse_u64(de->d_name, &pid) < 0)
			continue;
		pid_fd = openat(proc_fd, de->d_name,
				O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pid_fd < 0)
			continue; /* exited */
		r = process_writes(pid_fd, dev, ino);
		if (r == -EACCES) {
			w.hidden++;
		} else if (r > 0) {
			w.pid = (pid_t)pid;
			if (read_small(pid_fd, "comm", w.comm, sizeof(w.comm)) > 0)
				w.comm[strcspn(w.comm, "\n")] = '\0';
		}
		close(pid_fd);
		if (w.pid)
			break;
	}
	closedir(d);
	if (ret)
		*ret = w;
	return w.pid ? 1 : 0;
}

int drgw_writers_check(int fd, struct drgw_writer *ret)
{
	struct drgw_writer w = { 0 };
	struct stat st;
	int r = drgw_writers_lease(fd);

	if (r == 0)
		drgw_writers_unlease(fd);
	if (r != -EOPNOTSUPP) {
		/* The lease answered for every process; /proc may still name
		 * the writer for the log. */
		if (r == -EBUSY && fstat(fd, &st) == 0)
			drgw_writers_scan_proc(st.st_dev, st.st_ino, &w);
		w.by_lease = true;
		w.hidden = 0;
		r = r == -EBUSY;
	} else if (fstat(fd, &st) < 0) {
		r = -errno;
	} else {
		r = drgw_writers_scan_proc(st.st_dev, st.st_ino, &w);
	}
	if (r >= 0 && ret)
		*ret = w;
	return r;
}
