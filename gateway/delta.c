/* SPDX-License-Identifier: MIT */
/*
 * Block maps and incremental plans; see delta.h.
 *
 * A map file is
 *   "DRGWMAP1" | block u32 | depth u32 | size u64 | n_blocks u64 |
 *   n_refs u32 | n_extents u32 | refs | extents | hashes | SHA-256
 * with refs as in the footer's references extension and extents as in
 * its extents extension; the SHA-256 of everything before it catches a
 * torn or damaged file, which then counts as missing (a full object).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delta.h"

/* MAP1 maps (no key digest) fail to load: one full object per series. */
static const char map_magic[8] = { 'D', 'R', 'G', 'W', 'M', 'A', 'P', '2' };
#define MAP_FIXED 72
#define REF_LEN 57 /* + vid */
#define EXT_LEN 18

void drgw_blockmap_release(struct drgw_blockmap *m)
{
	free(m->hash);
	free(m->refs);
	free(m->extents);
	memset(m, 0, sizeof(*m));
}

int drgw_blockmap_init(struct drgw_blockmap *m, uint32_t block, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->block = block;
	m->size = size;
	m->n_blocks = size / block + (size % block != 0);
	m->hash = calloc(m->n_blocks ? m->n_blocks : 1, sizeof(*m->hash));
	return m->hash ? 0 : -ENOMEM;
}

uint32_t drgw_delta_block_size(const uint8_t *head, size_t len)
{
	uint32_t page;

	/* SQLite's header: the magic, then the page size (1 means 65536).
	 * Pages below 4 KiB are grouped into 4 KiB blocks: finer hashes
	 * would cost more map than they save. */
	if (len < 18 || memcmp(head, "SQLite format 3", 16))
		return DRGW_DELTA_BLOCK;
	page = (uint32_t)head[16] << 8 | head[17];
	if (page == 1)
		page = 65536;
	if (page < 512 || page > 65536 || (page & (page - 1)))
		return DRGW_DELTA_BLOCK;
	return page < DRGW_DELTA_BLOCK ? DRGW_DELTA_BLOCK : page;
}

/* SHA-256 fetched once: EVP_sha256() makes OpenSSL 3 look the
 * implementation up again on every call, which costs 15 % of hashing a
 * file's 4 KiB blocks. */
static EVP_MD *block_md;
static pthread_once_t block_md_once = PTHREAD_ONCE_INIT;

static void fetch_block_md(void)
{
	block_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void drgw_delta_hash(const void *data, size_t len,
		     uint8_t out[DRGW_DELTA_HASH])
{
	uint8_t full[32];

	pthread_once(&block_md_once, fetch_block_md);
	EVP_Digest(data, len, full, NULL,
		   block_md ? block_md : EVP_sha256(), NULL);
	memcpy(out, full, DRGW_DELTA_HASH);
}

/* --- plans --- */

void drgw_delta_plan_release(struct drgw_delta_plan *p)
{
	free(p->blocks);
	drgw_obj_ext_clear(&p->ext);
	memset(p, 0, sizeof(*p));
}

static uint64_t block_len(const struct drgw_blockmap *m, uint64_t i)
{
	uint64_t start = i * m->block;

	return m->size - start < m->block ? m->size - start : m->block;
}

/* Appends an extent, merging it into the last one when it continues it. */
static int add_extent(struct drgw_obj_ext *x, size_t *cap, uint64_t len,
		      uint16_t src, uint64_t src_off)
{
	struct drgw_obj_extent *e;

	if (x->n_extents) {
		e = &x->extents[x->n_extents - 1];
		if (e->src == src && e->src_off + e->len == src_off) {
			e->len += len;
			return 0;
		}
	}
	if (x->n_extents == *cap) {
		size_t c = *cap ? *cap * 2 : 64;

		e = realloc(x->extents, c * sizeof(*e));
		if (!e)
			return -ENOMEM;
		x->extents = e;
		*cap = c;
	}
	e = &x->extents[x->n_extents++];
	e->file_off = 0; /* set when the footer is parsed */
	e->len = len;
	e->src = src;
	e->src_off = src_off;
	return 0;
}

int drgw_delta_plan(const struct drgw_blockmap *next,
		    const struct drgw_blockmap *base,
		    const struct drgw_delta_limits *lim,
		    struct drgw_delta_plan *ret)
{
	struct drgw_delta_plan p = { 0 };
	/* base ref index -> footer source (1-based), 0 while unused */
	uint16_t *src_of = NULL;
	size_t cap = 0, be = 0;
	uint64_t be_start = 0, data = 0, read;
	int r = 0;

	if (next->block != base->block || base->depth + 1 > lim->max_depth ||
	    !base->n_refs)
		return -E2BIG;
	p.blocks = malloc((next->n_blocks ? next->n_blocks : 1) *
			  sizeof(*p.blocks));
	src_of = calloc(base->n_refs, sizeof(*src_of));
	if (!p.blocks || !src_of) {
		r = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; r == 0 && i < next->n_blocks; i++) {
		uint64_t off = i * next->block, len = block_len(next, i);
		const struct drgw_obj_extent *e;

		if (i >= base->n_blocks || block_len(base, i) != len ||
		    memcmp(next->hash[i], base->hash[i], DRGW_DELTA_HASH)) {
			p.blocks[p.n_blocks++] = i;
			r = add_extent(&p.ext, &cap, len, 0, data);
			data += len;
			continue;
		}
		/* Where the base stores block i: walk its extents along. */
		while (be < base->n_extents &&
		       be_start + base->extents[be].len <= off)
			be_start += base->extents[be++].len;
		if (be == base->n_extents ||
		    base->extents[be].src >= base->n_refs) {
			r = -EIO; /* a map that does not cover its file */
			break;
		}
		e = &base->extents[be];
		if (!src_of[e->src]) {
			if (p.ext.n_refs + 1 >= DRGW_OBJ_REFS_MAX) {
				r = -E2BIG;
				break;
			}
			src_of[e->src] = (uint16_t)++p.ext.n_refs;
		}
		r = add_extent(&p.ext, &cap, len, src_of[e->src],
			       e->src_off + (off - be_start));
	}
	if (r == 0 && (double)data > lim->max_changed * (double)next->size)
		r = -E2BIG;
	read = data;
	for (size_t k = 0; r == 0 && k < base->n_refs; k++)
		if (src_of[k])
			read += base->refs[k].data_size;
	if (r == 0 && lim->max_read > 0 &&
	    (double)read > lim->max_read * (double)next->size)
		r = -E2BIG;
	if (r == 0 && p.ext.n_refs == 0)
		r = -E2BIG; /* nothing unchanged: a full object is simpler */
	if (r == 0) {
		p.ext.refs = calloc(p.ext.n_refs, sizeof(*p.ext.refs));
		if (!p.ext.refs)
			r = -ENOMEM;
		for (size_t k = 0; r == 0 && k < base->n_refs; k++)
			if (src_of[k])
				p.ext.refs[src_of[k] - 1] = base->refs[k];
	}
	p.data_size = data;
	p.ext.data_size = data;
	p.ext.block_size = next->block;
out:
	free(src_of);
	if (r < 0) {
		drgw_delta_plan_release(&p);
		return r;
	}
	*ret = p;
	return 0;
}

int drgw_blockmap_locate(struct drgw_blockmap *next,
			 const struct drgw_delta_plan *plan,
			 const struct drgw_blockmap *base,
			 const struct drgw_obj_ref *self)
{
	size_t n_refs = plan ? plan->ext.n_refs + 1 : 1;
	size_t n_ext = plan ? plan->ext.n_extents : 1;

	free(next->refs);
	free(next->extents);
	next->refs = calloc(n_refs, sizeof(*next->refs));
	next->extents = calloc(n_ext, sizeof(*next->extents));
	if (!next->refs || !next->extents)
		return -ENOMEM;
	next->n_refs = n_refs;
	next->n_extents = n_ext;
	/* The map's refs: the plan's references, then the object itself. */
	next->refs[n_refs - 1] = *self;
	if (!plan) {
		next->extents[0].len = next->size;
		next->depth = 0;
		return 0;
	}
	for (size_t k = 0; k < plan->ext.n_refs; k++)
		next->refs[k] = plan->ext.refs[k];
	for (size_t i = 0; i < n_ext; i++) {
		next->extents[i] = plan->ext.extents[i];
		next->extents[i].src = plan->ext.extents[i].src == 0 ?
					       (uint16_t)(n_refs - 1) :
					       (uint16_t)(plan->ext.extents[i].src - 1);
	}
	next->depth = base->depth + 1;
	return 0;
}

/* --- files --- */

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

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

int drgw_blockmap_save(int dir_fd, const char *vid,
		       const struct drgw_blockmap *m)
{
	size_t len = MAP_FIXED + m->n_extents * EXT_LEN +
		     m->n_blocks * DRGW_DELTA_HASH + 32;
	char name[128], tmp[140];
	uint8_t *buf, *p;
	int fd, r;

	for (size_t k = 0; k < m->n_refs; k++)
		len += REF_LEN + strlen(m->refs[k].vid);
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, map_magic, 8);
	put_u32(buf + 8, m->block);
	put_u32(buf + 12, m->depth);
	put_u64(buf + 16, m->size);
	put_u64(buf + 24, m->n_blocks);
	put_u32(buf + 32, (uint32_t)m->n_refs);
	put_u32(buf + 36, (uint32_t)m->n_extents);
	memcpy(buf + 40, m->keys, 32);
	p = buf + MAP_FIXED;
	for (size_t k = 0; k < m->n_refs; k++) {
		size_t vl = strlen(m->refs[k].vid);

		memcpy(p, m->refs[k].object_id, 16);
		memcpy(p + 16, m->refs[k].header_sha256, 32);
		put_u64(p + 48, m->refs[k].data_size);
		p[56] = (uint8_t)vl;
		memcpy(p + 57, m->refs[k].vid, vl);
		p += REF_LEN + vl;
	}
	for (size_t i = 0; i < m->n_extents; i++, p += EXT_LEN) {
		put_u64(p, m->extents[i].len);
		put_u16(p + 8, m->extents[i].src);
		put_u64(p + 10, m->extents[i].src_off);
	}
	if (m->n_blocks)
		memcpy(p, m->hash, m->n_blocks * DRGW_DELTA_HASH);
	p += m->n_blocks * DRGW_DELTA_HASH;
	EVP_Digest(buf, (size_t)(p - buf), p, NULL, EVP_sha256(), NULL);

	snprintf(name, sizeof(name), "%s.map", vid);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	r = fd < 0 ? -errno : drgw_write_full(fd, buf, len);
	if (fd >= 0)
		close(fd);
	/* No fsync: a map lost to a power cut only costs one full object. */
	if (r == 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dir_fd, tmp, 0);
	free(buf);
	return r;
}

int drgw_blockmap_load(int dir_fd, const char *vid, struct drgw_blockmap *ret)
{
	struct drgw_blockmap m = { 0 };
	char name[128];
	uint8_t sha[32], *buf = NULL;
	const uint8_t *p, *end;
	struct stat st;
	int fd, r = -EIO;

	snprintf(name, sizeof(name), "%s.map", vid);
	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size < MAP_FIXED + 32 ||
	    !(buf = malloc((size_t)st.st_size)) ||
	    drgw_pread_exact(fd, buf, (size_t)st.st_size, 0) < 0)
		goto out;
	end = buf + st.st_size - 32;
	EVP_Digest(buf, (size_t)(end - buf), sha, NULL, EVP_sha256(), NULL);
	if (memcmp(sha, end, 32) || memcmp(buf, map_magic, 8))
		goto out;
	m.block = get_u32(buf + 8);
	m.depth = get_u32(buf + 12);
	m.size = get_u64(buf + 16);
	m.n_blocks = get_u64(buf + 24);
	m.n_refs = get_u32(buf + 32);
	m.n_extents = get_u32(buf + 36);
	memcpy(m.keys, buf + 40, 32);
	if (!m.block || m.n_blocks != m.size / m.block + (m.size % m.block != 0) ||
	    m.n_refs == 0 || m.n_refs > DRGW_OBJ_REFS_MAX ||
	    m.n_extents > (uint64_t)(end - buf) / EXT_LEN ||
	    m.n_blocks > (uint64_t)(end - buf) / DRGW_DELTA_HASH)
		goto out;
	m.refs = calloc(m.n_refs, sizeof(*m.refs));
	m.extents = calloc(m.n_extents ? m.n_extents : 1, sizeof(*m.extents));
	m.hash = calloc(m.n_blocks ? m.n_blocks : 1, sizeof(*m.hash));
	if (!m.refs || !m.extents || !m.hash) {
		r = -ENOMEM;
		goto out;
	}
	p = buf + MAP_FIXED;
	for (size_t k = 0; k < m.n_refs; k++) {
		size_t vl;

		if (end - p < REF_LEN || (vl = p[56]) > DRGW_OBJ_VID_MAX ||
		    end - p < (ptrdiff_t)(REF_LEN + vl))
			goto out;
		memcpy(m.refs[k].object_id, p, 16);
		memcpy(m.refs[k].header_sha256, p + 16, 32);
		m.refs[k].data_size = get_u64(p + 48);
		memcpy(m.refs[k].vid, p + 57, vl);
		m.refs[k].vid[vl] = '\0';
		p += REF_LEN + vl;
	}
	if ((uint64_t)(end - p) != m.n_extents * EXT_LEN +
					   m.n_blocks * DRGW_DELTA_HASH)
		goto out;
	for (size_t i = 0; i < m.n_extents; i++, p += EXT_LEN) {
		m.extents[i].len = get_u64(p);
		m.extents[i].src = (uint16_t)(p[8] | p[9] << 8);
		m.extents[i].src_off = get_u64(p + 10);
		if (m.extents[i].src >= m.n_refs)
			goto out;
	}
	if (m.n_blocks)
		memcpy(m.hash, p, m.n_blocks * DRGW_DELTA_HASH);
	r = 0;
out:
	close(fd);
	free(buf);
	if (r < 0) {
		drgw_blockmap_release(&m);
		return r;
	}
	*ret = m;
	return 0;
}
