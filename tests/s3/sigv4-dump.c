/* SPDX-License-Identifier: MIT */
/*
 * sigv4-dump: prints, as one JSON object, the request the S3 plugin would
 * send for one operation at a fixed time: method, URL, every header line,
 * canonical request, string to sign and Authorization.  It calls the
 * plugin's own option parser, request builders and signer (s3_conf.c,
 * s3_req.c, sigv4.c), so tests can check the plugin's exact requests
 * against an independent implementation (botocore).
 *
 *   sigv4-dump [-o key=value]... URL EPOCH OP ARGS...
 *
 *   put KEY FILE              single PUT of FILE's bytes
 *   get KEY FIRST LAST        ranged GET
 *   head KEY | delete KEY
 *   list PREFIX [TOKEN [AFTER]] ListObjectsV2 page (max-keys 1000)
 *   create-mpu KEY
 *   upload-part KEY UPLOAD-ID PART FILE
 *   complete-mpu KEY UPLOAD-ID FILE   (FILE holds the XML body)
 *   abort-mpu KEY UPLOAD-ID
 *   list-parts KEY UPLOAD-ID [MARKER]
 *
 * Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN (never argv).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "pbuf.h"
#include "pcodec.h"
#include "pdigest.h"
#include "s3_conf.h"
#include "s3_creds.h"
#include "s3_req.h"

#define MAX_OPTS 32

static int usage(void)
{
	fprintf(stderr,
		"usage: sigv4-dump [-o key=value]... URL EPOCH OP ARGS...\n");
	return 2;
}

static int slurp(const char *path, struct pbuf *out)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		pbuf_add(out, buf, (size_t)n);
	close(fd);
	return n < 0 ? -EIO : (out->failed ? -ENOMEM : 0);
}

static int num(const char *s, uint64_t *v)
{
	return pcodec_parse_u64(s, UINT64_MAX, v);
}

/* Builds op for argv (after OP); body receives the payload, if any. */
static int build(struct s3_op *op, struct s3 *s3, time_t now, int argc,
		 char **argv, struct pbuf *body)
{
	const char *what = argv[0];
	uint8_t md5[16], sha[32];
	uint64_t a, b;

#define NEED(n) do { if (argc != (n)) return -EINVAL; } while (0)
	if (!strcmp(what, "put")) {
		NEED(3);
		if (slurp(argv[2], body) < 0)
			return -EIO;
		pdigest_md5(body->buf ? body->buf : "", body->len, md5);
		pdigest_sha256(body->buf ? body->buf : "", body->len, sha);
		if (s3_req_put(op, s3, argv[1], md5, sha, now) < 0)
			return -ENOMEM;
		pcodec_hex(op->payload_hash, sha, 32);
	} else if (!strcmp(what, "get")) {
		NEED(4);
		if (num(argv[2], &a) || num(argv[3], &b))
			return -EINVAL;
		return s3_req_get(op, s3, argv[1], a, b);
	} else if (!strcmp(what, "head")) {
		NEED(2);
		return s3_req_head(op, s3, argv[1]);
	} else if (!strcmp(what, "delete")) {
		NEED(2);
		return s3_req_delete(op, s3, argv[1]);
	} else if (!strcmp(what, "list")) {
		if (argc < 2 || argc > 4)
			return -EINVAL;
		return s3_req_list(op, s3, argv[1], argc >= 3 ? argv[2] : NULL,
				   argc == 4 ? argv[3] : NULL, 1000);
	} else if (!strcmp(what, "create-mpu")) {
		NEED(2);
		return s3_req_create_mpu(op, s3, argv[1], now);
	} else if (!strcmp(what, "upload-part")) {
		NEED(5);
		if (num(argv[3], &a) || slurp(argv[4], body) < 0)
			return -EINVAL;
		pdigest_md5(body->buf ? body->buf : "", body->len, md5);
		pdigest_sha256(body->buf ? body->buf : "", body->len, sha);
		if (s3_req_upload_part(op, s3, argv[1], argv[2], (unsigned)a,
				       md5, sha) < 0)
			return -ENOMEM;
		pcodec_hex(op->payload_hash, sha, 32);
	} else if (!strcmp(what, "complete-mpu")) {
		NEED(4);
		if (slurp(argv[3], body) < 0)
			return -EIO;
		if (s3_req_complete_mpu(op, s3, argv[1], argv[2]) < 0)
			return -ENOMEM;
		pdigest_sha256(body->buf ? body->buf : "", body->len, sha);
		pcodec_hex(op->payload_hash, sha, 32);
	} else if (!strcmp(what, "abort-mpu")) {
		NEED(3);
		return s3_req_abort_mpu(op, s3, argv[1], argv[2]);
	} else if (!strcmp(what, "list-parts")) {
		if (argc != 3 && argc != 4)
			return -EINVAL;
		a = 0;
		if (argc == 4 && num(argv[3], &a))
			return -EINVAL;
		return s3_req_list_parts(op, s3, argv[1], argv[2], (unsigned)a);
	} else {
		return -EINVAL;
	}
#undef NEED
	return 0;
}

int main(int argc, char **argv)
{
	struct drgw_option opts[MAX_OPTS];
	struct drgw_backend_config cfg = { .struct_size = sizeof(cfg) };
	struct s3_signed sig = { 0 };
	struct pbuf body = PBUF_INIT;
	struct s3_credentials *cr;
	struct drgw_err err = { 0 };
	struct s3 s3 = { 0 };
	struct s3_op op;
	size_t nopt = 0;
	uint64_t epoch;
	json_t *out, *hdrs;
	int i = 1, r;

	while (i + 1 < argc && !strcmp(argv[i], "-o")) {
		char *eq = strchr(argv[i + 1], '=');

		if (!eq || nopt == MAX_OPTS)
			return usage();
		*eq = '\0';
		opts[nopt++] = (struct drgw_option){ argv[i + 1], eq + 1 };
		i += 2;
	}
	if (argc - i < 3 || num(argv[i + 1], &epoch))
		return usage();
	cfg.name = "dump";
	cfg.url = argv[i];
	cfg.options = opts;
	cfg.n_options = nopt;
	r = s3_conf_parse(&s3, &cfg, &err);
	if (r < 0) {
		fprintf(stderr, "sigv4-dump: %s\n", err.msg);
		return 1;
	}
	cr = s3_credentials_new(getenv("AWS_ACCESS_KEY_ID") ?: "",
				getenv("AWS_SECRET_ACCESS_KEY") ?: "",
				getenv("AWS_SESSION_TOKEN"), 0);
	memset(&op, 0, sizeof(op));
	r = cr ? build(&op, &s3, (time_t)epoch, argc - i - 2, argv + i + 2, &body) :
		 -ENOMEM;
	if (r < 0) {
		fprintf(stderr, "sigv4-dump: bad operation arguments\n");
		return usage();
	}
	if (!op.payload_hash[0])
		snprintf(op.payload_hash, sizeof(op.payload_hash), "%s",
			 SIGV4_EMPTY_SHA256);
	r = s3_op_sign(&s3, &op, cr, (time_t)epoch, &sig);
	if (r < 0) {
		fprintf(stderr, "sigv4-dump: signing failed: %s\n", strerror(-r));
		return 1;
	}
	hdrs = json_array();
	for (struct curl_slist *l = sig.headers; l; l = l->next)
		json_array_append_new(hdrs, json_string(l->data));
	out = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:s}",
			"method", op.method,
			"url", sig.url.buf,
			"headers", hdrs,
			"canonical_request", sig.sig.canonical_request.buf,
			"string_to_sign", sig.sig.string_to_sign.buf,
			"authorization", sig.sig.authorization.buf,
			"payload_hash", op.payload_hash);
	json_dumpf(out, stdout, JSON_INDENT(1));
	putchar('\n');
	json_decref(out);
	s3_signed_release(&sig);
	s3_op_release(&op);
	s3_credentials_unref(cr);
	pbuf_release(&body);
	s3_conf_release(&s3);
	return 0;
}
