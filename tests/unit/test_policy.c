/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of policy.c: the settings, and the planner on restic's
 * documented examples and on cases worked out by hand from restic's rules.
 * tests/integration/test_prune_plan.py compares the planner with an
 * independent Python implementation on random groups.
 */
#include <errno.h>
#include <time.h>

#define TEST_MAIN
#include "policy.h"
#include "test.h"

#define DAY (86400 * NSEC_PER_SEC)
#define HOUR (3600 * NSEC_PER_SEC)

static int64_t at(int y, int mon, int d, int h, int min)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = min };

	return (int64_t)timegm(&tm) * NSEC_PER_SEC;
}

static struct drgw_policy policy(const char *const *settings)
{
	struct drgw_policy p = { 0 };

	for (; settings[0]; settings += 2)
		CHECK_OK(drgw_policy_set(&p, settings[0], settings[1], NULL));
	return p;
}

/* Plans n items with times t[] (any order) at now; returns how many are
 * kept. */
static size_t plan(const struct drgw_policy *p, struct drgw_plan_item *it,
		   const int64_t *t, size_t n, int64_t now)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++)
		it[i] = (struct drgw_plan_item){ .time_ns = t[i], .id = "" };
	CHECK_OK(drgw_policy_plan(p, it, n, now));
	for (size_t i = 0; i < n; i++)
		kept += it[i].reasons != 0;
	return kept;
}

TEST(settings)
{
	struct drgw_policy p = { 0 };
	struct drgw_ymdh d;
	char buf[256];

	CHECK(drgw_policy_empty(&p));
	CHECK_OK(drgw_policy_set(&p, "keep-last", "0", NULL));
	CHECK(p.set && drgw_policy_empty(&p)); /* restic: still empty */
	CHECK_OK(drgw_policy_set(&p, "keep-daily", "7", NULL));
	CHECK_OK(drgw_policy_set(&p, "keep-monthly", "unlimited", NULL));
	CHECK_OK(drgw_policy_set(&p, "keep-within-weekly", "1m", NULL));
	CHECK_OK(drgw_policy_set(&p, "keep-within", "1y5m7d2h", NULL));
	CHECK_INT(p.count[DRGW_KEEP_DAILY], ==, 7);
	CHECK_INT(p.count[DRGW_KEEP_MONTHLY], ==, DRGW_KEEP_UNLIMITED);
	CHECK_INT(p.within_period[DRGW_KEEP_WEEKLY - 1].m, ==, 1);
	CHECK(p.within.y == 1 && p.within.m == 5 && p.within.d == 7 &&
	      p.within.h == 2);
	drgw_policy_describe(&p, buf, sizeof(buf));
	CHECK(!strcmp(buf, "keep 7 daily, all monthly, weekly within 1m, "
			   "all within 1y5m7d2h of the newest"));
	CHECK_INT(drgw_policy_set(&p, "keep-daily", "-1", NULL), ==, -EINVAL);
	CHECK_INT(drgw_policy_set(&p, "keep-daily", "7x", NULL), ==, -EINVAL);
	CHECK_INT(drgw_policy_set(&p, "keep-within", "7", NULL), ==, -EINVAL);
	CHECK_INT(drgw_policy_set(&p, "keep-within", "1w", NULL), ==, -EINVAL);
	CHECK_INT(drgw_policy_set(&p, "keep-within", "", NULL), ==, -EINVAL);
	CHECK_INT(drgw_policy_set(&p, "keep-fortnightly", "1", NULL), ==,
		  -ENOENT);
	CHECK_INT(drgw_policy_set(&p, "settle-delay", "1", NULL), ==, -ENOENT);
	CHECK_OK(drgw_ymdh_parse("2d12h", &d));
	CHECK(d.d == 2 && d.h == 12 && !d.y && !d.m);
	/* Windows: 7 days; 1 year and 5 months... is longer than a month. */
	CHECK_INT(drgw_policy_shortest_window_ns(&p), ==, 7 * DAY);
	CHECK_INT(drgw_policy_longest_window_ns(&p), ==, INT64_MAX);
}

TEST(iso_weeks_match_strftime)
{
	/* Ten years of days, against glibc's %G%V. */
	for (int64_t t = at(2019, 12, 20, 12, 0); t < at(2030, 1, 10, 0, 0);
	     t += DAY) {
		time_t s = (time_t)(t / NSEC_PER_SEC);
		struct tm tm;
		char buf[16];

		gmtime_r(&s, &tm);
		strftime(buf, sizeof(buf), "%G%V", &tm);
		CHECK_INT(drgw_policy_period(DRGW_KEEP_WEEKLY, t), ==,
			  strtoll(buf, NULL, 10));
	}
	CHECK_INT(drgw_policy_period(DRGW_KEEP_HOURLY, at(2026, 3, 4, 5, 59)),
		  ==, 2026030405);
	CHECK_INT(drgw_policy_period(DRGW_KEEP_DAILY, at(2026, 3, 4, 23, 59)),
		  ==, 20260304);
	CHECK_INT(drgw_policy_period(DRGW_KEEP_MONTHLY, at(2026, 3, 31, 0, 0)),
		  ==, 202603);
	CHECK_INT(drgw_policy_period(DRGW_KEEP_YEARLY, at(2026, 12, 31, 0, 0)),
		  ==, 2026);
}

/* restic's documentation: one backup every Sunday for 12 weeks, then
 * `forget --keep-daily 4` keeps the last four. */
TEST(restic_doc_sundays)
{
	static const char *const s[] = { "keep-daily", "4", NULL };
	struct drgw_policy p = policy(s);
	struct drgw_plan_item it[12];
	int64_t t[12];

	for (int i = 0; i < 12; i++)
		t[i] = at(2019, 9, 1, 11, 0) + i * 7 * DAY;
	CHECK_INT(plan(&p, it, t, 12, at(2026, 1, 1, 0, 0)), ==, 4);
	for (int i = 0; i < 12; i++)
		CHECK_INT(it[i].reasons != 0, ==, i >= 8);
	CHECK(it[11].reasons == (DRGW_REASON_RULE(DRGW_KEEP_DAILY) |
				 DRGW_REASON_NEWEST));
	CHECK(it[8].reasons == DRGW_REASON_RULE(DRGW_KEEP_DAILY));
}

/* restic's documentation: a backup every day for 100 years, then
 * --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 75
 * keeps 7 dailies, 4 more weeklies, 12 or 11 monthlies and 75 or 74
 * yearlies. */
TEST(restic_doc_hundred_years)
{
	static const char *const s[] = { "keep-daily", "7", "keep-weekly", "5",
					 "keep-monthly", "12", "keep-yearly",
					 "75", NULL };
	struct drgw_policy p = policy(s);
	size_t n = 36525, by[DRGW_KEEP_RULES] = { 0 }, kept;
	struct drgw_plan_item *it = calloc(n, sizeof(*it));
	int64_t *t = calloc(n, sizeof(*t));

	CHECK(it && t);
	for (size_t i = 0; i < n; i++)
		t[i] = at(1926, 3, 10, 22, 0) + (int64_t)i * DAY;
	kept = plan(&p, it, t, n, t[n - 1] + DAY);
	for (size_t i = 0; i < n; i++)
		for (int r = 0; r < DRGW_KEEP_RULES; r++)
			by[r] += !!(it[i].reasons & DRGW_REASON_RULE(r));
	CHECK_INT(by[DRGW_KEEP_DAILY], ==, 7);
	CHECK_INT(by[DRGW_KEEP_WEEKLY], ==, 5);
	CHECK_INT(by[DRGW_KEEP_MONTHLY], ==, 12);
	CHECK_INT(by[DRGW_KEEP_YEARLY], ==, 75);
	/* Each rule keeps its own count; the union is smaller where they
	 * meet (the newest day is the newest of its week, month and year). */
	CHECK(kept > 75 && kept < 7 + 5 + 12 + 75);
	for (size_t i = 0; i < n; i++) {
		if (i >= n - 7) {
			CHECK(it[i].reasons & DRGW_REASON_RULE(DRGW_KEEP_DAILY));
			continue;
		}
		/* Older ones: only the last day of a week, month or year. */
		if (it[i].reasons)
			CHECK(drgw_policy_period(DRGW_KEEP_WEEKLY, t[i]) !=
				      drgw_policy_period(DRGW_KEEP_WEEKLY, t[i + 1]) ||
			      drgw_policy_period(DRGW_KEEP_MONTHLY, t[i]) !=
				      drgw_policy_period(DRGW_KEEP_MONTHLY, t[i + 1]));
	}
	free(it);
	free(t);
}

/* The newest of each period, across several snapshots a day; gaps count
 * no period ("the last N days which have one or more snapshots"). */
TEST(periods_with_snapshots)
{
	static const char *const s[] = { "keep-daily", "3", NULL };
	struct drgw_policy p = policy(s);
	struct drgw_plan_item it[7];
	const int64_t t[7] = {
		at(2026, 1, 1, 2, 0),  at(2026, 1, 1, 14, 0), /* day 1 */
		at(2026, 1, 5, 2, 0),  at(2026, 1, 5, 23, 59), /* day 5 */
		at(2026, 1, 6, 0, 0),                           /* day 6 */
		at(2026, 1, 10, 1, 0), at(2026, 1, 10, 3, 0),   /* day 10 */
	};

	CHECK_INT(plan(&p, it, t, 7, at(2027, 1, 1, 0, 0)), ==, 3);
	CHECK(!it[0].reasons && !it[1].reasons && !it[2].reasons);
	CHECK(it[3].reasons && it[4].reasons && !it[5].reasons &&
	      it[6].reasons);
}

/* restic keeps the oldest snapshot as well when a rule has counts left
 * at the end ("oldest daily snapshot"). */
TEST(oldest)
{
	static const char *const s[] = { "keep-daily", "5", NULL };
	struct drgw_policy p = policy(s);
	struct drgw_plan_item it[3];
	const int64_t t[3] = { at(2026, 1, 1, 8, 0), at(2026, 1, 1, 20, 0),
			       at(2026, 1, 2, 8, 0) };

	CHECK_INT(plan(&p, it, t, 3, at(2027, 1, 1, 0, 0)), ==, 3);
	CHECK(it[0].reasons ==
	      DRGW_REASON_OLDEST(DRGW_REASON_RULE(DRGW_KEEP_DAILY)));
	CHECK(it[1].reasons == DRGW_REASON_RULE(DRGW_KEEP_DAILY));
	/* With the counts used up, the oldest goes. */
	p.count[DRGW_KEEP_DAILY] = 2;
	CHECK_INT(plan(&p, it, t, 3, at(2027, 1, 1, 0, 0)), ==, 2);
	CHECK(!it[0].reasons);
}

/* --keep-within is measured from the newest snapshot, not from now, and
 * is strict ("newer than"); snapshots in the future do not count as the
 * newest. */
TEST(within)
{
	static const char *const s[] = { "keep-within", "2d", NULL };
	struct drgw_policy p = policy(s);
	struct drgw_plan_item it[5];
	const int64_t newest = at(2026, 6, 10, 12, 0);
	const int64_t t[5] = { newest - 2 * DAY, newest - 2 * DAY + 1,
			       newest - DAY, newest, newest + 400 * DAY };

	/* Long after the newest: nothing more goes than right after it. */
	CHECK_INT(plan(&p, it, t, 5, newest + 100 * DAY), ==, 4);
	CHECK(!it[0].reasons && it[1].reasons == DRGW_REASON_WITHIN);
	CHECK(it[3].reasons == DRGW_REASON_WITHIN);
	/* The future snapshot is the newest of the group: kept. */
	CHECK(it[4].reasons == (DRGW_REASON_WITHIN | DRGW_REASON_NEWEST));

	/* Calendar months: 1m before March 31 is March 3 (Feb 31). */
	static const char *const m[] = { "keep-within", "1m", NULL };
	p = policy(m);
	const int64_t u[3] = { at(2026, 3, 3, 0, 0), at(2026, 3, 3, 0, 1),
			       at(2026, 3, 31, 0, 0) };
	CHECK_INT(plan(&p, it, u, 3, at(2027, 1, 1, 0, 0)), ==, 2);
	CHECK(!it[0].reasons && it[1].reasons);
}

TEST(within_periods)
{
	static const char *const s[] = { "keep-within-daily", "3d", NULL };
	struct drgw_policy p = policy(s);
	struct drgw_plan_item it[6];
	const int64_t t[6] = {
		at(2026, 1, 1, 10, 0), /* out of range */
		at(2026, 1, 7, 10, 0), at(2026, 1, 7, 11, 0),
		at(2026, 1, 8, 10, 0), at(2026, 1, 9, 9, 0),
		at(2026, 1, 9, 10, 0),
	};

	CHECK_INT(plan(&p, it, t, 6, at(2027, 1, 1, 0, 0)), ==, 3);
	CHECK(!it[0].reasons && !it[1].reasons && it[2].reasons &&
	      it[3].reasons && !it[4].reasons && it[5].reasons);
	/* The oldest snapshot in range is kept only if it is the oldest of
	 * the group. */
	CHECK_INT(plan(&p, it, t + 1, 5, at(2027, 1, 1, 0, 0)), ==, 4);
	CHECK(it[0].reasons ==
	      DRGW_REASON_OLDEST(DRGW_REASON_WITHIN_PERIOD(DRGW_KEEP_DAILY)));
}

TEST(last_and_unlimited)
{
	static const char *const s[] = { "keep-last", "2", "keep-yearly",
					 "unlimited", NULL };
	struct drgw_policy p = policy(s);
	struct drgw_plan_item it[5];
	const int64_t t[5] = { at(2020, 5, 1, 0, 0), at(2020, 6, 1, 0, 0),
			       at(2021, 1, 1, 0, 0), at(2023, 1, 1, 0, 0),
			       at(2023, 2, 1, 0, 0) };
	char buf[128];

	/* "unlimited" never runs out, so the oldest is kept as well. */
	CHECK_INT(plan(&p, it, t, 5, at(2027, 1, 1, 0, 0)), ==, 5);
	CHECK(it[0].reasons ==
	      DRGW_REASON_OLDEST(DRGW_REASON_RULE(DRGW_KEEP_YEARLY)));
	CHECK(it[4].reasons == (DRGW_REASON_RULE(DRGW_KEEP_LAST) |
				DRGW_REASON_RULE(DRGW_KEEP_YEARLY) |
				DRGW_REASON_NEWEST));
	drgw_reasons_format(it[4].reasons, buf, sizeof(buf));
	CHECK(!strcmp(buf, "last,yearly,newest"));
	CHECK(it[1].reasons == DRGW_REASON_RULE(DRGW_KEEP_YEARLY));
}

/* Planning what a plan kept keeps all of it: an interrupted prune that
 * runs again removes exactly what one run would have. */
TEST(idempotent)
{
	static const char *const s[] = { "keep-daily", "5", "keep-weekly", "3",
					 "keep-monthly", "4", "keep-within-hourly",
					 "1d", "keep-last", "2", NULL };
	struct drgw_policy p = policy(s);
	struct drgw_plan_item it[300], again[300];
	int64_t t[300], kept_t[300];
	unsigned seed = 7;

	for (int round = 0; round < 50; round++) {
		size_t n = 1 + (size_t)(rand_r(&seed) % 300), k = 0;
		int64_t now = at(2027, 1, 1, 0, 0);

		for (size_t i = 0; i < n; i++)
			t[i] = at(2026, 1, 1, 0, 0) +
			       (int64_t)(rand_r(&seed) % (200 * 24)) * HOUR;
		plan(&p, it, t, n, now);
		for (size_t i = 0; i < n; i++)
			if (it[i].reasons)
				kept_t[k++] = t[i];
		CHECK_INT(plan(&p, again, kept_t, k, now), ==, k);
	}
}

/* A prune removes a group's planned removals oldest last (prune.c):
 * whatever subset of the others a killed prune managed to remove, the
 * next plan keeps what the first one kept, and nothing more. */
TEST(idempotent_after_a_partial_removal)
{
	static const char *const s[] = { "keep-within-daily", "7d", NULL };
	struct drgw_policy p = policy(s);
	struct drgw_plan_item it[200], again[200];
	int64_t t[200], left[200];
	unsigned seed = 11;

	for (int round = 0; round < 300; round++) {
		size_t n = 2 + (size_t)(rand_r(&seed) % 30), k = 0, oldest = 0;
		int64_t now = at(2027, 1, 1, 0, 0);
		size_t kept, kept_again = 0;

		for (size_t i = 0; i < n; i++) {
			t[i] = at(2026, 12, 1, 0, 0) +
			       (int64_t)(rand_r(&seed) % (10 * 24)) * HOUR;
			if (t[i] < t[oldest])
				oldest = i;
		}
		kept = plan(&p, it, t, n, now);
		for (size_t i = 0; i < n; i++)
			if (it[i].reasons || i == oldest || rand_r(&seed) % 2)
				left[k++] = t[i];
		plan(&p, again, left, k, now);
		for (size_t i = 0; i < k; i++)
			kept_again += again[i].reasons != 0;
		CHECK_INT(kept_again, ==, kept);
	}
	/* Why the oldest goes last: without it, the oldest left is in the
	 * window and kept ("oldest-within-daily"). */
	{
		int64_t T = at(2026, 12, 10, 0, 0);
		int64_t ex[4] = { T, T - 47 * HOUR, T - 48 * HOUR,
				  T - 30 * 24 * HOUR };

		CHECK_INT(plan(&p, it, ex, 4, T), ==, 2);
		CHECK_INT(plan(&p, it, ex, 3, T), ==, 3);
	}
}

TEST(empty_group_and_one)
{
	static const char *const s[] = { "keep-hourly", "1", NULL };
	struct drgw_policy p = policy(s);
	struct drgw_plan_item it[1];
	const int64_t t[1] = { at(2026, 1, 1, 0, 0) };

	CHECK_OK(drgw_policy_plan(&p, it, 0, 0));
	CHECK_INT(plan(&p, it, t, 1, 0), ==, 1); /* in the future, even */
}
