/* SPDX-License-Identifier: MIT */
/*
 * Copying a remote snapshot out in full, with its content hash checked
 * (`drgw restore`, `drgw verify`), or as it is stored, from one backend to
 * another (`drgw backfill`).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "replicate.h"
#include "restore.h"
#include "testhook.h"

#define COPY_STEP (4u << 20)

void drgw_reader_opts_from_config(const struct drgw_config *cfg,
				  struct drgw_reader_opts *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->cache_bytes = cfg->read_cache_bytes;
	ret->readahead = cfg->readahead_chunks;
	ret->request_bytes = cfg->read_request_bytes;
	ret->threads = cfg->fetch_threads;
	ret->deadline_ns = cfg->read_deadline_ns;
}

int drgw_restore_copy(struct drgw_gateway *gw, struct drgw_reader *rd,
		      const struct drgw_snapshot *s, size_t loc, int fd,
		      bool whole, uint8_t ret_sha256[32],
		      struct drgw_err *err)
{
	struct drgw_rfile *rf = NULL;
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	uint8_t *buf = malloc(COPY_STEP);
	uint64_t off = 0, size;
	int r;

	if (!sha || !buf) {
		r = -ENOMEM;
		goto out;
	}
	r = drgw_remote_open(gw, rd, s, loc, whole, &rf, err);
	if (r < 0)
		goto out;
	/* The header at offset 0 is never read otherwise: a full read
	 * checks it against the trailer's copy (docs/FORMAT.md). */
	if ((r = drgw_rfile_check_header(rf, err)) < 0)
		goto out;
	size = drgw_rfile_meta(rf)->size;
	EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
	while (off < size) {
		ssize_t n = drgw_rfile_pread(rf, buf, COPY_STEP, off, err);

		if (n <= 0) {
			r = n < 0 ? (int)n : -EIO;
			if (n == 0)
				drgw_err_set(err, "object ended early");
			goto out;
		}
		EVP_DigestUpdate(sha, buf, (size_t)n);
		if (fd >= 0 && (r = drgw_write_full(fd, buf, (size_t)n)) < 0) {
			drgw_err_set(err, "cannot write: %s", strerror(-r));
			goto out;
		}
		drgw_test_point("restore-read");
		off += (uint64_t)n;
	}
	EVP_DigestFinal_ex(sha, ret_sha256, NULL);
	if (memcmp(ret_sha256, drgw_rfile_meta(rf)->sha256, 32)) {
		drgw_err_set(err,
			     "content hash does not match the snapshot's: corrupt object or drgw bug");
		r = -EBADMSG;
	}
out:
	drgw_rfile_close(rf);
	EVP_MD_CTX_free(sha);
	free(buf);
	return r;
}

/* A backfill upload: the object in an unlinked temporary file.  Its
 * resume token is kept in memory only, to abort an upload that failed (an
 * interrupted backfill copies the object again). */
struct copy_src {
	struct drgw_put_source src;	/* first: see copy_src_of() */
	void *token;
	size_t token_len;
};

static struct copy_src *copy_src_of(struct drgw_put_source *src)
{
	return (struct copy_src *)src;
}

static int keep_token(struct drgw_put_source *src, const void *token,
		      size_t len)
{
	struct copy_src *c = copy_src_of(src);

	return drgw_token_keep(&c->token, &c->token_len, token, len);
}

int drgw_restore_copy_key(struct drgw_gateway *gw, size_t src,
			  const char *key, uint64_t size, size_t dst,
			  const uint8_t *expect_sha256, struct drgw_err *err)
{
	struct copy_src c = { .src = {
		.size = size,
		.fd = -1,
		.read_at = drgw_fd_source_read_at,
		.save_resume_token = keep_token,
	} };
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	uint8_t *buf = malloc(COPY_STEP);
	char tmp[PATH_MAX];
	int r = -ENOMEM;

	if (!sha || !buf)
		goto out;
	/* Unlinked at once: gone with the process, whatever happens. */
	snprintf(tmp, sizeof(tmp), "%s/.backfill-XXXXXX", gw->cache_dir);
	c.src.fd = mkostemp(tmp, O_CLOEXEC);
	if (c.src.fd < 0) {
		r = -errno;
		drgw_err_set(err, "cannot create a temporary file in %s: %s",
			     gw->cache_dir, strerror(-r));
		goto out;
	}
	unlink(tmp);
	EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
	for (uint64_t off = 0; off < c.src.size;) {
		size_t n = c.src.size - off < COPY_STEP ?
				   (size_t)(c.src.size - off) :
				   COPY_STEP;

		r = drgw_backend_read(gw->backends[src], key, off, buf, n, err);
		if (r < 0)
			goto out;
		r = drgw_write_full(c.src.fd, buf, n);
		if (r < 0) {
			drgw_err_set(err, "cannot write a temporary copy in %s: %s",
				     gw->cache_dir, strerror(-r));
			goto out;
		}
		EVP_DigestUpdate(sha, buf, n);
		off += n;
	}
	EVP_DigestFinal_ex(sha, c.src.sha256, NULL);
	if (expect_sha256 && memcmp(expect_sha256, c.src.sha256, 32)) {
		drgw_err_set(err,
			     "%s on %s is not what was uploaded (its SHA-256 differs from the catalog's)",
			     key, gw->backend_names[src]);
		r = -EBADMSG;
		goto out;
	}
	r = drgw_backend_put(gw->backends[dst], key, &c.src, err);
	if (r < 0 && c.token) {
		struct drgw_err ignored = { 0 };

		/* Leave no half-done multipart upload behind. */
		drgw_backend_abort_put(gw->backends[dst], key, c.token,
				       c.token_len, &ignored);
	}
out:
	if (c.src.fd >= 0)
		close(c.src.fd);
	free(c.token);
	EVP_MD_CTX_free(sha);
	free(buf);
	return r;
}

int drgw_restore_copy_object(struct drgw_gateway *gw,
			     const struct drgw_snapshot *s, size_t loc,
			     size_t dst, struct drgw_err *err)
{
	const struct drgw_location *l = &s->locs[loc];

	return drgw_restore_copy_key(gw, l->backend, l->key, l->object_size,
				     dst, NULL, err);
}

/* The verdict of snapshot s: the catalog's (with its message) if it knows
 * the version, else what the object says of itself (footer extension 3,
 * kept without its message); NOT_CHECKED if neither knows.  *ret_good: it
 * passed and is not marked incomplete either. */
static struct drgw_sqlcheck_result verdict_of(struct drgw_catalog *cat,
					      const struct drgw_snapshot *s,
					      bool *ret_good)
{
	struct drgw_sqlcheck_result res = { 0 };
	struct drgw_version v;

	if (cat && drgw_catalog_get_version(cat, s->meta.vid, &v) == 0) {
		res = v.check;
		*ret_good = res.verdict == DRGW_SQLCHECK_OK && !v.problem;
		drgw_version_release(&v);
		return res;
	}
	if (s->meta.check == DRGW_CHECK_OK)
		res.verdict = DRGW_SQLCHECK_OK;
	else if (s->meta.check == DRGW_CHECK_FAILED)
		res.verdict = DRGW_SQLCHECK_CORRUPT;
	*ret_good = s->meta.check == DRGW_CHECK_OK && !s->meta.incomplete;
	return res;
}

bool drgw_restore_check_warning(struct drgw_catalog *cat,
				const struct drgw_remote_set *set,
				const struct drgw_snapshot *s, char *buf,
				size_t size)
{
	struct drgw_sqlcheck_result res;
	const struct drgw_snapshot *best = NULL;
	char what[sizeof(res.message) + 64], when[40];
	char *pattern;
	bool good;

	res = verdict_of(cat, s, &good);
	if (!drgw_sqlcheck_failed(res.verdict))
		return false;
	if (res.message[0])
		drgw_sqlcheck_describe(&res, what, sizeof(what));
	else
		snprintf(what, sizeof(what), "as its object records");
	pattern = drgw_name_pattern(s->meta.name);
	for (size_t i = 0; pattern && i < set->n; i++) {
		const struct drgw_snapshot *o = &set->snaps[i];
		char *p;

		if (best && o->meta.created_ns <= best->meta.created_ns)
			continue;
		p = drgw_name_pattern(o->meta.name);
		if (p && !strcmp(p, pattern)) {
			verdict_of(cat, o, &good);
			if (good)
				best = o;
		}
		free(p);
	}
	if (best) {
		drgw_format_time(best->meta.created_ns, when, sizeof(when));
		snprintf(buf, size,
			 "%s version %s failed its SQLite check at ingest (%s); the newest version of %s that passed is %s version %s, sealed %s (drgw restore --version %s %s)",
			 s->meta.name, s->meta.vid, what,
			 pattern ? pattern : s->meta.name, best->meta.name,
			 best->meta.vid, when, best->meta.vid, best->meta.name);
	} else {
		snprintf(buf, size,
			 "%s version %s failed its SQLite check at ingest (%s); no version of %s on the backends passed it",
			 s->meta.name, s->meta.vid, what,
			 pattern ? pattern : s->meta.name);
	}
	free(pattern);
	return true;
}
