/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the S3 plugin's pure parts: URL/option parsing, the AWS
 * shared-file reader (including session tokens longer than libinih's line
 * limit), the XML readers, part sizing, and the plugins/common encodings
 * and digests against their RFC test vectors.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "pbuf.h"
#include "pcodec.h"
#include "pdigest.h"
#include "s3_conf.h"
#include "s3_profile.h"
#include "s3_put.h"
#include "s3_xml.h"
#include "s3test.h"

static char tmpdir[] = "/tmp/drgw-s3-unit-XXXXXX";

static int conf(const char *url, const struct drgw_option *o, size_t n,
		struct s3 *s3, struct drgw_err *err)
{
	struct drgw_backend_config cfg = { .struct_size = sizeof(cfg) };

	cfg.name = "t";
	cfg.url = url;
	cfg.options = o;
	cfg.n_options = n;
	memset(s3, 0, sizeof(*s3));
	memset(err, 0, sizeof(*err));
	return s3_conf_parse(s3, &cfg, err);
}

static void write_file(const char *name, const char *text, char *path,
		       size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", tmpdir, name);
	f = fopen(path, "we");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_conf_defaults(void)
{
	struct s3 s3;
	struct drgw_err err;

	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	CHECK_INT(conf("s3://my-bucket/app/db/", NULL, 0, &s3, &err), 0);
	CHECK_STR(s3.bucket, "my-bucket");
	CHECK_STR(s3.prefix, "app/db/");
	CHECK_STR(s3.region, "us-east-1");
	CHECK_STR(s3.endpoint, "https://s3.us-east-1.amazonaws.com");
	CHECK_STR(s3.url, "s3://my-bucket/app/db");
	CHECK_INT(s3.virtual_host, 1);
	CHECK_INT(s3.part_size, 16 << 20);
	CHECK_INT(s3.concurrency, 4);
	CHECK_INT(s3.net.retry.max_attempts, 3);
	CHECK_INT(s3.net.tls_verify, 1);
	s3_conf_release(&s3);

	CHECK_INT(conf("s3://bkt", NULL, 0, &s3, &err), 0);
	CHECK_STR(s3.prefix, "");
	s3_conf_release(&s3);

	/* Dotted names break TLS wildcards: path style by default. */
	CHECK_INT(conf("s3://my.bucket", NULL, 0, &s3, &err), 0);
	CHECK_INT(s3.virtual_host, 0);
	s3_conf_release(&s3);

	setenv("AWS_DEFAULT_REGION", "eu-west-3", 1);
	CHECK_INT(conf("s3://bkt", NULL, 0, &s3, &err), 0);
	CHECK_STR(s3.region, "eu-west-3");
	s3_conf_release(&s3);
	setenv("AWS_REGION", "eu-central-1", 1);
	CHECK_INT(conf("s3://bkt", NULL, 0, &s3, &err), 0);
	CHECK_STR(s3.region, "eu-central-1");
	CHECK_STR(s3.endpoint, "https://s3.eu-central-1.amazonaws.com");
	s3_conf_release(&s3);
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
}

static void test_conf_options(void)
{
	struct drgw_option o[] = {
		{ "endpoint", "http://127.0.0.1:9000" },
		{ "region", "eu-west-1" },
		{ "part-size", "8M" },
		{ "upload-concurrency", "2" },
		{ "max-attempts", "5" },
		{ "storage-class", "STANDARD_IA" },
		{ "object-lock-mode", "governance" },
		{ "object-lock-retain-days", "30" },
		{ "checksum", "sha256" },
		{ "retry-base-ms", "10" },
		{ "retry-cap-ms", "50" },
	};
	struct drgw_option v6[] = { { "endpoint", "https://[::1]:8443/" },
				    { "addressing", "virtual" } };
	struct s3 s3;
	struct drgw_err err;

	CHECK_INT(conf("s3://bkt/p", o, sizeof(o) / sizeof(o[0]), &s3, &err), 0);
	CHECK_STR(s3.endpoint, "http://127.0.0.1:9000");
	CHECK_STR(s3.endpoint_host, "127.0.0.1:9000");
	CHECK_STR(s3.scheme, "http");
	CHECK_INT(s3.virtual_host, 0);
	CHECK_INT(s3.part_size, 8 << 20);
	CHECK_INT(s3.concurrency, 2);
	CHECK_INT(s3.net.retry.max_attempts, 5);
	CHECK_INT(s3.net.retry.base_ms, 10);
	CHECK_INT(s3.net.retry.cap_ms, 50);
	CHECK_STR(s3.storage_class, "STANDARD_IA");
	CHECK_STR(s3.lock_mode, "GOVERNANCE");
	CHECK_INT(s3.lock_days, 30);
	CHECK_INT(s3.checksum_sha256, 1);
	s3_conf_release(&s3);

	CHECK_INT(conf("s3://bkt", v6, 2, &s3, &err), 0);
	CHECK_STR(s3.endpoint_host, "[::1]:8443");
	CHECK_INT(s3.virtual_host, 1);
	s3_conf_release(&s3);
}

static void expect_invalid(const char *url, const char *k, const char *v,
			   const char *msg_part)
{
	struct drgw_option o = { k, v };
	struct s3 s3;
	struct drgw_err err;

	CHECK_INT(conf(url, k ? &o : NULL, k ? 1 : 0, &s3, &err), -EINVAL);
	if (!strstr(err.msg, msg_part)) {
		fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg,
			msg_part);
		s3test_failed_checks++;
	}
	CHECK(s3.bucket == NULL && s3.prefix == NULL);
}

static void test_conf_errors(void)
{
	expect_invalid("gs://bkt", NULL, NULL, "not an S3 URL");
	expect_invalid("s3://", NULL, NULL, "invalid S3 bucket name");
	expect_invalid("s3://b/c", NULL, NULL, "invalid S3 bucket name");
	expect_invalid("s3://bkt/a//b", NULL, NULL, "empty path segment");
	expect_invalid("s3://bkt", "regoin", "x", "unknown S3 option 'regoin'");
	expect_invalid("s3://bkt", "part-size", "4M", "part-size=4M");
	expect_invalid("s3://bkt", "part-size", "6G", "part-size=6G");
	expect_invalid("s3://bkt", "upload-concurrency", "0", "upload-concurrency=0");
	expect_invalid("s3://bkt", "max-attempts", "x", "max-attempts=x");
	expect_invalid("s3://bkt", "addressing", "dns", "addressing=dns");
	expect_invalid("s3://bkt", "endpoint", "ftp://h", "invalid S3 endpoint");
	expect_invalid("s3://bkt", "endpoint", "http://h/base", "no path");
	expect_invalid("s3://bkt", "tls-verify", "maybe", "tls-verify=maybe");
	expect_invalid("s3://bkt", "ca-bundle", "/nonexistent/ca.pem", "ca-bundle");
	expect_invalid("s3://bkt", "object-lock-mode", "GOVERNANCE", "go together");
	expect_invalid("s3://bkt", "checksum", "crc32", "checksum=crc32");
	expect_invalid("s3://bkt", "storage-class", "standard", "storage-class");
	/* The web identity token never travels in clear beyond loopback. */
	expect_invalid("s3://bkt", "sts-endpoint", "http://sts.amazonaws.com",
		       "plain http only to a loopback address");
	expect_invalid("s3://bkt", "sts-endpoint", "http://127.0.0.1.nip.io/",
		       "plain http only to a loopback address");
	expect_invalid("s3://bkt", "sts-endpoint", "sts.amazonaws.com",
		       "expected an https URL");
}

static void test_profiles(void)
{
	char creds[512], config[512], text[8192], token[3001];
	struct s3_profile p;
	struct s3 s3;
	struct drgw_err err;

	memset(token, 'T', 3000);
	token[3000] = '\0';
	snprintf(text, sizeof(text),
		 "# comment\n[default]\naws_access_key_id = AKDEFAULT\n"
		 "aws_secret_access_key=SKDEFAULT\n"
		 "[prod]\r\naws_access_key_id = AKPROD\r\n"
		 "aws_secret_access_key = SK/PROD=\r\n"
		 "aws_session_token = %s\r\n",
		 token);
	write_file("credentials", text, creds, sizeof(creds));
	write_file("config",
		   "[default]\nregion = us-west-2\n"
		   "[profile prod]\nregion = ap-south-1\n"
		   "s3 =\n  addressing_style = path\n"
		   "aws_access_key_id = IGNORED\n"
		   "[profile irsa]\nrole_arn = arn:aws:iam::1:role/r\n"
		   "web_identity_token_file = /var/run/token\n"
		   "[profile sso]\nsso_start_url = https://x\n",
		   config, sizeof(config));
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
	setenv("AWS_CONFIG_FILE", config, 1);

	CHECK_INT(s3_profile_load("prod", &p), 0);
	CHECK_INT(p.found, 1);
	CHECK_STR(p.access_key, "AKPROD");
	CHECK_STR(p.secret_key, "SK/PROD=");
	CHECK_INT(p.session_token ? strlen(p.session_token) : 0, 3000);
	CHECK_STR(p.region, "ap-south-1");
	s3_profile_release(&p);

	CHECK_INT(s3_profile_load("irsa", &p), 0);
	CHECK_STR(p.role_arn, "arn:aws:iam::1:role/r");
	CHECK_STR(p.web_identity_token_file, "/var/run/token");
	s3_profile_release(&p);

	CHECK_INT(s3_profile_load("sso", &p), 0);
	CHECK_STR(p.unsupported, "sso_start_url");
	s3_profile_release(&p);

	CHECK_INT(s3_profile_load("nope", &p), 0);
	CHECK_INT(p.found, 0);
	s3_profile_release(&p);

	/* Region falls back to the profile's. */
	CHECK_INT(conf("s3://bkt", NULL, 0, &s3, &err), 0);
	CHECK_STR(s3.region, "us-west-2");
	s3_conf_release(&s3);
	{
		struct drgw_option o = { "profile", "prod" };

		CHECK_INT(conf("s3://bkt", &o, 1, &s3, &err), 0);
		CHECK_STR(s3.region, "ap-south-1");
		s3_conf_release(&s3);
	}
	unlink(creds);
	unlink(config);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
}

static int count_cb(void *arg, const struct s3_xml_object *o)
{
	int *n = arg;

	if (*n == 0) {
		CHECK_STR(o->key, "p/a&b \xc3\xa9.db");
		CHECK_INT(o->size, 1234);
		CHECK_STR(o->etag, "9b2cf535f27731c974343645a3985328");
		CHECK_INT(o->mtime_ns, 1255369830000000000LL);
	}
	return ++*n == 100;
}

static void test_xml(void)
{
	static const char list[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://doc.s3.amazonaws.com/2006-03-01/\">"
		"<Name>bkt</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount>"
		"<IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>1ueG+cx/LP=</NextContinuationToken>"
		"<Contents><Key>p/a&amp;b \xc3\xa9.db</Key>"
		"<LastModified>2009-10-12T17:50:30.000Z</LastModified>"
		"<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
		"<Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents>"
		"<Contents><Key>p/z</Key><Size>0</Size></Contents>"
		"</ListBucketResult>";
	static const char err_doc[] =
		"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
		"<Message>The specified key does not exist.</Message></Error>";
	static const char sts_err[] =
		"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
		"<Error><Type>Sender</Type><Code>AccessDenied</Code>"
		"<Message>Not authorized</Message></Error></ErrorResponse>";
	static const char init[] =
		"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
		"<UploadId>VXBsb2FkIElE+/=</UploadId></InitiateMultipartUploadResult>";
	struct pbuf tok = PBUF_INIT;
	char code[64], msg[128];
	int n = 0;

	CHECK_INT(s3_xml_list(list, strlen(list), count_cb, &n, &tok), 0);
	CHECK_INT(n, 2);
	CHECK_STR(pbuf_str(&tok), "1ueG+cx/LP=");
	CHECK_INT(s3_xml_list("<x", 2, count_cb, &n, &tok), -EIO);
	CHECK_INT(s3_xml_list(err_doc, strlen(err_doc), count_cb, &n, &tok), -EIO);
	CHECK_INT(s3_xml_error(err_doc, strlen(err_doc), code, sizeof(code),
			       msg, sizeof(msg)), 0);
	CHECK_STR(code, "NoSuchKey");
	CHECK_STR(msg, "The specified key does not exist.");
	CHECK_INT(s3_xml_error(sts_err, strlen(sts_err), code, sizeof(code),
			       msg, sizeof(msg)), 0);
	CHECK_STR(code, "AccessDenied");
	CHECK_INT(s3_xml_error(list, strlen(list), code, sizeof(code), msg,
			       sizeof(msg)), -ENOENT);
	pbuf_reset(&tok);
	CHECK_INT(s3_xml_upload_id(init, strlen(init), &tok), 0);
	CHECK_STR(pbuf_str(&tok), "VXBsb2FkIElE+/=");
	pbuf_release(&tok);
}

static int delete_err_cb(void *arg, const char *key, const char *code,
			 const char *msg)
{
	struct pbuf *b = arg;

	pbuf_addf(b, "%s=%s:%s;", key, code, msg);
	return 0;
}

/* What drgw prune reads: DeleteObjects results and Object Lock answers. */
static void test_xml_lock(void)
{
	const char *del =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Deleted><Key>p/a</Key></Deleted>"
		"<Error><Key>p/b &amp; c</Key><Code>AccessDenied</Code>"
		"<Message>Access Denied</Message></Error></DeleteResult>";
	const char *cfg =
		"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>"
		"<Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>1</Years>"
		"<Days>2</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
	const char *bare = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled"
			   "</ObjectLockEnabled></ObjectLockConfiguration>";
	const char *ret = "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>"
			  "2026-12-04T12:16:22.763520545Z</RetainUntilDate></Retention>";
	const char *hold_on = "<LegalHold><Status>ON</Status></LegalHold>";
	const char *hold_off = "<LegalHold><Status>OFF</Status></LegalHold>";
	struct s3_xml_lock_config lc;
	struct pbuf errs = PBUF_INIT;
	int64_t until;
	int on = -1;

	CHECK_INT(s3_xml_delete_errors(del, strlen(del), delete_err_cb, &errs), 0);
	CHECK_STR(pbuf_str(&errs), "p/b & c=AccessDenied:Access Denied;");
	CHECK_INT(s3_xml_delete_errors(cfg, strlen(cfg), delete_err_cb, &errs),
		  -EIO);
	pbuf_release(&errs);
	CHECK_INT(s3_xml_object_lock(cfg, strlen(cfg), &lc), 0);
	CHECK(lc.enabled && lc.days == 367);
	CHECK_STR(lc.mode, "COMPLIANCE");
	CHECK_INT(s3_xml_object_lock(bare, strlen(bare), &lc), 0);
	CHECK(lc.enabled && lc.days == 0 && !lc.mode[0]);
	CHECK_INT(s3_xml_retention(ret, strlen(ret), &until), 0);
	CHECK(until == 1796386582763520545LL);
	CHECK_INT(s3_xml_legal_hold(hold_on, strlen(hold_on), &on), 0);
	CHECK_INT(on, 1);
	CHECK_INT(s3_xml_legal_hold(hold_off, strlen(hold_off), &on), 0);
	CHECK_INT(on, 0);
	CHECK_INT(s3_xml_legal_hold(ret, strlen(ret), &on), -EIO);
}

static void test_part_size(void)
{
	const uint64_t mib = 1 << 20;
	uint64_t p;

	CHECK_INT(s3_part_size(40 * mib, 5 * mib, 0), 5 * mib);
	CHECK_INT(s3_part_size(1000 * mib, 16 * mib, 0), 16 * mib);
	p = s3_part_size(1ULL << 40, 16 * mib, 0);
	CHECK(p % mib == 0 && p > 16 * mib);
	CHECK(((1ULL << 40) + p - 1) / p <= 1442);
	p = s3_part_size(1ULL << 40, 16 * mib, 1);
	CHECK(((1ULL << 40) + p - 1) / p <= 705);
	CHECK_INT(s3_part_size(20ULL << 40, 16 * mib, 0), 0);
}

static void test_codec(void)
{
	static const struct {
		const char *in, *out;
	} b64[] = {
		{ "", "" },	      { "f", "Zg==" },	   { "fo", "Zm8=" },
		{ "foo", "Zm9v" },    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	struct pbuf b = PBUF_INIT;
	char out[64], raw[16];
	uint64_t v;
	int64_t ns;
	size_t n;

	for (size_t i = 0; i < sizeof(b64) / sizeof(b64[0]); i++) {
		pcodec_base64(out, b64[i].in, strlen(b64[i].in));
		CHECK_STR(out, b64[i].out);
		CHECK_INT(pcodec_unbase64(raw, sizeof(raw), b64[i].out,
					  strlen(b64[i].out), &n), 0);
		CHECK_INT(n, strlen(b64[i].in));
		CHECK(!memcmp(raw, b64[i].in, n));
	}
	CHECK_INT(pcodec_unbase64(raw, sizeof(raw), "Zm9=v", 5, &n), -EINVAL);
	CHECK_INT(pcodec_unbase64(raw, 2, "Zm9v", 4, &n), -ENOBUFS);

	pcodec_uri_encode(&b, "a b/c~d+e=f\xe2\x82\xac", 14, 1);
	CHECK_STR(pbuf_str(&b), "a%20b/c~d%2Be%3Df%E2%82%AC");
	pbuf_reset(&b);
	pcodec_uri_encode(&b, "a/b", 3, 0);
	CHECK_STR(pbuf_str(&b), "a%2Fb");
	pbuf_reset(&b);
	CHECK_INT(pcodec_uri_decode(&b, "a%2Fb%e2%82%AC+", 15), 0);
	CHECK_STR(pbuf_str(&b), "a/b\xe2\x82\xac+");
	pbuf_reset(&b);
	CHECK_INT(pcodec_uri_decode(&b, "a%2", 3), -EINVAL);
	pbuf_release(&b);

	CHECK_INT(pcodec_parse_size("16M", &v), 0);
	CHECK_INT(v, 16 << 20);
	CHECK_INT(pcodec_parse_size("5GiB", &v), 0);
	CHECK_INT(v, 5ULL << 30);
	CHECK_INT(pcodec_parse_size("123", &v), 0);
	CHECK_INT(v, 123);
	CHECK_INT(pcodec_parse_size("12X", &v), -EINVAL);
	CHECK_INT(pcodec_parse_size("-1", &v), -EINVAL);
	CHECK_INT(pcodec_parse_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	CHECK_INT(pcodec_parse_u64("", 10, &v), -EINVAL);
	CHECK_INT(pcodec_parse_u64("11", 10, &v), -ERANGE);

	CHECK_INT(pcodec_parse_rfc3339("2013-05-24T00:00:00Z", &ns), 0);
	CHECK_INT(ns, 1369353600LL * 1000000000);
	CHECK_INT(pcodec_parse_rfc3339("2009-10-12T17:50:30.123+00:00", &ns), 0);
	CHECK_INT(ns, 1255369830123000000LL);
	CHECK_INT(pcodec_parse_rfc3339("2009-10-12 17:50", &ns), -EINVAL);
	/* The last second int64_t ns hold, then one past it (UB before). */
	CHECK_INT(pcodec_parse_rfc3339("2262-04-11T23:47:15.999999999Z", &ns), 0);
	CHECK_INT(ns, 9223372035999999999LL);
	CHECK_INT(pcodec_parse_rfc3339("2262-04-11T23:47:16Z", &ns), -EINVAL);
}

static void test_digest(void)
{
	uint8_t d[32];
	char hex[65];

	pdigest_md5("", 0, d);
	pcodec_hex(hex, d, 16);
	CHECK_STR(hex, "d41d8cd98f00b204e9800998ecf8427e");
	pdigest_sha256("abc", 3, d);
	pcodec_hex(hex, d, 32);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* RFC 4231 test case 2 */
	pdigest_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
	pcodec_hex(hex, d, 32);
	CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* RFC 3720 B.4 check value, and chaining */
	CHECK_INT(pdigest_crc32c(0, "123456789", 9), 0xe3069283u);
	CHECK_INT(pdigest_crc32c(pdigest_crc32c(0, "1234", 4), "56789", 5),
		  0xe3069283u);
	{
		uint8_t zeros[32] = { 0 };

		CHECK_INT(pdigest_crc32c(0, zeros, 32), 0x8a9136aau);
	}
}

static void test_pbuf(void)
{
	struct pbuf b = PBUF_INIT;
	char *s;
	size_t n;

	CHECK_STR(pbuf_str(&b), "");
	for (int i = 0; i < 1000; i++)
		pbuf_addf(&b, "%d,", i);
	CHECK(b.len > 3000 && !strncmp(b.buf, "0,1,2,", 6));
	s = pbuf_detach(&b, &n);
	CHECK(s && strlen(s) == n);
	free(s);
	CHECK(b.buf == NULL);
	s = pbuf_detach(&b, &n);
	CHECK_STR(s, "");
	free(s);
}

int main(void)
{
	struct s3test_totals t = { 0 };

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	/* Keep the caller's AWS setup out of the tests. */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	unsetenv("AWS_PROFILE");
	RUN(&t, test_conf_defaults);
	RUN(&t, test_conf_options);
	RUN(&t, test_conf_errors);
	RUN(&t, test_profiles);
	RUN(&t, test_xml);
	RUN(&t, test_xml_lock);
	RUN(&t, test_part_size);
	RUN(&t, test_codec);
	RUN(&t, test_digest);
	RUN(&t, test_pbuf);
	rmdir(tmpdir);
	return s3test_done(&t);
}
