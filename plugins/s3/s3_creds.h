/* SPDX-License-Identifier: MIT */
/*
 * AWS credentials from the default provider chain, in this order:
 *
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *      AWS_SESSION_TOKEN;
 *   2. web identity (EKS IRSA): AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      [+ AWS_ROLE_SESSION_NAME], exchanged at STS
 *      (AssumeRoleWithWebIdentity, unsigned);
 *   3. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 *      AWS_CONFIG_FILE (~/.aws/config), profile AWS_PROFILE or "default";
 *      a profile may also name role_arn + web_identity_token_file;
 *   4. container endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS) or
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity) with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE];
 *   5. EC2 instance metadata (IMDSv2), unless AWS_EC2_METADATA_DISABLED.
 *
 * An explicit profile option skips 1, 2, 4 and 5, like the AWS SDKs.  The
 * source is chosen once, without network I/O, when the provider is made;
 * network sources are fetched on first use and refreshed before they
 * expire.  Secrets never leave this module except inside the
 * s3_credentials objects handed to the signer.
 *
 * Every endpoint is reached over https, or over plain http only at a
 * loopback address or the link-local address AWS documents for it, and
 * through the caller's credential HTTP client, which verifies TLS against
 * the system's CA store whatever the S3 endpoint's options say.
 */
#ifndef DRGW_S3_CREDS_H
#define DRGW_S3_CREDS_H

#include <stdint.h>
#include <time.h>

#include <drgw/backend.h>

#include "phttp.h"

/* One set of credentials; immutable and reference-counted. */
struct s3_credentials {
	int refs;			/* atomic */
	char *access_key;
	char *secret_key;
	char *session_token;		/* NULL for long-term keys */
	time_t expiration;		/* 0 when they never expire */
	unsigned generation;		/* bumps with every fetch */
};

struct s3_creds;

struct s3_creds_config {
	const char *profile;		/* explicit profile, or NULL */
	const char *region;		/* for the default STS endpoint */
	const char *sts_endpoint;	/* overrides AWS_ENDPOINT_URL_STS */
	struct phttp_client *http;	/* borrowed; outlives the provider;
					 * TLS verified with the system's
					 * CAs (popts_http_cred_config()) */
	const struct drgw_host *host;	/* for debug logs; may be NULL */
};

/*
 * Chooses the source.
 * @return 0, -EINVAL when the configuration names something unusable
 * (missing profile, half-set variables, bad container URI), -ENOENT when
 * no source is configured at all, -ENOMEM.
 */
int s3_creds_new(const struct s3_creds_config *cfg, struct s3_creds **ret,
		 struct drgw_err *err);
void s3_creds_free(struct s3_creds *p);

/* "environment", "web identity", "profile NAME", "container", "IMDS". */
const char *s3_creds_source(const struct s3_creds *p);

/*
 * Current credentials, fetched or refreshed if needed (blocks on the
 * network then).  Release with s3_credentials_unref().
 * @return 0, or a negative errno with err->msg set: -EACCES when the
 * source refused, transient errnos when it could not be reached.
 */
int s3_creds_get(struct s3_creds *p, struct s3_credentials **ret,
		 struct drgw_err *err);

/* The server said the credentials of generation gen expired: fetch new
 * ones on the next s3_creds_get().  Returns 0 if that can help (a
 * refreshable source), -EACCES if not. */
int s3_creds_expired(struct s3_creds *p, unsigned gen);

/* Makes credentials from literal values (for tools and tests); NULL on
 * allocation failure. */
struct s3_credentials *s3_credentials_new(const char *access_key,
					  const char *secret_key,
					  const char *session_token,
					  time_t expiration);
void s3_credentials_unref(struct s3_credentials *c);

/*
 * Parses the JSON the container endpoint and IMDS answer with
 * (AccessKeyId, SecretAccessKey, Token, Expiration, Code); what names the
 * source in messages.  @return 0, -EACCES for a Code other than Success,
 * -EIO for an unusable answer, -ENOMEM.
 */
int s3_creds_parse_json(const char *body, size_t len, const char *what,
			struct s3_credentials **ret, struct drgw_err *err);

/*
 * Region configured for profile (AWS_PROFILE or "default" when NULL) in
 * the shared config file, copied into buf.  @return 0 or -ENOENT.
 */
int s3_creds_profile_region(const char *profile, char *buf, size_t size);

/* Fetch timeouts and the refresh window, exposed for tests. */
#define S3_CREDS_REFRESH_S (15 * 60)	/* try to refresh this early */
#define S3_CREDS_MANDATORY_S (5 * 60)	/* must refresh this early */

#endif /* DRGW_S3_CREDS_H */
