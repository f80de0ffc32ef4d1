/* SPDX-License-Identifier: MIT */
/*
 * Incremental objects: plans from block maps (which blocks to store, the
 * extents and references), map files that survive a round trip and are
 * refused when damaged, and real objects: a full one, then increments
 * of it, each assembled from the objects it references and compared
 * with the file.
 */
#define TEST_MAIN
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "delta.h"
#include "encode.h"
#include "format_vector_inc.h"
#include "format_vector_text.h"

#define B 4096

static const struct drgw_delta_limits limits = { .max_changed = 0.5,
						 .max_depth = 7 };

static struct drgw_blockmap map_of(const uint8_t *data, size_t len)
{
	struct drgw_blockmap m;

	CHECK_OK(drgw_blockmap_init(&m, B, len));
	for (uint64_t i = 0; i < m.n_blocks; i++)
		drgw_delta_hash(data + i * B, len - i * B < B ? len - i * B : B,
				m.hash[i]);
	return m;
}

/* A full object's map: one extent, the object itself. */
static void locate_full(struct drgw_blockmap *m, const char *vid)
{
	struct drgw_obj_ref self = { .data_size = m->size };

	memset(self.object_id, 0xaa, 16);
	snprintf(self.vid, sizeof(self.vid), "%s", vid);
	CHECK_OK(drgw_blockmap_locate(m, NULL, NULL, &self));
}

TEST(plan_stores_only_changed_blocks)
{
	uint8_t a[10 * B], b[10 * B];
	struct drgw_blockmap base, next;
	struct drgw_delta_plan p;

	randombytes_buf(a, sizeof(a));
	memcpy(b, a, sizeof(b));
	b[3 * B + 5] ^= 1;
	b[7 * B] ^= 1;
	base = map_of(a, sizeof(a));
	locate_full(&base, "v1");
	next = map_of(b, sizeof(b));
	CHECK_OK(drgw_delta_plan(&next, &base, &limits, &p));
	CHECK_INT(p.n_blocks, ==, 2);
	CHECK_INT(p.blocks[0], ==, 3);
	CHECK_INT(p.blocks[1], ==, 7);
	CHECK_INT(p.data_size, ==, 2 * B);
	CHECK_INT(p.ext.n_refs, ==, 1);
	CHECK_STR(p.ext.refs[0].vid, "v1");
	CHECK_INT(p.ext.n_extents, ==, 5);
	/* [0,3) from v1, 3 here, [4,7) from v1, 7 here, [8,10) from v1 */
	CHECK_INT(p.ext.extents[0].src, ==, 1);
	CHECK_INT(p.ext.extents[0].len, ==, 3 * B);
	CHECK_INT(p.ext.extents[1].src, ==, 0);
	CHECK_INT(p.ext.extents[1].src_off, ==, 0);
	CHECK_INT(p.ext.extents[2].src_off, ==, 4 * B);
	CHECK_INT(p.ext.extents[3].src_off, ==, B);
	CHECK_INT(p.ext.extents[4].len, ==, 2 * B);
	drgw_delta_plan_release(&p);

	/* Everything changed: not worth it.  A chain at its limit: no. */
	memset(b, 0, sizeof(b));
	drgw_blockmap_release(&next);
	next = map_of(b, sizeof(b));
	CHECK_INT(drgw_delta_plan(&next, &base, &limits, &p), ==, -E2BIG);
	base.depth = 7;
	drgw_blockmap_release(&next);
	next = map_of(a, sizeof(a));
	CHECK_INT(drgw_delta_plan(&next, &base, &limits, &p), ==, -E2BIG);
	drgw_blockmap_release(&next);
	drgw_blockmap_release(&base);
}

/* A restore of an increment reads its base and every increment it takes
 * blocks from: the chain ends where that would pass max_read. */
TEST(plan_bounds_what_a_restore_reads)
{
	uint8_t a[10 * B], b[10 * B];
	struct drgw_blockmap base, mid, next;
	struct drgw_delta_limits lim = { .max_changed = 0.5, .max_depth = 7,
					 .max_read = 1.25 };
	struct drgw_obj_ref self = { 0 };
	struct drgw_delta_plan p;

	randombytes_buf(a, sizeof(a));
	base = map_of(a, sizeof(a));
	locate_full(&base, "v1");
	/* Two blocks changed: a restore reads v1 and them, 1.2x. */
	memcpy(b, a, sizeof(b));
	b[1 * B] ^= 1;
	b[2 * B] ^= 1;
	mid = map_of(b, sizeof(b));
	CHECK_OK(drgw_delta_plan(&mid, &base, &lim, &p));
	self.data_size = p.data_size;
	snprintf(self.vid, sizeof(self.vid), "v2");
	CHECK_OK(drgw_blockmap_locate(&mid, &p, &base, &self));
	drgw_delta_plan_release(&p);
	/* Two more, elsewhere: v1, v2's two and these two would be 1.4x. */
	b[5 * B] ^= 1;
	b[6 * B] ^= 1;
	next = map_of(b, sizeof(b));
	CHECK_INT(drgw_delta_plan(&next, &mid, &lim, &p), ==, -E2BIG);
	lim.max_read = 1.4;
	CHECK_OK(drgw_delta_plan(&next, &mid, &lim, &p));
	CHECK_INT(p.ext.n_refs, ==, 2);
	drgw_delta_plan_release(&p);
	/* No limit. */
	lim.max_read = 0;
	CHECK_OK(drgw_delta_plan(&next, &mid, &lim, &p));
	drgw_delta_plan_release(&p);
	drgw_blockmap_release(&next);
	drgw_blockmap_release(&mid);
	drgw_blockmap_release(&base);
}

TEST(map_files_round_trip_and_damage_is_refused)
{
	uint8_t a[5 * B + 100];
	struct drgw_blockmap m, got;
	char dir[] = "/tmp/drgw-test-delta-XXXXXX", path[128];
	int fd;

	randombytes_buf(a, sizeof(a));
	m = map_of(a, sizeof(a));
	locate_full(&m, "20260101T000000Z-00000001");
	CHECK(mkdtemp(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_OK(drgw_blockmap_save(fd, "v1", &m));
	CHECK_OK(drgw_blockmap_load(fd, "v1", &got));
	CHECK_INT(got.size, ==, m.size);
	CHECK_INT(got.n_blocks, ==, 6);
	CHECK(memcmp(got.hash, m.hash, 6 * DRGW_DELTA_HASH) == 0);
	CHECK_STR(got.refs[0].vid, "20260101T000000Z-00000001");
	CHECK_INT(got.extents[0].len, ==, sizeof(a));
	drgw_blockmap_release(&got);
	/* A flipped byte anywhere makes it missing, not misread. */
	snprintf(path, sizeof(path), "%s/v1.map", dir);
	{
		int f = open(path, O_RDWR | O_CLOEXEC);
		uint8_t c;

		CHECK(pread(f, &c, 1, 50) == 1);
		c ^= 1;
		CHECK(pwrite(f, &c, 1, 50) == 1);
		close(f);
	}
	CHECK_INT(drgw_blockmap_load(fd, "v1", &got), ==, -EIO);
	CHECK_INT(drgw_blockmap_load(fd, "nope", &got), ==, -ENOENT);
	unlink(path);
	close(fd);
	rmdir(dir);
	drgw_blockmap_release(&m);
}

/* --- real objects --- */

struct object {
	uint8_t *bytes;
	size_t len;
	struct drgw_blockmap map;
	bool incremental;
};

static const uint8_t repo[DRGW_REPO_ID_BYTES] = { 1, 2, 3 };

static struct object encode(const struct drgw_keyring *kr, const uint8_t *data,
			    size_t len, const char *vid,
			    const struct drgw_blockmap *base)
{
	struct drgw_encode_opts opts = { .chunk_size = 64 << 10, .level = 1,
					 .threads = 2, .repo = repo,
					 .block = B, .base = base,
					 .limits = limits };
	struct drgw_obj_meta meta = { .size = len, .mode = 0600 };
	struct drgw_encode_result res;
	struct drgw_err err = { 0 };
	struct object o = { 0 };
	int in = memfd_create("in", MFD_CLOEXEC);
	int out = memfd_create("out", MFD_CLOEXEC);

	snprintf(meta.name, sizeof(meta.name), "app.db");
	snprintf(meta.vid, sizeof(meta.vid), "%s", vid);
	CHECK_OK(drgw_write_full(in, data, len));
	if (drgw_encode(in, &meta, kr, &opts, out, &res, &err))
		FAIL("encode: %s", err.msg);
	o.len = res.stored_size;
	o.bytes = malloc(o.len);
	CHECK_INT(drgw_pread_full(out, o.bytes, o.len, 0), ==, o.len);
	o.map = res.map;
	o.incremental = res.incremental;
	close(in);
	close(out);
	return o;
}

/* The data (not the file) of an object, and its opened index. */
static uint8_t *object_data(const struct drgw_keyring *kr,
			    const struct object *ob, struct drgw_obj *o,
			    struct drgw_obj_index *idx)
{
	struct drgw_obj_trailer t;
	struct drgw_err err = { 0 };
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	uint8_t *copy = malloc(ob->len), *data;

	memcpy(copy, ob->bytes, ob->len);
	CHECK_OK(drgw_obj_parse_tail(copy, ob->len, ob->len, &t, &err));
	CHECK_OK(drgw_obj_init_header(o, t.header, t.header_len, kr, &err));
	if (drgw_obj_open_footer(o, &t, copy + t.footer_off, t.footer_len, idx,
				 &err))
		FAIL("footer: %s", err.msg);
	data = malloc(idx->ext.data_size + 1);
	for (uint64_t i = 0; i < idx->n_chunks; i++)
		CHECK_OK(drgw_obj_open_chunk(
			o, dctx, i, copy + idx->offsets[i],
			idx->offsets[i + 1] - idx->offsets[i],
			copy + idx->offsets[i], data + i * o->chunk_size,
			drgw_obj_chunk_plain_len(idx->ext.data_size,
						 o->chunk_size, i),
			&err));
	ZSTD_freeDCtx(dctx);
	free(copy);
	return data;
}

/* Assembles the file of ob from its data and that of the objects it
 * references (all in objs), as a reader does, checking each pin. */
static void check_assembles(const struct drgw_keyring *kr, struct object *objs,
			    size_t n, const struct object *ob,
			    const uint8_t *want, size_t want_len)
{
	struct drgw_obj o, ro;
	struct drgw_obj_index idx, ridx;
	uint8_t *data = object_data(kr, ob, &o, &idx), *file, sha[32];

	CHECK_INT(idx.meta.size, ==, want_len);
	file = malloc(want_len + 1);
	if (!idx.ext.extents) {
		memcpy(file, data, want_len);
	} else {
		for (size_t e = 0; e < idx.ext.n_extents; e++) {
			const struct drgw_obj_extent *x = &idx.ext.extents[e];
			const uint8_t *src = data;
			uint8_t *rdata = NULL;

			if (x->src) {
				const struct drgw_obj_ref *rf =
					&idx.ext.refs[x->src - 1];
				uint8_t hsha[32];
				size_t k;

				for (k = 0; k < n; k++) {
					rdata = object_data(kr, &objs[k], &ro, &ridx);
					if (!strcmp(ridx.meta.vid, rf->vid))
						break;
					free(rdata);
					rdata = NULL;
					drgw_obj_index_clear(&ridx);
					drgw_obj_clear(&ro);
				}
				CHECK(rdata);
				drgw_obj_header_hash(&ro, hsha);
				CHECK(memcmp(hsha, rf->header_sha256, 32) == 0);
				CHECK(memcmp(ro.object_id, rf->object_id, 16) == 0);
				CHECK_INT(ridx.ext.data_size, ==, rf->data_size);
				src = rdata;
				drgw_obj_index_clear(&ridx);
				drgw_obj_clear(&ro);
			}
			memcpy(file + x->file_off, src + x->src_off, x->len);
			free(rdata);
		}
	}
	CHECK(memcmp(file, want, want_len) == 0);
	EVP_Digest(file, want_len, sha, NULL, EVP_sha256(), NULL);
	CHECK(memcmp(sha, idx.meta.sha256, 32) == 0);
	free(file);
	free(data);
	drgw_obj_index_clear(&idx);
	drgw_obj_clear(&o);
}

TEST(increments_assemble_from_their_references)
{
	struct drgw_keyring kr = { 0 };
	uint8_t key[32];
	size_t len = 300 * B + 123;	/* spans several 64 KiB chunks */
	uint8_t *v = malloc(len);
	struct object objs[4];
	char vid[40];

	memset(key, 7, sizeof(key));
	CHECK_OK(drgw_keyring_add_bytes(&kr, key));
	randombytes_buf(v, len);
	objs[0] = encode(&kr, v, len, "20260101T000000Z-00000000", NULL);
	CHECK(!objs[0].incremental);
	for (int gen = 1; gen < 4; gen++) {
		/* A few pages change, one at the end grows the file. */
		for (int k = 0; k < 5; k++)
			v[(size_t)(gen * 37 + k * 53) % 300 * B + 17] ^= (uint8_t)gen;
		snprintf(vid, sizeof(vid), "20260101T00000%dZ-00000000", gen);
		objs[gen] = encode(&kr, v, len, vid, &objs[gen - 1].map);
		CHECK(objs[gen].incremental);
		CHECK_INT(objs[gen].map.depth, ==, gen);
		/* Flat: the full one and the increments that hold blocks. */
		CHECK_INT(objs[gen].map.n_refs, <=, gen + 1);
		CHECK_INT(objs[gen].len, <, objs[0].len / 10);
		check_assembles(&kr, objs, (size_t)gen, &objs[gen], v, len);
	}
	for (int i = 0; i < 4; i++) {
		free(objs[i].bytes);
		drgw_blockmap_release(&objs[i].map);
	}
	free(v);
	drgw_keyring_clear(&kr);
}

/* The block size follows the SQLite header's page size (1 means 65536),
 * pages under 4 KiB grouped into 4 KiB blocks; anything else, or a header
 * that is not one, gets 4 KiB. */
TEST(block_size_from_the_sqlite_header)
{
	static const struct {
		uint8_t hi, lo;
		uint32_t want;
	} cases[] = {
		{ 0x10, 0x00, 4096 },  { 0x20, 0x00, 8192 },
		{ 0x80, 0x00, 32768 }, { 0x00, 0x01, 65536 },
		{ 0x04, 0x00, 4096 },  { 0x02, 0x00, 4096 },
		{ 0x30, 0x00, 4096 },  { 0x00, 0x00, 4096 },
		{ 0x00, 0x80, 4096 },
	};
	uint8_t head[100] = "SQLite format 3";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		head[16] = cases[i].hi;
		head[17] = cases[i].lo;
		CHECK_INT(drgw_delta_block_size(head, sizeof(head)), ==,
			  cases[i].want);
	}
	CHECK_INT(drgw_delta_block_size(head, 17), ==, DRGW_DELTA_BLOCK);
	memcpy(head, "not a database!", 16);
	head[16] = 0x80;
	CHECK_INT(drgw_delta_block_size(head, sizeof(head)), ==,
		  DRGW_DELTA_BLOCK);
}

/* The incremental vector of docs/FORMAT.md: the increment, with the base
 * it references, assembles into the second text. */
TEST(published_incremental_vector_assembles)
{
	struct drgw_keyring kr = { 0 };
	struct object objs[2] = {
		{ .bytes = (uint8_t *)format_vector_inc_base,
		  .len = sizeof(format_vector_inc_base) },
		{ .bytes = (uint8_t *)format_vector_inc_next,
		  .len = sizeof(format_vector_inc_next) },
	};
	uint8_t key[32], text[VECTOR_TEXT_LEN];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	CHECK_OK(drgw_keyring_add_bytes(&kr, key));
	drgw_vector_base(text);
	check_assembles(&kr, objs, 0, &objs[0], text, sizeof(text));
	drgw_vector_next(text);
	check_assembles(&kr, objs, 1, &objs[1], text, sizeof(text));
	drgw_keyring_clear(&kr);
}
