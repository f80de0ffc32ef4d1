/* SPDX-License-Identifier: MIT */
/*
 * The two ways a plugin speaks: a one-line message in the caller's
 * struct drgw_err, and a debug line through the gateway's logger.
 * Plugins log nothing else themselves; the gateway logs failures once.
 */
#ifndef DRGW_PMSG_H
#define DRGW_PMSG_H

#include <drgw/backend.h>

/* Writes one line into err->msg (truncating); NULL-safe. */
void pmsg_set_err(struct drgw_err *err, const char *fmt, ...)
	DRGW_PRINTF(2, 3);

/* Logs at debug level through host->log, if the gateway gave one; host
 * may be NULL.  Lines are cut at 767 bytes. */
void pmsg_debug(const struct drgw_host *host, const char *fmt, ...)
	DRGW_PRINTF(2, 3);

#endif /* DRGW_PMSG_H */
