/* SPDX-License-Identifier: MIT */
/*
 * URL and option parsing for gcs://bucket[/prefix].
 *
 *   endpoint=URL             STORAGE_EMULATOR_HOST, else
 *                            https://storage.googleapis.com
 *   credentials-file=FILE    GOOGLE_APPLICATION_CREDENTIALS (a key file)
 *   access-token-file=FILE   none: an OAuth access token kept fresh by others
 *   metadata-host=HOST[:PORT]  GCE_METADATA_HOST, metadata.google.internal
 *   token-uri=URL            the key file's token_uri
 *   chunk-size=SIZE          16M (256K..1G, a multiple of 256K)
 *   max-attempts=N           4 (1..20): tries per request
 *   ca-bundle=FILE           the system's CA store
 *   tls-verify=on|off        on (off logs a warning)
 *   temporary-hold=on|off    off
 *   event-based-hold=on|off  off
 *   retention-mode=Unlocked|Locked, retain-days=N   none; both or neither
 *   connect-timeout=SECONDS  10
 *   read-timeout=SECONDS     60: a transfer slower than 1 KiB/s this long fails
 *   retry-base-ms=MS, retry-cap-ms=MS   1000, 32000: full-jitter backoff
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "gcs_conf.h"
#include "pbuf.h"
#include "pcodec.h"

#define KNOWN_OPTIONS                                                        \
	"endpoint, credentials-file, access-token-file, metadata-host, "     \
	"token-uri, chunk-size, max-attempts, ca-bundle, tls-verify, "       \
	"temporary-hold, event-based-hold, retention-mode, retain-days, "    \
	"connect-timeout, read-timeout, retry-base-ms, retry-cap-ms"

static int dup_str(char **dst, const char *s)
{
	free(*dst);
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

/* GCS bucket naming rules: 3..63 characters of [a-z0-9_.-], or up to 222
 * with dots and no dot-separated part longer than 63; alphanumeric ends. */
static int bucket_ok(const char *b)
{
	size_t n = strlen(b), part = 0;

	if (n < 3 || n > 222 || (n > 63 && !strchr(b, '.')))
		return 0;
	if (strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != n)
		return 0;
	if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789", b[0]) ||
	    !strchr("abcdefghijklmnopqrstuvwxyz0123456789", b[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		part = b[i] == '.' ? 0 : part + 1;
		if (part > 63)
			return 0;
	}
	return 1;
}

static int parse_url(struct gcs *g, const char *url, struct drgw_err *err)
{
	struct pbuf prefix = PBUF_INIT;
	const char *p, *slash;
	size_t blen;

	if (strncmp(url, "gcs://", 6)) {
		gcs_set_err(err, "not a GCS URL: %s (expected gcs://bucket/prefix)",
			    url);
		return -EINVAL;
	}
	p = url + 6;
	slash = strchr(p, '/');
	blen = slash ? (size_t)(slash - p) : strlen(p);
	g->bucket = strndup(p, blen);
	if (!g->bucket)
		return -ENOMEM;
	if (!bucket_ok(g->bucket)) {
		gcs_set_err(err, "invalid GCS bucket name '%s' in %s", g->bucket,
			    url);
		return -EINVAL;
	}
	/* "a/b", "/a/b/" and "a/b/" all mean the name prefix "a/b/". */
	p = slash ? slash : "";
	while (*p == '/')
		p++;
	pbuf_adds(&prefix, p);
	while (prefix.len && prefix.buf[prefix.len - 1] == '/')
		prefix.buf[--prefix.len] = '\0';
	if (prefix.len)
		pbuf_addch(&prefix, '/');
	if (prefix.len && (strstr(prefix.buf, "//") ||
			   strpbrk(prefix.buf, "\r\n"))) {
		gcs_set_err(err, "invalid GCS object prefix in %s", url);
		pbuf_release(&prefix);
		return -EINVAL;
	}
	g->prefix = pbuf_detach(&prefix, NULL);
	return g->prefix ? 0 : -ENOMEM;
}

/* "http(s)://host[:port]" with nothing after it but an optional "/". */
static int parse_endpoint(struct gcs *g, const char *what, const char *ep,
			  struct drgw_err *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	char *query = NULL, *user = NULL;
	struct pbuf b = PBUF_INIT;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, ep, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) ||
	    (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
		gcs_set_err(err, "invalid GCS %s '%s': expected http(s)://host[:port]",
			    what, ep);
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	curl_url_get(u, CURLUPART_USER, &user, 0);
	if ((path && *path && strcmp(path, "/")) || query || user) {
		gcs_set_err(err, "invalid GCS %s '%s': no path, query or user allowed",
			    what, ep);
		goto out;
	}
	pbuf_addf(&b, "%s://%s%s%s", scheme, host, port ? ":" : "",
		  port ? port : "");
	free(g->endpoint);
	g->endpoint = pbuf_detach(&b, NULL);
	r = g->endpoint ? 0 : -ENOMEM;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_free(user);
	curl_url_cleanup(u);
	return r;
}

static int num_opt(const char *key, const char *v, uint64_t min, uint64_t max,
		   uint64_t *ret, struct drgw_err *err)
{
	uint64_t n;

	if (pcodec_parse_u64(v, UINT64_MAX, &n) < 0 || n < min || n > max) {
		gcs_set_err(err,
			    "invalid GCS option %s=%s: expected a number from %llu to %llu",
			    key, v, (unsigned long long)min,
			    (unsigned long long)max);
		return -EINVAL;
	}
	*ret = n;
	return 0;
}

static int bool_opt(const char *key, const char *v, int *ret,
		    struct drgw_err *err)
{
	if (pcodec_parse_bool(v, ret) < 0) {
		gcs_set_err(err, "invalid GCS option %s=%s: expected on or off",
			    key, v);
		return -EINVAL;
	}
	return 0;
}

static int path_opt(const char *key, const char *v, char **dst,
		    struct drgw_err *err)
{
	if (!*v) {
		gcs_set_err(err, "invalid GCS option %s=: empty path", key);
		return -EINVAL;
	}
	return dup_str(dst, v);
}

/* Options read in a second pass, once all are known. */
struct opts {
	const char *endpoint;
	const char *retention_mode;
	const char *retain_days;
};

static int apply_option(struct gcs *g, struct opts *o, const char *k,
			const char *v, struct drgw_err *err)
{
	uint64_t n;
	int r = 0;

	if (!strcmp(k, "endpoint")) {
		o->endpoint = v;
	} else if (!strcmp(k, "credentials-file")) {
		r = path_opt(k, v, &g->credentials_file, err);
	} else if (!strcmp(k, "access-token-file")) {
		r = path_opt(k, v, &g->access_token_file, err);
	} else if (!strcmp(k, "metadata-host")) {
		if (!strncmp(v, "http://", 7))
			v += 7;
		if (!*v || strspn(v, "abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
				   strlen(v)) {
			gcs_set_err(err, "invalid GCS option metadata-host=%s: expected host[:port]",
				    v);
			return -EINVAL;
		}
		r = dup_str(&g->metadata_host, v);
	} else if (!strcmp(k, "token-uri")) {
		if (strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) {
			gcs_set_err(err, "invalid GCS option token-uri=%s: expected an http(s) URL",
				    v);
			return -EINVAL;
		}
		r = dup_str(&g->token_uri, v);
	} else if (!strcmp(k, "chunk-size")) {
		if (pcodec_parse_size(v, &n) < 0 || n < GCS_CHUNK_ALIGN ||
		    n > GCS_MAX_CHUNK || n % GCS_CHUNK_ALIGN) {
			gcs_set_err(err,
				    "invalid GCS option chunk-size=%s: expected a multiple of 256K from 256K to 1G",
				    v);
			return -EINVAL;
		}
		g->chunk_size = n;
	} else if (!strcmp(k, "max-attempts")) {
		r = num_opt(k, v, 1, 20, &n, err);
		g->retry.max_attempts = (int)n;
	} else if (!strcmp(k, "ca-bundle")) {
		if (access(v, R_OK) < 0) {
			gcs_set_err(err, "GCS option ca-bundle=%s: cannot read the file: %s",
				    v, strerror(errno));
			return -EINVAL;
		}
		r = dup_str(&g->ca_bundle, v);
	} else if (!strcmp(k, "tls-verify")) {
		r = bool_opt(k, v, &g->tls_verify, err);
	} else if (!strcmp(k, "temporary-hold")) {
		r = bool_opt(k, v, &g->temporary_hold, err);
	} else if (!strcmp(k, "event-based-hold")) {
		r = bool_opt(k, v, &g->event_based_hold, err);
	} else if (!strcmp(k, "retention-mode")) {
		o->retention_mode = v;
	} else if (!strcmp(k, "retain-days")) {
		o->retain_days = v;
	} else if (!strcmp(k, "connect-timeout")) {
		r = num_opt(k, v, 1, 300, &n, err);
		g->connect_timeout_ms = (long)n * 1000;
	} else if (!strcmp(k, "read-timeout")) {
		r = num_opt(k, v, 1, 3600, &n, err);
		g->read_timeout_s = (long)n;
	} else if (!strcmp(k, "retry-base-ms")) {
		r = num_opt(k, v, 1, 60000, &n, err);
		g->retry.base_ms = (unsigned)n;
	} else if (!strcmp(k, "retry-cap-ms")) {
		r = num_opt(k, v, 1, 600000, &n, err);
		g->retry.cap_ms = (unsigned)n;
	} else {
		gcs_set_err(err, "unknown GCS option '%s' (known: " KNOWN_OPTIONS ")",
			    k);
		return -EINVAL;
	}
	return r;
}

static int finish_retention(struct gcs *g, const struct opts *o,
			    struct drgw_err *err)
{
	uint64_t days;

	if (!o->retention_mode && !o->retain_days)
		return 0;
	if (!o->retention_mode || !o->retain_days) {
		gcs_set_err(err, "GCS options retention-mode and retain-days go together");
		return -EINVAL;
	}
	/* The API spells the modes with a capital; accept any case. */
	if (!strcasecmp(o->retention_mode, "Unlocked")) {
		g->retention_mode = "Unlocked";
	} else if (!strcasecmp(o->retention_mode, "Locked")) {
		g->retention_mode = "Locked";
	} else {
		gcs_set_err(err,
			    "invalid GCS option retention-mode=%s: expected Unlocked or Locked",
			    o->retention_mode);
		return -EINVAL;
	}
	if (num_opt("retain-days", o->retain_days, 1, 36500, &days, err) < 0)
		return -EINVAL;
	g->retain_days = (unsigned)days;
	return 0;
}

/* endpoint= wins over STORAGE_EMULATOR_HOST, which, like Google's own
 * clients, may be "host:port" without a scheme. */
static int finish_endpoint(struct gcs *g, const struct opts *o,
			   struct drgw_err *err)
{
	const char *emu = getenv("STORAGE_EMULATOR_HOST");
	struct pbuf b = PBUF_INIT;
	int r;

	if (o->endpoint) {
		g->custom_endpoint = 1;
		return parse_endpoint(g, "option endpoint", o->endpoint, err);
	}
	if (!emu || !*emu)
		return parse_endpoint(g, "endpoint", GCS_DEFAULT_ENDPOINT, err);
	g->custom_endpoint = 1;
	if (!strstr(emu, "://"))
		pbuf_adds(&b, "http://");
	pbuf_adds(&b, emu);
	if (!pbuf_str(&b))
		return -ENOMEM;
	r = parse_endpoint(g, "STORAGE_EMULATOR_HOST", b.buf, err);
	pbuf_release(&b);
	return r;
}

int gcs_conf_parse(struct gcs *g, const struct drgw_backend_config *cfg,
		   struct drgw_err *err)
{
	struct opts o = { 0 };
	struct pbuf b = PBUF_INIT;
	int r;

	g->tls_verify = 1;
	g->chunk_size = GCS_DEFAULT_CHUNK;
	/* Google's clients retry 3 times, with exponential backoff capped
	 * at 32..64 s; the cap only matters with many attempts. */
	g->retry = (struct phttp_retry){ 4, 1000, 32000 };
	g->connect_timeout_ms = 10000;
	g->read_timeout_s = 60;
	g->read_only = cfg->read_only;
	g->host = cfg->host;

	r = parse_url(g, cfg->url, err);
	for (size_t i = 0; !r && i < cfg->n_options; i++)
		r = apply_option(g, &o, cfg->options[i].key,
				 cfg->options[i].value ? cfg->options[i].value : "",
				 err);
	if (!r)
		r = finish_retention(g, &o, err);
	if (!r)
		r = finish_endpoint(g, &o, err);
	if (r)
		goto fail;
	if (g->retry.cap_ms < g->retry.base_ms)
		g->retry.cap_ms = g->retry.base_ms;

	pbuf_addf(&b, "gcs://%s/%s", g->bucket, g->prefix);
	if (b.len && b.buf[b.len - 1] == '/')
		b.buf[--b.len] = '\0';
	g->url = pbuf_detach(&b, NULL);
	if (!g->url) {
		r = -ENOMEM;
		goto fail;
	}
	if (!g->tls_verify && g->host && g->host->log)
		g->host->log(DRGW_LOG_WARNING,
			     "gcs: TLS certificate verification is off for %s: anyone on the path can read and change the backups' traffic and steal the access token",
			     g->endpoint);
	return 0;
fail:
	gcs_conf_release(g);
	return r;
}

void gcs_conf_release(struct gcs *g)
{
	free(g->url);
	free(g->bucket);
	free(g->prefix);
	free(g->endpoint);
	free(g->ca_bundle);
	free(g->credentials_file);
	free(g->access_token_file);
	free(g->metadata_host);
	free(g->token_uri);
	g->url = g->bucket = g->prefix = g->endpoint = g->ca_bundle = NULL;
	g->credentials_file = g->access_token_file = NULL;
	g->metadata_host = g->token_uri = NULL;
	g->retention_mode = NULL;
}
