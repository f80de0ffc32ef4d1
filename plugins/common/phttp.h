/* SPDX-License-Identifier: MIT */
/*
 * HTTP for the cloud backends, on libcurl's easy interface: a client owns
 * a small pool of easy handles (so connections stay alive between the
 * requests of one instance), runs one request at a time per handle, and
 * retries with the AWS SDK's "standard" full-jitter backoff.  Requests are
 * sent exactly as the caller built them: no redirects, no dot-segment
 * removal, no authentication added by curl.  Signing is the caller's job,
 * redone before every attempt through a hook.
 *
 * Thread-safety: a client may be used from any number of threads at once;
 * a request and its response belong to one thread.
 */
#ifndef DRGW_PHTTP_H
#define DRGW_PHTTP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "pbuf.h"

struct phttp_config {
	const char *ca_bundle;		/* CA file, NULL for the system's */
	int tls_verify;			/* 0 disables peer and host checks */
	long connect_timeout_ms;
	long low_speed_time_s;		/* fail when slower than 1 KiB/s ... */
	const char *user_agent;		/* ... for this many seconds */
	/* The gateway's deadline for the current call (drgw_host), or NULL:
	 * requests are cut short at it and no retry starts past it. */
	int64_t (*deadline_ns)(void);
};

struct phttp_client;

struct phttp_response {
	long status;			/* 0 when no response arrived */
	struct pbuf headers;		/* raw header lines of the last response */
	struct pbuf body;		/* body, unless the request's sink took it */
	uint64_t body_bytes;		/* body bytes of this attempt so far,
					 * counting the chunk a sink is being
					 * given: a sink sees body_bytes == len
					 * on an attempt's first chunk */
	int sink_stopped;		/* the sink ended the transfer on purpose */
	int read_errno;			/* set by a failing body read */
	int curl_code;			/* CURLcode of the transfer */
	char curl_msg[CURL_ERROR_SIZE];	/* curl's error text, no secrets */
};

/*
 * What a request sends and where its answer goes.  Body: either
 * body/body_len in memory, or read_at() for body_size bytes starting at
 * body_off (must be replayable: curl may rewind, and every retry reads it
 * again).  has_body makes PUT/POST send a (possibly empty) body.  The
 * plugins' own request structs embed one and hand it over as is.
 */
struct phttp_io {
	int has_body;
	const void *body;
	size_t body_len;
	int (*read_at)(void *arg, void *buf, size_t len, uint64_t off);
	void *read_arg;
	uint64_t body_off;
	uint64_t body_size;
	/* Receives 2xx bodies when set (others always go to resp->body).
	 * Returns 0 to go on, 1 to end the transfer successfully (sets
	 * resp->sink_stopped), or a negative errno to fail it. */
	int (*sink)(void *arg, struct phttp_response *resp, const char *data,
		    size_t len);
	void *sink_arg;
	size_t max_body;		/* cap on resp->body, 0 for 16 MiB */
	/* Polled during the transfer and between retries; non-zero stops
	 * the request with -ECANCELED. */
	int (*cancelled)(void *arg);
	void *cancel_arg;
};

/* One request. */
struct phttp_request {
	const char *method;		/* GET HEAD PUT POST DELETE */
	const char *url;
	struct curl_slist *headers;	/* sent as is; caller owns */
	struct phttp_io io;
	long timeout_ms;		/* whole-request limit, 0 for none */
	long connect_timeout_ms;	/* overrides the client's when > 0 */
};

struct phttp_retry {
	int max_attempts;		/* total attempts, at least 1 */
	unsigned base_ms;		/* backoff before retry i is */
	unsigned cap_ms;		/* rand * min(base * 2^(i-1), cap) */
};

enum phttp_next {
	PHTTP_STOP,			/* the result is final */
	PHTTP_RETRY,			/* retry after backoff */
	PHTTP_RETRY_NOW,		/* retry at once (refreshed credentials);
					 * the first one is not counted
					 * against max_attempts */
};

struct phttp_hooks {
	/* Before each attempt (1-based): (re)build URL, headers and
	 * signature.  A negative errno ends the loop with that error. */
	int (*prepare)(void *arg, struct phttp_request *rq, int attempt);
	/* After each attempt; r is phttp_perform()'s result.  May set
	 * *ret_delay_ms to a server-suggested wait. */
	enum phttp_next (*classify)(void *arg, struct phttp_response *resp,
				    int r, int attempt,
				    unsigned *ret_delay_ms);
};

/*
 * Creates a client; the config strings are copied.
 * @return 0, -ENOMEM, or -EIO if libcurl cannot be initialized.
 */
int phttp_client_new(const struct phttp_config *cfg,
		     struct phttp_client **ret_client);
/* Frees the client and its idle handles; NULL-safe; returns NULL. */
struct phttp_client *phttp_client_free(struct phttp_client *c);

/* Empties a response for reuse (keeps memory). */
void phttp_response_reset(struct phttp_response *resp);
/* Frees a response's buffers. */
void phttp_response_release(struct phttp_response *resp);

/*
 * One attempt, no retry.
 * @return 0 when an HTTP response arrived (any status: check
 * resp->status), else a negative errno for the transport failure:
 * -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT, -ECONNRESET, -ECANCELED, -EIO
 * (TLS or protocol), -ENOMEM, -EINVAL (bad URL), or the body reader's or
 * the sink's own errno.  resp->curl_msg then says what happened.
 */
int phttp_perform(struct phttp_client *c, struct phttp_request *rq,
		  struct phttp_response *resp);

/*
 * The retry loop: prepare, perform, classify, back off, until classify
 * says stop or policy->max_attempts is reached.  *ret_attempts (optional)
 * gets the number of attempts made.
 * @return phttp_perform()'s result of the last attempt, or prepare()'s
 * error, or -ECANCELED when cancelled while waiting.
 */
int phttp_run(struct phttp_client *c, struct phttp_request *rq,
	      struct phttp_response *resp, const struct phttp_retry *policy,
	      const struct phttp_hooks *hooks, void *arg, int *ret_attempts);

/* The classification most HTTP APIs want: transport resets/timeouts and
 * 429/500/502/503/504 are retried, everything else is final. */
enum phttp_next phttp_classify_default(struct phttp_response *resp, int r);

/* Full-jitter delay in ms before retry number attempt (1-based). */
unsigned phttp_backoff_ms(const struct phttp_retry *policy, int attempt);

/*
 * Copies the value of the last response header called name (case-
 * insensitive), trimmed, into buf.
 * @return 0, -ENOENT if absent, -ENOBUFS if it does not fit.
 */
int phttp_header(const struct phttp_response *resp, const char *name,
		 char *buf, size_t size);

/*
 * Like phttp_header(), for the n-th (0-based) of several header lines
 * with the same name, in the order received (GCS sends x-goog-hash once
 * per digest).
 * @return 0, -ENOENT if there are not that many, -ENOBUFS.
 */
int phttp_header_nth(const struct phttp_response *resp, const char *name,
		     unsigned n, char *buf, size_t size);

/* Appends "Name: value" to *list; -ENOMEM on failure. */
int phttp_add_header(struct curl_slist **list, const char *name,
		     const char *value);

/* A short description of a transport error for messages, e.g.
 * "connection refused (Failed to connect to ...)". */
const char *phttp_strerror(const struct phttp_response *resp, int r);

#endif /* DRGW_PHTTP_H */
