/* SPDX-License-Identifier: MIT */
/*
 * libxml2 tree parsing of S3 and STS responses; see s3_xml.h.  Documents
 * are small (a listing page of 1000 keys is a few hundred KiB), so a DOM
 * is simpler than a SAX reader and costs nothing that matters.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "pcodec.h"
#include "s3_xml.h"

/* No network, no error spew on stderr; entities stay unexpanded. */
#define PARSE_FLAGS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void do_init(void)
{
	xmlInitParser();
}

void s3_xml_init(void)
{
	pthread_once(&init_once, do_init);
}

static xmlDocPtr parse(const char *xml, size_t len)
{
	if (len > INT32_MAX)
		return NULL;
	s3_xml_init();
	return xmlReadMemory(xml, (int)len, "s3.xml", NULL, PARSE_FLAGS);
}

static int is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE &&
	       !strcmp((const char *)n->name, name);
}

static xmlNode *child(const xmlNode *parent, const char *name)
{
	for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
		if (is(n, name))
			return n;
	return NULL;
}

/* Text of the child element "name", malloc()ed by libxml2 or NULL. */
static xmlChar *child_text(const xmlNode *parent, const char *name)
{
	xmlNode *n = child(parent, name);

	return n ? xmlNodeGetContent(n) : NULL;
}

static void copy_text(const xmlNode *parent, const char *name, char *buf,
		      size_t size)
{
	xmlChar *t = child_text(parent, name);

	snprintf(buf, size, "%s", t ? (const char *)t : "");
	xmlFree(t);
}

int s3_xml_error(const char *xml, size_t len, char *code, size_t code_size,
		 char *msg, size_t msg_size)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNode *root;
	int r = 0;

	if (!doc)
		return -EIO;
	root = xmlDocGetRootElement(doc);
	/* STS wraps its Error in an ErrorResponse. */
	if (is(root, "ErrorResponse"))
		root = child(root, "Error");
	if (!is(root, "Error")) {
		r = -ENOENT;
	} else {
		copy_text(root, "Code", code, code_size);
		copy_text(root, "Message", msg, msg_size);
	}
	xmlFreeDoc(doc);
	return r;
}

static void strip_quotes(char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		memmove(s, s + 1, n - 2);
		s[n - 2] = '\0';
	}
}

static int list_entry(xmlNode *c,
		      int (*fn)(void *arg, const struct s3_xml_object *o),
		      void *arg)
{
	xmlChar *key = child_text(c, "Key");
	xmlChar *size = child_text(c, "Size");
	xmlChar *mtime = child_text(c, "LastModified");
	char etag[256];
	struct s3_xml_object o = { 0 };
	int r = -EIO;

	copy_text(c, "ETag", etag, sizeof(etag));
	strip_quotes(etag);
	if (!key || !size ||
	    pcodec_parse_u64((const char *)size, UINT64_MAX, &o.size) < 0)
		goto out;
	if (!mtime || pcodec_parse_rfc3339((const char *)mtime, &o.mtime_ns) < 0)
		o.mtime_ns = 0;
	o.key = (const char *)key;
	o.etag = etag;
	r = fn(arg, &o);
out:
	xmlFree(key);
	xmlFree(size);
	xmlFree(mtime);
	return r;
}

int s3_xml_list(const char *xml, size_t len,
		int (*fn)(void *arg, const struct s3_xml_object *o), void *arg,
		struct pbuf *next_token)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNode *root;
	xmlChar *trunc = NULL, *tok = NULL;
	int r = 0;

	pbuf_reset(next_token);
	if (!doc)
		return -EIO;
	root = xmlDocGetRootElement(doc);
	if (!is(root, "ListBucketResult")) {
		r = -EIO;
		goto out;
	}
	trunc = child_text(root, "IsTruncated");
	if (trunc && !strcmp((const char *)trunc, "true")) {
		tok = child_text(root, "NextContinuationToken");
		/* Truncated without a token would make us loop forever. */
		if (!tok || !*tok) {
			r = -EIO;
			goto out;
		}
		if (pbuf_adds(next_token, (const char *)tok) < 0) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (xmlNode *c = root->children; c; c = c->next) {
		if (!is(c, "Contents"))
			continue;
		r = list_entry(c, fn, arg);
		if (r) {
			if (r > 0)
				r = 1;
			break;
		}
	}
out:
	xmlFree(trunc);
	xmlFree(tok);
	xmlFreeDoc(doc);
	return r;
}

int s3_xml_upload_id(const char *xml, size_t len, struct pbuf *upload_id)
{
	xmlDocPtr doc = parse(xml, len);
	xmlChar *id;
	int r = -EIO;

	if (!doc)
		return -EIO;
	id = child_text(xmlDocGetRootElement(doc), "UploadId");
	if (id && *id && is(xmlDocGetRootElement(doc),
			    "InitiateMultipartUploadResult"))
		r = pbuf_adds(upload_id, (const char *)id);
	xmlFree(id);
	xmlFreeDoc(doc);
	return r;
}

int s3_xml_list_parts(const char *xml, size_t len,
		      int (*fn)(void *arg, unsigned number, const char *etag,
				uint64_t size),
		      void *arg, unsigned *ret_next_marker)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNode *root;
	xmlChar *trunc = NULL, *marker = NULL;
	uint64_t v;
	int r = 0;

	if (!doc)
		return -EIO;
	root = xmlDocGetRootElement(doc);
	if (!is(root, "ListPartsResult")) {
		r = -EIO;
		goto out;
	}
	*ret_next_marker = 0;
	trunc = child_text(root, "IsTruncated");
	if (trunc && !strcmp((const char *)trunc, "true")) {
		marker = child_text(root, "NextPartNumberMarker");
		if (!marker ||
		    pcodec_parse_u64((const char *)marker, 10000, &v) < 0 ||
		    v == 0) {
			r = -EIO;
			goto out;
		}
		*ret_next_marker = (unsigned)v;
	}
	for (xmlNode *c = root->children; c && !r; c = c->next) {
		xmlChar *num, *size;
		char etag[256];
		uint64_t n, sz;

		if (!is(c, "Part"))
			continue;
		num = child_text(c, "PartNumber");
		size = child_text(c, "Size");
		copy_text(c, "ETag", etag, sizeof(etag));
		strip_quotes(etag);
		if (!num || !size ||
		    pcodec_parse_u64((const char *)num, 10000, &n) < 0 ||
		    pcodec_parse_u64((const char *)size, UINT64_MAX, &sz) < 0)
			r = -EIO;
		else
			r = fn(arg, (unsigned)n, etag, sz);
		xmlFree(num);
		xmlFree(size);
	}
out:
	xmlFree(trunc);
	xmlFree(marker);
	xmlFreeDoc(doc);
	return r;
}

int s3_xml_list_uploads(const char *xml, size_t len,
			int (*fn)(void *arg, const char *key,
				  const char *upload_id),
			void *arg, struct pbuf *next_key,
			struct pbuf *next_upload)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNode *root;
	xmlChar *trunc = NULL, *nk = NULL, *nu = NULL;
	int r = 0;

	if (!doc)
		return -EIO;
	pbuf_reset(next_key);
	pbuf_reset(next_upload);
	root = xmlDocGetRootElement(doc);
	if (!is(root, "ListMultipartUploadsResult")) {
		r = -EIO;
		goto out;
	}
	trunc = child_text(root, "IsTruncated");
	if (trunc && !strcmp((const char *)trunc, "true")) {
		nk = child_text(root, "NextKeyMarker");
		nu = child_text(root, "NextUploadIdMarker");
		if (!nk || !*nk) {
			r = -EIO;
			goto out;
		}
		pbuf_adds(next_key, (const char *)nk);
		pbuf_adds(next_upload, nu ? (const char *)nu : "");
		if (!pbuf_str(next_key) || !pbuf_str(next_upload)) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (xmlNode *c = root->children; c && !r; c = c->next) {
		xmlChar *key, *id;

		if (!is(c, "Upload"))
			continue;
		key = child_text(c, "Key");
		id = child_text(c, "UploadId");
		if (!key || !id || !*id)
			r = -EIO;
		else
			r = fn(arg, (const char *)key, (const char *)id);
		xmlFree(key);
		xmlFree(id);
	}
out:
	xmlFree(trunc);
	xmlFree(nk);
	xmlFree(nu);
	xmlFreeDoc(doc);
	return r;
}

int s3_xml_sts_credentials(const char *xml, size_t len, struct pbuf *akid,
			   struct pbuf *secret, struct pbuf *token,
			   int64_t *ret_expiration_ns)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNode *c;
	xmlChar *a = NULL, *s = NULL, *t = NULL, *e = NULL;
	int r = -EIO;

	if (!doc)
		return -EIO;
	c = child(child(xmlDocGetRootElement(doc),
			"AssumeRoleWithWebIdentityResult"),
		  "Credentials");
	a = child_text(c, "AccessKeyId");
	s = child_text(c, "SecretAccessKey");
	t = child_text(c, "SessionToken");
	e = child_text(c, "Expiration");
	if (a && *a && s && *s && t && *t && e &&
	    pcodec_parse_rfc3339((const char *)e, ret_expiration_ns) == 0) {
		pbuf_adds(akid, (const char *)a);
		pbuf_adds(secret, (const char *)s);
		pbuf_adds(token, (const char *)t);
		r = akid->failed || secret->failed || token->failed ? -ENOMEM : 0;
	}
	xmlFree(a);
	if (s)
		memset(s, 0, strlen((const char *)s));
	xmlFree(s);
	if (t)
		memset(t, 0, strlen((const char *)t));
	xmlFree(t);
	xmlFree(e);
	xmlFreeDoc(doc);
	return r;
}

void s3_xml_escape(struct pbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': pbuf_adds(b, "&amp;"); break;
		case '<': pbuf_adds(b, "&lt;"); break;
		case '>': pbuf_adds(b, "&gt;"); break;
		case '"': pbuf_adds(b, "&quot;"); break;
		case '\'': pbuf_adds(b, "&apos;"); break;
		default: pbuf_addch(b, *s);
		}
	}
}

int s3_xml_delete_errors(const char *xml, size_t len,
			 int (*fn)(void *arg, const char *key, const char *code,
				   const char *msg),
			 void *arg)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNode *root;
	int r = 0;

	if (!doc)
		return -EIO;
	root = xmlDocGetRootElement(doc);
	if (!is(root, "DeleteResult")) {
		xmlFreeDoc(doc);
		return -EIO;
	}
	for (xmlNode *c = root->children; c && !r; c = c->next) {
		char code[64], msg[256];
		xmlChar *key;

		if (!is(c, "Error"))
			continue;
		key = child_text(c, "Key");
		copy_text(c, "Code", code, sizeof(code));
		copy_text(c, "Message", msg, sizeof(msg));
		r = key ? fn(arg, (const char *)key, code, msg) : -EIO;
		xmlFree(key);
	}
	xmlFreeDoc(doc);
	return r;
}

int s3_xml_object_lock(const char *xml, size_t len,
		       struct s3_xml_lock_config *ret)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNode *root, *def;
	char enabled[32], days[24], years[24];
	uint64_t d = 0, y = 0;
	int r = 0;

	if (!doc)
		return -EIO;
	memset(ret, 0, sizeof(*ret));
	root = xmlDocGetRootElement(doc);
	if (!is(root, "ObjectLockConfiguration")) {
		xmlFreeDoc(doc);
		return -EIO;
	}
	copy_text(root, "ObjectLockEnabled", enabled, sizeof(enabled));
	ret->enabled = !strcmp(enabled, "Enabled");
	def = child(child(root, "Rule"), "DefaultRetention");
	if (def) {
		copy_text(def, "Mode", ret->mode, sizeof(ret->mode));
		copy_text(def, "Days", days, sizeof(days));
		copy_text(def, "Years", years, sizeof(years));
		if ((days[0] && pcodec_parse_u64(days, 1000000, &d) < 0) ||
		    (years[0] && pcodec_parse_u64(years, 10000, &y) < 0))
			r = -EIO;
		ret->days = d + 365 * y;
	}
	xmlFreeDoc(doc);
	return r;
}

int s3_xml_retention(const char *xml, size_t len, int64_t *ret_until_ns)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNode *root;
	char until[64];
	int r = 0;

	if (!doc)
		return -EIO;
	root = xmlDocGetRootElement(doc);
	*ret_until_ns = 0;
	if (!is(root, "Retention")) {
		r = -EIO;
	} else {
		copy_text(root, "RetainUntilDate", until, sizeof(until));
		if (until[0] && pcodec_parse_rfc3339(until, ret_until_ns) < 0)
			r = -EIO;
	}
	xmlFreeDoc(doc);
	return r;
}

int s3_xml_legal_hold(const char *xml, size_t len, int *ret_on)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNode *root;
	char status[16];
	int r = 0;

	if (!doc)
		return -EIO;
	root = xmlDocGetRootElement(doc);
	if (!is(root, "LegalHold")) {
		r = -EIO;
	} else {
		copy_text(root, "Status", status, sizeof(status));
		*ret_on = !strcmp(status, "ON");
	}
	xmlFreeDoc(doc);
	return r;
}
