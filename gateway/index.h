/* SPDX-License-Identifier: MIT */
/*
 * Index records: small authenticated objects, "index/<vid>.drgw-index" on each
 * backend, that list every version the backend holds with what a reader
 * needs to show it (name, sizes, times, mode, hash).  A reader with an
 * empty cache lists the bucket (a thousand keys per request), opens the
 * newest index record, and opens only the tails of objects the index does
 * not describe, instead of one request per version ever stored.
 *
 * An index record is an object of kind DRGW_OBJ_INDEX in the same format
 * as snapshots (docs/FORMAT.md), encrypted to the same keys and
 * recipients and bound to the same repository, so a writer with write-only
 * keys produces it too and nobody without them can forge or read one.  Its
 * data is JSON.  The index is a shortcut, never the truth: an object
 * listed in the bucket but not in the index is opened as before; an index
 * that is missing, damaged or of another repository is ignored with a
 * warning (the full scan follows); an entry whose object is gone is
 * reported, since it means a deletion or a rollback.
 */
#ifndef DRGW_INDEX_H
#define DRGW_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"

struct drgw_gateway;
struct drgw_reader;

/* Keys of index records: "index/<vid>.drgw-index" (not "*.drgw": those
 * are snapshots). */
#define DRGW_INDEX_PREFIX "index/"
#define DRGW_INDEX_SUFFIX ".drgw-index"

struct drgw_index_entry {
	char vid[DRGW_OBJ_VID_MAX + 1];
	char *name;
	uint64_t size;
	int64_t mtime_ns;
	int64_t created_ns;
	uint32_t mode;
	uint8_t sha256[32];
	uint64_t object_size;
	/* The footer's SQLite check (enum drgw_check_state) and incomplete
	 * mark, so that a prune from the bucket alone knows them too. */
	uint8_t check;
	bool incomplete;
};

struct drgw_index {
	char vid[DRGW_OBJ_VID_MAX + 1];
	/* The repository its header names (drgw_index_read()). */
	uint8_t repo[DRGW_REPO_ID_BYTES];
	int64_t written_ns;
	/* Sorted by vid, for drgw_index_find(). */
	struct drgw_index_entry *entries;
	size_t n;
};

/*
 * Writes a new index record of backend b of gw (every version the catalog
 * says b holds), then removes b's older index records (best effort: a
 * writer whose credentials cannot delete leaves them to drgw prune).
 */
int drgw_index_write(struct drgw_gateway *gw, size_t b, struct drgw_err *err);

/* Removes every index record of backend b but the newest (drgw prune):
 * how many, or a negative errno. */
int drgw_index_prune(struct drgw_gateway *gw, size_t b, struct drgw_err *err);

/* Parses the JSON data of an index record. */
int drgw_index_parse(const char *json, size_t len, struct drgw_index *ret,
		     struct drgw_err *err);
void drgw_index_release(struct drgw_index *ix);
const struct drgw_index_entry *drgw_index_find(const struct drgw_index *ix,
					       const char *vid);

/* Is key an index record's key?  Copies its vid into vid if so. */
bool drgw_index_key(const char *key, char vid[DRGW_OBJ_VID_MAX + 1]);

/*
 * Reads and authenticates the index record key (object_size bytes) on
 * backend b of gw: it must be an index of gw's repository (if gw knows it)
 * whose footer names the key's vid.  It is read through a reader of its
 * own, so that it counts in no restore's figures and evicts nothing.
 */
int drgw_index_read(struct drgw_gateway *gw, size_t b, const char *key,
		    uint64_t object_size, struct drgw_index *ret,
		    struct drgw_err *err);

#endif
