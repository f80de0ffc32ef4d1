/* SPDX-License-Identifier: MIT */
/*
 * What the gateway knows about each file of the working set while it runs:
 * how many writable handles are open, whether it changed since it was last
 * sealed, when it is due to be sealed, and a change counter.
 *
 * The change counter (gen) is how the encoder proves that it read a
 * consistent file: every open for writing, write and truncate increments it
 * *before* touching the data, and the encoder only keeps an object when gen
 * is the same after encoding as before.  Any overlap with a writer therefore
 * discards the object instead of shipping it half old, half new.  With FUSE
 * passthrough writes bypass the daemon, but only through a writable handle:
 * the encoder does not start while one is open (writers), and opening one
 * while it runs bumps gen.
 *
 * Nodes are keyed by path relative to the working-set root (no leading
 * '/').  Lookups take the table lock; the write path only touches the
 * atomics of a node it already holds a reference to.
 */
#ifndef DRGW_NODES_H
#define DRGW_NODES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct drgw_node {
	/* Protected by the table lock. */
	char *path;
	unsigned refs;
	unsigned writers;
	int64_t seal_at; /* 0: no seal scheduled */
	/* Sealing failed this many times in a row (a full cache disk): the
	 * next try waits out a backoff, also while stopping. */
	unsigned seal_failures;
	/* Open for writing when a daemon stopped without a clean close
	 * (known from the catalog at start): the content may be partial. */
	bool unclean;
	/* A passthrough writer, whose writes and their errors we never see,
	 * closed it while the cache disk was full. */
	bool full_at_close;
	bool unlinked;
	struct drgw_node *hash_next;

	/* Lock-free: the write path. */
	atomic_uint_fast64_t gen;
	atomic_bool dirty;
	atomic_int_fast64_t last_write_ns;
	/* First errno of a write-back or fsync that failed since the content
	 * was last replaced (0: none): that content is not a good backup. */
	atomic_int write_error;
};

struct drgw_nodes;

struct drgw_nodes *drgw_nodes_new(void);
struct drgw_nodes *drgw_nodes_free(struct drgw_nodes *t);

/* The table lock, for callers that read or change node fields under it. */
void drgw_nodes_lock(struct drgw_nodes *t);
void drgw_nodes_unlock(struct drgw_nodes *t);

/* Returns a referenced node for path, created if needed (NULL on ENOMEM).
 * Caller holds the table lock. */
struct drgw_node *drgw_nodes_get_locked(struct drgw_nodes *t, const char *path);
/* Finds without creating; no reference taken.  Caller holds the lock. */
struct drgw_node *drgw_nodes_find_locked(struct drgw_nodes *t, const char *path);
/* Drops a reference; a node with none left is freed when it is unlinked,
 * or when it has no writer, no seal due and no unsealed change.  Locked. */
void drgw_nodes_put_locked(struct drgw_nodes *t, struct drgw_node *n);

/* Records a change to the data (write, truncate); lock-free. */
void drgw_node_touch(struct drgw_node *n);

/* Moves from (a file or, with is_dir, everything below it) to to.  A node
 * at to is replaced (marked unlinked).  Locked.  -ENOMEM. */
int drgw_nodes_rename_locked(struct drgw_nodes *t, const char *from,
			     const char *to, bool is_dir);
/* Marks path unlinked and drops it from the table.  Locked. */
void drgw_nodes_unlink_locked(struct drgw_nodes *t, const char *path);

/* Calls fn for every node, under the lock; stops when fn returns non-zero. */
int drgw_nodes_each_locked(struct drgw_nodes *t,
			   int (*fn)(struct drgw_node *n, void *arg), void *arg);

#endif
