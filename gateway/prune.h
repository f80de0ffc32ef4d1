/* SPDX-License-Identifier: MIT */
/*
 * `drgw prune` on one backend: what the backend holds (the remote scan of
 * remote.h, so it works from the bucket alone), grouped by backend x name
 * pattern, planned with the backend's retention policy (policy.h), checked
 * against Object Lock / retention holds, and removed in batches: each
 * batch is recorded as "removing" in the catalog, deleted on the backend,
 * then recorded as removed.  A prune killed anywhere is finished by the
 * next one, which removes exactly what one uninterrupted run would have.
 *
 * Never removed: the newest version of every group, objects that a lock or
 * hold protects (reported with DRGW_REASON_LOCKED and their retain-until
 * time), objects that cannot be read (foreign, other key), and whatever a
 * keeper (below) wants kept.
 */
#ifndef DRGW_PRUNE_H
#define DRGW_PRUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway.h"
#include "policy.h"
#include "reader.h"

/* One snapshot version on the backend being pruned. */
struct drgw_prune_item {
	const char *name;    /* the file's name */
	const char *pattern; /* its group: drgw_name_pattern(name) */
	const char *vid;
	const char *key;     /* the object's key on the backend */
	int64_t time_ns;     /* seal time, from the object's footer */
	uint64_t bytes;      /* stored size */
	uint64_t reasons;    /* DRGW_REASON_* that keep it; 0: remove */
	/* What the listing (or a stat) said of its lock: DRGW_LOCK_* bits
	 * and the retain-until time.  With DRGW_REASON_LOCKED in reasons the
	 * object is protected until retain_until_ns (INT64_MAX: a hold
	 * without an end). */
	uint32_t lock_flags;
	int64_t retain_until_ns;
	/* What the object says of itself (footer extensions 3 and 4): its
	 * SQLite check (enum drgw_check_state) and incomplete mark. */
	uint8_t check;
	bool incomplete;
	bool refs_kept;      /* what it references is kept (prune.c) */
	bool removed;        /* deleted from the backend by this run */
	int error;           /* the removal failed (or was not tried): errno */
};

/*
 * Reasons to keep snapshots beyond the policy.  After the policy decided,
 * each keeper sees every version on the backend (items[], grouped by
 * pattern, oldest first within a group) and keeps more by setting its
 * reason bit in items[i].reasons; it may look at what others keep (reasons
 * != 0).  Keepers run in order, before the lock checks.  Issue 13 adds
 * DRGW_REASON_GOOD here (the newest snapshot of a series that passed its
 * SQLite check), issue 12 DRGW_REASON_BASE (objects that a kept
 * incremental version references).  0 or a negative errno, which fails the
 * prune of that backend before anything is removed.
 */
struct drgw_prune_keeper {
	uint64_t reason;
	int (*mark)(void *arg, const char *backend, struct drgw_prune_item *items,
		    size_t n);
	void *arg;
};

/*
 * The keeper of issue 13, reason DRGW_REASON_GOOD: in every group, the
 * newest version on the backend that the catalog arg (a struct
 * drgw_catalog *) knows as good (drgw_catalog_version_good()), so that
 * snapshots failing their SQLite check never cost the last one that
 * restores; in a group with no SQLite verdict whose newest version is
 * marked incomplete, the newest complete one.  Versions the catalog does
 * not know are not good.
 */
int drgw_prune_keep_good(void *arg, const char *backend,
			 struct drgw_prune_item *items, size_t n);

struct drgw_prune_opts {
	const struct drgw_policy *policy;
	bool dry_run;
	/* Only the groups whose pattern matches one of these (fnmatch);
	 * NULL/0: every group. */
	const char *const *patterns;
	size_t n_patterns;
	const struct drgw_prune_keeper *keepers;
	size_t n_keepers;
	/* Called once per version, after the plan (and the removal), in
	 * group order, oldest first within a group. */
	void (*report)(void *arg, const char *backend,
		       const struct drgw_prune_item *it);
	/* One line worth a warning (lock settings, locked objects,
	 * unreadable objects). */
	void (*warn)(void *arg, const char *backend, const char *msg);
	void *arg;
};

struct drgw_prune_summary {
	uint64_t kept, removed, locked, failed;
	uint64_t kept_bytes, removed_bytes;
	/* Objects that could not be read, left alone. */
	uint64_t unreadable;
	/* Seal time of the newest snapshot on the backend (0: none). */
	int64_t newest_ns;
};

/*
 * Prunes backend b of gw (opened with DRGW_OPEN_WRITE_BACKENDS) with
 * o->policy, recording removals and the run in gw->cat.  rd reads the
 * objects' tails.  0, or a negative errno with err saying what failed
 * (what was removed before the failure stays recorded).
 */
int drgw_prune_backend(struct drgw_gateway *gw, struct drgw_reader *rd,
		       size_t b, const struct drgw_prune_opts *o,
		       struct drgw_prune_summary *ret, struct drgw_err *err);

/*
 * Plans items[] (name, vid, time_ns set; pattern NULL) as a prune of a
 * backend would, without looking at locks: sorts them into groups and
 * sets pattern (malloc()ed; drgw_prune_items_free()) and reasons.  What
 * `drgw ls --versions` and `drgw status` show, from the catalog.
 */
int drgw_prune_plan_items(const struct drgw_policy *p,
			  struct drgw_prune_item *items, size_t n,
			  int64_t now_ns);
/* Frees the patterns, then items. */
void drgw_prune_items_free(struct drgw_prune_item *items, size_t n);

/* What a prune of backend would do with policy p, from the catalog's
 * record of what the backend holds. */
struct drgw_prune_preview {
	struct drgw_prune_item *items; /* sorted by vid */
	size_t n;
	uint64_t keep, remove, keep_bytes, remove_bytes;
};
int drgw_prune_preview(struct drgw_catalog *c, const char *backend,
		       const struct drgw_policy *p,
		       struct drgw_prune_preview *ret);
void drgw_prune_preview_release(struct drgw_prune_preview *pv);
/* The item of version vid, or NULL. */
const struct drgw_prune_item *
drgw_prune_preview_find(const struct drgw_prune_preview *pv, const char *vid);

#endif
