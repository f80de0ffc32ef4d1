/* SPDX-License-Identifier: MIT */
/*
 * The object format; see format.h and docs/FORMAT.md.  Integers on disk are
 * little-endian.  Everything read from an object is bounds-checked before
 * use: objects come from remote storage and are untrusted until the AEAD
 * says otherwise, and the trailer never is authenticated on its own.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

static const uint8_t header_magic[8] = { 'D', 'R', 'G', 'W', 'O', 'B', 'J', '\n' };
static const uint8_t trailer_magic[8] = { 'D', 'R', 'G', 'W', 'E', 'N', 'D', '\n' };
static const char subkey_context[] = "drgw object key v1";

#define CIPHER_XCHACHA20POLY1305 1
#define COMPRESSION_ZSTD 1
#define FOOTER_FIXED 76

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* STREAM nonce: chunk index, then the last-segment flag; zero padded.  The
 * per-object key is unique, so a counter nonce never repeats under it. */
static void make_nonce(uint8_t nonce[24], uint64_t index, bool last)
{
	memset(nonce, 0, 24);
	put_u64(nonce, index);
	nonce[8] = last ? 1 : 0;
}

static bool chunk_size_ok(uint32_t cs)
{
	return cs >= DRGW_OBJ_CHUNK_MIN && cs <= DRGW_OBJ_CHUNK_MAX &&
	       (cs & (cs - 1)) == 0;
}

static void derive_subkey(struct drgw_obj *o, const uint8_t *master,
			  const uint8_t *salt)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, master, DRGW_KEY_BYTES, sizeof(o->subkey));
	crypto_generichash_update(&st, (const uint8_t *)subkey_context,
				  sizeof(subkey_context) - 1);
	crypto_generichash_update(&st, salt, 32);
	crypto_generichash_final(&st, o->subkey, sizeof(o->subkey));
	sodium_memzero(&st, sizeof(st));
}

int drgw_obj_init_new(struct drgw_obj *o, const struct drgw_key *key,
		      uint32_t chunk_size, const uint8_t *salt)
{
	uint8_t *h = o->header;

	if (!chunk_size_ok(chunk_size))
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	memcpy(h, header_magic, 8);
	put_u16(h + 8, DRGW_OBJ_FORMAT_VERSION);
	h[10] = CIPHER_XCHACHA20POLY1305;
	h[11] = COMPRESSION_ZSTD;
	put_u32(h + 12, chunk_size);
	memcpy(h + 16, key->id, DRGW_KEY_ID_BYTES);
	if (salt)
		memcpy(h + 24, salt, 32);
	else
		randombytes_buf(h + 24, 32);
	o->chunk_size = chunk_size;
	memcpy(o->key_id, key->id, DRGW_KEY_ID_BYTES);
	derive_subkey(o, key->key, h + 24);
	return 0;
}

int drgw_obj_init_header(struct drgw_obj *o,
			 const uint8_t header[DRGW_OBJ_HEADER_SIZE],
			 const struct drgw_keyring *kr, struct drgw_err *err)
{
	const struct drgw_key *key;
	char want[17], have[17];
	uint32_t cs;

	if (memcmp(header, header_magic, 8)) {
		drgw_err_set(err, "not a drgw object (bad magic)");
		return -EIO;
	}
	if (get_u16(header + 8) != DRGW_OBJ_FORMAT_VERSION ||
	    header[10] != CIPHER_XCHACHA20POLY1305 ||
	    header[11] != COMPRESSION_ZSTD) {
		drgw_err_set(err,
			     "object format version %u is not supported by this drgw; upgrade drgw",
			     get_u16(header + 8));
		return -EPROTONOSUPPORT;
	}
	cs = get_u32(header + 12);
	if (!chunk_size_ok(cs) || !sodium_is_zero(header + 56, 8)) {
		drgw_err_set(err, "corrupt object header");
		return -EIO;
	}
	key = drgw_keyring_find(kr, header + 16);
	if (!key) {
		drgw_key_id_hex(header + 16, want);
		if (kr->n)
			drgw_key_id_hex(kr->keys[0].id, have);
		else
			snprintf(have, sizeof(have), "none");
		drgw_err_set(err,
			     "object was written with key id %s but the key file has key id %s: wrong key file (add the old key with another --key-file)",
			     want, have);
		return -ENOKEY;
	}
	memset(o, 0, sizeof(*o));
	memcpy(o->header, header, DRGW_OBJ_HEADER_SIZE);
	o->chunk_size = cs;
	memcpy(o->key_id, key->id, DRGW_KEY_ID_BYTES);
	derive_subkey(o, key->key, header + 24);
	return 0;
}

void drgw_obj_clear(struct drgw_obj *o)
{
	sodium_memzero(o, sizeof(*o));
}

uint32_t drgw_obj_pick_chunk_size(uint32_t wanted, uint64_t size)
{
	uint32_t cs = DRGW_OBJ_CHUNK_MIN;

	while (cs < wanted && cs < DRGW_OBJ_CHUNK_MAX)
		cs <<= 1;
	while (cs < DRGW_OBJ_CHUNK_MAX &&
	       drgw_obj_chunk_count(size, cs) > DRGW_OBJ_MAX_CHUNKS)
		cs <<= 1;
	return cs;
}

uint64_t drgw_obj_chunk_count(uint64_t size, uint32_t chunk_size)
{
	return size / chunk_size + (size % chunk_size != 0);
}

size_t drgw_obj_chunk_plain_len(uint64_t size, uint32_t chunk_size,
				uint64_t index)
{
	uint64_t start = index * chunk_size;

	if (start >= size)
		return 0;
	return size - start < chunk_size ? (size_t)(size - start) : chunk_size;
}

size_t drgw_obj_chunk_bound(uint32_t chunk_size)
{
	return ZSTD_compressBound(chunk_size) + DRGW_OBJ_TAG_SIZE;
}

uint64_t drgw_obj_size_bound(uint64_t size, uint32_t chunk_size)
{
	uint64_t n = drgw_obj_chunk_count(size, chunk_size);

	return DRGW_OBJ_HEADER_SIZE + n * drgw_obj_chunk_bound(chunk_size) +
	       FOOTER_FIXED + DRGW_OBJ_NAME_MAX + DRGW_OBJ_VID_MAX + 4 * n +
	       DRGW_OBJ_TAG_SIZE + DRGW_OBJ_TRAILER_SIZE;
}

int drgw_obj_seal_chunk(const struct drgw_obj *o, ZSTD_CCtx *cctx, int level,
			uint64_t index, const void *plain, size_t len, void *out,
			size_t out_cap, size_t *ret_len)
{
	uint8_t nonce[24];
	unsigned long long clen;
	size_t zlen;

	if (len > o->chunk_size || out_cap < drgw_obj_chunk_bound(o->chunk_size))
		return -EINVAL;
	zlen = ZSTD_compressCCtx(cctx, out, out_cap - DRGW_OBJ_TAG_SIZE, plain,
				 len, level);
	if (ZSTD_isError(zlen))
		return -EIO;
	make_nonce(nonce, index, false);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out, &clen, out, zlen,
						   o->header,
						   DRGW_OBJ_HEADER_SIZE, NULL,
						   nonce, o->subkey);
	*ret_len = (size_t)clen;
	return 0;
}

int drgw_obj_open_chunk(const struct drgw_obj *o, ZSTD_DCtx *dctx,
			uint64_t index, void *ct, size_t ct_len, void *out,
			size_t plain_len, struct drgw_err *err)
{
	unsigned long long zlen;
	uint8_t nonce[24];
	size_t n;

	if (ct_len < DRGW_OBJ_TAG_SIZE) {
		drgw_err_set(err, "chunk %llu is truncated",
			     (unsigned long long)index);
		return -EIO;
	}
	make_nonce(nonce, index, false);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(ct, &zlen, NULL, ct,
						       ct_len, o->header,
						       DRGW_OBJ_HEADER_SIZE,
						       nonce, o->subkey) != 0) {
		drgw_err_set(err,
			     "chunk %llu failed authentication: the object is corrupt or was tampered with",
			     (unsigned long long)index);
		return -EBADMSG;
	}
	/* A frame that claims another size is refused before decoding. */
	if (ZSTD_getFrameContentSize(ct, (size_t)zlen) != plain_len) {
		drgw_err_set(err, "chunk %llu has the wrong length",
			     (unsigned long long)index);
		return -EIO;
	}
	n = ZSTD_decompressDCtx(dctx, out, plain_len, ct, (size_t)zlen);
	if (ZSTD_isError(n) || n != plain_len) {
		drgw_err_set(err, "chunk %llu does not decompress: %s",
			     (unsigned long long)index,
			     ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short");
		return -EIO;
	}
	return 0;
}

int drgw_obj_seal_footer(const struct drgw_obj *o,
			 const struct drgw_obj_meta *meta, uint64_t n_chunks,
			 const uint32_t *chunk_lens, uint8_t **ret_buf,
			 size_t *ret_len)
{
	size_t name_len = strlen(meta->name), vid_len = strlen(meta->vid);
	size_t plain_len, total;
	unsigned long long clen;
	uint8_t nonce[24];
	uint8_t *buf, *p;

	if (n_chunks > DRGW_OBJ_MAX_CHUNKS || name_len > DRGW_OBJ_NAME_MAX ||
	    vid_len > DRGW_OBJ_VID_MAX)
		return -EINVAL;
	plain_len = FOOTER_FIXED + name_len + vid_len + 4 * n_chunks;
	total = plain_len + DRGW_OBJ_TAG_SIZE;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	p = buf;
	put_u32(p, DRGW_OBJ_FORMAT_VERSION);
	put_u32(p + 4, meta->mode);
	put_u64(p + 8, meta->size);
	put_u64(p + 16, (uint64_t)meta->mtime_ns);
	put_u64(p + 24, (uint64_t)meta->created_ns);
	put_u64(p + 32, n_chunks);
	memcpy(p + 40, meta->sha256, 32);
	put_u16(p + 72, (uint16_t)name_len);
	put_u16(p + 74, (uint16_t)vid_len);
	p += FOOTER_FIXED;
	memcpy(p, meta->name, name_len);
	p += name_len;
	memcpy(p, meta->vid, vid_len);
	p += vid_len;
	for (uint64_t i = 0; i < n_chunks; i++, p += 4)
		put_u32(p, chunk_lens[i]);

	make_nonce(nonce, n_chunks, true);
	crypto_aead_xchacha20poly1305_ietf_encrypt(buf, &clen, buf, plain_len,
						   o->header,
						   DRGW_OBJ_HEADER_SIZE, NULL,
						   nonce, o->subkey);
	*ret_buf = buf;
	*ret_len = (size_t)clen;
	return 0;
}

void drgw_obj_make_trailer(const struct drgw_obj *o, uint64_t footer_off,
			   uint32_t footer_len, uint64_t n_chunks,
			   uint8_t out[DRGW_OBJ_TRAILER_SIZE])
{
	memset(out, 0, DRGW_OBJ_TRAILER_SIZE);
	memcpy(out, o->header, DRGW_OBJ_HEADER_SIZE);
	put_u64(out + 64, footer_off);
	put_u64(out + 72, n_chunks);
	put_u32(out + 80, footer_len);
	memcpy(out + 88, trailer_magic, 8);
}

int drgw_obj_parse_trailer(const uint8_t t[DRGW_OBJ_TRAILER_SIZE],
			   uint64_t object_size, struct drgw_obj_trailer *ret,
			   struct drgw_err *err)
{
	uint64_t footer_off = get_u64(t + 64), n_chunks = get_u64(t + 72);
	uint32_t footer_len = get_u32(t + 80);
	uint64_t min_footer;

	if (object_size < DRGW_OBJ_HEADER_SIZE + DRGW_OBJ_TRAILER_SIZE ||
	    memcmp(t + 88, trailer_magic, 8) || memcmp(t, header_magic, 8)) {
		drgw_err_set(err,
			     "not a complete drgw object (no trailer): truncated or foreign");
		return -EIO;
	}
	/* Checked without wrap-around: footer_off comes from the untrusted
	 * trailer and may be anything up to 2^64-1. */
	min_footer = FOOTER_FIXED + DRGW_OBJ_TAG_SIZE + 4 * n_chunks;
	if (n_chunks > DRGW_OBJ_MAX_CHUNKS || get_u32(t + 84) != 0 ||
	    footer_len > DRGW_OBJ_FOOTER_MAX || footer_len < min_footer ||
	    footer_off < DRGW_OBJ_HEADER_SIZE || footer_off > object_size ||
	    object_size - footer_off < (uint64_t)footer_len +
					     DRGW_OBJ_TRAILER_SIZE ||
	    object_size - footer_off - footer_len != DRGW_OBJ_TRAILER_SIZE) {
		drgw_err_set(err,
			     "drgw object framing is inconsistent with its size: truncated or corrupt");
		return -EIO;
	}
	memcpy(ret->header, t, DRGW_OBJ_HEADER_SIZE);
	ret->footer_off = footer_off;
	ret->footer_len = footer_len;
	ret->n_chunks = n_chunks;
	return 0;
}

bool drgw_vid_ok(const char *vid)
{
	size_t n = strlen(vid);

	if (n == 0 || n > DRGW_OBJ_VID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = vid[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

int drgw_obj_parse_footer(const uint8_t *p, size_t len, uint64_t n_chunks,
			  uint64_t footer_off, uint32_t chunk_size,
			  struct drgw_obj_index *ret, struct drgw_err *err)
{
	struct drgw_obj_meta *m = &ret->meta;
	size_t name_len, vid_len;
	const uint8_t *lens;
	uint64_t off;

	memset(ret, 0, sizeof(*ret));
	if (len < FOOTER_FIXED || get_u32(p) != DRGW_OBJ_FORMAT_VERSION)
		goto corrupt;
	m->mode = get_u32(p + 4);
	m->size = get_u64(p + 8);
	m->mtime_ns = (int64_t)get_u64(p + 16);
	m->created_ns = (int64_t)get_u64(p + 24);
	if (get_u64(p + 32) != n_chunks ||
	    drgw_obj_chunk_count(m->size, chunk_size) != n_chunks)
		goto corrupt;
	memcpy(m->sha256, p + 40, 32);
	name_len = get_u16(p + 72);
	vid_len = get_u16(p + 74);
	if (name_len > DRGW_OBJ_NAME_MAX || vid_len > DRGW_OBJ_VID_MAX ||
	    len != FOOTER_FIXED + name_len + vid_len + 4 * n_chunks)
		goto corrupt;
	memcpy(m->name, p + FOOTER_FIXED, name_len);
	m->name[name_len] = '\0';
	memcpy(m->vid, p + FOOTER_FIXED + name_len, vid_len);
	m->vid[vid_len] = '\0';
	/* A NUL inside would cut the name short: another file's name. */
	if (strlen(m->name) != name_len || strlen(m->vid) != vid_len ||
	    !drgw_name_ok(m->name) || !drgw_vid_ok(m->vid)) {
		drgw_err_set(err, "object names an invalid file name or version");
		return -EIO;
	}

	ret->offsets = malloc((n_chunks + 1) * sizeof(*ret->offsets));
	if (!ret->offsets)
		return -ENOMEM;
	lens = p + FOOTER_FIXED + name_len + vid_len;
	off = DRGW_OBJ_HEADER_SIZE;
	for (uint64_t i = 0; i < n_chunks; i++) {
		uint32_t cl = get_u32(lens + 4 * i);

		if (cl < DRGW_OBJ_TAG_SIZE || cl > drgw_obj_chunk_bound(chunk_size))
			goto corrupt_free;
		ret->offsets[i] = off;
		off += cl;
	}
	if (off != footer_off)
		goto corrupt_free;
	ret->offsets[n_chunks] = off;
	ret->n_chunks = n_chunks;
	return 0;

corrupt_free:
	free(ret->offsets);
	ret->offsets = NULL;
corrupt:
	drgw_err_set(err, "object index is inconsistent: corrupt object");
	return -EIO;
}

int drgw_obj_open_footer(const struct drgw_obj *o,
			 const struct drgw_obj_trailer *t, uint8_t *buf,
			 size_t len, struct drgw_obj_index *ret,
			 struct drgw_err *err)
{
	unsigned long long plain_len;
	uint8_t nonce[24];
	int r;

	if (len != t->footer_len) {
		drgw_err_set(err, "object footer is truncated");
		return -EIO;
	}
	make_nonce(nonce, t->n_chunks, true);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(buf, &plain_len, NULL,
						       buf, len, o->header,
						       DRGW_OBJ_HEADER_SIZE,
						       nonce, o->subkey) != 0) {
		drgw_err_set(err,
			     "object footer failed authentication: the object is corrupt, truncated or was tampered with");
		return -EBADMSG;
	}
	r = drgw_obj_parse_footer(buf, (size_t)plain_len, t->n_chunks,
				  t->footer_off, o->chunk_size, ret, err);
	if (r == 0)
		ret->object_size = t->footer_off + t->footer_len +
				   DRGW_OBJ_TRAILER_SIZE;
	return r;
}

void drgw_obj_index_clear(struct drgw_obj_index *idx)
{
	free(idx->offsets);
	idx->offsets = NULL;
}

int drgw_obj_decode_mem(const uint8_t *obj, size_t len,
			const struct drgw_keyring *kr, uint8_t **ret_plain,
			struct drgw_obj_meta *ret_meta, struct drgw_err *err)
{
	struct drgw_obj_index idx = { 0 };
	struct drgw_obj_trailer t;
	struct drgw_obj o = { 0 };
	ZSTD_DCtx *dctx = NULL;
	uint8_t *plain = NULL, *buf = NULL;
	uint8_t sha[32];
	int r;

	if (len < DRGW_OBJ_TRAILER_SIZE) {
		drgw_err_set(err, "not a complete drgw object (no trailer): truncated or foreign");
		return -EIO;
	}
	r = drgw_obj_parse_trailer(obj + len - DRGW_OBJ_TRAILER_SIZE, len, &t,
				   err);
	if (r == 0)
		r = drgw_obj_init_header(&o, t.header, kr, err);
	if (r < 0)
		return r;
	if (memcmp(obj, t.header, DRGW_OBJ_HEADER_SIZE)) {
		drgw_err_set(err, "object header does not match its trailer: corrupt object");
		r = -EIO;
		goto out;
	}
	/* The AEAD decrypts in place; work on a copy of the input. */
	buf = malloc(len);
	dctx = ZSTD_createDCtx();
	if (!buf || !dctx) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(buf, obj, len);
	r = drgw_obj_open_footer(&o, &t, buf + t.footer_off, t.footer_len, &idx,
				 err);
	/* Sized from the authenticated footer, not the trailer. */
	if (r == 0 && !(plain = malloc(idx.meta.size + 1)))
		r = -ENOMEM;
	for (uint64_t i = 0; r == 0 && i < idx.n_chunks; i++)
		r = drgw_obj_open_chunk(
			&o, dctx, i, buf + idx.offsets[i],
			(size_t)(idx.offsets[i + 1] - idx.offsets[i]),
			plain + i * o.chunk_size,
			drgw_obj_chunk_plain_len(idx.meta.size, o.chunk_size, i),
			err);
	if (r < 0)
		goto out;
	EVP_Digest(plain, idx.meta.size, sha, NULL, EVP_sha256(), NULL);
	if (memcmp(sha, idx.meta.sha256, 32)) {
		drgw_err_set(err, "content hash mismatch");
		r = -EBADMSG;
		goto out;
	}
	*ret_meta = idx.meta;
	*ret_plain = plain;
	plain = NULL;
out:
	drgw_obj_index_clear(&idx);
	drgw_obj_clear(&o);
	ZSTD_freeDCtx(dctx);
	free(buf);
	free(plain);
	return r;
}
