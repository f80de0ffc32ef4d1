/* SPDX-License-Identifier: MIT */
/*
 * URL and option parsing for gcs://bucket[/prefix].
 *
 *   endpoint=URL             STORAGE_EMULATOR_HOST, else
 *                            https://storage.googleapis.com
 *   credentials-file=FILE    GOOGLE_APPLICATION_CREDENTIALS (a key file)
 *   access-token-file=FILE   none: an OAuth access token kept fresh by others
 *   metadata-host=HOST[:PORT]  GCE_METADATA_HOST, metadata.google.internal
 *   token-uri=URL            the key file's token_uri (https; plain http
 *                            only to loopback)
 *   chunk-size=SIZE          16M (256K..1G, a multiple of 256K)
 *   max-attempts=N           4 (1..20): tries per request
 *   ca-bundle=FILE           the system's CA store
 *   tls-verify=on|off        on (off logs a warning)
 *                            (both for the GCS endpoint only: credential
 *                            endpoints always use the system's CA store)
 *   temporary-hold=on|off    off
 *   event-based-hold=on|off  off
 *   retention-mode=Unlocked|Locked, retain-days=N   none; both or neither
 *   connect-timeout=SECONDS  10
 *   read-timeout=SECONDS     60: a transfer slower than 1 KiB/s this long fails
 *   retry-base-ms=MS, retry-cap-ms=MS   1000, 32000: full-jitter backoff
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gcs_conf.h"
#include "pbuf.h"
#include "pcodec.h"
#include "popts.h"

#define KNOWN_OPTIONS                                                        \
	"endpoint, credentials-file, access-token-file, metadata-host, "     \
	"token-uri, chunk-size, max-attempts, ca-bundle, tls-verify, "       \
	"temporary-hold, event-based-hold, retention-mode, retain-days, "    \
	"connect-timeout, read-timeout, retry-base-ms, retry-cap-ms"

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
	int r = popts_split_url(url, "gcs://", &g->bucket, &g->prefix);

	if (r == -EINVAL)
		pmsg_set_err(err, "not a GCS URL: %s (expected gcs://bucket/prefix)",
			     url);
	if (r < 0)
		return r;
	if (!bucket_ok(g->bucket)) {
		pmsg_set_err(err, "invalid GCS bucket name '%s' in %s", g->bucket,
			     url);
		return -EINVAL;
	}
	if (strstr(g->prefix, "//") || strpbrk(g->prefix, "\r\n")) {
		pmsg_set_err(err, "invalid GCS object prefix in %s", url);
		return -EINVAL;
	}
	return 0;
}

/* "http(s)://host[:port]" with nothing after it but an optional "/". */
static int parse_endpoint(struct gcs *g, const char *what, const char *ep,
			  struct drgw_err *err)
{
	char *url;
	int r = popts_endpoint(ep, what, &url, NULL, NULL, err);

	if (r == 0) {
		free(g->endpoint);
		g->endpoint = url;
	}
	return r;
}

static int path_opt(const char *key, const char *v, char **dst,
		    struct drgw_err *err)
{
	if (!*v) {
		pmsg_set_err(err, "invalid GCS option %s=: empty path", key);
		return -EINVAL;
	}
	return popts_dup(dst, v);
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
			pmsg_set_err(err, "invalid GCS option metadata-host=%s: expected host[:port]",
				     v);
			return -EINVAL;
		}
		r = popts_dup(&g->metadata_host, v);
	} else if (!strcmp(k, "token-uri")) {
		/* Signed assertions and refresh tokens go there. */
		if (!popts_cred_url_ok(v, NULL)) {
			pmsg_set_err(err, "invalid GCS option token-uri=%s: expected an https URL (plain http only to a loopback address)",
				     v);
			return -EINVAL;
		}
		r = popts_dup(&g->token_uri, v);
	} else if (!strcmp(k, "chunk-size")) {
		if (pcodec_parse_size(v, &n) < 0 || n < GCS_CHUNK_ALIGN ||
		    n > GCS_MAX_CHUNK || n % GCS_CHUNK_ALIGN) {
			pmsg_set_err(err,
				     "invalid GCS option chunk-size=%s: expected a multiple of 256K from 256K to 1G",
				     v);
			return -EINVAL;
		}
		g->chunk_size = n;
	} else if (!strcmp(k, "temporary-hold")) {
		r = popts_bool("GCS", k, v, &g->temporary_hold, err);
	} else if (!strcmp(k, "event-based-hold")) {
		r = popts_bool("GCS", k, v, &g->event_based_hold, err);
	} else if (!strcmp(k, "retention-mode")) {
		o->retention_mode = v;
	} else if (!strcmp(k, "retain-days")) {
		o->retain_days = v;
	} else {
		r = popts_http_apply(&g->net, "GCS", k, v, err);
		if (r == 1)
			r = popts_unknown("GCS", k, KNOWN_OPTIONS, err);
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
		pmsg_set_err(err, "GCS options retention-mode and retain-days go together");
		return -EINVAL;
	}
	/* The API spells the modes with a capital; accept any case. */
	if (!strcasecmp(o->retention_mode, "Unlocked")) {
		g->retention_mode = "Unlocked";
	} else if (!strcasecmp(o->retention_mode, "Locked")) {
		g->retention_mode = "Locked";
	} else {
		pmsg_set_err(err,
			     "invalid GCS option retention-mode=%s: expected Unlocked or Locked",
			     o->retention_mode);
		return -EINVAL;
	}
	if (popts_num("GCS", "retain-days", o->retain_days, 1, 36500, &days,
		      err) < 0)
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
		return parse_endpoint(g, "GCS option endpoint", o->endpoint, err);
	}
	if (!emu || !*emu)
		return parse_endpoint(g, "GCS endpoint", GCS_DEFAULT_ENDPOINT, err);
	g->custom_endpoint = 1;
	if (!strstr(emu, "://"))
		pbuf_adds(&b, "http://");
	pbuf_adds(&b, emu);
	if (!pbuf_str(&b))
		return -ENOMEM;
	r = parse_endpoint(g, "GCS STORAGE_EMULATOR_HOST", b.buf, err);
	pbuf_release(&b);
	return r;
}

int gcs_conf_parse(struct gcs *g, const struct drgw_backend_config *cfg,
		   struct drgw_err *err)
{
	struct opts o = { 0 };
	struct pbuf b = PBUF_INIT;
	int r;

	/* Google's clients retry 3 times, with exponential backoff capped
	 * at 32..64 s; the cap only matters with many attempts. */
	popts_http_init(&g->net, &(struct phttp_retry){ 4, 1000, 32000 });
	g->chunk_size = GCS_DEFAULT_CHUNK;
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
	popts_http_finish(&g->net);

	pbuf_addf(&b, "gcs://%s/%s", g->bucket, g->prefix);
	if (b.len && b.buf[b.len - 1] == '/')
		b.buf[--b.len] = '\0';
	g->url = pbuf_detach(&b, NULL);
	if (!g->url) {
		r = -ENOMEM;
		goto fail;
	}
	if (!g->net.tls_verify && g->host && g->host->log)
		g->host->log(DRGW_LOG_WARNING,
			     "gcs: TLS certificate verification is off for %s: anyone on the path can read and change the backups' traffic and steal the access token (storage requests only; the OAuth token endpoint and the metadata server are always verified against the system's CA store)",
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
	popts_http_release(&g->net);
	free(g->credentials_file);
	free(g->access_token_file);
	free(g->metadata_host);
	free(g->token_uri);
	g->url = g->bucket = g->prefix = g->endpoint = NULL;
	g->credentials_file = g->access_token_file = NULL;
	g->metadata_host = g->token_uri = NULL;
	g->retention_mode = NULL;
}
