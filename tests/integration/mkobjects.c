/* SPDX-License-Identifier: MIT */
/*
 * drgw-mkobjects: writes many small, valid drgw objects at once, as a
 * long backup history would leave them on a backend, for the restore
 * tests and bench/restore.  Each object is encoded by the real encoder
 * (encode.h) with its own version id, name and seal time, which its
 * authenticated footer binds; objects cannot be made by copying one under
 * other names.
 *
 *   drgw-mkobjects --key KEYFILE --out DIR --names N --versions V
 *                  [--size BYTES] [--suffix S] [--start UNIX_SECONDS]
 *                  [--name-format FMT] [--file PATH] [--index]
 *
 * writes N * V objects DIR/<vid>.drgw<S> (S: e.g. "._S3rver_object" to
 * fill an s3rver data directory) for the names FMT % i (default
 * "app-%05u.db"), V versions each, an hour apart, and prints one line
 * "<name> <vid> <sha256>" per object.  Contents are BYTES of text that
 * depend on the name and version, or with --file the contents of PATH
 * (one name: FMT itself).  With --index it also writes the index record a
 * gateway would have left (DIR/index/<vid>.drgw-index<S>, index.h), an
 * hour after the last version.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "encode.h"
#include "gateway.h"
#include "index.h"

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "drgw-mkobjects: %s: %s\n", what, why);
	return 1;
}

static int parse_u64(const char *s, unsigned long long *ret)
{
	char *end;

	errno = 0;
	*ret = strtoull(s, &end, 10);
	return errno || end == s || *end ? -EINVAL : 0;
}

/* One line of the index record's data (gateway/index.c). */
static int add_line(FILE *f, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int r = text && fprintf(f, "%s\n", text) > 0 ? 0 : -1;

	free(text);
	json_decref(o);
	return r;
}

static int add_entry(FILE *f, const struct drgw_obj_meta *m, const char *sha,
		     uint64_t object_size)
{
	return add_line(f, json_pack("{s:s, s:s, s:I, s:I, s:I, s:i, s:s, s:I}",
				     "vid", m->vid, "name", m->name,
				     "size", (json_int_t)m->size,
				     "mtime_ns", (json_int_t)m->mtime_ns,
				     "created_ns", (json_int_t)m->created_ns,
				     "mode", (int)m->mode, "sha256", sha,
				     "object_size", (json_int_t)object_size));
}

/* The index record of every object written, as a gateway writes it:
 * entries holds its lines after the header. */
static int write_index(const char *entries, const struct drgw_keyring *kr,
		       const struct drgw_encode_opts *eo, const char *out,
		       const char *suffix, int64_t t)
{
	struct drgw_encode_opts io = *eo;
	struct drgw_obj_meta m = { .mode = 0600 };
	struct drgw_encode_result res;
	struct drgw_err err = { 0 };
	char path[4200], head[128];
	int in, fd, n;

	n = snprintf(head, sizeof(head), "{\"index\":2,\"written_ns\":%lld}\n",
		     (long long)t * 1000000000);
	in = memfd_create("index", MFD_CLOEXEC);
	if (in < 0 || drgw_write_full(in, head, (size_t)n) < 0 ||
	    drgw_write_full(in, entries, strlen(entries)) < 0)
		return fail("index", strerror(errno));
	m.size = (uint64_t)n + strlen(entries);
	m.created_ns = m.mtime_ns = t * 1000000000;
	drgw_make_vid(m.created_ns, m.vid, sizeof(m.vid));
	drgw_strlcpy(m.name, "index", sizeof(m.name));
	io.kind = DRGW_OBJ_INDEX;
	snprintf(path, sizeof(path), "%s/index", out);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return fail(path, strerror(errno));
	snprintf(path, sizeof(path), "%s/" DRGW_INDEX_PREFIX "%s" DRGW_INDEX_SUFFIX "%s",
		 out, m.vid, suffix);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(path, strerror(errno));
	if (drgw_encode(in, &m, kr, &io, fd, &res, &err) < 0)
		return fail(path, err.msg);
	close(fd);
	close(in);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "out", required_argument, NULL, 'o' },
		{ "names", required_argument, NULL, 'n' },
		{ "versions", required_argument, NULL, 'v' },
		{ "size", required_argument, NULL, 's' },
		{ "suffix", required_argument, NULL, 'x' },
		{ "start", required_argument, NULL, 't' },
		{ "name-format", required_argument, NULL, 'f' },
		{ "file", required_argument, NULL, 'F' },
		{ "index", no_argument, NULL, 'i' },
		{ 0 },
	};
	const char *keyfile = NULL, *out = NULL, *suffix = "";
	const char *fmt = "app-%05u.db", *file = NULL;
	unsigned long long names = 0, versions = 0, size = 1000,
			   start = 1767225600ULL;
	struct drgw_encode_opts eo = { .chunk_size = 1 << 20, .level = 1,
				       .threads = 1 };
	struct drgw_keyring kr = { 0 };
	struct drgw_err err = { 0 };
	FILE *index = NULL;
	char *index_text = NULL;
	size_t index_len = 0;
	char *plain;
	int c, in;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long long *num = c == 'n' ? &names :
					  c == 'v' ? &versions :
					  c == 's' ? &size :
					  c == 't' ? &start :
						     NULL;

		if (num && parse_u64(optarg, num) < 0)
			return fail(optarg, "not a number");
		if (c == 'k')
			keyfile = optarg;
		else if (c == 'o')
			out = optarg;
		else if (c == 'x')
			suffix = optarg;
		else if (c == 'f')
			fmt = optarg;
		else if (c == 'F')
			file = optarg;
		else if (c == 'i' && !index)
			index = open_memstream(&index_text, &index_len);
		else if (!num)
			return 2;
	}
	if (file) {
		names = versions = 1;
		if (!strcmp(fmt, "app-%05u.db"))
			fmt = "app.db";
	}
	if (!keyfile || !out || !names || !versions)
		return fail("usage", "--key, --out, --names and --versions are required");
	if (drgw_keyring_add_file(&kr, keyfile, &err) < 0)
		return fail(keyfile, err.msg);
	if (file) {
		struct stat st;

		in = open(file, O_RDONLY | O_CLOEXEC);
		if (in < 0 || fstat(in, &st) < 0)
			return fail(file, strerror(errno));
		size = (unsigned long long)st.st_size;
		eo.threads = 0;
	} else {
		in = memfd_create("plain", MFD_CLOEXEC);
	}
	plain = malloc(file ? 1 : size + 1);
	if (!plain || in < 0)
		return fail("setup", strerror(errno));
	for (unsigned long long v = 0; v < versions; v++) {
		for (unsigned long long i = 0; i < names; i++) {
			struct drgw_obj_meta m = { .size = size, .mode = 0600 };
			struct drgw_encode_result res;
			int64_t t = (int64_t)(start + v * 3600 + i % 3600);
			char path[4200], ts[32], sha[65];
			struct tm tm;
			time_t tt = t;
			size_t len = 0;
			int fd;

			gmtime_r(&tt, &tm);
			strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
			snprintf(m.vid, sizeof(m.vid), "%s-%08llx", ts,
				 (v * names + i) & 0xffffffffULL);
			if (file)
				drgw_strlcpy(m.name, fmt, sizeof(m.name));
			else
				snprintf(m.name, sizeof(m.name), fmt, (unsigned)i);
			m.created_ns = t * 1000000000LL;
			m.mtime_ns = m.created_ns - 1000000000LL;
			while (!file && len < size) {
				int n = snprintf(plain + len, size + 1 - len,
						 "%s version %llu\n", m.name, v);

				len += n > 0 ? (size_t)n : 1;
			}
			if (!file && (ftruncate(in, 0) < 0 ||
				      drgw_pwrite_full(in, plain, size, 0) < 0))
				return fail("memfd", strerror(errno));
			snprintf(path, sizeof(path), "%s/%s.drgw%s", out, m.vid,
				 suffix);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				  0644);
			if (fd < 0)
				return fail(path, strerror(errno));
			if (drgw_encode(in, &m, &kr, &eo, fd, &res,
					&err) < 0)
				return fail(path, err.msg);
			close(fd);
			drgw_hex(m.sha256, 32, sha);
			if (index && add_entry(index, &m, sha, res.stored_size) < 0)
				return fail("index", strerror(ENOMEM));
			printf("%s %s %s\n", m.name, m.vid, sha);
		}
	}
	if (index && (fclose(index) != 0 ||
		      write_index(index_text, &kr, &eo, out, suffix,
				  (int64_t)(start + versions * 3600 + 3600)) < 0))
		return 1;
	free(index_text);
	free(plain);
	close(in);
	drgw_keyring_clear(&kr);
	return 0;
}
