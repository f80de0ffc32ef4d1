/* SPDX-License-Identifier: MIT */
/*
 * The replicator: a pool of workers that upload (version, backend) jobs
 * from the spool.  Jobs come from the catalog, oldest snapshot first; at
 * most backend-concurrency run per backend, so a slow or failing backend
 * never takes every worker, and a failed job waits out a jittered,
 * exponential backoff before it is tried again.  A resume token the plugin
 * saves goes straight into the catalog, so a crash mid-upload resumes
 * where the upload stood.  When an object is on every backend its spool
 * copy is deleted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway.h"
#include "index.h"
#include "log.h"
#include "replicate.h"
#include "testhook.h"

/* The catalog takes progress updates at most this often per upload. */
#define PROGRESS_EVERY_NS (2 * NSEC_PER_SEC)

struct upload {
	struct drgw_put_source src;
	struct drgw_gateway *gw;
	const struct drgw_replica *job;
	/* Plugins report progress from several threads. */
	atomic_int_fast64_t last_progress_ns;
};

static struct upload *upload_of(struct drgw_put_source *src)
{
	/* src is the first member (STYLE.md: base struct first). */
	return (struct upload *)src;
}

int drgw_fd_source_read_at(struct drgw_put_source *src, void *buf,
			   size_t len, uint64_t off)
{
	if (off > src->size || len > src->size - off)
		return -EINVAL;
	return drgw_pread_exact(src->fd, buf, len, off);
}

static int src_save_token(struct drgw_put_source *src, const void *token,
			  size_t len)
{
	struct upload *u = upload_of(src);

	if (len > 64 * 1024)
		return -E2BIG;
	return drgw_catalog_save_token(u->gw->cat, u->job->version_id,
				       u->job->backend, token, len);
}

static void src_progress(struct drgw_put_source *src, uint64_t done)
{
	struct upload *u = upload_of(src);
	int64_t now = drgw_mono_ns();
	int_fast64_t last = atomic_load(&u->last_progress_ns);

	drgw_test_point("upload-progress");
	/* One thread per interval wins the exchange and writes. */
	if (now - last < PROGRESS_EVERY_NS ||
	    !atomic_compare_exchange_strong(&u->last_progress_ns, &last, now))
		return;
	drgw_catalog_set_progress(u->gw->cat, u->job->version_id,
				  u->job->backend, done);
}

static int src_cancelled(struct drgw_put_source *src)
{
	return atomic_load(&upload_of(src)->gw->cancel_uploads);
}

static void release_spool_if_done(struct drgw_gateway *gw,
				  const struct drgw_upload_of *of)
{
	bool all = false;
	char name[128];

	if (drgw_catalog_all_replicated(gw->cat, of->version_id, &all) < 0 ||
	    !all)
		return;
	drgw_spool_name(of->vid, name, sizeof(name));
	if (unlinkat(gw->spool_fd, name, 0) < 0 && errno != ENOENT)
		log_warning("cannot remove spool object %s: %s", name,
			    strerror(errno));
}

void drgw_replicate_done(struct drgw_gateway *gw,
			 const struct drgw_upload_of *of, const char *backend,
			 uint64_t bytes, int64_t t0, bool streamed)
{
	char sz[32];

	ssize_t bi = drgw_gateway_backend_index(gw, backend);

	/* On the backend, not yet in the catalog: the restart must find
	 * out, not upload it forever (an S3 Complete of a gone upload). */
	drgw_test_point("upload-finished");
	drgw_catalog_replica_done(gw->cat, of->version_id, backend, bytes);
	drgw_test_point("replica-recorded");
	if (bi >= 0)
		atomic_fetch_add(&gw->index_dirty[bi], 1);
	drgw_format_size(bytes, sz, sizeof(sz));
	log_info("replicated %s version %s to %s (%s in %.2fs%s)", of->name,
		 of->vid, backend, sz,
		 (double)(drgw_mono_ns() - t0) / NSEC_PER_SEC,
		 streamed ? ", streamed while encoding" : "");
	release_spool_if_done(gw, of);
}

void drgw_replicate_failed(struct drgw_gateway *gw,
			   const struct drgw_upload_of *of, const char *backend,
			   const char *msg, unsigned attempts)
{
	int64_t wait = drgw_gateway_backoff(gw, attempts);
	char when[32];

	drgw_catalog_replica_failed(gw->cat, of->version_id, backend, msg,
				    drgw_now_ns() + wait);
	drgw_format_duration(wait, when, sizeof(when));
	/* The first failure is an error; repeats only a warning, so a long
	 * outage does not flood the log at error level. */
	drgw_log(attempts == 0 ? DRGW_LOG_ERROR : DRGW_LOG_WARNING,
		 "cannot replicate %s to %s: %s (attempt %u, next in %s)",
		 of->name, backend, msg, attempts + 1, when);
}

/* Is the object of v on b already, byte for byte?  Read back and hashed:
 * an object of the right size is not proof (it may be another upload's,
 * or tampered with), and this only runs when the spool copy is gone. */
static bool already_there(struct drgw_backend *b,
			  const struct drgw_replica *job,
			  const struct drgw_version *v)
{
	struct drgw_object_info info;
	struct drgw_err err = { 0 };
	uint8_t want[32], got[32];

	return drgw_unhex(v->object_sha256, want, sizeof(want)) == 0 &&
	       drgw_backend_stat(b, job->key, &info, &err) == 0 &&
	       info.size == v->stored_size &&
	       drgw_backend_hash(b, job->key, info.size, got, &err) == 0 &&
	       !memcmp(want, got, sizeof(got));
}

static void run_job(struct drgw_gateway *gw, struct drgw_backend *b,
		    const struct drgw_replica *job)
{
	struct upload u = { .gw = gw, .job = job };
	struct drgw_err err = { 0 };
	struct drgw_version v = { 0 };
	struct drgw_upload_of of;
	char name[128], msg[sizeof(err.msg) + 200];
	int64_t t0 = drgw_mono_ns();
	struct stat st;
	int r;

	r = drgw_catalog_get_version_by_id(gw->cat, job->version_id, &v);
	if (r < 0) {
		/* Gone for good only if it really is gone; a busy catalog
		 * is just a reason to try again later. */
		drgw_catalog_replica_failed(
			gw->cat, job->version_id, job->backend,
			r == -ENOENT ? "version missing from the catalog" :
				       "cannot read the catalog",
			r == -ENOENT ? INT64_MAX :
				       drgw_now_ns() +
					       drgw_gateway_backoff(gw, job->attempts));
		return;
	}
	of = (struct drgw_upload_of){ v.id, v.vid, v.name };
	drgw_spool_name(v.vid, name, sizeof(name));
	u.src.fd = openat(gw->spool_fd, name, O_RDONLY | O_CLOEXEC);
	if (u.src.fd < 0 && errno == ENOENT && already_there(b, job, &v)) {
		/* A power cut undid our "replicated" mark but not the spool
		 * deletion that followed it (synchronous=NORMAL). */
		drgw_catalog_replica_done(gw->cat, job->version_id, job->backend,
					  v.stored_size);
		log_info("%s version %s is already on %s", v.name, v.vid, b->name);
		goto out;
	}
	if (u.src.fd < 0 || fstat(u.src.fd, &st) < 0 ||
	    (uint64_t)st.st_size != v.stored_size) {
		snprintf(msg, sizeof(msg),
			 "spool object %s/spool/%s is missing or damaged; the local file must be written again to back it up",
			 gw->cache_dir, name);
		r = -EIO;
		goto failed;
	}
	u.src.size = v.stored_size;
	u.src.read_at = drgw_fd_source_read_at;
	u.src.resume_token = job->token;
	u.src.resume_token_len = job->token_len;
	u.src.save_resume_token = src_save_token;
	u.src.progress = src_progress;
	u.src.cancelled = src_cancelled;
	drgw_unhex(v.object_sha256, u.src.sha256, sizeof(u.src.sha256));

	if (job->token)
		log_info("resuming upload of %s version %s to %s from its saved state",
			 v.name, v.vid, b->name);
	r = drgw_backend_put(b, job->key, &u.src, &err);
	if (r == 0) {
		drgw_replicate_done(gw, &of, b->name, v.stored_size, t0, false);
		goto out;
	}
	if (r == -ECANCELED) {
		drgw_catalog_replica_release(gw->cat, job->version_id,
					     job->backend);
		log_info("upload of %s to %s interrupted by shutdown; it resumes on the next start",
			 v.name, b->name);
		goto out;
	}
	snprintf(msg, sizeof(msg), "%s", err.msg);
failed:
	drgw_replicate_failed(gw, &of, b->name, msg, job->attempts);
out:
	if (u.src.fd >= 0)
		close(u.src.fd);
	drgw_version_release(&v);
}

/* How long a final index write waits for one in progress. */
#define INDEX_WAIT_NS (30 * NSEC_PER_SEC)

/* Claims the index write of one backend that needs one: dirty, no upload
 * to it in flight, and due.  -1 if none; *ret_busy then says whether a
 * dirty one is being written by another thread. */
static ssize_t claim_index(struct drgw_gateway *gw, bool force, int64_t now,
			   unsigned *ret_dirty, bool *ret_busy)
{
	ssize_t pick = -1;

	*ret_busy = false;
	pthread_mutex_lock(&gw->lock);
	for (size_t b = 0; b < gw->n_backends && pick < 0; b++) {
		unsigned dirty = atomic_load(&gw->index_dirty[b]);

		if (dirty && gw->index_busy[b])
			*ret_busy = true;
		if (!dirty || gw->index_busy[b] || (!force && gw->inflight[b]) ||
		    (!force && now - gw->index_at[b] < gw->cfg->index_interval_ns))
			continue;
		gw->index_busy[b] = true;
		*ret_dirty = dirty;
		pick = (ssize_t)b;
	}
	pthread_mutex_unlock(&gw->lock);
	return pick;
}

void drgw_replicate_write_indexes(struct drgw_gateway *gw, bool force)
{
	int64_t give_up = drgw_mono_ns() + INDEX_WAIT_NS;
	unsigned dirty;
	bool busy;
	ssize_t b;

	if (!force && gw->cfg->index_interval_ns <= 0)
		return;
	for (;;) {
		struct drgw_err err = { 0 };
		int r;

		b = claim_index(gw, force, drgw_mono_ns(), &dirty, &busy);
		/* The final index must include what was replicated while an
		 * idle replicator was writing one: wait for it, then write
		 * again. */
		if (b < 0 && force && busy && drgw_mono_ns() < give_up) {
			usleep(20 * 1000);
			continue;
		}
		if (b < 0)
			break;
		r = drgw_index_write(gw, (size_t)b, &err);

		/* A failure waits for the next interval (or the next stop):
		 * the index only saves readers time. */
		if (r < 0)
			log_warning("cannot write the index of %s: %s",
				    gw->backend_names[b], err.msg);
		else
			atomic_fetch_sub(&gw->index_dirty[b], dirty);
		pthread_mutex_lock(&gw->lock);
		gw->index_busy[b] = false;
		gw->index_at[b] = drgw_mono_ns();
		pthread_mutex_unlock(&gw->lock);
		if (force && r < 0)
			break;
	}
}

void *drgw_replicator_main(void *arg)
{
	struct drgw_gateway *gw = arg;
	uint64_t seen = 0;
	bool busy[DRGW_MAX_BACKENDS];

	while (!atomic_load(&gw->exiting)) {
		struct drgw_replica job;
		struct drgw_backend *b = NULL;
		int64_t next_due = INT64_MAX;
		ssize_t bi = -1;
		int r;

		pthread_mutex_lock(&gw->lock);
		for (size_t i = 0; i < gw->n_backends; i++)
			busy[i] = gw->inflight[i] >= gw->cfg->backend_concurrency;
		pthread_mutex_unlock(&gw->lock);
		/* Claimed without gw->lock, which FUSE threads take to kick the
		 * sealer: they must never wait on SQLite.  Two workers may
		 * overshoot a backend's concurrency by one meanwhile; the
		 * claim itself is atomic in the catalog. */
		r = drgw_catalog_claim_replica(gw->cat, drgw_now_ns(),
					       gw->backend_names, busy,
					       gw->n_backends, &job, &next_due);
		if (r == 0) {
			bi = drgw_gateway_backend_index(gw, job.backend);
			b = gw->backends[bi];
			pthread_mutex_lock(&gw->lock);
			gw->inflight[bi]++;
			gw->inflight_total++;
			pthread_mutex_unlock(&gw->lock);
		}
		if (r < 0) {
			/* Nothing to upload right now: a good moment for an
			 * index record. */
			if (!atomic_load(&gw->draining))
				drgw_replicate_write_indexes(gw, false);
			drgw_gateway_wait(gw, &gw->replicate_cond,
					  &gw->replicate_kicks, &seen,
					  next_due == INT64_MAX ?
						  INT64_MAX :
						  next_due - drgw_now_ns());
			continue;
		}
		run_job(gw, b, &job);
		drgw_replica_release(&job);
		pthread_mutex_lock(&gw->lock);
		gw->inflight[bi]--;
		gw->inflight_total--;
		pthread_mutex_unlock(&gw->lock);
		/* A free slot on this backend may unblock another worker. */
		drgw_gateway_kick_replicators(gw);
	}
	return NULL;
}
