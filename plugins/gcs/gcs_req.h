/* SPDX-License-Identifier: MIT */
/*
 * One call of the GCS JSON API: where it goes, how it is authorized, sent
 * and retried, and how its failure becomes an errno and a one-line message
 * ("gcs: GET bucket/name: 403 forbidden: <Google's message>").
 *
 * A call is a struct gcs_op: a URL from one of the gcs_op_*_url()
 * builders (the only place that knows the API's paths), extra headers, a
 * body and a response sink.  gcs_op_run() adds the access token before
 * every attempt and retries with full-jitter backoff on 408, 429, 5xx,
 * resets and timeouts; a 401 refreshes the token and retries once.  A
 * refused connection is final at once: the endpoint is down, and the
 * gateway's scheduler backs off far longer than a request could.
 */
#ifndef DRGW_GCS_REQ_H
#define DRGW_GCS_REQ_H

#include <stdint.h>

#include <drgw/backend.h>

#include "gcs_int.h"
#include "pbuf.h"
#include "phttp.h"

struct gcs_op {
	const char *name;		/* for messages: "GET", "LIST", ... */
	const char *method;
	struct pbuf url;
	struct pbuf object;		/* "bucket/name" for messages */
	struct curl_slist *headers;	/* the call's own headers; owned */
	int anonymous;			/* session URIs carry no token */
	int accept_308;			/* 308 is an answer (resumable) */
	int max_attempts;		/* 0: the instance's max-attempts */

	/* Body, sink and cancellation, handed to phttp as is. */
	struct phttp_io io;

	/* Results. */
	struct phttp_response resp;
	char reason[64];		/* Google's error reason, "" if none */
	char message[256];		/* Google's error message */
	int attempts;
	int auth_retried;		/* a 401 got its one retry with a
					 * fresh token */
	unsigned token_gen;		/* generation of the token sent */
};

void gcs_op_init(struct gcs_op *op, const char *name, const char *method);
void gcs_op_release(struct gcs_op *op);

/* Adds a request header; -ENOMEM on failure. */
int gcs_op_header(struct gcs_op *op, const char *name, const char *value);

/*
 * URL builders.  key is relative to the backend prefix; names are
 * percent-encoded whole ('/' as %2F), as the JSON API requires.  query is
 * appended verbatim ("alt=media"), NULL for none.  All return 0 or
 * -ENOMEM.
 */
int gcs_op_object_url(struct gcs_op *op, const struct gcs *g,
		      const char *key, const char *query);
/* One listing page of the names after `after` and before `before` (keys
 * relative to the prefix; NULL: unbounded). */
int gcs_op_list_url(struct gcs_op *op, const struct gcs *g,
		    const char *prefix, const char *page_token,
		    const char *after, const char *before,
		    unsigned max_results);
/* .../storage/v1/b/B[?query]: the bucket resource. */
int gcs_op_bucket_url(struct gcs_op *op, const struct gcs *g,
		      const char *query);
/* .../upload/storage/v1/b/B/o?uploadType=TYPE&name=N, and
 * &ifGenerationMatch=0 when if_absent. */
int gcs_op_upload_url(struct gcs_op *op, const struct gcs *g,
		      const char *key, const char *upload_type,
		      int if_absent);
/* A resumable session URI (anonymous: the URI is the credential). */
int gcs_op_session_url(struct gcs_op *op, const struct gcs *g,
		       const char *key, const char *session_uri);

/*
 * Runs op with retries.
 * @return 0 for a 2xx answer (or 308 with accept_308; see
 * op->resp.status), else a negative errno (see backend.h) with err->msg
 * "gcs: NAME bucket/name: STATUS REASON: MESSAGE".  op->resp,
 * op->reason and op->message stay available either way.
 */
int gcs_op_run(struct gcs *g, struct gcs_op *op, struct drgw_err *err);

/* Writes op's failure (transport error r, or its HTTP answer) into err. */
void gcs_op_fail_msg(const struct gcs_op *op, int r, struct drgw_err *err);

/* What the retry policy says about one attempt's outcome. */
enum gcs_verdict {
	GCS_FINAL,			/* success or an error to report */
	GCS_RETRY,			/* transient: back off and retry */
	GCS_OFFSET_MISMATCH,		/* resumable: ask the server where
					 * it is instead of retrying */
};

/* r is phttp_perform()'s result, resp its answer. */
enum gcs_verdict gcs_classify(const struct phttp_response *resp, int r);

/*
 * Whether an answer is the upload front end's "Invalid request.
 * According to the Content-Range header, the upload offset is ..."
 * (a 503 in text/plain): the client and the server disagree on the
 * session's offset, and retrying the same chunk would fail again.
 */
int gcs_offset_mismatch(long status, const char *body, size_t len);

/*
 * The errno of an HTTP error answer.  reason and message are Google's
 * (may be ""); they refine a few statuses (digest mismatches are -EIO,
 * a missing bucket -EINVAL).
 */
int gcs_status_errno(long status, const char *reason, const char *message);

#endif /* DRGW_GCS_REQ_H */
