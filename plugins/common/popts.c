/* SPDX-License-Identifier: MIT */
/*
 * Option parsing shared by the cloud plugins; see popts.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pbuf.h"
#include "pcodec.h"
#include "pmsg.h"
#include "popts.h"

void popts_http_init(struct popts_http *h, const struct phttp_retry *retry)
{
	memset(h, 0, sizeof(*h));
	h->tls_verify = 1;
	h->retry = *retry;
	h->connect_timeout_ms = 10000;
	h->read_timeout_s = 60;
}

int popts_http_apply(struct popts_http *h, const char *plugin, const char *k,
		     const char *v, struct drgw_err *err)
{
	uint64_t n;
	int r;

	if (!strcmp(k, "ca-bundle")) {
		/* Checked now, so a typo fails open() and not every
		 * request. */
		if (access(v, R_OK) < 0) {
			pmsg_set_err(err, "%s option ca-bundle=%s: cannot read the file: %s",
				     plugin, v, strerror(errno));
			return -EINVAL;
		}
		return popts_dup(&h->ca_bundle, v);
	}
	if (!strcmp(k, "tls-verify"))
		return popts_bool(plugin, k, v, &h->tls_verify, err);
	if (!strcmp(k, "max-attempts")) {
		r = popts_num(plugin, k, v, 1, 20, &n, err);
		if (r == 0)
			h->retry.max_attempts = (int)n;
	} else if (!strcmp(k, "connect-timeout")) {
		r = popts_num(plugin, k, v, 1, 300, &n, err);
		if (r == 0)
			h->connect_timeout_ms = (long)n * 1000;
	} else if (!strcmp(k, "read-timeout")) {
		r = popts_num(plugin, k, v, 1, 3600, &n, err);
		if (r == 0)
			h->read_timeout_s = (long)n;
	} else if (!strcmp(k, "retry-base-ms")) {
		r = popts_num(plugin, k, v, 1, 60000, &n, err);
		if (r == 0)
			h->retry.base_ms = (unsigned)n;
	} else if (!strcmp(k, "retry-cap-ms")) {
		r = popts_num(plugin, k, v, 1, 600000, &n, err);
		if (r == 0)
			h->retry.cap_ms = (unsigned)n;
	} else {
		return 1;
	}
	return r;
}

void popts_http_finish(struct popts_http *h)
{
	if (h->retry.cap_ms < h->retry.base_ms)
		h->retry.cap_ms = h->retry.base_ms;
}

void popts_http_config(const struct popts_http *h, const char *user_agent,
		       struct phttp_config *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->ca_bundle = h->ca_bundle;
	ret->tls_verify = h->tls_verify;
	ret->connect_timeout_ms = h->connect_timeout_ms;
	ret->low_speed_time_s = h->read_timeout_s;
	ret->user_agent = user_agent;
}

void popts_http_cred_config(const struct popts_http *h, const char *user_agent,
			    struct phttp_config *ret)
{
	popts_http_config(h, user_agent, ret);
	ret->tls_verify = 1;
	ret->ca_bundle = NULL;
}

/* A loopback address literal, or "localhost" (which resolves to one by
 * RFC 6761); "127.example.com" is a name like any other. */
static int is_loopback(const char *host)
{
	struct in_addr a;

	if (!strcasecmp(host, "localhost") || !strcmp(host, "[::1]"))
		return 1;
	return inet_pton(AF_INET, host, &a) == 1 &&
	       (ntohl(a.s_addr) >> 24) == 127;
}

int popts_cred_url_ok(const char *url, const char *const *http_hosts)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int ok = 0;

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0))
		goto out;
	if (!strcmp(scheme, "https")) {
		ok = 1;
	} else if (!strcmp(scheme, "http")) {
		ok = is_loopback(host);
		for (size_t i = 0; !ok && http_hosts && http_hosts[i]; i++)
			ok = !strcasecmp(host, http_hosts[i]);
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

void popts_http_release(struct popts_http *h)
{
	free(h->ca_bundle);
	h->ca_bundle = NULL;
}

int popts_dup(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? strdup(s) : NULL;
	return s && !*dst ? -ENOMEM : 0;
}

const char *popts_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int popts_split_url(const char *url, const char *scheme, char **ret_bucket,
		    char **ret_prefix)
{
	size_t sl = strlen(scheme), blen;
	struct pbuf prefix = PBUF_INIT;
	const char *p, *slash;
	char *bucket, *pfx;

	if (strncmp(url, scheme, sl))
		return -EINVAL;
	p = url + sl;
	slash = strchr(p, '/');
	blen = slash ? (size_t)(slash - p) : strlen(p);
	p = slash ? slash : "";
	while (*p == '/')
		p++;
	pbuf_adds(&prefix, p);
	while (prefix.len && prefix.buf[prefix.len - 1] == '/')
		prefix.buf[--prefix.len] = '\0';
	if (prefix.len)
		pbuf_addch(&prefix, '/');
	pfx = pbuf_detach(&prefix, NULL);
	bucket = strndup(url + sl, blen);
	if (!pfx || !bucket) {
		free(pfx);
		free(bucket);
		return -ENOMEM;
	}
	*ret_bucket = bucket;
	*ret_prefix = pfx;
	return 0;
}

int popts_endpoint(const char *ep, const char *what, char **ret_url,
		   char **ret_scheme, char **ret_hostport,
		   struct drgw_err *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	char *query = NULL, *user = NULL;
	char *url = NULL, *sch = NULL, *hostport = NULL;
	struct pbuf b = PBUF_INIT;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, ep, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) ||
	    (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
		pmsg_set_err(err, "invalid %s '%s': expected http(s)://host[:port]",
			     what, ep);
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	curl_url_get(u, CURLUPART_USER, &user, 0);
	if ((path && *path && strcmp(path, "/")) || query || user) {
		pmsg_set_err(err, "invalid %s '%s': no path, query or user allowed",
			     what, ep);
		goto out;
	}
	pbuf_addf(&b, "%s%s%s", host, port ? ":" : "", port ? port : "");
	hostport = pbuf_detach(&b, NULL);
	pbuf_addf(&b, "%s://%s", scheme, hostport ? hostport : "");
	url = pbuf_detach(&b, NULL);
	sch = strdup(scheme);
	if (!hostport || !url || !sch) {
		r = -ENOMEM;
		goto out;
	}
	if (ret_url) {
		*ret_url = url;
		url = NULL;
	}
	if (ret_scheme) {
		*ret_scheme = sch;
		sch = NULL;
	}
	if (ret_hostport) {
		*ret_hostport = hostport;
		hostport = NULL;
	}
	r = 0;
out:
	free(url);
	free(sch);
	free(hostport);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_free(user);
	curl_url_cleanup(u);
	return r;
}

int popts_num(const char *plugin, const char *k, const char *v, uint64_t min,
	      uint64_t max, uint64_t *ret, struct drgw_err *err)
{
	uint64_t n;

	if (pcodec_parse_u64(v, UINT64_MAX, &n) < 0 || n < min || n > max) {
		pmsg_set_err(err,
			     "invalid %s option %s=%s: expected a number from %llu to %llu",
			     plugin, k, v, (unsigned long long)min,
			     (unsigned long long)max);
		return -EINVAL;
	}
	*ret = n;
	return 0;
}

int popts_bool(const char *plugin, const char *k, const char *v, int *ret,
	       struct drgw_err *err)
{
	if (pcodec_parse_bool(v, ret) < 0) {
		pmsg_set_err(err, "invalid %s option %s=%s: expected on or off",
			     plugin, k, v);
		return -EINVAL;
	}
	return 0;
}

int popts_unknown(const char *plugin, const char *k, const char *known,
		  struct drgw_err *err)
{
	pmsg_set_err(err, "unknown %s option '%s' (known: %s)", plugin, k,
		     known);
	return -EINVAL;
}
