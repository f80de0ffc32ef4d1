/* SPDX-License-Identifier: MIT */
/*
 * jansson readers and writers of the GCS and OAuth JSON; see gcs_json.h.
 *
 * GCS sends 64-bit quantities (size, generation) as JSON strings, since
 * JavaScript numbers cannot hold them; the readers accept strings and
 * integers alike.  jansson has no secure free, so the readers of secrets
 * overwrite jansson's copies before releasing the tree.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "gcs_json.h"
#include "pcodec.h"
#include "psecret.h"

/* Copies s into out (size bytes), replacing control characters. */
static void copy_line(char *out, size_t size, const char *s, size_t len)
{
	size_t n = 0;

	if (!size)
		return;
	for (size_t i = 0; i < len && n + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		out[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	out[n] = '\0';
}

static void copy_str(char *out, size_t size, const char *s)
{
	copy_line(out, size, s ? s : "", s ? strlen(s) : 0);
}

void gcs_json_error(const char *body, size_t len, char *reason,
		    size_t reason_size, char *msg, size_t msg_size)
{
	json_t *j, *e, *errors;
	const char *nl;

	if (reason_size)
		reason[0] = '\0';
	if (msg_size)
		msg[0] = '\0';
	if (!body || !len)
		return;
	j = json_loadb(body, len, 0, NULL);
	if (!j) {
		/* The upload front end answers some errors in plain text. */
		while (len && (*body == ' ' || *body == '\n' || *body == '\r')) {
			body++;
			len--;
		}
		nl = memchr(body, '\n', len);
		copy_line(msg, msg_size, body, nl ? (size_t)(nl - body) : len);
		return;
	}
	e = json_object_get(j, "error");
	if (json_is_string(e)) {
		copy_str(reason, reason_size, json_string_value(e));
		copy_str(msg, msg_size,
			 json_string_value(json_object_get(j, "error_description")));
	} else if (json_is_object(e)) {
		copy_str(msg, msg_size,
			 json_string_value(json_object_get(e, "message")));
		errors = json_object_get(e, "errors");
		copy_str(reason, reason_size,
			 json_string_value(json_object_get(json_array_get(errors, 0),
							   "reason")));
		if (!msg_size || !msg[0])
			copy_str(msg, msg_size,
				 json_string_value(json_object_get(json_array_get(errors, 0),
								   "message")));
	}
	json_decref(j);
}

/* A JSON string or non-negative integer holding a 64-bit number. */
static int json_u64(const json_t *v, uint64_t *ret)
{
	if (json_is_string(v))
		return pcodec_parse_u64(json_string_value(v), UINT64_MAX, ret);
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*ret = (uint64_t)json_integer_value(v);
		return 0;
	}
	return -EINVAL;
}

static int object_from(const json_t *o, struct gcs_object *ret)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *updated = json_string_value(json_object_get(o, "updated"));
	const char *crc = json_string_value(json_object_get(o, "crc32c"));
	const char *md5 = json_string_value(json_object_get(o, "md5Hash"));
	const json_t *gen = json_object_get(o, "generation");
	uint64_t g;

	memset(ret, 0, sizeof(*ret));
	if (!name || !*name || strlen(name) > GCS_MAX_NAME ||
	    json_u64(json_object_get(o, "size"), &ret->size) < 0)
		return -EIO;
	memcpy(ret->name, name, strlen(name) + 1);
	if (updated && pcodec_parse_rfc3339(updated, &ret->updated_ns) < 0)
		ret->updated_ns = 0;
	if (gen && json_u64(gen, &g) == 0)
		snprintf(ret->generation, sizeof(ret->generation), "%llu",
			 (unsigned long long)g);
	if (crc && strlen(crc) < sizeof(ret->crc32c))
		memcpy(ret->crc32c, crc, strlen(crc) + 1);
	if (md5 && strlen(md5) < sizeof(ret->md5))
		memcpy(ret->md5, md5, strlen(md5) + 1);
	ret->held = json_is_true(json_object_get(o, "temporaryHold")) ||
		    json_is_true(json_object_get(o, "eventBasedHold"));
	/* An unreadable time protects for ever rather than not at all. */
	for (int i = 0; i < 2; i++) {
		const char *t = json_string_value(
			i ? json_object_get(json_object_get(o, "retention"),
					    "retainUntilTime") :
			    json_object_get(o, "retentionExpirationTime"));
		int64_t ns;

		if (!t)
			continue;
		if (pcodec_parse_rfc3339(t, &ns) < 0)
			ns = INT64_MAX;
		if (ns > ret->retain_until_ns)
			ret->retain_until_ns = ns;
	}
	return 0;
}

int gcs_json_bucket_retention(const char *body, size_t len,
			      uint64_t *ret_period_s, int *ret_locked)
{
	json_t *j = json_loadb(body ? body : "", len, 0, NULL);
	const json_t *rp;
	int r = 0;

	*ret_period_s = 0;
	*ret_locked = 0;
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return -EIO;
	}
	rp = json_object_get(j, "retentionPolicy");
	if (rp && (!json_is_object(rp) ||
		   json_u64(json_object_get(rp, "retentionPeriod"), ret_period_s) < 0))
		r = -EIO;
	else if (rp)
		*ret_locked = json_is_true(json_object_get(rp, "isLocked"));
	json_decref(j);
	return r;
}

int gcs_json_object(const char *body, size_t len, struct gcs_object *ret)
{
	json_t *j = json_loadb(body ? body : "", len, 0, NULL);
	int r;

	if (!j)
		return -EIO;
	r = json_is_object(j) ? object_from(j, ret) : -EIO;
	json_decref(j);
	return r;
}

int gcs_json_list(const char *body, size_t len, gcs_json_item_fn fn,
		  void *arg, struct pbuf *next)
{
	json_t *j = json_loadb(body ? body : "", len, 0, NULL);
	const json_t *items, *tok;
	struct gcs_object *o = NULL;
	int r = 0;

	pbuf_reset(next);
	if (!j || !json_is_object(j)) {
		r = -EIO;
		goto out;
	}
	/* Like GCS, an empty page has no "items" at all. */
	items = json_object_get(j, "items");
	tok = json_object_get(j, "nextPageToken");
	if ((items && !json_is_array(items)) || (tok && !json_is_string(tok))) {
		r = -EIO;
		goto out;
	}
	o = malloc(sizeof(*o));
	if (!o) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; items && i < json_array_size(items); i++) {
		if (object_from(json_array_get(items, i), o) < 0) {
			r = -EIO;
			goto out;
		}
		if (fn(arg, o)) {
			r = 1;
			goto out;
		}
	}
	if (tok && pbuf_adds(next, json_string_value(tok)) < 0)
		r = -ENOMEM;
out:
	free(o);
	json_decref(j);
	return r;
}

/* Overwrites the string value of key in object j, if there is one. */
static void cleanse_member(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	if (s)
		OPENSSL_cleanse((char *)s, strlen(s));
}

int gcs_json_token(const char *body, size_t len, struct pbuf *ret_token,
		   int64_t *ret_expires_in)
{
	json_t *j = json_loadb(body ? body : "", len, 0, NULL);
	const char *tok, *type;
	uint64_t exp = 0;
	int r = -EIO;

	if (!j)
		return -EIO;
	tok = json_string_value(json_object_get(j, "access_token"));
	type = json_string_value(json_object_get(j, "token_type"));
	if (json_object_get(j, "expires_in") &&
	    json_u64(json_object_get(j, "expires_in"), &exp) < 0)
		goto out;
	/* Tokens go into an HTTP header: no room for anything odd. */
	if (!tok || !*tok || strlen(tok) > 8192 ||
	    strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			"0123456789-._~+/=") != strlen(tok) ||
	    (type && strcasecmp(type, "Bearer")))
		goto out;
	pbuf_reset(ret_token);
	r = pbuf_adds(ret_token, tok);
	*ret_expires_in = exp > INT32_MAX ? INT32_MAX : (int64_t)exp;
out:
	cleanse_member(j, "access_token");
	cleanse_member(j, "id_token");
	json_decref(j);
	return r;
}

static int take(json_t *j, const char *key, char **dst)
{
	const char *s = json_string_value(json_object_get(j, key));

	if (!s || !*s)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

int gcs_json_key_file(const char *body, size_t len, struct gcs_key_file *ret,
		      char *why, size_t why_size)
{
	static const char *const secret_keys[] = {
		"private_key", "client_secret", "refresh_token",
	};
	struct gcs_key_file k = { 0 };
	json_t *j = json_loadb(body ? body : "", len, 0, NULL);
	const char *missing = NULL;
	int r = 0;

	if (!j || !json_is_object(j)) {
		copy_str(why, why_size, "not a JSON object");
		r = -EINVAL;
		goto out;
	}
	if (take(j, "type", &k.type) || take(j, "client_email", &k.client_email) ||
	    take(j, "private_key_id", &k.private_key_id) ||
	    take(j, "private_key", &k.private_key) ||
	    take(j, "token_uri", &k.token_uri) ||
	    take(j, "client_id", &k.client_id) ||
	    take(j, "client_secret", &k.client_secret) ||
	    take(j, "refresh_token", &k.refresh_token)) {
		r = -ENOMEM;
		goto out;
	}
	if (!k.type) {
		missing = "type";
	} else if (!strcmp(k.type, "service_account")) {
		if (!k.client_email)
			missing = "client_email";
		else if (!k.private_key)
			missing = "private_key";
	} else if (!strcmp(k.type, "authorized_user")) {
		if (!k.client_id)
			missing = "client_id";
		else if (!k.client_secret)
			missing = "client_secret";
		else if (!k.refresh_token)
			missing = "refresh_token";
	} else {
		if (why_size)
			snprintf(why, why_size,
				 "credential type '%s' is not supported (use a service_account key, authorized_user credentials, the metadata server or access-token-file)",
				 k.type);
		r = -EINVAL;
		goto out;
	}
	if (missing) {
		if (why_size)
			snprintf(why, why_size, "no \"%s\" in the %s credentials",
				 missing, k.type ? k.type : "");
		r = -EINVAL;
	}
out:
	for (size_t i = 0; j && i < sizeof(secret_keys) / sizeof(*secret_keys); i++)
		cleanse_member(j, secret_keys[i]);
	json_decref(j);
	if (r == 0)
		*ret = k;
	else
		gcs_key_file_release(&k);
	return r;
}

void gcs_key_file_release(struct gcs_key_file *k)
{
	if (!k)
		return;
	free(k->type);
	free(k->client_email);
	free(k->private_key_id);
	psecret_free(k->private_key);
	free(k->token_uri);
	free(k->client_id);
	psecret_free(k->client_secret);
	psecret_free(k->refresh_token);
	memset(k, 0, sizeof(*k));
}

int gcs_json_upload_metadata(const struct gcs *g, const char *name,
			     time_t now, const char *crc32c, const char *md5,
			     struct pbuf *out)
{
	json_t *j = json_object();
	char *text = NULL;
	int bad = !j;

	if (j) {
		bad |= json_object_set_new(j, "name", json_string(name));
		bad |= json_object_set_new(j, "contentType",
					   json_string("application/octet-stream"));
		if (crc32c)
			bad |= json_object_set_new(j, "crc32c", json_string(crc32c));
		if (md5)
			bad |= json_object_set_new(j, "md5Hash", json_string(md5));
		if (g->temporary_hold)
			bad |= json_object_set_new(j, "temporaryHold", json_true());
		if (g->event_based_hold)
			bad |= json_object_set_new(j, "eventBasedHold", json_true());
	}
	if (j && g->retention_mode) {
		time_t until = now + (time_t)g->retain_days * 86400;
		char stamp[32];
		struct tm tm;

		gmtime_r(&until, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		bad |= json_object_set_new(j, "retention",
					   json_pack("{s:s,s:s}", "mode",
						     g->retention_mode,
						     "retainUntilTime", stamp));
	}
	if (!bad)
		text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return -ENOMEM;
	pbuf_reset(out);
	pbuf_adds(out, text);
	free(text);
	return pbuf_str(out) ? 0 : -ENOMEM;
}
