/* SPDX-License-Identifier: MIT */
/*
 * Loading and calling backend plugins (include/drgw/backend.h is the ABI).
 * A struct drgw_backend is one configured backend: the plugin's ops table,
 * clamped to what this gateway knows, and the instance memory the plugin
 * asked for.  The call wrappers turn missing methods into -ENOSYS and keep
 * plugins from leaving err->msg empty on failure.
 */
#ifndef DRGW_BACKEND_LOADER_H
#define DRGW_BACKEND_LOADER_H

#include <stdbool.h>

#include "config.h"
#include "util.h"

struct drgw_backend {
	char name[DRGW_BACKEND_NAME_MAX + 1];
	char *url;
	struct drgw_backend_ops ops;
	void *dl;
	void *inst;
	/* Where it stores objects, from ctl(DESCRIBE) or the URL. */
	char description[256];
};

/* Loads drgw-<scheme>.so from plugin_dir and opens the backend. */
int drgw_backend_load(const char *plugin_dir, const struct drgw_backend_conf *bc,
		      bool read_only, struct drgw_backend **ret,
		      struct drgw_err *err);
struct drgw_backend *drgw_backend_free(struct drgw_backend *b);

/* progress and cancelled may be NULL: the plugin gets no-ops. */
int drgw_backend_put(struct drgw_backend *b, const char *key,
		     struct drgw_put_source *src, struct drgw_err *err);
/* Reads exactly len bytes at off, or fails with -EIO ("object is shorter
 * than expected"). */
int drgw_backend_read(struct drgw_backend *b, const char *key, uint64_t off,
		      void *buf, size_t len, struct drgw_err *err);
int drgw_backend_stat(struct drgw_backend *b, const char *key,
		      struct drgw_object_info *ret, struct drgw_err *err);
/* Whether the plugin was built against a header with the lock fields of
 * struct drgw_object_info; if not, drgw_backend_clean_info() zeroes them
 * (stat() does it itself; list callbacks call it). */
bool drgw_backend_knows_locks(const struct drgw_backend *b);
void drgw_backend_clean_info(const struct drgw_backend *b,
			     struct drgw_object_info *info);
/* Lists every key under prefix, following pages. */
int drgw_backend_list_all(struct drgw_backend *b, const char *prefix,
			  drgw_list_fn fn, void *arg, struct drgw_err *err);
/* Every key after `after` and before `before` (NULL: unbounded), in order,
 * with list_range() (-ENOSYS without it), so that disjoint ranges can be
 * listed in parallel. */
int drgw_backend_list_range(struct drgw_backend *b, const char *prefix,
			    const char *after, const char *before,
			    drgw_list_fn fn, void *arg, struct drgw_err *err);
bool drgw_backend_lists_ranges(const struct drgw_backend *b);
/* SHA-256 of the size bytes of key (read in steps): a check of what a
 * backend holds that needs no key to decrypt. */
int drgw_backend_hash(struct drgw_backend *b, const char *key, uint64_t size,
		      uint8_t ret_sha256[32], struct drgw_err *err);
int drgw_backend_remove(struct drgw_backend *b, const char *key,
			struct drgw_err *err);
/* Deletes n keys (any n): remove_many() in batches of at most
 * DRGW_REMOVE_BATCH where the plugin has it, else remove() per key.
 * results[i] gets 0 or the errno of keys[i]; returns 0 or the first
 * failure, with err saying which key and why. */
#define DRGW_REMOVE_BATCH 1000
int drgw_backend_remove_many(struct drgw_backend *b, const char *const *keys,
			     size_t n, int *results, struct drgw_err *err);
/* ctl(DRGW_CTL_RETENTION) into a zeroed *ret; -ENOTSUP when the plugin
 * cannot say. */
int drgw_backend_retention(struct drgw_backend *b, struct drgw_retention *ret,
			   struct drgw_err *err);
int drgw_backend_abort_put(struct drgw_backend *b, const char *key,
			   const void *token, size_t len, struct drgw_err *err);
int drgw_backend_ping(struct drgw_backend *b, struct drgw_err *err);

/* Sets the deadline (CLOCK_MONOTONIC ns, 0: none) that plugin calls made
 * from this thread see through drgw_host.deadline_ns(); returns the old
 * one, to put back. */
int64_t drgw_backend_set_deadline(int64_t deadline_ns);

/* Is this errno worth retrying later (network, server busy)? */
bool drgw_backend_error_transient(int r);

#endif
