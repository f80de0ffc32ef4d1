/* SPDX-License-Identifier: MIT */
/*
 * Copying a remote snapshot out in full, with its content hash checked;
 * used by `drgw restore` and `drgw verify`.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "restore.h"

#define COPY_STEP (4u << 20)

void drgw_reader_opts_from_config(const struct drgw_config *cfg,
				  struct drgw_reader_opts *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->cache_bytes = cfg->read_cache_bytes;
	ret->readahead = cfg->readahead_chunks;
	ret->threads = cfg->fetch_threads;
}

int drgw_restore_copy(struct drgw_gateway *gw, struct drgw_reader *rd,
		      const struct drgw_snapshot *s, size_t loc, int fd,
		      bool check_header, uint8_t ret_sha256[32],
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
	r = drgw_remote_open(gw, rd, s, loc, &rf, err);
	if (r < 0)
		goto out;
	if (check_header && (r = drgw_rfile_check_header(rf, err)) < 0)
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
