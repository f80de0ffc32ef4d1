/* SPDX-License-Identifier: MIT */
/*
 * Backing-file table; see backing.h.  A fixed chained hash keyed by inode
 * number under one mutex: the table only holds files open right now, and
 * the lock is also held across the registering ioctl so that two opens of
 * the same new file cannot register it twice.
 *
 * This file includes <linux/fuse.h> for the ioctls and no libfuse header:
 * both define some of the same FUSE_* names.
 */
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backing.h"
#include "drgw-build.h"

#if DRGW_FUSE_PASSTHROUGH
#include <linux/fuse.h>
#endif

#define N_BUCKETS 256

struct drgw_backing_file {
	dev_t dev;
	ino_t ino;
	int id;
	unsigned refs; /* protected by the table lock */
	struct drgw_backing_file *next;
};

struct drgw_backing {
	int dev_fd;
	pthread_mutex_t lock;
	struct drgw_backing_file *buckets[N_BUCKETS];
};

static bool have_sys_admin(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &
	       CAP_TO_MASK(CAP_SYS_ADMIN);
}

/* A user namespace of a container maps a part of the ids; the initial one
 * maps all of them onto themselves. */
static bool in_initial_user_ns(void)
{
	unsigned long inside, outside, count;
	FILE *f = fopen("/proc/self/uid_map", "re");
	bool initial = false;

	if (!f)
		return true; /* no user namespaces in this kernel */
	if (fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
		initial = inside == 0 && outside == 0 && count == 4294967295UL;
	fclose(f);
	return initial;
}

bool drgw_backing_permitted(char *why, size_t size)
{
	if (!have_sys_admin()) {
		snprintf(why, size, "drgw lacks CAP_SYS_ADMIN");
		return false;
	}
	if (!in_initial_user_ns()) {
		snprintf(why, size,
			 "drgw runs in a user namespace, where CAP_SYS_ADMIN does not count");
		return false;
	}
	return true;
}

struct drgw_backing *drgw_backing_new(int dev_fd)
{
	struct drgw_backing *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->dev_fd = dev_fd;
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

struct drgw_backing *drgw_backing_free(struct drgw_backing *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < N_BUCKETS; i++) {
		struct drgw_backing_file *b = t->buckets[i], *next;

		for (; b; b = next) {
			next = b->next;
			free(b);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
	return NULL;
}

static struct drgw_backing_file **slot_of(struct drgw_backing *t, dev_t dev,
					  ino_t ino)
{
	struct drgw_backing_file **pp = &t->buckets[ino % N_BUCKETS];

	while (*pp && ((*pp)->dev != dev || (*pp)->ino != ino))
		pp = &(*pp)->next;
	return pp;
}

#if DRGW_FUSE_PASSTHROUGH
static int register_file(struct drgw_backing *t, int fd)
{
	struct fuse_backing_map map = { .fd = fd };
	int id = ioctl(t->dev_fd, FUSE_DEV_IOC_BACKING_OPEN, &map);

	if (id < 0)
		return -errno;
	return id > 0 ? id : -EPROTO;
}

static void unregister_file(struct drgw_backing *t, int id)
{
	uint32_t arg = (uint32_t)id;

	/* Fails only if the connection is gone, which frees the id too. */
	(void)!ioctl(t->dev_fd, FUSE_DEV_IOC_BACKING_CLOSE, &arg);
}
#else
static int register_file(struct drgw_backing *t, int fd)
{
	return -EOPNOTSUPP;
}

static void unregister_file(struct drgw_backing *t, int id)
{
}
#endif

int drgw_backing_get(struct drgw_backing *t, int fd,
		     struct drgw_backing_file **ret)
{
	struct drgw_backing_file **pp, *b;
	struct stat st;
	int r = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	pthread_mutex_lock(&t->lock);
	pp = slot_of(t, st.st_dev, st.st_ino);
	b = *pp;
	if (!b) {
		b = calloc(1, sizeof(*b));
		r = b ? register_file(t, fd) : -ENOMEM;
		if (r < 0) {
			free(b);
			goto out;
		}
		b->dev = st.st_dev;
		b->ino = st.st_ino;
		b->id = r;
		*pp = b;
		r = 0;
	}
	b->refs++;
	*ret = b;
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

int drgw_backing_id(const struct drgw_backing_file *b)
{
	return b->id;
}

void drgw_backing_put(struct drgw_backing *t, struct drgw_backing_file *b)
{
	struct drgw_backing_file **pp;

	if (!b)
		return;
	pthread_mutex_lock(&t->lock);
	if (--b->refs == 0) {
		pp = slot_of(t, b->dev, b->ino);
		*pp = b->next;
		unregister_file(t, b->id);
		free(b);
	}
	pthread_mutex_unlock(&t->lock);
}
