/* SPDX-License-Identifier: MIT */
/*
 * Hex, base64, percent-encoding and checked number parsing; see pcodec.h.
 * Table-free and byte-at-a-time: these run on keys, headers and digests,
 * never on object data.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "pcodec.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void pcodec_hex(char *out, const void *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void pcodec_base64(char *out, const void *in, size_t n)
{
	const unsigned char *p = in;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];

		*out++ = b64_alphabet[v >> 18];
		*out++ = b64_alphabet[(v >> 12) & 63];
		*out++ = b64_alphabet[(v >> 6) & 63];
		*out++ = b64_alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		*out++ = b64_alphabet[v >> 18];
		*out++ = b64_alphabet[(v >> 12) & 63];
		*out++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		*out++ = '=';
	}
	*out = '\0';
}

void pcodec_base64url(char *out, const void *in, size_t n)
{
	char *p = out;

	/* Same groups as base64; only two symbols differ and the padding
	 * goes, so translate in place rather than keep a second encoder. */
	pcodec_base64(out, in, n);
	for (; *p && *p != '='; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	}
	*p = '\0';
}

static int b64_value(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(b64_alphabet, c);
	return p ? (int)(p - b64_alphabet) : -1;
}

int pcodec_unbase64(void *out, size_t out_size, const char *in, size_t len,
		    size_t *ret_len)
{
	unsigned char *o = out;
	size_t n = 0;

	if (len % 4)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		uint32_t w;

		for (int j = 0; j < 4; j++) {
			if (in[i + j] == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad)
				return -EINVAL; /* data after padding */
			v[j] = b64_value(in[i + j]);
			if (v[j] < 0)
				return -EINVAL;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		if (n + 3 - (size_t)pad > out_size)
			return -ENOBUFS;
		o[n++] = (unsigned char)(w >> 16);
		if (pad < 2)
			o[n++] = (unsigned char)(w >> 8);
		if (pad < 1)
			o[n++] = (unsigned char)w;
	}
	*ret_len = n;
	return 0;
}

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

int pcodec_uri_encode(struct pbuf *b, const char *s, size_t len,
		      int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[3];

		if (unreserved(c) || (keep_slash && c == '/')) {
			pbuf_addch(b, (char)c);
			continue;
		}
		esc[0] = '%';
		esc[1] = digits[c >> 4];
		esc[2] = digits[c & 15];
		pbuf_add(b, esc, 3);
	}
	return b->failed ? -ENOMEM : 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pcodec_unhex(const char *hex, void *out, size_t n)
{
	uint8_t *o = out;

	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo;

		if (hi < 0)
			return -EINVAL;
		lo = hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		o[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[2 * n] ? -EINVAL : 0;
}

void pcodec_form_add(struct pbuf *b, const char *k, const char *v)
{
	if (b->len)
		pbuf_addch(b, '&');
	pbuf_adds(b, k);
	pbuf_addch(b, '=');
	pcodec_uri_encode(b, v, strlen(v), 0);
}

int pcodec_uri_decode(struct pbuf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (s[i] != '%') {
			pbuf_addch(b, s[i]);
			continue;
		}
		if (i + 2 >= len)
			return -EINVAL;
		hi = hexval(s[i + 1]);
		lo = hexval(s[i + 2]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		pbuf_addch(b, (char)(hi << 4 | lo));
		i += 2;
	}
	return b->failed ? -ENOMEM : 0;
}

int pcodec_parse_u64(const char *s, uint64_t max, uint64_t *ret_val)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -ERANGE;
	*ret_val = v;
	return 0;
}

int pcodec_parse_size(const char *s, uint64_t *ret_val)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
		{ "", 0 },	{ "k", 10 },   { "kib", 10 }, { "m", 20 },
		{ "mib", 20 },	{ "g", 30 },   { "gib", 30 }, { "t", 40 },
		{ "tib", 40 },
	};
	char digits[32];
	size_t n = strspn(s, "0123456789");
	uint64_t v;
	int r;

	if (n == 0 || n >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, s, n);
	digits[n] = '\0';
	r = pcodec_parse_u64(digits, UINT64_MAX, &v);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(s + n, units[i].suffix))
			continue;
		if (v > (UINT64_MAX >> units[i].shift))
			return -ERANGE;
		*ret_val = v << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

int pcodec_parse_bool(const char *s, int *ret_val)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*ret_val = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*ret_val = 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* Reads exactly n digits; -1 if they are not all digits. */
static int digits(const char **p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

int pcodec_parse_rfc3339(const char *s, int64_t *ret_ns)
{
	struct tm tm = { 0 };
	int64_t frac = 0, scale = 1000000000;
	time_t t;

	tm.tm_year = digits(&s, 4) - 1900;
	if (*s++ != '-')
		return -EINVAL;
	tm.tm_mon = digits(&s, 2) - 1;
	if (*s++ != '-')
		return -EINVAL;
	tm.tm_mday = digits(&s, 2);
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -EINVAL;
	s++;
	tm.tm_hour = digits(&s, 2);
	if (*s++ != ':')
		return -EINVAL;
	tm.tm_min = digits(&s, 2);
	if (*s++ != ':')
		return -EINVAL;
	tm.tm_sec = digits(&s, 2);
	if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour < 0 ||
	    tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 ||
	    tm.tm_sec < 0 || tm.tm_sec > 60)
		return -EINVAL;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			if (scale > 1) {
				scale /= 10;
				frac += (*s - '0') * scale;
			}
		}
	}
	if (strcmp(s, "Z") && strcmp(s, "z") && strcmp(s, "+00:00"))
		return -EINVAL;
	t = timegm(&tm);
	/* The result must fit in int64_t ns: nothing after 2262-04-11. */
	if (t == (time_t)-1 || t > (INT64_MAX - 999999999) / 1000000000)
		return -EINVAL;
	*ret_ns = (int64_t)t * 1000000000 + frac;
	return 0;
}

char *pcodec_next_line(char **p)
{
	char *line = *p, *nl;

	if (!line || !*line)
		return NULL;
	nl = strchr(line, '\n');
	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = line + strlen(line);
	}
	return line;
}
