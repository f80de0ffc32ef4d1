/* SPDX-License-Identifier: MIT */
/*
 * Uploads that follow the encoder.  Encoding a large snapshot takes
 * seconds; so does uploading it.  For backends with DRGW_CAP_STREAMING_PUT
 * the upload starts with the encode and reads the spool object as it
 * grows, so the snapshot is off the machine about when the slower of the
 * two finishes instead of after both.
 *
 * The object only becomes visible on the backend once the encoder has
 * committed it (drgw_stream_finish(ok)): a file that changes while it is
 * encoded is abandoned, and its upload discarded.  Resume tokens saved on
 * the way go to the catalog's streams table, so that after a crash every
 * unfinished upload is either resumed as an ordinary replica or aborted.
 */
#ifndef DRGW_STREAM_H
#define DRGW_STREAM_H

#include "gateway.h"

struct drgw_stream;

/*
 * Starts an upload of the spool object being written to spool/<tmp> for
 * version v on every backend that can follow an encoder.  NULL when there
 * is none (or on error: the ordinary replicas then do the work).
 * *ret_streaming[i] says which backends have one.
 */
struct drgw_stream *drgw_stream_begin(struct drgw_gateway *gw,
				      const struct drgw_version *v,
				      const char *tmp_name, uint64_t size_hint,
				      bool ret_streaming[DRGW_MAX_BACKENDS]);
/* The encoder has written this many bytes. */
void drgw_stream_progress(void *stream, uint64_t written);
/* The object is committed (ok: its replicas are in the catalog, marked
 * uploading) with size bytes, or abandoned.  Drops the encoder's
 * reference; the uploads finish on their own threads. */
void drgw_stream_finish(struct drgw_stream *s, bool ok, uint64_t size);

/* Joins the upload threads that have ended (each ends by itself, on
 * cancel_uploads at the latest). */
void drgw_stream_join(struct drgw_gateway *gw);

/* After a crash: every upload the streams table remembers is handed to
 * its replica (when the version was committed) or aborted. */
int drgw_stream_recover(struct drgw_gateway *gw);

#endif
