/* SPDX-License-Identifier: MIT */
/*
 * Writers of a file, as the kernel reports them: a descriptor open for
 * writing (here or in another process), a shared writable mapping that
 * outlives its descriptor, none after the close; the lease, and the /proc
 * scan on its own; a lease broken by a later open for writing.
 */
#define TEST_MAIN
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "writers.h"

static char dir[64], path[96];

static int setup(void)
{
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/drgw-test-writers-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f.db", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, "0123456789", 10), ==, 10);
	close(fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	return fd;
}

static void teardown(int fd)
{
	close(fd);
	unlink(path);
	rmdir(dir);
}

static int scan(int fd, struct drgw_writer *w)
{
	struct stat st;

	CHECK_OK(fstat(fd, &st));
	return drgw_writers_scan_proc(st.st_dev, st.st_ino, w);
}

TEST(descriptor_in_this_process)
{
	int fd = setup(), wfd;
	struct drgw_writer w;

	CHECK_INT(drgw_writers_check(fd, &w), ==, 0);
	CHECK(w.by_lease);
	CHECK_INT(scan(fd, &w), ==, 0);
	wfd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(wfd >= 0);
	CHECK_INT(drgw_writers_check(fd, &w), ==, 1);
	CHECK(w.by_lease);
	CHECK_INT(w.pid, ==, getpid());
	CHECK_INT(scan(fd, &w), ==, 1);
	CHECK_INT(w.pid, ==, getpid());
	CHECK_INT(drgw_writers_lease(fd), ==, -EBUSY);
	close(wfd);
	CHECK_INT(drgw_writers_check(fd, &w), ==, 0);
	CHECK_INT(scan(fd, &w), ==, 0);
	teardown(fd);
}

/* A read-only descriptor elsewhere is no writer. */
TEST(readers_are_not_writers)
{
	int fd = setup(), rfd = open(path, O_RDONLY | O_CLOEXEC);

	CHECK(rfd >= 0);
	CHECK_INT(drgw_writers_check(fd, NULL), ==, 0);
	CHECK_INT(scan(fd, NULL), ==, 0);
	close(rfd);
	teardown(fd);
}

/* The mapping keeps writing after close(): a writer until munmap(). */
TEST(shared_writable_mapping)
{
	int fd = setup(), wfd = open(path, O_RDWR | O_CLOEXEC);
	struct drgw_writer w;
	char *p;

	CHECK(wfd >= 0);
	p = mmap(NULL, 10, PROT_READ | PROT_WRITE, MAP_SHARED, wfd, 0);
	CHECK(p != MAP_FAILED);
	close(wfd);
	CHECK_INT(drgw_writers_check(fd, &w), ==, 1);
	CHECK_INT(scan(fd, &w), ==, 1);
	CHECK_INT(w.pid, ==, getpid());
	munmap(p, 10);
	CHECK_INT(drgw_writers_check(fd, NULL), ==, 0);
	CHECK_INT(scan(fd, NULL), ==, 0);
	/* A private mapping never writes the file. */
	wfd = open(path, O_RDONLY | O_CLOEXEC);
	p = mmap(NULL, 10, PROT_READ | PROT_WRITE, MAP_PRIVATE, wfd, 0);
	CHECK(p != MAP_FAILED);
	close(wfd);
	CHECK_INT(scan(fd, NULL), ==, 0);
	munmap(p, 10);
	teardown(fd);
}

/* Another process holding the file open for writing, found by both. */
TEST(another_process)
{
	int fd = setup(), pipefd[2];
	struct drgw_writer w;
	pid_t child;
	char c;

	CHECK_OK(pipe2(pipefd, O_CLOEXEC));
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		int wfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

		if (write(pipefd[1], "x", 1) != 1 || wfd < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	CHECK_INT(read(pipefd[0], &c, 1), ==, 1);
	CHECK_INT(drgw_writers_check(fd, &w), ==, 1);
	CHECK_INT(w.pid, ==, child);
	CHECK_INT(scan(fd, &w), ==, 1);
	CHECK_INT(w.pid, ==, child);
	CHECK(w.comm[0]);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK_INT(drgw_writers_check(fd, NULL), ==, 0);
	close(pipefd[0]);
	close(pipefd[1]);
	teardown(fd);
}

/* While drgw reads under a lease, an open for writing breaks it: the
 * opener (here non-blocking) is told to wait, drgw sees the break, and the
 * process is not killed by the SIGIO that comes with it. */
TEST(lease_broken_by_an_open_for_writing)
{
	int fd = setup(), wfd, status;
	pid_t child;

	CHECK_OK(drgw_writers_lease(fd));
	CHECK(!drgw_writers_lease_broken(fd));
	wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK_INT(wfd, ==, -1);
	CHECK_INT(errno, ==, EWOULDBLOCK);
	CHECK(drgw_writers_lease_broken(fd));
	drgw_writers_unlease(fd);
	wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(wfd >= 0);
	close(wfd);
	/* A truncate breaks it too, and waits until drgw lets go. */
	CHECK_OK(drgw_writers_lease(fd));
	child = fork();
	CHECK(child >= 0);
	if (child == 0)
		_exit(truncate(path, 5) == 0 ? 0 : 1);
	for (int i = 0; i < 1000 && !drgw_writers_lease_broken(fd); i++)
		usleep(10 * 1000);
	CHECK(drgw_writers_lease_broken(fd));
	drgw_writers_unlease(fd);
	CHECK_INT(waitpid(child, &status, 0), ==, child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	teardown(fd);
}

/* Another user's file: no lease (no CAP_LEASE), so /proc answers, and a
 * writer drgw may not inspect is not seen, only counted. */
TEST(other_users_file_falls_back_to_proc)
{
	int fd = setup(), wfd, status;
	pid_t child;

	if (geteuid() != 0) {
		teardown(fd);
		return; /* needs a second user */
	}
	CHECK_OK(chmod(dir, 0755));
	CHECK_OK(chmod(path, 0644));
	wfd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK(wfd >= 0);
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		struct drgw_writer w;
		int rfd, r;

		close(wfd); /* the parent's, inherited */
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		rfd = open(path, O_RDONLY | O_CLOEXEC);
		if (rfd < 0)
			_exit(11);
		if (drgw_writers_lease(rfd) != -EOPNOTSUPP)
			_exit(12);
		r = drgw_writers_check(rfd, &w);
		/* Root's descriptor is invisible to nobody. */
		_exit(r == 0 && !w.by_lease && w.hidden > 0 ? 0 : 13);
	}
	CHECK_INT(waitpid(child, &status, 0), ==, child);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), ==, 0);
	close(wfd);
	teardown(fd);
}
