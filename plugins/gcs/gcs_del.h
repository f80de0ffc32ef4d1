/* SPDX-License-Identifier: MIT */
/*
 * Parallel deletes, retention and lock state for drgw prune (gcs_del.c).
 */
#ifndef DRGW_GCS_DEL_H
#define DRGW_GCS_DEL_H

#include <drgw/backend.h>

#include "gcs_int.h"
#include "gcs_json.h"

/* ops->remove_many: the keys deleted by a few threads at once.  A 403
 * says whether a hold or retention protects the object (-EPERM) or the
 * credentials lack storage.objects.delete (-EACCES). */
int gcs_remove_many(struct gcs *g, const char *const *keys, size_t n,
		    int *results, struct drgw_err *err);

/* ctl(DRGW_CTL_RETENTION): the bucket's retention policy, the plugin's own
 * holds and retention on upload; the listing knows every object's locks. */
int gcs_retention(struct gcs *g, struct drgw_retention *ret);

/* The lock fields of info, from an object resource. */
void gcs_lock_info(const struct gcs_object *o, struct drgw_object_info *info);

#endif /* DRGW_GCS_DEL_H */
