/* SPDX-License-Identifier: MIT */
/*
 * Google application default credentials and a refresh-ahead token cache;
 * see gcs_auth.h for the order of the sources.
 *
 * A token is refetched GCS_AUTH_REFRESH_S before it expires, or at half
 * its life when it lives shorter than twice that, so short-lived tokens
 * are refreshed too instead of on every request.  A failed refresh is
 * tolerated while the current token has more than GCS_AUTH_MIN_LEFT_S (a
 * quarter of its life, for short ones) to live, so a slow metadata server
 * or token endpoint does not fail uploads.  Fetches happen under the
 * provider lock: concurrent callers wait for the one fetch instead of
 * stampeding the token endpoint.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcs_auth.h"
#include "gcs_int.h"
#include "gcs_json.h"
#include "gcs_jwt.h"
#include "pbuf.h"
#include "pcodec.h"
#include "popts.h"
#include "psecret.h"

#define DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define DEFAULT_METADATA_HOST "metadata.google.internal"
#define METADATA_PATH "/computeMetadata/v1/instance/service-accounts/default/token"
#define JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define MAX_KEY_FILE (64 * 1024)
#define MAX_TOKEN_FILE (16 * 1024)
#define TOKEN_TIMEOUT_MS 30000

enum source {
	SRC_NONE,
	SRC_TOKEN_FILE,
	SRC_SERVICE_ACCOUNT,
	SRC_AUTHORIZED_USER,
	SRC_METADATA,
};

struct gcs_auth {
	enum source src;
	char source_name[512];
	struct phttp_client *http;
	const struct drgw_host *host;

	char *token_file;		/* SRC_TOKEN_FILE */
	struct gcs_key_file key;	/* key files; private_key dropped */
	EVP_PKEY *pkey;			/* SRC_SERVICE_ACCOUNT */
	char *token_uri;		/* where tokens are POSTed */
	char *audience;			/* the JWT's aud */
	char *scope;
	char *metadata_host;		/* SRC_METADATA */
	char *metadata_url;
	int metadata_implicit;		/* chosen for want of anything else */

	pthread_mutex_t lock;
	struct gcs_token *cur;		/* protected by lock */
	unsigned generation;		/* protected by lock */
	int force;			/* protected by lock */
	struct stat file_id;		/* lock; token file that gave cur */
};

void gcs_token_unref(struct gcs_token *t)
{
	if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL))
		return;
	psecret_free(t->value);
	free(t);
}

/* A new token that lives lifetime seconds from now (0: unknown). */
static struct gcs_token *token_new(const char *value, int64_t lifetime)
{
	struct gcs_token *t = calloc(1, sizeof(*t));
	time_t now = time(NULL);

	if (!t)
		return NULL;
	t->refs = 1;
	t->value = strdup(value);
	if (!t->value) {
		free(t);
		return NULL;
	}
	if (lifetime > 0) {
		int64_t early = lifetime / 2 < GCS_AUTH_REFRESH_S ?
					lifetime / 2 : GCS_AUTH_REFRESH_S;
		int64_t margin = lifetime / 4 < GCS_AUTH_MIN_LEFT_S ?
					 lifetime / 4 : GCS_AUTH_MIN_LEFT_S;

		t->expiry = now + (time_t)lifetime;
		t->refresh_at = now + (time_t)(lifetime - early);
		t->usable_until = t->expiry - (time_t)margin;
	}
	return t;
}

/*
 * Reads a whole regular file of at most max bytes into b (a secret
 * buffer: the caller releases it with pbuf_release_secret()).
 * @return 0 or a negative errno, with err->msg naming the file as what.
 */
static int read_file(const char *path, size_t max, struct pbuf *b,
		     struct stat *ret_st, const char *what,
		     struct drgw_err *err)
{
	struct stat st;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		pmsg_set_err(err, "gcs: cannot read %s %s: %s", what, path,
			     strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		pmsg_set_err(err, "gcs: cannot read %s %s: %s", what, path,
			     strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		pmsg_set_err(err, "gcs: %s %s is not a regular file", what, path);
		goto out;
	}
	r = psecret_read_fd(fd, max, b);
	if (r == -EFBIG) {
		pmsg_set_err(err, "gcs: %s %s is larger than %zu bytes", what,
			     path, max);
		r = -EINVAL;
	} else if (r < 0 && r != -ENOMEM) {
		pmsg_set_err(err, "gcs: cannot read %s %s: %s", what, path,
			     strerror(-r));
	}
	if (r == 0 && ret_st)
		*ret_st = st;
out:
	close(fd);
	return r;
}

/* Loads a credentials file; "origin" says how it was found. */
static int use_key_file(struct gcs_auth *a, const char *path,
			const char *origin, const struct gcs_auth_config *cfg,
			struct drgw_err *err)
{
	struct pbuf text = PBUF_INIT;
	char why[256] = "";
	int r;

	r = read_file(path, MAX_KEY_FILE, &text, NULL, "credentials file", err);
	if (r < 0)
		goto out;
	r = gcs_json_key_file(text.buf ? text.buf : "", text.len, &a->key, why,
			      sizeof(why));
	if (r == -EINVAL)
		pmsg_set_err(err, "gcs: credentials file %s (%s): %s", path, origin,
			     why);
	if (r < 0)
		goto out;
	/* The key's own token_uri is what Google signs for; token-uri=
	 * only changes where the assertion is sent. */
	r = popts_dup(&a->audience, a->key.token_uri ? a->key.token_uri :
						      DEFAULT_TOKEN_URI);
	if (r == 0)
		r = popts_dup(&a->token_uri, cfg->token_uri ? cfg->token_uri :
							     a->audience);
	if (r == 0)
		r = popts_dup(&a->scope, cfg->scope);
	if (r < 0)
		goto out;
	/* token-uri= was checked with the options. */
	if (!cfg->token_uri && !popts_cred_url_ok(a->token_uri, NULL)) {
		pmsg_set_err(err,
			     "gcs: credentials file %s (%s): token_uri %s: credentials go only to an https URL (plain http only to a loopback address)",
			     path, origin, a->token_uri);
		r = -EINVAL;
		goto out;
	}
	if (!strcmp(a->key.type, "service_account")) {
		r = gcs_jwt_load_key(a->key.private_key,
				     strlen(a->key.private_key), &a->pkey);
		if (r == -EINVAL)
			pmsg_set_err(err,
				     "gcs: credentials file %s (%s): private_key is not a PEM RSA private key",
				     path, origin);
		if (r < 0)
			goto out;
		a->src = SRC_SERVICE_ACCOUNT;
		snprintf(a->source_name, sizeof(a->source_name),
			 "service account %s (%s %s)", a->key.client_email,
			 origin, path);
	} else {
		a->src = SRC_AUTHORIZED_USER;
		snprintf(a->source_name, sizeof(a->source_name),
			 "authorized user %s (%s %s)", a->key.client_id, origin,
			 path);
	}
out:
	/* Only the parsed key object is kept. */
	psecret_free(a->key.private_key);
	a->key.private_key = NULL;
	pbuf_release_secret(&text);
	return r;
}

/* The metadata server speaks plain http; only where Google puts it (or
 * on loopback, for emulators) may it hand out tokens. */
static const char *const metadata_hosts[] = {
	DEFAULT_METADATA_HOST, "169.254.169.254", "[fd20:ce::254]", NULL,
};

static int use_metadata(struct gcs_auth *a, const char *host, int implicit,
			const char *what, struct drgw_err *err)
{
	struct pbuf url = PBUF_INIT;

	a->src = SRC_METADATA;
	a->metadata_implicit = implicit;
	if (popts_dup(&a->metadata_host, host) < 0)
		return -ENOMEM;
	pbuf_addf(&url, "http://%s" METADATA_PATH, host);
	a->metadata_url = pbuf_detach(&url, NULL);
	if (!a->metadata_url)
		return -ENOMEM;
	if (!popts_cred_url_ok(a->metadata_url, metadata_hosts)) {
		pmsg_set_err(err,
			     "gcs: %s=%s: the metadata server must be %s, 169.254.169.254 or a loopback address (it answers in plain http)",
			     what, host, DEFAULT_METADATA_HOST);
		return -EINVAL;
	}
	snprintf(a->source_name, sizeof(a->source_name), "metadata server %s",
		 host);
	return 0;
}

/* gcloud's application default credentials, if the file exists. */
static int well_known_file(struct pbuf *path)
{
	const char *dir = popts_env("CLOUDSDK_CONFIG"), *home = popts_env("HOME");

	if (dir)
		pbuf_addf(path, "%s/application_default_credentials.json", dir);
	else if (home)
		pbuf_addf(path, "%s/.config/gcloud/application_default_credentials.json",
			  home);
	else
		return 0;
	return pbuf_str(path) && access(path->buf, F_OK) == 0;
}

static int choose(struct gcs_auth *a, const struct gcs_auth_config *cfg,
		  struct drgw_err *err)
{
	const char *gac = popts_env("GOOGLE_APPLICATION_CREDENTIALS");
	const char *mdh = popts_env("GCE_METADATA_HOST");
	struct pbuf wk = PBUF_INIT;
	int r;

	if (cfg->access_token_file) {
		a->src = SRC_TOKEN_FILE;
		snprintf(a->source_name, sizeof(a->source_name),
			 "access-token-file %s", cfg->access_token_file);
		return popts_dup(&a->token_file, cfg->access_token_file);
	}
	if (cfg->credentials_file)
		return use_key_file(a, cfg->credentials_file,
				    "credentials-file", cfg, err);
	if (cfg->custom_endpoint && !gac && !cfg->metadata_host && !mdh) {
		a->src = SRC_NONE;
		snprintf(a->source_name, sizeof(a->source_name),
			 "none (custom endpoint without credentials)");
		return 0;
	}
	if (gac)
		return use_key_file(a, gac, "GOOGLE_APPLICATION_CREDENTIALS",
				    cfg, err);
	/* An operator who names a metadata host wants it; the variable
	 * only moves the server, as in Google's clients. */
	if (cfg->metadata_host)
		return use_metadata(a, cfg->metadata_host, 0, "metadata-host",
				    err);
	if (well_known_file(&wk)) {
		r = use_key_file(a, wk.buf, "gcloud application default credentials",
				 cfg, err);
		pbuf_release(&wk);
		return r;
	}
	pbuf_release(&wk);
	if (mdh)
		return use_metadata(a, mdh, 0, "GCE_METADATA_HOST", err);
	return use_metadata(a, DEFAULT_METADATA_HOST, 1, "", err);
}

int gcs_auth_new(const struct gcs_auth_config *cfg, struct gcs_auth **ret,
		 struct drgw_err *err)
{
	struct gcs_auth *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	a->http = cfg->http;
	a->host = cfg->host;
	pthread_mutex_init(&a->lock, NULL);
	r = choose(a, cfg, err);
	if (r < 0) {
		if (r != -ENOMEM && r != -EINVAL)
			r = -EINVAL;
		gcs_auth_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

void gcs_auth_free(struct gcs_auth *a)
{
	if (!a)
		return;
	gcs_token_unref(a->cur);
	gcs_key_file_release(&a->key);
	EVP_PKEY_free(a->pkey);
	free(a->token_file);
	free(a->token_uri);
	free(a->audience);
	free(a->scope);
	free(a->metadata_host);
	free(a->metadata_url);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

const char *gcs_auth_source(const struct gcs_auth *a)
{
	return a->source_name;
}

int gcs_auth_anonymous(const struct gcs_auth *a)
{
	return a->src == SRC_NONE;
}

/* ---- fetchers; all run under a->lock ---- */

static int fetch_token_file(struct gcs_auth *a, struct gcs_token **ret,
			    struct stat *ret_st, struct drgw_err *err)
{
	struct pbuf text = PBUF_INIT, tok = PBUF_INIT;
	int64_t lifetime = 0;
	size_t start = 0, end;
	int r;

	r = read_file(a->token_file, MAX_TOKEN_FILE, &text, ret_st,
		      "access token file", err);
	if (r < 0) {
		/* Not "no such object": the credentials are unusable. */
		if (r != -ENOMEM)
			r = -EACCES;
		goto out;
	}
	end = text.len;
	while (start < end && strchr(" \t\r\n", text.buf[start]))
		start++;
	while (end > start && strchr(" \t\r\n", text.buf[end - 1]))
		end--;
	if (start < end && text.buf[start] == '{') {
		/* What `gcloud auth print-access-token --format=json` and
		 * token endpoints write. */
		r = gcs_json_token(text.buf + start, end - start, &tok,
				   &lifetime);
	} else {
		pbuf_add(&tok, text.buf + start, end - start);
		r = tok.failed ? -ENOMEM : 0;
		if (r == 0 &&
		    (!tok.len ||
		     strspn(tok.buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789-._~+/=") != tok.len))
			r = -EIO;
	}
	if (r == -EIO) {
		pmsg_set_err(err, "gcs: access token file %s holds no usable token",
			     a->token_file);
		r = -EACCES;
	}
	if (r < 0)
		goto out;
	/* Whoever writes the file refreshes it; its lifetime (if it says
	 * one) is relative to a moment we do not know. */
	*ret = token_new(tok.buf, 0);
	r = *ret ? 0 : -ENOMEM;
out:
	pbuf_release_secret(&text);
	pbuf_release_secret(&tok);
	return r;
}

static int status_errno(long status)
{
	if (status == 400 || status == 401 || status == 403 || status == 404)
		return -EACCES;
	if (status == 408)
		return -ETIMEDOUT;
	return status >= 500 || status == 429 ? -EAGAIN : -EIO;
}

/* Token endpoints: 408 is worth a retry too. */
static enum phttp_next classify_token(void *arg, struct phttp_response *resp,
				      int r, int attempt, unsigned *ret_delay)
{
	if (r == 0 && resp->status == 408)
		return PHTTP_RETRY;
	return phttp_classify_default(resp, r);
}

/* POSTs an OAuth form to a->token_uri; who names the credentials. */
static int post_token(struct gcs_auth *a, const struct pbuf *form,
		      const char *who, struct gcs_token **ret,
		      struct drgw_err *err)
{
	static const struct phttp_retry policy = { 3, 500, 4000 };
	static const struct phttp_hooks hooks = { .classify = classify_token };
	struct phttp_response resp = { 0 };
	struct phttp_request rq = { 0 };
	struct curl_slist *hdrs = NULL;
	struct pbuf tok = PBUF_INIT;
	int64_t lifetime = 0;
	int r;

	if (form->failed ||
	    phttp_add_header(&hdrs, "Content-Type",
			     "application/x-www-form-urlencoded") ||
	    phttp_add_header(&hdrs, "Accept", "application/json")) {
		r = -ENOMEM;
		goto out;
	}
	rq.method = "POST";
	rq.url = a->token_uri;
	rq.headers = hdrs;
	rq.io.has_body = 1;
	rq.io.body = form->buf;
	rq.io.body_len = form->len;
	rq.timeout_ms = TOKEN_TIMEOUT_MS;
	rq.io.max_body = 1 << 20;
	r = phttp_run(a->http, &rq, &resp, &policy, &hooks, NULL, NULL);
	if (r < 0) {
		pmsg_set_err(err, "gcs: %s: token endpoint %s: %s", who,
			     a->token_uri, phttp_strerror(&resp, r));
		goto out;
	}
	if (resp.status != 200) {
		char reason[64], msg[256];

		gcs_json_error(resp.body.buf, resp.body.len, reason,
			       sizeof(reason), msg, sizeof(msg));
		pmsg_set_err(err, "gcs: %s: token endpoint %s: %ld %s%s%s", who,
			     a->token_uri, resp.status,
			     reason[0] ? reason : "error", msg[0] ? ": " : "", msg);
		r = status_errno(resp.status);
		goto out;
	}
	r = gcs_json_token(resp.body.buf, resp.body.len, &tok, &lifetime);
	if (r < 0) {
		pmsg_set_err(err, "gcs: %s: token endpoint %s: answer holds no bearer access token",
			     who, a->token_uri);
		r = -EIO;
		goto out;
	}
	*ret = token_new(tok.buf, lifetime);
	r = *ret ? 0 : -ENOMEM;
out:
	curl_slist_free_all(hdrs);
	pbuf_release_secret(&tok);
	pbuf_release_secret(&resp.body);
	phttp_response_release(&resp);
	return r;
}

static int fetch_service_account(struct gcs_auth *a, struct gcs_token **ret,
				 struct drgw_err *err)
{
	struct gcs_jwt_claims c = {
		.kid = a->key.private_key_id,
		.iss = a->key.client_email,
		.scope = a->scope,
		.aud = a->audience,
		.iat = time(NULL),
		.lifetime = GCS_JWT_LIFETIME,
	};
	struct pbuf jwt = PBUF_INIT, form = PBUF_INIT, who = PBUF_INIT;
	int r;

	r = gcs_jwt_sign(a->pkey, &c, &jwt);
	if (r < 0) {
		pmsg_set_err(err, "gcs: service account %s: cannot sign the token request: %s",
			     a->key.client_email, strerror(-r));
		goto out;
	}
	pcodec_form_add(&form, "grant_type", JWT_BEARER);
	pcodec_form_add(&form, "assertion", jwt.buf);
	pbuf_addf(&who, "service account %s", a->key.client_email);
	r = post_token(a, &form, pbuf_str(&who) ? who.buf : "service account",
		       ret, err);
out:
	pbuf_release_secret(&jwt);
	pbuf_release_secret(&form);
	pbuf_release(&who);
	return r;
}

static int fetch_authorized_user(struct gcs_auth *a, struct gcs_token **ret,
				 struct drgw_err *err)
{
	struct pbuf form = PBUF_INIT;
	int r;

	pcodec_form_add(&form, "grant_type", "refresh_token");
	pcodec_form_add(&form, "client_id", a->key.client_id);
	pcodec_form_add(&form, "client_secret", a->key.client_secret);
	pcodec_form_add(&form, "refresh_token", a->key.refresh_token);
	r = post_token(a, &form, "authorized user credentials", ret, err);
	pbuf_release_secret(&form);
	return r;
}

/*
 * The GKE metadata server may refuse or stall connections for the first
 * seconds of a pod's life (Workload Identity), so unlike API requests a
 * refused connection is retried here.  An unresolvable host is not: that
 * is the "not on GCP at all" case, which must fail fast.
 */
static enum phttp_next classify_metadata(void *arg,
					 struct phttp_response *resp, int r,
					 int attempt, unsigned *ret_delay)
{
	if (r == -ECONNREFUSED)
		return PHTTP_RETRY;
	return classify_token(arg, resp, r, attempt, ret_delay);
}

static int fetch_metadata(struct gcs_auth *a, struct gcs_token **ret,
			  struct drgw_err *err)
{
	/* Generous the first time (pod start), brisk for refreshes, which
	 * have a still-valid token to fall back on. */
	static const struct phttp_retry first = { 5, 500, 4000 };
	static const struct phttp_retry again = { 3, 500, 2000 };
	static const struct phttp_hooks hooks = { .classify = classify_metadata };
	struct phttp_response resp = { 0 };
	struct phttp_request rq = { 0 };
	struct curl_slist *hdrs = NULL;
	struct pbuf tok = PBUF_INIT;
	int64_t lifetime = 0;
	char flavor[32];
	int r;

	if (phttp_add_header(&hdrs, "Metadata-Flavor", "Google")) {
		r = -ENOMEM;
		goto out;
	}
	rq.method = "GET";
	rq.url = a->metadata_url;
	rq.headers = hdrs;
	rq.timeout_ms = a->cur ? 5000 : 10000;
	rq.connect_timeout_ms = 3000;
	rq.io.max_body = 1 << 20;
	r = phttp_run(a->http, &rq, &resp, a->cur ? &again : &first, &hooks,
		      NULL, NULL);
	if (r < 0) {
		if (a->metadata_implicit)
			pmsg_set_err(err,
				     "gcs: no Google credentials: no credentials-file or access-token-file option, GOOGLE_APPLICATION_CREDENTIALS is not set, no gcloud application default credentials, and the metadata server %s is unreachable: %s",
				     a->metadata_host,
				     phttp_strerror(&resp, r));
		else
			pmsg_set_err(err, "gcs: metadata server %s: %s",
				     a->metadata_host,
				     phttp_strerror(&resp, r));
		goto out;
	}
	/* Anything else on that address (a proxy, a captive portal) does
	 * not send the header back. */
	if (phttp_header(&resp, "Metadata-Flavor", flavor, sizeof(flavor)) < 0 ||
	    strcmp(flavor, "Google")) {
		pmsg_set_err(err, "gcs: metadata server %s: answer (%ld) lacks \"Metadata-Flavor: Google\": not a Google metadata server",
			     a->metadata_host, resp.status);
		r = -EIO;
		goto out;
	}
	if (resp.status != 200) {
		char reason[64], msg[256];

		gcs_json_error(resp.body.buf, resp.body.len, reason,
			       sizeof(reason), msg, sizeof(msg));
		pmsg_set_err(err, "gcs: metadata server %s: %ld%s%s%s", a->metadata_host,
			     resp.status,
			     resp.status == 404 ? " (no service account for this instance or pod)" : "",
			     msg[0] ? ": " : "", msg);
		r = status_errno(resp.status);
		goto out;
	}
	r = gcs_json_token(resp.body.buf, resp.body.len, &tok, &lifetime);
	if (r < 0) {
		pmsg_set_err(err, "gcs: metadata server %s: answer holds no bearer access token",
			     a->metadata_host);
		r = -EIO;
		goto out;
	}
	*ret = token_new(tok.buf, lifetime);
	r = *ret ? 0 : -ENOMEM;
out:
	curl_slist_free_all(hdrs);
	pbuf_release_secret(&tok);
	pbuf_release_secret(&resp.body);
	phttp_response_release(&resp);
	return r;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Whether the cached token can be used as is.  Caller holds a->lock. */
static int still_good(struct gcs_auth *a, time_t now)
{
	struct gcs_token *t = a->cur;
	struct stat st;

	if (!t || a->force)
		return 0;
	if (a->src == SRC_TOKEN_FILE)
		/* Rotated files (kubelet swaps a symlink, sidecars rename)
		 * show up as another inode or mtime.  A file that vanished
		 * for a moment keeps the token we have. */
		return stat(a->token_file, &st) < 0 || same_file(&st, &a->file_id);
	return t->refresh_at == 0 || now < t->refresh_at;
}

int gcs_auth_get(struct gcs_auth *a, struct gcs_token **ret,
		 struct drgw_err *err)
{
	struct gcs_token *t, *fresh = NULL;
	time_t now = time(NULL);
	struct stat st = { 0 };
	int r = 0;

	if (a->src == SRC_NONE) {
		*ret = NULL;
		return 0;
	}
	pthread_mutex_lock(&a->lock);
	t = a->cur;
	if (still_good(a, now))
		goto hit;
	switch (a->src) {
	case SRC_TOKEN_FILE:
		r = fetch_token_file(a, &fresh, &st, err);
		break;
	case SRC_SERVICE_ACCOUNT:
		r = fetch_service_account(a, &fresh, err);
		break;
	case SRC_AUTHORIZED_USER:
		r = fetch_authorized_user(a, &fresh, err);
		break;
	default:
		r = fetch_metadata(a, &fresh, err);
		break;
	}
	if (r == 0) {
		fresh->generation = ++a->generation;
		a->file_id = st;
		gcs_token_unref(a->cur);
		a->cur = t = fresh;
		a->force = 0;
		pmsg_debug(a->host, "gcs: got an access token from %s (%s)",
			   a->source_name,
			   t->expiry ? "expiry known" : "no expiry");
		goto hit;
	}
	if (t && !a->force && t->expiry && time(NULL) < t->usable_until) {
		pmsg_debug(a->host, "gcs: refreshing the access token from %s failed, keeping the current one: %s",
			   a->source_name, err ? err->msg : "");
		if (err)
			err->msg[0] = '\0';
		r = 0;
		goto hit;
	}
	goto out;
hit:
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
	*ret = t;
out:
	pthread_mutex_unlock(&a->lock);
	return r;
}

int gcs_auth_rejected(struct gcs_auth *a, unsigned generation)
{
	if (a->src == SRC_NONE)
		return -EACCES;
	pthread_mutex_lock(&a->lock);
	if (a->cur && a->cur->generation == generation)
		a->force = 1;
	pthread_mutex_unlock(&a->lock);
	return 0;
}
