/* SPDX-License-Identifier: MIT */
/*
 * util: checked number, size and duration parsing; snapshot-name and
 * version-id validation (hostile names from a bucket must not pass).
 */
#define TEST_MAIN
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "format.h"
#include "util.h"

TEST(parse_numbers)
{
	uint64_t u;
	int64_t d;
	bool b;

	CHECK_OK(drgw_parse_u64("18446744073709551615", &u));
	CHECK(u == UINT64_MAX);
	CHECK_INT(drgw_parse_u64("18446744073709551616", &u), ==, -ERANGE);
	CHECK_INT(drgw_parse_u64("-1", &u), ==, -EINVAL);
	CHECK_INT(drgw_parse_u64("12x", &u), ==, -EINVAL);
	CHECK_INT(drgw_parse_u64("", &u), ==, -EINVAL);
	CHECK_OK(drgw_parse_size("64k", &u));
	CHECK_INT(u, ==, 65536);
	CHECK_OK(drgw_parse_size("1.5GiB", &u));
	CHECK_INT(u, ==, 1610612736);
	CHECK_INT(drgw_parse_size("5 parsecs", &u), ==, -EINVAL);
	CHECK_OK(drgw_parse_duration("250ms", &d));
	CHECK_INT(d, ==, 250000000);
	CHECK_OK(drgw_parse_duration("90", &d));
	CHECK_INT(d, ==, 90000000000LL);
	CHECK_OK(drgw_parse_duration("2m", &d));
	CHECK_INT(d, ==, 120000000000LL);
	CHECK_INT(drgw_parse_duration("-2s", &d), ==, -EINVAL);
	CHECK_OK(drgw_parse_bool("On", &b));
	CHECK(b);
	CHECK_INT(drgw_parse_bool("maybe", &b), ==, -EINVAL);
}

TEST(snapshot_names)
{
	static const char *const good[] = { "app.db", "dir/app-20261125.db",
					    "café/Zürich backup.db", "a b+c=d" };
	static const char *const bad[] = {
		"", "/etc/passwd", "../escape", "a/../../b", "a//b", "a/./b",
		"dir/", "new\nline", "tab\there", "\xff\xfe", "\xc0\xaf", /* overlong '/' */
		"\xed\xa0\x80", /* surrogate */
	};
	char longname[300];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (!drgw_name_ok(good[i]))
			FAIL("rejected good name '%s'", good[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (drgw_name_ok(bad[i]))
			FAIL("accepted bad name #%zu", i);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(!drgw_name_ok(longname)); /* component > 255 bytes */
}

TEST(version_ids)
{
	CHECK(drgw_vid_ok("20261125T231858Z-1f2e3d4c"));
	CHECK(!drgw_vid_ok(""));
	CHECK(!drgw_vid_ok("../x"));
	CHECK(!drgw_vid_ok("a.b"));
	CHECK(!drgw_vid_ok("0123456789012345678901234567890123456789012345678901234567890123"));
}

/* --metrics-listen: no host is loopback, every interface is asked for. */
TEST(listen_addresses)
{
	struct sockaddr_storage sa;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
	socklen_t len;
	static const char *bad[] = { "9110", ":0", ":65536", "host:80",
				     "1.2.3.4:", "[::1:80", "::1:80",
				     "[1.2.3.4]:80", ":80x" };

	CHECK_OK(drgw_parse_listen_addr(":9110", &sa, &len));
	CHECK_INT(s4->sin_family, ==, AF_INET);
	CHECK_INT(ntohs(s4->sin_port), ==, 9110);
	CHECK_INT(ntohl(s4->sin_addr.s_addr), ==, INADDR_LOOPBACK);
	CHECK_INT(len, ==, sizeof(*s4));
	CHECK_OK(drgw_parse_listen_addr("*:80", &sa, &len));
	CHECK_INT(ntohl(s4->sin_addr.s_addr), ==, INADDR_ANY);
	CHECK_OK(drgw_parse_listen_addr("10.1.2.3:65535", &sa, &len));
	CHECK_INT(ntohl(s4->sin_addr.s_addr), ==, 0x0a010203);
	CHECK_OK(drgw_parse_listen_addr("[::1]:9110", &sa, &len));
	CHECK_INT(s6->sin6_family, ==, AF_INET6);
	CHECK_INT(ntohs(s6->sin6_port), ==, 9110);
	CHECK(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
	CHECK_INT(len, ==, sizeof(*s6));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (drgw_parse_listen_addr(bad[i], &sa, &len) != -EINVAL)
			FAIL("%s parsed", bad[i]);
}

TEST(hex_round_trip)
{
	uint8_t in[4] = { 0x00, 0x9f, 0xa0, 0xff }, out[4];
	char hex[9];

	drgw_hex(in, 4, hex);
	CHECK_STR(hex, "009fa0ff");
	CHECK_OK(drgw_unhex("009FA0ff", out, 4));
	CHECK(memcmp(in, out, 4) == 0);
	CHECK_INT(drgw_unhex("009fa0f", out, 4), ==, -EINVAL);
	CHECK_INT(drgw_unhex("009fa0fg", out, 4), ==, -EINVAL);
}

TEST(current_umask_is_read_not_changed)
{
	mode_t old = umask(027);

	CHECK_INT(drgw_current_umask(), ==, 027);
	CHECK_INT(drgw_current_umask(), ==, 027);
	umask(0);
	CHECK_INT(drgw_current_umask(), ==, 0);
	umask(old);
}
