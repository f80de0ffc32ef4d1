/* SPDX-License-Identifier: MIT */
/*
 * Error messages and debug lines for the plugins; see pmsg.h.
 */
#include <stdarg.h>
#include <stdio.h>

#include "pmsg.h"

void pmsg_set_err(struct drgw_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

void pmsg_debug(const struct drgw_host *host, const char *fmt, ...)
{
	/* Formatted here, not passed on as a va_list: the host's logger
	 * is variadic only. */
	char line[768];
	va_list ap;

	if (!host || !host->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	host->log(DRGW_LOG_DEBUG, "%s", line);
}
