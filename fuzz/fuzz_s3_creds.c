/* SPDX-License-Identifier: MIT */
/*
 * The credentials JSON of the ECS/EKS container endpoint and EC2 IMDS
 * (s3_creds_parse_json()).  Whatever it accepts has a non-empty key pair;
 * whatever it refuses has a reason and no credentials.  (The gateway
 * makes plugin messages one line, backend.c.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "s3_creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_credentials *c = NULL;
	struct drgw_err err = { 0 };
	int r = s3_creds_parse_json((const char *)data, size, "fuzz", &c, &err);

	if (r == 0) {
		if (!c || !c->access_key[0] || !c->secret_key[0])
			abort();
		s3_credentials_unref(c);
	} else if (c || !err.msg[0] ||
		   (r != -EIO && r != -EACCES && r != -ENOMEM)) {
		abort();
	}
	return 0;
}
