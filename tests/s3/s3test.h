/* SPDX-License-Identifier: MIT */
/*
 * A minimal test harness for the S3 plugin's C unit tests: checks that
 * print both sides and never compile out, and TAP-free "N passed, N failed"
 * output that Meson and CI read.  Each test is a static function run by
 * main() through RUN().
 */
#ifndef DRGW_S3TEST_H
#define DRGW_S3TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s3test_failed_checks;

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: check failed: %s\n",       \
				__FILE__, __LINE__, #cond);                \
			s3test_failed_checks++;                            \
		}                                                          \
	} while (0)

#define CHECK_STR(a, b)                                                    \
	do {                                                               \
		const char *a_ = (a), *b_ = (b);                           \
		if (!a_ || !b_ || strcmp(a_, b_)) {                        \
			fprintf(stderr,                                    \
				"%s:%d: %s != %s\n  got:  \"%s\"\n  want: \"%s\"\n", \
				__FILE__, __LINE__, #a, #b,                \
				a_ ? a_ : "(null)", b_ ? b_ : "(null)");   \
			s3test_failed_checks++;                            \
		}                                                          \
	} while (0)

#define CHECK_INT(a, b)                                                    \
	do {                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);        \
		if (a_ != b_) {                                            \
			fprintf(stderr, "%s:%d: %s == %lld, want %lld\n",  \
				__FILE__, __LINE__, #a, a_, b_);           \
			s3test_failed_checks++;                            \
		}                                                          \
	} while (0)

struct s3test_totals {
	int passed, failed;
};

#define RUN(t, fn)                                                         \
	do {                                                               \
		int before_ = s3test_failed_checks;                        \
		fn();                                                      \
		if (s3test_failed_checks == before_) {                     \
			(t)->passed++;                                     \
			printf("ok - %s\n", #fn);                          \
		} else {                                                   \
			(t)->failed++;                                     \
			printf("FAIL - %s\n", #fn);                        \
		}                                                          \
	} while (0)

static inline int s3test_done(const struct s3test_totals *t)
{
	printf("%d passed, %d failed\n", t->passed, t->failed);
	return t->failed ? 1 : 0;
}

#endif /* DRGW_S3TEST_H */
