/* SPDX-License-Identifier: MIT */
/*
 * Parallel encoder; see encode.h.
 *
 * Workers claim chunk indices in order and each uses a ring slot
 * (index % nslots) for its plaintext and sealed output.  The calling thread
 * drains the ring in index order: it hashes the plaintext, writes the sealed
 * chunk and frees the slot.  The ring bounds memory to nslots chunks
 * whatever the file size, and the in-order drain keeps the output
 * sequential, so the object is written with plain appends.
 *
 * An incremental object takes two passes over the file: the first only
 * hashes (the blocks, on the workers, and the whole file, on the drain),
 * the plan then says which blocks changed, and the second reads just those
 * blocks (still in the page cache) and seals them as the object's data.
 * A full object is one pass that hashes the blocks on the side, for the
 * next version's plan.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "encode.h"
#include "testhook.h"

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

/* What a pass does with each chunk. */
enum pass {
	PASS_FULL,	/* read the file, seal (and hash blocks, with a map) */
	PASS_HASH,	/* read the file, hash blocks; nothing is written */
	PASS_DATA,	/* read the plan's blocks, seal */
};

struct slot {
	enum slot_state state;
	uint64_t index;
	uint8_t *plain;
	size_t plain_len;
	uint8_t *out;
	size_t out_len;
};

struct job {
	/* Immutable during the run. */
	enum pass pass;
	int in_fd;
	const struct drgw_obj *obj;
	int level;
	uint64_t size;		/* bytes this pass reads */
	uint64_t n_chunks;
	size_t out_cap;
	unsigned nslots;
	struct slot *slots;
	struct drgw_blockmap *map;	/* hashes to fill, or NULL */
	const uint64_t *blocks;		/* PASS_DATA: the plan's blocks */
	uint64_t n_blocks;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Protected by lock. */
	uint64_t next_index;
	int error;
	bool stop;
};

/* The plan's blocks that make up data chunk i, read from the file, with
 * runs of neighbouring blocks read at once. */
static int read_blocks(const struct job *j, uint64_t i, uint8_t *buf,
		       size_t len)
{
	uint32_t b = j->map->block;
	uint64_t k = i * (j->obj->chunk_size / b), end = k;
	size_t at = 0;

	while (at < len) {
		uint64_t first = j->blocks[k], run_len = 0;
		size_t want;
		int r;

		/* Extend the run while the blocks are consecutive. */
		for (end = k; end < j->n_blocks &&
			      j->blocks[end] == first + (end - k) &&
			      at + run_len < len;
		     end++)
			run_len += b;
		want = at + run_len > len ? len - at : (size_t)run_len;
		r = drgw_pread_exact(j->in_fd, buf + at, want, first * b);
		if (r < 0)
			return r == -EIO ? -ESTALE : r; /* shrank under us */
		at += want;
		k = end;
	}
	return 0;
}

static void hash_blocks(const struct job *j, uint64_t i, const uint8_t *plain,
			size_t len)
{
	uint32_t b = j->map->block;
	uint64_t first = i * (j->obj->chunk_size / b);

	for (size_t off = 0, k = 0; off < len; off += b, k++)
		drgw_delta_hash(plain + off, len - off < b ? len - off : b,
				j->map->hash[first + k]);
}

static void *worker(void *arg)
{
	struct job *j = arg;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();

	pthread_mutex_lock(&j->lock);
	if (!cctx && !j->error)
		j->error = -ENOMEM;
	for (;;) {
		struct slot *s;
		uint64_t i;
		ssize_t n;
		int r = 0;

		while (!j->stop && !j->error && j->next_index < j->n_chunks &&
		       j->slots[j->next_index % j->nslots].state != SLOT_FREE)
			pthread_cond_wait(&j->cond, &j->lock);
		if (j->stop || j->error || j->next_index >= j->n_chunks)
			break;
		i = j->next_index++;
		s = &j->slots[i % j->nslots];
		s->state = SLOT_BUSY;
		s->index = i;
		s->plain_len = drgw_obj_chunk_plain_len(j->size,
							j->obj->chunk_size, i);
		pthread_mutex_unlock(&j->lock);

		if (j->pass == PASS_DATA) {
			r = read_blocks(j, i, s->plain, s->plain_len);
		} else {
			n = drgw_pread_full(j->in_fd, s->plain, s->plain_len,
					    i * j->obj->chunk_size);
			if (n < 0)
				r = (int)n;
			else if ((size_t)n != s->plain_len)
				r = -ESTALE; /* the file shrank under us */
			if (r == 0 && j->map)
				hash_blocks(j, i, s->plain, s->plain_len);
		}
		if (r == 0 && j->pass != PASS_HASH)
			r = drgw_obj_seal_chunk(j->obj, cctx, j->level, i,
						s->plain, s->plain_len, s->out,
						j->out_cap, &s->out_len);

		pthread_mutex_lock(&j->lock);
		if (r < 0 && !j->error)
			j->error = r;
		s->state = SLOT_DONE;
		pthread_cond_broadcast(&j->cond);
	}
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	ZSTD_freeCCtx(cctx);
	return NULL;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
}

/* Writes and hashes the object bytes. */
struct out {
	int fd;
	uint64_t written;
	EVP_MD_CTX *sha;
	const struct drgw_encode_opts *opts;
};

static int emit(struct out *o, const void *buf, size_t len)
{
	int r = drgw_write_full(o->fd, buf, len);

	if (r < 0)
		return r;
	EVP_DigestUpdate(o->sha, buf, len);
	o->written += len;
	if (o->opts->progress)
		o->opts->progress(o->opts->progress_arg, o->written);
	return 0;
}

/* Drains the ring in order.  Runs on the calling thread. */
static int drain(struct job *j, struct out *o, EVP_MD_CTX *plain_sha,
		 uint32_t *chunk_lens, const struct drgw_encode_opts *opts)
{
	for (uint64_t i = 0; i < j->n_chunks; i++) {
		struct slot *s = &j->slots[i % j->nslots];
		int r;

		pthread_mutex_lock(&j->lock);
		while (!j->error && !(s->state == SLOT_DONE && s->index == i))
			pthread_cond_wait(&j->cond, &j->lock);
		r = j->error;
		pthread_mutex_unlock(&j->lock);
		if (r < 0)
			return r;

		if (j->pass != PASS_DATA)
			EVP_DigestUpdate(plain_sha, s->plain, s->plain_len);
		if (j->pass != PASS_HASH) {
			r = emit(o, s->out, s->out_len);
			if (r < 0)
				return r;
			chunk_lens[i] = (uint32_t)s->out_len;
			drgw_test_point("encode-chunk");
		}
		if (opts->check && (r = opts->check(opts->check_arg)) < 0)
			return r;

		pthread_mutex_lock(&j->lock);
		s->state = SLOT_FREE;
		pthread_cond_broadcast(&j->cond);
		pthread_mutex_unlock(&j->lock);
	}
	return 0;
}

/* Runs one pass over size bytes with nthreads workers. */
static int run_pass(struct job *j, unsigned nthreads, struct out *o,
		    EVP_MD_CTX *plain_sha, uint32_t *chunk_lens,
		    const struct drgw_encode_opts *opts)
{
	pthread_t *tids = calloc(nthreads, sizeof(*tids));
	unsigned started = 0;
	int r = -ENOMEM;

	if (!tids)
		return r;
	j->n_chunks = drgw_obj_chunk_count(j->size, j->obj->chunk_size);
	j->next_index = 0;
	j->error = 0;
	j->stop = false;
	for (unsigned i = 0; i < j->nslots; i++)
		j->slots[i].state = SLOT_FREE;
	for (; started < nthreads && started < j->n_chunks; started++) {
		if (pthread_create(&tids[started], NULL, worker, j)) {
			r = -EAGAIN;
			break;
		}
	}
	if (started > 0 || j->n_chunks == 0)
		r = drain(j, o, plain_sha, chunk_lens, opts);

	pthread_mutex_lock(&j->lock);
	j->stop = true;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	return r;
}

static int finish(struct job *j, struct out *o, struct drgw_obj_meta *meta,
		  const uint32_t *chunk_lens, const struct drgw_obj_ext *ext)
{
	uint8_t tail[DRGW_OBJ_HEADER_MAX + DRGW_OBJ_TRAILER2_SIZE];
	uint8_t *footer = NULL;
	size_t footer_len;
	uint64_t footer_off = o->written;
	int r;

	r = drgw_obj_seal_footer(j->obj, meta, j->n_chunks, chunk_lens, ext,
				 &footer, &footer_len);
	if (r < 0)
		return r;
	r = emit(o, footer, footer_len);
	free(footer);
	if (r < 0)
		return r;
	drgw_obj_make_tail(j->obj, footer_off, (uint32_t)footer_len,
			   j->n_chunks, tail);
	return emit(o, tail, drgw_obj_tail_size(j->obj));
}

/* Is the input still meta->size bytes long (not grown while read)? */
static int same_size(int in_fd, const struct drgw_obj_meta *meta)
{
	struct stat st;

	return fstat(in_fd, &st) == 0 && (uint64_t)st.st_size == meta->size ?
		       0 :
		       -ESTALE;
}

int drgw_encode(int in_fd, struct drgw_obj_meta *meta,
		const struct drgw_keyring *kr,
		const struct drgw_encode_opts *opts, int out_fd,
		struct drgw_encode_result *ret, struct drgw_err *err)
{
	static const uint8_t no_repo[DRGW_REPO_ID_BYTES];
	struct drgw_obj obj;
	struct job j = { 0 };
	struct out o = { .fd = out_fd, .opts = opts };
	struct drgw_delta_plan plan = { 0 };
	struct drgw_obj_ext notes = { 0 }, *ext;
	struct drgw_blockmap *map = &ret->map;
	struct drgw_obj_ref self = { 0 };
	bool have_plan = false;
	EVP_MD_CTX *plain_sha = NULL;
	uint32_t *chunk_lens = NULL;
	unsigned nthreads;
	int r;

	memset(ret, 0, sizeof(*ret));
	nthreads = opts->threads ? opts->threads : default_threads();
	r = drgw_obj_init_new(&obj, kr, opts->repo ? opts->repo : no_repo,
			      opts->kind ? opts->kind : DRGW_OBJ_SNAPSHOT,
			      drgw_obj_pick_chunk_size(opts->chunk_size,
						       meta->size),
			      opts->fixed);
	if (r < 0) {
		drgw_err_set(err, r == -ENOKEY ?
				  "no key and no recipient to encrypt to" :
				  "cannot start an object: %s",
			     strerror(-r));
		return r;
	}
	j.in_fd = in_fd;
	j.obj = &obj;
	j.level = opts->level;
	j.out_cap = drgw_obj_chunk_bound(obj.chunk_size);
	j.nslots = 2 * nthreads + 2;
	pthread_mutex_init(&j.lock, NULL);
	pthread_cond_init(&j.cond, NULL);

	r = -ENOMEM;
	plain_sha = EVP_MD_CTX_new();
	o.sha = EVP_MD_CTX_new();
	j.slots = calloc(j.nslots, sizeof(*j.slots));
	chunk_lens = malloc((drgw_obj_chunk_count(meta->size, obj.chunk_size) + 1) *
			    sizeof(*chunk_lens));
	if (!plain_sha || !o.sha || !j.slots || !chunk_lens)
		goto out;
	for (unsigned i = 0; i < j.nslots; i++) {
		j.slots[i].plain = malloc(obj.chunk_size);
		j.slots[i].out = malloc(j.out_cap);
		if (!j.slots[i].plain || !j.slots[i].out)
			goto out;
	}
	/* Blocks are hashed for the next version's plan; they must tile the
	 * chunks. */
	if (opts->block && obj.chunk_size % opts->block == 0) {
		r = drgw_blockmap_init(map, opts->block, meta->size);
		if (r < 0)
			goto out;
		j.map = map;
	}
	EVP_DigestInit_ex(plain_sha, EVP_sha256(), NULL);
	EVP_DigestInit_ex(o.sha, EVP_sha256(), NULL);

	if (opts->base && j.map) {
		/* Pass 1: hashes only.  Then the plan; without one (too much
		 * changed, chain too long) a full object after all. */
		j.pass = PASS_HASH;
		j.size = meta->size;
		r = run_pass(&j, nthreads, &o, plain_sha, chunk_lens, opts);
		if (r == 0)
			r = same_size(in_fd, meta);
		if (r < 0)
			goto out;
		have_plan = drgw_delta_plan(map, opts->base, &opts->limits,
					    &plan) == 0;
		j.map = NULL; /* hashed already */
	}
	r = emit(&o, obj.header, obj.header_len);
	if (r < 0)
		goto out;
	if (have_plan) {
		j.pass = PASS_DATA;
		j.map = map;
		j.blocks = plan.blocks;
		j.n_blocks = plan.n_blocks;
		j.size = plan.data_size;
	} else {
		j.pass = PASS_FULL;
		j.size = meta->size;
		if (opts->base) {
			/* The file's hash was taken in pass 1. */
			EVP_DigestInit_ex(plain_sha, EVP_sha256(), NULL);
		}
	}
	r = run_pass(&j, nthreads, &o, plain_sha, chunk_lens, opts);
	if (r < 0)
		goto out;

	/* A file that grew while we read it was being written again. */
	r = same_size(in_fd, meta);
	if (r < 0)
		goto out;
	EVP_DigestFinal_ex(plain_sha, meta->sha256, NULL);
	ext = have_plan ? &plan.ext : &notes;
	if (opts->annotate)
		opts->annotate(opts->annotate_arg, ext);
	r = finish(&j, &o, meta, chunk_lens,
		   have_plan || ext->check || ext->problem ? ext : NULL);
	/* Not ours to free (see annotate). */
	ext->check = DRGW_CHECK_NONE;
	ext->check_msg = ext->problem = NULL;
	if (r < 0)
		goto out;
	EVP_DigestFinal_ex(o.sha, ret->object_sha256, NULL);
	ret->stored_size = o.written;
	ret->incremental = have_plan;
	ret->data_size = j.size;
	if (have_plan) {
		ret->n_refs = plan.ext.n_refs;
		ret->depth = opts->base->depth + 1;
	}
	if (map->hash) {
		memcpy(self.object_id, obj.object_id, 16);
		drgw_obj_header_hash(&obj, self.header_sha256);
		self.data_size = j.size;
		drgw_strlcpy(self.vid, meta->vid, sizeof(self.vid));
		r = drgw_blockmap_locate(map, have_plan ? &plan : NULL,
					 opts->base, &self);
	}
out:
	if (r == -ESTALE)
		drgw_err_set(err, "file changed while it was being encoded");
	else if (r == -ECANCELED)
		drgw_err_set(err, "encoding cancelled");
	else if (r < 0)
		drgw_err_set(err, "%s", strerror(-r));
	if (r < 0)
		drgw_blockmap_release(map);
	if (j.slots) {
		for (unsigned i = 0; i < j.nslots; i++) {
			free(j.slots[i].plain);
			free(j.slots[i].out);
		}
	}
	drgw_delta_plan_release(&plan);
	free(j.slots);
	free(chunk_lens);
	EVP_MD_CTX_free(plain_sha);
	EVP_MD_CTX_free(o.sha);
	pthread_mutex_destroy(&j.lock);
	pthread_cond_destroy(&j.cond);
	drgw_obj_clear(&obj);
	return r;
}
