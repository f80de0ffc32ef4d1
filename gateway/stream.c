/* SPDX-License-Identifier: MIT */
/*
 * Uploads that follow the encoder; see stream.h.
 *
 * One struct drgw_stream per encode, shared by the encoder and one upload
 * thread per streaming backend; the last to let go frees it.  The encoder
 * publishes how many bytes exist; uploads wait on the condition variable.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "replicate.h"
#include "stream.h"
#include "testhook.h"

enum stream_state { S_GROWING, S_COMPLETE, S_ABANDONED };

struct drgw_stream {
	struct drgw_gateway *gw;
	int64_t version_id;
	char vid[64];
	char *name;
	char key[80];
	int fd; /* read-only, on the spool object */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Protected by lock. */
	uint64_t written;
	enum stream_state state;
	unsigned refs;
};

/* An upload thread that has ended, for drgw_stream_join() to join: until
 * then the thread may still be running its thread-local destructors
 * (OpenSSL's error state), and a process exiting under it leaks them. */
struct drgw_stream_ended {
	pthread_t tid;
	struct drgw_stream_ended *next;
};

struct upload {
	struct drgw_put_source src; /* first: upload_of() */
	struct drgw_stream *s;
	struct drgw_backend *b;
	struct drgw_stream_ended *ended;
	/* The last token the plugin saved, to abort with. */
	void *token;
	size_t token_len;
};

static struct upload *upload_of(struct drgw_put_source *src)
{
	return (struct upload *)src;
}

static void stream_unref(struct drgw_stream *s)
{
	bool last;

	pthread_mutex_lock(&s->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (!last)
		return;
	close(s->fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->name);
	free(s);
}

/* Waits until want bytes exist or the object is done; see backend.h. */
static int src_grow(struct drgw_put_source *src, uint64_t want,
		    uint64_t *ret_size, int *ret_complete)
{
	struct drgw_stream *s = upload_of(src)->s;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	while (s->state == S_GROWING && s->written < want &&
	       !atomic_load(&s->gw->cancel_uploads))
		pthread_cond_wait(&s->cond, &s->lock);
	if (s->state == S_ABANDONED)
		r = -ESTALE;
	else if (s->state == S_GROWING && s->written < want)
		r = -ECANCELED;
	*ret_size = s->written;
	*ret_complete = s->state == S_COMPLETE;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int src_read_at(struct drgw_put_source *src, void *buf, size_t len,
		       uint64_t off)
{
	uint64_t have;
	int complete, r;

	drgw_test_point("stream-read");
	r = src_grow(src, off + len, &have, &complete);
	if (r < 0)
		return r;
	if (off + len > have)
		return -EINVAL; /* past the end of a complete object */
	return drgw_pread_exact(upload_of(src)->s->fd, buf, len, off);
}

static int src_save_token(struct drgw_put_source *src, const void *token,
			  size_t len)
{
	struct upload *u = upload_of(src);
	int r;

	if (len > 64 * 1024)
		return -E2BIG;
	r = drgw_catalog_save_stream_token(u->s->gw->cat, u->s->vid, u->b->name,
					   u->s->key, token, len);
	return r < 0 ? r : drgw_token_keep(&u->token, &u->token_len, token, len);
}

static int src_cancelled(struct drgw_put_source *src)
{
	return atomic_load(&upload_of(src)->s->gw->cancel_uploads);
}

static void *upload_main(void *arg)
{
	struct upload *u = arg;
	struct drgw_stream *s = u->s;
	struct drgw_gateway *gw = s->gw;
	struct drgw_upload_of of = { s->version_id, s->vid, s->name };
	struct drgw_err err = { 0 }, e2 = { 0 };
	struct drgw_stream_ended *ended;
	int64_t t0 = drgw_mono_ns();
	uint64_t size;
	int complete, r;

	r = drgw_backend_put(u->b, s->key, &u->src, &err);
	/* Where the encoder stands decides what the result means. */
	src_grow(&u->src, UINT64_MAX, &size, &complete);
	if (r == 0 && complete) {
		drgw_replicate_done(gw, &of, u->b->name, size, t0, true);
		drgw_catalog_delete_stream(gw->cat, s->vid, u->b->name);
	} else {
		/* Abandoned, cancelled or failed: nothing may stay half done
		 * on the backend, and the ordinary replica (if the object was
		 * committed) uploads it again from the spool. */
		if (u->token &&
		    drgw_backend_abort_put(u->b, s->key, u->token, u->token_len,
					   &e2) < 0)
			log_warning("cannot abort the upload of %s to %s: %s",
				    s->name, u->b->name, e2.msg);
		else
			drgw_catalog_delete_stream(gw->cat, s->vid, u->b->name);
		if (complete && r != -ECANCELED)
			drgw_replicate_failed(gw, &of, u->b->name,
					      err.msg[0] ? err.msg : strerror(-r),
					      0);
		else if (complete)
			drgw_catalog_replica_release(gw->cat, s->version_id,
						     u->b->name);
	}
	free(u->token);
	stream_unref(s);
	ended = u->ended;
	free(u);
	ended->tid = pthread_self();
	pthread_mutex_lock(&gw->lock);
	ended->next = gw->streams_ended;
	gw->streams_ended = ended;
	gw->streams_active--;
	pthread_mutex_unlock(&gw->lock);
	drgw_gateway_kick_replicators(gw);
	return NULL;
}

void drgw_stream_join(struct drgw_gateway *gw)
{
	struct drgw_stream_ended *e;

	pthread_mutex_lock(&gw->lock);
	e = gw->streams_ended;
	gw->streams_ended = NULL;
	pthread_mutex_unlock(&gw->lock);
	while (e) {
		struct drgw_stream_ended *next = e->next;

		pthread_join(e->tid, NULL);
		free(e);
		e = next;
	}
}

/* The encoder's reference; NULL if the spool object cannot be opened. */
static struct drgw_stream *stream_new(struct drgw_gateway *gw,
				      const struct drgw_version *v,
				      const char *tmp_name)
{
	struct drgw_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fd = openat(gw->spool_fd, tmp_name, O_RDONLY | O_CLOEXEC);
	s->name = strdup(v->name);
	if (s->fd < 0 || !s->name) {
		if (s->fd >= 0)
			close(s->fd);
		free(s->name);
		free(s);
		return NULL;
	}
	s->gw = gw;
	s->version_id = v->id;
	drgw_strlcpy(s->vid, v->vid, sizeof(s->vid));
	drgw_spool_name(v->vid, s->key, sizeof(s->key));
	s->refs = 1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	return s;
}

struct drgw_stream *drgw_stream_begin(struct drgw_gateway *gw,
				      const struct drgw_version *v,
				      const char *tmp_name, uint64_t size_hint,
				      bool ret_streaming[DRGW_MAX_BACKENDS])
{
	struct drgw_stream *s = NULL;

	memset(ret_streaming, 0, DRGW_MAX_BACKENDS * sizeof(bool));
	drgw_stream_join(gw);
	for (size_t i = 0; gw->cfg->streaming && i < gw->n_backends; i++) {
		struct drgw_backend *b = gw->backends[i];
		struct upload *u;
		pthread_t tid;

		if (!(b->ops.caps & DRGW_CAP_STREAMING_PUT) || !b->ops.put)
			continue;
		if (!s && !(s = stream_new(gw, v, tmp_name)))
			return NULL;
		u = calloc(1, sizeof(*u));
		if (!u || !(u->ended = calloc(1, sizeof(*u->ended)))) {
			free(u);
			break;
		}
		u->s = s;
		u->b = b;
		u->src.fd = s->fd;
		u->src.read_at = src_read_at;
		u->src.save_resume_token = src_save_token;
		u->src.cancelled = src_cancelled;
		u->src.grow = src_grow;
		u->src.size_hint = size_hint;
		pthread_mutex_lock(&s->lock);
		s->refs++;
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_lock(&gw->lock);
		gw->streams_active++;
		pthread_mutex_unlock(&gw->lock);
		if (pthread_create(&tid, NULL, upload_main, u)) {
			pthread_mutex_lock(&gw->lock);
			gw->streams_active--;
			pthread_mutex_unlock(&gw->lock);
			s->refs--;
			free(u->ended);
			free(u);
			break;
		}
		ret_streaming[i] = true;
		log_debug("streaming %s to %s while it is encoded", v->name,
			  b->name);
	}
	return s;
}

void drgw_stream_progress(void *stream, uint64_t written)
{
	struct drgw_stream *s = stream;

	pthread_mutex_lock(&s->lock);
	s->written = written;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void drgw_stream_finish(struct drgw_stream *s, bool ok, uint64_t size)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->state = ok ? S_COMPLETE : S_ABANDONED;
	if (ok)
		s->written = size;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	stream_unref(s);
}

struct pending_check {
	const char *backend;
	bool pending;
};

static int replica_pending(void *arg, const struct drgw_replica *r)
{
	struct pending_check *pc = arg;

	if (!strcmp(r->backend, pc->backend))
		pc->pending = r->state != DRGW_REPLICA_DONE;
	return 0;
}

/* An upload a crash interrupted: give its token to the committed replica
 * still to do, which resumes with it (or, the token being for a growing
 * object, aborts that upload and starts over); else abort it here. */
static int recover_one(void *arg, const struct drgw_stream_row *row)
{
	struct drgw_gateway *gw = arg;
	ssize_t bi = drgw_gateway_backend_index(gw, row->backend);
	struct drgw_backend *b;
	struct drgw_version v;
	struct drgw_err err = { 0 };

	if (bi < 0)
		return 0; /* not configured now; kept for when it is */
	b = gw->backends[bi];
	if (drgw_catalog_get_version(gw->cat, row->vid, &v) == 0) {
		struct pending_check pc = { .backend = row->backend };

		if (v.state == DRGW_VERSION_ENCODED)
			drgw_catalog_each_replica(gw->cat, v.id, replica_pending,
						  &pc);
		if (pc.pending)
			drgw_catalog_save_token(gw->cat, v.id, row->backend,
						row->token, row->token_len);
		drgw_version_release(&v);
		if (pc.pending) {
			drgw_catalog_delete_stream(gw->cat, row->vid, row->backend);
			return 0;
		}
	}
	if (drgw_backend_abort_put(b, row->key, row->token, row->token_len,
				   &err) < 0) {
		log_warning("cannot abort an interrupted upload to %s: %s",
			    row->backend, err.msg);
		return 0;
	}
	log_info("discarded an upload to %s that a stop interrupted while it followed the encoder",
		 row->backend);
	drgw_catalog_delete_stream(gw->cat, row->vid, row->backend);
	return 0;
}

int drgw_stream_recover(struct drgw_gateway *gw)
{
	return drgw_catalog_each_stream(gw->cat, recover_one, gw);
}
