/* SPDX-License-Identifier: MIT */
/*
 * A tiny unit-test harness in the manner of libuv's task.h: checks are
 * never compiled out, print both operands and the location, and abort the
 * test binary at the first failure.  TEST(name) registers a test; main()
 * runs them all (or those named on the command line).  Exit 77 means
 * "skipped", as Meson expects.
 */
#ifndef DRGW_TEST_H
#define DRGW_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);

struct test_case {
	const char *name;
	test_fn fn;
};

#define MAX_TESTS 256
extern struct test_case test_cases[MAX_TESTS];
extern int n_test_cases;

#define TEST(tname)                                                      \
	static void test_##tname(void);                                  \
	__attribute__((constructor)) static void register_##tname(void)  \
	{                                                                \
		test_cases[n_test_cases].name = #tname;                  \
		test_cases[n_test_cases++].fn = test_##tname;            \
	}                                                                \
	static void test_##tname(void)

#define FAIL(...)                                                          \
	do {                                                               \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);            \
		fprintf(stderr, __VA_ARGS__);                              \
		fputc('\n', stderr);                                       \
		abort();                                                   \
	} while (0)

#define CHECK(cond)                                     \
	do {                                            \
		if (!(cond))                            \
			FAIL("check failed: %s", #cond); \
	} while (0)

#define CHECK_INT(a, op, b)                                                  \
	do {                                                                 \
		int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                \
		if (!(a_ op b_))                                             \
			FAIL("%s %s %s: %" PRId64 " vs %" PRId64, #a, #op, #b, \
			     a_, b_);                                        \
	} while (0)

#define CHECK_OK(expr) CHECK_INT((expr), ==, 0)

#define CHECK_STR(a, b)                                                   \
	do {                                                              \
		const char *a_ = (a), *b_ = (b);                          \
		if (strcmp(a_, b_))                                       \
			FAIL("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_, b_); \
	} while (0)

#define CHECK_CONTAINS(hay, needle)                                        \
	do {                                                               \
		const char *h_ = (hay), *n_ = (needle);                    \
		if (!strstr(h_, n_))                                       \
			FAIL("\"%s\" does not contain \"%s\"", h_, n_);    \
	} while (0)

/* Defines test_cases[] and main(); include in exactly one file per binary
 * after defining TEST_MAIN. */
#ifdef TEST_MAIN
struct test_case test_cases[MAX_TESTS];
int n_test_cases;

int main(int argc, char **argv)
{
	int ran = 0;

	for (int i = 0; i < n_test_cases; i++) {
		int want = argc < 2;

		for (int j = 1; j < argc; j++)
			want |= !strcmp(argv[j], test_cases[i].name);
		if (!want)
			continue;
		printf("- %s\n", test_cases[i].name);
		fflush(stdout);
		test_cases[i].fn();
		ran++;
	}
	printf("%d tests passed\n", ran);
	return ran ? 0 : 77;
}
#endif

#endif
