/* SPDX-License-Identifier: MIT */
/*
 * Remote reader; see reader.h.
 *
 * The chunk cache is an LRU list of entries keyed by (file, chunk).  An
 * entry is LOADING while one thread fetches it (others wait on the
 * condition variable instead of fetching it twice), then READY, or FAILED
 * for the waiters to see before it is dropped so a later read retries.
 * Readers pin an entry while they copy out of it; only unpinned READY
 * entries are evicted.  The cache is small (tens of entries), so lookups
 * walk the list.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"

#define TAIL_READ (64u << 10)

enum centry_state { C_LOADING, C_READY, C_FAILED };

struct centry {
	struct drgw_rfile *f; /* referenced */
	uint64_t index;
	enum centry_state state;
	int error;
	char errmsg[256];
	uint8_t *data;
	size_t len;
	unsigned pins;
	struct centry *prev, *next; /* LRU: head is most recent */
};

/* A read-ahead job: consecutive chunks of one file, fetched with one
 * ranged read (per-request overhead dominates on object stores). */
#define GROUP_MAX 16
struct job {
	struct centry *e[GROUP_MAX];
	size_t n;
	struct job *next;
};

struct drgw_reader {
	struct drgw_reader_opts opts;
	const struct drgw_keyring *kr;

	pthread_mutex_t lock;
	pthread_cond_t cond;	  /* entry state changes */
	pthread_cond_t job_cond;  /* jobs queued or stop */
	/* Protected by lock. */
	struct centry *head, *tail;
	uint64_t bytes;
	struct job *jobs, *jobs_tail;
	bool stop;
	pthread_t *threads;
	unsigned n_threads;
};

struct drgw_rfile {
	struct drgw_reader *rd;
	struct drgw_backend *b;
	char *key;
	struct drgw_obj obj;
	struct drgw_obj_index idx;
	/* Protected by rd->lock.  refs counts users and cache entries; opens
	 * only users, and when it drops to 0 the cached chunks go too. */
	unsigned refs;
	unsigned opens;
	uint64_t next_seq; /* chunk a sequential reader wants next */
	/* An incremental object's references, opened on first use (NULL
	 * until then), under src_lock. */
	pthread_mutex_t src_lock;
	struct drgw_rfile **srcs;
};

static void rfile_unref_locked(struct drgw_rfile *f)
{
	if (--f->refs)
		return;
	pthread_mutex_destroy(&f->src_lock);
	free(f->srcs); /* closed by drgw_rfile_close() before */
	drgw_obj_clear(&f->obj);
	drgw_obj_index_clear(&f->idx);
	free(f->key);
	free(f);
}

static void lru_unlink(struct drgw_reader *rd, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		rd->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		rd->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct drgw_reader *rd, struct centry *e)
{
	e->prev = NULL;
	e->next = rd->head;
	if (rd->head)
		rd->head->prev = e;
	rd->head = e;
	if (!rd->tail)
		rd->tail = e;
}

static void entry_free_locked(struct drgw_reader *rd, struct centry *e)
{
	lru_unlink(rd, e);
	rd->bytes -= e->len;
	free(e->data);
	rfile_unref_locked(e->f);
	free(e);
}

static struct centry *find_locked(struct drgw_reader *rd,
				  const struct drgw_rfile *f, uint64_t index)
{
	for (struct centry *e = rd->head; e; e = e->next)
		if (e->f == f && e->index == index)
			return e;
	return NULL;
}

/* Evicts unpinned, settled entries from the cold end until need bytes
 * fit.  Overshoots rather than waits when everything is in use. */
static void make_room_locked(struct drgw_reader *rd, size_t need)
{
	struct centry *e = rd->tail, *prev;

	for (; e && rd->bytes + need > rd->opts.cache_bytes; e = prev) {
		prev = e->prev;
		if (e->pins == 0 && e->state != C_LOADING)
			entry_free_locked(rd, e);
	}
}

static struct centry *new_entry_locked(struct drgw_reader *rd,
				       struct drgw_rfile *f, uint64_t index)
{
	struct centry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	make_room_locked(rd, f->obj.chunk_size);
	e->f = f;
	f->refs++;
	e->index = index;
	e->state = C_LOADING;
	lru_push_front(rd, e);
	return e;
}

/* Decodes chunk e->index from its stored bytes ct (modified). */
static int decode(struct centry *e, ZSTD_DCtx *dctx, uint8_t *ct,
		  size_t ct_len, uint8_t **ret_data, size_t *ret_len,
		  struct drgw_err *err)
{
	struct drgw_rfile *f = e->f;
	size_t plain_len = drgw_obj_chunk_plain_len(f->idx.ext.data_size,
						    f->obj.chunk_size, e->index);
	uint8_t *plain = malloc(plain_len ? plain_len : 1);
	int r;

	if (!plain)
		return -ENOMEM;
	r = drgw_obj_open_chunk(&f->obj, dctx, e->index, ct, ct_len, plain,
				plain_len, err);
	if (r < 0) {
		free(plain);
		return r;
	}
	*ret_data = plain;
	*ret_len = plain_len;
	return 0;
}

static void publish(struct drgw_reader *rd, struct centry *e, int r,
		    uint8_t *data, size_t len, const struct drgw_err *err)
{
	pthread_mutex_lock(&rd->lock);
	if (r == 0) {
		e->data = data;
		e->len = len;
		rd->bytes += len;
		e->state = C_READY;
	} else {
		e->state = C_FAILED;
		e->error = r;
		drgw_strlcpy(e->errmsg, err->msg, sizeof(e->errmsg));
	}
	pthread_cond_broadcast(&rd->cond);
	pthread_mutex_unlock(&rd->lock);
}

/* Fetches the LOADING entries es[0..n) (consecutive chunks of one file)
 * with one ranged read, decodes and publishes each.  Without the lock. */
/* Starts the deadline of one backend call on this thread; returns the
 * previous one for end_call(). */
static int64_t begin_call(const struct drgw_reader *rd)
{
	return drgw_backend_set_deadline(
		rd->opts.deadline_ns ? drgw_mono_ns() + rd->opts.deadline_ns : 0);
}

static void end_call(int64_t old)
{
	drgw_backend_set_deadline(old);
}

static void load_group(struct drgw_reader *rd, struct centry **es, size_t n)
{
	struct drgw_rfile *f = es[0]->f;
	uint64_t start = f->idx.offsets[es[0]->index];
	size_t total = (size_t)(f->idx.offsets[es[n - 1]->index + 1] - start);
	uint8_t *ct = malloc(total ? total : 1);
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	struct drgw_err err = { 0 };
	int r = ct && dctx ? 0 : -ENOMEM;

	if (r == 0) {
		int64_t old = begin_call(rd);

		r = drgw_backend_read(f->b, f->key, start, ct, total, &err);
		end_call(old);
	}
	for (size_t i = 0; i < n; i++) {
		struct centry *e = es[i];
		uint64_t off = f->idx.offsets[e->index] - start;
		size_t len = (size_t)(f->idx.offsets[e->index + 1] -
				      f->idx.offsets[e->index]);
		struct drgw_err e_err = err;
		uint8_t *data = NULL;
		size_t plain_len = 0;
		int er = r;

		if (er == 0)
			er = decode(e, dctx, ct + off, len, &data, &plain_len,
				    &e_err);
		publish(rd, e, er, data, plain_len, &e_err);
	}
	ZSTD_freeDCtx(dctx);
	free(ct);
}

static void load(struct drgw_reader *rd, struct centry *e)
{
	load_group(rd, &e, 1);
}

static void *fetch_thread(void *arg)
{
	struct drgw_reader *rd = arg;

	pthread_mutex_lock(&rd->lock);
	for (;;) {
		struct job *j;

		while (!rd->stop && !rd->jobs)
			pthread_cond_wait(&rd->job_cond, &rd->lock);
		if (rd->stop)
			break;
		j = rd->jobs;
		rd->jobs = j->next;
		if (!rd->jobs)
			rd->jobs_tail = NULL;
		pthread_mutex_unlock(&rd->lock);
		load_group(rd, j->e, j->n);
		free(j);
		pthread_mutex_lock(&rd->lock);
	}
	pthread_mutex_unlock(&rd->lock);
	return NULL;
}

int drgw_reader_new(const struct drgw_reader_opts *opts,
		    const struct drgw_keyring *kr, struct drgw_reader **ret)
{
	struct drgw_reader *rd = calloc(1, sizeof(*rd));

	if (!rd)
		return -ENOMEM;
	rd->opts = *opts;
	if (rd->opts.threads == 0)
		rd->opts.threads = 4;
	/* A window larger than half the cache would evict chunks fetched
	 * ahead before they are read (1 MiB chunks assumed; bigger ones only
	 * make the cache overshoot). */
	if (rd->opts.readahead > rd->opts.cache_bytes / (2u << 20))
		rd->opts.readahead = (unsigned)(rd->opts.cache_bytes / (2u << 20));
	rd->kr = kr;
	pthread_mutex_init(&rd->lock, NULL);
	{
		/* Timed waits run on the monotonic clock, like deadlines. */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&rd->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_cond_init(&rd->job_cond, NULL);
	rd->threads = calloc(rd->opts.threads, sizeof(*rd->threads));
	if (!rd->threads) {
		drgw_reader_free(rd);
		return -ENOMEM;
	}
	*ret = rd;
	return 0;
}

struct drgw_reader *drgw_reader_free(struct drgw_reader *rd)
{
	if (!rd)
		return NULL;
	pthread_mutex_lock(&rd->lock);
	rd->stop = true;
	pthread_cond_broadcast(&rd->job_cond);
	pthread_mutex_unlock(&rd->lock);
	for (unsigned i = 0; i < rd->n_threads; i++)
		pthread_join(rd->threads[i], NULL);
	/* Queued jobs reference LOADING entries; nobody waits for them. */
	while (rd->jobs) {
		struct job *j = rd->jobs;

		rd->jobs = j->next;
		free(j);
	}
	rd->jobs_tail = NULL;
	while (rd->head)
		entry_free_locked(rd, rd->head);
	free(rd->threads);
	pthread_cond_destroy(&rd->cond);
	pthread_cond_destroy(&rd->job_cond);
	pthread_mutex_destroy(&rd->lock);
	free(rd);
	return NULL;
}

static int open_tail(struct drgw_rfile *f, uint64_t object_size,
		     struct drgw_err *err)
{
	size_t tail_len = object_size < TAIL_READ ? (size_t)object_size : TAIL_READ;
	uint64_t tail_off = object_size - tail_len;
	struct drgw_obj_trailer t;
	uint8_t *buf, *footer;
	int64_t old;
	int r;

	if (object_size < DRGW_OBJ_HEADER_FIXED + DRGW_OBJ_TRAILER2_SIZE) {
		drgw_err_set(err, "object is too small to be a drgw object (%llu bytes): truncated",
			     (unsigned long long)object_size);
		return -EIO;
	}
	buf = malloc(tail_len);
	if (!buf)
		return -ENOMEM;
	old = begin_call(f->rd);
	r = drgw_backend_read(f->b, f->key, tail_off, buf, tail_len, err);
	if (r == 0)
		r = drgw_obj_parse_tail(buf, tail_len, object_size, &t, err);
	if (r == 0)
		r = drgw_obj_init_header(&f->obj, t.header, t.header_len,
					 f->rd->kr, err);
	if (r < 0)
		goto out;
	if (t.footer_off >= tail_off) {
		footer = buf + (t.footer_off - tail_off);
		r = drgw_obj_open_footer(&f->obj, &t, footer, t.footer_len,
					 &f->idx, err);
	} else {
		footer = malloc(t.footer_len);
		if (!footer) {
			r = -ENOMEM;
			goto out;
		}
		r = drgw_backend_read(f->b, f->key, t.footer_off, footer,
				      t.footer_len, err);
		if (r == 0)
			r = drgw_obj_open_footer(&f->obj, &t, footer,
						 t.footer_len, &f->idx, err);
		free(footer);
	}
out:
	end_call(old);
	free(buf);
	return r;
}

int drgw_rfile_open(struct drgw_reader *rd, struct drgw_backend *b,
		    const char *key, uint64_t object_size,
		    struct drgw_rfile **ret, struct drgw_err *err)
{
	struct drgw_rfile *f;
	int r;

	if (object_size == 0) {
		struct drgw_object_info info;
		int64_t old = begin_call(rd);

		r = drgw_backend_stat(b, key, &info, err);
		end_call(old);
		if (r < 0)
			return r;
		object_size = info.size;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->rd = rd;
	f->b = b;
	f->refs = 1;
	f->opens = 1;
	pthread_mutex_init(&f->src_lock, NULL);
	f->key = strdup(key);
	r = f->key ? open_tail(f, object_size, err) : -ENOMEM;
	if (r == 0 && f->idx.ext.n_refs &&
	    !(f->srcs = calloc(f->idx.ext.n_refs, sizeof(*f->srcs))))
		r = -ENOMEM;
	if (r < 0) {
		drgw_err_prefix(err, "%s on %s", key, b->name);
		drgw_obj_index_clear(&f->idx);
		pthread_mutex_destroy(&f->src_lock);
		drgw_obj_clear(&f->obj);
		free(f->key);
		free(f);
		return r;
	}
	*ret = f;
	return 0;
}

const struct drgw_obj_meta *drgw_rfile_meta(const struct drgw_rfile *f)
{
	return &f->idx.meta;
}

const uint8_t *drgw_rfile_key_id(const struct drgw_rfile *f)
{
	return f->obj.opener;
}

const struct drgw_obj_ref *drgw_rfile_refs(const struct drgw_rfile *f,
					   size_t *ret_n)
{
	*ret_n = f->idx.ext.n_refs;
	return f->idx.ext.refs;
}

uint8_t drgw_rfile_kind(const struct drgw_rfile *f)
{
	return f->obj.kind;
}

uint64_t drgw_rfile_object_size(const struct drgw_rfile *f)
{
	return f->idx.object_size;
}

void drgw_rfile_ref(struct drgw_rfile *f)
{
	pthread_mutex_lock(&f->rd->lock);
	f->refs++;
	f->opens++;
	pthread_mutex_unlock(&f->rd->lock);
}

void drgw_rfile_close(struct drgw_rfile *f)
{
	struct drgw_reader *rd;

	if (!f)
		return;
	rd = f->rd;
	/* The last user of an incremental object lets its references go. */
	pthread_mutex_lock(&rd->lock);
	if (f->opens == 1 && f->srcs) {
		pthread_mutex_unlock(&rd->lock);
		for (size_t k = 0; k < f->idx.ext.n_refs; k++) {
			drgw_rfile_close(f->srcs[k]);
			f->srcs[k] = NULL;
		}
	} else {
		pthread_mutex_unlock(&rd->lock);
	}
	pthread_mutex_lock(&rd->lock);
	/* Its chunks are of no use to anyone else. */
	for (struct centry *e = --f->opens ? NULL : rd->head, *next; e;
	     e = next) {
		next = e->next;
		if (e->f == f && e->pins == 0 && e->state != C_LOADING)
			entry_free_locked(rd, e);
	}
	rfile_unref_locked(f);
	pthread_mutex_unlock(&rd->lock);
}

/* Fetch threads start with the first read-ahead, not in
 * drgw_reader_new(): a daemon creates its reader before it forks into the
 * background, and threads do not survive fork(). */
static void start_threads_locked(struct drgw_reader *rd)
{
	while (rd->n_threads < rd->opts.threads &&
	       pthread_create(&rd->threads[rd->n_threads], NULL, fetch_thread,
			      rd) == 0)
		rd->n_threads++;
}

/* Appends j to the fetch threads' queue. */
static void queue_job_locked(struct drgw_reader *rd, struct job *j)
{
	j->next = NULL;
	if (rd->jobs_tail)
		rd->jobs_tail->next = j;
	else
		rd->jobs = j;
	rd->jobs_tail = j;
	pthread_cond_signal(&rd->job_cond);
}

/* Queues fetches of the chunks after last that are not cached, grouped
 * so that each fetch thread gets a share of the window in one read. */
static void readahead_locked(struct drgw_rfile *f, uint64_t last)
{
	struct drgw_reader *rd = f->rd;
	size_t group = rd->opts.readahead / rd->opts.threads;
	struct job *j = NULL;

	if (rd->n_threads == 0)
		start_threads_locked(rd);
	if (rd->n_threads == 0)
		return;
	group = group < 1 ? 1 : group > GROUP_MAX ? GROUP_MAX : group;
	for (uint64_t i = last + 1;
	     i <= last + rd->opts.readahead && i < f->idx.n_chunks; i++) {
		struct centry *e;

		if (find_locked(rd, f, i)) {
			/* A gap: what is grouped so far goes as one job. */
			if (j)
				queue_job_locked(rd, j);
			j = NULL;
			continue;
		}
		if (!j && !(j = calloc(1, sizeof(*j))))
			return;
		e = new_entry_locked(rd, f, i);
		if (!e)
			break;
		j->e[j->n++] = e;
		if (j->n == group) {
			queue_job_locked(rd, j);
			j = NULL;
		}
	}
	if (j && j->n)
		queue_job_locked(rd, j);
	else
		free(j);
}

/* Waits on rd->cond (lock held) until until (CLOCK_MONOTONIC ns, 0: for
 * ever); -ETIMEDOUT once it passed. */
static int wait_deadline(struct drgw_reader *rd, int64_t until)
{
	struct timespec ts;

	if (!until) {
		pthread_cond_wait(&rd->cond, &rd->lock);
		return 0;
	}
	if (drgw_mono_ns() >= until)
		return -ETIMEDOUT;
	ts.tv_sec = until / NSEC_PER_SEC;
	ts.tv_nsec = until % NSEC_PER_SEC;
	pthread_cond_timedwait(&rd->cond, &rd->lock, &ts);
	return 0;
}

/* Returns chunk index pinned and READY, fetching it if needed.  A chunk
 * whose read-ahead failed is fetched once more by the reader itself: a
 * transient error in the background must not become an EIO. */
static int get_chunk(struct drgw_rfile *f, uint64_t index,
		     struct centry **ret, struct drgw_err *err)
{
	struct drgw_reader *rd = f->rd;
	struct centry *e;
	bool loaded_here = false;
	int64_t wait_until = rd->opts.deadline_ns ?
				     drgw_mono_ns() + rd->opts.deadline_ns +
					     NSEC_PER_SEC :
				     0;

	pthread_mutex_lock(&rd->lock);
	for (;;) {
		e = find_locked(rd, f, index);
		if (!e) {
			e = new_entry_locked(rd, f, index);
			if (!e) {
				pthread_mutex_unlock(&rd->lock);
				return -ENOMEM;
			}
			e->pins++;
			pthread_mutex_unlock(&rd->lock);
			load(rd, e);
			loaded_here = true;
			pthread_mutex_lock(&rd->lock);
		} else {
			e->pins++;
			lru_unlink(rd, e);
			lru_push_front(rd, e);
		}
		while (e->state == C_LOADING) {
			/* Another thread fetches it; its call has the same
			 * deadline, so waiting longer than that (plus a
			 * little) means a plugin that ignores deadlines. */
			if (wait_deadline(rd, wait_until) < 0) {
				e->pins--;
				pthread_mutex_unlock(&rd->lock);
				drgw_err_set(err,
					     "chunk %llu did not arrive within read-deadline",
					     (unsigned long long)index);
				return -ETIMEDOUT;
			}
		}
		if (e->state != C_FAILED)
			break;
		/* Drop it once the last waiter saw the error. */
		if (loaded_here) {
			int r = e->error;

			drgw_err_set(err, "%s", e->errmsg);
			if (--e->pins == 0)
				entry_free_locked(rd, e);
			pthread_mutex_unlock(&rd->lock);
			return r;
		}
		/* Hide it from lookups; its last user frees it. */
		e->index = UINT64_MAX;
		if (--e->pins == 0)
			entry_free_locked(rd, e);
	}
	pthread_mutex_unlock(&rd->lock);
	*ret = e;
	return 0;
}

static void unpin(struct drgw_reader *rd, struct centry *e)
{
	pthread_mutex_lock(&rd->lock);
	e->pins--;
	pthread_mutex_unlock(&rd->lock);
}

/* Reads len bytes of f's data (its chunks' plaintext) at off. */
static ssize_t data_pread(struct drgw_rfile *f, void *buf, size_t len,
			  uint64_t off, struct drgw_err *err)
{
	struct drgw_reader *rd = f->rd;
	uint64_t size = f->idx.ext.data_size, cs = f->obj.chunk_size;
	uint64_t first, last;
	size_t done = 0;

	if (off >= size || len == 0)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	first = off / cs;
	last = (off + len - 1) / cs;

	pthread_mutex_lock(&rd->lock);
	/* Sequential, give or take the window: the kernel's own read-ahead
	 * sends several reads at once and FUSE threads serve them in any
	 * order, so "exactly the next chunk" would miss most of them. */
	if (first + 2 >= f->next_seq && first <= f->next_seq + rd->opts.readahead)
		readahead_locked(f, last);
	if (last + 1 > f->next_seq)
		f->next_seq = last + 1;
	pthread_mutex_unlock(&rd->lock);

	for (uint64_t i = first; i <= last; i++) {
		uint64_t cstart = i * cs;
		size_t from = off + done > cstart ? (size_t)(off + done - cstart) : 0;
		struct centry *e = NULL;
		size_t n;
		int r;

		r = get_chunk(f, i, &e, err);
		if (r < 0)
			return r;
		n = e->len - from;
		if (n > len - done)
			n = len - done;
		memcpy((char *)buf + done, e->data + from, n);
		unpin(rd, e);
		done += n;
	}
	return (ssize_t)done;
}

/* Reference k of incremental f, opened on first use on f's backend and
 * checked against the pin in f's footer: the header hash (its id, file
 * key and repository), its data size. */
static int open_ref(struct drgw_rfile *f, size_t k, struct drgw_rfile **ret,
		    struct drgw_err *err)
{
	const struct drgw_obj_ref *rf = &f->idx.ext.refs[k];
	struct drgw_rfile *src = NULL;
	char key[DRGW_OBJ_VID_MAX + 8];
	uint8_t hsha[32];
	int r = 0;

	pthread_mutex_lock(&f->src_lock);
	if (!f->srcs[k]) {
		snprintf(key, sizeof(key), "%s.drgw", rf->vid);
		r = drgw_rfile_open(f->rd, f->b, key, 0, &src, err);
		if (r == -ENOENT)
			drgw_err_set(err,
				     "version %s, which %s takes blocks from, is missing on %s",
				     rf->vid, f->idx.meta.vid, f->b->name);
		if (r == 0) {
			drgw_obj_header_hash(&src->obj, hsha);
			if (memcmp(hsha, rf->header_sha256, 32) ||
			    memcmp(src->obj.object_id, rf->object_id, 16) ||
			    src->idx.ext.data_size != rf->data_size ||
			    memcmp(src->obj.repo, f->obj.repo, DRGW_REPO_ID_BYTES)) {
				drgw_err_set(err,
					     "%s on %s is not the version %s of %s takes blocks from (substituted, stale or of another repository)",
					     key, f->b->name, rf->vid,
					     f->idx.meta.name);
				drgw_rfile_close(src);
				r = -EIO;
			} else {
				f->srcs[k] = src;
			}
		}
	}
	*ret = f->srcs[k];
	pthread_mutex_unlock(&f->src_lock);
	return r;
}

/* Index of the extent of f that holds file offset off. */
static size_t find_extent(const struct drgw_rfile *f, uint64_t off)
{
	size_t lo = 0, hi = f->idx.ext.n_extents;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->idx.ext.extents[mid].file_off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

ssize_t drgw_rfile_pread(struct drgw_rfile *f, void *buf, size_t len,
			 uint64_t off, struct drgw_err *err)
{
	uint64_t size = f->idx.meta.size;
	size_t done = 0;

	if (!f->idx.ext.extents)
		return data_pread(f, buf, len, off, err);
	if (off >= size || len == 0)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	/* An incremental object: each piece of the range comes from the
	 * data of the object its extent names. */
	for (size_t e = find_extent(f, off); done < len; e++) {
		const struct drgw_obj_extent *x = &f->idx.ext.extents[e];
		uint64_t at = off + done, in = at - x->file_off;
		size_t n = x->len - in < len - done ? (size_t)(x->len - in) :
						      len - done;
		struct drgw_rfile *src = f;
		ssize_t got;
		int r;

		if (x->src && (r = open_ref(f, x->src - 1u, &src, err)) < 0)
			return r;
		got = data_pread(src, (char *)buf + done, n, x->src_off + in,
				 err);
		if (got < 0)
			return got;
		if ((size_t)got != n) {
			drgw_err_set(err, "%s ended early", src->key);
			return -EIO;
		}
		done += n;
	}
	return (ssize_t)done;
}

int drgw_rfile_check_header(struct drgw_rfile *f, struct drgw_err *err)
{
	uint8_t h[DRGW_OBJ_HEADER_MAX];
	int64_t old = begin_call(f->rd);
	int r = drgw_backend_read(f->b, f->key, 0, h, f->obj.header_len, err);

	end_call(old);
	if (r < 0)
		return r;
	if (memcmp(h, f->obj.header, f->obj.header_len)) {
		drgw_err_set(err,
			     "object header does not match its trailer: corrupt object");
		return -EIO;
	}
	return 0;
}
