/* SPDX-License-Identifier: MIT */
/*
 * Uploads.
 *
 * Every body is read twice from the spool: once to compute its MD5 and
 * SHA-256 (Content-MD5 and the signed x-amz-content-sha256 must precede
 * the body), then streamed to curl.  That keeps memory at one small buffer
 * per worker whatever the part size, and a retry simply reads again.  S3
 * checks both digests, so a spool file that changed between the reads is
 * refused rather than stored.
 *
 * Multipart resume token (text, at most 64 KiB, saved after every part):
 *
 *   drgw-s3-mpu 1
 *   size <object size> part <part size> sha256 <hex or ->
 *   upload <upload id, percent-encoded>
 *   <part number> <ETag without quotes, percent-encoded> [<sha256 base64>]
 *   ...
 *
 * and, saved just before CreateMultipartUpload, the same with the line
 * "creating" in place of "upload ...": whoever finds it (a resumed put()
 * or abort_put()) aborts the uploads of the key that no token names, so
 * that a crash between Create and the save leaves no upload behind.
 *
 * A token only resumes the same object (size and SHA-256 must match).  The
 * part list is trusted as the server's state: s3rver and some S3
 * look-alikes have no ListParts, and a part that was recorded was
 * acknowledged.  Where ListParts exists it is used to drop parts the
 * server no longer has.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "pbuf.h"
#include "pcodec.h"
#include "pdigest.h"
#include "s3_put.h"
#include "s3_req.h"
#include "s3_xml.h"

#define TOKEN_MAGIC "drgw-s3-mpu 1\n"
#define TOKEN_CREATING "creating"
#define TOKEN_MAX (64 * 1024)
#define TOKEN_HEADER_MAX 2048		/* magic, sizes, upload id */
#define TOKEN_PART_MD5 44		/* "nnnnn " + 32 hex + '\n' + slack */
#define TOKEN_PART_SHA 46		/* " " + 44 base64 + slack */
#define READ_CHUNK (1 << 20)
#define MAX_WORKERS 64

struct part {
	char *etag;			/* NULL until uploaded */
	char sha_b64[48];		/* x-amz-checksum-sha256, if used */
};

struct mpu {
	struct s3 *s3;
	const char *key;
	struct drgw_put_source *src;
	/* The object's size; for a growing source UINT64_MAX until the
	 * source says it is complete (lock). */
	uint64_t size;
	int growing;
	uint64_t part_size;
	unsigned nparts;
	struct pbuf upload_id;
	struct part *parts;		/* [nparts]; protected by lock */
	char sha_hex[65];		/* object SHA-256 or "-" */

	pthread_mutex_t lock;
	unsigned next;			/* next part to hand out; lock */
	int stop;			/* lock */
	int err;			/* first error; lock */
	struct drgw_err first_err;	/* lock */
	uint64_t done_bytes;		/* lock */
};

static int src_read(void *arg, void *buf, size_t len, uint64_t off)
{
	struct drgw_put_source *src = arg;

	return src->read_at(src, buf, len, off);
}

static int src_cancelled(void *arg)
{
	struct drgw_put_source *src = arg;

	return src->cancelled(src);
}

static int is_cancelled(struct drgw_put_source *src)
{
	return src->cancelled && src->cancelled(src);
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

uint64_t s3_part_size(uint64_t size, uint64_t min_part, int with_sha256)
{
	uint64_t budget = (TOKEN_MAX - TOKEN_HEADER_MAX) /
			  (TOKEN_PART_MD5 + (with_sha256 ? TOKEN_PART_SHA : 0));
	uint64_t max_parts = budget < S3_MAX_PARTS ? budget : S3_MAX_PARTS;
	uint64_t part = min_part;
	const uint64_t mib = 1ULL << 20;

	if (size / max_parts >= part)
		part = (size + max_parts - 1) / max_parts;
	part = (part + mib - 1) / mib * mib;
	return part > S3_MAX_PART ? 0 : part;
}

/* First pass over [off, off+len): MD5 and SHA-256. */
static int digest_range(struct drgw_put_source *src, uint64_t off,
			uint64_t len, char *buf, uint8_t md5[16],
			uint8_t sha[32])
{
	struct pdigest dm, ds;
	int r;

	r = pdigest_init(&dm, PDIGEST_MD5);
	if (r < 0)
		return r;
	r = pdigest_init(&ds, PDIGEST_SHA256);
	if (r < 0) {
		pdigest_release(&dm);
		return r;
	}
	while (len && !r) {
		size_t n = len < READ_CHUNK ? (size_t)len : READ_CHUNK;

		r = src->read_at(src, buf, n, off);
		if (!r)
			r = pdigest_update(&dm, buf, n);
		if (!r)
			r = pdigest_update(&ds, buf, n);
		off += n;
		len -= n;
	}
	if (!r)
		r = pdigest_final(&dm, md5);
	if (!r)
		r = pdigest_final(&ds, sha);
	pdigest_release(&dm);
	pdigest_release(&ds);
	return r;
}

static void read_failed(struct s3 *s3, const char *key, int r,
			struct drgw_err *err)
{
	pmsg_set_err(err, "s3: PUT %s/%s%s: cannot read the spool object: %s",
		     s3->bucket, s3->prefix, key, strerror(-r));
}

static void set_body(struct s3_op *op, struct drgw_put_source *src,
		     uint64_t off, uint64_t len, const uint8_t sha[32])
{
	op->io.read_at = src_read;
	op->io.read_arg = src;
	op->io.body_off = off;
	op->io.body_size = len;
	pcodec_hex(op->payload_hash, sha, 32);
	if (src->cancelled) {
		op->io.cancelled = src_cancelled;
		op->io.cancel_arg = src;
	}
}

/* One PUT of the first size bytes of src (its size, or the final size
 * of a growing source). */
static int put_single(struct s3 *s3, const char *key,
		      struct drgw_put_source *src, uint64_t size,
		      struct drgw_err *err)
{
	uint8_t md5[16], sha[32];
	struct s3_op op;
	char *buf = malloc(READ_CHUNK);
	int r;

	if (!buf)
		return -ENOMEM;
	r = digest_range(src, 0, size, buf, md5, sha);
	free(buf);
	if (r < 0) {
		read_failed(s3, key, r, err);
		return r;
	}
	if (!all_zero(src->sha256, 32) && memcmp(sha, src->sha256, 32)) {
		pmsg_set_err(err,
			     "s3: PUT %s/%s%s: the spool object does not match its SHA-256",
			     s3->bucket, s3->prefix, key);
		return -EIO;
	}
	r = s3_req_put(&op, s3, key, md5, sha, time(NULL));
	if (r == 0) {
		set_body(&op, src, 0, size, sha);
		r = s3_op_run(s3, &op, err);
	}
	s3_op_release(&op);
	if (r == 0 && src->progress)
		src->progress(src, size);
	if (r == -ECANCELED)
		pmsg_set_err(err, "s3: PUT %s/%s%s: upload cancelled", s3->bucket,
			     s3->prefix, key);
	return r;
}

/* ---- resume token ---- */

static void mpu_reset_parts(struct mpu *m)
{
	for (unsigned i = 0; m->parts && i < m->nparts; i++) {
		free(m->parts[i].etag);
		m->parts[i].etag = NULL;
		m->parts[i].sha_b64[0] = '\0';
	}
}

static void mpu_release(struct mpu *m)
{
	mpu_reset_parts(m);
	free(m->parts);
	m->parts = NULL;
	pbuf_release(&m->upload_id);
	pthread_mutex_destroy(&m->lock);
}

/* Parts for an object of (at most, while growing) size bytes. */
static int mpu_layout(struct mpu *m, uint64_t size, uint64_t part_size)
{
	uint64_t n = (size + part_size - 1) / part_size;

	if (n == 0 || n > S3_MAX_PARTS)
		return -EINVAL;
	mpu_reset_parts(m);
	free(m->parts);
	m->part_size = part_size;
	m->nparts = (unsigned)n;
	m->parts = calloc(n, sizeof(*m->parts));
	return m->parts ? 0 : -ENOMEM;
}

static uint64_t part_len(const struct mpu *m, unsigned i)
{
	uint64_t off = (uint64_t)i * m->part_size;

	return m->size - off < m->part_size ? m->size - off : m->part_size;
}

/* Caller holds m->lock (or is the only thread). */
static int token_build(const struct mpu *m, struct pbuf *t)
{
	pbuf_adds(t, TOKEN_MAGIC);
	pbuf_addf(t, "size %llu part %llu sha256 %s\n",
		  (unsigned long long)(m->growing ? 0 : m->size),
		  (unsigned long long)m->part_size, m->sha_hex);
	if (!m->upload_id.len) {
		/* Saved before CreateMultipartUpload (see create_upload()). */
		pbuf_adds(t, TOKEN_CREATING "\n");
		return t->failed ? -ENOMEM : 0;
	}
	pbuf_adds(t, "upload ");
	pcodec_uri_encode(t, m->upload_id.buf, m->upload_id.len, 0);
	pbuf_addch(t, '\n');
	if (t->failed || t->len > TOKEN_HEADER_MAX)
		return t->failed ? -ENOMEM : -ENAMETOOLONG;
	for (unsigned i = 0; i < m->nparts; i++) {
		size_t mark = t->len;

		if (!m->parts[i].etag)
			continue;
		pbuf_addf(t, "%u ", i + 1);
		pcodec_uri_encode(t, m->parts[i].etag,
				  strlen(m->parts[i].etag), 0);
		if (m->parts[i].sha_b64[0])
			pbuf_addf(t, " %s", m->parts[i].sha_b64);
		pbuf_addch(t, '\n');
		/* Parts that do not fit are uploaded again on resume:
		 * wasteful, never wrong.  s3_part_size() makes it rare. */
		if (t->len > TOKEN_MAX) {
			t->len = mark;
			t->buf[mark] = '\0';
			break;
		}
	}
	return t->failed ? -ENOMEM : 0;
}

static int token_save(struct mpu *m)
{
	struct pbuf t = PBUF_INIT;
	int r;

	if (!m->src->save_resume_token)
		return 0;
	r = token_build(m, &t);
	if (r == 0)
		r = m->src->save_resume_token(m->src, t.buf, t.len);
	pbuf_release(&t);
	if (r < 0)
		pmsg_debug(m->s3->host, "s3: cannot save the resume token of %s: %s",
			   m->key, strerror(-r));
	return r;
}

static int token_part(struct mpu *m, char *line)
{
	char *sp = strchr(line, ' '), *sp2;
	struct pbuf etag = PBUF_INIT;
	uint64_t n;

	if (!sp)
		return -EINVAL;
	*sp = '\0';
	sp2 = strchr(sp + 1, ' ');
	if (sp2)
		*sp2 = '\0';
	if (pcodec_parse_u64(line, m->nparts, &n) < 0 || n == 0 ||
	    m->parts[n - 1].etag ||
	    pcodec_uri_decode(&etag, sp + 1, strlen(sp + 1)) < 0 || !etag.len)
		goto bad;
	if (sp2) {
		if (strlen(sp2 + 1) >= sizeof(m->parts[0].sha_b64))
			goto bad;
		memcpy(m->parts[n - 1].sha_b64, sp2 + 1, strlen(sp2 + 1) + 1);
	}
	m->parts[n - 1].etag = pbuf_detach(&etag, NULL);
	return m->parts[n - 1].etag ? 0 : -ENOMEM;
bad:
	pbuf_release(&etag);
	return -EINVAL;
}

/* Parses "size N part N sha256 HEX" (the token's second line). */
static int parse_sizes(char *line, uint64_t *size, uint64_t *part, char *sha,
		       size_t sha_size)
{
	static const char *const names[] = { "size", "part", "sha256" };
	char *f[6], *save = NULL;
	int n = 0;

	for (char *t = strtok_r(line, " ", &save); t && n < 6;
	     t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	if (n != 6)
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (strcmp(f[2 * i], names[i]))
			return -EINVAL;
	if (pcodec_parse_u64(f[1], UINT64_MAX, size) < 0 ||
	    pcodec_parse_u64(f[3], UINT64_MAX, part) < 0 ||
	    strlen(f[5]) >= sha_size)
		return -EINVAL;
	memcpy(sha, f[5], strlen(f[5]) + 1);
	return 0;
}

/* Loads src's token into m.  -EINVAL if there is none or it is not ours
 * or not for this object; then *ret_stale_id may name an upload to
 * abort.  -EINPROGRESS for a token saved before an upload was created:
 * one may exist that no token names. */
static int token_load(struct mpu *m, struct pbuf *stale_id)
{
	const struct drgw_put_source *src = m->src;
	struct pbuf text = PBUF_INIT;
	uint64_t size, part;
	char sha[80], *p, *line;
	int r = -EINVAL;

	if (!src->resume_token || src->resume_token_len > TOKEN_MAX ||
	    src->resume_token_len < strlen(TOKEN_MAGIC) ||
	    memcmp(src->resume_token, TOKEN_MAGIC, strlen(TOKEN_MAGIC)))
		return -EINVAL;
	if (pbuf_add(&text, src->resume_token, src->resume_token_len) < 0)
		return -ENOMEM;
	p = text.buf + strlen(TOKEN_MAGIC);
	line = pcodec_next_line(&p);
	if (!line || parse_sizes(line, &size, &part, sha, sizeof(sha)) < 0)
		goto out;
	line = pcodec_next_line(&p);
	if (line && !strcmp(line, TOKEN_CREATING)) {
		r = -EINPROGRESS;
		goto out;
	}
	if (!line || strncmp(line, "upload ", 7) ||
	    pcodec_uri_decode(&m->upload_id, line + 7, strlen(line + 7)) < 0 ||
	    !m->upload_id.len)
		goto out;
	if (size != src->size || strcmp(sha, m->sha_hex) ||
	    part < S3_MIN_PART || part > S3_MAX_PART ||
	    mpu_layout(m, src->size, part) < 0) {
		pbuf_adds(stale_id, m->upload_id.buf);
		goto out;
	}
	while ((line = pcodec_next_line(&p))) {
		r = token_part(m, line);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	if (r < 0) {
		pbuf_reset(&m->upload_id);
		mpu_reset_parts(m);
	}
	pbuf_release(&text);
	return r;
}

/* ---- uploads no token names ---- */

struct sweep {
	struct s3 *s3;
	const char *key;
	const char *full_key;		/* with the prefix, as listed */
	const char *keep;		/* the upload in use, or NULL */
	unsigned aborted;
};

static int abort_upload(struct s3 *s3, const char *key, const char *upload_id,
			struct drgw_err *err);

static int sweep_one(void *arg, const char *key, const char *upload_id)
{
	struct sweep *w = arg;

	/* The listing is by prefix: "k" also lists "k.other". */
	if (strcmp(key, w->full_key) || (w->keep && !strcmp(upload_id, w->keep)))
		return 0;
	if (abort_upload(w->s3, w->key, upload_id, NULL) == 0)
		w->aborted++;
	return 0;
}

/*
 * Aborts the multipart uploads of key other than keep.  They are ours:
 * the gateway's keys name one object version, and it never uploads one
 * key twice at once.  They exist when CreateMultipartUpload went through
 * but its answer was lost (a reset, then a retry that created another)
 * or the process died before the upload id was saved.  Best effort:
 * servers without ListMultipartUploads (s3rver) leave them to the
 * bucket's lifecycle rule (README).
 */
static void abort_unrecorded(struct s3 *s3, const char *key, const char *keep)
{
	struct pbuf full = PBUF_INIT, nk = PBUF_INIT, nu = PBUF_INIT;
	struct sweep w = { .s3 = s3, .key = key, .keep = keep };
	int pages = 0, r;

	pbuf_addf(&full, "%s%s", s3->prefix, key);
	if (!pbuf_str(&full))
		return;
	w.full_key = full.buf;
	do {
		struct s3_op op;

		r = s3_req_list_uploads(&op, s3, key, nk.buf, nu.buf);
		if (r == 0)
			r = s3_op_run(s3, &op, NULL);
		if (r == 0)
			r = s3_xml_list_uploads(op.resp.body.buf ? op.resp.body.buf : "",
						op.resp.body.len, sweep_one, &w,
						&nk, &nu);
		s3_op_release(&op);
	} while (r == 0 && nk.len && ++pages < 100);
	if (w.aborted)
		pmsg_debug(s3->host, "s3: aborted %u multipart upload(s) of %s%s that no resume token named",
			   w.aborted, s3->prefix, key);
	else if (r < 0)
		pmsg_debug(s3->host, "s3: cannot list the multipart uploads of %s%s: %s",
			   s3->prefix, key, strerror(-r));
	pbuf_release(&full);
	pbuf_release(&nk);
	pbuf_release(&nu);
}

/* ---- multipart operations ---- */

static int create_upload(struct mpu *m, struct drgw_err *err)
{
	struct s3_op op;
	int r;

	pbuf_reset(&m->upload_id);
	/* Before the upload exists: a crash before its id is saved leaves a
	 * token that says so, and the next put() or abort_put() sweeps. */
	token_save(m);
	r = s3_req_create_mpu(&op, m->s3, m->key, time(NULL));
	if (r == 0)
		r = s3_op_run(m->s3, &op, err);
	if (r == 0 &&
	    s3_xml_upload_id(op.resp.body.buf ? op.resp.body.buf : "",
			     op.resp.body.len, &m->upload_id) < 0) {
		pmsg_set_err(err,
			     "s3: CreateMultipartUpload %s/%s%s: no UploadId in the answer",
			     m->s3->bucket, m->s3->prefix, m->key);
		r = -EIO;
	}
	if (r == 0) {
		pmsg_debug(m->s3->host, "s3: started multipart upload of %s%s: %llu parts of %llu bytes",
			   m->s3->prefix, m->key, (unsigned long long)m->nparts,
			   (unsigned long long)m->part_size);
		token_save(m);
		/* A retried Create may have created one before this. */
		if (op.attempts > 1)
			abort_unrecorded(m->s3, m->key, m->upload_id.buf);
	}
	s3_op_release(&op);
	return r;
}

static int abort_upload(struct s3 *s3, const char *key, const char *upload_id,
			struct drgw_err *err)
{
	struct s3_op op;
	int r;

	r = s3_req_abort_mpu(&op, s3, key, upload_id);
	if (r == 0)
		r = s3_op_run(s3, &op, err);
	s3_op_release(&op);
	if (r == -ENOENT)
		r = 0; /* already gone */
	if (r == -EOPNOTSUPP) {
		/* s3rver answers 405; the server's lifecycle rules must
		 * clean up there. */
		pmsg_debug(s3->host, "s3: AbortMultipartUpload not supported by %s",
			   s3->endpoint);
		r = 0;
	}
	if (r == 0 && err)
		err->msg[0] = '\0';
	return r;
}

struct listed {
	struct mpu *m;
	unsigned char *seen;		/* [nparts] */
};

static int on_part(void *arg, unsigned number, const char *etag,
		   uint64_t size)
{
	struct listed *l = arg;
	struct mpu *m = l->m;

	if (number == 0 || number > m->nparts)
		return 0;
	if (m->parts[number - 1].etag &&
	    !strcmp(m->parts[number - 1].etag, etag) &&
	    size == part_len(m, number - 1))
		l->seen[number - 1] = 1;
	return 0;
}

/*
 * Checks the token's parts against ListParts where the server has it.
 * @return 0 (parts not on the server dropped), -ENOENT (upload gone), or
 * another error; servers without ListParts count as 0.
 */
static int verify_parts(struct mpu *m, struct drgw_err *err)
{
	struct listed l = { .m = m };
	unsigned marker = 0;
	int r = 0;

	l.seen = calloc(m->nparts, 1);
	if (!l.seen)
		return -ENOMEM;
	do {
		struct s3_op op;

		r = s3_req_list_parts(&op, m->s3, m->key, m->upload_id.buf,
				      marker);
		if (r == 0)
			r = s3_op_run(m->s3, &op, err);
		if (r == 0) {
			unsigned next = 0;

			r = s3_xml_list_parts(op.resp.body.buf ? op.resp.body.buf : "",
					      op.resp.body.len, on_part, &l,
					      &next);
			if (r == 0 && next && next <= marker)
				r = -EIO; /* no progress: a broken server */
			marker = next;
		}
		s3_op_release(&op);
	} while (r == 0 && marker);

	if (r == -EOPNOTSUPP) {
		pmsg_debug(m->s3->host, "s3: ListParts not supported by %s; trusting the resume token",
			   m->s3->endpoint);
		if (err)
			err->msg[0] = '\0';
		r = 0;
	} else if (r == 0) {
		for (unsigned i = 0; i < m->nparts; i++) {
			if (m->parts[i].etag && !l.seen[i]) {
				pmsg_debug(m->s3->host, "s3: part %u of %s is not on the server; uploading it again",
					   i + 1, m->key);
				free(m->parts[i].etag);
				m->parts[i].etag = NULL;
			}
		}
	} else if (r == -EIO) {
		pmsg_set_err(err, "s3: ListParts %s/%s%s: unusable answer",
			     m->s3->bucket, m->s3->prefix, m->key);
	}
	free(l.seen);
	return r;
}

static int upload_part(struct mpu *m, unsigned i, char *buf,
		       char **ret_etag, char sha_b64[48],
		       struct drgw_err *err)
{
	uint64_t off = (uint64_t)i * m->part_size, len = part_len(m, i);
	uint8_t md5[16], sha[32];
	char etag[256];
	struct s3_op op;
	int r;

	r = digest_range(m->src, off, len, buf, md5, sha);
	if (r < 0) {
		read_failed(m->s3, m->key, r, err);
		return r;
	}
	r = s3_req_upload_part(&op, m->s3, m->key, m->upload_id.buf, i + 1,
			       md5, sha);
	if (r == 0) {
		set_body(&op, m->src, off, len, sha);
		r = s3_op_run(m->s3, &op, err);
	}
	if (r == 0) {
		if (phttp_header(&op.resp, "ETag", etag, sizeof(etag)) < 0 ||
		    !etag[0]) {
			pmsg_set_err(err, "s3: UploadPart %u of %s/%s%s: no ETag in the answer",
				     i + 1, m->s3->bucket, m->s3->prefix,
				     m->key);
			r = -EIO;
		} else {
			size_t n = strlen(etag);

			if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
				etag[n - 1] = '\0';
				memmove(etag, etag + 1, n - 1);
			}
			*ret_etag = strdup(etag);
			r = *ret_etag ? 0 : -ENOMEM;
			sha_b64[0] = '\0';
			if (m->s3->checksum_sha256)
				pcodec_base64(sha_b64, sha, 32);
		}
	}
	s3_op_release(&op);
	return r;
}

/* A growing source: waits until part i exists in full or the object is
 * complete.  1 when the object ended before part i, 0, or -errno. */
static int wait_part(struct mpu *m, unsigned i)
{
	uint64_t start = (uint64_t)i * m->part_size, have;
	int complete, r;

	r = m->src->grow(m->src, start + m->part_size, &have, &complete);
	if (r < 0)
		return r;
	if (complete) {
		pthread_mutex_lock(&m->lock);
		m->size = have;
		pthread_mutex_unlock(&m->lock);
	}
	return complete && have <= start ? 1 : 0;
}

static void *worker(void *arg)
{
	struct mpu *m = arg;
	char *buf = malloc(READ_CHUNK);

	for (;;) {
		struct drgw_err err = { 0 };
		char sha_b64[48], *etag = NULL;
		unsigned i;
		int r;

		pthread_mutex_lock(&m->lock);
		while (m->next < m->nparts && m->parts[m->next].etag)
			m->next++;
		if (m->stop || m->next >= m->nparts) {
			pthread_mutex_unlock(&m->lock);
			break;
		}
		i = m->next++;
		pthread_mutex_unlock(&m->lock);

		if (!buf)
			r = -ENOMEM;
		else if (is_cancelled(m->src))
			r = -ECANCELED;
		else
			r = m->growing ? wait_part(m, i) : 0;
		if (r > 0)
			break; /* the object ended before this part */
		if (r == 0)
			r = upload_part(m, i, buf, &etag, sha_b64, &err);

		pthread_mutex_lock(&m->lock);
		if (r < 0) {
			if (!m->err) {
				m->err = r;
				m->first_err = err;
				if (r == -ESTALE)
					pmsg_set_err(&m->first_err,
						     "s3: PUT %s/%s%s: object abandoned while it was written",
						     m->s3->bucket, m->s3->prefix,
						     m->key);
			}
			m->stop = 1;
		} else {
			m->parts[i].etag = etag;
			memcpy(m->parts[i].sha_b64, sha_b64, sizeof(sha_b64));
			m->done_bytes += part_len(m, i);
			/* Saved under the lock so that an older token can
			 * never overwrite a newer one. */
			token_save(m);
			if (m->src->progress)
				m->src->progress(m->src, m->done_bytes);
		}
		pthread_mutex_unlock(&m->lock);
	}
	free(buf);
	return NULL;
}

static int upload_parts(struct mpu *m, struct drgw_err *err)
{
	pthread_t tids[MAX_WORKERS];
	unsigned todo = 0, n, started = 0;

	for (unsigned i = 0; i < m->nparts; i++) {
		if (m->parts[i].etag)
			m->done_bytes += part_len(m, i);
		else
			todo++;
	}
	/* Of a growing object, every worker may be waiting for the encoder:
	 * as many as the upload may run at once. */
	m->next = 0;
	m->stop = 0;
	m->err = 0;
	if (m->done_bytes && m->src->progress)
		m->src->progress(m->src, m->done_bytes);
	n = todo < m->s3->concurrency ? todo : m->s3->concurrency;
	if (n > MAX_WORKERS)
		n = MAX_WORKERS;
	if (n > 1) {
		for (; started < n; started++)
			if (pthread_create(&tids[started], NULL, worker, m))
				break;
	}
	/* With one part to go, or no thread to be had, do it here. */
	if (started == 0)
		worker(m);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (m->err && err)
		*err = m->first_err;
	return m->err;
}

/* ---- an upload that completed before we knew ---- */

/* The ETag S3 gives a multipart object: MD5 of the parts' MD5s, "-N".
 * Only computable when every part's ETag is its MD5 (not with SSE-KMS). */
static int multipart_etag(const struct mpu *m, char out[48])
{
	struct pdigest d;
	uint8_t md5[16];
	int r;

	r = pdigest_init(&d, PDIGEST_MD5);
	for (unsigned i = 0; r == 0 && i < m->nparts; i++) {
		if (!m->parts[i].etag || strlen(m->parts[i].etag) != 32 ||
		    pcodec_unhex(m->parts[i].etag, md5, 16) < 0)
			r = -EINVAL;
		else
			r = pdigest_update(&d, md5, 16);
	}
	if (r == 0)
		r = pdigest_final(&d, md5);
	pdigest_release(&d);
	if (r == 0) {
		pcodec_hex(out, md5, 16);
		snprintf(out + 32, 16, "-%u", m->nparts);
	}
	return r;
}

/* The composite x-amz-checksum-sha256 of the parts' checksums, "-N". */
static int multipart_sha256(const struct mpu *m, char out[64])
{
	struct pdigest d;
	uint8_t sha[48];
	int r;

	r = pdigest_init(&d, PDIGEST_SHA256);
	for (unsigned i = 0; r == 0 && i < m->nparts; i++) {
		if (strlen(m->parts[i].sha_b64) != 44 ||
		    EVP_DecodeBlock(sha, (const unsigned char *)m->parts[i].sha_b64,
				    44) != 33)
			r = -EINVAL;
		else
			r = pdigest_update(&d, sha, 32);
	}
	if (r == 0)
		r = pdigest_final(&d, sha);
	pdigest_release(&d);
	if (r == 0) {
		pcodec_base64(out, sha, 32);
		snprintf(out + 44, 20, "-%u", m->nparts);
	}
	return r;
}

/* MD5 of the whole source, as hex: the ETag of a multipart object on
 * servers that give the plain MD5 (s3rver, some look-alikes). */
static int source_md5(struct mpu *m, char out[33])
{
	uint8_t md5[16], sha[32];
	char *buf = malloc(READ_CHUNK);
	int r;

	if (!buf)
		return -ENOMEM;
	r = digest_range(m->src, 0, m->size, buf, md5, sha);
	free(buf);
	if (r == 0 && !all_zero(m->src->sha256, 32) &&
	    memcmp(sha, m->src->sha256, 32))
		r = -EIO;
	if (r == 0)
		pcodec_hex(out, md5, 16);
	return r;
}

/*
 * Whether key already holds the object this upload makes.  A crash (or a
 * lost answer) after CompleteMultipartUpload leaves a resume token whose
 * upload no longer exists: Complete then fails for ever (NoSuchUpload on
 * S3, 500 on s3rver) although the object is stored.  HEAD tells what the
 * server can: the size must be src's, and then one of the multipart ETag
 * computed from the parts' ETags, the composite SHA-256 checksum computed
 * from the parts' checksums, or a plain MD5 ETag equal to the source's
 * MD5 must match.  Anything else (another object, an ETag we cannot
 * compute, a failing HEAD) says no: uploading again is always safe.
 */
static int already_complete(struct mpu *m)
{
	char v[256], want[64];
	struct s3_op op;
	uint64_t size;
	int ours = 0;

	if (m->size == UINT64_MAX)
		return 0; /* a growing source not yet complete */
	if (s3_req_head(&op, m->s3, m->key) < 0)
		goto out;
	s3_op_header(&op, "x-amz-checksum-mode", "ENABLED");
	if (s3_op_run(m->s3, &op, NULL) < 0 ||
	    phttp_header(&op.resp, "Content-Length", v, sizeof(v)) < 0 ||
	    pcodec_parse_u64(v, UINT64_MAX, &size) < 0 || size != m->size)
		goto out;
	if (phttp_header(&op.resp, "ETag", v, sizeof(v)) == 0) {
		size_t n = strlen(v);

		if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
			v[n - 1] = '\0';
			memmove(v, v + 1, n - 1);
		}
		if (strchr(v, '-') && multipart_etag(m, want) == 0) {
			ours = !strcasecmp(v, want);
			goto out;
		}
		if (strlen(v) == 32 && source_md5(m, want) == 0) {
			ours = !strcasecmp(v, want);
			goto out;
		}
	}
	if (phttp_header(&op.resp, "x-amz-checksum-sha256", v, sizeof(v)) == 0 &&
	    multipart_sha256(m, want) == 0)
		ours = !strcmp(v, want);
out:
	s3_op_release(&op);
	if (ours)
		pmsg_debug(m->s3->host, "s3: %s%s is already stored with this upload's content",
			   m->s3->prefix, m->key);
	return ours;
}

static int all_parts_done(const struct mpu *m)
{
	for (unsigned i = 0; i < m->nparts; i++)
		if (!m->parts[i].etag)
			return 0;
	return m->nparts > 0;
}

static int complete_upload(struct mpu *m, struct drgw_err *err, int *ret_dead)
{
	struct pbuf body = PBUF_INIT;
	struct s3_op op;
	int r;

	pbuf_adds(&body,
		  "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (unsigned i = 0; i < m->nparts; i++) {
		pbuf_addf(&body, "<Part><PartNumber>%u</PartNumber><ETag>&quot;", i + 1);
		s3_xml_escape(&body, m->parts[i].etag);
		pbuf_adds(&body, "&quot;</ETag>");
		if (m->parts[i].sha_b64[0])
			pbuf_addf(&body, "<ChecksumSHA256>%s</ChecksumSHA256>",
				  m->parts[i].sha_b64);
		pbuf_adds(&body, "</Part>");
	}
	pbuf_adds(&body, "</CompleteMultipartUpload>");
	if (!pbuf_str(&body))
		return -ENOMEM;

	r = s3_req_complete_mpu(&op, m->s3, m->key, m->upload_id.buf);
	if (r == 0) {
		op.io.body = body.buf;
		op.io.body_len = body.len;
		r = s3_op_run(m->s3, &op, err);
	}
	/* A Complete that went through before (an answer lost to a reset,
	 * or a crash before the gateway recorded it) finds the upload gone:
	 * NoSuchUpload on S3, a 500 on s3rver, for ever.  The object tells. */
	if (r < 0 && r != -ECANCELED && already_complete(m)) {
		if (err)
			memset(err, 0, sizeof(*err));
		r = 0;
	}
	*ret_dead = r < 0 && (!strcmp(op.code, "NoSuchUpload") ||
			      !strcmp(op.code, "InvalidPart"));
	s3_op_release(&op);
	pbuf_release(&body);
	return r;
}

/* After the parts of a growing object: its final size, and with it the
 * number of parts to complete. */
static int settle_size(struct mpu *m, struct drgw_err *err)
{
	uint64_t have;
	int complete, r;

	r = m->src->grow(m->src, UINT64_MAX, &have, &complete);
	if (r < 0) {
		pmsg_set_err(err, "s3: PUT %s/%s%s: object abandoned while it was written",
			     m->s3->bucket, m->s3->prefix, m->key);
		return r;
	}
	m->size = have;
	m->nparts = (unsigned)((have + m->part_size - 1) / m->part_size);
	for (unsigned i = 0; i < m->nparts; i++)
		if (!m->parts[i].etag)
			return -EIO; /* cannot happen: workers ran to the end */
	return 0;
}

static int put_multipart(struct s3 *s3, const char *key,
			 struct drgw_put_source *src, struct drgw_err *err)
{
	struct mpu m = { .s3 = s3, .key = key, .src = src, .size = src->size };
	struct pbuf stale = PBUF_INIT;
	uint64_t part, layout_size = src->size;
	int r, resumed = 0, restarted = 0;

	pthread_mutex_init(&m.lock, NULL);
	if (src->grow) {
		/* Nothing to resume of an object still being written; lay the
		 * parts out for its largest possible size. */
		m.growing = 1;
		m.size = UINT64_MAX;
		layout_size = src->size_hint;
	}
	if (all_zero(src->sha256, 32))
		snprintf(m.sha_hex, sizeof(m.sha_hex), "-");
	else
		pcodec_hex(m.sha_hex, src->sha256, 32);

	r = m.growing ? -ENOENT : token_load(&m, &stale);
	if (r == -ENOMEM)
		goto out;
	if (r == -EINPROGRESS)
		abort_unrecorded(s3, key, NULL);
	if (stale.len) {
		pmsg_debug(s3->host, "s3: resume token of %s is for another object; aborting its upload",
			   key);
		abort_upload(s3, key, stale.buf, NULL);
	}
	/* Every part was stored: the upload may have been completed by the
	 * put() that saved this token, just before a crash. */
	if (r == 0 && all_parts_done(&m) && already_complete(&m)) {
		if (src->progress)
			src->progress(src, m.size);
		goto out;
	}
	if (r == 0) {
		resumed = 1;
		r = verify_parts(&m, err);
		if (r == -ENOENT) {
			pmsg_debug(s3->host, "s3: multipart upload of %s is gone; starting over",
				   key);
			if (err)
				err->msg[0] = '\0';
			resumed = 0;
		} else if (r < 0) {
			goto out;
		}
	}
	if (!resumed) {
		part = s3_part_size(layout_size, s3->part_size, s3->checksum_sha256);
		if (part == 0) {
			pmsg_set_err(err, "s3: PUT %s/%s%s: object of %llu bytes is too large for S3",
				     s3->bucket, s3->prefix, key,
				     (unsigned long long)layout_size);
			r = -EFBIG;
			goto out;
		}
		r = mpu_layout(&m, layout_size, part);
		if (r == 0)
			r = create_upload(&m, err);
		if (r < 0)
			goto out;
	}
	for (;;) {
		int dead = 0;

		r = upload_parts(&m, err);
		/* UploadPart's only 404 is NoSuchUpload. */
		dead = r == -ENOENT;
		if (r == 0 && m.growing)
			r = settle_size(&m, err);
		if (r == 0)
			r = complete_upload(&m, err, &dead);
		if (r == 0 || restarted || !dead || m.growing)
			break;
		/* The upload vanished (aborted by a lifecycle rule or an
		 * operator) or holds parts we cannot name: start over once,
		 * and drop the old one. */
		pmsg_debug(s3->host, "s3: multipart upload of %s failed for good (%s); starting a new one",
			   key, err ? err->msg : "");
		restarted = 1;
		abort_upload(s3, key, m.upload_id.buf, NULL);
		mpu_reset_parts(&m);
		m.done_bytes = 0;
		if (err)
			memset(err, 0, sizeof(*err));
		r = create_upload(&m, err);
		if (r < 0)
			break;
	}
	if (r == -ECANCELED) {
		token_save(&m);
		pmsg_set_err(err, "s3: PUT %s/%s%s: upload cancelled", s3->bucket,
			     s3->prefix, key);
	}
	/* An object abandoned (or a growing upload that failed) leaves no
	 * upload behind: it will never be resumed. */
	if (r < 0 && r != -ECANCELED && m.growing && m.upload_id.len)
		abort_upload(s3, key, m.upload_id.buf, NULL);
out:
	pbuf_release(&stale);
	mpu_release(&m);
	return r;
}

int s3_put(struct s3 *s3, const char *key, struct drgw_put_source *src,
	   struct drgw_err *err)
{
	if (s3->read_only) {
		pmsg_set_err(err, "s3: %s is read-only", s3->url);
		return -EROFS;
	}
	/* A growing object that may not fill one part is waited for, then
	 * sent in one PUT. */
	if (src->grow && src->size_hint < s3->part_size) {
		uint64_t size;
		int complete, r;

		r = src->grow(src, UINT64_MAX, &size, &complete);
		if (r < 0) {
			pmsg_set_err(err, "s3: PUT %s/%s%s: object abandoned while it was written",
				     s3->bucket, s3->prefix, key);
			return r;
		}
		return put_single(s3, key, src, size, err);
	}
	if (src->grow || src->size >= s3->part_size ||
	    (src->resume_token && src->resume_token_len >= strlen(TOKEN_MAGIC) &&
	     !memcmp(src->resume_token, TOKEN_MAGIC, strlen(TOKEN_MAGIC)) &&
	     src->size >= S3_MIN_PART))
		return put_multipart(s3, key, src, err);
	return put_single(s3, key, src, src->size, err);
}

int s3_abort_put(struct s3 *s3, const char *key, const void *token,
		 size_t token_len, struct drgw_err *err)
{
	struct pbuf text = PBUF_INIT, id = PBUF_INIT;
	char *p, *line;
	int r = 0;

	if (!token || token_len < strlen(TOKEN_MAGIC) || token_len > TOKEN_MAX ||
	    memcmp(token, TOKEN_MAGIC, strlen(TOKEN_MAGIC)))
		return 0; /* a single PUT leaves nothing behind */
	if (pbuf_add(&text, token, token_len) < 0)
		return -ENOMEM;
	p = text.buf + strlen(TOKEN_MAGIC);
	pcodec_next_line(&p);
	line = pcodec_next_line(&p);
	if (line && !strcmp(line, TOKEN_CREATING))
		abort_unrecorded(s3, key, NULL);
	else if (line && !strncmp(line, "upload ", 7) &&
		 pcodec_uri_decode(&id, line + 7, strlen(line + 7)) == 0 && id.len)
		r = abort_upload(s3, key, id.buf, err);
	pbuf_release(&text);
	pbuf_release(&id);
	return r;
}
