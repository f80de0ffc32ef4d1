/* SPDX-License-Identifier: MIT */
/*
 * The AWS shared config/credentials file reader (s3_profile.h).  The input
 * is both files at once: AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE
 * name a memfd holding it, and the profiles "default" and "dev" are loaded.
 * Values must come from a profile that was found, on one line, trimmed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "s3_profile.h"

static void check_value(const struct s3_profile *p, const char *v)
{
	size_t n;

	if (!v)
		return;
	n = strlen(v);
	if (!p->found || strchr(v, '\n') ||
	    (n && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' ||
		   v[n - 1] == '\t' || v[n - 1] == '\r')))
		abort();
}

static void load(const char *name)
{
	struct s3_profile p;

	if (s3_profile_load(name, &p) < 0)
		return;
	check_value(&p, p.access_key);
	check_value(&p, p.secret_key);
	check_value(&p, p.session_token);
	check_value(&p, p.region);
	check_value(&p, p.role_arn);
	check_value(&p, p.web_identity_token_file);
	check_value(&p, p.role_session_name);
	if (p.unsupported && !p.found)
		abort();
	s3_profile_release(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;

	if (fd < 0) {
		char path[64];

		fd = memfd_create("drgw-fuzz-aws", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		setenv("AWS_CONFIG_FILE", path, 1);
		setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	}
	if (ftruncate(fd, 0) < 0 ||
	    pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	load("default");
	load("dev");
	return 0;
}
