/* SPDX-License-Identifier: MIT */
/*
 * Metrics endpoint; see httpd.h.  Requests are rare (a scrape every few
 * seconds at most) and cheap, so libmicrohttpd's single internal polling
 * thread is enough, and the catalog connection of the daemon is shared
 * (it serialises its callers).
 */
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "httpd.h"
#include "metrics.h"

struct drgw_httpd {
	struct MHD_Daemon *mhd;
	struct drgw_gateway *gw;
	const atomic_bool *ready;
};

/* body is a string literal (owned false) or malloc()ed (owned true). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
			     const char *type, const char *body, bool owned)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		strlen(body), (void *)(uintptr_t)body,
		owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result r;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", type);
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	struct drgw_httpd *h = cls;
	struct drgw_queue_stats qs;
	char *text;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, 405, "text/plain", "method not allowed\n", false);
	if (!strcmp(url, "/metrics")) {
		if (drgw_metrics_render(h->gw->cat, true, &text) < 0)
			return reply(conn, 500, "text/plain", "cannot render metrics\n", false);
		return reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8",
			     text, true);
	}
	if (!strcmp(url, "/healthz")) {
		if (drgw_catalog_queue_stats(h->gw->cat, NULL, &qs) < 0)
			return reply(conn, 503, "text/plain", "catalog unreadable\n", false);
		return reply(conn, 200, "text/plain", "ok\n", false);
	}
	if (!strcmp(url, "/readyz")) {
		if (h->ready && atomic_load(h->ready))
			return reply(conn, 200, "text/plain", "ready\n", false);
		return reply(conn, 503, "text/plain", "not serving\n", false);
	}
	return reply(conn, 404, "text/plain", "not found: try /metrics, /healthz, /readyz\n", false);
}

int drgw_httpd_start(const char *addr, struct drgw_gateway *gw,
		     const atomic_bool *ready, struct drgw_httpd **ret,
		     struct drgw_err *err)
{
	struct sockaddr_storage sa;
	socklen_t sa_len;
	struct drgw_httpd *h;

	if (drgw_parse_listen_addr(addr, &sa, &sa_len) < 0) {
		drgw_err_set(err,
			     "invalid --metrics-listen '%s': expected HOST:PORT, :PORT or [V6]:PORT",
			     addr);
		return -EINVAL;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->gw = gw;
	h->ready = ready;
	h->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
			(sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &sa,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_END);
	if (!h->mhd) {
		drgw_err_set(err, "cannot listen for metrics on %s (port in use?)",
			     addr);
		free(h);
		return -EADDRINUSE;
	}
	*ret = h;
	return 0;
}

struct drgw_httpd *drgw_httpd_stop(struct drgw_httpd *h)
{
	if (!h)
		return NULL;
	MHD_stop_daemon(h->mhd);
	free(h);
	return NULL;
}
