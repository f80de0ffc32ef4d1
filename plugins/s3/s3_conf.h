/* SPDX-License-Identifier: MIT */
/*
 * The S3 backend URL and its options, turned into struct s3 without any
 * network I/O.  Option keys and their defaults are listed in s3_conf.c and
 * docs; unknown keys are rejected so that typos do not go unnoticed.
 */
#ifndef DRGW_S3_CONF_H
#define DRGW_S3_CONF_H

#include <drgw/backend.h>

#include "s3_int.h"

/*
 * Fills s3 (zeroed) from cfg.  Does not create the HTTP client or the
 * credential provider.
 * @return 0, -EINVAL with err->msg saying which part is wrong, -ENOMEM.
 * On failure the partial state is released.
 */
int s3_conf_parse(struct s3 *s3, const struct drgw_backend_config *cfg,
		  struct drgw_err *err);

/* Frees what s3_conf_parse() allocated; idempotent. */
void s3_conf_release(struct s3 *s3);

#endif /* DRGW_S3_CONF_H */
