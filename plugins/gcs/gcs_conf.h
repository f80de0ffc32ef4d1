/* SPDX-License-Identifier: MIT */
/*
 * The GCS backend URL and its options, turned into struct gcs without any
 * network I/O.  gcs_conf.c lists the keys and their defaults; unknown keys
 * are rejected with the list of known ones, so that typos do not go
 * unnoticed.
 */
#ifndef DRGW_GCS_CONF_H
#define DRGW_GCS_CONF_H

#include <drgw/backend.h>

#include "gcs_int.h"

/*
 * Fills g (zeroed) from cfg and the environment (STORAGE_EMULATOR_HOST).
 * Does not create the HTTP client or the credential provider.
 * @return 0, -EINVAL with err->msg saying which part is wrong, -ENOMEM.
 * On failure the partial state is released.
 */
int gcs_conf_parse(struct gcs *g, const struct drgw_backend_config *cfg,
		   struct drgw_err *err);

/* Frees what gcs_conf_parse() allocated; idempotent. */
void gcs_conf_release(struct gcs *g);

#endif /* DRGW_GCS_CONF_H */
