/* SPDX-License-Identifier: MIT */
/*
 * The replicator (replicate.c) and the outcomes of an upload, shared with
 * the uploads that follow the encoder (stream.c).
 */
#ifndef DRGW_REPLICATE_H
#define DRGW_REPLICATE_H

#include "gateway.h"

/* The version an upload was of, as its caller already knows it. */
struct drgw_upload_of {
	int64_t version_id;
	const char *vid;
	const char *name;
};

/* Marks the replica done, logs it, and drops the spool object once every
 * replica of the version is done.  t0 is the upload's start (monotonic);
 * streamed: the upload followed the encoder. */
void drgw_replicate_done(struct drgw_gateway *gw,
			 const struct drgw_upload_of *of, const char *backend,
			 uint64_t bytes, int64_t t0, bool streamed);
/* Marks the replica failing with msg, to be retried after backoff. */
void drgw_replicate_failed(struct drgw_gateway *gw,
			   const struct drgw_upload_of *of, const char *backend,
			   const char *msg, unsigned attempts);

/* read_at() of a put source whose fd holds the whole object. */
int drgw_fd_source_read_at(struct drgw_put_source *src, void *buf,
			   size_t len, uint64_t off);

#endif
