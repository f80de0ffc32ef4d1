/* SPDX-License-Identifier: MIT */
/*
 * URL and option parsing for s3://bucket[/prefix].
 *
 *   region                   AWS_REGION, AWS_DEFAULT_REGION, profile, us-east-1
 *   endpoint                 https://s3.REGION.amazonaws.com
 *   addressing=path|virtual  virtual on AWS, path with a custom endpoint
 *   ca-bundle=FILE           the system's CA store
 *   tls-verify=on|off        on (off logs a warning)
 *                            (both for the S3 endpoint only: credential
 *                            endpoints always use the system's CA store)
 *   storage-class=CLASS      the bucket default
 *   object-lock-mode=GOVERNANCE|COMPLIANCE, object-lock-retain-days=N
 *   profile=NAME             the default credential chain
 *   part-size=SIZE           16M (5M..5G), grown to fit the resume token
 *   upload-concurrency=N     4 (1..64)
 *   max-attempts=N           3 (1..20): tries per request
 *   checksum=md5|sha256      md5; sha256 adds x-amz-checksum-sha256
 *   sts-endpoint=URL         AWS_ENDPOINT_URL_STS, https://sts.REGION.amazonaws.com
 *                            (https; plain http only to loopback)
 *   connect-timeout=SECONDS  10
 *   read-timeout=SECONDS     60: a transfer slower than 1 KiB/s this long fails
 *   retry-base-ms=MS, retry-cap-ms=MS   1000, 20000: full-jitter backoff
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pbuf.h"
#include "pcodec.h"
#include "popts.h"
#include "s3_conf.h"
#include "s3_creds.h"

#define KNOWN_OPTIONS                                                        \
	"region, endpoint, addressing, ca-bundle, tls-verify, "             \
	"storage-class, object-lock-mode, object-lock-retain-days, "        \
	"profile, part-size, upload-concurrency, max-attempts, checksum, "  \
	"sts-endpoint, connect-timeout, read-timeout, retry-base-ms, "      \
	"retry-cap-ms"

static int bucket_ok(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 255)
		return 0;
	return strspn(b, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

/* Whether the bucket can be a DNS label under a TLS wildcard certificate. */
static int bucket_dns_ok(const char *b)
{
	size_t n = strlen(b);

	return n <= 63 && strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789-") == n &&
	       b[0] != '-' && b[n - 1] != '-';
}

static int parse_url(struct s3 *s3, const char *url, struct drgw_err *err)
{
	int r = popts_split_url(url, "s3://", &s3->bucket, &s3->prefix);

	if (r == -EINVAL)
		pmsg_set_err(err, "not an S3 URL: %s (expected s3://bucket/prefix)",
			     url);
	if (r < 0)
		return r;
	if (!bucket_ok(s3->bucket)) {
		pmsg_set_err(err, "invalid S3 bucket name '%s' in %s", s3->bucket,
			     url);
		return -EINVAL;
	}
	if (strstr(s3->prefix, "//")) {
		pmsg_set_err(err, "invalid S3 key prefix in %s: empty path segment",
			     url);
		return -EINVAL;
	}
	return 0;
}

static int parse_endpoint(struct s3 *s3, const char *ep, struct drgw_err *err)
{
	return popts_endpoint(ep, "S3 endpoint", &s3->endpoint, &s3->scheme,
			      &s3->endpoint_host, err);
}

struct opts {
	const char *endpoint, *addressing, *tls_verify, *lock_mode, *lock_days;
	const char *region;
};

static int apply_option(struct s3 *s3, struct opts *o, const char *k,
			const char *v, struct drgw_err *err)
{
	uint64_t n;
	int r = 0;

	if (!strcmp(k, "region")) {
		if (!*v || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(v)) {
			pmsg_set_err(err, "invalid S3 option region=%s", v);
			return -EINVAL;
		}
		o->region = v;
	} else if (!strcmp(k, "endpoint")) {
		o->endpoint = v;
	} else if (!strcmp(k, "addressing")) {
		if (strcmp(v, "path") && strcmp(v, "virtual")) {
			pmsg_set_err(err, "invalid S3 option addressing=%s: expected path or virtual", v);
			return -EINVAL;
		}
		o->addressing = v;
	} else if (!strcmp(k, "storage-class")) {
		if (!*v || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != strlen(v)) {
			pmsg_set_err(err, "invalid S3 option storage-class=%s", v);
			return -EINVAL;
		}
		r = popts_dup(&s3->storage_class, v);
	} else if (!strcmp(k, "object-lock-mode")) {
		o->lock_mode = v;
	} else if (!strcmp(k, "object-lock-retain-days")) {
		o->lock_days = v;
	} else if (!strcmp(k, "profile")) {
		if (!*v) {
			pmsg_set_err(err, "invalid S3 option profile=: empty name");
			return -EINVAL;
		}
		r = popts_dup(&s3->profile, v);
	} else if (!strcmp(k, "part-size")) {
		if (pcodec_parse_size(v, &n) < 0 || n < S3_MIN_PART ||
		    n > S3_MAX_PART) {
			pmsg_set_err(err,
				     "invalid S3 option part-size=%s: expected 5M to 5G",
				     v);
			return -EINVAL;
		}
		s3->part_size = n;
	} else if (!strcmp(k, "upload-concurrency")) {
		r = popts_num("S3", k, v, 1, 64, &n, err);
		if (r == 0)
			s3->concurrency = (unsigned)n;
	} else if (!strcmp(k, "checksum")) {
		if (strcmp(v, "md5") && strcmp(v, "sha256")) {
			pmsg_set_err(err, "invalid S3 option checksum=%s: expected md5 or sha256", v);
			return -EINVAL;
		}
		s3->checksum_sha256 = !strcmp(v, "sha256");
	} else if (!strcmp(k, "sts-endpoint")) {
		/* The web identity token goes there. */
		if (!popts_cred_url_ok(v, NULL)) {
			pmsg_set_err(err, "invalid S3 option sts-endpoint=%s: expected an https URL (plain http only to a loopback address)", v);
			return -EINVAL;
		}
		r = popts_dup(&s3->sts_endpoint, v);
	} else {
		r = popts_http_apply(&s3->net, "S3", k, v, err);
		if (r == 1)
			r = popts_unknown("S3", k, KNOWN_OPTIONS, err);
	}
	return r;
}

static int finish_lock(struct s3 *s3, const struct opts *o,
		       struct drgw_err *err)
{
	uint64_t days;

	if (!o->lock_mode && !o->lock_days)
		return 0;
	if (!o->lock_mode || !o->lock_days) {
		pmsg_set_err(err,
			     "S3 options object-lock-mode and object-lock-retain-days go together");
		return -EINVAL;
	}
	if (strcasecmp(o->lock_mode, "GOVERNANCE") &&
	    strcasecmp(o->lock_mode, "COMPLIANCE")) {
		pmsg_set_err(err,
			     "invalid S3 option object-lock-mode=%s: expected GOVERNANCE or COMPLIANCE",
			     o->lock_mode);
		return -EINVAL;
	}
	if (popts_num("S3", "object-lock-retain-days", o->lock_days, 1, 36500,
		      &days, err) < 0)
		return -EINVAL;
	s3->lock_days = (unsigned)days;
	s3->lock_mode = strdup(!strcasecmp(o->lock_mode, "GOVERNANCE") ?
				       "GOVERNANCE" : "COMPLIANCE");
	return s3->lock_mode ? 0 : -ENOMEM;
}

static int finish_region(struct s3 *s3, const struct opts *o)
{
	const char *env_region = getenv("AWS_REGION");
	char buf[64];

	if (!env_region || !*env_region)
		env_region = getenv("AWS_DEFAULT_REGION");
	if (o->region)
		return popts_dup(&s3->region, o->region);
	if (env_region && *env_region)
		return popts_dup(&s3->region, env_region);
	if (s3_creds_profile_region(s3->profile, buf, sizeof(buf)) == 0)
		return popts_dup(&s3->region, buf);
	return popts_dup(&s3->region, "us-east-1");
}

int s3_conf_parse(struct s3 *s3, const struct drgw_backend_config *cfg,
		  struct drgw_err *err)
{
	struct opts o = { 0 };
	struct pbuf b = PBUF_INIT;
	int r;

	popts_http_init(&s3->net, &(struct phttp_retry){ 3, 1000, 20000 });
	s3->part_size = S3_DEFAULT_PART;
	s3->concurrency = 4;
	s3->read_only = cfg->read_only;
	s3->host = cfg->host;

	r = parse_url(s3, cfg->url, err);
	for (size_t i = 0; !r && i < cfg->n_options; i++)
		r = apply_option(s3, &o, cfg->options[i].key,
				 cfg->options[i].value ? cfg->options[i].value : "",
				 err);
	if (!r)
		r = finish_lock(s3, &o, err);
	if (!r)
		r = finish_region(s3, &o);
	if (r)
		goto fail;

	if (o.endpoint) {
		r = parse_endpoint(s3, o.endpoint, err);
	} else {
		pbuf_addf(&b, "https://s3.%s.amazonaws.com", s3->region);
		r = pbuf_str(&b) ? parse_endpoint(s3, b.buf, err) : -ENOMEM;
		pbuf_release(&b);
	}
	if (r)
		goto fail;
	if (o.addressing)
		s3->virtual_host = !strcmp(o.addressing, "virtual");
	else
		s3->virtual_host = !o.endpoint && bucket_dns_ok(s3->bucket);
	if (s3->virtual_host && !bucket_dns_ok(s3->bucket) &&
	    strchr(s3->bucket, '_')) {
		pmsg_set_err(err,
			     "S3 bucket '%s' cannot be addressed as a host name; use addressing=path",
			     s3->bucket);
		r = -EINVAL;
		goto fail;
	}
	popts_http_finish(&s3->net);

	pbuf_addf(&b, "s3://%s/%s", s3->bucket, s3->prefix);
	if (b.len && b.buf[b.len - 1] == '/')
		b.buf[--b.len] = '\0';
	s3->url = pbuf_detach(&b, NULL);
	if (!s3->url) {
		r = -ENOMEM;
		goto fail;
	}
	if (!s3->net.tls_verify && s3->host && s3->host->log)
		s3->host->log(DRGW_LOG_WARNING,
			      "s3: TLS certificate verification is off for %s: anyone on the path can read and change the backups' traffic (storage requests only; STS, container and instance metadata credentials are always verified against the system's CA store)",
			      s3->endpoint);
	return 0;
fail:
	s3_conf_release(s3);
	return r;
}

void s3_conf_release(struct s3 *s3)
{
	free(s3->url);
	free(s3->bucket);
	free(s3->prefix);
	free(s3->region);
	free(s3->endpoint);
	free(s3->scheme);
	free(s3->endpoint_host);
	free(s3->storage_class);
	free(s3->lock_mode);
	free(s3->profile);
	free(s3->sts_endpoint);
	popts_http_release(&s3->net);
	s3->url = s3->bucket = s3->prefix = s3->region = NULL;
	s3->endpoint = s3->scheme = s3->endpoint_host = NULL;
	s3->storage_class = s3->lock_mode = s3->profile = NULL;
	s3->sts_endpoint = NULL;
}
