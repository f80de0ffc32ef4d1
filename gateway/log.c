/* SPDX-License-Identifier: MIT */
/*
 * Event log; see log.h.  A whole line is formatted first and written with
 * one write(2), so lines from threads never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static enum drgw_log_level max_level = DRGW_LOG_INFO;
static enum drgw_log_format log_format = DRGW_LOG_LOGFMT;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = { "error", "warning", "info",
					   "debug" };

void drgw_log_set_level(enum drgw_log_level level)
{
	max_level = level;
}

void drgw_log_set_format(enum drgw_log_format format)
{
	log_format = format;
}

int drgw_log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	return 0;
}

int drgw_log_parse_level(const char *s, enum drgw_log_level *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (!strcmp(s, level_names[i])) {
			*ret = (enum drgw_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int drgw_log_parse_format(const char *s, enum drgw_log_format *ret)
{
	if (!strcmp(s, "logfmt"))
		*ret = DRGW_LOG_LOGFMT;
	else if (!strcmp(s, "json"))
		*ret = DRGW_LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

bool drgw_log_enabled(enum drgw_log_level level)
{
	return level <= max_level;
}

/* Appends s quoted for logfmt/JSON (both accept this escaping). */
static size_t append_quoted(char *buf, size_t pos, size_t size, const char *s)
{
	if (pos + 1 < size)
		buf[pos++] = '"';
	for (; *s && pos + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[pos++] = '\\';
			buf[pos++] = (char)c;
		} else if (c == '\n') {
			buf[pos++] = '\\';
			buf[pos++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			pos += (size_t)snprintf(buf + pos, size - pos, "\\u%04x", c);
		} else {
			buf[pos++] = (char)c;
		}
	}
	if (pos + 1 < size)
		buf[pos++] = '"';
	return pos;
}

void drgw_log(enum drgw_log_level level, const char *fmt, ...)
{
	char msg[2048], line[4400], ts[40];
	int64_t now = drgw_now_ns();
	size_t pos;
	va_list ap;

	if (!drgw_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	drgw_format_time(now, ts, sizeof(ts));
	/* Insert milliseconds before the 'Z'. */
	snprintf(ts + strlen(ts) - 1, sizeof(ts) - strlen(ts) + 1, ".%03dZ",
		 (int)(now / NSEC_PER_MSEC % 1000));

	if (log_format == DRGW_LOG_JSON) {
		pos = (size_t)snprintf(line, sizeof(line),
				       "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":",
				       ts, level_names[level]);
		pos = append_quoted(line, pos, sizeof(line) - 2, msg);
		line[pos++] = '}';
	} else {
		pos = (size_t)snprintf(line, sizeof(line), "time=%s level=%s msg=",
				       ts, level_names[level]);
		pos = append_quoted(line, pos, sizeof(line) - 2, msg);
	}
	line[pos++] = '\n';
	(void)!write(log_fd, line, pos);
}
