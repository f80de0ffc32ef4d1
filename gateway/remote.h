/* SPDX-License-Identifier: MIT */
/*
 * What the backends hold, found from the objects themselves: every object
 * named "<vid>.drgw" is opened (one ranged read of its tail) and its
 * authenticated footer says which file and version it is.  Results are
 * cached in the catalog keyed by (backend, key, size, etag), so a second
 * scan with the same cache reads no tails, and so are the tails, so that
 * opening a version for a restore reads none either.  Nothing else of a bucket is
 * trusted: names come only from authenticated footers, and objects that do
 * not open (foreign, corrupt, another key) are reported and skipped.
 */
#ifndef DRGW_REMOTE_H
#define DRGW_REMOTE_H

#include "gateway.h"
#include "reader.h"

/*
 * The set is compact, because a restore lists every version ever stored:
 * strings live in one pool owned by the set, locations in one array, and
 * the reason an object could not be read is kept only for such objects
 * (docs/OPERATIONS.md gives the figure per version).  Every pointer below
 * stays valid until drgw_remote_set_release().
 */

/* Where one version is stored. */
struct drgw_location {
	size_t backend; /* index into gw->backends */
	const char *key; /* "<vid>.drgw" */
	uint64_t object_size;
	/* What the listing said about locks (DRGW_LOCK_* of backend.h). */
	int64_t retain_until_ns;
	uint32_t lock_flags;
};

/* What a version's authenticated footer says about it. */
struct drgw_snap_meta {
	const char *name;
	const char *vid;
	uint64_t size;
	int64_t mtime_ns;
	/* When the snapshot was sealed; orders versions of one name. */
	int64_t created_ns;
	uint32_t mode;
	uint8_t sha256[32];
	/* Format version; the repository (version 2, else zero). */
	uint8_t version;
	uint8_t repo[DRGW_REPO_ID_BYTES];
	/* The footer's SQLite check (enum drgw_check_state) and incomplete
	 * mark, from the object or the index; unknown (none, false) when
	 * the description came from --cache's copy. */
	uint8_t check;
	bool incomplete;
};

struct drgw_snapshot {
	struct drgw_snap_meta meta;
	const struct drgw_location *locs;
	size_t n_locs;
};

/* An object that could not be opened, and why. */
struct drgw_bad_object {
	size_t backend;
	const char *key;
	const char *why;
};

struct drgw_remote_pool;

struct drgw_remote_set {
	/* Sorted by name, then created_ns (oldest first). */
	struct drgw_snapshot *snaps;
	size_t n;
	/* Objects that could not be opened (foreign, corrupt, other key). */
	struct drgw_bad_object *bad;
	size_t n_bad;
	/* Backends that could not be listed: what they hold is missing from
	 * the set, so "the newest version" may be an older one. */
	struct {
		size_t backend;
		char why[512];
	} unreachable[DRGW_MAX_BACKENDS];
	size_t n_unreachable;
	/* Tails (and index records) the scan read from the backends, and
	 * versions described by an index record; the others were described
	 * by the catalog. */
	size_t n_read, n_indexed;
	/* Private: the strings, the locations and a hash of the version ids
	 * (slot = index + 1, 0 = empty). */
	struct drgw_remote_pool *pool;
	struct drgw_location *loc_array;
	uint32_t *by_vid;
	size_t by_vid_cap;
};

/* Scans every backend of gw.  Fails only if no backend could be listed.
 * Unreadable objects are in ret->bad; what it notices about index records
 * (one ignored, versions it names gone) is logged. */
int drgw_remote_scan(struct drgw_gateway *gw, struct drgw_reader *rd,
		     struct drgw_remote_set *ret, struct drgw_err *err);
/* The same, of backend index only alone (every backend when only < 0). */
int drgw_remote_scan_only(struct drgw_gateway *gw, struct drgw_reader *rd,
			  ssize_t only, struct drgw_remote_set *ret,
			  struct drgw_err *err);
void drgw_remote_set_release(struct drgw_remote_set *set);
/* -EIO with the first reason when objects were found but none could be
 * read (typically: the wrong key). */
int drgw_remote_require_readable(const struct drgw_remote_set *set,
				 struct drgw_err *err);

/* The newest version of name, or of the version vid if given; NULL if
 * there is none. */
const struct drgw_snapshot *drgw_remote_find(const struct drgw_remote_set *set,
					     const char *name, const char *vid);
/* Opens location loc of s for reading, checking that the object still is
 * that snapshot (its footer names the same version, file and content):
 * objects can change between a scan and a read.  With a catalog, the tail
 * the scan read is taken from there instead of being read again, unless
 * read_tail says to read it from the backend. */
int drgw_remote_open(struct drgw_gateway *gw, struct drgw_reader *rd,
		     const struct drgw_snapshot *s, size_t loc, bool read_tail,
		     struct drgw_rfile **ret, struct drgw_err *err);
/* True if s is the newest version of its name in the set. */
bool drgw_remote_is_latest(const struct drgw_remote_set *set, size_t i);

/* Calls warn(arg, line) once per backend that could not be listed, with
 * a line that names it and says what that means for a restore. */
void drgw_remote_warn_unreachable(const struct drgw_remote_set *set,
				  const struct drgw_gateway *gw,
				  void (*warn)(void *arg, const char *line),
				  void *arg);

/*
 * Is s safe to restore as "the newest version of its name"?  -ESTALE with
 * the reason in err when it is older than max_age_ns (0: no limit), or
 * when gw's catalog (a writer's cache, if one was given) knows a newer
 * version of the name that was replicated: then objects were deleted or
 * rolled back, or the backend holding the newer one was not listed.
 */
int drgw_remote_check_fresh(struct drgw_gateway *gw,
			    const struct drgw_snapshot *s, int64_t max_age_ns,
			    struct drgw_err *err);

#endif
