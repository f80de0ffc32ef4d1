/* SPDX-License-Identifier: MIT */
/*
 * The AWS credential chain, its fetchers and a refresh-ahead cache; see
 * s3_creds.h for the order.
 *
 * Temporary credentials are refreshed S3_CREDS_REFRESH_S before they
 * expire.  A failed refresh is tolerated while the old credentials still
 * have more than S3_CREDS_MANDATORY_S to live (the AWS SDKs' advisory and
 * mandatory windows), so a short STS or IMDS hiccup never fails uploads.
 * Refreshes happen under the provider lock: concurrent callers wait for
 * the one fetch instead of stampeding the metadata service.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "pbuf.h"
#include "pcodec.h"
#include "popts.h"
#include "pmsg.h"
#include "psecret.h"
#include "s3_creds.h"
#include "s3_profile.h"
#include "s3_xml.h"

#define ECS_HOST "http://169.254.170.2"
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_DEFAULT_V6 "http://[fd00:ec2::254]"
#define IMDS_TIMEOUT_MS 2000
#define CONTAINER_TIMEOUT_MS 5000
#define STS_TIMEOUT_MS 30000
#define MAX_TOKEN_FILE (64 * 1024)

enum source {
	SRC_ENV,
	SRC_WEB_IDENTITY,
	SRC_PROFILE,
	SRC_CONTAINER,
	SRC_IMDS,
};

struct s3_creds {
	enum source src;
	char source_name[160];
	struct phttp_client *http;
	const struct drgw_host *host;

	/* web identity */
	char *role_arn, *token_file, *session_name, *sts_url;
	/* container */
	char *container_url;
	/* IMDS */
	char *imds_url;

	pthread_mutex_t lock;
	struct s3_credentials *cur;	/* protected by lock */
	unsigned generation;		/* protected by lock */
	int force;			/* protected by lock */
};

void s3_credentials_unref(struct s3_credentials *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
		return;
	psecret_free(c->access_key);
	psecret_free(c->secret_key);
	psecret_free(c->session_token);
	free(c);
}

struct s3_credentials *s3_credentials_new(const char *ak, const char *sk,
					  const char *token, time_t exp)
{
	struct s3_credentials *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->refs = 1;
	c->access_key = strdup(ak);
	c->secret_key = strdup(sk);
	c->session_token = token && *token ? strdup(token) : NULL;
	c->expiration = exp;
	if (!c->access_key || !c->secret_key ||
	    (token && *token && !c->session_token)) {
		s3_credentials_unref(c);
		return NULL;
	}
	return c;
}

/* Reads a token file, trimmed; re-read on every use since kubelet and
 * the EKS agent rotate them. */
static int read_token_file(const char *path, struct pbuf *out,
			   struct drgw_err *err, const char *what)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0) {
		int e = errno;

		pmsg_set_err(err, "s3: cannot read %s %s: %s", what, path,
			     strerror(e));
		return -e == -ENOENT ? -EACCES : -e;
	}
	r = psecret_read_fd(fd, MAX_TOKEN_FILE, out);
	close(fd);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		pmsg_set_err(err, "s3: cannot read %s %s: %s", what, path,
			     r == -EFBIG ? "file too large" : strerror(-r));
		return -EIO;
	}
	while (out->len && strchr(" \t\r\n", out->buf[out->len - 1]))
		out->buf[--out->len] = '\0';
	if (out->failed)
		return -ENOMEM;
	if (!out->len) {
		pmsg_set_err(err, "s3: %s %s is empty", what, path);
		return -EACCES;
	}
	return 0;
}

/* Plain http is allowed only where AWS documents it: the link-local
 * addresses of the ECS/EKS agents and of IMDS (and loopback, for local
 * agents and tests).  Everything else carries a secret, or hands out
 * credentials, over https only. */
static const char *const container_hosts[] = {
	"169.254.170.2", "169.254.170.23", "[fd00:ec2::23]", NULL,
};
static const char *const imds_hosts[] = {
	"169.254.169.254", "[fd00:ec2::254]", NULL,
};

static int use_web_identity(struct s3_creds *p, const char *arn,
			    const char *file, const char *session,
			    const struct s3_creds_config *cfg,
			    struct drgw_err *err)
{
	const char *sts = cfg->sts_endpoint ? cfg->sts_endpoint :
					       popts_env("AWS_ENDPOINT_URL_STS");
	struct pbuf url = PBUF_INIT;
	int r;

	/* sts-endpoint= was checked with the options. */
	if (sts && !cfg->sts_endpoint && !popts_cred_url_ok(sts, NULL)) {
		pmsg_set_err(err,
			     "s3: AWS_ENDPOINT_URL_STS=%s: the web identity token goes only to an https URL (plain http only to a loopback address)",
			     sts);
		return -EINVAL;
	}
	if (sts)
		pbuf_adds(&url, sts);
	else
		pbuf_addf(&url, "https://sts.%s.amazonaws.com",
			  cfg->region ? cfg->region : "us-east-1");
	/* STS answers POST / */
	if (url.len && url.buf[url.len - 1] != '/')
		pbuf_addch(&url, '/');
	p->sts_url = pbuf_detach(&url, NULL);
	r = p->sts_url ? 0 : -ENOMEM;
	if (!r)
		r = popts_dup(&p->role_arn, arn);
	if (!r)
		r = popts_dup(&p->token_file, file);
	if (!r)
		r = popts_dup(&p->session_name, session);
	p->src = SRC_WEB_IDENTITY;
	return r;
}

/* Static keys are fetched right away: nothing can fail later. */
static int use_static(struct s3_creds *p, enum source src, const char *ak,
		      const char *sk, const char *token)
{
	p->src = src;
	p->cur = s3_credentials_new(ak, sk, token, 0);
	if (!p->cur)
		return -ENOMEM;
	p->cur->generation = ++p->generation;
	return 0;
}

static int choose_profile(struct s3_creds *p, const char *name, int explicit,
			  const struct s3_creds_config *cfg,
			  struct drgw_err *err)
{
	struct s3_profile prof;
	int r = s3_profile_load(name, &prof);

	if (r < 0) {
		pmsg_set_err(err, "s3: cannot read the AWS config files: %s",
			     strerror(-r));
		return r;
	}
	if (!prof.found) {
		r = explicit ? -EINVAL : 1;
		if (explicit)
			pmsg_set_err(err,
				     "s3: AWS profile '%s' not found in the shared credentials or config file",
				     name);
		goto out;
	}
	snprintf(p->source_name, sizeof(p->source_name), "profile %s", name);
	if (prof.role_arn && prof.web_identity_token_file) {
		r = use_web_identity(p, prof.role_arn,
				     prof.web_identity_token_file,
				     prof.role_session_name, cfg, err);
		goto out;
	}
	if (prof.unsupported) {
		pmsg_set_err(err,
			     "s3: AWS profile '%s' uses %s, which drgw does not support; use static keys, web identity, container or instance credentials",
			     name, prof.unsupported);
		r = -EINVAL;
		goto out;
	}
	if (prof.access_key && prof.secret_key) {
		r = use_static(p, SRC_PROFILE, prof.access_key, prof.secret_key,
			       prof.session_token);
		goto out;
	}
	if (prof.access_key || prof.secret_key) {
		pmsg_set_err(err,
			     "s3: AWS profile '%s' has only one of aws_access_key_id and aws_secret_access_key",
			     name);
		r = -EINVAL;
		goto out;
	}
	r = explicit ? -EINVAL : 1;
	if (explicit)
		pmsg_set_err(err, "s3: AWS profile '%s' has no credentials", name);
out:
	s3_profile_release(&prof);
	return r;
}

static int choose(struct s3_creds *p, const struct s3_creds_config *cfg,
		  struct drgw_err *err)
{
	const char *ak = popts_env("AWS_ACCESS_KEY_ID"), *sk = popts_env("AWS_SECRET_ACCESS_KEY");
	const char *wi_file = popts_env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *wi_arn = popts_env("AWS_ROLE_ARN");
	const char *rel = popts_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = popts_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *imds_off = popts_env("AWS_EC2_METADATA_DISABLED");
	struct pbuf url = PBUF_INIT;
	int r;

	if (cfg->profile)
		return choose_profile(p, cfg->profile, 1, cfg, err);

	if (ak || sk) {
		if (!ak || !sk) {
			pmsg_set_err(err, "s3: %s is set but %s is not",
				     ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
				     ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
			return -EINVAL;
		}
		snprintf(p->source_name, sizeof(p->source_name), "environment");
		return use_static(p, SRC_ENV, ak, sk, popts_env("AWS_SESSION_TOKEN"));
	}
	if (wi_file && wi_arn) {
		snprintf(p->source_name, sizeof(p->source_name), "web identity");
		return use_web_identity(p, wi_arn, wi_file,
					popts_env("AWS_ROLE_SESSION_NAME"), cfg,
					err);
	}
	r = choose_profile(p, s3_profile_name(NULL), popts_env("AWS_PROFILE") != NULL,
			   cfg, err);
	if (r <= 0)
		return r;
	if (rel || full) {
		if (rel)
			pbuf_addf(&url, "%s%s%s", ECS_HOST,
				  rel[0] == '/' ? "" : "/", rel);
		else
			pbuf_adds(&url, full);
		p->container_url = pbuf_detach(&url, NULL);
		if (!p->container_url)
			return -ENOMEM;
		if (!rel && !popts_cred_url_ok(full, container_hosts)) {
			pmsg_set_err(err,
				     "s3: AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a loopback/link-local http URL");
			return -EINVAL;
		}
		p->src = SRC_CONTAINER;
		snprintf(p->source_name, sizeof(p->source_name), "container");
		return 0;
	}
	if (imds_off && !strcasecmp(imds_off, "true")) {
		pmsg_set_err(err,
			     "s3: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN) or container credentials");
		return -ENOENT;
	}
	if (popts_env("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
		pbuf_adds(&url, popts_env("AWS_EC2_METADATA_SERVICE_ENDPOINT"));
	else if (popts_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") &&
		 !strcasecmp(popts_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"),
			     "IPv6"))
		pbuf_adds(&url, IMDS_DEFAULT_V6);
	else
		pbuf_adds(&url, IMDS_DEFAULT);
	while (url.len && url.buf[url.len - 1] == '/')
		url.buf[--url.len] = '\0';
	p->imds_url = pbuf_detach(&url, NULL);
	if (!p->imds_url)
		return -ENOMEM;
	if (!popts_cred_url_ok(p->imds_url, imds_hosts)) {
		pmsg_set_err(err,
			     "s3: AWS_EC2_METADATA_SERVICE_ENDPOINT=%s: instance metadata must be https, or http on 169.254.169.254, [fd00:ec2::254] or a loopback address",
			     p->imds_url);
		return -EINVAL;
	}
	p->src = SRC_IMDS;
	snprintf(p->source_name, sizeof(p->source_name), "IMDS");
	return 0;
}

int s3_creds_new(const struct s3_creds_config *cfg, struct s3_creds **ret,
		 struct drgw_err *err)
{
	struct s3_creds *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->http = cfg->http;
	p->host = cfg->host;
	pthread_mutex_init(&p->lock, NULL);
	r = choose(p, cfg, err);
	if (r < 0) {
		s3_creds_free(p);
		return r;
	}
	pmsg_debug(p->host, "s3: using AWS credentials from %s", p->source_name);
	*ret = p;
	return 0;
}

void s3_creds_free(struct s3_creds *p)
{
	if (!p)
		return;
	s3_credentials_unref(p->cur);
	free(p->role_arn);
	free(p->token_file);
	free(p->session_name);
	free(p->sts_url);
	free(p->container_url);
	free(p->imds_url);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

const char *s3_creds_source(const struct s3_creds *p)
{
	return p->source_name;
}

static time_t exp_time(int64_t ns)
{
	return (time_t)(ns / 1000000000);
}

/* A small request with its own timeouts; no signing, few retries. */
static int simple_request(struct s3_creds *p, struct phttp_request *rq,
			  struct phttp_response *resp, long timeout_ms)
{
	static const struct phttp_retry policy = { 2, 200, 1000 };

	rq->timeout_ms = timeout_ms;
	rq->connect_timeout_ms = timeout_ms < 2000 ? timeout_ms : 2000;
	rq->io.max_body = 1 << 20;
	return phttp_run(p->http, rq, resp, &policy, NULL, NULL, NULL);
}

/* STS AssumeRoleWithWebIdentity.  Unsigned: the token is the proof. */
static int fetch_web_identity(struct s3_creds *p, struct s3_credentials **ret,
			      struct drgw_err *err)
{
	struct pbuf token = PBUF_INIT, form = PBUF_INIT, session = PBUF_INIT;
	struct pbuf ak = PBUF_INIT, sk = PBUF_INIT, st = PBUF_INIT;
	struct phttp_response resp = { 0 };
	struct phttp_request rq = { 0 };
	struct curl_slist *hdrs = NULL;
	int64_t exp_ns = 0;
	int r;

	r = read_token_file(p->token_file, &token, err,
			    "web identity token file");
	if (r < 0)
		goto out;
	if (p->session_name)
		pbuf_adds(&session, p->session_name);
	else
		pbuf_addf(&session, "drgw-%lld", (long long)time(NULL));
	pcodec_form_add(&form, "Action", "AssumeRoleWithWebIdentity");
	pcodec_form_add(&form, "Version", "2011-06-15");
	pcodec_form_add(&form, "RoleArn", p->role_arn);
	pcodec_form_add(&form, "RoleSessionName", pbuf_str(&session) ?: "drgw");
	pcodec_form_add(&form, "WebIdentityToken", pbuf_str(&token) ?: "");
	if (form.failed || phttp_add_header(&hdrs, "Content-Type",
					    "application/x-www-form-urlencoded; charset=utf-8") ||
	    phttp_add_header(&hdrs, "Accept", "application/xml")) {
		r = -ENOMEM;
		goto out;
	}
	rq.method = "POST";
	rq.url = p->sts_url;
	rq.headers = hdrs;
	rq.io.has_body = 1;
	rq.io.body = form.buf;
	rq.io.body_len = form.len;
	r = simple_request(p, &rq, &resp, STS_TIMEOUT_MS);
	if (r < 0) {
		pmsg_set_err(err, "s3: web identity credentials: STS at %s: %s",
			     p->sts_url, phttp_strerror(&resp, r));
		goto out;
	}
	if (resp.status != 200) {
		char code[64] = "", msg[256] = "";

		s3_xml_error(resp.body.buf ? resp.body.buf : "", resp.body.len,
			     code, sizeof(code), msg, sizeof(msg));
		pmsg_set_err(err,
			     "s3: web identity credentials: STS AssumeRoleWithWebIdentity for %s: %ld %s: %s",
			     p->role_arn, resp.status, code[0] ? code : "error", msg);
		r = resp.status >= 500 || resp.status == 429 ? -EAGAIN : -EACCES;
		goto out;
	}
	r = s3_xml_sts_credentials(resp.body.buf, resp.body.len, &ak, &sk, &st,
				   &exp_ns);
	if (r < 0) {
		pmsg_set_err(err,
			     "s3: web identity credentials: unusable STS answer from %s",
			     p->sts_url);
		r = -EIO;
		goto out;
	}
	*ret = s3_credentials_new(ak.buf, sk.buf, st.buf, exp_time(exp_ns));
	r = *ret ? 0 : -ENOMEM;
out:
	curl_slist_free_all(hdrs);
	pbuf_release_secret(&token);
	pbuf_release_secret(&form);
	pbuf_release(&session);
	pbuf_release_secret(&ak);
	pbuf_release_secret(&sk);
	pbuf_release_secret(&st);
	pbuf_release_secret(&resp.body);
	phttp_response_release(&resp);
	return r;
}

int s3_creds_parse_json(const char *body, size_t len, const char *what,
			struct s3_credentials **ret, struct drgw_err *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(body, len, 0, &jerr);
	const char *ak, *sk, *tok, *exp, *code;
	int64_t exp_ns = 0;
	int r = 0;

	if (!j) {
		pmsg_set_err(err, "s3: %s credentials: answer is not JSON", what);
		return -EIO;
	}
	ak = json_string_value(json_object_get(j, "AccessKeyId"));
	sk = json_string_value(json_object_get(j, "SecretAccessKey"));
	tok = json_string_value(json_object_get(j, "Token"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	code = json_string_value(json_object_get(j, "Code"));
	if (code && strcmp(code, "Success")) {
		pmsg_set_err(err, "s3: %s credentials: Code %s", what, code);
		r = -EACCES;
	} else if (!ak || !sk || !*ak || !*sk ||
		   (exp && pcodec_parse_rfc3339(exp, &exp_ns) < 0)) {
		pmsg_set_err(err,
			     "s3: %s credentials: answer lacks AccessKeyId, SecretAccessKey or a valid Expiration",
			     what);
		r = -EIO;
	} else {
		*ret = s3_credentials_new(ak, sk, tok, exp ? exp_time(exp_ns) : 0);
		r = *ret ? 0 : -ENOMEM;
	}
	/* jansson has no secure free; overwrite the strings we know of. */
	if (sk)
		OPENSSL_cleanse((char *)sk, strlen(sk));
	if (tok)
		OPENSSL_cleanse((char *)tok, strlen(tok));
	json_decref(j);
	return r;
}

static int http_status_errno(long status)
{
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	return status >= 500 || status == 429 ? -EAGAIN : -EIO;
}

static int fetch_container(struct s3_creds *p, struct s3_credentials **ret,
			   struct drgw_err *err)
{
	const char *file = popts_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = popts_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	struct pbuf auth = PBUF_INIT;
	struct phttp_response resp = { 0 };
	struct phttp_request rq = { 0 };
	struct curl_slist *hdrs = NULL;
	int r = 0;

	if (file)
		r = read_token_file(file, &auth, err,
				    "container authorization token file");
	else if (tok)
		pbuf_adds(&auth, tok);
	if (r < 0)
		goto out;
	if (auth.failed ||
	    (auth.len && phttp_add_header(&hdrs, "Authorization", auth.buf)) ||
	    phttp_add_header(&hdrs, "Accept", "application/json")) {
		r = -ENOMEM;
		goto out;
	}
	rq.method = "GET";
	rq.url = p->container_url;
	rq.headers = hdrs;
	r = simple_request(p, &rq, &resp, CONTAINER_TIMEOUT_MS);
	if (r < 0) {
		pmsg_set_err(err, "s3: container credentials: %s",
			     phttp_strerror(&resp, r));
		goto out;
	}
	if (resp.status != 200) {
		pmsg_set_err(err, "s3: container credentials: endpoint answered %ld",
			     resp.status);
		r = http_status_errno(resp.status);
		goto out;
	}
	r = s3_creds_parse_json(resp.body.buf, resp.body.len, "container", ret,
			     err);
out:
	/* The Authorization header line holds the token too. */
	for (struct curl_slist *l = hdrs; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(hdrs);
	pbuf_release_secret(&auth);
	pbuf_release_secret(&resp.body);
	phttp_response_release(&resp);
	return r;
}

static int imds_call(struct s3_creds *p, const char *method, const char *path,
		     const char *hname, const char *hval,
		     struct phttp_response *resp, struct drgw_err *err)
{
	struct pbuf url = PBUF_INIT;
	struct phttp_request rq = { 0 };
	struct curl_slist *hdrs = NULL;
	int r;

	pbuf_addf(&url, "%s%s", p->imds_url, path);
	if (!pbuf_str(&url) || phttp_add_header(&hdrs, hname, hval)) {
		r = -ENOMEM;
		goto out;
	}
	rq.method = method;
	rq.url = url.buf;
	rq.headers = hdrs;
	rq.io.has_body = !strcmp(method, "PUT");
	r = simple_request(p, &rq, resp, IMDS_TIMEOUT_MS);
	if (r < 0) {
		/* IMDS is the last resort: say what else was looked for. */
		pmsg_set_err(err,
			     "s3: no AWS credentials in the environment, web identity, profile or container settings, and EC2 instance metadata at %s failed: %s",
			     p->imds_url, phttp_strerror(resp, r));
	} else if (resp->status != 200) {
		pmsg_set_err(err, "s3: EC2 instance metadata at %s: %s %s answered %ld",
			     p->imds_url, method, path, resp->status);
		r = http_status_errno(resp->status);
	}
out:
	for (struct curl_slist *l = hdrs; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(hdrs);
	pbuf_release(&url);
	return r;
}

/* IMDSv2: session token, role name, then the role's credentials. */
static int fetch_imds(struct s3_creds *p, struct s3_credentials **ret,
		      struct drgw_err *err)
{
	static const char base[] = "/latest/meta-data/iam/security-credentials/";
	struct phttp_response resp = { 0 };
	struct pbuf token = PBUF_INIT, path = PBUF_INIT;
	char *nl;
	int r;

	r = imds_call(p, "PUT", "/latest/api/token",
		      "X-aws-ec2-metadata-token-ttl-seconds", "21600", &resp,
		      err);
	if (r < 0)
		goto out;
	pbuf_add(&token, resp.body.buf, resp.body.len);
	if (!pbuf_str(&token)) {
		r = -ENOMEM;
		goto out;
	}
	r = imds_call(p, "GET", base, "X-aws-ec2-metadata-token", token.buf,
		      &resp, err);
	if (r < 0)
		goto out;
	pbuf_add(&path, base, strlen(base));
	nl = resp.body.buf ? strchr(resp.body.buf, '\n') : NULL;
	pbuf_add(&path, resp.body.buf,
		 nl ? (size_t)(nl - resp.body.buf) : resp.body.len);
	if (!pbuf_str(&path)) {
		r = -ENOMEM;
		goto out;
	}
	if (path.len == strlen(base)) {
		pmsg_set_err(err, "s3: EC2 instance metadata: no IAM role attached to the instance");
		r = -EACCES;
		goto out;
	}
	r = imds_call(p, "GET", path.buf, "X-aws-ec2-metadata-token",
		      token.buf, &resp, err);
	if (r == 0)
		r = s3_creds_parse_json(resp.body.buf, resp.body.len,
				     "EC2 instance metadata", ret, err);
out:
	pbuf_release_secret(&token);
	pbuf_release(&path);
	pbuf_release_secret(&resp.body);
	phttp_response_release(&resp);
	return r;
}

static int fetch(struct s3_creds *p, struct s3_credentials **ret,
		 struct drgw_err *err)
{
	switch (p->src) {
	case SRC_WEB_IDENTITY:
		return fetch_web_identity(p, ret, err);
	case SRC_CONTAINER:
		return fetch_container(p, ret, err);
	case SRC_IMDS:
		return fetch_imds(p, ret, err);
	default:
		return -EINVAL;
	}
}

int s3_creds_get(struct s3_creds *p, struct s3_credentials **ret,
		 struct drgw_err *err)
{
	struct s3_credentials *c = NULL, *fresh = NULL;
	time_t now = time(NULL);
	int r = 0;

	pthread_mutex_lock(&p->lock);
	c = p->cur;
	if (c && !p->force &&
	    (c->expiration == 0 || now < c->expiration - S3_CREDS_REFRESH_S))
		goto hit;
	if (p->src == SRC_ENV || p->src == SRC_PROFILE) {
		if (c)
			goto hit;
		r = -EACCES;
		goto out;
	}
	r = fetch(p, &fresh, err);
	if (r == 0) {
		fresh->generation = ++p->generation;
		s3_credentials_unref(p->cur);
		p->cur = c = fresh;
		p->force = 0;
		pmsg_debug(p->host, "s3: fetched AWS credentials from %s, valid until %lld",
			   p->source_name, (long long)c->expiration);
		goto hit;
	}
	if (c && !p->force && now < c->expiration - S3_CREDS_MANDATORY_S) {
		pmsg_debug(p->host, "s3: refreshing AWS credentials from %s failed, keeping the current ones: %s",
			   p->source_name, err ? err->msg : "");
		if (err)
			err->msg[0] = '\0';
		r = 0;
		goto hit;
	}
	goto out;
hit:
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	*ret = c;
out:
	pthread_mutex_unlock(&p->lock);
	return r;
}

int s3_creds_expired(struct s3_creds *p, unsigned gen)
{
	int r = 0;

	pthread_mutex_lock(&p->lock);
	if (p->src == SRC_ENV || p->src == SRC_PROFILE)
		r = -EACCES;
	else if (p->cur && p->cur->generation == gen)
		p->force = 1;
	pthread_mutex_unlock(&p->lock);
	return r;
}

int s3_creds_profile_region(const char *profile, char *buf, size_t size)
{
	struct s3_profile prof;
	int r = s3_profile_load(s3_profile_name(profile), &prof);

	if (r == 0 && prof.region && strlen(prof.region) < size) {
		memcpy(buf, prof.region, strlen(prof.region) + 1);
	} else if (r == 0) {
		r = -ENOENT;
	}
	s3_profile_release(&prof);
	return r;
}
