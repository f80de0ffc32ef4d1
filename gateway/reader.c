/* SPDX-License-Identifier: MIT */
/*
 * Remote reader; see reader.h.
 *
 * The chunk cache is an LRU list of entries keyed by (file, chunk).  An
 * entry is LOADING while one thread fetches it (others wait on the
 * condition variable instead of fetching it twice), then READY, or FAILED
 * for the waiters to see before it is dropped so a later read retries.
 * Readers pin an entry while they copy out of it; only unpinned, settled
 * entries are evicted.  The cache is small (tens of entries), so lookups
 * walk the list.
 *
 * A READY entry holds the chunk as stored (compressed and sealed), in the
 * buffer of the fetch that brought it, and its plaintext once decoded:
 * by the fetch threads while there is room (the chunks of a fetch in
 * parallel), else by the first reader.  So a fetch in flight costs only
 * its stored bytes, and the cache holds as many more chunks as the data
 * compresses.  A decoded chunk still to be read lets its stored bytes go
 * when room is short (the fetch buffer goes with the last of its chunks):
 * the sources of an incremental object each hold a chunk or two decoded
 * for long stretches of a read, which at 1.5 times their size had left
 * no room to decode the base ahead.
 *
 * Memory: everything the reader holds counts against cache_bytes: fetch
 * buffers from the moment a fetch is queued (chunks are decrypted in
 * place there), and plaintexts.  What read-ahead and background decoding hold
 * and no reader has read yet is at most three quarters of it (the chunks
 * readers are in the middle of do not count there: a reader of several
 * objects at once, an incremental one and those it takes blocks from,
 * would have its read-ahead crowded out by them); read-ahead never evicts
 * a chunk that was fetched ahead and not read yet; a reader's own read
 * always goes on, and overshoots by its chunk when everything else is in
 * use.
 *
 * Eviction order, so that a long sequential read (a copy) does not flush
 * what random readers (SQLite) come back to: first plaintexts (decoding
 * again is cheap), then stored bytes of decoded chunks, then chunks a
 * sequential reader has gone past, then the least recently used of the
 * others, and only for a reader's fetch of its own chunk, chunks fetched
 * ahead but not read yet (their plaintexts first).
 *
 * Sequential reads: each file keeps a frontier, the first chunk no fetch
 * was queued for.  Once the reader is within the read-ahead window of it,
 * the next request-size worth of consecutive chunks is queued as one
 * ranged read, so an object store sees a few large GETs in parallel (one
 * per fetch thread) instead of one per chunk.  Random reads fetch their
 * chunk alone.
 *
 * The sources of an incremental object that hold a small share of its
 * file (a chunk of an increment covers ten or more of the file's) are
 * fetched SMALL_REQUEST chunks a request, two requests ahead, and kept as
 * stored until their reader is within its share of them, when they are
 * decoded in the background: one chunk a request had made two thirds of
 * the requests of a version over three increments, at 10-15 ms each on
 * radosgw.  Only where these stored chunks fit in a quarter of the cache
 * (three increments of an SQLite database with the default cache, not
 * six), as they would otherwise crowd out the base's read-ahead.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reader.h"

#define TAIL_READ (64u << 10)
#define SMALL_REQUEST 2

enum centry_state { C_LOADING, C_READY, C_FAILED };

/* Eviction classes, evicted in this order. */
enum centry_class { C_PASSED, C_USED, C_AHEAD };

/* The stored bytes of one fetch, shared by the chunks it brought; freed
 * with the last of them.  Counted in rd->bytes from the moment the fetch
 * is queued to the moment it is freed. */
struct ctbuf {
	unsigned refs; /* protected by rd->lock */
	size_t len;
	uint8_t data[];
};

struct centry {
	struct drgw_rfile *f; /* referenced */
	uint64_t index;
	enum centry_state state;
	enum centry_class cls;
	int error;
	char errmsg[256];
	/* READY: the chunk as stored, in buf; opened: decrypted there, in
	 * place (the zstd frame, authenticated), at the first decoding. */
	struct ctbuf *buf;
	uint8_t *ct;
	size_t ct_len;
	bool opened;
	/* Its plaintext (len bytes), decoded at the first read and dropped
	 * before anything else when room is needed; counted in rd->bytes
	 * while decoding or there. */
	uint8_t *pt;
	size_t len;
	bool decoding;
	unsigned pins;
	struct centry *prev, *next; /* LRU: head is most recent */
};

/* A fetch: consecutive chunks of one file with one ranged read (per-
 * request overhead dominates on object stores); or the decoding of one
 * chunk fetched ahead. */
struct job {
	bool decode; /* of e[0], fetched and pinned; else a fetch */
	size_t n;
	uint64_t ct_len; /* counted in rd->bytes */
	struct job *next;
	struct centry *e[];
};

/* Spare decompression contexts kept: enough for every thread. */
#define POOL_DCTXS 8

struct spare {
	struct spare *next;
	size_t cap;
};

struct drgw_reader {
	struct drgw_reader_opts opts;
	const struct drgw_keyring *kr;

	pthread_mutex_t lock;
	pthread_cond_t cond;	  /* entry state changes */
	pthread_cond_t job_cond;  /* jobs queued or stop */
	/* Protected by lock. */
	struct centry *head, *tail;
	uint64_t bytes; /* fetch buffers and plaintexts */
	struct job *jobs, *jobs_tail;
	bool stop;
	pthread_t *threads;
	unsigned n_threads;
	struct drgw_reader_stats stats;
	/* Spare buffers and decompression contexts, under pool_lock: a
	 * fresh large buffer is mapped and then faults in page by page,
	 * which cost a quarter of a sequential read's CPU time. */
	pthread_mutex_t pool_lock;
	struct spare *spares;
	uint64_t spare_bytes;
	ZSTD_DCtx *dctxs[POOL_DCTXS];
	unsigned n_dctxs;
};

struct drgw_rfile {
	struct drgw_reader *rd;
	struct drgw_backend *b;
	char *key;
	struct drgw_obj obj;
	struct drgw_obj_index idx;
	/* The sealed footer and the trailer as stored (the object's last
	 * tail_len bytes), for drgw_rfile_tail(); only if keep_tail. */
	bool keep_tail;
	uint8_t *tail;
	size_t tail_len;
	/* Protected by rd->lock.  refs counts users and cache entries; opens
	 * only users, and when it drops to 0 the cached chunks go too. */
	unsigned refs;
	unsigned opens;
	/* Where it is read (track_locked()): the current run of chunks and
	 * how often it grew up or down; the first chunk above it no fetch
	 * was queued for, and one past the last one below. */
	bool in_run;
	uint64_t pos; /* a chunk of the last read */
	uint64_t run_lo, run_hi;
	unsigned up, down;
	uint64_t ra_up, ra_down;
	/* Chunks it may read ahead: the reader's readahead, or for the data
	 * of an incremental object and of each object it takes blocks from,
	 * that part of it the object's share of the file is (they are read
	 * side by side and share the cache). */
	uint64_t readahead;
	/* Chunks it may fetch ahead, at least readahead: more for a small
	 * source (see the top), which decodes only readahead of them ahead,
	 * the next one from dec_up on. */
	uint64_t fetch_ahead;
	uint64_t dec_up;
	/* An incremental object: those of its sources (0: its own data, k:
	 * reference k - 1), n_refs + 1 of them, set when it is opened. */
	struct window {
		uint64_t readahead, fetch_ahead;
	} *windows;
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
	free(f->windows);
	drgw_obj_clear(&f->obj);
	drgw_obj_index_clear(&f->idx);
	free(f->tail);
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

/* Maps the pages of a new buffer in one call: faulting them in one at a
 * time cost an eighth of a restore read's CPU time (in a virtual machine
 * each fault is an exit).  Only the bytes asked for: the rest of its
 * capacity is used, and mapped, when a larger need reuses it.  Before
 * Linux 5.14 the faults happen as they did. */
static void populate(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t hi = ((uintptr_t)p + len) & ~(page - 1);

	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
#else
	(void)p;
	(void)len;
#endif
}

static void spare_free(struct spare *b)
{
	munmap(b, sizeof(*b) + b->cap);
}

/* A buffer of at least len bytes: the smallest spare that is not more
 * than twice that, or a new one. */
static void *spare_get(struct drgw_reader *rd, size_t len)
{
	struct spare **best = NULL, *b;
	size_t cap;

	pthread_mutex_lock(&rd->pool_lock);
	for (struct spare **s = &rd->spares; *s; s = &(*s)->next)
		if ((*s)->cap >= len && (*s)->cap / 2 <= len &&
		    (!best || (*s)->cap < (*best)->cap))
			best = s;
	if (best) {
		b = *best;
		*best = b->next;
		rd->spare_bytes -= b->cap;
		pthread_mutex_unlock(&rd->pool_lock);
		return b + 1;
	}
	pthread_mutex_unlock(&rd->pool_lock);
	/* Rounded up, so that chunks of slightly different sizes share.
	 * Mapped, whatever malloc() would do with this size: the spares come
	 * and go as the cache's use changes, and must not fragment a heap. */
	cap = ((sizeof(*b) + len + 0xffffu) & ~(size_t)0xffffu) - sizeof(*b);
	b = mmap(NULL, sizeof(*b) + cap, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		return NULL;
	b->cap = cap;
	populate(b, sizeof(*b) + len);
	return b + 1;
}

/* Gives back a buffer from spare_get(), lock held: kept while the spares
 * fit in what the cache does not use plus a quarter of it (a full cache
 * frees a chunk just before it needs one, and a fetch needs several:
 * with an eighth, a 1 GiB read mapped and faulted in 450 MiB of new
 * buffers), the ones given back longest ago freed first. */
static void spare_put_locked(struct drgw_reader *rd, void *p)
{
	struct spare *b = (struct spare *)p - 1, **s, *drop;
	uint64_t room = rd->opts.cache_bytes / 4 +
			(rd->bytes < rd->opts.cache_bytes ?
				 rd->opts.cache_bytes - rd->bytes :
				 0);
	uint64_t kept = 0;

	if (!p)
		return;
	pthread_mutex_lock(&rd->pool_lock);
	b->next = rd->spares;
	rd->spares = b;
	for (s = &rd->spares; *s && kept + (*s)->cap <= room; s = &(*s)->next)
		kept += (*s)->cap;
	drop = *s;
	*s = NULL;
	rd->spare_bytes = kept;
	pthread_mutex_unlock(&rd->pool_lock);
	while (drop) {
		b = drop;
		drop = b->next;
		spare_free(b);
	}
}

static ZSTD_DCtx *dctx_get(struct drgw_reader *rd)
{
	ZSTD_DCtx *d = NULL;

	pthread_mutex_lock(&rd->pool_lock);
	if (rd->n_dctxs)
		d = rd->dctxs[--rd->n_dctxs];
	pthread_mutex_unlock(&rd->pool_lock);
	return d ? d : ZSTD_createDCtx();
}

static void dctx_put(struct drgw_reader *rd, ZSTD_DCtx *d)
{
	pthread_mutex_lock(&rd->pool_lock);
	if (d && rd->n_dctxs < POOL_DCTXS) {
		rd->dctxs[rd->n_dctxs++] = d;
		d = NULL;
	}
	pthread_mutex_unlock(&rd->pool_lock);
	ZSTD_freeDCtx(d);
}

static void buf_unref_locked(struct drgw_reader *rd, struct ctbuf *b)
{
	if (b && --b->refs == 0) {
		rd->bytes -= b->len;
		spare_put_locked(rd, b);
	}
}

static void drop_plain_locked(struct drgw_reader *rd, struct centry *e)
{
	if (!e->pt)
		return;
	rd->bytes -= e->len;
	spare_put_locked(rd, e->pt);
	e->pt = NULL;
}

static void entry_free_locked(struct drgw_reader *rd, struct centry *e)
{
	if (e->cls == C_AHEAD && e->state == C_READY)
		rd->stats.readahead_unused++;
	lru_unlink(rd, e);
	drop_plain_locked(rd, e);
	buf_unref_locked(rd, e->buf);
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

/* What read-ahead and background decoding may hold unread: the rest is
 * for the chunks readers decode as they read them. */
static uint64_t ahead_limit(const struct drgw_reader *rd)
{
	return rd->opts.cache_bytes - rd->opts.cache_bytes / 4;
}

/* Bytes of e, as stored and decoded. */
static uint64_t entry_bytes(const struct centry *e)
{
	return (e->buf ? e->ct_len : 0) + (e->pt ? e->len : 0);
}

/* Whether f is a source fetched ahead further than it is decoded. */
static bool fetched_stored(const struct drgw_rfile *f)
{
	return f->fetch_ahead > f->readahead;
}

/* Whether e's plaintext can go now and be decoded again later. */
static bool plain_droppable(const struct centry *e)
{
	return e->pins == 0 && !e->decoding && e->buf;
}

/* Whether e is decoded and still holds its stored bytes, which it no
 * longer needs while its plaintext stays. */
static bool stored_droppable(const struct centry *e)
{
	return e->pt && e->buf && !e->decoding;
}

/* Lets the stored bytes of decoded e go (the fetch buffer goes with the
 * last chunk of it): its plaintext can then not be dropped, only the
 * whole entry. */
static void drop_stored_locked(struct drgw_reader *rd, struct centry *e)
{
	buf_unref_locked(rd, e->buf);
	e->buf = NULL;
	e->ct = NULL;
}

/* Bytes of the chunks fetched ahead that no reader has read yet. */
static uint64_t unread_locked(const struct drgw_reader *rd)
{
	uint64_t n = 0;

	for (const struct centry *e = rd->head; e; e = e->next)
		if (e->cls == C_AHEAD)
			n += entry_bytes(e);
	return n;
}

/* Whether need more bytes fit: for a reader's own read (demand) in the
 * cache, for read-ahead also within ahead_limit() of unread ones. */
static bool fits_locked(const struct drgw_reader *rd, uint64_t need,
			bool demand)
{
	return rd->bytes + need <= rd->opts.cache_bytes &&
	       (demand || unread_locked(rd) + need <= ahead_limit(rd));
}

static uint64_t request_chunks(const struct drgw_rfile *f);

/* The class e is evicted in.  The chunk a reader is in the middle of, and
 * its neighbours, are as precious as those fetched ahead: read in pieces,
 * it is unpinned between them.  The one behind only while the run has
 * ever gone backwards: a reader that only moves forward (the sources of an
 * incremental object, several at a time) has left it.  A chunk fetched
 * ahead of a reader that has since gone elsewhere (it jumped, or turned
 * round) is as good as passed, or such chunks would hold the cache for
 * ever. */
static enum centry_class class_of(const struct centry *e)
{
	const struct drgw_rfile *f = e->f;
	uint64_t w = f->fetch_ahead + request_chunks(f);
	uint64_t behind = f->down ? 1 : 0;

	/* Left behind by a fetch that ended after its file was closed. */
	if (f->opens == 0)
		return C_PASSED;
	if (f->in_run && e->index + behind >= f->pos && e->index <= f->pos + 1)
		return C_AHEAD;
	if (e->cls != C_AHEAD)
		return e->cls;
	if (e->index + w < f->pos || e->index > f->pos + w)
		return C_PASSED;
	return C_AHEAD;
}

static bool evictable(const struct centry *e, enum centry_class upto)
{
	return e->pins == 0 && e->state != C_LOADING && !e->decoding &&
	       class_of(e) <= upto;
}

/* Who needs room: read-ahead (fetching or decoding ahead), a reader
 * decoding the chunk it reads, a reader fetching it. */
enum room_for { ROOM_AHEAD, ROOM_DECODE, ROOM_DEMAND };

/*
 * Frees memory until need more bytes fit: first plaintexts (decoding
 * again is cheap), then whole entries, class by class and each from the
 * cold end.  Chunks fetched ahead and not read yet go only for a reader's
 * fetch of its own chunk: a reader decoding its chunk would otherwise
 * evict the next ones, decoded and without their stored bytes, to fetch
 * them again one by one; it goes over budget instead, by that chunk.
 * Read-ahead frees nothing unless that makes it fit.  True if need fits
 * now.
 */
static bool make_room_locked(struct drgw_reader *rd, uint64_t need,
			     enum room_for who)
{
	bool demand = who != ROOM_AHEAD;
	enum centry_class upto = who == ROOM_DEMAND ? C_AHEAD : C_USED;
	struct centry *e, *prev;

	if (fits_locked(rd, need, demand))
		return true;
	if (!demand) {
		uint64_t freeable = 0, unread = 0;

		for (e = rd->head; e; e = e->next) {
			uint64_t n = evictable(e, upto) ? entry_bytes(e) :
				     stored_droppable(e) ? e->ct_len :
							   0;

			freeable += n;
			if (e->cls == C_AHEAD)
				unread += n;
		}
		if (rd->bytes - freeable + need > rd->opts.cache_bytes ||
		    unread_locked(rd) - unread + need > ahead_limit(rd))
			return false;
	}
	for (e = rd->tail; e && !fits_locked(rd, need, demand); e = e->prev)
		if (plain_droppable(e) && class_of(e) < C_AHEAD)
			drop_plain_locked(rd, e);
	/* Then the stored bytes of chunks decoded and still to be read:
	 * dropping their plaintexts would mean decoding them again, and
	 * the sources of an incremental object each hold one or two for
	 * long stretches of a read. */
	for (e = rd->tail; e && !fits_locked(rd, need, demand); e = e->prev)
		if (stored_droppable(e))
			drop_stored_locked(rd, e);
	for (int cls = C_PASSED; cls <= (int)upto; cls++) {
		/* Before a reader's read evicts chunks fetched ahead: the
		 * plaintexts fetch threads decoded for them (decoding again
		 * costs less than fetching again; not the chunk a reader is
		 * in, though, or readers taking turns would decode it for
		 * every piece they read). */
		for (e = rd->tail; cls == C_AHEAD && e &&
				   !fits_locked(rd, need, demand);
		     e = e->prev)
			if (plain_droppable(e) && e->cls == C_AHEAD &&
			    e->index != e->f->pos)
				drop_plain_locked(rd, e);
		for (e = rd->tail; e && !fits_locked(rd, need, demand); e = prev) {
			prev = e->prev;
			if (evictable(e, upto) && class_of(e) == (enum centry_class)cls)
				entry_free_locked(rd, e);
		}
	}
	return fits_locked(rd, need, demand);
}

/* Plaintext and stored bytes of chunk index of f. */
static size_t plain_len(const struct drgw_rfile *f, uint64_t index)
{
	return drgw_obj_chunk_plain_len(f->idx.ext.data_size, f->obj.chunk_size,
					index);
}

static uint64_t stored_len(const struct drgw_rfile *f, uint64_t index)
{
	return f->idx.offsets[index + 1] - f->idx.offsets[index];
}

/* A LOADING entry for chunk index; the caller counted its fetch. */
static struct centry *new_entry_locked(struct drgw_reader *rd,
				       struct drgw_rfile *f, uint64_t index,
				       enum centry_class cls)
{
	struct centry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->f = f;
	f->refs++;
	e->index = index;
	e->state = C_LOADING;
	e->cls = cls;
	e->len = plain_len(f, index);
	e->ct_len = stored_len(f, index);
	lru_push_front(rd, e);
	return e;
}

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

static int need_plain(struct drgw_reader *rd, struct centry *e, bool eager,
		      struct drgw_err *err);

/* Decodes e, fetched ahead and pinned for that, in the background, and
 * unpins it. */
static void decode_pinned(struct drgw_reader *rd, struct centry *e)
{
	struct drgw_err ignored = { 0 };

	need_plain(rd, e, true, &ignored);
	pthread_mutex_lock(&rd->lock);
	e->pins--;
	pthread_mutex_unlock(&rd->lock);
}

/* Adds j to the fetch threads' queue: at the end, or first. */
static void queue_job_locked(struct drgw_reader *rd, struct job *j,
			     bool first)
{
	if (first) {
		j->next = rd->jobs;
		rd->jobs = j;
		if (!rd->jobs_tail)
			rd->jobs_tail = j;
	} else {
		j->next = NULL;
		if (rd->jobs_tail)
			rd->jobs_tail->next = j;
		else
			rd->jobs = j;
		rd->jobs_tail = j;
	}
	pthread_cond_signal(&rd->job_cond);
}

/* Queues the background decoding of e (pinned) before every fetch.
 * False if out of memory. */
static bool queue_decode_locked(struct drgw_reader *rd, struct centry *e)
{
	struct job *j = malloc(sizeof(*j) + sizeof(j->e[0]));

	if (!j)
		return false;
	j->decode = true;
	j->n = 1;
	j->ct_len = 0;
	j->e[0] = e;
	queue_job_locked(rd, j, true);
	return true;
}

/* Fetches the LOADING entries es[0..n) (consecutive chunks of one file)
 * with one ranged read of ct_len bytes, which the caller counted in
 * rd->bytes, and publishes them; eager: and decodes them if there is room.
 * Without the lock. */
static void load_group(struct drgw_reader *rd, struct centry **es, size_t n,
		       uint64_t ct_len, bool eager)
{
	struct drgw_rfile *f = es[0]->f;
	uint64_t start = f->idx.offsets[es[0]->index];
	struct ctbuf *b = spare_get(rd, sizeof(*b) + ct_len);
	struct drgw_err err = { 0 };
	int r = b ? 0 : -ENOMEM;
	size_t here;

	if (r == 0) {
		int64_t old = begin_call(rd);

		r = drgw_backend_read(f->b, f->key, start, b->data, ct_len,
				      &err);
		end_call(old);
	}
	pthread_mutex_lock(&rd->lock);
	rd->stats.requests++;
	rd->stats.bytes_fetched += ct_len;
	if (r < 0) {
		rd->bytes -= ct_len;
		spare_put_locked(rd, b);
	} else {
		b->len = ct_len;
		b->refs = (unsigned)n;
	}
	for (size_t i = 0; i < n; i++) {
		struct centry *e = es[i];

		if (r == 0) {
			e->buf = b;
			e->ct = b->data + (f->idx.offsets[e->index] - start);
			e->state = C_READY;
			e->pins += eager;
		} else {
			e->state = C_FAILED;
			e->error = r;
			drgw_strlcpy(e->errmsg, err.msg, sizeof(e->errmsg));
		}
	}
	/* A fetch thread decodes what it fetched while there is room, in
	 * parallel with the reader (which would otherwise decode each chunk
	 * itself when it gets there): the first chunk itself, the others
	 * queued first for any thread, as a reader going through the group
	 * would wait for one thread decoding it chunk after chunk. */
	here = r == 0 && eager ? n : 0;
	/* A small source's chunks beyond its reader's share stay stored. */
	while (here > 0 && fetched_stored(f) &&
	       es[here - 1]->index > f->run_hi + f->readahead) {
		es[here - 1]->pins--;
		here--;
	}
	while (here > 1 && queue_decode_locked(rd, es[here - 1]))
		here--;
	pthread_cond_broadcast(&rd->cond);
	pthread_mutex_unlock(&rd->lock);
	for (size_t i = 0; i < here; i++)
		decode_pinned(rd, es[i]);
}

/* Decodes e (READY, pinned) into e->pt unless that is there already.
 * eager: in the background, if read-ahead could make room for it (from
 * what readers have gone past or used, never from what they have not
 * read yet).  Waiting for room that readers would free was not enough:
 * a cache full of passed chunks then left two thirds of the decoding of
 * a sequential read to the reader, one chunk at a time. */
static int need_plain(struct drgw_reader *rd, struct centry *e, bool eager,
		      struct drgw_err *err)
{
	struct drgw_rfile *f = e->f;
	ZSTD_DCtx *dctx;
	uint8_t *pt;
	int r = 0;

	pthread_mutex_lock(&rd->lock);
	while (e->decoding)
		pthread_cond_wait(&rd->cond, &rd->lock);
	if (e->pt || (eager && !make_room_locked(rd, e->len, ROOM_AHEAD))) {
		pthread_mutex_unlock(&rd->lock);
		return 0;
	}
	if (!eager)
		make_room_locked(rd, e->len, ROOM_DECODE);
	rd->bytes += e->len;
	e->decoding = true;
	pthread_mutex_unlock(&rd->lock);

	/* Decrypted in place, where nothing else reads (decoding is this
	 * thread's alone): no buffer for it, and decoding again after the
	 * plaintext was dropped only decompresses. */
	if (!e->opened) {
		r = drgw_obj_decrypt_chunk(&f->obj, e->index, e->ct, e->ct_len,
					   e->ct, err);
		e->opened = r == 0;
	}
	pt = spare_get(rd, e->len);
	dctx = dctx_get(rd);
	if (r == 0)
		r = pt && dctx ? drgw_obj_inflate_chunk(
					 dctx, e->index, e->ct,
					 e->ct_len - DRGW_OBJ_TAG_SIZE, pt,
					 e->len, err) :
				 -ENOMEM;
	dctx_put(rd, dctx);
	pthread_mutex_lock(&rd->lock);
	rd->stats.decodes++;
	rd->stats.decodes_ahead += eager;
	e->decoding = false;
	if (r == 0) {
		e->pt = pt;
	} else {
		rd->bytes -= e->len;
		spare_put_locked(rd, pt);
	}
	pthread_cond_broadcast(&rd->cond);
	pthread_mutex_unlock(&rd->lock);
	return r;
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
		if (j->decode)
			decode_pinned(rd, j->e[0]);
		else
			load_group(rd, j->e, j->n, j->ct_len, true);
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
	rd->kr = kr;
	pthread_mutex_init(&rd->lock, NULL);
	pthread_mutex_init(&rd->pool_lock, NULL);
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
	/* Queued jobs reference LOADING entries, or pinned ones to decode;
	 * nobody waits for them. */
	while (rd->jobs) {
		struct job *j = rd->jobs;

		rd->jobs = j->next;
		free(j);
	}
	rd->jobs_tail = NULL;
	while (rd->head)
		entry_free_locked(rd, rd->head);
	free(rd->threads);
	while (rd->spares) {
		struct spare *b = rd->spares;

		rd->spares = b->next;
		spare_free(b);
	}
	while (rd->n_dctxs)
		ZSTD_freeDCtx(rd->dctxs[--rd->n_dctxs]);
	pthread_mutex_destroy(&rd->pool_lock);
	pthread_cond_destroy(&rd->cond);
	pthread_cond_destroy(&rd->job_cond);
	pthread_mutex_destroy(&rd->lock);
	free(rd);
	return NULL;
}

void drgw_reader_get_stats(struct drgw_reader *rd,
			   struct drgw_reader_stats *ret)
{
	pthread_mutex_lock(&rd->lock);
	*ret = rd->stats;
	pthread_mutex_unlock(&rd->lock);
}

/* Opens the footer in footer (footer_len bytes, decrypted in place) once
 * the trailer t and the header it holds were checked; if f keeps its
 * tail, a sealed copy of the footer and of what follows it (post: the
 * header copy of version 2 and the trailer) first, for drgw_rfile_tail(). */
static int open_footer(struct drgw_rfile *f, const struct drgw_obj_trailer *t,
		       uint8_t *footer, const uint8_t *post, size_t post_len,
		       struct drgw_err *err)
{
	if (f->keep_tail) {
		f->tail_len = (size_t)t->footer_len + post_len;
		f->tail = malloc(f->tail_len);
		if (!f->tail)
			return -ENOMEM;
		memcpy(f->tail, footer, t->footer_len);
		memcpy(f->tail + t->footer_len, post, post_len);
	}
	return drgw_obj_open_footer(&f->obj, t, footer, t->footer_len, &f->idx,
				    err);
}

/* Bytes of the object after its footer. */
static size_t post_len(const struct drgw_obj_trailer *t, uint64_t object_size)
{
	return (size_t)(object_size - t->footer_off - t->footer_len);
}

static int open_tail(struct drgw_rfile *f, uint64_t object_size,
		     struct drgw_err *err)
{
	size_t tail_len = object_size < TAIL_READ ? (size_t)object_size : TAIL_READ;
	uint64_t tail_off = object_size - tail_len;
	struct drgw_obj_trailer t;
	uint8_t *buf, *footer;
	size_t post;
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
	/* parse_tail() checked the framing: what follows the footer (header
	 * copy and trailer) lies within what was read. */
	post = post_len(&t, object_size);
	if (t.footer_off >= tail_off) {
		footer = buf + (t.footer_off - tail_off);
		r = open_footer(f, &t, footer, buf + tail_len - post, post, err);
	} else {
		footer = malloc(t.footer_len);
		if (!footer) {
			r = -ENOMEM;
			goto out;
		}
		r = drgw_backend_read(f->b, f->key, t.footer_off, footer,
				      t.footer_len, err);
		if (r == 0)
			r = open_footer(f, &t, footer, buf + tail_len - post,
					post, err);
		free(footer);
	}
out:
	end_call(old);
	free(buf);
	return r;
}

/* open_tail() from the bytes drgw_rfile_tail() gave earlier. */
static int open_kept_tail(struct drgw_rfile *f, uint64_t object_size,
			  const uint8_t *tail, size_t tail_len,
			  struct drgw_err *err)
{
	struct drgw_obj_trailer t;
	uint8_t *footer;
	int r;

	r = drgw_obj_parse_tail(tail, tail_len, object_size, &t, err);
	if (r == 0 && object_size - t.footer_off != tail_len) {
		drgw_err_set(err, "kept tail does not frame its footer");
		r = -EIO;
	}
	if (r == 0)
		r = drgw_obj_init_header(&f->obj, t.header, t.header_len,
					 f->rd->kr, err);
	if (r < 0)
		return r;
	/* The caller keeps the tail: no copy of it here. */
	footer = drgw_memdup(tail, t.footer_len);
	if (!footer)
		return -ENOMEM;
	r = drgw_obj_open_footer(&f->obj, &t, footer, t.footer_len, &f->idx,
				 err);
	free(footer);
	return r;
}

/*
 * The read-ahead windows of incremental f's sources.  Each gets the
 * reader's readahead in proportion to the bytes of the file it holds, so
 * that they add up to the reader's; at least one chunk (a source with a
 * small share is read slowly: its next chunk arrives in time).  (A floor
 * of 2 chunks, decoded as fetched, cut the requests for a version over six
 * increments by a third, but the windows then overran the read-ahead
 * budget and the base's chunks were evicted before they were read.)
 * Sources with less than 2 * SMALL_REQUEST chunks fetch that many,
 * stored (see the top), if all of them fit in a quarter of the cache,
 * their chunks taken to be stored as small as f's own.
 */
static int plan_windows(struct drgw_rfile *f)
{
	const struct drgw_obj_ext *x = &f->idx.ext;
	uint64_t ra = f->rd->opts.readahead, size = f->idx.meta.size;
	uint64_t n = f->idx.n_chunks, small = 0;
	size_t srcs = x->n_refs + 1;
	struct window *w = calloc(srcs, sizeof(*w));
	bool batch;

	if (!w)
		return -ENOMEM;
	/* The bytes each holds first (extents name valid sources). */
	for (size_t i = 0; i < x->n_extents; i++)
		w[x->extents[i].src].readahead += x->extents[i].len;
	for (size_t k = 0; k < srcs; k++) {
		uint64_t share = ra == 0 || size == 0 ? ra :
			(uint64_t)((double)ra * (double)w[k].readahead /
				   (double)size + 0.5);

		w[k].readahead = ra && !share ? 1 : share;
		small += w[k].readahead < 2 * SMALL_REQUEST;
	}
	batch = n && small * 2 * SMALL_REQUEST *
			     ((f->idx.offsets[n] - f->idx.offsets[0]) / n) <=
			     f->rd->opts.cache_bytes / 4;
	for (size_t k = 0; k < srcs; k++)
		w[k].fetch_ahead = batch && w[k].readahead < 2 * SMALL_REQUEST ?
					   2 * SMALL_REQUEST :
					   w[k].readahead;
	f->windows = w;
	return 0;
}

/* Gives src the read-ahead of source k of incremental f. */
static void set_window(struct drgw_rfile *src, const struct drgw_rfile *f,
		       size_t k)
{
	src->readahead = f->windows[k].readahead;
	src->fetch_ahead = f->windows[k].fetch_ahead;
}

static int rfile_open(struct drgw_reader *rd, struct drgw_backend *b,
		      const char *key, uint64_t object_size,
		      const uint8_t *tail, size_t tail_len, bool keep_tail,
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
	f->keep_tail = keep_tail;
	pthread_mutex_init(&f->src_lock, NULL);
	f->key = strdup(key);
	r = !f->key ? -ENOMEM :
	    tail    ? open_kept_tail(f, object_size, tail, tail_len, err) :
		      open_tail(f, object_size, err);
	if (r == 0 && f->idx.ext.n_refs &&
	    !(f->srcs = calloc(f->idx.ext.n_refs, sizeof(*f->srcs))))
		r = -ENOMEM;
	if (r == 0 && f->idx.ext.extents && (r = plan_windows(f)) == 0)
		set_window(f, f, 0);
	else if (r == 0)
		f->readahead = f->fetch_ahead = rd->opts.readahead;
	if (r < 0) {
		drgw_err_prefix(err, "%s on %s", key, b->name);
		rfile_unref_locked(f); /* not shared yet: no lock needed */
		return r;
	}
	*ret = f;
	return 0;
}

int drgw_rfile_open(struct drgw_reader *rd, struct drgw_backend *b,
		    const char *key, uint64_t object_size,
		    struct drgw_rfile **ret, struct drgw_err *err)
{
	return rfile_open(rd, b, key, object_size, NULL, 0, false, ret, err);
}

int drgw_rfile_open_keep_tail(struct drgw_reader *rd, struct drgw_backend *b,
			      const char *key, uint64_t object_size,
			      struct drgw_rfile **ret, struct drgw_err *err)
{
	return rfile_open(rd, b, key, object_size, NULL, 0, true, ret, err);
}

int drgw_rfile_open_tail(struct drgw_reader *rd, struct drgw_backend *b,
			 const char *key, uint64_t object_size,
			 const void *tail, size_t tail_len,
			 struct drgw_rfile **ret, struct drgw_err *err)
{
	if (!object_size) {
		drgw_err_set(err, "%s on %s: no object size", key, b->name);
		return -EINVAL;
	}
	return rfile_open(rd, b, key, object_size, tail, tail_len, false, ret,
			  err);
}

void drgw_rfile_tail(const struct drgw_rfile *f, const void **ret,
		     size_t *ret_len)
{
	*ret = f->tail;
	*ret_len = f->tail_len;
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

const struct drgw_obj_ext *drgw_rfile_ext(const struct drgw_rfile *f)
{
	return &f->idx.ext;
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

/* Chunks of f one read-ahead request covers: at most half the window, so
 * that one is in flight while the reader goes through another (a base
 * read with a 9-chunk window in 8-chunk requests waited for every one). */
static uint64_t request_chunks(const struct drgw_rfile *f)
{
	uint64_t n = f->rd->opts.request_bytes / f->obj.chunk_size;
	uint64_t w = f->fetch_ahead / 2 ? f->fetch_ahead / 2 : f->fetch_ahead;

	n = n ? n : 1;
	return n < w ? n : w;
}

/* Queues one fetch of chunks [start, end) of f, none of them cached, if it
 * fits in the cache without evicting what was fetched ahead and not read
 * yet.  False if it does not. */
static bool queue_fetch_locked(struct drgw_rfile *f, uint64_t start,
			       uint64_t end)
{
	struct drgw_reader *rd = f->rd;
	uint64_t ct = f->idx.offsets[end] - f->idx.offsets[start];
	struct job *j;

	if (!make_room_locked(rd, ct, ROOM_AHEAD))
		return false;
	j = malloc(sizeof(*j) + (end - start) * sizeof(j->e[0]));
	if (!j)
		return false;
	j->decode = false;
	j->n = 0;
	for (uint64_t c = start; c < end; c++) {
		struct centry *e = new_entry_locked(rd, f, c, C_AHEAD);

		if (!e)
			break;
		j->e[j->n++] = e;
	}
	if (j->n == 0) {
		free(j);
		return false;
	}
	j->ct_len = f->idx.offsets[start + j->n] - f->idx.offsets[start];
	rd->bytes += j->ct_len;
	rd->stats.readahead_chunks += j->n;
	queue_job_locked(rd, j, false);
	return j->n == end - start;
}

/* Requests grow with the run, 2, 4, 8... chunks up to part, as a
 * reader that skips ahead every few chunks (SQLite walking a b-tree
 * forwards) would leave most of a full request unread. */
static uint64_t ramp(uint64_t part, unsigned run)
{
	return run >= 63 || (1ULL << run) >= part ? part : 1ULL << run;
}

static bool threads_ready_locked(struct drgw_reader *rd)
{
	if (rd->n_threads == 0)
		start_threads_locked(rd);
	return rd->n_threads > 0;
}

/*
 * Forward read-ahead for a reader now at chunks from..hi, the end of its
 * run: queues whole requests of consecutive chunks from the frontier on
 * while they end within the window.  A request stops short only at the end of the file
 * and at a chunk that is cached already, so the frontier moves by whole
 * requests, never by one chunk at a time.
 */
static void readahead_up_locked(struct drgw_rfile *f, uint64_t from,
				uint64_t hi)
{
	struct drgw_reader *rd = f->rd;
	uint64_t part = ramp(request_chunks(f), f->up);
	/* One request at first, more as the run goes on. */
	uint64_t window = part * f->up < f->fetch_ahead ? part * f->up :
							 f->fetch_ahead;
	uint64_t n = f->idx.n_chunks;

	/* The chunks being read go into the first request; a reader that
	 * moved back or jumped starts a new frontier. */
	if (f->ra_up < from || f->ra_up > hi + 1 + window)
		f->ra_up = from;
	for (;;) {
		uint64_t i = f->ra_up, end;

		while (i < n && find_locked(rd, f, i))
			i++;
		f->ra_up = i;
		if (i >= n || (i + part < n ? i + part : n) > hi + 1 + window)
			break;
		for (end = i; end < n && end < i + part &&
			      !find_locked(rd, f, end); end++)
			;
		if (!queue_fetch_locked(f, i, end))
			break;
		f->ra_up = end;
	}
}

/* The same downwards, for a reader now at chunks lo..to, the start of
 * its run: SQLite walks some b-trees from the last page to the first. */
static void readahead_down_locked(struct drgw_rfile *f, uint64_t lo,
				  uint64_t to)
{
	struct drgw_reader *rd = f->rd;
	uint64_t part = ramp(request_chunks(f), f->down - 1);
	uint64_t window = part * (f->down - 1) < f->fetch_ahead ?
				  part * (f->down - 1) :
				  f->fetch_ahead;

	/* ra_down is one past the lowest chunk queued. */
	if (f->ra_down > to + 1 || f->ra_down + window < lo)
		f->ra_down = to + 1;
	for (;;) {
		uint64_t i = f->ra_down, start;

		while (i > 0 && find_locked(rd, f, i - 1))
			i--;
		f->ra_down = i;
		if (i == 0 || (i > part ? i - part : 0) + window < lo)
			break;
		for (start = i; start > 0 && start + part > i &&
				!find_locked(rd, f, start - 1); start--)
			;
		if (!queue_fetch_locked(f, start, i))
			break;
		f->ra_down = start;
	}
}

/* Marks chunk index of f, if cached, as gone past by a sequential
 * reader: the first to go when room is needed. */
static void pass_locked(struct drgw_rfile *f, uint64_t index)
{
	struct centry *e = find_locked(f->rd, f, index);

	if (e && e->cls != C_AHEAD)
		e->cls = C_PASSED;
}

/* Queues the decoding of the chunks of f fetched ahead and still stored
 * that its reader, going up, is now within f->readahead of. */
static void decode_ahead_locked(struct drgw_rfile *f)
{
	struct drgw_reader *rd = f->rd;
	uint64_t end = f->run_hi + f->readahead;

	if (f->dec_up <= f->run_hi || f->dec_up > end + 1)
		f->dec_up = f->run_hi + 1;
	for (; f->dec_up <= end; f->dec_up++) {
		struct centry *e = find_locked(rd, f, f->dec_up);

		if (!e)
			break;
		/* One still loading is decoded as it arrives (load_group():
		 * it is within the window already). */
		if (e->state != C_READY || e->pt || e->decoding)
			continue;
		e->pins++;
		if (!queue_decode_locked(rd, e)) {
			e->pins--;
			break;
		}
	}
}

/*
 * Follows where f is read: a run is the range of chunks read without a
 * jump (one chunk back and forth is still the run: the kernel serves
 * FUSE reads in any order, and SQLite steps back to a neighbouring page).
 * A run that grows by whole chunks in one direction is sequential, and
 * gets read-ahead that way.  Random readers get none.
 */
static void track_locked(struct drgw_rfile *f, uint64_t first, uint64_t last)
{
	struct drgw_reader *rd = f->rd;

	f->pos = first;
	if (!f->in_run || last + 1 < f->run_lo || first > f->run_hi + 1) {
		f->in_run = true;
		f->run_lo = first;
		f->run_hi = last;
		f->up = f->down = 0;
		/* A read of several chunks is sequential by itself. */
		if (last > first)
			f->up = (unsigned)(last - first + 1);
	}
	while (last > f->run_hi) {
		f->run_hi++;
		f->up++;
		if (f->run_hi >= 2)
			pass_locked(f, f->run_hi - 2);
	}
	while (first < f->run_lo) {
		f->run_lo--;
		f->down++;
		pass_locked(f, f->run_lo + 2);
	}
	if (rd->opts.readahead == 0 || !threads_ready_locked(rd))
		return;
	/* Forward from the second chunk on (a first read at offset 0 is
	 * also how random readers begin: SQLite reads its header page);
	 * backward, a rarer pattern, from the third. */
	if (f->up >= 1 && f->up > f->down) {
		readahead_up_locked(f, first, f->run_hi);
		if (fetched_stored(f))
			decode_ahead_locked(f);
	} else if (f->down >= 2 && f->down > f->up)
		readahead_down_locked(f, f->run_lo, last);
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

/* Hides a failed entry from lookups and drops the caller's pin; its last
 * user frees it.  Lock held. */
static void forget_locked(struct drgw_reader *rd, struct centry *e)
{
	e->index = UINT64_MAX;
	if (--e->pins == 0)
		entry_free_locked(rd, e);
}

/* Returns chunk index pinned and decoded, fetching it if needed.  A chunk
 * whose read-ahead failed (or did not authenticate) is fetched once more
 * by the reader itself: a transient error in the background must not
 * become an EIO. */
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
	int r;

	pthread_mutex_lock(&rd->lock);
	for (;;) {
		e = find_locked(rd, f, index);
		if (!e) {
			uint64_t ct = stored_len(f, index);

			/* A reader's own chunk: in the cache whatever it
			 * takes, over budget if nothing can go. */
			make_room_locked(rd, ct, ROOM_DEMAND);
			e = new_entry_locked(rd, f, index, C_USED);
			if (!e) {
				pthread_mutex_unlock(&rd->lock);
				return -ENOMEM;
			}
			e->pins++;
			rd->bytes += ct;
			rd->stats.demand_chunks++;
			pthread_mutex_unlock(&rd->lock);
			load_group(rd, &e, 1, ct, false);
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
		if (e->state == C_READY) {
			pthread_mutex_unlock(&rd->lock);
			r = need_plain(rd, e, false, err);
			pthread_mutex_lock(&rd->lock);
			if (r == 0)
				break;
		} else {
			r = e->error;
			drgw_err_set(err, "%s", e->errmsg);
		}
		if (loaded_here) {
			forget_locked(rd, e);
			pthread_mutex_unlock(&rd->lock);
			return r;
		}
		forget_locked(rd, e);
		memset(err, 0, sizeof(*err));
	}
	pthread_mutex_unlock(&rd->lock);
	*ret = e;
	return 0;
}

/* Done with e, which was read: no longer ahead of its reader. */
static void unpin(struct drgw_reader *rd, struct centry *e)
{
	pthread_mutex_lock(&rd->lock);
	e->pins--;
	if (e->cls == C_AHEAD)
		e->cls = C_USED;
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
	track_locked(f, first, last);
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
		memcpy((char *)buf + done, e->pt + from, n);
		unpin(rd, e);
		done += n;
	}
	return (ssize_t)done;
}

static void forget_map(struct drgw_rfile *f)
{
	free(f->idx.ext.extents);
	f->idx.ext.extents = NULL;
	f->idx.ext.n_extents = 0;
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
				/* Read only as data: its own map would
				 * just take memory. */
				forget_map(src);
				set_window(src, f, k + 1);
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
