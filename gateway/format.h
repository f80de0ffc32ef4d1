/* SPDX-License-Identifier: MIT */
/*
 * The drgw object format (docs/FORMAT.md is the normative description).
 * Version 2, which drgw writes:
 *
 *   header | chunk 0 | ... | chunk n-1 | footer | header copy | trailer(40)
 *
 * The header names the repository and the object, and wraps a random file
 * key for every key and recipient the object is encrypted to (stanzas).
 * Every chunk is one zstd frame of chunk_size bytes of the object's data
 * (the last one shorter), sealed with XChaCha20-Poly1305 under a key
 * derived from the file key; the nonce carries the chunk index and a
 * "last segment" flag, and the whole header is the associated data of
 * every segment (the STREAM construction), so chunks cannot be reordered,
 * dropped, moved between objects or truncated without the AEAD failing.
 * The footer is the last segment: the index (each chunk's stored length),
 * the metadata (name, size, mtime, SHA-256 of the file) and extensions: an
 * incremental object's map of the file onto its own data and the data of
 * the objects it references, each pinned by the hash of its header.  The
 * copy of the header and the trailer let one ranged read of the tail
 * describe the whole object.
 *
 * Version 1 (fixed 64-byte header, one master key, 96-byte trailer) is
 * read forever and never written.
 *
 * This module is pure: no I/O, no allocation except footers and indexes.
 * All functions are thread-safe on distinct or const arguments.
 */
#ifndef DRGW_FORMAT_H
#define DRGW_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#include "key.h"
#include "util.h"

#define DRGW_OBJ_HEADER_SIZE 64		/* version 1 */
#define DRGW_OBJ_TRAILER_SIZE 96	/* version 1 */
#define DRGW_OBJ_HEADER_FIXED 56	/* version 2, before the stanzas */
#define DRGW_OBJ_HEADER_MAX 4096	/* version 2 */
#define DRGW_OBJ_TRAILER2_SIZE 40	/* version 2, after the header copy */
#define DRGW_OBJ_STANZAS_MAX 16
#define DRGW_OBJ_TAG_SIZE 16
#define DRGW_OBJ_CHUNK_MIN (64u << 10)
#define DRGW_OBJ_CHUNK_MAX (16u << 20)
/* Footers past this size are refused (4 Mi chunks; 4 TiB at 1 MiB). */
#define DRGW_OBJ_FOOTER_MAX (16u << 20)
#define DRGW_OBJ_MAX_CHUNKS ((DRGW_OBJ_FOOTER_MAX - 8192) / 4)
#define DRGW_OBJ_VID_MAX 63
#define DRGW_OBJ_NAME_MAX 4095
/* An incremental object references at most this many others. */
#define DRGW_OBJ_REFS_MAX 64
#define DRGW_OBJ_FORMAT_VERSION 2
#define DRGW_REPO_ID_BYTES 16

/* What an object holds (version 2 header, "kind"). */
enum drgw_obj_kind {
	DRGW_OBJ_SNAPSHOT = 1,
	DRGW_OBJ_INDEX = 2,
};

/* Per-object crypto context.  Holds a derived key: clear with
 * drgw_obj_clear() when done. */
struct drgw_obj {
	unsigned version;
	uint8_t header[DRGW_OBJ_HEADER_MAX];
	size_t header_len;
	uint32_t chunk_size;
	uint8_t kind;
	uint8_t repo[DRGW_REPO_ID_BYTES];	/* zero for version 1 */
	uint8_t object_id[16];			/* zero for version 1 */
	/* What opened it: a master key id, or an identity's recipient tag
	 * (opener_is_identity). */
	uint8_t opener[8];
	bool opener_is_identity;
	uint8_t subkey[32];
};

/* Fixed randomness, for test vectors only. */
struct drgw_obj_fixed {
	uint8_t file_key[32];
	uint8_t object_id[16];
	/* Stanza i uses nonce[0..24) with byte 0 += i (symmetric stanzas)
	 * and ephemeral secret eph_sk with byte 0 += i (X25519 stanzas). */
	uint8_t nonce[24];
	uint8_t eph_sk[32];
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
	/* Filled by readers: the object's format version and repository. */
	unsigned version;
	uint8_t repo[DRGW_REPO_ID_BYTES];
};

/* An object an incremental one takes data from. */
struct drgw_obj_ref {
	uint8_t object_id[16];
	/* SHA-256 of its header: pins its file key, so nothing else (not a
	 * newer or older object, not one of another repository) fits. */
	uint8_t header_sha256[32];
	uint64_t data_size;
	char vid[DRGW_OBJ_VID_MAX + 1];
};

/* file_off..file_off+len of the file is data src_off.. of source src:
 * 0 is the object itself, k >= 1 is refs[k - 1]. */
struct drgw_obj_extent {
	uint64_t file_off;
	uint64_t len;
	uint16_t src;
	uint64_t src_off;
};

/* What ingest learnt about the snapshot (issue 13): the state of the
 * SQLite check and its first message. */
enum drgw_check_state {
	DRGW_CHECK_NONE = 0,	/* not checked (not SQLite, or off) */
	DRGW_CHECK_OK = 1,
	DRGW_CHECK_FAILED = 2,
};

/* Footer extensions (version 2).  Readers own the malloc()ed members. */
struct drgw_obj_ext {
	/* Plaintext bytes this object's chunks hold: the file size for a
	 * full object, the changed data for an incremental one. */
	uint64_t data_size;
	struct drgw_obj_extent *extents; /* NULL: the file is the data */
	size_t n_extents;
	struct drgw_obj_ref *refs;
	size_t n_refs;
	uint32_t block_size;		/* granularity of the increment */
	enum drgw_check_state check;
	char *check_msg;		/* NULL when there is none */
	char *problem;			/* NULL: none ("incomplete: ...") */
};

/* What the trailer says; not authenticated until the footer opens. */
struct drgw_obj_trailer {
	unsigned version;
	uint8_t header[DRGW_OBJ_HEADER_MAX];
	size_t header_len;
	uint64_t footer_off;
	uint64_t n_chunks;
	uint32_t footer_len;
};

/* An opened footer.  offsets has n_chunks + 1 entries: chunk i is stored at
 * [offsets[i], offsets[i+1]); offsets[n_chunks] is the footer offset.
 * Release with drgw_obj_index_clear(). */
struct drgw_obj_index {
	struct drgw_obj_meta meta;
	uint64_t n_chunks;
	uint64_t *offsets;
	uint64_t object_size;
	struct drgw_obj_ext ext;
};

/*
 * Starts a new version-2 object of kind for repository repo (16 bytes),
 * encrypted to kr's first master key (if any) and every recipient in kr.
 * fixed is NULL except for test vectors.  -ENOKEY when kr has nothing to
 * encrypt to.
 */
int drgw_obj_init_new(struct drgw_obj *o, const struct drgw_keyring *kr,
		      const uint8_t repo[DRGW_REPO_ID_BYTES], uint8_t kind,
		      uint32_t chunk_size, const struct drgw_obj_fixed *fixed);
/*
 * Rebuilds the context from a stored header (version 1 or 2), opening it
 * with a key or identity of kr.  -EIO "not a drgw object" or corrupt
 * header, -EPROTONOSUPPORT newer format, -ENOKEY nothing in kr opens it
 * (err says what the object was encrypted to).
 */
int drgw_obj_init_header(struct drgw_obj *o, const uint8_t *header,
			 size_t header_len, const struct drgw_keyring *kr,
			 struct drgw_err *err);
void drgw_obj_clear(struct drgw_obj *o);

/* SHA-256 of the header: what references pin. */
void drgw_obj_header_hash(const struct drgw_obj *o, uint8_t out[32]);

/* Chunk size an encoder should use for data of size bytes so that the
 * index stays below DRGW_OBJ_MAX_CHUNKS. */
uint32_t drgw_obj_pick_chunk_size(uint32_t wanted, uint64_t size);
uint64_t drgw_obj_chunk_count(uint64_t size, uint32_t chunk_size);
/* Plaintext length of chunk index of data of size bytes. */
size_t drgw_obj_chunk_plain_len(uint64_t size, uint32_t chunk_size,
				uint64_t index);
/* Largest stored chunk for chunk_size plaintext bytes. */
size_t drgw_obj_chunk_bound(uint32_t chunk_size);
/* Largest object the encoder can make of size plaintext bytes (full). */
uint64_t drgw_obj_size_bound(uint64_t size, uint32_t chunk_size);

/* Compresses and seals len plaintext bytes as chunk index into out
 * (capacity drgw_obj_chunk_bound()). */
int drgw_obj_seal_chunk(const struct drgw_obj *o, ZSTD_CCtx *cctx, int level,
			uint64_t index, const void *plain, size_t len, void *out,
			size_t out_cap, size_t *ret_len);
/* Opens chunk index: authenticates and decrypts ct into zbuf (ct_len
 * bytes; ct itself to decrypt in place), then decompresses into out,
 * which must receive exactly plain_len bytes.  -EBADMSG when
 * authentication fails, -EIO on any inconsistency. */
int drgw_obj_open_chunk(const struct drgw_obj *o, ZSTD_DCtx *dctx,
			uint64_t index, const void *ct, size_t ct_len,
			void *zbuf, void *out, size_t plain_len,
			struct drgw_err *err);
/* Its two steps: the frame, ct_len - DRGW_OBJ_TAG_SIZE bytes in zbuf
 * (wiped if it does not authenticate), can be decompressed again later
 * without decrypting it again. */
int drgw_obj_decrypt_chunk(const struct drgw_obj *o, uint64_t index,
			   const void *ct, size_t ct_len, void *zbuf,
			   struct drgw_err *err);
int drgw_obj_inflate_chunk(ZSTD_DCtx *dctx, uint64_t index, const void *zbuf,
			   size_t zlen, void *out, size_t plain_len,
			   struct drgw_err *err);

/* Builds the sealed footer (malloc()ed into *ret_buf); ext may be NULL
 * for a full object (data size = file size). */
int drgw_obj_seal_footer(const struct drgw_obj *o,
			 const struct drgw_obj_meta *meta, uint64_t n_chunks,
			 const uint32_t *chunk_lens,
			 const struct drgw_obj_ext *ext, uint8_t **ret_buf,
			 size_t *ret_len);
/* The bytes after the footer: the trailer (v1), or the header copy and
 * the trailer (v2).  out holds drgw_obj_tail_size(o) bytes. */
size_t drgw_obj_tail_size(const struct drgw_obj *o);
void drgw_obj_make_tail(const struct drgw_obj *o, uint64_t footer_off,
			uint32_t footer_len, uint64_t n_chunks, uint8_t *out);

/*
 * Parses the last tail_len bytes of an object of object_size bytes (at
 * least DRGW_OBJ_HEADER_MAX + DRGW_OBJ_TRAILER2_SIZE of them, or the whole
 * object if smaller): checks the trailer's framing against the size and
 * copies out the header it carries.
 */
int drgw_obj_parse_tail(const uint8_t *tail, size_t tail_len,
			uint64_t object_size, struct drgw_obj_trailer *ret,
			struct drgw_err *err);
/* Authenticates and parses the footer (buf is decrypted in place). */
int drgw_obj_open_footer(const struct drgw_obj *o,
			 const struct drgw_obj_trailer *t, uint8_t *buf,
			 size_t len, struct drgw_obj_index *ret,
			 struct drgw_err *err);
/* Parses a decrypted footer of format version; split out so it can be
 * fuzzed directly. */
int drgw_obj_parse_footer(unsigned version, const uint8_t *p, size_t len,
			  uint64_t n_chunks, uint64_t footer_off,
			  uint32_t chunk_size, size_t header_len,
			  struct drgw_obj_index *ret, struct drgw_err *err);
void drgw_obj_index_clear(struct drgw_obj_index *idx);
void drgw_obj_ext_clear(struct drgw_obj_ext *ext);

/*
 * Decodes a whole full object held in memory: checks the header, every
 * chunk and the content hash.  *ret_plain is malloc()ed (meta.size bytes).
 * For tests, fuzzers and tools; the daemon reads through reader.h.  An
 * incremental object needs the objects it references: -ENOSYS here.
 */
int drgw_obj_decode_mem(const uint8_t *obj, size_t len,
			const struct drgw_keyring *kr, uint8_t **ret_plain,
			struct drgw_obj_meta *ret_meta, struct drgw_err *err);

/* Valid version id: 1..63 of [A-Za-z0-9_-]. */
bool drgw_vid_ok(const char *vid);

#endif
