/* SPDX-License-Identifier: MIT */
/*
 * The configuration file parser (libinih plus our handlers) on arbitrary
 * files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/drgw-fuzz-conf-XXXXXX";
	struct drgw_config cfg;
	struct drgw_err err;
	int fd = mkstemp(path);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		drgw_config_init(&cfg);
		drgw_config_load(&cfg, path, &err);
		drgw_config_release(&cfg);
	}
	close(fd);
	unlink(path);
	return 0;
}
