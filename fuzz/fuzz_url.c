/* SPDX-License-Identifier: MIT */
/*
 * --backend NAME=URL?query parsing, with percent-decoding of options.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drgw_config cfg;
	struct drgw_err err;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	drgw_config_init(&cfg);
	if (drgw_config_add_backend_arg(&cfg, s, &err) == 0 &&
	    (cfg.n_backends != 1 || !strstr(cfg.backends[0].url, "://")))
		abort();
	drgw_config_release(&cfg);
	free(s);
	return 0;
}
