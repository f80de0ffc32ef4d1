/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the GCS plugin's pure parts: URL and option parsing, the
 * JSON readers and writers, the RS256 JWT (verified with OpenSSL against
 * a key made here), the choice of credential source (no network), the
 * resumable-upload helpers and retry classification, and the
 * plugins/common additions (base64url, repeated headers).
 */
#define TEST_MAIN
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "gcs_auth.h"
#include "gcs_conf.h"
#include "gcs_json.h"
#include "gcs_jwt.h"
#include "gcs_put.h"
#include "gcs_req.h"
#include "pcodec.h"
#include "phttp.h"
#include "test.h"

/* A string literal and its length, for the parsers' (text, len) pairs. */
#define S(lit) (lit), strlen(lit)

static char tmpdir[] = "/tmp/drgw-gcs-unit-XXXXXX";

/* The environment variables the plugin reads; cleared before each test
 * that depends on them. */
static const char *const env_vars[] = {
	"STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS",
	"GCE_METADATA_HOST", "CLOUDSDK_CONFIG", "HOME",
};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(*env_vars); i++)
		unsetenv(env_vars[i]);
	/* No gcloud file may leak in from the machine running the tests. */
	setenv("HOME", tmpdir, 1);
}

static int conf(const char *url, const struct drgw_option *o, size_t n,
		struct gcs *g, struct drgw_err *err)
{
	struct drgw_backend_config cfg = { .struct_size = sizeof(cfg) };

	cfg.name = "t";
	cfg.url = url;
	cfg.options = o;
	cfg.n_options = n;
	memset(g, 0, sizeof(*g));
	memset(err, 0, sizeof(*err));
	return gcs_conf_parse(g, &cfg, err);
}

static int conf1(const char *url, const char *k, const char *v, struct gcs *g,
		 struct drgw_err *err)
{
	struct drgw_option o = { k, v };

	return conf(url, &o, 1, g, err);
}

static void write_file(const char *name, const char *text, char *path,
		       size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", tmpdir, name);
	f = fopen(path, "we");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

TEST(conf_defaults)
{
	struct gcs g;
	struct drgw_err err;

	clear_env();
	CHECK_OK(conf("gcs://my-bucket/app/db/", NULL, 0, &g, &err));
	CHECK_STR(g.bucket, "my-bucket");
	CHECK_STR(g.prefix, "app/db/");
	CHECK_STR(g.url, "gcs://my-bucket/app/db");
	CHECK_STR(g.endpoint, "https://storage.googleapis.com");
	CHECK_INT(g.custom_endpoint, ==, 0);
	CHECK_INT(g.chunk_size, ==, 16 << 20);
	CHECK_INT(g.net.retry.max_attempts, ==, 4);
	CHECK_INT(g.net.tls_verify, ==, 1);
	CHECK(!gcs_protected(&g));
	gcs_conf_release(&g);

	CHECK_OK(conf("gcs://bkt", NULL, 0, &g, &err));
	CHECK_STR(g.prefix, "");
	CHECK_STR(g.url, "gcs://bkt");
	gcs_conf_release(&g);

	CHECK_OK(conf("gcs://bkt//a/b//", NULL, 0, &g, &err));
	CHECK_STR(g.prefix, "a/b/");
	gcs_conf_release(&g);

	/* Dotted names may be long; each part at most 63. */
	CHECK_OK(conf("gcs://example.com.backups/x", NULL, 0, &g, &err));
	gcs_conf_release(&g);
}

TEST(conf_bad_urls)
{
	static const char *const bad[] = {
		"s3://bucket", "gcs://", "gcs://ab", "gcs://Upper", "gcs://-dash",
		"gcs://dash-", "gcs://sp ace", "gcs://a/b//c",
		"gcs://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	struct gcs g;
	struct drgw_err err;

	clear_env();
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CHECK_INT(conf(bad[i], NULL, 0, &g, &err), ==, -EINVAL);
		CHECK(err.msg[0]);
	}
	CHECK_INT(conf1("gcs://b12", "nope", "1", &g, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.msg, "unknown GCS option 'nope' (known: endpoint, credentials-file, access-token-file, metadata-host, token-uri, chunk-size, max-attempts");
}

TEST(conf_options)
{
	struct drgw_option o[] = {
		{ "endpoint", "http://127.0.0.1:4443/" },
		{ "chunk-size", "512K" },
		{ "max-attempts", "7" },
		{ "tls-verify", "off" },
		{ "temporary-hold", "on" },
		{ "retention-mode", "locked" },
		{ "retain-days", "30" },
		{ "retry-base-ms", "20" },
		{ "retry-cap-ms", "10" },
		{ "metadata-host", "http://127.0.0.1:8080" },
		{ "token-uri", "http://127.0.0.1:9/token" },
		{ "credentials-file", "/k.json" },
		{ "access-token-file", "/t" },
	};
	struct gcs g;
	struct drgw_err err;

	clear_env();
	CHECK_OK(conf("gcs://bkt/p", o, sizeof(o) / sizeof(*o), &g, &err));
	CHECK_STR(g.endpoint, "http://127.0.0.1:4443");
	CHECK_INT(g.custom_endpoint, ==, 1);
	CHECK_INT(g.chunk_size, ==, 512 << 10);
	CHECK_INT(g.net.retry.max_attempts, ==, 7);
	CHECK_INT(g.net.tls_verify, ==, 0);
	CHECK_INT(g.temporary_hold, ==, 1);
	CHECK_STR(g.retention_mode, "Locked");
	CHECK_INT(g.retain_days, ==, 30);
	/* The cap is raised to the base rather than refused. */
	CHECK_INT(g.net.retry.cap_ms, ==, 20);
	CHECK_STR(g.metadata_host, "127.0.0.1:8080");
	CHECK_STR(g.token_uri, "http://127.0.0.1:9/token");
	CHECK_STR(g.credentials_file, "/k.json");
	CHECK_STR(g.access_token_file, "/t");
	CHECK(gcs_protected(&g));
	gcs_conf_release(&g);
}

TEST(conf_bad_options)
{
	static const struct {
		const char *k, *v, *msg;
	} bad[] = {
		{ "chunk-size", "300K", "multiple of 256K" },
		{ "chunk-size", "128K", "multiple of 256K" },
		{ "chunk-size", "2G", "multiple of 256K" },
		{ "max-attempts", "0", "from 1 to 20" },
		{ "max-attempts", "3x", "from 1 to 20" },
		{ "tls-verify", "maybe", "on or off" },
		{ "endpoint", "ftp://x", "expected http(s)://host[:port]" },
		{ "endpoint", "https://x/storage/v1", "no path" },
		{ "metadata-host", "a b", "host[:port]" },
		{ "token-uri", "oauth2.googleapis.com", "expected an https URL" },
		/* Credentials never travel in clear beyond loopback. */
		{ "token-uri", "http://oauth2.googleapis.com/token", "plain http only to a loopback" },
		{ "token-uri", "http://127.evil.example/token", "plain http only to a loopback" },
		{ "retention-mode", "Locked", "go together" },
		{ "retain-days", "3", "go together" },
		{ "ca-bundle", "/nonexistent/ca.pem", "cannot read" },
		{ "credentials-file", "", "empty path" },
	};
	struct gcs g;
	struct drgw_err err;

	clear_env();
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CHECK_INT(conf1("gcs://bkt", bad[i].k, bad[i].v, &g, &err), ==,
			  -EINVAL);
		CHECK_CONTAINS(err.msg, bad[i].msg);
	}
	{
		struct drgw_option o[] = { { "retention-mode", "Forever" },
					   { "retain-days", "3" } };

		CHECK_INT(conf("gcs://bkt", o, 2, &g, &err), ==, -EINVAL);
		CHECK_CONTAINS(err.msg, "expected Unlocked or Locked");
	}
}

TEST(conf_emulator_host)
{
	struct gcs g;
	struct drgw_err err;

	clear_env();
	setenv("STORAGE_EMULATOR_HOST", "localhost:9023", 1);
	CHECK_OK(conf("gcs://bkt", NULL, 0, &g, &err));
	CHECK_STR(g.endpoint, "http://localhost:9023");
	CHECK_INT(g.custom_endpoint, ==, 1);
	gcs_conf_release(&g);

	setenv("STORAGE_EMULATOR_HOST", "https://emu.example:8443/", 1);
	CHECK_OK(conf("gcs://bkt", NULL, 0, &g, &err));
	CHECK_STR(g.endpoint, "https://emu.example:8443");
	gcs_conf_release(&g);

	/* endpoint= wins. */
	CHECK_OK(conf1("gcs://bkt", "endpoint", "http://127.0.0.1:1", &g, &err));
	CHECK_STR(g.endpoint, "http://127.0.0.1:1");
	gcs_conf_release(&g);

	setenv("STORAGE_EMULATOR_HOST", "http://x/path", 1);
	CHECK_INT(conf("gcs://bkt", NULL, 0, &g, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.msg, "STORAGE_EMULATOR_HOST");
	unsetenv("STORAGE_EMULATOR_HOST");
}

TEST(json_errors)
{
	char reason[64], msg[256];
	const char *api =
		"{\"error\":{\"code\":403,\"message\":\"x@p.iam does not have storage.objects.get access.\","
		"\"errors\":[{\"message\":\"other\",\"domain\":\"global\",\"reason\":\"forbidden\"}]}}";
	const char *oauth = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}";
	const char *text = "\nInvalid request.  According to the Content-Range header,\nsecond line";

	gcs_json_error(api, strlen(api), reason, sizeof(reason), msg, sizeof(msg));
	CHECK_STR(reason, "forbidden");
	CHECK_STR(msg, "x@p.iam does not have storage.objects.get access.");
	gcs_json_error(oauth, strlen(oauth), reason, sizeof(reason), msg, sizeof(msg));
	CHECK_STR(reason, "invalid_grant");
	CHECK_STR(msg, "Invalid JWT Signature.");
	gcs_json_error(text, strlen(text), reason, sizeof(reason), msg, sizeof(msg));
	CHECK_STR(reason, "");
	CHECK_STR(msg, "Invalid request.  According to the Content-Range header,");
	gcs_json_error(S(""), reason, sizeof(reason), msg, sizeof(msg));
	CHECK_STR(msg, "");
	/* Control characters never reach a log line; output is cut. */
	gcs_json_error(S("{\"error\":{\"message\":\"a\\nb\\u0007c\"}}"), reason,
		       sizeof(reason), msg, 4);
	CHECK_STR(msg, "a b");
}

TEST(json_object)
{
	struct gcs_object o;
	const char *s =
		"{\"kind\":\"storage#object\",\"name\":\"p/k\",\"size\":\"18446744073709551615\","
		"\"generation\":\"1700000000000001\",\"updated\":\"2026-11-25T23:31:27.509Z\","
		"\"crc32c\":\"yZRlqg==\",\"md5Hash\":\"XUFAKrxLKna5cZ2REBfFkg==\"}";

	CHECK_OK(gcs_json_object(s, strlen(s), &o));
	CHECK_STR(o.name, "p/k");
	CHECK(o.size == UINT64_MAX);
	CHECK_STR(o.generation, "1700000000000001");
	CHECK_INT(o.updated_ns, ==, 1795649487509000000LL);
	CHECK_STR(o.crc32c, "yZRlqg==");
	CHECK_STR(o.md5, "XUFAKrxLKna5cZ2REBfFkg==");
	/* Integers work too; missing digests stay empty. */
	CHECK_OK(gcs_json_object(S("{\"name\":\"a\",\"size\":5,\"generation\":7}"), &o));
	CHECK_INT(o.size, ==, 5);
	CHECK_STR(o.generation, "7");
	CHECK_STR(o.md5, "");
	CHECK_INT(gcs_json_object(S("{\"name\":\"a\"}"), &o), ==, -EIO);
	CHECK_INT(gcs_json_object(S("{\"name\":\"a\",\"size\":\"-1\"}"), &o), ==, -EIO);
	CHECK_INT(gcs_json_object(S("[]"), &o), ==, -EIO);
	CHECK_INT(gcs_json_object(S("not json"), &o), ==, -EIO);
}

/* What drgw prune reads: holds, retention and bucket policies. */
TEST(json_locks)
{
	struct gcs_object o;
	uint64_t period;
	int locked;

	CHECK_OK(gcs_json_object(S("{\"name\":\"a\",\"size\":\"1\"}"), &o));
	CHECK(!o.held && o.retain_until_ns == 0);
	CHECK_OK(gcs_json_object(S("{\"name\":\"a\",\"size\":\"1\","
				   "\"eventBasedHold\":true,"
				   "\"retentionExpirationTime\":\"2030-01-01T00:00:00Z\","
				   "\"retention\":{\"mode\":\"Unlocked\","
				   "\"retainUntilTime\":\"2029-01-01T00:00:00Z\"}}"),
				 &o));
	CHECK(o.held);
	CHECK_INT(o.retain_until_ns, ==, 1893456000000000000LL);
	CHECK_OK(gcs_json_object(S("{\"name\":\"a\",\"size\":\"1\","
				   "\"temporaryHold\":false,"
				   "\"retention\":{\"retainUntilTime\":\"soon\"}}"),
				 &o));
	CHECK(!o.held && o.retain_until_ns == INT64_MAX);
	CHECK_OK(gcs_json_bucket_retention(S("{\"name\":\"b\",\"retentionPolicy\":"
					     "{\"retentionPeriod\":\"86400\","
					     "\"isLocked\":true}}"),
					   &period, &locked));
	CHECK(period == 86400 && locked == 1);
	CHECK_OK(gcs_json_bucket_retention(S("{\"name\":\"b\"}"), &period,
					   &locked));
	CHECK(period == 0 && locked == 0);
	CHECK_INT(gcs_json_bucket_retention(S("{\"retentionPolicy\":7}"), &period,
					    &locked), ==, -EIO);
}

struct names {
	struct pbuf all;
	int stop_at;
	int seen;
};

static int on_item(void *arg, const struct gcs_object *o)
{
	struct names *n = arg;

	pbuf_addf(&n->all, "%s;", o->name);
	return ++n->seen == n->stop_at;
}

TEST(json_list)
{
	const char *page =
		"{\"kind\":\"storage#objects\",\"nextPageToken\":\"CgRwL2Iy\","
		"\"items\":[{\"name\":\"p/a\",\"size\":\"1\"},{\"name\":\"p/b\",\"size\":\"2\"}]}";
	struct pbuf next = PBUF_INIT;
	struct names n = { PBUF_INIT, 0, 0 };

	CHECK_OK(gcs_json_list(page, strlen(page), on_item, &n, &next));
	CHECK_STR(pbuf_str(&n.all), "p/a;p/b;");
	CHECK_STR(pbuf_str(&next), "CgRwL2Iy");
	/* An empty last page has neither items nor a token. */
	CHECK_OK(gcs_json_list(S("{\"kind\":\"storage#objects\"}"), on_item, &n, &next));
	CHECK_STR(pbuf_str(&next), "");
	pbuf_reset(&n.all);
	n.stop_at = 1;
	n.seen = 0;
	CHECK_INT(gcs_json_list(page, strlen(page), on_item, &n, &next), ==, 1);
	CHECK_STR(pbuf_str(&n.all), "p/a;");
	CHECK_INT(gcs_json_list(S("{\"items\":{}}"), on_item, &n, &next), ==, -EIO);
	CHECK_INT(gcs_json_list(S("{\"items\":[{\"name\":\"x\"}]}"), on_item, &n, &next), ==, -EIO);
	pbuf_release(&next);
	pbuf_release(&n.all);
}

TEST(json_token)
{
	struct pbuf t = PBUF_INIT;
	int64_t exp = -1;
	const char *ok = "{\"access_token\":\"ya29.a0-_~+/=\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";

	CHECK_OK(gcs_json_token(ok, strlen(ok), &t, &exp));
	CHECK_STR(pbuf_str(&t), "ya29.a0-_~+/=");
	CHECK_INT(exp, ==, 3599);
	CHECK_OK(gcs_json_token(S("{\"access_token\":\"x\",\"expires_in\":\"60\"}"), &t, &exp));
	CHECK_INT(exp, ==, 60);
	CHECK_OK(gcs_json_token(S("{\"access_token\":\"x\"}"), &t, &exp));
	CHECK_INT(exp, ==, 0);
	CHECK_INT(gcs_json_token(S("{\"access_token\":\"a b\"}"), &t, &exp), ==, -EIO);
	CHECK_INT(gcs_json_token(S("{\"access_token\":\"a\\r\\nX: y\"}"), &t, &exp), ==, -EIO);
	CHECK_INT(gcs_json_token(S("{\"access_token\":\"a\",\"token_type\":\"MAC\"}"), &t, &exp), ==, -EIO);
	CHECK_INT(gcs_json_token(S("{\"id_token\":\"a\"}"), &t, &exp), ==, -EIO);
	pbuf_release_secret(&t);
}

TEST(json_key_file)
{
	struct gcs_key_file k;
	char why[256];
	const char *sa = "{\"type\":\"service_account\",\"client_email\":\"sa@p.iam.gserviceaccount.com\","
			 "\"private_key_id\":\"kid1\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\n\","
			 "\"token_uri\":\"https://oauth2.googleapis.com/token\"}";
	const char *user = "{\"type\":\"authorized_user\",\"client_id\":\"cid\",\"client_secret\":\"s\","
			   "\"refresh_token\":\"r\"}";

	CHECK_OK(gcs_json_key_file(sa, strlen(sa), &k, why, sizeof(why)));
	CHECK_STR(k.type, "service_account");
	CHECK_STR(k.client_email, "sa@p.iam.gserviceaccount.com");
	CHECK_STR(k.private_key_id, "kid1");
	CHECK_STR(k.private_key, "-----BEGIN PRIVATE KEY-----\n");
	gcs_key_file_release(&k);
	CHECK_OK(gcs_json_key_file(user, strlen(user), &k, why, sizeof(why)));
	CHECK_STR(k.refresh_token, "r");
	gcs_key_file_release(&k);

	CHECK_INT(gcs_json_key_file(S("{\"type\":\"service_account\",\"client_email\":\"e\"}"),
				    &k, why, sizeof(why)), ==, -EINVAL);
	CHECK_STR(why, "no \"private_key\" in the service_account credentials");
	CHECK_INT(gcs_json_key_file(S("{\"type\":\"external_account\"}"), &k, why,
				    sizeof(why)), ==, -EINVAL);
	CHECK_CONTAINS(why, "credential type 'external_account' is not supported");
	CHECK_INT(gcs_json_key_file(S("["), &k, why, sizeof(why)), ==, -EINVAL);
	CHECK_STR(why, "not a JSON object");
}

TEST(json_upload_metadata)
{
	struct pbuf out = PBUF_INIT;
	struct gcs g = { 0 };

	CHECK_OK(gcs_json_upload_metadata(&g, "p/a b", 0, NULL, NULL, &out));
	CHECK_STR(pbuf_str(&out), "{\"name\":\"p/a b\",\"contentType\":\"application/octet-stream\"}");
	g.temporary_hold = g.event_based_hold = 1;
	g.retention_mode = "Unlocked";
	g.retain_days = 2;
	CHECK_OK(gcs_json_upload_metadata(&g, "k", 86400, "AAAAAA==", "md5", &out));
	CHECK_STR(pbuf_str(&out),
		  "{\"name\":\"k\",\"contentType\":\"application/octet-stream\",\"crc32c\":\"AAAAAA==\","
		  "\"md5Hash\":\"md5\",\"temporaryHold\":true,\"eventBasedHold\":true,"
		  "\"retention\":{\"mode\":\"Unlocked\",\"retainUntilTime\":\"1970-01-04T00:00:00Z\"}}");
	pbuf_release(&out);
}

/* Decodes unpadded base64url for the checks. */
static size_t unb64url(const char *in, size_t len, unsigned char *out,
		       size_t size)
{
	struct pbuf b = PBUF_INIT;
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		pbuf_addch(&b, in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i]);
	while (b.len % 4)
		pbuf_addch(&b, '=');
	CHECK_OK(pcodec_unbase64(out, size, b.buf, b.len, &n));
	pbuf_release(&b);
	return n;
}

static char *pem_of(EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *copy;
	long n;

	CHECK(bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1);
	n = BIO_get_mem_data(bio, &data);
	/* Not NUL-terminated: no strndup(), which ASan checks as a string. */
	copy = malloc((size_t)n + 1);
	CHECK(copy != NULL);
	memcpy(copy, data, (size_t)n);
	copy[n] = '\0';
	BIO_free(bio);
	return copy;
}

static EVP_PKEY *rsa_key(void)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);

	CHECK(key != NULL);
	return key;
}

TEST(jwt_rs256)
{
	EVP_PKEY *key = rsa_key(), *loaded = NULL;
	char *pem = pem_of(key);
	struct gcs_jwt_claims c = {
		.kid = "kid-1",
		.iss = "sa@p.iam.gserviceaccount.com",
		.scope = GCS_SCOPE_READ_WRITE,
		.aud = "https://oauth2.googleapis.com/token",
		.iat = 1700000000,
		.lifetime = GCS_JWT_LIFETIME,
	};
	struct pbuf jwt = PBUF_INIT;
	unsigned char part[1024], sig[512];
	const char *d1, *d2;
	EVP_MD_CTX *ctx;
	size_t n, sn;

	CHECK_OK(gcs_jwt_load_key(pem, strlen(pem), &loaded));
	CHECK_OK(gcs_jwt_sign(loaded, &c, &jwt));
	d1 = strchr(jwt.buf, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	CHECK(d1 && d2 && !strchr(d2 + 1, '.'));
	CHECK(!strpbrk(jwt.buf, "=+/"));

	n = unb64url(jwt.buf, (size_t)(d1 - jwt.buf), part, sizeof(part) - 1);
	part[n] = '\0';
	CHECK_STR((char *)part, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"kid-1\"}");
	n = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), part, sizeof(part) - 1);
	part[n] = '\0';
	CHECK_STR((char *)part,
		  "{\"iss\":\"sa@p.iam.gserviceaccount.com\","
		  "\"scope\":\"https://www.googleapis.com/auth/devstorage.read_write\","
		  "\"aud\":\"https://oauth2.googleapis.com/token\",\"iat\":1700000000,\"exp\":1700003600}");

	/* RSASSA-PKCS1-v1_5 with SHA-256 over "header.claims", checked with
	 * the original key. */
	sn = unb64url(d2 + 1, strlen(d2 + 1), sig, sizeof(sig));
	CHECK_INT(sn, ==, 256);
	ctx = EVP_MD_CTX_new();
	CHECK(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1);
	CHECK(EVP_DigestVerify(ctx, sig, sn, (const unsigned char *)jwt.buf,
			       (size_t)(d2 - jwt.buf)) == 1);
	/* One flipped byte of the claims fails. */
	jwt.buf[d1 - jwt.buf + 3] ^= 1;
	CHECK(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1);
	CHECK(EVP_DigestVerify(ctx, sig, sn, (const unsigned char *)jwt.buf,
			       (size_t)(d2 - jwt.buf)) != 1);
	EVP_MD_CTX_free(ctx);

	/* Lifetimes over Google's one hour are refused. */
	c.lifetime = GCS_JWT_LIFETIME + 1;
	CHECK_INT(gcs_jwt_sign(loaded, &c, &jwt), ==, -EINVAL);

	pbuf_release(&jwt);
	free(pem);
	EVP_PKEY_free(loaded);
	EVP_PKEY_free(key);
}

TEST(jwt_rejects_other_keys)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256"), *out = NULL;
	char *pem = pem_of(ec);
	BIO *bio = BIO_new(BIO_s_mem());
	EVP_PKEY *rsa = rsa_key();
	char *enc;
	long n;

	CHECK_INT(gcs_jwt_load_key(pem, strlen(pem), &out), ==, -EINVAL);
	CHECK_INT(gcs_jwt_load_key("garbage", 7, &out), ==, -EINVAL);
	/* An encrypted key fails at once instead of prompting. */
	CHECK(PEM_write_bio_PrivateKey(bio, rsa, EVP_aes_128_cbc(),
				       (unsigned char *)"pw", 2, NULL, NULL) == 1);
	n = BIO_get_mem_data(bio, &enc);
	CHECK_INT(gcs_jwt_load_key(enc, (size_t)n, &out), ==, -EINVAL);
	CHECK(out == NULL);
	BIO_free(bio);
	free(pem);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

/* Writes a service-account key file with a fresh RSA key. */
static void write_sa_key(const char *name, const char *email, char *path,
			 size_t size)
{
	EVP_PKEY *key = rsa_key();
	char *pem = pem_of(key);
	struct pbuf text = PBUF_INIT;

	pbuf_addf(&text, "{\"type\":\"service_account\",\"client_email\":\"%s\",\"private_key\":\"",
		  email);
	for (const char *p = pem; *p; p++) {
		if (*p == '\n')
			pbuf_adds(&text, "\\n");
		else
			pbuf_addch(&text, *p);
	}
	pbuf_adds(&text, "\"}");
	write_file(name, text.buf, path, size);
	pbuf_release(&text);
	free(pem);
	EVP_PKEY_free(key);
}

static int auth_source(const struct gcs_auth_config *cfg, char *out,
		       size_t size, struct drgw_err *err)
{
	struct gcs_auth *a = NULL;
	int r;

	memset(err, 0, sizeof(*err));
	r = gcs_auth_new(cfg, &a, err);
	if (r == 0) {
		snprintf(out, size, "%s", gcs_auth_source(a));
		gcs_auth_free(a);
	}
	return r;
}

TEST(auth_order)
{
	char a_key[512], b_key[512], src[600], want[600], gcloud[512];
	struct gcs_auth_config cfg = { .scope = GCS_SCOPE_READ_WRITE };
	struct drgw_err err;

	clear_env();
	write_sa_key("a.json", "a@p.iam.gserviceaccount.com", a_key, sizeof(a_key));
	write_sa_key("b.json", "b@p.iam.gserviceaccount.com", b_key, sizeof(b_key));

	/* Nothing configured: the metadata server. */
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	CHECK_STR(src, "metadata server metadata.google.internal");
	setenv("GCE_METADATA_HOST", "127.0.0.1:8080", 1);
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	CHECK_STR(src, "metadata server 127.0.0.1:8080");
	cfg.metadata_host = "127.0.0.1:9090";
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	CHECK_STR(src, "metadata server 127.0.0.1:9090");

	/* gcloud's file comes after the metadata-host option... */
	snprintf(gcloud, sizeof(gcloud), "%s/.config", tmpdir);
	CHECK(mkdir(gcloud, 0700) == 0);
	snprintf(gcloud, sizeof(gcloud), "%s/.config/gcloud", tmpdir);
	CHECK(mkdir(gcloud, 0700) == 0);
	snprintf(gcloud, sizeof(gcloud), "%s/.config/gcloud/application_default_credentials.json",
		 tmpdir);
	CHECK(link(a_key, gcloud) == 0);
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	CHECK_STR(src, "metadata server 127.0.0.1:9090");
	/* ... and before the metadata server, wherever GCE_METADATA_HOST
	 * puts it. */
	cfg.metadata_host = NULL;
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	snprintf(want, sizeof(want), "service account a@p.iam.gserviceaccount.com (gcloud application default credentials %s)",
		 gcloud);
	CHECK_STR(src, want);
	unsetenv("GCE_METADATA_HOST");

	setenv("GOOGLE_APPLICATION_CREDENTIALS", a_key, 1);
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	snprintf(want, sizeof(want), "service account a@p.iam.gserviceaccount.com (GOOGLE_APPLICATION_CREDENTIALS %s)",
		 a_key);
	CHECK_STR(src, want);

	cfg.credentials_file = b_key;
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	snprintf(want, sizeof(want), "service account b@p.iam.gserviceaccount.com (credentials-file %s)",
		 b_key);
	CHECK_STR(src, want);

	cfg.access_token_file = "/run/token";
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	CHECK_STR(src, "access-token-file /run/token");

	/* A custom endpoint without configured credentials: anonymous; a
	 * gcloud file does not count as configured. */
	cfg.access_token_file = cfg.credentials_file = NULL;
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	cfg.custom_endpoint = 1;
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	CHECK_STR(src, "none (custom endpoint without credentials)");
	unlink(gcloud);
	setenv("GOOGLE_APPLICATION_CREDENTIALS", b_key, 1);
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	CHECK_CONTAINS(src, "service account b@p");
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	setenv("GCE_METADATA_HOST", "127.0.0.1:1", 1);
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	CHECK_STR(src, "metadata server 127.0.0.1:1");
	unsetenv("GCE_METADATA_HOST");
}

TEST(auth_bad_files)
{
	char path[512], src[600];
	struct gcs_auth_config cfg = { .scope = GCS_SCOPE_READ_WRITE };
	struct drgw_err err;

	clear_env();
	cfg.credentials_file = "/nonexistent/key.json";
	CHECK_INT(auth_source(&cfg, src, sizeof(src), &err), ==, -EINVAL);
	CHECK_STR(err.msg, "gcs: cannot read credentials file /nonexistent/key.json: No such file or directory");

	write_file("bad.json", "{\"type\":\"service_account\",\"client_email\":\"e\",\"private_key\":\"SECRET\"}",
		   path, sizeof(path));
	cfg.credentials_file = path;
	CHECK_INT(auth_source(&cfg, src, sizeof(src), &err), ==, -EINVAL);
	CHECK_CONTAINS(err.msg, "private_key is not a PEM RSA private key");
	CHECK(!strstr(err.msg, "SECRET"));

	write_file("ext.json", "{\"type\":\"external_account\"}", path, sizeof(path));
	CHECK_INT(auth_source(&cfg, src, sizeof(src), &err), ==, -EINVAL);
	CHECK_CONTAINS(err.msg, "credential type 'external_account' is not supported");

	write_file("user.json", "{\"type\":\"authorized_user\",\"client_id\":\"cid.apps\","
				"\"client_secret\":\"s\",\"refresh_token\":\"r\"}",
		   path, sizeof(path));
	CHECK_OK(auth_source(&cfg, src, sizeof(src), &err));
	CHECK_CONTAINS(src, "authorized user cid.apps (credentials-file ");

	cfg.credentials_file = tmpdir;
	CHECK_INT(auth_source(&cfg, src, sizeof(src), &err), ==, -EINVAL);
	CHECK_CONTAINS(err.msg, "is not a regular file");
}

TEST(resumable_offsets)
{
	uint64_t off = 99;

	CHECK_OK(gcs_put_next_offset(NULL, &off));
	CHECK_INT(off, ==, 0);
	CHECK_OK(gcs_put_next_offset("bytes=0-262143", &off));
	CHECK_INT(off, ==, 262144);
	CHECK_OK(gcs_put_next_offset("bytes=0-0", &off));
	CHECK_INT(off, ==, 1);
	CHECK_INT(gcs_put_next_offset("bytes=1-5", &off), ==, -EIO);
	CHECK_INT(gcs_put_next_offset("bytes=0-", &off), ==, -EIO);
	CHECK_INT(gcs_put_next_offset("bytes=0-1x", &off), ==, -EIO);
	CHECK_INT(gcs_put_next_offset("bytes=0-18446744073709551615", &off), ==, -EIO);
}

static struct phttp_response response(long status, const char *headers,
				      const char *body)
{
	struct phttp_response r = { .status = status };

	pbuf_adds(&r.headers, headers);
	pbuf_adds(&r.body, body);
	return r;
}

TEST(retry_classification)
{
	static const struct {
		long status;
		const char *body;
		enum gcs_verdict v;
	} cases[] = {
		{ 503, "Invalid request.  According to the Content-Range header, the upload offset is 524288 byte(s), which exceeds already uploaded size of 262144 byte(s).",
		  GCS_OFFSET_MISMATCH },
		{ 503, "{\"error\":{\"code\":503}}", GCS_RETRY },
		{ 500, "", GCS_RETRY },
		{ 502, "", GCS_RETRY },
		{ 504, "", GCS_RETRY },
		{ 408, "", GCS_RETRY },
		{ 429, "", GCS_RETRY },
		{ 501, "", GCS_FINAL },
		{ 400, "", GCS_FINAL },
		{ 401, "", GCS_FINAL },
		{ 403, "", GCS_FINAL },
		{ 404, "", GCS_FINAL },
		{ 200, "", GCS_FINAL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct phttp_response r = response(cases[i].status, "", cases[i].body);

		CHECK_INT(gcs_classify(&r, 0), ==, cases[i].v);
		phttp_response_release(&r);
	}
	{
		struct phttp_response r = response(0, "", "");

		CHECK_INT(gcs_classify(&r, -ETIMEDOUT), ==, GCS_RETRY);
		CHECK_INT(gcs_classify(&r, -ECONNRESET), ==, GCS_RETRY);
		/* A down server fails fast. */
		CHECK_INT(gcs_classify(&r, -ECONNREFUSED), ==, GCS_FINAL);
		CHECK_INT(gcs_classify(&r, -EHOSTUNREACH), ==, GCS_FINAL);
		phttp_response_release(&r);
	}
}

TEST(status_errno)
{
	CHECK_INT(gcs_status_errno(400, "invalid", "Bad request"), ==, -EINVAL);
	CHECK_INT(gcs_status_errno(400, "invalid", "Provided CRC32C \"x\" doesn't match calculated CRC32C \"y\"."), ==, -EIO);
	CHECK_INT(gcs_status_errno(401, "authError", "Invalid Credentials"), ==, -EACCES);
	CHECK_INT(gcs_status_errno(403, "forbidden", ""), ==, -EACCES);
	CHECK_INT(gcs_status_errno(404, "notFound", "No such object: b/o"), ==, -ENOENT);
	CHECK_INT(gcs_status_errno(404, "notFound", "The specified bucket does not exist."), ==, -EINVAL);
	CHECK_INT(gcs_status_errno(408, "", ""), ==, -ETIMEDOUT);
	CHECK_INT(gcs_status_errno(410, "", ""), ==, -ENOENT);
	CHECK_INT(gcs_status_errno(412, "conditionNotMet", ""), ==, -EEXIST);
	CHECK_INT(gcs_status_errno(429, "rateLimitExceeded", ""), ==, -EAGAIN);
	CHECK_INT(gcs_status_errno(503, "backendError", ""), ==, -EAGAIN);
	CHECK_INT(gcs_status_errno(501, "", ""), ==, -EOPNOTSUPP);
	CHECK_INT(gcs_status_errno(302, "", ""), ==, -EIO);
}

TEST(common_base64url)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
		{ "\xfb\xff\xbf", "-_-_" },
	};
	char out[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		pcodec_base64url(out, v[i].in, strlen(v[i].in));
		CHECK_STR(out, v[i].out);
		CHECK(strlen(out) + 1 <= PCODEC_BASE64URL_SIZE(strlen(v[i].in)));
		CHECK(strlen(out) == (strlen(v[i].in) * 4 + 2) / 3);
	}
}

TEST(common_header_nth)
{
	struct phttp_response r = response(200,
		"HTTP/1.1 200 OK\r\nx-goog-hash: crc32c=AAAAAA==\r\n"
		"X-Goog-Hash:  md5=BBBB== \r\nx-goog-hashes: no\r\n\r\n", "");
	char v[64];

	CHECK_OK(phttp_header_nth(&r, "x-goog-hash", 0, v, sizeof(v)));
	CHECK_STR(v, "crc32c=AAAAAA==");
	CHECK_OK(phttp_header_nth(&r, "x-goog-hash", 1, v, sizeof(v)));
	CHECK_STR(v, "md5=BBBB==");
	CHECK_INT(phttp_header_nth(&r, "x-goog-hash", 2, v, sizeof(v)), ==, -ENOENT);
	/* The single-value lookup still finds the last one. */
	CHECK_OK(phttp_header(&r, "X-GOOG-HASH", v, sizeof(v)));
	CHECK_STR(v, "md5=BBBB==");
	CHECK_INT(phttp_header_nth(&r, "x-goog-hash", 0, v, 4), ==, -ENOBUFS);
	phttp_response_release(&r);
}

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

__attribute__((constructor)) static void setup(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(cleanup);
}
