/* SPDX-License-Identifier: MIT */
/*
 * libcurl plumbing and the retry loop; see phttp.h.
 *
 * Idle easy handles are pooled per client rather than per thread: the
 * upload workers are short-lived threads, and a handle keeps its
 * connection cache, DNS cache and TLS session cache across
 * curl_easy_reset(), so a pooled handle is a kept-alive connection.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "phttp.h"

#define POOL_MAX 16
#define DEFAULT_MAX_BODY (16u << 20)
#define LOW_SPEED_LIMIT 1024 /* bytes/s; see phttp_config */
#define UPLOAD_BUFFER (512 * 1024)

struct phttp_client {
	struct phttp_config cfg;	/* strings owned */
	pthread_mutex_t lock;
	CURL *idle[POOL_MAX];		/* protected by lock */
	size_t n_idle;			/* protected by lock */
};

/* State of one transfer, seen by the curl callbacks. */
struct xfer {
	struct phttp_request *rq;
	struct phttp_response *resp;
	CURL *h;
	uint64_t pos;			/* body bytes handed to curl */
	size_t max_body;
	int sink_err;
	int too_big;
	long left_ms;			/* until the caller's deadline, 0: none */
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Milliseconds left before the gateway's deadline for this call: 0 when
 * there is none, negative when it has passed. */
static long deadline_left_ms(const struct phttp_client *c)
{
	int64_t d = c->cfg.deadline_ns ? c->cfg.deadline_ns() : 0;

	if (d <= 0)
		return 0;
	d = (d - mono_ns()) / 1000000;
	return d > 0 ? (long)d : -1;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

/* libcurl is initialized once per process and never cleaned up: other
 * plugins (and the gateway) may use it too, and curl_global_cleanup()
 * is not safe while any of them still does. */
static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int phttp_client_new(const struct phttp_config *cfg,
		     struct phttp_client **ret_client)
{
	struct phttp_client *c;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -EIO;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->cfg.ca_bundle = cfg->ca_bundle ? strdup(cfg->ca_bundle) : NULL;
	c->cfg.user_agent = strdup(cfg->user_agent ? cfg->user_agent : "drgw");
	if ((cfg->ca_bundle && !c->cfg.ca_bundle) || !c->cfg.user_agent) {
		free((char *)c->cfg.ca_bundle);
		free((char *)c->cfg.user_agent);
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	*ret_client = c;
	return 0;
}

struct phttp_client *phttp_client_free(struct phttp_client *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->n_idle; i++)
		curl_easy_cleanup(c->idle[i]);
	pthread_mutex_destroy(&c->lock);
	free((char *)c->cfg.ca_bundle);
	free((char *)c->cfg.user_agent);
	free(c);
	return NULL;
}

static CURL *handle_get(struct phttp_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->n_idle)
		h = c->idle[--c->n_idle];
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void handle_put(struct phttp_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->n_idle < POOL_MAX) {
		c->idle[c->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

void phttp_response_reset(struct phttp_response *resp)
{
	resp->status = 0;
	pbuf_reset(&resp->headers);
	pbuf_reset(&resp->body);
	resp->body_bytes = 0;
	resp->sink_stopped = 0;
	resp->read_errno = 0;
	resp->curl_code = CURLE_OK;
	resp->curl_msg[0] = '\0';
}

void phttp_response_release(struct phttp_response *resp)
{
	pbuf_release(&resp->headers);
	pbuf_release(&resp->body);
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	/* A status line starts a new response (after "100 Continue"):
	 * keep only the headers of the last one. */
	if (len >= 5 && !memcmp(data, "HTTP/", 5))
		pbuf_reset(&x->resp->headers);
	if (x->resp->headers.len + len > 256 * 1024)
		return 0;
	return pbuf_add(&x->resp->headers, data, len) < 0 ? 0 : len;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	x->resp->status = status;
	x->resp->body_bytes += len;
	if (x->rq->io.sink && status >= 200 && status < 300) {
		int r = x->rq->io.sink(x->rq->io.sink_arg, x->resp, data, len);

		if (r == 0)
			return len;
		if (r > 0)
			x->resp->sink_stopped = 1;
		else
			x->sink_err = r;
		return 0;
	}
	if (x->resp->body.len + len > x->max_body) {
		x->too_big = 1;
		return 0;
	}
	return pbuf_add(&x->resp->body, data, len) < 0 ? 0 : len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	struct phttp_request *rq = x->rq;
	uint64_t total = rq->io.read_at ? rq->io.body_size : rq->io.body_len;
	size_t len = size * n;
	int r;

	if (x->pos >= total)
		return 0;
	if (len > total - x->pos)
		len = (size_t)(total - x->pos);
	if (!rq->io.read_at) {
		memcpy(buf, (const char *)rq->io.body + x->pos, len);
	} else {
		r = rq->io.read_at(rq->io.read_arg, buf, len, rq->io.body_off + x->pos);
		if (r < 0) {
			x->resp->read_errno = r;
			return CURL_READFUNC_ABORT;
		}
	}
	x->pos += len;
	return len;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;
	uint64_t total = x->rq->io.read_at ? x->rq->io.body_size : x->rq->io.body_len;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > total)
		return CURL_SEEKFUNC_CANTSEEK;
	x->pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *x = arg;

	return x->rq->io.cancelled(x->rq->io.cancel_arg) ? 1 : 0;
}

static int map_curl(CURLcode rc, struct xfer *x)
{
	long oserr = 0;

	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(x->h, CURLINFO_OS_ERRNO, &oserr);
		if (oserr == EHOSTUNREACH || oserr == ENETUNREACH)
			return -EHOSTUNREACH;
		if (oserr == ETIMEDOUT)
			return -ETIMEDOUT;
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return -ECONNRESET;
	case CURLE_ABORTED_BY_CALLBACK:
		/* CURL_READFUNC_ABORT also ends up here */
		return x->resp->read_errno ? x->resp->read_errno : -ECANCELED;
	case CURLE_READ_ERROR:
		return x->resp->read_errno ? x->resp->read_errno : -EIO;
	case CURLE_WRITE_ERROR:
		if (x->resp->sink_stopped)
			return 0;
		if (x->sink_err)
			return x->sink_err;
		return x->too_big ? -EIO : -ENOMEM;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static int setup(struct phttp_client *c, struct xfer *x)
{
	struct phttp_request *rq = x->rq;
	CURL *h = x->h;
	long cto = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms :
						c->cfg.connect_timeout_ms;
	curl_off_t size = (curl_off_t)(rq->io.read_at ? rq->io.body_size :
						     rq->io.body_len);
	CURLcode rc = CURLE_OK;

#define SET(opt, val) \
	do { if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val); } while (0)
	SET(CURLOPT_URL, rq->url);
	/* The signature covers the path byte for byte. */
	SET(CURLOPT_PATH_AS_IS, 1L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_ERRORBUFFER, x->resp->curl_msg);
	SET(CURLOPT_USERAGENT, c->cfg.user_agent);
	SET(CURLOPT_HTTPHEADER, rq->headers);
	SET(CURLOPT_CONNECTTIMEOUT_MS, cto);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	if (rq->timeout_ms > 0 || x->left_ms > 0)
		SET(CURLOPT_TIMEOUT_MS,
		    x->left_ms > 0 && (rq->timeout_ms <= 0 ||
				       x->left_ms < rq->timeout_ms) ?
			    x->left_ms :
			    rq->timeout_ms);
	if (c->cfg.low_speed_time_s > 0) {
		/* Big transfers get no total timeout; a stalled one still
		 * fails, after low_speed_time_s below 1 KiB/s. */
		SET(CURLOPT_LOW_SPEED_LIMIT, (long)LOW_SPEED_LIMIT);
		SET(CURLOPT_LOW_SPEED_TIME, c->cfg.low_speed_time_s);
	}
	SET(CURLOPT_SSL_VERIFYPEER, c->cfg.tls_verify ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, c->cfg.tls_verify ? 2L : 0L);
	if (c->cfg.ca_bundle)
		SET(CURLOPT_CAINFO, c->cfg.ca_bundle);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, x);
	if (rq->io.cancelled) {
		SET(CURLOPT_XFERINFOFUNCTION, on_progress);
		SET(CURLOPT_XFERINFODATA, x);
		SET(CURLOPT_NOPROGRESS, 0L);
	}

	if (!strcmp(rq->method, "HEAD")) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (!strcmp(rq->method, "PUT") ||
		   (!strcmp(rq->method, "POST") && rq->io.has_body)) {
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, x);
		SET(CURLOPT_SEEKFUNCTION, on_seek);
		SET(CURLOPT_SEEKDATA, x);
		if (!strcmp(rq->method, "PUT")) {
			SET(CURLOPT_UPLOAD, 1L);
			SET(CURLOPT_INFILESIZE_LARGE, size);
			SET(CURLOPT_UPLOAD_BUFFERSIZE, (long)UPLOAD_BUFFER);
		} else {
			SET(CURLOPT_POST, 1L);
			SET(CURLOPT_POSTFIELDSIZE_LARGE, size);
		}
	} else if (!strcmp(rq->method, "POST")) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDS, "");
		SET(CURLOPT_POSTFIELDSIZE, 0L);
	} else if (strcmp(rq->method, "GET")) {
		SET(CURLOPT_CUSTOMREQUEST, rq->method);
	}
#undef SET
	return rc == CURLE_OK ? 0 : (rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL);
}

int phttp_perform(struct phttp_client *c, struct phttp_request *rq,
		  struct phttp_response *resp)
{
	struct xfer x = { .rq = rq, .resp = resp };
	CURLcode rc;
	int r;

	x.max_body = rq->io.max_body ? rq->io.max_body : DEFAULT_MAX_BODY;
	phttp_response_reset(resp);
	x.left_ms = deadline_left_ms(c);
	if (x.left_ms < 0) {
		resp->curl_code = CURLE_OPERATION_TIMEDOUT;
		snprintf(resp->curl_msg, sizeof(resp->curl_msg),
			 "the read's deadline passed (read-deadline)");
		return -ETIMEDOUT;
	}
	x.h = handle_get(c);
	if (!x.h)
		return -ENOMEM;
	r = setup(c, &x);
	if (r < 0) {
		curl_easy_cleanup(x.h);
		return r;
	}
	rc = curl_easy_perform(x.h);
	resp->curl_code = (int)rc;
	curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &resp->status);
	r = map_curl(rc, &x);
	if (r == -EIO && x.too_big)
		snprintf(resp->curl_msg, sizeof(resp->curl_msg),
			 "response body larger than %zu bytes", x.max_body);
	else if (r < 0 && !resp->curl_msg[0])
		snprintf(resp->curl_msg, sizeof(resp->curl_msg), "%s",
			 curl_easy_strerror(rc));
	if (r < 0)
		resp->status = 0;
	/* A failed transfer may leave the connection in any state; curl
	 * closes what it cannot reuse, so the handle is still good. */
	handle_put(c, x.h);
	return r;
}

unsigned phttp_backoff_ms(const struct phttp_retry *policy, int attempt)
{
	uint64_t ceiling = policy->base_ms;
	uint32_t rnd;

	for (int i = 1; i < attempt && ceiling < policy->cap_ms; i++)
		ceiling *= 2;
	if (ceiling > policy->cap_ms)
		ceiling = policy->cap_ms;
	/* RAND_bytes is thread-safe; rand() is not, and the quality of the
	 * jitter matters when many workers retry at once. */
	if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
		rnd = (uint32_t)time(NULL) * 2654435761u;
	return (unsigned)(ceiling * rnd / ((uint64_t)UINT32_MAX + 1));
}

/* Sleeps ms milliseconds in short steps so that cancellation is seen. */
static int nap(unsigned ms, struct phttp_request *rq)
{
	while (ms) {
		unsigned step = ms < 100 ? ms : 100;
		struct timespec ts = { step / 1000, (long)(step % 1000) * 1000000L };

		if (rq->io.cancelled && rq->io.cancelled(rq->io.cancel_arg))
			return -ECANCELED;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		ms -= step;
	}
	return 0;
}

enum phttp_next phttp_classify_default(struct phttp_response *resp, int r)
{
	if (r == -ETIMEDOUT || r == -ECONNRESET)
		return PHTTP_RETRY;
	if (r < 0)
		return PHTTP_STOP;
	switch (resp->status) {
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		return PHTTP_RETRY;
	default:
		return PHTTP_STOP;
	}
}

int phttp_run(struct phttp_client *c, struct phttp_request *rq,
	      struct phttp_response *resp, const struct phttp_retry *policy,
	      const struct phttp_hooks *hooks, void *arg, int *ret_attempts)
{
	int attempt, r, refresh = 0;

	for (attempt = 1;; attempt++) {
		enum phttp_next next;
		unsigned hint = 0, delay;

		if (hooks && hooks->prepare) {
			r = hooks->prepare(arg, rq, attempt);
			if (r < 0)
				break;
		}
		r = phttp_perform(c, rq, resp);
		if (hooks && hooks->classify)
			next = hooks->classify(arg, resp, r, attempt, &hint);
		else
			next = phttp_classify_default(resp, r);
		if (next == PHTTP_STOP)
			break;
		/* The first refresh earns an attempt of its own: even a
		 * single-attempt policy must get to use new credentials. */
		if (next == PHTTP_RETRY_NOW && !refresh) {
			refresh = 1;
			continue;
		}
		if (attempt >= policy->max_attempts + refresh)
			break;
		if (next == PHTTP_RETRY_NOW)
			continue;
		delay = phttp_backoff_ms(policy, attempt);
		if (hint > delay)
			delay = hint;
		/* No retry that could only start after the deadline. */
		if (deadline_left_ms(c) != 0 &&
		    deadline_left_ms(c) <= (long)delay)
			break;
		if (nap(delay, rq) < 0) {
			r = -ECANCELED;
			break;
		}
	}
	if (ret_attempts)
		*ret_attempts = attempt;
	return r;
}

/* Finds the value of the header line called name: the n-th one, or the
 * last one when n < 0. */
static int find_header(const struct phttp_response *resp, const char *name,
		       long n, char *buf, size_t size)
{
	const char *p = pbuf_str(&resp->headers), *found = NULL;
	size_t nlen = strlen(name), flen = 0;
	long seen = 0;

	if (!p)
		return -ENOENT;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t llen = eol ? (size_t)(eol - p) : strlen(p);

		if (llen > nlen && p[nlen] == ':' &&
		    !strncasecmp(p, name, nlen) && (n < 0 || seen++ == n)) {
			const char *v = p + nlen + 1, *end = p + llen;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && (end[-1] == '\r' || end[-1] == ' ' ||
					   end[-1] == '\t'))
				end--;
			found = v;
			flen = (size_t)(end - v);
			if (n >= 0)
				break;
		}
		p += llen;
		if (*p == '\n')
			p++;
	}
	if (!found)
		return -ENOENT;
	if (flen >= size)
		return -ENOBUFS;
	memcpy(buf, found, flen);
	buf[flen] = '\0';
	return 0;
}

int phttp_header(const struct phttp_response *resp, const char *name,
		 char *buf, size_t size)
{
	return find_header(resp, name, -1, buf, size);
}

int phttp_header_nth(const struct phttp_response *resp, const char *name,
		     unsigned n, char *buf, size_t size)
{
	return find_header(resp, name, (long)n, buf, size);
}

int phttp_add_header(struct curl_slist **list, const char *name,
		     const char *value)
{
	struct pbuf line = PBUF_INIT;
	struct curl_slist *l;

	pbuf_addf(&line, "%s: %s", name, value);
	if (!pbuf_str(&line))
		return -ENOMEM;
	l = curl_slist_append(*list, pbuf_str(&line));
	pbuf_release(&line);
	if (!l)
		return -ENOMEM;
	*list = l;
	return 0;
}

const char *phttp_strerror(const struct phttp_response *resp, int r)
{
	if (resp->curl_msg[0])
		return resp->curl_msg;
	return strerror(-r);
}
