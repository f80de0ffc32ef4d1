/* SPDX-License-Identifier: MIT */
/*
 * Object format: round trips through the real encoder, every tamper case
 * the format must detect (any flipped byte, any truncation, reordered
 * chunks, a footer from another object, a wrong key), and the test vector
 * published in docs/FORMAT.md.
 */
#define TEST_MAIN
#include "test.h"

#include <errno.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aead.h"
#include "encode.h"
#include "format.h"

static struct drgw_keyring ring(uint8_t seed)
{
	struct drgw_keyring kr = { 0 };
	uint8_t k[DRGW_KEY_BYTES];

	for (int i = 0; i < DRGW_KEY_BYTES; i++)
		k[i] = (uint8_t)(seed + i);
	CHECK_OK(drgw_keyring_add_bytes(&kr, k));
	return kr;
}

/* drgw_aead_* and libsodium's XChaCha20-Poly1305 agree byte for byte,
 * both ways, in place or not; a flipped bit anywhere, a wrong nonce or
 * associated data, or a short input fails to open and leaves no
 * plaintext behind. */
TEST(aead_is_libsodiums_xchacha20poly1305)
{
	static const size_t lens[] = { 0, 1, 15, 16, 63, 64, 65, 4096,
				       (1 << 20) + 13 };
	size_t cap = (1 << 20) + 64;
	uint8_t *m = malloc(cap), *c = malloc(cap), *ref = malloc(cap),
		*out = malloc(cap);
	uint8_t key[32], nonce[24], ad[77];

	CHECK(m && c && ref && out);
	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));
	randombytes_buf(ad, sizeof(ad));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i], clen = len + DRGW_AEAD_TAG;
		unsigned long long rlen;

		randombytes_buf(m, len);
		CHECK_OK(drgw_aead_seal(c, m, len, ad, sizeof(ad), nonce, key));
		crypto_aead_xchacha20poly1305_ietf_encrypt(
			ref, &rlen, m, len, ad, sizeof(ad), NULL, nonce, key);
		CHECK_INT(rlen, ==, clen);
		CHECK(memcmp(c, ref, clen) == 0);
		CHECK_OK(drgw_aead_open(out, ref, clen, ad, sizeof(ad), nonce,
					key));
		CHECK(memcmp(out, m, len) == 0);
		/* In place, as chunks and footers are sealed and opened. */
		memcpy(out, m, len);
		CHECK_OK(drgw_aead_seal(out, out, len, ad, sizeof(ad), nonce,
					key));
		CHECK(memcmp(out, ref, clen) == 0);
		CHECK_OK(drgw_aead_open(out, out, clen, ad, sizeof(ad), nonce,
					key));
		CHECK(memcmp(out, m, len) == 0);
		for (size_t bit = 0; bit < clen * 8; bit += clen > 80 ? clen * 8 / 61 + 1 : 1) {
			memcpy(out, c, clen);
			out[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			CHECK_INT(drgw_aead_open(out, out, clen, ad, sizeof(ad),
						 nonce, key),
				  ==, -EBADMSG);
			for (size_t k = 0; k < len; k++)
				CHECK(out[k] == 0);
		}
		ad[3] ^= 1;
		CHECK_INT(drgw_aead_open(out, c, clen, ad, sizeof(ad), nonce,
					 key),
			  ==, -EBADMSG);
		ad[3] ^= 1;
		nonce[20] ^= 1;
		CHECK_INT(drgw_aead_open(out, c, clen, ad, sizeof(ad), nonce,
					 key),
			  ==, -EBADMSG);
		nonce[20] ^= 1;
	}
	CHECK_INT(drgw_aead_open(out, c, DRGW_AEAD_TAG - 1, ad, sizeof(ad),
				 nonce, key),
		  ==, -EBADMSG);
	free(m);
	free(c);
	free(ref);
	free(out);
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("drgw-test", MFD_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_OK(drgw_write_full(fd, data, len));
	return fd;
}

static uint8_t *read_all(int fd, size_t *ret_len)
{
	off_t len = lseek(fd, 0, SEEK_END);
	uint8_t *buf = malloc((size_t)len + 1);

	CHECK(buf);
	CHECK_INT(drgw_pread_full(fd, buf, (size_t)len, 0), ==, len);
	*ret_len = (size_t)len;
	return buf;
}

static const uint8_t test_repo[DRGW_REPO_ID_BYTES] = { 0xde, 0xad, 0xbe, 0xef };

/* Encodes data as an object with the real (threaded) encoder. */
static uint8_t *encode(const struct drgw_keyring *kr, const void *data,
		       size_t len, uint32_t chunk_size, int level,
		       const struct drgw_obj_fixed *fixed, size_t *ret_len)
{
	struct drgw_encode_opts opts = { .chunk_size = chunk_size,
					 .level = level,
					 .threads = 2,
					 .repo = test_repo,
					 .fixed = fixed };
	struct drgw_obj_meta meta = { .size = len,
				      .mtime_ns = 1764000000123456789LL,
				      .created_ns = 1764000001000000000LL,
				      .mode = 0640 };
	struct drgw_encode_result res;
	struct drgw_err err = { 0 };
	int in = memfd_with(data, len);
	int out = memfd_create("drgw-out", MFD_CLOEXEC);
	uint8_t *obj;

	snprintf(meta.name, sizeof(meta.name), "dir/app-%zu.db", len);
	snprintf(meta.vid, sizeof(meta.vid), "20260101T000000Z-%08zx", len);
	CHECK(out >= 0);
	if (drgw_encode(in, &meta, kr, &opts, out, &res, &err))
		FAIL("encode: %s", err.msg);
	obj = read_all(out, ret_len);
	CHECK_INT(res.stored_size, ==, *ret_len);
	close(in);
	close(out);
	return obj;
}

/* The framing of an object (header length, footer offset). */
static struct drgw_obj_trailer framing(const uint8_t *obj, size_t len)
{
	struct drgw_obj_trailer t;
	struct drgw_err err = { 0 };

	if (drgw_obj_parse_tail(obj, len, len, &t, &err))
		FAIL("parse_tail: %s", err.msg);
	return t;
}

static int decode(const struct drgw_keyring *kr, const uint8_t *obj,
		  size_t len, uint8_t **plain, struct drgw_obj_meta *meta,
		  struct drgw_err *err)
{
	memset(err, 0, sizeof(*err));
	return drgw_obj_decode_mem(obj, len, kr, plain, meta, err);
}

static void fill(uint8_t *p, size_t n, bool compressible)
{
	if (compressible)
		for (size_t i = 0; i < n; i++)
			p[i] = (uint8_t)("row,value,42\n"[i % 13]);
	else
		randombytes_buf(p, n);
}

TEST(round_trip_sizes)
{
	struct drgw_keyring kr = ring(1);
	const size_t cs = 64 << 10;
	const size_t sizes[] = { 0, 1, cs - 1, cs, cs + 1, 3 * cs + cs / 2,
				 9 * cs };

	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		for (int comp = 0; comp < 2; comp++) {
			uint8_t *data = malloc(sizes[s] + 1), *plain = NULL;
			struct drgw_obj_meta meta;
			struct drgw_err err;
			uint8_t sha[32];
			size_t olen;
			uint8_t *obj;

			fill(data, sizes[s], comp);
			obj = encode(&kr, data, sizes[s], (uint32_t)cs, 3, NULL,
				     &olen);
			if (decode(&kr, obj, olen, &plain, &meta, &err))
				FAIL("decode of %zu bytes: %s", sizes[s], err.msg);
			CHECK_INT(meta.size, ==, sizes[s]);
			CHECK(memcmp(plain, data, sizes[s]) == 0);
			CHECK_INT(meta.mode, ==, 0640);
			CHECK_INT(meta.mtime_ns, ==, 1764000000123456789LL);
			CHECK_INT(meta.created_ns, ==, 1764000001000000000LL);
			CHECK_CONTAINS(meta.name, "dir/app-");
			EVP_Digest(data, sizes[s], sha, NULL, EVP_sha256(), NULL);
			CHECK(memcmp(sha, meta.sha256, 32) == 0);
			if (comp && sizes[s] > cs)
				CHECK_INT(olen, <, sizes[s] / 4);
			free(data);
			free(plain);
			free(obj);
		}
	}
	drgw_keyring_clear(&kr);
}

TEST(every_flipped_byte_is_detected)
{
	struct drgw_keyring kr = ring(2);
	uint8_t data[3000];
	size_t olen;
	uint8_t *obj;

	/* Small chunks: header, three chunks, footer and trailer are all
	 * within a few KiB, so every single byte can be flipped. */
	fill(data, sizeof(data), false);
	obj = encode(&kr, data, sizeof(data), 64 << 10, 3, NULL, &olen);
	for (size_t i = 0; i < olen; i++) {
		uint8_t *plain = NULL;
		struct drgw_obj_meta meta;
		struct drgw_err err;
		int r;

		obj[i] ^= 0x01;
		r = decode(&kr, obj, olen, &plain, &meta, &err);
		if (r == 0)
			FAIL("flipping byte %zu of %zu went unnoticed", i, olen);
		CHECK(err.msg[0]);
		obj[i] ^= 0x01;
	}
	free(obj);
	drgw_keyring_clear(&kr);
}

TEST(every_truncation_is_detected)
{
	struct drgw_keyring kr = ring(3);
	uint8_t data[200000];
	size_t olen;
	uint8_t *obj;

	fill(data, sizeof(data), false);
	obj = encode(&kr, data, sizeof(data), 64 << 10, 3, NULL, &olen);
	for (size_t len = 0; len < olen; len += len < 512 ? 1 : 509) {
		uint8_t *plain = NULL;
		struct drgw_obj_meta meta;
		struct drgw_err err;

		if (decode(&kr, obj, len, &plain, &meta, &err) == 0)
			FAIL("truncation to %zu of %zu bytes went unnoticed", len,
			     olen);
	}
	/* And the object with bytes appended. */
	{
		uint8_t *longer = malloc(olen + 1), *plain = NULL;
		struct drgw_obj_meta meta;
		struct drgw_err err;

		memcpy(longer, obj, olen);
		longer[olen] = 0;
		CHECK(decode(&kr, longer, olen + 1, &plain, &meta, &err) != 0);
		free(longer);
	}
	free(obj);
	drgw_keyring_clear(&kr);
}

TEST(reordered_chunks_are_detected)
{
	struct drgw_keyring kr = ring(4);
	const size_t cs = 64 << 10;
	uint8_t *data = malloc(3 * cs), *plain = NULL, *obj, *tmp;
	struct drgw_obj_meta meta;
	struct drgw_err err;
	size_t olen, clen, hl;

	/* Random data: every chunk stores the same number of bytes, so a
	 * swap keeps all offsets valid and only the AEAD can notice. */
	fill(data, 3 * cs, false);
	obj = encode(&kr, data, 3 * cs, (uint32_t)cs, 3, NULL, &olen);
	CHECK_OK(decode(&kr, obj, olen, &plain, &meta, &err));
	free(plain);
	/* The three chunks are equal; the footer starts after them. */
	{
		struct drgw_obj_trailer t = framing(obj, olen);

		hl = t.header_len;
		clen = (size_t)(t.footer_off - hl) / 3;
		CHECK_INT(clen * 3 + hl, ==, t.footer_off);
	}
	tmp = malloc(clen);
	memcpy(tmp, obj + hl, clen);
	memcpy(obj + hl, obj + hl + clen, clen);
	memcpy(obj + hl + clen, tmp, clen);
	CHECK_INT(decode(&kr, obj, olen, &plain, &meta, &err), ==, -EBADMSG);
	CHECK_CONTAINS(err.msg, "authentication");
	free(tmp);
	free(obj);
	free(data);
	drgw_keyring_clear(&kr);
}

TEST(footer_from_another_object_is_detected)
{
	struct drgw_keyring kr = ring(5);
	uint8_t data[100000], *plain = NULL;
	struct drgw_obj_meta meta;
	struct drgw_err err;
	size_t alen, blen;
	uint8_t *a, *b;

	fill(data, sizeof(data), false);
	a = encode(&kr, data, sizeof(data), 64 << 10, 3, NULL, &alen);
	b = encode(&kr, data, sizeof(data), 64 << 10, 3, NULL, &blen);
	CHECK_INT(alen, ==, blen);
	/* Same key, same sizes, same name: only the file key differs.
	 * Graft b's footer (and tail) onto a's chunks, and the reverse. */
	{
		struct drgw_obj_trailer t = framing(a, alen);

		memcpy(a + t.footer_off, b + t.footer_off, t.footer_len);
		CHECK_INT(decode(&kr, a, alen, &plain, &meta, &err), ==, -EBADMSG);
		memcpy(a + t.footer_off, b + t.footer_off,
		       alen - t.footer_off);
		CHECK(decode(&kr, a, alen, &plain, &meta, &err) != 0);
	}
	free(a);
	free(b);
	drgw_keyring_clear(&kr);
}

TEST(wrong_key_names_what_the_object_is_encrypted_to)
{
	struct drgw_keyring kr = ring(6), other = ring(7), both = ring(7);
	uint8_t data[1000], *plain = NULL;
	struct drgw_obj_meta meta;
	struct drgw_err err;
	char want[17];
	size_t olen;
	uint8_t *obj;

	fill(data, sizeof(data), true);
	obj = encode(&kr, data, sizeof(data), 64 << 10, 3, NULL, &olen);
	CHECK_INT(decode(&other, obj, olen, &plain, &meta, &err), ==, -ENOKEY);
	drgw_key_id_hex(kr.keys[0].id, want);
	CHECK_CONTAINS(err.msg, want);
	CHECK_CONTAINS(err.msg, "none of your keys");
	/* A keyring holding the old key as a second key reads it. */
	CHECK_OK(drgw_keyring_add_bytes(&both, kr.keys[0].key));
	CHECK_OK(decode(&both, obj, olen, &plain, &meta, &err));
	CHECK(memcmp(plain, data, sizeof(data)) == 0);
	free(plain);
	free(obj);
	drgw_keyring_clear(&kr);
	drgw_keyring_clear(&other);
	drgw_keyring_clear(&both);
}

TEST(trailer_offsets_that_wrap_around_are_rejected)
{
	struct drgw_keyring kr = ring(9);
	struct drgw_obj_trailer t;
	struct drgw_err err = { 0 };
	uint8_t data[5000], *obj, *tr;
	size_t olen;

	fill(data, sizeof(data), false);
	obj = encode(&kr, data, sizeof(data), 64 << 10, 3, NULL, &olen);
	tr = obj + olen - DRGW_OBJ_TRAILER2_SIZE;
	/* footer_off + footer_len + tail wraps to the object size: a reader
	 * that trusted it would read far before its buffer. */
	t = framing(obj, olen);
	{
		/* footer_off = 2^64 - k, footer_len = size - tail + k: the sum
		 * wraps around to exactly the object size. */
		size_t tail = t.header_len + DRGW_OBJ_TRAILER2_SIZE;
		uint64_t k = 4096, foff = (uint64_t)0 - k;
		uint32_t flen = (uint32_t)(olen - tail + k);

		for (int i = 0; i < 8; i++)
			tr[i] = (uint8_t)(foff >> (8 * i));
		for (int i = 0; i < 4; i++)
			tr[16 + i] = (uint8_t)(flen >> (8 * i));
		CHECK_INT(drgw_obj_parse_tail(obj, olen, olen, &t, &err), ==,
			  -EIO);
	}
	free(obj);
	drgw_keyring_clear(&kr);
}

TEST(foreign_bytes_are_not_an_object)
{
	struct drgw_keyring kr = ring(8);
	uint8_t junk[4096], *plain = NULL;
	struct drgw_obj_meta meta;
	struct drgw_err err;

	randombytes_buf(junk, sizeof(junk));
	CHECK_INT(decode(&kr, junk, sizeof(junk), &plain, &meta, &err), ==, -EIO);
	CHECK_CONTAINS(err.msg, "drgw object");
	drgw_keyring_clear(&kr);
}

/* docs/FORMAT.md, "Test vectors": version 1, key bytes 0x00..0x1f, salt
 * 0x20..0x3f; version 2, the same key and an identity 0x40..0x5f. */
#include "format_vector.h"
#include "format_vector_v2.h"

TEST(published_test_vector_v1_decodes)
{
	struct drgw_keyring kr = ring(0);
	struct drgw_obj_meta meta;
	struct drgw_err err;
	uint8_t *plain = NULL;

	if (decode(&kr, format_vector, sizeof(format_vector), &plain, &meta,
		   &err))
		FAIL("test vector: %s", err.msg);
	CHECK_INT(meta.size, ==, strlen(FORMAT_VECTOR_PLAINTEXT));
	CHECK(memcmp(plain, FORMAT_VECTOR_PLAINTEXT, meta.size) == 0);
	CHECK_STR(meta.name, "backup/app-20260101.db");
	CHECK_STR(meta.vid, "20260101T000000Z-00000000");
	CHECK_INT(meta.mode, ==, 0600);
	CHECK_INT(meta.mtime_ns, ==, 1767225600LL * 1000000000LL);
	CHECK_INT(meta.created_ns, ==, 1767225601LL * 1000000000LL);
	free(plain);
	drgw_keyring_clear(&kr);
}

TEST(encoding_is_deterministic_for_fixed_randomness)
{
	struct drgw_keyring kr = ring(0);
	struct drgw_obj_fixed fixed;
	uint8_t data[200000];
	size_t alen, blen;
	uint8_t *a, *b;

	memset(&fixed, 0x5a, sizeof(fixed));
	fill(data, sizeof(data), true);
	/* Threads finish chunks in any order; the output must not care. */
	a = encode(&kr, data, sizeof(data), 64 << 10, 3, &fixed, &alen);
	b = encode(&kr, data, sizeof(data), 64 << 10, 3, &fixed, &blen);
	CHECK_INT(alen, ==, blen);
	CHECK(memcmp(a, b, alen) == 0);
	free(a);
	free(b);
	drgw_keyring_clear(&kr);
}

/* A footer whose name has a NUL inside is refused, not read as the name
 * before the NUL (which could be another snapshot's). */
TEST(footer_name_with_nul_is_refused)
{
	static const char name[] = "app.db\0evil", vid[] = "v1";
	uint8_t p[76 + sizeof(name) - 1 + sizeof(vid) - 1];
	struct drgw_obj_index idx;
	struct drgw_err err = { 0 };

	memset(p, 0, sizeof(p));
	p[0] = 1;			     /* footer version */
	p[72] = (uint8_t)(sizeof(name) - 1); /* name length */
	p[74] = (uint8_t)(sizeof(vid) - 1);  /* vid length */
	memcpy(p + 76, name, sizeof(name) - 1);
	memcpy(p + 76 + sizeof(name) - 1, vid, sizeof(vid) - 1);
	CHECK_INT(drgw_obj_parse_footer(1, p, sizeof(p), 0, DRGW_OBJ_HEADER_SIZE,
					64 << 10, DRGW_OBJ_HEADER_SIZE, &idx,
					&err),
		  ==, -EIO);
	/* The same footer with a clean name parses: the check is the NUL. */
	p[76 + 6] = '-';
	CHECK_OK(drgw_obj_parse_footer(1, p, sizeof(p), 0, DRGW_OBJ_HEADER_SIZE,
				       64 << 10, DRGW_OBJ_HEADER_SIZE, &idx,
				       &err));
	CHECK_STR(idx.meta.name, "app.db-evil");
	drgw_obj_index_clear(&idx);
}

static struct drgw_keyring identity_ring(uint8_t seed)
{
	struct drgw_keyring kr = { 0 };
	uint8_t sk[32];

	for (int i = 0; i < 32; i++)
		sk[i] = (uint8_t)(seed + i);
	CHECK_OK(drgw_keyring_add_identity_bytes(&kr, sk));
	return kr;
}

/* A ring that only encrypts: the recipients of ids. */
static struct drgw_keyring recipients_of(const struct drgw_keyring *a,
					 const struct drgw_keyring *b)
{
	struct drgw_keyring kr = { 0 };
	struct drgw_err err = { 0 };
	char s[DRGW_RECIPIENT_STR_MAX];

	drgw_recipient_string(a->ids[0].pk, s);
	CHECK_OK(drgw_keyring_add_recipient(&kr, s, &err));
	if (b) {
		drgw_recipient_string(b->ids[0].pk, s);
		CHECK_OK(drgw_keyring_add_recipient(&kr, s, &err));
	}
	return kr;
}

TEST(published_test_vector_v2_decodes_with_the_key_or_the_identity)
{
	struct drgw_keyring key = ring(0), id = identity_ring(0x40);
	struct drgw_keyring both = ring(0);
	const uint8_t *rings[3];
	char recipient[DRGW_RECIPIENT_STR_MAX];
	struct drgw_obj_meta meta;
	struct drgw_err err;
	uint8_t *plain = NULL;

	drgw_recipient_string(id.ids[0].pk, recipient);
	CHECK_STR(recipient, FORMAT_VECTOR_V2_RECIPIENT);
	CHECK_OK(drgw_keyring_add_identity_bytes(&both, id.ids[0].sk));
	rings[0] = (const uint8_t *)&key;
	rings[1] = (const uint8_t *)&id;
	rings[2] = (const uint8_t *)&both;
	for (int i = 0; i < 3; i++) {
		const struct drgw_keyring *kr = (const void *)rings[i];

		if (decode(kr, format_vector_v2, sizeof(format_vector_v2),
			   &plain, &meta, &err))
			FAIL("v2 vector with ring %d: %s", i, err.msg);
		CHECK_INT(meta.size, ==, strlen(FORMAT_VECTOR_PLAINTEXT));
		CHECK(memcmp(plain, FORMAT_VECTOR_PLAINTEXT, meta.size) == 0);
		CHECK_STR(meta.name, "backup/app-20260101.db");
		CHECK_STR(meta.vid, "20260101T000000Z-00000000");
		CHECK_INT(meta.mode, ==, 0600);
		CHECK_INT(meta.mtime_ns, ==, 1767225600LL * 1000000000LL);
		CHECK_INT(meta.created_ns, ==, 1767225601LL * 1000000000LL);
		CHECK_INT(meta.version, ==, 2);
		free(plain);
	}
	/* One ring reads both versions: old objects stay readable. */
	CHECK_OK(decode(&both, format_vector, sizeof(format_vector), &plain,
			&meta, &err));
	free(plain);
	drgw_keyring_clear(&key);
	drgw_keyring_clear(&id);
	drgw_keyring_clear(&both);
}

TEST(a_writer_with_recipients_only_cannot_read_back)
{
	struct drgw_keyring a = identity_ring(1), b = identity_ring(2);
	struct drgw_keyring c = identity_ring(3);
	struct drgw_keyring writer = recipients_of(&a, &b);
	uint8_t data[300000], *plain = NULL, *obj;
	struct drgw_obj_meta meta;
	struct drgw_err err;
	char tag[17];
	size_t olen;

	CHECK(drgw_keyring_can_encrypt(&writer));
	CHECK(!drgw_keyring_can_decrypt(&writer));
	fill(data, sizeof(data), true);
	obj = encode(&writer, data, sizeof(data), 64 << 10, 3, NULL, &olen);
	/* The writer holds no secret: it cannot open its own object. */
	CHECK_INT(decode(&writer, obj, olen, &plain, &meta, &err), ==, -ENOKEY);
	/* Each recipient's identity alone decrypts. */
	CHECK_OK(decode(&a, obj, olen, &plain, &meta, &err));
	CHECK(memcmp(plain, data, sizeof(data)) == 0);
	free(plain);
	CHECK_OK(decode(&b, obj, olen, &plain, &meta, &err));
	CHECK(memcmp(plain, data, sizeof(data)) == 0);
	free(plain);
	/* A third identity does not, and is told what would. */
	CHECK_INT(decode(&c, obj, olen, &plain, &meta, &err), ==, -ENOKEY);
	drgw_hex(a.ids[0].tag, 8, tag);
	CHECK_CONTAINS(err.msg, tag);
	drgw_hex(b.ids[0].tag, 8, tag);
	CHECK_CONTAINS(err.msg, tag);
	CHECK_CONTAINS(err.msg, "recipient");
	free(obj);
	drgw_keyring_clear(&a);
	drgw_keyring_clear(&b);
	drgw_keyring_clear(&c);
	drgw_keyring_clear(&writer);
}

/* Stanzas are part of the header: a stanza moved from another object, a
 * changed count or too many of them never open. */
TEST(tampered_stanzas_are_detected)
{
	struct drgw_keyring a = identity_ring(1), w = recipients_of(&a, NULL);
	uint8_t data[1000], *plain = NULL, *x, *y;
	struct drgw_obj_meta meta;
	struct drgw_err err;
	size_t xlen, ylen;

	fill(data, sizeof(data), false);
	x = encode(&w, data, sizeof(data), 64 << 10, 3, NULL, &xlen);
	y = encode(&w, data, sizeof(data), 64 << 10, 3, NULL, &ylen);
	{
		struct drgw_obj_trailer t = framing(x, xlen);
		size_t stanza = DRGW_OBJ_HEADER_FIXED;

		/* y's stanza in x's header and its copy: another file key. */
		memcpy(x + stanza, y + stanza, t.header_len - stanza);
		memcpy(x + xlen - DRGW_OBJ_TRAILER2_SIZE - t.header_len + stanza,
		       y + stanza, t.header_len - stanza);
		CHECK(decode(&a, x, xlen, &plain, &meta, &err) != 0);
		/* A count of 17 stanzas is refused before anything else. */
		x[21] = 17;
		x[xlen - DRGW_OBJ_TRAILER2_SIZE - t.header_len + 21] = 17;
		CHECK_INT(decode(&a, x, xlen, &plain, &meta, &err), ==, -EIO);
		CHECK_CONTAINS(err.msg, "corrupt object header");
	}
	free(x);
	free(y);
	drgw_keyring_clear(&a);
	drgw_keyring_clear(&w);
}

TEST(recipient_strings_are_checksummed)
{
	struct drgw_keyring kr = { 0 };
	struct drgw_err err = { 0 };
	char s[] = FORMAT_VECTOR_V2_RECIPIENT;

	CHECK_OK(drgw_keyring_add_recipient(&kr, s, &err));
	s[10] = s[10] == 'q' ? 'p' : 'q';	/* one typo */
	CHECK_INT(drgw_keyring_add_recipient(&kr, s, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.msg, "not a drgw recipient");
	CHECK_INT(drgw_keyring_add_recipient(&kr, "age1qqqq", &err), ==, -EINVAL);
	CHECK_INT(drgw_keyring_add_recipient(&kr, "", &err), ==, -EINVAL);
	CHECK_INT(kr.n_recips, ==, 1);
	drgw_keyring_clear(&kr);
}
