/* SPDX-License-Identifier: MIT */
/*
 * Index records; see index.h.  The data is JSON lines (each parsed with
 * Jansson): a header, then one object per line:
 *
 *   {"index": 2, "written_ns": ...}
 *   {"vid": "...", "name": "...", "size": N, "mtime_ns": N,
 *    "created_ns": N, "mode": N, "sha256": "hex", "object_size": N}
 *
 * Unknown members are ignored, so later versions may add some.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "encode.h"
#include "gateway.h"
#include "index.h"
#include "log.h"
#include "reader.h"
#include "replicate.h"
#include "restore.h"

/* An index of more entries than this is refused (a hostile one could
 * otherwise make a reader allocate without bound). */
#define INDEX_MAX_ENTRIES 10000000
#define INDEX_MAX_BYTES (1u << 30)
/* The layout of the data: a header line, then one JSON object a line. */
#define INDEX_LAYOUT 2

bool drgw_index_key(const char *key, char vid[DRGW_OBJ_VID_MAX + 1])
{
	size_t pl = strlen(DRGW_INDEX_PREFIX), sl = strlen(DRGW_INDEX_SUFFIX);
	size_t n = strlen(key);

	if (n <= pl + sl || n - pl - sl > DRGW_OBJ_VID_MAX ||
	    strncmp(key, DRGW_INDEX_PREFIX, pl) ||
	    strcmp(key + n - sl, DRGW_INDEX_SUFFIX))
		return false;
	memcpy(vid, key + pl, n - pl - sl);
	vid[n - pl - sl] = '\0';
	return drgw_vid_ok(vid);
}

/* --- writing --- */

/* Appends one line of JSON to the memfd of arg. */
struct lines {
	int fd;
	uint64_t size;
};

static int put_line(struct lines *l, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	size_t len = text ? strlen(text) : 0;
	int r = !text ? -ENOMEM : drgw_write_full(l->fd, text, len);

	if (r == 0)
		r = drgw_write_full(l->fd, "\n", 1);
	if (r == 0)
		l->size += len + 1;
	free(text);
	json_decref(o);
	return r;
}

static int add_entry(void *arg, const struct drgw_version *v)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:i, s:s, s:I}",
			      "vid", v->vid, "name", v->name,
			      "size", (json_int_t)v->size,
			      "mtime_ns", (json_int_t)v->mtime_ns,
			      "created_ns", (json_int_t)v->created_ns,
			      "mode", (int)v->mode, "sha256", v->sha256,
			      "object_size", (json_int_t)v->stored_size);

	/* What the footer says too (docs/FORMAT.md, extensions 3 and 4). */
	if (o && v->check.verdict == DRGW_SQLCHECK_OK)
		json_object_set_new(o, "check", json_string("ok"));
	else if (o && drgw_sqlcheck_failed(v->check.verdict))
		json_object_set_new(o, "check", json_string("failed"));
	if (o && v->problem)
		json_object_set_new(o, "incomplete", json_true());
	return put_line(arg, o);
}

/* The JSON lines of b's index into a memfd; its size in *ret_size.  One
 * line per object, so that neither side ever holds the whole history as
 * a JSON tree (tens of MiB at 30,000 versions). */
static int index_json(struct drgw_gateway *gw, size_t b, int64_t now,
		      int *ret_fd, uint64_t *ret_size)
{
	struct lines l = { .fd = memfd_create("drgw-index", MFD_CLOEXEC) };
	int r;

	if (l.fd < 0)
		return -errno;
	r = put_line(&l, json_pack("{s:i, s:I}", "index", INDEX_LAYOUT,
				   "written_ns", (json_int_t)now));
	if (r == 0)
		r = drgw_catalog_each_on_backend(gw->cat, gw->backend_names[b],
						 add_entry, &l);
	if (r < 0) {
		close(l.fd);
		return r;
	}
	*ret_fd = l.fd;
	*ret_size = l.size;
	return 0;
}

struct index_keys {
	char **keys;
	size_t n;
};

static int on_index_key(void *arg, const char *key,
			const struct drgw_object_info *info)
{
	struct index_keys *o = arg;
	char vid[DRGW_OBJ_VID_MAX + 1];
	char **p;

	if (!drgw_index_key(key, vid))
		return 0;
	p = realloc(o->keys, (o->n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	o->keys = p;
	if ((p[o->n] = strdup(key)))
		o->n++;
	return 0;
}

/* Removes b's index records that sort before keep (all but the newest if
 * keep is NULL).  The number removed, or a negative errno (the first
 * failure: no permission to delete, say). */
static int remove_older(struct drgw_gateway *gw, size_t b, const char *keep,
			struct drgw_err *err)
{
	struct index_keys o = { .n = 0 };
	const char *newest = keep;
	int r, removed = 0;

	r = drgw_backend_list_all(gw->backends[b], DRGW_INDEX_PREFIX,
				  on_index_key, &o, err);
	for (size_t i = 0; r == 0 && !keep && i < o.n; i++)
		if (!newest || strcmp(o.keys[i], newest) > 0)
			newest = o.keys[i];
	for (size_t i = 0; r == 0 && newest && i < o.n; i++) {
		if (strcmp(o.keys[i], newest) >= 0)
			continue;
		r = drgw_backend_remove(gw->backends[b], o.keys[i], err);
		if (r == 0)
			removed++;
	}
	for (size_t i = 0; i < o.n; i++)
		free(o.keys[i]);
	free(o.keys);
	return r < 0 ? r : removed;
}

int drgw_index_prune(struct drgw_gateway *gw, size_t b, struct drgw_err *err)
{
	return remove_older(gw, b, NULL, err);
}

/* Readers take the greatest key as the newest record, so its vid must
 * sort in the order records are written: the seal time's seconds, as in
 * snapshot vids, then its nanoseconds (several records a second are
 * common: one while idle, one at stop). */
static void make_index_vid(int64_t now_ns, char *buf, size_t size)
{
	time_t t = (time_t)(now_ns / NSEC_PER_SEC);
	struct tm tm;
	char ts[32];

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%S", &tm);
	snprintf(buf, size, "%s%09lldZ-%08x", ts,
		 (long long)(now_ns % NSEC_PER_SEC), randombytes_random());
}

/* The key of an index record being written to backend b is kept in the
 * catalog until the put returns: one a SIGKILL interrupted leaves a
 * temporary (the local backend's ".<name>.part") that the next write
 * discards. */
static void writing_name(struct drgw_gateway *gw, size_t b, char *buf,
			 size_t size)
{
	snprintf(buf, size, "index-writing:%s", gw->backend_names[b]);
}

static void writing(struct drgw_gateway *gw, size_t b, const char *key)
{
	char name[160];

	writing_name(gw, b, name, sizeof(name));
	drgw_catalog_set_meta(gw->cat, name, key);
}

static void discard_interrupted(struct drgw_gateway *gw, size_t b)
{
	char name[160], key[DRGW_OBJ_VID_MAX + 16] = "";
	struct drgw_err e = { 0 };

	writing_name(gw, b, name, sizeof(name));
	if (drgw_catalog_get_meta(gw->cat, name, key, sizeof(key)) < 0 ||
	    !key[0])
		return;
	if (drgw_backend_abort_put(gw->backends[b], key, NULL, 0, &e) < 0)
		log_debug("cannot discard the interrupted index record %s on %s: %s",
			  key, gw->backend_names[b], e.msg);
	writing(gw, b, "");
}

int drgw_index_write(struct drgw_gateway *gw, size_t b, struct drgw_err *err)
{
	struct drgw_encode_opts opts = { .chunk_size = gw->cfg->chunk_size,
					 .level = gw->cfg->compression_level,
					 .threads = 1,
					 .repo = gw->repo_id,
					 .kind = DRGW_OBJ_INDEX };
	struct drgw_obj_meta *meta = calloc(1, sizeof(*meta));
	struct drgw_put_source src = { .fd = -1 };
	struct drgw_encode_result res;
	int64_t now = drgw_now_ns();
	char key[DRGW_OBJ_VID_MAX + 16];
	int in = -1, r;

	if (!meta)
		return -ENOMEM;
	r = index_json(gw, b, now, &in, &meta->size);
	if (r < 0) {
		drgw_err_set(err, "cannot list what backend %s holds: %s",
			     gw->backend_names[b], strerror(-r));
		goto out;
	}
	make_index_vid(now, meta->vid, sizeof(meta->vid));
	drgw_strlcpy(meta->name, "index", sizeof(meta->name));
	meta->mtime_ns = meta->created_ns = now;
	src.fd = memfd_create("drgw-index-object", MFD_CLOEXEC);
	if (src.fd < 0) {
		r = -errno;
		drgw_err_set(err, "cannot create an index: %s", strerror(-r));
		goto out;
	}
	r = drgw_encode(in, meta, &gw->keys, &opts, src.fd, &res, err);
	if (r < 0)
		goto out;
	src.size = res.stored_size;
	src.read_at = drgw_fd_source_read_at;
	memcpy(src.sha256, res.object_sha256, sizeof(src.sha256));
	snprintf(key, sizeof(key), DRGW_INDEX_PREFIX "%s" DRGW_INDEX_SUFFIX,
		 meta->vid);
	discard_interrupted(gw, b);
	writing(gw, b, key);
	r = drgw_backend_put(gw->backends[b], key, &src, err);
	writing(gw, b, "");
	if (r < 0)
		goto out;
	log_info("wrote index %s to %s (%llu bytes)", key, gw->backend_names[b],
		 (unsigned long long)src.size);
	if (!gw->index_no_delete[b]) {
		/* Best effort: a writer that may not delete (separation of
		 * duties) says so once and leaves them to drgw prune. */
		struct drgw_err e = { 0 };

		r = remove_older(gw, b, key, &e);
		if (r == -EACCES || r == -EPERM) {
			gw->index_no_delete[b] = true;
			log_info("cannot remove superseded index records on %s (%s); drgw prune removes them",
				 gw->backend_names[b], e.msg);
		} else if (r < 0) {
			log_debug("cannot remove older index records on %s: %s",
				  gw->backend_names[b], e.msg);
		}
		r = 0;
	}
out:
	if (in >= 0)
		close(in);
	if (src.fd >= 0)
		close(src.fd);
	free(meta);
	return r;
}

/* --- reading --- */

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct drgw_index_entry *)a)->vid,
		      ((const struct drgw_index_entry *)b)->vid);
}

void drgw_index_release(struct drgw_index *ix)
{
	for (size_t i = 0; i < ix->n; i++)
		free(ix->entries[i].name);
	free(ix->entries);
	memset(ix, 0, sizeof(*ix));
}

/* One entry; -EIO when a member is missing or of the wrong type. */
static int parse_entry(json_t *o, struct drgw_index_entry *e)
{
	json_t *vid = json_object_get(o, "vid"), *name = json_object_get(o, "name");
	json_t *sha = json_object_get(o, "sha256");
	const char *check;
	json_t *num[5] = { json_object_get(o, "size"),
			   json_object_get(o, "mtime_ns"),
			   json_object_get(o, "created_ns"),
			   json_object_get(o, "mode"),
			   json_object_get(o, "object_size") };

	if (!json_is_string(vid) || !json_is_string(name) ||
	    !json_is_string(sha))
		return -EIO;
	for (int i = 0; i < 5; i++)
		if (!json_is_integer(num[i]) ||
		    (i != 1 && i != 2 && json_integer_value(num[i]) < 0))
			return -EIO;
	if (drgw_strlcpy(e->vid, json_string_value(vid), sizeof(e->vid)) < 0 ||
	    !drgw_vid_ok(e->vid) || !drgw_name_ok(json_string_value(name)) ||
	    strlen(json_string_value(sha)) != 64 ||
	    drgw_unhex(json_string_value(sha), e->sha256, 32) < 0)
		return -EIO;
	e->size = (uint64_t)json_integer_value(num[0]);
	e->mtime_ns = json_integer_value(num[1]);
	e->created_ns = json_integer_value(num[2]);
	e->mode = (uint32_t)json_integer_value(num[3]) & 0777;
	e->object_size = (uint64_t)json_integer_value(num[4]);
	/* Optional: absent from the index records of older writers. */
	check = json_string_value(json_object_get(o, "check"));
	e->check = !check ? DRGW_CHECK_NONE :
		   !strcmp(check, "ok") ? DRGW_CHECK_OK :
		   !strcmp(check, "failed") ? DRGW_CHECK_FAILED : DRGW_CHECK_NONE;
	e->incomplete = json_is_true(json_object_get(o, "incomplete"));
	e->name = strdup(json_string_value(name));
	return e->name ? 0 : -ENOMEM;
}

int drgw_index_parse(const char *json, size_t len, struct drgw_index *ret,
		     struct drgw_err *err)
{
	struct drgw_index ix = { .n = 0 };
	const char *p = json, *end = json + len, *nl;
	json_t *head = NULL, *o;
	json_error_t jerr;
	size_t cap = 0, lines = 0;
	int r = 0;

	/* The header line, then one object per line. */
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl)
		head = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(head) ||
	    json_integer_value(json_object_get(head, "index")) != INDEX_LAYOUT ||
	    !json_is_integer(json_object_get(head, "written_ns"))) {
		json_decref(head);
		drgw_err_set(err, "index record is not a drgw index of layout %d",
			     INDEX_LAYOUT);
		return -EIO;
	}
	ix.written_ns = json_integer_value(json_object_get(head, "written_ns"));
	json_decref(head);
	for (p = nl + 1; r == 0 && p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl || ++lines > INDEX_MAX_ENTRIES) {
			r = -EIO; /* cut short, or too many */
			break;
		}
		if (ix.n == cap) {
			size_t c = cap ? cap * 2 : 256;
			void *more = realloc(ix.entries, c * sizeof(*ix.entries));

			if (!more) {
				r = -ENOMEM;
				break;
			}
			ix.entries = more;
			cap = c;
		}
		o = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
		memset(&ix.entries[ix.n], 0, sizeof(ix.entries[0]));
		r = o ? parse_entry(o, &ix.entries[ix.n]) : -EIO;
		json_decref(o);
		if (r == 0)
			ix.n++;
	}
	if (r == 0 && ix.n)
		qsort(ix.entries, ix.n, sizeof(*ix.entries), cmp_entry);
	for (size_t i = 1; r == 0 && i < ix.n; i++)
		if (!strcmp(ix.entries[i - 1].vid, ix.entries[i].vid))
			r = -EIO;
	if (r < 0) {
		drgw_index_release(&ix);
		if (r == -EIO)
			drgw_err_set(err, "index record has an invalid entry");
		return r;
	}
	*ret = ix;
	return 0;
}

const struct drgw_index_entry *drgw_index_find(const struct drgw_index *ix,
					       const char *vid)
{
	struct drgw_index_entry key;

	if (drgw_strlcpy(key.vid, vid, sizeof(key.vid)) < 0 || !ix->n)
		return NULL;
	return bsearch(&key, ix->entries, ix->n, sizeof(*ix->entries),
		       cmp_entry);
}

int drgw_index_read(struct drgw_gateway *gw, size_t b, const char *key,
		    uint64_t object_size, struct drgw_index *ret,
		    struct drgw_err *err)
{
	struct drgw_reader_opts ro;
	struct drgw_reader *rd = NULL;
	char vid[DRGW_OBJ_VID_MAX + 1];
	const struct drgw_obj_meta *m;
	struct drgw_rfile *rf = NULL;
	uint8_t sha[32];
	char *buf = NULL;
	ssize_t got;
	int r;

	if (!drgw_index_key(key, vid)) {
		drgw_err_set(err, "%s is not an index record", key);
		return -EINVAL;
	}
	drgw_reader_opts_from_config(gw->cfg, &ro);
	r = drgw_reader_new(&ro, &gw->keys, &rd);
	if (r == 0)
		r = drgw_rfile_open(rd, gw->backends[b], key, object_size, &rf,
				    err);
	if (r < 0) {
		drgw_reader_free(rd);
		return r;
	}
	m = drgw_rfile_meta(rf);
	if (drgw_rfile_kind(rf) != DRGW_OBJ_INDEX || strcmp(m->vid, vid) ||
	    m->size > INDEX_MAX_BYTES) {
		drgw_err_set(err, "%s on %s is not the index record it claims to be",
			     key, gw->backend_names[b]);
		r = -EIO;
		goto out;
	}
	if (gw->have_repo && memcmp(m->repo, gw->repo_id, DRGW_REPO_ID_BYTES)) {
		drgw_err_set(err, "%s on %s belongs to another repository", key,
			     gw->backend_names[b]);
		r = -EIO;
		goto out;
	}
	buf = malloc(m->size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	got = m->size ? drgw_rfile_pread(rf, buf, m->size, 0, err) : 0;
	if (got < 0 || (uint64_t)got != m->size) {
		r = got < 0 ? (int)got : -EIO;
		goto out;
	}
	EVP_Digest(buf, m->size, sha, NULL, EVP_sha256(), NULL);
	if (memcmp(sha, m->sha256, 32)) {
		drgw_err_set(err, "index record %s does not match its hash", key);
		r = -EBADMSG;
		goto out;
	}
	r = drgw_index_parse(buf, m->size, ret, err);
	if (r == 0) {
		drgw_strlcpy(ret->vid, vid, sizeof(ret->vid));
		memcpy(ret->repo, m->repo, sizeof(ret->repo));
	}
out:
	free(buf);
	drgw_rfile_close(rf);
	drgw_reader_free(rd);
	return r;
}
