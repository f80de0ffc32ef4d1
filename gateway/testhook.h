/* SPDX-License-Identifier: MIT */
/*
 * Kill points for the crash tests.  drgw_test_point("name") marks a place
 * where a crash is worth testing (between an upload and the catalog
 * commit, say).  In a build with -Dtest_hooks=true, DRGW_TEST_KILL_AT=
 * "name" or "name:N" in the environment makes the process SIGKILL itself
 * the first (or N-th) time it passes that point, so that a test can aim
 * a crash at each phase instead of hoping a timed kill lands there, and
 * DRGW_TEST_PAUSE_AT="name:MS" makes it sleep MS milliseconds there each
 * time (a slow step, made long enough to act during it).  Releases are
 * built without: the calls are empty inline functions.
 */
#ifndef DRGW_TESTHOOK_H
#define DRGW_TESTHOOK_H

#include "drgw-build.h"

#if DRGW_TEST_HOOKS
void drgw_test_point(const char *name);
#else
static inline void drgw_test_point(const char *name)
{
	(void)name;
}
#endif

#endif
