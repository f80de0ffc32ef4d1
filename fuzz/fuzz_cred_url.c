/* SPDX-License-Identifier: MIT */
/*
 * Which URLs may receive credentials (popts_cred_url_ok(): token, metadata
 * and STS endpoints from options, environment and profile files).  Input:
 * the URL; with one allowed plain-http host ("169.254.169.254", as the
 * plugins pass their cloud's metadata address).  Only https anywhere, or
 * http to loopback or that host, may pass: an accepted URL must start with
 * "http" whatever curl's parser makes of the rest, and one that passes
 * without https must name loopback or the allowed host.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "popts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const hosts[] = { "169.254.169.254", NULL };
	char *url = malloc(size + 1);
	int plain, allowed;

	if (!url)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	plain = popts_cred_url_ok(url, NULL);
	allowed = popts_cred_url_ok(url, hosts);
	/* The allowed host only ever adds; nothing passes that is not
	 * http(s). */
	if ((plain && !allowed) || (allowed && strncasecmp(url, "http", 4)))
		abort();
	free(url);
	return 0;
}
