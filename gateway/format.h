/* SPDX-License-Identifier: MIT */
/*
 * The drgw object format (docs/FORMAT.md is the normative description):
 *
 *   header(64) | chunk 0 | ... | chunk n-1 | footer | trailer(96)
 *
 * Every chunk is one zstd frame of chunk_size plaintext bytes (the last one
 * shorter), sealed with XChaCha20-Poly1305 under a per-object key derived
 * from the master key and a random salt in the header.  The nonce carries
 * the chunk index and a "last segment" flag, and the header is the
 * associated data of every segment (the STREAM construction), so chunks
 * cannot be reordered, dropped, moved between objects or truncated without
 * the AEAD failing.  The footer is the last segment: the encrypted index
 * (each chunk's stored length) and metadata (name, size, mtime, SHA-256 of
 * the plaintext).  The trailer repeats the header and locates the footer,
 * so one ranged read of the tail describes the whole object.
 *
 * This module is pure: no I/O, no allocation except footers.  All functions
 * are thread-safe on distinct or const arguments.
 */
#ifndef DRGW_FORMAT_H
#define DRGW_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#include "key.h"
#include "util.h"

#define DRGW_OBJ_HEADER_SIZE 64
#define DRGW_OBJ_TRAILER_SIZE 96
#define DRGW_OBJ_TAG_SIZE 16
#define DRGW_OBJ_CHUNK_MIN (64u << 10)
#define DRGW_OBJ_CHUNK_MAX (16u << 20)
/* Footers past this size are refused (4 Mi chunks; 4 TiB at 1 MiB). */
#define DRGW_OBJ_FOOTER_MAX (16u << 20)
#define DRGW_OBJ_MAX_CHUNKS ((DRGW_OBJ_FOOTER_MAX - 8192) / 4)
#define DRGW_OBJ_VID_MAX 63
#define DRGW_OBJ_NAME_MAX 4095
#define DRGW_OBJ_FORMAT_VERSION 1

/* Per-object crypto context.  Holds a derived key: clear with
 * drgw_obj_clear() when done. */
struct drgw_obj {
	uint8_t header[DRGW_OBJ_HEADER_SIZE];
	uint32_t chunk_size;
	uint8_t key_id[DRGW_KEY_ID_BYTES];
	uint8_t subkey[32];
};

struct drgw_obj_meta {
	uint64_t size;
	int64_t mtime_ns;
	/* When the snapshot was sealed; orders versions of one name. */
	int64_t created_ns;
	uint32_t mode;
	uint8_t sha256[32];
	char name[DRGW_OBJ_NAME_MAX + 1];
	char vid[DRGW_OBJ_VID_MAX + 1];
};

/* What the trailer says; not authenticated until the footer opens. */
struct drgw_obj_trailer {
	uint8_t header[DRGW_OBJ_HEADER_SIZE];
	uint64_t footer_off;
	uint64_t n_chunks;
	uint32_t footer_len;
};

/* An opened footer.  offsets has n_chunks + 1 entries: chunk i is stored at
 * [offsets[i], offsets[i+1]); offsets[n_chunks] is the footer offset.
 * Free offsets with free() (drgw_obj_index_clear). */
struct drgw_obj_index {
	struct drgw_obj_meta meta;
	uint64_t n_chunks;
	uint64_t *offsets;
	uint64_t object_size;
};

/* Starts a new object under key with salt, or a fresh random salt if salt
 * is NULL (fixed salts are for test vectors only). */
int drgw_obj_init_new(struct drgw_obj *o, const struct drgw_key *key,
		      uint32_t chunk_size, const uint8_t *salt);
/* Rebuilds the context from a stored header, choosing the key by its id.
 * -EIO "not a drgw object", -EPROTONOSUPPORT newer format, -ENOKEY key id
 * not in the ring. */
int drgw_obj_init_header(struct drgw_obj *o,
			 const uint8_t header[DRGW_OBJ_HEADER_SIZE],
			 const struct drgw_keyring *kr, struct drgw_err *err);
void drgw_obj_clear(struct drgw_obj *o);

/* Chunk size an encoder should use for a file of size bytes so that the
 * index stays below DRGW_OBJ_MAX_CHUNKS. */
uint32_t drgw_obj_pick_chunk_size(uint32_t wanted, uint64_t size);
uint64_t drgw_obj_chunk_count(uint64_t size, uint32_t chunk_size);
/* Plaintext length of chunk index of an object of size bytes. */
size_t drgw_obj_chunk_plain_len(uint64_t size, uint32_t chunk_size,
				uint64_t index);
/* Largest stored chunk for chunk_size plaintext bytes. */
size_t drgw_obj_chunk_bound(uint32_t chunk_size);
/* Largest object the encoder can make of size plaintext bytes. */
uint64_t drgw_obj_size_bound(uint64_t size, uint32_t chunk_size);

/* Compresses and seals len plaintext bytes as chunk index into out
 * (capacity drgw_obj_chunk_bound()). */
int drgw_obj_seal_chunk(const struct drgw_obj *o, ZSTD_CCtx *cctx, int level,
			uint64_t index, const void *plain, size_t len, void *out,
			size_t out_cap, size_t *ret_len);
/* Opens chunk index: authenticates and decrypts ct in place, then
 * decompresses into out, which must receive exactly plain_len bytes.
 * -EBADMSG when authentication fails, -EIO on any inconsistency. */
int drgw_obj_open_chunk(const struct drgw_obj *o, ZSTD_DCtx *dctx,
			uint64_t index, void *ct, size_t ct_len, void *out,
			size_t plain_len, struct drgw_err *err);

/* Builds the sealed footer (malloc()ed into *ret_buf). */
int drgw_obj_seal_footer(const struct drgw_obj *o,
			 const struct drgw_obj_meta *meta, uint64_t n_chunks,
			 const uint32_t *chunk_lens, uint8_t **ret_buf,
			 size_t *ret_len);
void drgw_obj_make_trailer(const struct drgw_obj *o, uint64_t footer_off,
			   uint32_t footer_len, uint64_t n_chunks,
			   uint8_t out[DRGW_OBJ_TRAILER_SIZE]);

/* Checks the trailer's framing against the object size. */
int drgw_obj_parse_trailer(const uint8_t t[DRGW_OBJ_TRAILER_SIZE],
			   uint64_t object_size, struct drgw_obj_trailer *ret,
			   struct drgw_err *err);
/* Authenticates and parses the footer (buf is decrypted in place). */
int drgw_obj_open_footer(const struct drgw_obj *o,
			 const struct drgw_obj_trailer *t, uint8_t *buf,
			 size_t len, struct drgw_obj_index *ret,
			 struct drgw_err *err);
/* Parses a decrypted footer; split out so it can be fuzzed directly. */
int drgw_obj_parse_footer(const uint8_t *p, size_t len, uint64_t n_chunks,
			  uint64_t footer_off, uint32_t chunk_size,
			  struct drgw_obj_index *ret, struct drgw_err *err);
void drgw_obj_index_clear(struct drgw_obj_index *idx);

/*
 * Decodes a whole object held in memory: checks the header, every chunk
 * and the content hash.  *ret_plain is malloc()ed (meta.size bytes).  For
 * tests, fuzzers and tools; the daemon reads through reader.h.
 */
int drgw_obj_decode_mem(const uint8_t *obj, size_t len,
			const struct drgw_keyring *kr, uint8_t **ret_plain,
			struct drgw_obj_meta *ret_meta, struct drgw_err *err);

/* Valid version id: 1..63 of [A-Za-z0-9_-]. */
bool drgw_vid_ok(const char *vid);

#endif
