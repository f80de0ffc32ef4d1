/* SPDX-License-Identifier: MIT */
/*
 * Uploads: simple (one request) and resumable sessions.
 *
 * Integrity.  While the data is read for sending, its CRC32C, MD5 and
 * SHA-256 are computed; the SHA-256 must equal the gateway's
 * src->sha256 before the last byte is sent, the CRC32C and MD5 go to GCS
 * in X-Goog-Hash with the last bytes (GCS then refuses a mismatch), and
 * the object GCS reports back must carry the same size, crc32c and
 * md5Hash.  Each range is read twice from the spool, once for the digests
 * and once streamed to curl: memory stays at one 1 MiB buffer whatever
 * the chunk size, and curl's rewinds and our retries simply read again.
 *
 * Resumable sessions (GCS "resumable uploads").  The session URI is
 * saved in the resume token before any data is sent.  Chunks are
 * chunk-size bytes (a multiple of 256 KiB) at the offset the server last
 * confirmed, never at the offset we sent up to: the server may keep only
 * part of a chunk.  After any failed chunk and on every resume the
 * session's status is queried (an empty PUT whose Content-Range has "*"
 * for the range and the object's size):
 *   308 + Range: bytes=0-N  continue at N + 1;
 *   308 without Range       continue at 0;
 *   200/201                 the object is complete (a lost final answer);
 *   404/410                 the session is gone: if the object is there
 *                           with this upload's size, crc32c and md5 (a
 *                           final chunk that landed before a crash), it
 *                           is done; else start a new session.
 * A chunk is never retried blindly: the front end answers an offset it
 * does not expect with a 503 that no retry can fix.
 *
 * A growing source (the gateway streams an object while it encodes it)
 * starts a session without X-Upload-Content-Length and sends chunks with
 * an unknown total ("bytes a-b/" then a star), each only once a byte past
 * it exists, so that the last chunk always has bytes to carry the total
 * and X-Goog-Hash.  An object
 * that may fit in one chunk is waited for and sent simply.  Its token
 * says size 0: it can only cancel the session, never resume it.
 *
 * Resume token (text, well below the gateway's 64 KiB):
 *
 *   drgw-gcs-resumable 1
 *   size <object size> sha256 <hex or ->
 *   session <session URI, percent-encoded>
 *   offset <bytes the server confirmed>
 *
 * It resumes only the same object (size and SHA-256), and only a session
 * URI on the configured endpoint: a token is data from the catalog, and
 * the plugin sends object bytes to nowhere else.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "gcs_json.h"
#include "gcs_put.h"
#include "gcs_req.h"
#include "pbuf.h"
#include "pcodec.h"
#include "pdigest.h"

#define TOKEN_MAGIC "drgw-gcs-resumable 1\n"
#define TOKEN_MAX (64 * 1024)
#define READ_CHUNK (1 << 20)
#define MAX_SESSIONS 3			/* new sessions per put() */

enum session_state {
	SESSION_ACTIVE,			/* u->offset is the server's */
	SESSION_DONE,			/* u->result is the object */
	SESSION_GONE,			/* 404/410: start another */
};

struct upload {
	struct gcs *g;
	const char *key;
	struct drgw_put_source *src;
	char *buf;			/* READ_CHUNK bytes */
	/* The object's size; UINT64_MAX while a growing source grows. */
	uint64_t size;
	int growing;

	/* Digests of [0, hashed). */
	uint64_t hashed;
	uint32_t crc;
	struct pdigest md5, sha;
	int final;			/* all bytes hashed and checked */
	int corrupt;			/* the spool failed its SHA-256 */
	char crc_b64[PCODEC_BASE64_SIZE(4)];
	char md5_b64[PCODEC_BASE64_SIZE(16)];
	char sha_hex[65];		/* src->sha256 in hex, or "-" */
	int check_sha;			/* src->sha256 is known: compare */

	/* Resumable session. */
	struct pbuf session;		/* URI, "" when there is none */
	uint64_t offset;		/* confirmed by the server */
	struct gcs_object result;	/* the stored object, once done */
};

static int is_cancelled(struct drgw_put_source *src)
{
	return src->cancelled && src->cancelled(src);
}

static int src_read(void *arg, void *buf, size_t len, uint64_t off)
{
	struct drgw_put_source *src = arg;

	return src->read_at(src, buf, len, off);
}

static int src_cancelled(void *arg)
{
	return is_cancelled(arg);
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void set_cancel(struct gcs_op *op, struct drgw_put_source *src)
{
	if (src->cancelled) {
		op->io.cancelled = src_cancelled;
		op->io.cancel_arg = src;
	}
}

/* Sleeps ms in short steps, so that cancellation is seen. */
static int nap(unsigned ms, struct drgw_put_source *src)
{
	while (ms) {
		unsigned step = ms < 100 ? ms : 100;
		struct timespec ts = { 0, (long)step * 1000000L };

		if (is_cancelled(src))
			return -ECANCELED;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		ms -= step;
	}
	return 0;
}

/* ---- digests ---- */

static int upload_init(struct upload *u, struct gcs *g, const char *key,
		       struct drgw_put_source *src)
{
	int r;

	memset(u, 0, sizeof(*u));
	u->g = g;
	u->key = key;
	u->src = src;
	u->size = src->grow ? UINT64_MAX : src->size;
	u->growing = src->grow != NULL;
	u->check_sha = !all_zero(src->sha256, sizeof(src->sha256));
	if (u->check_sha)
		pcodec_hex(u->sha_hex, src->sha256, sizeof(src->sha256));
	else
		snprintf(u->sha_hex, sizeof(u->sha_hex), "-");
	u->buf = malloc(READ_CHUNK);
	if (!u->buf)
		return -ENOMEM;
	r = pdigest_init(&u->md5, PDIGEST_MD5);
	if (r == 0 && u->check_sha)
		r = pdigest_init(&u->sha, PDIGEST_SHA256);
	return r;
}

static void upload_release(struct upload *u)
{
	pdigest_release(&u->md5);
	pdigest_release(&u->sha);
	pbuf_release(&u->session);
	free(u->buf);
	u->buf = NULL;
}

/*
 * Extends the digests to [0, to).  Reaching the end finishes them and
 * checks the SHA-256 against the gateway's; an object that changed in
 * the spool is never stored.
 */
static int hash_to(struct upload *u, uint64_t to, struct drgw_err *err)
{
	uint8_t md5[PDIGEST_MD5_LEN], sha[PDIGEST_SHA256_LEN], crc[4];
	int r = 0;

	if (u->corrupt)
		return -EIO;
	while (u->hashed < to && !r) {
		size_t n = to - u->hashed < READ_CHUNK ?
				   (size_t)(to - u->hashed) : READ_CHUNK;

		r = u->src->read_at(u->src, u->buf, n, u->hashed);
		if (r < 0) {
			pmsg_set_err(err, "gcs: UPLOAD %s/%s%s: cannot read the spool object: %s",
				     u->g->bucket, u->g->prefix, u->key,
				     strerror(-r));
			return r;
		}
		u->crc = pdigest_crc32c(u->crc, u->buf, n);
		r = pdigest_update(&u->md5, u->buf, n);
		if (!r && u->check_sha)
			r = pdigest_update(&u->sha, u->buf, n);
		u->hashed += n;
	}
	if (r < 0 || u->final || u->hashed < u->size)
		return r;
	r = pdigest_final(&u->md5, md5);
	if (!r && u->check_sha)
		r = pdigest_final(&u->sha, sha);
	if (r < 0)
		return r;
	u->final = 1;
	if (u->check_sha && memcmp(sha, u->src->sha256, 32)) {
		u->corrupt = 1;
		pmsg_set_err(err, "gcs: UPLOAD %s/%s%s: the spool object does not match its SHA-256",
			     u->g->bucket, u->g->prefix, u->key);
		return -EIO;
	}
	crc[0] = (uint8_t)(u->crc >> 24);
	crc[1] = (uint8_t)(u->crc >> 16);
	crc[2] = (uint8_t)(u->crc >> 8);
	crc[3] = (uint8_t)u->crc;
	pcodec_base64(u->crc_b64, crc, sizeof(crc));
	pcodec_base64(u->md5_b64, md5, sizeof(md5));
	return 0;
}

/*
 * Of a growing source: waits until want bytes exist or the object is
 * complete, whose size is then known.
 */
static int grow_to(struct upload *u, uint64_t want, struct drgw_err *err)
{
	uint64_t have;
	int complete, r;

	if (!u->growing)
		return 0;
	r = u->src->grow(u->src, want, &have, &complete);
	if (r < 0) {
		pmsg_set_err(err, "gcs: UPLOAD %s/%s%s: %s", u->g->bucket,
			     u->g->prefix, u->key,
			     r == -ESTALE ? "object abandoned while it was written" :
					    "upload cancelled");
		return r;
	}
	if (complete) {
		u->size = have;
		u->growing = 0;
	}
	return 0;
}

/* Digests of the whole object, once it is complete. */
static int hash_all(struct upload *u, struct drgw_err *err)
{
	int r = grow_to(u, UINT64_MAX, err);

	return r < 0 ? r : hash_to(u, u->size, err);
}

static int add_hash_header(struct gcs_op *op, const struct upload *u)
{
	struct pbuf v = PBUF_INIT;
	int r;

	pbuf_addf(&v, "crc32c=%s,md5=%s", u->crc_b64, u->md5_b64);
	r = pbuf_str(&v) ? gcs_op_header(op, "X-Goog-Hash", v.buf) : -ENOMEM;
	pbuf_release(&v);
	return r;
}

/* ---- the stored object ---- */

static int same_content(const struct upload *u, const struct gcs_object *o)
{
	/* GCS reports crc32c for every object and md5Hash for all but
	 * composite ones; both must be there for our uploads. */
	return o->size == u->size && !strcmp(o->crc32c, u->crc_b64) &&
	       !strcmp(o->md5, u->md5_b64);
}

/* Deletes generation gen of the object, best effort: it holds bytes that
 * are not ours, and must not be taken for a good copy. */
static void delete_bad(struct upload *u, const char *gen)
{
	struct pbuf q = PBUF_INIT;
	struct gcs_op op;

	if (gcs_protected(u->g) || !gen[0])
		return;
	pbuf_addf(&q, "ifGenerationMatch=%s", gen);
	gcs_op_init(&op, "DELETE", "DELETE");
	if (pbuf_str(&q) && gcs_op_object_url(&op, u->g, u->key, q.buf) == 0)
		gcs_op_run(u->g, &op, NULL);
	gcs_op_release(&op);
	pbuf_release(&q);
}

/* Checks the object GCS says it stored (upload answer in body). */
static int check_stored(struct upload *u, const char *what, const char *body,
			size_t len, struct drgw_err *err)
{
	if (gcs_json_object(body, len, &u->result) < 0) {
		pmsg_set_err(err, "gcs: %s %s/%s%s: the answer is not an object resource",
			     what, u->g->bucket, u->g->prefix, u->key);
		return -EIO;
	}
	if (same_content(u, &u->result))
		return 0;
	pmsg_set_err(err,
		     "gcs: %s %s/%s%s: stored object does not match the upload (size %llu crc32c %s md5 %s, expected %llu %s %s)",
		     what, u->g->bucket, u->g->prefix, u->key,
		     (unsigned long long)u->result.size,
		     u->result.crc32c[0] ? u->result.crc32c : "-",
		     u->result.md5[0] ? u->result.md5 : "-",
		     (unsigned long long)u->size, u->crc_b64, u->md5_b64);
	delete_bad(u, u->result.generation);
	return -EIO;
}

/*
 * A protected upload found the name taken (412 on ifGenerationMatch=0).
 * Storing the same bytes again must succeed, so compare with what is
 * there.
 */
static int check_existing(struct upload *u, struct drgw_err *err)
{
	struct gcs_op op;
	int r;

	r = hash_all(u, err);
	if (r < 0)
		return r;
	if (err)
		memset(err, 0, sizeof(*err));
	gcs_op_init(&op, "STAT", "GET");
	r = gcs_op_object_url(&op, u->g, u->key, NULL);
	if (r == 0)
		r = gcs_op_run(u->g, &op, err);
	if (r == 0 && (gcs_json_object(op.resp.body.buf, op.resp.body.len,
				       &u->result) < 0 ||
		       !same_content(u, &u->result))) {
		pmsg_set_err(err, "gcs: UPLOAD %s/%s%s: a different object already exists under this protected name (holds or retention); not replaced",
			     u->g->bucket, u->g->prefix, u->key);
		r = -EEXIST;
	}
	if (r == 0)
		pmsg_debug(u->g->host, "gcs: %s/%s%s is already stored with the same content",
			   u->g->bucket, u->g->prefix, u->key);
	gcs_op_release(&op);
	return r;
}

/*
 * A session that is gone (404/410) may have finished first: its final
 * chunk landed, and then the answer was lost or the process died before
 * the gateway recorded it.  GCS forgets such sessions in time.  If the
 * object under the key has exactly this upload's size, crc32c and md5
 * (the whole source is read to know), it is done; anything else, or any
 * doubt, says no and a new session starts.
 */
static int stored_already(struct upload *u)
{
	struct gcs_op op;
	int ours = 0;

	/* Of a growing source only a complete one can have been stored. */
	if (u->growing || hash_all(u, NULL) < 0)
		return 0;
	gcs_op_init(&op, "STAT", "GET");
	if (gcs_op_object_url(&op, u->g, u->key, NULL) == 0 &&
	    gcs_op_run(u->g, &op, NULL) == 0 &&
	    gcs_json_object(op.resp.body.buf, op.resp.body.len,
			    &u->result) == 0)
		ours = same_content(u, &u->result);
	gcs_op_release(&op);
	if (ours)
		pmsg_debug(u->g->host, "gcs: %s/%s%s is already stored with this upload's content",
			   u->g->bucket, u->g->prefix, u->key);
	return ours;
}

/* ---- simple upload ---- */

/* A multipart/related body: head, the object, tail. */
struct mp_body {
	struct drgw_put_source *src;
	uint64_t size;
	struct pbuf head, tail;
};

static int mp_read(void *arg, void *buf, size_t len, uint64_t off)
{
	struct mp_body *mp = arg;
	uint64_t size = mp->size;
	char *out = buf;
	int r;

	while (len) {
		size_t n;

		if (off < mp->head.len) {
			n = mp->head.len - (size_t)off < len ?
				    mp->head.len - (size_t)off : len;
			memcpy(out, mp->head.buf + off, n);
		} else if (off < mp->head.len + size) {
			uint64_t o = off - mp->head.len;

			n = size - o < len ? (size_t)(size - o) : len;
			r = mp->src->read_at(mp->src, out, n, o);
			if (r < 0)
				return r;
		} else {
			uint64_t o = off - mp->head.len - size;

			if (o + len > mp->tail.len)
				return -EIO;
			n = len;
			memcpy(out, mp->tail.buf + o, n);
		}
		out += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int mp_build(struct upload *u, struct mp_body *mp, struct gcs_op *op)
{
	struct pbuf meta = PBUF_INIT, ctype = PBUF_INIT, name = PBUF_INIT;
	unsigned char rnd[16];
	char boundary[40];
	int r;

	/* A random boundary cannot occur in the data by accident. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	memcpy(boundary, "drgw-", 5);
	pcodec_hex(boundary + 5, rnd, sizeof(rnd));
	pbuf_addf(&name, "%s%s", u->g->prefix, u->key);
	r = pbuf_str(&name) ? gcs_json_upload_metadata(u->g, name.buf,
						       time(NULL), u->crc_b64,
						       u->md5_b64, &meta) :
			      -ENOMEM;
	if (r < 0)
		goto out;
	pbuf_addf(&mp->head,
		  "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n%s\r\n--%s\r\nContent-Type: application/octet-stream\r\n\r\n",
		  boundary, meta.buf, boundary);
	pbuf_addf(&mp->tail, "\r\n--%s--\r\n", boundary);
	pbuf_addf(&ctype, "multipart/related; boundary=%s", boundary);
	if (!pbuf_str(&mp->head) || !pbuf_str(&mp->tail) || !pbuf_str(&ctype)) {
		r = -ENOMEM;
		goto out;
	}
	r = gcs_op_header(op, "Content-Type", ctype.buf);
	op->io.read_at = mp_read;
	op->io.read_arg = mp;
	op->io.body_off = 0;
	op->io.body_size = mp->head.len + u->size + mp->tail.len;
out:
	pbuf_release(&meta);
	pbuf_release(&ctype);
	pbuf_release(&name);
	return r;
}

static int put_simple(struct upload *u, struct drgw_err *err)
{
	struct mp_body mp = { .src = u->src };
	int protect = gcs_protected(u->g);
	struct gcs_op op;
	int r;

	r = hash_all(u, err);
	if (r < 0)
		return r;
	mp.size = u->size;
	gcs_op_init(&op, "UPLOAD", "POST");
	op.io.has_body = 1;
	set_cancel(&op, u->src);
	/* Holds and retention need the object's metadata in the request,
	 * hence multipart; otherwise the plain media upload. */
	r = gcs_op_upload_url(&op, u->g, u->key, protect ? "multipart" : "media",
			      protect);
	if (r == 0)
		r = add_hash_header(&op, u);
	if (r == 0 && protect) {
		r = mp_build(u, &mp, &op);
	} else if (r == 0) {
		r = gcs_op_header(&op, "Content-Type", "application/octet-stream");
		op.io.read_at = src_read;
		op.io.read_arg = u->src;
		op.io.body_size = u->size;
	}
	if (r == 0)
		r = gcs_op_run(u->g, &op, err);
	if (r == -EEXIST && protect)
		r = check_existing(u, err);
	else if (r == 0)
		r = check_stored(u, "UPLOAD", op.resp.body.buf, op.resp.body.len,
				 err);
	gcs_op_release(&op);
	pbuf_release(&mp.head);
	pbuf_release(&mp.tail);
	return r;
}

/* ---- resume token ---- */

static int token_save(struct upload *u)
{
	struct pbuf t = PBUF_INIT;
	int r;

	if (!u->src->save_resume_token || !u->session.len)
		return 0;
	pbuf_adds(&t, TOKEN_MAGIC);
	pbuf_addf(&t, "size %llu sha256 %s\nsession ",
		  (unsigned long long)(u->growing ? 0 : u->size), u->sha_hex);
	pcodec_uri_encode(&t, u->session.buf, u->session.len, 0);
	pbuf_addf(&t, "\noffset %llu\n", (unsigned long long)u->offset);
	if (!pbuf_str(&t))
		r = -ENOMEM;
	else if (t.len > TOKEN_MAX)
		r = -E2BIG;
	else
		r = u->src->save_resume_token(u->src, t.buf, t.len);
	pbuf_release(&t);
	if (r < 0)
		pmsg_debug(u->g->host, "gcs: cannot save the resume token of %s: %s",
			   u->key, strerror(-r));
	return r;
}

/* Parses "size N sha256 HEX" (the token's second line). */
static int parse_sizes(char *line, uint64_t *ret_size, char *sha,
		       size_t sha_size)
{
	char *num = line + 5, *sp;

	if (strncmp(line, "size ", 5))
		return -EINVAL;
	sp = strchr(num, ' ');
	if (!sp || strncmp(sp, " sha256 ", 8))
		return -EINVAL;
	*sp = '\0';
	if (pcodec_parse_u64(num, UINT64_MAX, ret_size) < 0 ||
	    strlen(sp + 8) >= sha_size || !sp[8])
		return -EINVAL;
	memcpy(sha, sp + 8, strlen(sp + 8) + 1);
	return 0;
}

/* Whether uri is a session on our endpoint ("scheme://host[:port]/..."),
 * in printable ASCII as URIs are. */
static int our_session(const struct gcs *g, const char *uri)
{
	size_t n = strlen(g->endpoint);

	if (strncmp(uri, g->endpoint, n) || uri[n] != '/')
		return 0;
	for (; *uri; uri++)
		if (*uri <= ' ' || *uri >= 0x7f)
			return 0;
	return 1;
}

/*
 * Parses a token.  Sets ret_session to its session URI when the token is
 * ours and names a session on our endpoint, and ret_same when it is for
 * this very object.  @return 0 or -ENOMEM; anything unusable is ignored.
 */
static int token_parse(const struct gcs *g, const void *token, size_t len,
		       const struct drgw_put_source *src, const char *sha_hex,
		       struct pbuf *ret_session, int *ret_same)
{
	struct pbuf text = PBUF_INIT;
	uint64_t size = 0;
	char sha[80], *p, *line;
	int r = 0;

	*ret_same = 0;
	pbuf_reset(ret_session);
	if (!token || len < strlen(TOKEN_MAGIC) || len > TOKEN_MAX ||
	    memcmp(token, TOKEN_MAGIC, strlen(TOKEN_MAGIC)))
		return 0;
	if (pbuf_add(&text, token, len) < 0)
		return -ENOMEM;
	p = text.buf + strlen(TOKEN_MAGIC);
	line = pcodec_next_line(&p);
	if (!line || parse_sizes(line, &size, sha, sizeof(sha)) < 0)
		goto out;
	line = pcodec_next_line(&p);
	if (!line || strncmp(line, "session ", 8))
		goto out;
	r = pcodec_uri_decode(ret_session, line + 8, strlen(line + 8));
	if (r == -EINVAL || (r == 0 && !our_session(g, ret_session->buf))) {
		pbuf_reset(ret_session);
		r = 0;
		goto out;
	}
	*ret_same = src && r == 0 && size == src->size && !strcmp(sha, sha_hex);
out:
	pbuf_release(&text);
	return r;
}

/* ---- resumable session ---- */

/* DELETE on a session URI: GCS answers 499 and forgets the session. */
static int cancel_session(struct gcs *g, const char *key, const char *uri,
			  struct drgw_err *err)
{
	struct gcs_op op;
	long st;
	int r;

	gcs_op_init(&op, "CANCEL UPLOAD", "DELETE");
	r = gcs_op_session_url(&op, g, key, uri);
	if (r == 0)
		r = gcs_op_run(g, &op, err);
	st = op.resp.status;
	if (r < 0 && (st == 499 || st == 404 || st == 410)) {
		if (err)
			memset(err, 0, sizeof(*err));
		r = 0;
	}
	gcs_op_release(&op);
	return r;
}

static int start_session(struct upload *u, struct drgw_err *err)
{
	struct pbuf meta = PBUF_INIT, name = PBUF_INIT;
	char loc[8192], size[24];
	struct gcs_op op;
	int r;

	pbuf_addf(&name, "%s%s", u->g->prefix, u->key);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)u->size);
	gcs_op_init(&op, "START UPLOAD", "POST");
	r = pbuf_str(&name) ? gcs_json_upload_metadata(u->g, name.buf,
						       time(NULL), NULL, NULL,
						       &meta) : -ENOMEM;
	if (r == 0)
		r = gcs_op_upload_url(&op, u->g, u->key, "resumable",
				      gcs_protected(u->g));
	if (r == 0)
		r = gcs_op_header(&op, "Content-Type",
				  "application/json; charset=UTF-8");
	if (r == 0)
		r = gcs_op_header(&op, "X-Upload-Content-Type",
				  "application/octet-stream");
	if (r == 0 && !u->growing)
		r = gcs_op_header(&op, "X-Upload-Content-Length", size);
	if (r < 0)
		goto out;
	op.io.has_body = 1;
	op.io.body = meta.buf;
	op.io.body_len = meta.len;
	set_cancel(&op, u->src);
	r = gcs_op_run(u->g, &op, err);
	if (r < 0)
		goto out;
	if (phttp_header(&op.resp, "Location", loc, sizeof(loc)) < 0 ||
	    !our_session(u->g, loc)) {
		pmsg_set_err(err, "gcs: START UPLOAD %s/%s%s: the answer has no session URI on %s",
			     u->g->bucket, u->g->prefix, u->key,
			     u->g->endpoint);
		r = -EIO;
		goto out;
	}
	pbuf_reset(&u->session);
	pbuf_adds(&u->session, loc);
	u->offset = 0;
	if (!pbuf_str(&u->session)) {
		r = -ENOMEM;
		goto out;
	}
	pmsg_debug(u->g->host, "gcs: started a resumable upload of %s/%s%s (%s%llu bytes in chunks of %llu)",
		   u->g->bucket, u->g->prefix, u->key,
		   u->growing ? "growing, at most " : "",
		   (unsigned long long)(u->growing ? u->src->size_hint : u->size),
		   (unsigned long long)u->g->chunk_size);
	/* Before any data: a crash from here on resumes this session. */
	token_save(u);
out:
	gcs_op_release(&op);
	pbuf_release(&meta);
	pbuf_release(&name);
	return r;
}

int gcs_put_next_offset(const char *v, uint64_t *ret_offset)
{
	char num[32];
	uint64_t last;
	size_t n;

	if (!v) {
		*ret_offset = 0;
		return 0;
	}
	if (strncmp(v, "bytes=0-", 8))
		return -EIO;
	n = strlen(v + 8);
	if (n == 0 || n >= sizeof(num))
		return -EIO;
	memcpy(num, v + 8, n + 1);
	if (pcodec_parse_u64(num, UINT64_MAX - 1, &last) < 0)
		return -EIO;
	*ret_offset = last + 1;
	return 0;
}

/* Reads a 308's Range into *ret_offset; -EIO if it makes no sense. */
static int offset_of(struct upload *u, const struct gcs_op *op,
		     uint64_t *ret_offset, struct drgw_err *err)
{
	char v[64];
	int r = phttp_header(&op->resp, "Range", v, sizeof(v));
	uint64_t off = 0;

	if (r == 0 || r == -ENOENT)
		r = gcs_put_next_offset(r == 0 ? v : NULL, &off);
	if (r == 0 && off > u->size)
		r = -EIO;
	if (r < 0) {
		pmsg_set_err(err, "gcs: %s %s/%s%s: unusable Range in the 308 answer",
			     op->name, u->g->bucket, u->g->prefix, u->key);
		return -EIO;
	}
	*ret_offset = off;
	return 0;
}

/* Asks the server where the session is. */
static int query_status(struct upload *u, enum session_state *ret,
			struct drgw_err *err)
{
	char range[48];
	struct gcs_op op;
	int r;

	if (u->growing)
		snprintf(range, sizeof(range), "bytes */*");
	else
		snprintf(range, sizeof(range), "bytes */%llu",
			 (unsigned long long)u->size);
	gcs_op_init(&op, "UPLOAD STATUS", "PUT");
	op.accept_308 = 1;
	op.io.has_body = 1;		/* Content-Length: 0 */
	set_cancel(&op, u->src);
	r = gcs_op_session_url(&op, u->g, u->key, u->session.buf);
	if (r == 0)
		r = gcs_op_header(&op, "Content-Range", range);
	if (r == 0)
		r = gcs_op_run(u->g, &op, err);
	if (r == -ENOENT) {
		/* 404/410: expired (a week), cancelled or unknown. */
		pmsg_debug(u->g->host, "gcs: the upload session of %s/%s%s is gone (%ld)",
			   u->g->bucket, u->g->prefix, u->key, op.resp.status);
		if (err)
			memset(err, 0, sizeof(*err));
		*ret = SESSION_GONE;
		r = 0;
	} else if (r == 0 && op.resp.status == 308) {
		r = offset_of(u, &op, &u->offset, err);
		*ret = SESSION_ACTIVE;
		if (r == 0)
			pmsg_debug(u->g->host, "gcs: the upload session of %s/%s%s is at %llu of %llu bytes",
				   u->g->bucket, u->g->prefix, u->key,
				   (unsigned long long)u->offset,
				   (unsigned long long)u->size);
	} else if (r == 0) {
		/* The last chunk went through but its answer was lost. */
		r = hash_all(u, err);
		if (r == 0)
			r = check_stored(u, "UPLOAD STATUS", op.resp.body.buf,
					 op.resp.body.len, err);
		*ret = SESSION_DONE;
	}
	gcs_op_release(&op);
	return r;
}

/*
 * Sends [start, start + len) of the object.  Returns phttp's transport
 * result (0 when an answer came) and leaves the answer in op; the caller
 * decides what it means.
 */
static int send_chunk(struct upload *u, uint64_t start, uint64_t len,
		      struct gcs_op *op, struct drgw_err *err)
{
	char range[80];
	int r;

	if (u->growing)
		snprintf(range, sizeof(range), "bytes %llu-%llu/*",
			 (unsigned long long)start,
			 (unsigned long long)(start + len - 1));
	else
		snprintf(range, sizeof(range), "bytes %llu-%llu/%llu",
			 (unsigned long long)start,
			 (unsigned long long)(start + len - 1),
			 (unsigned long long)u->size);
	gcs_op_init(op, "UPLOAD CHUNK", "PUT");
	op->accept_308 = 1;
	/* Retrying is the caller's job: it asks for the offset first. */
	op->max_attempts = 1;
	op->io.has_body = 1;
	op->io.read_at = src_read;
	op->io.read_arg = u->src;
	op->io.body_off = start;
	op->io.body_size = len;
	set_cancel(op, u->src);
	r = gcs_op_session_url(op, u->g, u->key, u->session.buf);
	if (r == 0)
		r = gcs_op_header(op, "Content-Range", range);
	if (r == 0 && start + len == u->size)
		r = add_hash_header(op, u);
	if (r < 0)
		return r;
	r = gcs_op_run(u->g, op, err);
	/* gcs_op_run() mapped HTTP errors to errnos; report only the
	 * transport's own result. */
	return op->resp.status ? 0 : r;
}

/*
 * Uploads the rest of the session's object.
 * @return 0 once the object is stored and checked, -ENOENT when the
 * session vanished (the caller starts another), another errno on failure.
 */
static int send_all(struct upload *u, struct drgw_err *err)
{
	enum session_state state = SESSION_ACTIVE;
	int failures = 0, need_status = 0, r;

	for (;;) {
		uint64_t start, len, next;
		enum gcs_verdict v;
		struct gcs_op op;
		long st;

		if (is_cancelled(u->src))
			return -ECANCELED;
		if (need_status) {
			r = query_status(u, &state, err);
			if (r < 0 || state == SESSION_DONE)
				return r;
			if (state == SESSION_GONE)
				return -ENOENT;
			need_status = 0;
		}
		if (u->offset >= u->size) {
			/* Every byte is there, yet no object: neither GCS
			 * nor our emulator does this. */
			pmsg_set_err(err, "gcs: UPLOAD %s/%s%s: the session holds all %llu bytes but did not create the object",
				     u->g->bucket, u->g->prefix, u->key,
				     (unsigned long long)u->size);
			return -EIO;
		}
		start = u->offset;
		/* A byte past the chunk, so that it is not the last. */
		r = grow_to(u, start + u->g->chunk_size + 1, err);
		if (r < 0)
			return r;
		len = u->size - start < u->g->chunk_size ?
			      u->size - start : u->g->chunk_size;
		r = hash_to(u, start + len, err);
		if (r < 0)
			return r;
		if (err)
			memset(err, 0, sizeof(*err));
		r = send_chunk(u, start, len, &op, err);
		st = op.resp.status;
		if (r == -ECANCELED || (r < 0 && r != -ETIMEDOUT &&
					r != -ECONNRESET && st == 0)) {
			gcs_op_release(&op);
			return r;
		}
		if (st == 308) {
			r = offset_of(u, &op, &next, err);
			gcs_op_release(&op);
			if (r < 0)
				return r;
			if (next > start + len) {
				pmsg_set_err(err, "gcs: UPLOAD CHUNK %s/%s%s: the server confirms %llu bytes, more than were sent",
					     u->g->bucket, u->g->prefix, u->key,
					     (unsigned long long)next);
				return -EIO;
			}
			if (next > start) {
				/* The server's offset, not start + len: it
				 * may have kept only part of the chunk. */
				u->offset = next;
				failures = 0;
				token_save(u);
				if (u->src->progress)
					u->src->progress(u->src, u->offset);
				continue;
			}
			/* No progress at all: count it as a failure. */
			v = GCS_RETRY;
			u->offset = next;
		} else if (st >= 200 && st < 300) {
			r = check_stored(u, "UPLOAD", op.resp.body.buf,
					 op.resp.body.len, err);
			gcs_op_release(&op);
			return r;
		} else if (st == 404 || st == 410) {
			pmsg_debug(u->g->host, "gcs: the upload session of %s/%s%s is gone (%ld)",
				   u->g->bucket, u->g->prefix, u->key, st);
			gcs_op_release(&op);
			if (err)
				memset(err, 0, sizeof(*err));
			return -ENOENT;
		} else {
			v = gcs_classify(&op.resp, st ? 0 : r);
			if (v == GCS_FINAL) {
				r = st ? gcs_status_errno(st, op.reason,
							  op.message) : r;
				gcs_op_release(&op);
				return r;
			}
			if (v == GCS_OFFSET_MISMATCH)
				pmsg_debug(u->g->host, "gcs: %s/%s%s: the server disagrees on the upload offset %llu; asking it",
					   u->g->bucket, u->g->prefix, u->key,
					   (unsigned long long)start);
		}
		gcs_op_release(&op);
		if (++failures >= u->g->net.retry.max_attempts) {
			if (err && !err->msg[0])
				pmsg_set_err(err, "gcs: UPLOAD CHUNK %s/%s%s: no progress at offset %llu after %d attempts",
					     u->g->bucket, u->g->prefix, u->key,
					     (unsigned long long)start, failures);
			return st && st != 308 ? gcs_status_errno(st, "", "") :
			       st == 308 ? -EAGAIN : r;
		}
		if (v == GCS_RETRY) {
			r = nap(phttp_backoff_ms(&u->g->net.retry, failures),
				u->src);
			if (r < 0)
				return r;
		}
		need_status = 1;
	}
}

/* Uploads through a session: the one the token names (session, same
 * object), or new ones. */
static int put_resumable(struct upload *u, const char *session,
			 struct drgw_err *err)
{
	enum session_state state = SESSION_GONE;
	int r = 0, sessions = 0;

	if (*session) {
		pbuf_adds(&u->session, session);
		if (!pbuf_str(&u->session))
			return -ENOMEM;
		r = query_status(u, &state, err);
		if (r == 0 && state == SESSION_GONE && stored_already(u))
			goto out;
		if (r == -EIO && state == SESSION_DONE) {
			/* It completed with an object that is not ours
			 * (and was deleted): asking again would say the
			 * same forever, so upload anew. */
			pmsg_debug(u->g->host, "gcs: %s: %s; uploading again",
				   u->key, err ? err->msg : "");
			if (err)
				memset(err, 0, sizeof(*err));
			state = SESSION_GONE;
			r = 0;
		}
		if (r < 0 || state == SESSION_DONE)
			goto out;
		if (state == SESSION_ACTIVE && u->src->progress)
			u->src->progress(u->src, u->offset);
	}
	for (;;) {
		if (state != SESSION_ACTIVE) {
			if (++sessions > MAX_SESSIONS) {
				pmsg_set_err(err, "gcs: UPLOAD %s/%s%s: %d upload sessions vanished while in use",
					     u->g->bucket, u->g->prefix, u->key,
					     MAX_SESSIONS);
				r = -EAGAIN;
				break;
			}
			r = start_session(u, err);
			if (r < 0)
				break;
			state = SESSION_ACTIVE;
		}
		r = send_all(u, err);
		if (r != -ENOENT)
			break;
		state = SESSION_GONE;
		if (stored_already(u)) {
			r = 0;
			break;
		}
	}
	/* 412 on ifGenerationMatch=0, when starting or completing. */
	if (r == -EEXIST && gcs_protected(u->g))
		r = check_existing(u, err);
	/* What the session holds came from a bad spool object, or from a
	 * growing one (whose token cannot resume): no later put() may
	 * finish it. */
	if (u->session.len &&
	    (u->corrupt || (u->src->grow && r < 0 && r != -ECANCELED)))
		cancel_session(u->g, u->key, u->session.buf, NULL);
out:
	if (r == -ECANCELED) {
		token_save(u);
		pmsg_set_err(err, "gcs: UPLOAD %s/%s%s: upload cancelled",
			     u->g->bucket, u->g->prefix, u->key);
	}
	return r;
}

int gcs_put(struct gcs *g, const char *key, struct drgw_put_source *src,
	    struct drgw_err *err)
{
	struct pbuf found = PBUF_INIT;
	struct upload u;
	int r, same = 0;

	if (g->read_only) {
		pmsg_set_err(err, "gcs: %s is read-only", g->url);
		return -EROFS;
	}
	r = upload_init(&u, g, key, src);
	if (r < 0)
		goto out;
	r = token_parse(g, src->resume_token, src->resume_token_len, src,
			u.sha_hex, &found, &same);
	if (r < 0)
		goto out;
	if (found.len && !same) {
		pmsg_debug(g->host, "gcs: resume token of %s is for another object; cancelling its session",
			   key);
		cancel_session(g, key, found.buf, NULL);
		pbuf_reset(&found);
	}
	/* A session of an earlier try resumes even if chunk-size changed. */
	if (src->grow ? src->size_hint > g->chunk_size :
			src->size > g->chunk_size || found.len) {
		r = put_resumable(&u, pbuf_str(&found), err);
	} else {
		r = put_simple(&u, err);
		if (r == -ECANCELED)
			pmsg_set_err(err, "gcs: UPLOAD %s/%s%s: upload cancelled",
				     g->bucket, g->prefix, key);
	}
	if (r == 0) {
		/* Retries along the way may have left a message. */
		if (err)
			memset(err, 0, sizeof(*err));
		if (src->progress)
			src->progress(src, u.size);
	}
out:
	pbuf_release(&found);
	upload_release(&u);
	return r;
}

int gcs_abort_put(struct gcs *g, const char *key, const void *token,
		  size_t token_len, struct drgw_err *err)
{
	struct pbuf session = PBUF_INIT;
	int r, same;

	r = token_parse(g, token, token_len, NULL, "", &session, &same);
	if (r == 0 && session.len)
		r = cancel_session(g, key, session.buf, err);
	pbuf_release(&session);
	return r;
}
