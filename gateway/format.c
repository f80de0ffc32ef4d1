/* SPDX-License-Identifier: MIT */
/*
 * The object format; see format.h and docs/FORMAT.md.  Integers on disk are
 * little-endian.  Everything read from an object is bounds-checked before
 * use: objects come from remote storage and are untrusted until the AEAD
 * says otherwise, and neither the trailer nor the header is authenticated
 * on its own.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "format.h"

static const uint8_t header_magic[8] = { 'D', 'R', 'G', 'W', 'O', 'B', 'J', '\n' };
static const uint8_t trailer_magic_v1[8] = { 'D', 'R', 'G', 'W', 'E', 'N', 'D', '\n' };
static const uint8_t trailer_magic_v2[8] = { 'D', 'R', 'G', 'W', 'E', 'N', 'D', '2' };
static const char subkey_context_v1[] = "drgw object key v1";
static const char payload_context[] = "drgw payload key v2";
static const char wrap_context[] = "drgw wrap key v2";
static const char x25519_context[] = "drgw x25519 v2";

#define CIPHER_XCHACHA20POLY1305 1
#define COMPRESSION_ZSTD 1
#define FOOTER_FIXED_V1 76
#define FOOTER_FIXED_V2 88

#define STANZA_KEY 1
#define STANZA_X25519 2
#define STANZA_KEY_LEN (8 + 24 + 32 + DRGW_OBJ_TAG_SIZE)
#define STANZA_X25519_LEN (8 + 32 + 32 + DRGW_OBJ_TAG_SIZE)

/* Footer extension types; bit 15 marks those a reader must understand. */
#define EXT_CRITICAL 0x8000
#define EXT_EXTENTS (EXT_CRITICAL | 1)
#define EXT_REFS (EXT_CRITICAL | 2)
#define EXT_CHECK 3
#define EXT_PROBLEM 4
#define EXT_BLOCK 5
#define EXTENT_LEN 18

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

/* BLAKE2b-256 keyed with key (klen bytes) over context || a || b. */
static void kdf(uint8_t out[32], const uint8_t *key, size_t klen,
		const char *context, const uint8_t *a, size_t alen,
		const uint8_t *b, size_t blen)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, klen, 32);
	crypto_generichash_update(&st, (const uint8_t *)context,
				  strlen(context));
	if (alen)
		crypto_generichash_update(&st, a, alen);
	if (blen)
		crypto_generichash_update(&st, b, blen);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

/* --- writing (version 2) --- */

/* Wraps file_key for master key k as stanza body out. */
static void wrap_for_key(const struct drgw_key *k, const uint8_t *prefix,
			 const uint8_t nonce[24], const uint8_t *file_key,
			 uint8_t *out)
{
	uint8_t kek[32];

	kdf(kek, k->key, DRGW_KEY_BYTES, wrap_context, NULL, 0, NULL, 0);
	memcpy(out, k->id, 8);
	memcpy(out + 8, nonce, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 32, NULL, file_key, 32,
						   prefix, DRGW_OBJ_HEADER_FIXED,
						   NULL, nonce, kek);
	sodium_memzero(kek, sizeof(kek));
}

/* The key that wraps the file key for recipient pk from an ephemeral key
 * pair: X25519, then BLAKE2b over both public keys (as age's X25519
 * stanza does with HKDF), so the stanza is bound to this recipient. */
static int x25519_wrap_key(uint8_t out[32], const uint8_t *secret,
			   const uint8_t *peer, const uint8_t *epk,
			   const uint8_t *pk)
{
	uint8_t ss[32];

	if (crypto_scalarmult(ss, secret, peer) != 0)
		return -EIO; /* a low-order point: all-zero shared secret */
	kdf(out, ss, 32, x25519_context, epk, 32, pk, 32);
	sodium_memzero(ss, sizeof(ss));
	return 0;
}

static int wrap_for_recipient(const struct drgw_recipient *rc,
			      const uint8_t *prefix, const uint8_t eph_sk[32],
			      const uint8_t *file_key, uint8_t *out)
{
	static const uint8_t zero_nonce[24];
	uint8_t epk[32], wk[32];

	crypto_scalarmult_base(epk, eph_sk);
	memcpy(out, rc->tag, 8);
	memcpy(out + 8, epk, 32);
	/* A fresh ephemeral key per stanza: the wrap key is used once, so
	 * a zero nonce is safe. */
	if (x25519_wrap_key(wk, eph_sk, rc->pk, epk, rc->pk) < 0)
		return -EINVAL;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 40, NULL, file_key, 32,
						   prefix, DRGW_OBJ_HEADER_FIXED,
						   NULL, zero_nonce, wk);
	sodium_memzero(wk, sizeof(wk));
	return 0;
}

int drgw_obj_init_new(struct drgw_obj *o, const struct drgw_keyring *kr,
		      const uint8_t repo[DRGW_REPO_ID_BYTES], uint8_t kind,
		      uint32_t chunk_size, const struct drgw_obj_fixed *fixed)
{
	size_t n_stanzas = (kr->n ? 1 : 0) + kr->n_recips, len;
	uint8_t *h = o->header, *p;
	uint8_t file_key[32], nonce[24], eph_sk[32];

	if (!chunk_size_ok(chunk_size))
		return -EINVAL;
	if (n_stanzas == 0)
		return -ENOKEY;
	if (n_stanzas > DRGW_OBJ_STANZAS_MAX)
		return -E2BIG;
	memset(o, 0, sizeof(*o));
	len = DRGW_OBJ_HEADER_FIXED + (kr->n ? 4 + STANZA_KEY_LEN : 0) +
	      kr->n_recips * (4 + STANZA_X25519_LEN);
	memcpy(h, header_magic, 8);
	put_u16(h + 8, 2);
	h[10] = CIPHER_XCHACHA20POLY1305;
	h[11] = COMPRESSION_ZSTD;
	put_u32(h + 12, chunk_size);
	put_u32(h + 16, (uint32_t)len);
	h[20] = kind;
	h[21] = (uint8_t)n_stanzas;
	memcpy(h + 24, repo, DRGW_REPO_ID_BYTES);
	if (fixed) {
		memcpy(h + 40, fixed->object_id, 16);
		memcpy(file_key, fixed->file_key, 32);
	} else {
		randombytes_buf(h + 40, 16);
		randombytes_buf(file_key, 32);
	}

	p = h + DRGW_OBJ_HEADER_FIXED;
	if (kr->n) {
		if (fixed)
			memcpy(nonce, fixed->nonce, 24);
		else
			randombytes_buf(nonce, 24);
		p[0] = STANZA_KEY;
		put_u16(p + 2, STANZA_KEY_LEN);
		wrap_for_key(&kr->keys[0], h, nonce, file_key, p + 4);
		memcpy(o->opener, kr->keys[0].id, 8);
		p += 4 + STANZA_KEY_LEN;
	}
	for (size_t i = 0; i < kr->n_recips; i++) {
		if (fixed) {
			memcpy(eph_sk, fixed->eph_sk, 32);
			eph_sk[0] = (uint8_t)(eph_sk[0] + i);
		} else {
			randombytes_buf(eph_sk, 32);
		}
		p[0] = STANZA_X25519;
		put_u16(p + 2, STANZA_X25519_LEN);
		if (wrap_for_recipient(&kr->recips[i], h, eph_sk, file_key,
				       p + 4) < 0) {
			sodium_memzero(file_key, sizeof(file_key));
			sodium_memzero(o, sizeof(*o));
			return -EINVAL; /* not a usable public key */
		}
		p += 4 + STANZA_X25519_LEN;
	}
	sodium_memzero(eph_sk, sizeof(eph_sk));

	o->version = 2;
	o->header_len = len;
	o->chunk_size = chunk_size;
	o->kind = kind;
	memcpy(o->repo, repo, DRGW_REPO_ID_BYTES);
	memcpy(o->object_id, h + 40, 16);
	kdf(o->subkey, file_key, 32, payload_context, NULL, 0, NULL, 0);
	sodium_memzero(file_key, sizeof(file_key));
	return 0;
}

/* --- opening a header --- */

static int init_v1(struct drgw_obj *o, const uint8_t *header,
		   const struct drgw_keyring *kr, struct drgw_err *err)
{
	const struct drgw_key *key;
	char want[17], have[17];
	uint32_t cs = get_u32(header + 12);

	if (header[10] != CIPHER_XCHACHA20POLY1305 ||
	    header[11] != COMPRESSION_ZSTD || !chunk_size_ok(cs) ||
	    !sodium_is_zero(header + 56, 8)) {
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
	o->version = 1;
	memcpy(o->header, header, DRGW_OBJ_HEADER_SIZE);
	o->header_len = DRGW_OBJ_HEADER_SIZE;
	o->chunk_size = cs;
	o->kind = DRGW_OBJ_SNAPSHOT;
	memcpy(o->opener, key->id, DRGW_KEY_ID_BYTES);
	kdf(o->subkey, key->key, DRGW_KEY_BYTES, subkey_context_v1, header + 24,
	    32, NULL, 0);
	return 0;
}

/* Tries to unwrap the file key from one stanza with what kr holds.
 * 1 when it did, 0 when kr has nothing for it. */
static int try_stanza(const uint8_t *header, unsigned type, const uint8_t *body,
		      size_t len, const struct drgw_keyring *kr,
		      uint8_t file_key[32], struct drgw_obj *o)
{
	uint8_t wk[32];
	int r = 0;

	if (type == STANZA_KEY && len == STANZA_KEY_LEN) {
		const struct drgw_key *k = drgw_keyring_find(kr, body);

		if (!k)
			return 0;
		kdf(wk, k->key, DRGW_KEY_BYTES, wrap_context, NULL, 0, NULL, 0);
		r = crypto_aead_xchacha20poly1305_ietf_decrypt(
			    file_key, NULL, NULL, body + 32, 32 + DRGW_OBJ_TAG_SIZE,
			    header, DRGW_OBJ_HEADER_FIXED, body + 8, wk) == 0;
		if (r) {
			memcpy(o->opener, k->id, 8);
			o->opener_is_identity = false;
		}
	} else if (type == STANZA_X25519 && len == STANZA_X25519_LEN) {
		static const uint8_t zero_nonce[24];
		const struct drgw_identity *id =
			drgw_keyring_find_identity(kr, body);

		if (!id || x25519_wrap_key(wk, id->sk, body + 8, body + 8,
					   id->pk) < 0)
			return 0;
		r = crypto_aead_xchacha20poly1305_ietf_decrypt(
			    file_key, NULL, NULL, body + 40, 32 + DRGW_OBJ_TAG_SIZE,
			    header, DRGW_OBJ_HEADER_FIXED, zero_nonce, wk) == 0;
		if (r) {
			memcpy(o->opener, id->tag, 8);
			o->opener_is_identity = true;
		}
	}
	sodium_memzero(wk, sizeof(wk));
	return r;
}

/* "key id 1a2b..., recipient 3c4d..." of the stanzas, for messages. */
static void describe_stanzas(const uint8_t *header, size_t len, char *out,
			     size_t size)
{
	size_t off = DRGW_OBJ_HEADER_FIXED, o = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < header[21] && off + 4 <= len; i++) {
		size_t bl = get_u16(header + off + 2);
		char hex[17];

		if (off + 4 + bl > len || bl < 8 || o >= size)
			break;
		drgw_hex(header + off + 4, 8, hex);
		o += (size_t)snprintf(out + o, size - o, "%s%s %s",
				      i ? ", " : "",
				      header[off] == STANZA_KEY ? "key id" :
				      header[off] == STANZA_X25519 ? "recipient" :
								     "stanza",
				      hex);
		off += 4 + bl;
	}
}

static int init_v2(struct drgw_obj *o, const uint8_t *header, size_t len,
		   const struct drgw_keyring *kr, struct drgw_err *err)
{
	uint32_t cs = get_u32(header + 12), hl = get_u32(header + 16);
	unsigned n = header[21];
	uint8_t file_key[32];
	size_t off = DRGW_OBJ_HEADER_FIXED;
	bool opened = false;

	if (len < DRGW_OBJ_HEADER_FIXED || hl != len ||
	    hl > DRGW_OBJ_HEADER_MAX || header[10] != CIPHER_XCHACHA20POLY1305 ||
	    header[11] != COMPRESSION_ZSTD || !chunk_size_ok(cs) ||
	    (header[20] != DRGW_OBJ_SNAPSHOT && header[20] != DRGW_OBJ_INDEX) ||
	    n == 0 || n > DRGW_OBJ_STANZAS_MAX || get_u16(header + 22) != 0) {
		drgw_err_set(err, "corrupt object header");
		return -EIO;
	}
	memset(o, 0, sizeof(*o));
	/* Every stanza must be well formed, even past the one that opens:
	 * the whole header is authenticated, so a reader can rely on it. */
	for (unsigned i = 0; i < n; i++) {
		size_t bl;

		if (off + 4 > len || header[off + 1] != 0)
			goto corrupt;
		bl = get_u16(header + off + 2);
		if (off + 4 + bl > len)
			goto corrupt;
		if (!opened)
			opened = try_stanza(header, header[off], header + off + 4,
					    bl, kr, file_key, o);
		off += 4 + bl;
	}
	if (off != len)
		goto corrupt;
	if (!opened) {
		char to[DRGW_OBJ_STANZAS_MAX * 32];

		describe_stanzas(header, len, to, sizeof(to));
		drgw_err_set(err,
			     "wrong key file or identity: the object is encrypted to %s, and none of your keys or identities opens it (add the right one with --key-file or --identity)",
			     to);
		sodium_memzero(o, sizeof(*o));
		return -ENOKEY;
	}
	o->version = 2;
	memcpy(o->header, header, len);
	o->header_len = len;
	o->chunk_size = cs;
	o->kind = header[20];
	memcpy(o->repo, header + 24, DRGW_REPO_ID_BYTES);
	memcpy(o->object_id, header + 40, 16);
	kdf(o->subkey, file_key, 32, payload_context, NULL, 0, NULL, 0);
	sodium_memzero(file_key, sizeof(file_key));
	return 0;
corrupt:
	sodium_memzero(o, sizeof(*o));
	drgw_err_set(err, "corrupt object header");
	return -EIO;
}

int drgw_obj_init_header(struct drgw_obj *o, const uint8_t *header,
			 size_t header_len, const struct drgw_keyring *kr,
			 struct drgw_err *err)
{
	unsigned version;

	if (header_len < DRGW_OBJ_HEADER_FIXED || memcmp(header, header_magic, 8)) {
		drgw_err_set(err, "not a drgw object (bad magic)");
		return -EIO;
	}
	version = get_u16(header + 8);
	if (version == 1 && header_len == DRGW_OBJ_HEADER_SIZE)
		return init_v1(o, header, kr, err);
	if (version == 2)
		return init_v2(o, header, header_len, kr, err);
	if (version > DRGW_OBJ_FORMAT_VERSION) {
		drgw_err_set(err,
			     "object format version %u is not supported by this drgw; upgrade drgw",
			     version);
		return -EPROTONOSUPPORT;
	}
	drgw_err_set(err, "corrupt object header");
	return -EIO;
}

void drgw_obj_clear(struct drgw_obj *o)
{
	sodium_memzero(o, sizeof(*o));
}

void drgw_obj_header_hash(const struct drgw_obj *o, uint8_t out[32])
{
	EVP_Digest(o->header, o->header_len, out, NULL, EVP_sha256(), NULL);
}

/* --- sizes --- */

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

	return 2 * DRGW_OBJ_HEADER_MAX + n * drgw_obj_chunk_bound(chunk_size) +
	       FOOTER_FIXED_V2 + DRGW_OBJ_NAME_MAX + DRGW_OBJ_VID_MAX + 4 * n +
	       1024 + DRGW_OBJ_TAG_SIZE + DRGW_OBJ_TRAILER2_SIZE;
}

/* --- chunks --- */

int drgw_obj_seal_chunk(const struct drgw_obj *o, ZSTD_CCtx *cctx, int level,
			uint64_t index, const void *plain, size_t len, void *out,
			size_t out_cap, size_t *ret_len)
{
	uint8_t nonce[24];
	size_t zlen;
	int r;

	if (len > o->chunk_size || out_cap < drgw_obj_chunk_bound(o->chunk_size))
		return -EINVAL;
	zlen = ZSTD_compressCCtx(cctx, out, out_cap - DRGW_OBJ_TAG_SIZE, plain,
				 len, level);
	if (ZSTD_isError(zlen))
		return -EIO;
	make_nonce(nonce, index, false);
	r = drgw_aead_seal(out, out, zlen, o->header, o->header_len, nonce,
			   o->subkey);
	if (r == 0)
		*ret_len = zlen + DRGW_OBJ_TAG_SIZE;
	return r;
}

int drgw_obj_decrypt_chunk(const struct drgw_obj *o, uint64_t index,
			   const void *ct, size_t ct_len, void *zbuf,
			   struct drgw_err *err)
{
	uint8_t nonce[24];

	if (ct_len < DRGW_OBJ_TAG_SIZE) {
		drgw_err_set(err, "chunk %llu is truncated",
			     (unsigned long long)index);
		return -EIO;
	}
	make_nonce(nonce, index, false);
	if (drgw_aead_open(zbuf, ct, ct_len, o->header, o->header_len, nonce,
			   o->subkey) != 0) {
		drgw_err_set(err,
			     "chunk %llu failed authentication: the object is corrupt or was tampered with",
			     (unsigned long long)index);
		return -EBADMSG;
	}
	return 0;
}

int drgw_obj_inflate_chunk(ZSTD_DCtx *dctx, uint64_t index, const void *zbuf,
			   size_t zlen, void *out, size_t plain_len,
			   struct drgw_err *err)
{
	size_t n;

	/* A frame that claims another size is refused before decoding. */
	if (ZSTD_getFrameContentSize(zbuf, zlen) != plain_len) {
		drgw_err_set(err, "chunk %llu has the wrong length",
			     (unsigned long long)index);
		return -EIO;
	}
	n = ZSTD_decompressDCtx(dctx, out, plain_len, zbuf, zlen);
	if (ZSTD_isError(n) || n != plain_len) {
		drgw_err_set(err, "chunk %llu does not decompress: %s",
			     (unsigned long long)index,
			     ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short");
		return -EIO;
	}
	return 0;
}

int drgw_obj_open_chunk(const struct drgw_obj *o, ZSTD_DCtx *dctx,
			uint64_t index, const void *ct, size_t ct_len,
			void *zbuf, void *out, size_t plain_len,
			struct drgw_err *err)
{
	int r = drgw_obj_decrypt_chunk(o, index, ct, ct_len, zbuf, err);

	return r < 0 ? r :
		       drgw_obj_inflate_chunk(dctx, index, zbuf,
					      ct_len - DRGW_OBJ_TAG_SIZE, out,
					      plain_len, err);
}

/* --- footer --- */

/* Bytes of the extensions of ext. */
static size_t ext_size(const struct drgw_obj_ext *ext)
{
	size_t n = 0;

	if (!ext)
		return 0;
	if (ext->extents) {
		n += 6 + 4 + EXTENT_LEN * ext->n_extents;
		n += 6 + 2;
		for (size_t i = 0; i < ext->n_refs; i++)
			n += 16 + 32 + 8 + 1 + strlen(ext->refs[i].vid);
	}
	if (ext->check != DRGW_CHECK_NONE)
		n += 6 + 1 + (ext->check_msg ? strlen(ext->check_msg) : 0);
	if (ext->problem)
		n += 6 + strlen(ext->problem);
	if (ext->block_size)
		n += 6 + 4;
	return n;
}

static uint8_t *put_ext_head(uint8_t *p, uint16_t type, size_t len)
{
	put_u16(p, type);
	put_u32(p + 2, (uint32_t)len);
	return p + 6;
}

static uint8_t *put_exts(uint8_t *p, const struct drgw_obj_ext *ext)
{
	size_t len;

	if (!ext)
		return p;
	if (ext->extents) {
		p = put_ext_head(p, EXT_EXTENTS, 4 + EXTENT_LEN * ext->n_extents);
		put_u32(p, (uint32_t)ext->n_extents);
		p += 4;
		for (size_t i = 0; i < ext->n_extents; i++, p += EXTENT_LEN) {
			put_u64(p, ext->extents[i].len);
			put_u16(p + 8, ext->extents[i].src);
			put_u64(p + 10, ext->extents[i].src_off);
		}
		len = 2;
		for (size_t i = 0; i < ext->n_refs; i++)
			len += 16 + 32 + 8 + 1 + strlen(ext->refs[i].vid);
		p = put_ext_head(p, EXT_REFS, len);
		put_u16(p, (uint16_t)ext->n_refs);
		p += 2;
		for (size_t i = 0; i < ext->n_refs; i++) {
			const struct drgw_obj_ref *rf = &ext->refs[i];
			size_t vl = strlen(rf->vid);

			memcpy(p, rf->object_id, 16);
			memcpy(p + 16, rf->header_sha256, 32);
			put_u64(p + 48, rf->data_size);
			p[56] = (uint8_t)vl;
			memcpy(p + 57, rf->vid, vl);
			p += 57 + vl;
		}
	}
	if (ext->check != DRGW_CHECK_NONE) {
		len = ext->check_msg ? strlen(ext->check_msg) : 0;
		p = put_ext_head(p, EXT_CHECK, 1 + len);
		p[0] = (uint8_t)ext->check;
		memcpy(p + 1, ext->check_msg ? ext->check_msg : "", len);
		p += 1 + len;
	}
	if (ext->problem) {
		len = strlen(ext->problem);
		p = put_ext_head(p, EXT_PROBLEM, len);
		memcpy(p, ext->problem, len);
		p += len;
	}
	if (ext->block_size) {
		p = put_ext_head(p, EXT_BLOCK, 4);
		put_u32(p, ext->block_size);
		p += 4;
	}
	return p;
}

int drgw_obj_seal_footer(const struct drgw_obj *o,
			 const struct drgw_obj_meta *meta, uint64_t n_chunks,
			 const uint32_t *chunk_lens,
			 const struct drgw_obj_ext *ext, uint8_t **ret_buf,
			 size_t *ret_len)
{
	size_t name_len = strlen(meta->name), vid_len = strlen(meta->vid);
	size_t xlen = ext_size(ext), plain_len, total;
	uint8_t nonce[24];
	uint8_t *buf, *p;
	int r;

	if (o->version != 2 || n_chunks > DRGW_OBJ_MAX_CHUNKS ||
	    name_len > DRGW_OBJ_NAME_MAX || vid_len > DRGW_OBJ_VID_MAX ||
	    (ext && ext->n_refs > DRGW_OBJ_REFS_MAX))
		return -EINVAL;
	plain_len = FOOTER_FIXED_V2 + name_len + vid_len + 4 * n_chunks + xlen;
	total = plain_len + DRGW_OBJ_TAG_SIZE;
	if (total > DRGW_OBJ_FOOTER_MAX)
		return -E2BIG;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	p = buf;
	put_u32(p, 2);
	put_u32(p + 4, meta->mode);
	put_u64(p + 8, meta->size);
	put_u64(p + 16, (uint64_t)meta->mtime_ns);
	put_u64(p + 24, (uint64_t)meta->created_ns);
	put_u64(p + 32, n_chunks);
	memcpy(p + 40, meta->sha256, 32);
	put_u64(p + 72, ext && ext->extents ? ext->data_size : meta->size);
	put_u16(p + 80, (uint16_t)name_len);
	put_u16(p + 82, (uint16_t)vid_len);
	put_u32(p + 84, (uint32_t)xlen);
	p += FOOTER_FIXED_V2;
	memcpy(p, meta->name, name_len);
	p += name_len;
	memcpy(p, meta->vid, vid_len);
	p += vid_len;
	for (uint64_t i = 0; i < n_chunks; i++, p += 4)
		put_u32(p, chunk_lens[i]);
	put_exts(p, ext);

	make_nonce(nonce, n_chunks, true);
	r = drgw_aead_seal(buf, buf, plain_len, o->header, o->header_len, nonce,
			   o->subkey);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret_buf = buf;
	*ret_len = total;
	return 0;
}

size_t drgw_obj_tail_size(const struct drgw_obj *o)
{
	return o->version == 1 ? DRGW_OBJ_TRAILER_SIZE :
				 o->header_len + DRGW_OBJ_TRAILER2_SIZE;
}

void drgw_obj_make_tail(const struct drgw_obj *o, uint64_t footer_off,
			uint32_t footer_len, uint64_t n_chunks, uint8_t *out)
{
	uint8_t *t;

	if (o->version == 1) {
		memset(out, 0, DRGW_OBJ_TRAILER_SIZE);
		memcpy(out, o->header, DRGW_OBJ_HEADER_SIZE);
		put_u64(out + 64, footer_off);
		put_u64(out + 72, n_chunks);
		put_u32(out + 80, footer_len);
		memcpy(out + 88, trailer_magic_v1, 8);
		return;
	}
	memcpy(out, o->header, o->header_len);
	t = out + o->header_len;
	memset(t, 0, DRGW_OBJ_TRAILER2_SIZE);
	put_u64(t, footer_off);
	put_u64(t + 8, n_chunks);
	put_u32(t + 16, footer_len);
	put_u32(t + 20, (uint32_t)o->header_len);
	put_u16(t + 24, 2);
	memcpy(t + 32, trailer_magic_v2, 8);
}

/* Checks the framing: footer_off..footer_off+footer_len, then after bytes,
 * end the object; computed without wrap-around (untrusted values). */
static bool framing_ok(uint64_t footer_off, uint32_t footer_len,
		       uint64_t n_chunks, uint64_t after, uint64_t min_start,
		       uint64_t object_size, uint64_t fixed)
{
	uint64_t min_footer = fixed + DRGW_OBJ_TAG_SIZE + 4 * n_chunks;

	return n_chunks <= DRGW_OBJ_MAX_CHUNKS &&
	       footer_len <= DRGW_OBJ_FOOTER_MAX && footer_len >= min_footer &&
	       footer_off >= min_start && footer_off <= object_size &&
	       object_size - footer_off >= (uint64_t)footer_len + after &&
	       object_size - footer_off - footer_len == after;
}

int drgw_obj_parse_tail(const uint8_t *tail, size_t tail_len,
			uint64_t object_size, struct drgw_obj_trailer *ret,
			struct drgw_err *err)
{
	const uint8_t *t;

	if (tail_len > object_size || tail_len < 8)
		goto foreign;
	if (!memcmp(tail + tail_len - 8, trailer_magic_v1, 8)) {
		if (tail_len < DRGW_OBJ_TRAILER_SIZE ||
		    object_size < DRGW_OBJ_HEADER_SIZE + DRGW_OBJ_TRAILER_SIZE)
			goto foreign;
		t = tail + tail_len - DRGW_OBJ_TRAILER_SIZE;
		if (memcmp(t, header_magic, 8))
			goto foreign;
		ret->version = 1;
		ret->footer_off = get_u64(t + 64);
		ret->n_chunks = get_u64(t + 72);
		ret->footer_len = get_u32(t + 80);
		if (get_u32(t + 84) != 0 ||
		    !framing_ok(ret->footer_off, ret->footer_len, ret->n_chunks,
				DRGW_OBJ_TRAILER_SIZE, DRGW_OBJ_HEADER_SIZE,
				object_size, FOOTER_FIXED_V1))
			goto inconsistent;
		memcpy(ret->header, t, DRGW_OBJ_HEADER_SIZE);
		ret->header_len = DRGW_OBJ_HEADER_SIZE;
		return 0;
	}
	if (!memcmp(tail + tail_len - 8, trailer_magic_v2, 8)) {
		uint32_t hl;

		if (tail_len < DRGW_OBJ_TRAILER2_SIZE)
			goto foreign;
		t = tail + tail_len - DRGW_OBJ_TRAILER2_SIZE;
		hl = get_u32(t + 20);
		if (get_u16(t + 24) != 2 || !sodium_is_zero(t + 26, 6) ||
		    hl < DRGW_OBJ_HEADER_FIXED || hl > DRGW_OBJ_HEADER_MAX ||
		    tail_len < DRGW_OBJ_TRAILER2_SIZE + hl)
			goto inconsistent;
		ret->version = 2;
		ret->footer_off = get_u64(t);
		ret->n_chunks = get_u64(t + 8);
		ret->footer_len = get_u32(t + 16);
		if (!framing_ok(ret->footer_off, ret->footer_len, ret->n_chunks,
				(uint64_t)hl + DRGW_OBJ_TRAILER2_SIZE, hl,
				object_size, FOOTER_FIXED_V2))
			goto inconsistent;
		memcpy(ret->header, t - hl, hl);
		ret->header_len = hl;
		if (memcmp(ret->header, header_magic, 8))
			goto foreign;
		return 0;
	}
foreign:
	drgw_err_set(err,
		     "not a complete drgw object (no trailer): truncated or foreign");
	return -EIO;
inconsistent:
	drgw_err_set(err,
		     "drgw object framing is inconsistent with its size: truncated or corrupt");
	return -EIO;
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

void drgw_obj_ext_clear(struct drgw_obj_ext *ext)
{
	free(ext->extents);
	free(ext->refs);
	free(ext->check_msg);
	free(ext->problem);
	memset(ext, 0, sizeof(*ext));
}

/* A text extension as a string: valid UTF-8 without NUL, one line. */
static char *ext_text(const uint8_t *p, size_t len)
{
	char *s = malloc(len + 1);

	if (!s)
		return NULL;
	memcpy(s, p, len);
	s[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = ' ';
	return s;
}

static int parse_refs(const uint8_t *p, size_t len, struct drgw_obj_ext *ext)
{
	size_t n, off = 2;

	if (len < 2)
		return -EIO;
	n = get_u16(p);
	if (n == 0 || n > DRGW_OBJ_REFS_MAX)
		return -EIO;
	ext->refs = calloc(n, sizeof(*ext->refs));
	if (!ext->refs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct drgw_obj_ref *rf = &ext->refs[i];
		size_t vl;

		if (off + 57 > len)
			return -EIO;
		memcpy(rf->object_id, p + off, 16);
		memcpy(rf->header_sha256, p + off + 16, 32);
		rf->data_size = get_u64(p + off + 48);
		vl = p[off + 56];
		if (vl > DRGW_OBJ_VID_MAX || off + 57 + vl > len)
			return -EIO;
		memcpy(rf->vid, p + off + 57, vl);
		rf->vid[vl] = '\0';
		if (strlen(rf->vid) != vl || !drgw_vid_ok(rf->vid))
			return -EIO;
		off += 57 + vl;
	}
	ext->n_refs = n;
	return off == len ? 0 : -EIO;
}

static int parse_extents(const uint8_t *p, size_t len, struct drgw_obj_ext *ext)
{
	size_t n;

	if (len < 4)
		return -EIO;
	n = get_u32(p);
	if (n == 0 || len != 4 + EXTENT_LEN * n)
		return -EIO;
	ext->extents = calloc(n, sizeof(*ext->extents));
	if (!ext->extents)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = p + 4 + EXTENT_LEN * i;

		ext->extents[i].len = get_u64(e);
		ext->extents[i].src = get_u16(e + 8);
		ext->extents[i].src_off = get_u64(e + 10);
	}
	ext->n_extents = n;
	return 0;
}

/* The extensions of a version-2 footer.  -EPROTONOSUPPORT for a critical
 * one this drgw does not know. */
static int parse_exts(const uint8_t *p, size_t len, struct drgw_obj_ext *ext)
{
	uint32_t seen = 0;
	size_t off = 0;
	int r = 0;

	while (r == 0 && off < len) {
		uint16_t type;
		uint32_t vl;
		const uint8_t *v;
		unsigned bit;

		if (len - off < 6)
			return -EIO;
		type = get_u16(p + off);
		vl = get_u32(p + off + 2);
		if (vl > len - off - 6)
			return -EIO;
		v = p + off + 6;
		off += 6 + (size_t)vl;
		bit = type & 31;
		if ((type & 0x7fe0) == 0 && (seen & (1u << bit)))
			return -EIO; /* each known type at most once */
		seen |= 1u << bit;
		switch (type) {
		case EXT_EXTENTS:
			r = parse_extents(v, vl, ext);
			break;
		case EXT_REFS:
			r = parse_refs(v, vl, ext);
			break;
		case EXT_CHECK:
			if (vl < 1 || v[0] > DRGW_CHECK_FAILED)
				return -EIO;
			ext->check = (enum drgw_check_state)v[0];
			if (vl > 1 && !(ext->check_msg = ext_text(v + 1, vl - 1)))
				r = -ENOMEM;
			break;
		case EXT_PROBLEM:
			if (!(ext->problem = ext_text(v, vl)))
				r = -ENOMEM;
			break;
		case EXT_BLOCK:
			if (vl != 4)
				return -EIO;
			ext->block_size = get_u32(v);
			break;
		default:
			if (type & EXT_CRITICAL)
				return -EPROTONOSUPPORT;
		}
	}
	return r;
}

/* An incremental object's map must tile the file exactly and stay inside
 * the data of every source. */
static bool extents_ok(const struct drgw_obj_ext *ext, uint64_t file_size)
{
	uint64_t at = 0;

	if (!ext->extents && !ext->refs)
		return true;
	if (!ext->extents || !ext->refs)
		return false;
	for (size_t i = 0; i < ext->n_extents; i++) {
		struct drgw_obj_extent *e = &ext->extents[i];
		uint64_t limit = e->src == 0 ? ext->data_size :
			e->src <= ext->n_refs ? ext->refs[e->src - 1].data_size : 0;

		if (e->len == 0 || e->src > ext->n_refs ||
		    e->src_off > limit || e->len > limit - e->src_off ||
		    e->len > file_size - at)
			return false;
		e->file_off = at;
		at += e->len;
	}
	return at == file_size;
}

int drgw_obj_parse_footer(unsigned version, const uint8_t *p, size_t len,
			  uint64_t n_chunks, uint64_t footer_off,
			  uint32_t chunk_size, size_t header_len,
			  struct drgw_obj_index *ret, struct drgw_err *err)
{
	struct drgw_obj_meta *m = &ret->meta;
	size_t fixed = version == 1 ? FOOTER_FIXED_V1 : FOOTER_FIXED_V2;
	size_t name_len, vid_len, xlen = 0;
	const uint8_t *lens, *q;
	uint64_t off;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((version != 1 && version != 2) || len < fixed ||
	    get_u32(p) != version)
		goto corrupt;
	m->version = version;
	m->mode = get_u32(p + 4);
	m->size = get_u64(p + 8);
	m->mtime_ns = (int64_t)get_u64(p + 16);
	m->created_ns = (int64_t)get_u64(p + 24);
	memcpy(m->sha256, p + 40, 32);
	if (version == 1) {
		ret->ext.data_size = m->size;
		name_len = get_u16(p + 72);
		vid_len = get_u16(p + 74);
	} else {
		ret->ext.data_size = get_u64(p + 72);
		name_len = get_u16(p + 80);
		vid_len = get_u16(p + 82);
		xlen = get_u32(p + 84);
	}
	if (get_u64(p + 32) != n_chunks ||
	    drgw_obj_chunk_count(ret->ext.data_size, chunk_size) != n_chunks)
		goto corrupt;
	if (name_len > DRGW_OBJ_NAME_MAX || vid_len > DRGW_OBJ_VID_MAX ||
	    xlen > len || len != fixed + name_len + vid_len + 4 * n_chunks + xlen)
		goto corrupt;
	q = p + fixed;
	memcpy(m->name, q, name_len);
	m->name[name_len] = '\0';
	memcpy(m->vid, q + name_len, vid_len);
	m->vid[vid_len] = '\0';
	/* A NUL inside would cut the name short: another file's name. */
	if (strlen(m->name) != name_len || strlen(m->vid) != vid_len ||
	    !drgw_name_ok(m->name) || !drgw_vid_ok(m->vid)) {
		drgw_err_set(err, "object names an invalid file name or version");
		return -EIO;
	}
	lens = q + name_len + vid_len;
	r = parse_exts(lens + 4 * n_chunks, xlen, &ret->ext);
	if (r == -EPROTONOSUPPORT) {
		drgw_obj_ext_clear(&ret->ext);
		drgw_err_set(err,
			     "object uses a format feature this drgw does not know; upgrade drgw");
		return r;
	}
	if (r < 0 || !extents_ok(&ret->ext, m->size) ||
	    (!ret->ext.extents && ret->ext.data_size != m->size)) {
		drgw_obj_ext_clear(&ret->ext);
		if (r == -ENOMEM)
			return r;
		goto corrupt;
	}

	ret->offsets = malloc((n_chunks + 1) * sizeof(*ret->offsets));
	if (!ret->offsets) {
		drgw_obj_ext_clear(&ret->ext);
		return -ENOMEM;
	}
	off = header_len;
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
	drgw_obj_ext_clear(&ret->ext);
corrupt:
	drgw_err_set(err, "object index is inconsistent: corrupt object");
	return -EIO;
}

int drgw_obj_open_footer(const struct drgw_obj *o,
			 const struct drgw_obj_trailer *t, uint8_t *buf,
			 size_t len, struct drgw_obj_index *ret,
			 struct drgw_err *err)
{
	uint8_t nonce[24];
	int r;

	if (len != t->footer_len) {
		drgw_err_set(err, "object footer is truncated");
		return -EIO;
	}
	make_nonce(nonce, t->n_chunks, true);
	if (drgw_aead_open(buf, buf, len, o->header, o->header_len, nonce,
			   o->subkey) != 0) {
		drgw_err_set(err,
			     "object footer failed authentication: the object is corrupt, truncated or was tampered with");
		return -EBADMSG;
	}
	r = drgw_obj_parse_footer(o->version, buf, len - DRGW_OBJ_TAG_SIZE,
				  t->n_chunks, t->footer_off, o->chunk_size,
				  o->header_len, ret, err);
	if (r == 0) {
		ret->object_size = t->footer_off + t->footer_len +
				   drgw_obj_tail_size(o);
		memcpy(ret->meta.repo, o->repo, sizeof(ret->meta.repo));
	}
	return r;
}

void drgw_obj_index_clear(struct drgw_obj_index *idx)
{
	free(idx->offsets);
	idx->offsets = NULL;
	drgw_obj_ext_clear(&idx->ext);
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

	r = drgw_obj_parse_tail(obj, len, len, &t, err);
	if (r == 0)
		r = drgw_obj_init_header(&o, t.header, t.header_len, kr, err);
	if (r < 0)
		return r;
	if (memcmp(obj, t.header, t.header_len)) {
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
	if (r == 0 && idx.ext.extents) {
		drgw_err_set(err, "incremental object: its references are needed to decode it");
		r = -ENOSYS;
	}
	/* Sized from the authenticated footer, not the trailer. */
	if (r == 0 && !(plain = malloc(idx.meta.size + 1)))
		r = -ENOMEM;
	for (uint64_t i = 0; r == 0 && i < idx.n_chunks; i++)
		r = drgw_obj_open_chunk(
			&o, dctx, i, buf + idx.offsets[i],
			(size_t)(idx.offsets[i + 1] - idx.offsets[i]),
			buf + idx.offsets[i], plain + i * o.chunk_size,
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
