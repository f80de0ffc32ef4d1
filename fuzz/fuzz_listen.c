/* SPDX-License-Identifier: MIT */
/*
 * --metrics-listen addresses ("host:port", ":port", "[v6]:port", "*:port"):
 * a parsed address is one family, with the port that followed the last
 * colon and the length of that family's sockaddr.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage sa;
	socklen_t len = 0;
	char *s = malloc(size + 1);
	uint64_t port;
	uint16_t got;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (drgw_parse_listen_addr(s, &sa, &len) == 0) {
		if (drgw_parse_u64(strrchr(s, ':') + 1, &port) < 0 || !port ||
		    port > 65535)
			abort();
		if (sa.ss_family == AF_INET && len == sizeof(struct sockaddr_in))
			got = ntohs(((struct sockaddr_in *)&sa)->sin_port);
		else if (sa.ss_family == AF_INET6 &&
			 len == sizeof(struct sockaddr_in6) && s[0] == '[')
			got = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
		else
			abort();
		if (got != port)
			abort();
	}
	free(s);
	return 0;
}
