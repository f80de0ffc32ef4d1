/* SPDX-License-Identifier: MIT */
/*
 * Backend URL and option parsing shared by the cloud plugins: the
 * "scheme://bucket/prefix" split, "http(s)://host[:port]" endpoints, the
 * checked value parsers with the plugins' common message wording, and the
 * HTTP options every cloud plugin has under the same keys (ca-bundle,
 * tls-verify, max-attempts, connect-timeout, read-timeout, retry-base-ms,
 * retry-cap-ms).  What each service accepts (bucket names, its own keys)
 * stays in the plugin.
 *
 * plugin is the service's name as messages spell it ("S3", "GCS");
 * messages read "invalid S3 option KEY=VALUE: expected ...".
 */
#ifndef DRGW_POPTS_H
#define DRGW_POPTS_H

#include <stdint.h>

#include <drgw/backend.h>

#include "phttp.h"

/* The common HTTP options.  Caller-embedded; popts_http_release() frees
 * ca_bundle. */
struct popts_http {
	char *ca_bundle;		/* NULL for the system's CA store */
	int tls_verify;
	struct phttp_retry retry;
	long connect_timeout_ms;
	long read_timeout_s;		/* below 1 KiB/s this long fails */
};

/* Defaults: TLS verified, 10 s to connect, 60 s read timeout, and the
 * plugin's own retry policy. */
void popts_http_init(struct popts_http *h, const struct phttp_retry *retry);

/*
 * Applies key k with value v if k is one of the common HTTP options.
 * @return 0, 1 when k is not one of them (nothing changed), -EINVAL with
 * err->msg naming the option, -ENOMEM.
 */
int popts_http_apply(struct popts_http *h, const char *plugin, const char *k,
		     const char *v, struct drgw_err *err);

/* Once all options are in: a cap below the base is raised to the base. */
void popts_http_finish(struct popts_http *h);

/* Fills *ret with h's settings; its strings point into h. */
void popts_http_config(const struct popts_http *h, const char *user_agent,
		       struct phttp_config *ret);

/*
 * Fills *ret for the credential endpoints (STS, instance metadata, OAuth
 * token endpoints): h's timeouts, but TLS always verified against the
 * system's CA store.  tls-verify=off and ca-bundle= are for a storage
 * endpoint with a private certificate; they must not let a token or a
 * key's assertion go to whoever answers on the path.
 */
void popts_http_cred_config(const struct popts_http *h, const char *user_agent,
			    struct phttp_config *ret);

/*
 * Whether url may receive credentials: https to anywhere, plain http only
 * to a loopback address (127.0.0.0/8, localhost, [::1]; emulators and
 * local agents) or to one of http_hosts (the documented link-local
 * metadata addresses of the caller's cloud; NULL-terminated, may be
 * NULL).  Hosts compare case-insensitively, IPv6 in brackets.
 */
int popts_cred_url_ok(const char *url, const char *const *http_hosts);

/* Frees what popts_http_apply() allocated; idempotent. */
void popts_http_release(struct popts_http *h);

/* Replaces *dst (freed) with a copy of s, or NULL when s is NULL.
 * @return 0 or -ENOMEM. */
int popts_dup(char **dst, const char *s);

/* getenv(name), with an empty value counted as unset. */
const char *popts_env(const char *name);

/*
 * Splits "SCHEMEbucket[/prefix]" (scheme like "s3://").  The prefix
 * loses its leading and trailing slashes and, unless empty, gets one
 * trailing slash: "a/b", "/a/b/" and "a/b/" all give "a/b/".  Validity of
 * the bucket name and of the prefix (e.g. "//" inside) is the caller's.
 * On success *ret_bucket and *ret_prefix are malloc()ed strings the
 * caller frees; on failure neither is written.
 * @return 0, -EINVAL if url does not start with scheme, -ENOMEM.
 */
int popts_split_url(const char *url, const char *scheme, char **ret_bucket,
		    char **ret_prefix);

/*
 * Parses "http(s)://host[:port]" with nothing after it but an optional
 * "/".  On success writes the malloc()ed "scheme://host[:port]",
 * "scheme" and "host[:port]" to those of ret_url, ret_scheme,
 * ret_hostport that are not NULL; the caller frees them.
 * @return 0, -EINVAL with err->msg "invalid WHAT 'EP': ...", -ENOMEM.
 */
int popts_endpoint(const char *ep, const char *what, char **ret_url,
		   char **ret_scheme, char **ret_hostport,
		   struct drgw_err *err);

/* A decimal number from min to max.  @return 0 or -EINVAL (err->msg). */
int popts_num(const char *plugin, const char *k, const char *v, uint64_t min,
	      uint64_t max, uint64_t *ret, struct drgw_err *err);

/* on/off (and the other pcodec_parse_bool() spellings).
 * @return 0 or -EINVAL (err->msg). */
int popts_bool(const char *plugin, const char *k, const char *v, int *ret,
	       struct drgw_err *err);

/* Rejects an unknown key, listing the known ones.  @return -EINVAL. */
int popts_unknown(const char *plugin, const char *k, const char *known,
		  struct drgw_err *err);

#endif /* DRGW_POPTS_H */
