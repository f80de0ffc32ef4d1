/* SPDX-License-Identifier: MIT */
/*
 * Event log of the daemon: one line per event, logfmt (default) or JSON,
 * with a level.  Functions deeper in the stack do not log failures; they
 * return an errno and fill a struct drgw_err, and the top-level caller logs
 * once (STYLE.md, "Logging discipline").  Nothing that reaches this module
 * may contain key material or credentials.
 */
#ifndef DRGW_LOG_H
#define DRGW_LOG_H

#include <stdbool.h>

#include "util.h"

enum drgw_log_format {
	DRGW_LOG_LOGFMT,
	DRGW_LOG_JSON,
};

/* Both setters are meant for startup, before threads exist. */
void drgw_log_set_level(enum drgw_log_level level);
void drgw_log_set_format(enum drgw_log_format format);
/* Appends to path instead of stderr.  0 or -errno. */
int drgw_log_open_file(const char *path);
int drgw_log_parse_level(const char *s, enum drgw_log_level *ret);
int drgw_log_parse_format(const char *s, enum drgw_log_format *ret);
bool drgw_log_enabled(enum drgw_log_level level);

/* Thread-safe.  The message is lower case with no trailing period. */
void drgw_log(enum drgw_log_level level, const char *fmt, ...)
	DRGW_PRINTF(2, 3);

#define log_error(...) drgw_log(DRGW_LOG_ERROR, __VA_ARGS__)
#define log_warning(...) drgw_log(DRGW_LOG_WARNING, __VA_ARGS__)
#define log_info(...) drgw_log(DRGW_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                   \
	do {                                             \
		if (drgw_log_enabled(DRGW_LOG_DEBUG))    \
			drgw_log(DRGW_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
