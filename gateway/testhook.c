/* SPDX-License-Identifier: MIT */
/*
 * Kill points; see testhook.h.
 */
#include "testhook.h"

#if DRGW_TEST_HOOKS
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char point[64], pause_point[64];
static uint64_t nth = 1, pause_ms;
static atomic_uint_fast64_t hits;

static void parse_env(void)
{
	const char *v = getenv("DRGW_TEST_KILL_AT");
	const char *p = getenv("DRGW_TEST_PAUSE_AT");
	const char *colon;

	if (p && (colon = strchr(p, ':')) &&
	    (size_t)(colon - p) < sizeof(pause_point) &&
	    drgw_parse_u64(colon + 1, &pause_ms) == 0)
		memcpy(pause_point, p, (size_t)(colon - p));
	if (!v)
		return;
	colon = strchr(v, ':');
	if (colon) {
		if (drgw_parse_u64(colon + 1, &nth) < 0 || nth == 0)
			nth = 1;
		if ((size_t)(colon - v) < sizeof(point))
			memcpy(point, v, (size_t)(colon - v));
	} else {
		drgw_strlcpy(point, v, sizeof(point));
	}
}

void drgw_test_point(const char *name)
{
	pthread_once(&once, parse_env);
	if (pause_point[0] && !strcmp(pause_point, name)) {
		log_info("test hook: pausing %llu ms at %s",
			 (unsigned long long)pause_ms, name);
		usleep((useconds_t)(pause_ms * 1000));
	}
	if (!point[0] || strcmp(point, name))
		return;
	if (atomic_fetch_add(&hits, 1) + 1 != nth)
		return;
	log_warning("test hook: killing myself at %s", name);
	raise(SIGKILL);
}
#else
/* Keeps the translation unit non-empty (ISO C). */
typedef int drgw_testhook_unused;
#endif
