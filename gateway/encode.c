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
	int in_fd;
	const struct drgw_obj *obj;
	int level;
	uint64_t size;
	uint64_t n_chunks;
	size_t out_cap;
	unsigned nslots;
	struct slot *slots;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Protected by lock. */
	uint64_t next_index;
	int error;
	bool stop;
};

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
		int r;

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

		n = drgw_pread_full(j->in_fd, s->plain, s->plain_len,
				    i * j->obj->chunk_size);
		if (n < 0)
			r = (int)n;
		else if ((size_t)n != s->plain_len)
			r = -ESTALE; /* the file shrank under us */
		else
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

		EVP_DigestUpdate(plain_sha, s->plain, s->plain_len);
		r = emit(o, s->out, s->out_len);
		if (r < 0)
			return r;
		chunk_lens[i] = (uint32_t)s->out_len;
		drgw_test_point("encode-chunk");
		if (opts->check && (r = opts->check(opts->check_arg)) < 0)
			return r;

		pthread_mutex_lock(&j->lock);
		s->state = SLOT_FREE;
		pthread_cond_broadcast(&j->cond);
		pthread_mutex_unlock(&j->lock);
	}
	return 0;
}

static int finish(struct job *j, struct out *o, struct drgw_obj_meta *meta,
		  const uint32_t *chunk_lens)
{
	uint8_t tail[DRGW_OBJ_HEADER_MAX + DRGW_OBJ_TRAILER2_SIZE];
	uint8_t *footer = NULL;
	size_t footer_len;
	uint64_t footer_off = o->written;
	int r;

	r = drgw_obj_seal_footer(j->obj, meta, j->n_chunks, chunk_lens, NULL,
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

int drgw_encode(int in_fd, struct drgw_obj_meta *meta,
		const struct drgw_keyring *kr,
		const struct drgw_encode_opts *opts, int out_fd,
		struct drgw_encode_result *ret, struct drgw_err *err)
{
	static const uint8_t no_repo[DRGW_REPO_ID_BYTES];
	struct drgw_obj obj;
	struct job j = { 0 };
	struct out o = { .fd = out_fd, .opts = opts };
	EVP_MD_CTX *plain_sha = NULL;
	uint32_t *chunk_lens = NULL;
	pthread_t *tids = NULL;
	unsigned nthreads, started = 0;
	struct stat st;
	int r;

	nthreads = opts->threads ? opts->threads : default_threads();
	r = drgw_obj_init_new(&obj, kr, opts->repo ? opts->repo : no_repo,
			      DRGW_OBJ_SNAPSHOT,
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
	j.size = meta->size;
	j.n_chunks = drgw_obj_chunk_count(meta->size, obj.chunk_size);
	j.out_cap = drgw_obj_chunk_bound(obj.chunk_size);
	j.nslots = 2 * nthreads + 2;
	pthread_mutex_init(&j.lock, NULL);
	pthread_cond_init(&j.cond, NULL);

	r = -ENOMEM;
	plain_sha = EVP_MD_CTX_new();
	o.sha = EVP_MD_CTX_new();
	j.slots = calloc(j.nslots, sizeof(*j.slots));
	chunk_lens = malloc((j.n_chunks ? j.n_chunks : 1) * sizeof(*chunk_lens));
	tids = calloc(nthreads, sizeof(*tids));
	if (!plain_sha || !o.sha || !j.slots || !chunk_lens || !tids)
		goto out;
	for (unsigned i = 0; i < j.nslots; i++) {
		j.slots[i].plain = malloc(obj.chunk_size);
		j.slots[i].out = malloc(j.out_cap);
		if (!j.slots[i].plain || !j.slots[i].out)
			goto out;
	}
	EVP_DigestInit_ex(plain_sha, EVP_sha256(), NULL);
	EVP_DigestInit_ex(o.sha, EVP_sha256(), NULL);

	r = emit(&o, obj.header, obj.header_len);
	if (r < 0)
		goto out;
	for (; started < nthreads && started < j.n_chunks; started++) {
		if (pthread_create(&tids[started], NULL, worker, &j)) {
			r = -EAGAIN;
			break;
		}
	}
	if (started > 0 || j.n_chunks == 0)
		r = drain(&j, &o, plain_sha, chunk_lens, opts);

	pthread_mutex_lock(&j.lock);
	j.stop = true;
	pthread_cond_broadcast(&j.cond);
	pthread_mutex_unlock(&j.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (r < 0)
		goto out;

	/* A file that grew while we read it was being written again. */
	if (fstat(in_fd, &st) < 0 || (uint64_t)st.st_size != meta->size) {
		r = -ESTALE;
		goto out;
	}
	EVP_DigestFinal_ex(plain_sha, meta->sha256, NULL);
	r = finish(&j, &o, meta, chunk_lens);
	if (r < 0)
		goto out;
	EVP_DigestFinal_ex(o.sha, ret->object_sha256, NULL);
	ret->stored_size = o.written;
out:
	if (r == -ESTALE)
		drgw_err_set(err, "file changed while it was being encoded");
	else if (r == -ECANCELED)
		drgw_err_set(err, "encoding cancelled");
	else if (r < 0)
		drgw_err_set(err, "%s", strerror(-r));
	if (j.slots) {
		for (unsigned i = 0; i < j.nslots; i++) {
			free(j.slots[i].plain);
			free(j.slots[i].out);
		}
	}
	free(j.slots);
	free(chunk_lens);
	free(tids);
	EVP_MD_CTX_free(plain_sha);
	EVP_MD_CTX_free(o.sha);
	pthread_mutex_destroy(&j.lock);
	pthread_cond_destroy(&j.cond);
	drgw_obj_clear(&obj);
	return r;
}
