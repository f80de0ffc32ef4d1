/* SPDX-License-Identifier: MIT */
/*
 * Block maps: what an incremental object is made from.  For the newest
 * encoded version of each series (a name pattern, digits become '*') the
 * gateway keeps, in <cache>/blocks/<vid>.map, the hash of every block of
 * its file and where each block is stored: in which object (its id, the
 * hash of its header, its data size) at which offset of that object's
 * data.  The next version of the series hashes its own blocks, stores
 * only those whose hash differs, and points at the stored ones for the
 * rest (docs/FORMAT.md, "Incremental objects").  No object is read back:
 * the writer decides from these local hashes alone, so it works with
 * write-only keys, and without the map (a lost cache) it writes a full
 * object.
 *
 * Block size: SQLite's page size when the file is a SQLite database (its
 * header says so), else DRGW_DELTA_BLOCK.  References are flat: every
 * block points at the object that stores its bytes, so a read of any
 * version touches at most chain-limit + 1 objects.
 */
#ifndef DRGW_DELTA_H
#define DRGW_DELTA_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"

#define DRGW_DELTA_BLOCK 4096
#define DRGW_DELTA_HASH 16

/* Where the blocks of one version are stored, and their hashes. */
struct drgw_blockmap {
	uint32_t block;		/* block size */
	uint64_t size;		/* file size */
	uint64_t n_blocks;	/* ceil(size / block) */
	uint8_t (*hash)[DRGW_DELTA_HASH];
	/* The objects that store this version's blocks (the version's own
	 * object among them), and the file's extents over them; extent src
	 * indexes refs directly (0-based, unlike the footer). */
	struct drgw_obj_ref *refs;
	size_t n_refs;
	struct drgw_obj_extent *extents;
	size_t n_extents;
	/* Increments since the last full object (0: this is one). */
	unsigned depth;
	/* drgw_keyring_writer_digest() of the writer that stored it: an
	 * increment only takes blocks from objects its readers can open. */
	uint8_t keys[32];
};

void drgw_blockmap_release(struct drgw_blockmap *m);

/* Allocates the hashes of a file of size bytes in blocks of block. */
int drgw_blockmap_init(struct drgw_blockmap *m, uint32_t block,
		       uint64_t size);

/* Block size for a file whose first bytes are head (len bytes). */
uint32_t drgw_delta_block_size(const uint8_t *head, size_t len);

/* Hash of one block (SHA-256, first DRGW_DELTA_HASH bytes). */
void drgw_delta_hash(const void *data, size_t len,
		     uint8_t out[DRGW_DELTA_HASH]);

/* Saves and loads a map (<cache>/blocks/<vid>.map); -ENOENT, -EIO. */
int drgw_blockmap_save(int dir_fd, const char *vid,
		       const struct drgw_blockmap *m);
int drgw_blockmap_load(int dir_fd, const char *vid, struct drgw_blockmap *ret);

/* When an increment is not worth it or not allowed. */
struct drgw_delta_limits {
	double max_changed; /* the stored blocks, over the file's bytes */
	unsigned max_depth; /* increments since the last full object */
	/* What a restore of it reads, the data of every object it takes
	 * blocks from and its own, over the file's bytes (0: no limit):
	 * every increment adds to what the next one's restore reads. */
	double max_read;
};

/*
 * The plan of an incremental object: given the new file's map (hashes
 * filled in) and the base's, the blocks to store (indexes into the new
 * map, in file order) and the footer's extents and references.  -E2BIG
 * when an incremental is beyond one of the limits or would reference too
 * many objects.
 */
struct drgw_delta_plan {
	uint64_t *blocks;	/* blocks stored in this object */
	uint64_t n_blocks;
	uint64_t data_size;	/* bytes of those blocks */
	struct drgw_obj_ext ext; /* extents (src 0 = this object), refs */
};

int drgw_delta_plan(const struct drgw_blockmap *next,
		    const struct drgw_blockmap *base,
		    const struct drgw_delta_limits *lim,
		    struct drgw_delta_plan *ret);
void drgw_delta_plan_release(struct drgw_delta_plan *p);

/*
 * Completes next's map once its object exists: where each block now is,
 * given the plan (NULL for a full object) and the object's own reference
 * (id, header hash, data size, vid).
 */
int drgw_blockmap_locate(struct drgw_blockmap *next,
			 const struct drgw_delta_plan *plan,
			 const struct drgw_blockmap *base,
			 const struct drgw_obj_ref *self);

#endif
