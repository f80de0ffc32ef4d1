/* SPDX-License-Identifier: MIT */
/*
 * Encoder: turns one sealed file into one object of the drgw format.  The
 * file is read once; chunks are compressed and sealed on several threads
 * and written in order, while the calling thread hashes the plaintext
 * (SHA-256, the content hash operators can compare with sha256sum) and the
 * encoded object (handed to backends that verify uploads).
 */
#ifndef DRGW_ENCODE_H
#define DRGW_ENCODE_H

#include <stdbool.h>
#include <stdint.h>

#include "delta.h"
#include "format.h"

struct drgw_encode_opts {
	uint32_t chunk_size;
	int level;
	/* Worker threads; 0 means one per online CPU. */
	unsigned threads;
	/* Polled between chunks: return -ESTALE when the source changed,
	 * -ECANCELED to stop, 0 to go on.  May be NULL. */
	int (*check)(void *arg);
	void *check_arg;
	/* Repository the object belongs to (DRGW_REPO_ID_BYTES), NULL for
	 * none (all zero). */
	const uint8_t *repo;
	/* Fixed randomness for test vectors; NULL otherwise. */
	const struct drgw_obj_fixed *fixed;
	/* DRGW_OBJ_SNAPSHOT (0 means that too) or DRGW_OBJ_INDEX. */
	uint8_t kind;
	/* Block size to hash the file in, for the next version's plan
	 * (delta.h); 0: no map. */
	uint32_t block;
	/* The previous version's map: store only the blocks that changed,
	 * within limits.  NULL: a full object. */
	const struct drgw_blockmap *base;
	struct drgw_delta_limits limits;
	/* Called with the object's length so far after each write, so that
	 * uploads can follow the encoder (stream.h).  May be NULL. */
	void (*progress)(void *arg, uint64_t written);
	void *progress_arg;
	/* Called once the data is written, before the footer: may set the
	 * footer's check and problem extensions (pointing to memory that
	 * outlives drgw_encode(); they are not freed).  May be NULL. */
	void (*annotate)(void *arg, struct drgw_obj_ext *ext);
	void *annotate_arg;
};

struct drgw_encode_result {
	uint64_t stored_size;
	uint8_t object_sha256[32];
	/* The file's block map when opts->block was set (the caller
	 * releases it with drgw_blockmap_release()), located in the new
	 * object and its references. */
	struct drgw_blockmap map;
	bool incremental;
	uint64_t data_size;	/* plaintext bytes in the object's chunks */
	size_t n_refs;		/* objects an incremental one references */
	unsigned depth;		/* increments since the last full object */
};

/*
 * Encodes meta->size bytes of in_fd (read with pread from offset 0) as an
 * object named by meta (name, vid, mtime, created, mode set by the caller;
 * sha256 is filled in), encrypted to kr's first master key and every
 * recipient (drgw_obj_init_new()), appending it to out_fd.  -ESTALE when the file is
 * not meta->size bytes long any more or check() says so, -ENOSPC and other
 * write errors from out_fd, -ECANCELED.
 */
int drgw_encode(int in_fd, struct drgw_obj_meta *meta,
		const struct drgw_keyring *kr,
		const struct drgw_encode_opts *opts, int out_fd,
		struct drgw_encode_result *ret, struct drgw_err *err);

#endif
