/* SPDX-License-Identifier: MIT */
/*
 * The remote reader: random-access reads of objects stored on a backend.
 * Opening an object costs one ranged read of its tail (two if the footer is
 * large); each chunk then costs one ranged read, authenticated and
 * decompressed before any byte of it is returned.  Decoded chunks live in a
 * cache bounded in bytes and shared by all open objects, and sequential
 * readers get the next chunks fetched ahead of them, several megabytes per
 * ranged read and several reads in parallel.
 *
 * A read either returns the exact plaintext or fails (-EIO, -EBADMSG, or
 * the backend's errno): never short (except at end of file), never zeros,
 * never unauthenticated bytes.
 */
#ifndef DRGW_READER_H
#define DRGW_READER_H

#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "format.h"

struct drgw_reader;
struct drgw_rfile;

struct drgw_reader_opts {
	/* Everything the reader holds: decoded chunks, chunks being fetched
	 * and their ciphertext. */
	uint64_t cache_bytes;
	/* Chunks fetched ahead of a sequential reader (0: none). */
	unsigned readahead;
	/* Plaintext bytes of consecutive chunks one read-ahead request
	 * covers (at most the read-ahead window; at least one chunk). */
	uint64_t request_bytes;
	/* Fetch threads. */
	unsigned threads;
	/* How long one read from a backend may take, all retries included,
	 * before it fails with -ETIMEDOUT (so a caller can try the next
	 * backend); 0 for no limit. */
	int64_t deadline_ns;
};

/* What the reader fetched so far, for logs and bench/. */
struct drgw_reader_stats {
	uint64_t requests;	   /* ranged reads of chunks */
	uint64_t bytes_fetched;	   /* their stored bytes */
	uint64_t demand_chunks;	   /* chunks a reader waited for */
	uint64_t readahead_chunks; /* chunks fetched ahead */
	uint64_t readahead_unused; /* of those, evicted before a read */
	uint64_t decodes;	   /* chunks decrypted and decompressed */
	uint64_t decodes_ahead;	   /* of those, by fetch threads */
};

int drgw_reader_new(const struct drgw_reader_opts *opts,
		    const struct drgw_keyring *kr, struct drgw_reader **ret);
/* All rfiles must be closed first. */
struct drgw_reader *drgw_reader_free(struct drgw_reader *rd);
void drgw_reader_get_stats(struct drgw_reader *rd,
			   struct drgw_reader_stats *ret);

/* Opens key on b; object_size 0 means "stat it first". */
int drgw_rfile_open(struct drgw_reader *rd, struct drgw_backend *b,
		    const char *key, uint64_t object_size,
		    struct drgw_rfile **ret, struct drgw_err *err);
/* The same, keeping the object's tail for drgw_rfile_tail(): for a scan
 * that caches it.  (An increment's tail holds its map, megabytes for a
 * large file, so readers do not keep it.) */
int drgw_rfile_open_keep_tail(struct drgw_reader *rd, struct drgw_backend *b,
			      const char *key, uint64_t object_size,
			      struct drgw_rfile **ret, struct drgw_err *err);
/*
 * The same, from tail bytes drgw_rfile_tail() gave for this object before
 * (kept in a catalog): no request at all.  The footer is authenticated
 * again, as if it had just been read; bytes of another object fail that
 * or, if it was replaced by one under the same key, every chunk read.
 */
int drgw_rfile_open_tail(struct drgw_reader *rd, struct drgw_backend *b,
			 const char *key, uint64_t object_size,
			 const void *tail, size_t tail_len,
			 struct drgw_rfile **ret, struct drgw_err *err);
/* The object's sealed footer and trailer, its last *ret_len bytes, valid
 * while f is open: all drgw_rfile_open_tail() needs.  Only for f opened by
 * drgw_rfile_open_keep_tail(); else NULL and 0. */
void drgw_rfile_tail(const struct drgw_rfile *f, const void **ret,
		     size_t *ret_len);
const struct drgw_obj_meta *drgw_rfile_meta(const struct drgw_rfile *f);
/* What opened the object: the id of a master key or the tag of an
 * identity (drgw_keyring_find() or drgw_keyring_find_identity()). */
const uint8_t *drgw_rfile_key_id(const struct drgw_rfile *f);
/* The objects an incremental object takes blocks from (none for a full
 * one); valid while f is open. */
const struct drgw_obj_ref *drgw_rfile_refs(const struct drgw_rfile *f,
					   size_t *ret_n);
/* The footer's extensions: references, the SQLite check's verdict, the
 * writer's problem (format.h); valid while f is open. */
const struct drgw_obj_ext *drgw_rfile_ext(const struct drgw_rfile *f);
/* DRGW_OBJ_SNAPSHOT or DRGW_OBJ_INDEX. */
uint8_t drgw_rfile_kind(const struct drgw_rfile *f);
/* Bytes of the stored object (header to trailer). */
uint64_t drgw_rfile_object_size(const struct drgw_rfile *f);
/* Reads len plaintext bytes at off; returns the count (short only at the
 * end of the file) or a negative errno.  Thread-safe. */
ssize_t drgw_rfile_pread(struct drgw_rfile *f, void *buf, size_t len,
			 uint64_t off, struct drgw_err *err);
/* Takes another reference; each is dropped with drgw_rfile_close(). */
void drgw_rfile_ref(struct drgw_rfile *f);
void drgw_rfile_close(struct drgw_rfile *f);

/* Reads the object's first bytes and checks they are the header the
 * trailer names (a full verification reads the chunks too). */
int drgw_rfile_check_header(struct drgw_rfile *f, struct drgw_err *err);

#endif
