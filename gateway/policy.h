/* SPDX-License-Identifier: MIT */
/*
 * Retention policies and the planner of `drgw prune`: which snapshots of
 * one group a policy keeps, and why.  The rules and their names are
 * restic's `forget` (--keep-last, --keep-hourly ... --keep-yearly,
 * --keep-within and --keep-within-hourly ... -yearly, "unlimited"), with
 * the same algorithm, so an operator's restic policy carries over; the
 * deliberate differences (UTC periods, the newest snapshot of a group is
 * always kept, no tags or hosts) are in docs/OPERATIONS.md.
 *
 * This module only decides; it reads no backend and no catalog (prune.c
 * does), so the unit tests check it on restic's documented examples.
 */
#ifndef DRGW_POLICY_H
#define DRGW_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* The counted rules, in restic's order. */
enum drgw_keep_rule {
	DRGW_KEEP_LAST,
	DRGW_KEEP_HOURLY,
	DRGW_KEEP_DAILY,
	DRGW_KEEP_WEEKLY,
	DRGW_KEEP_MONTHLY,
	DRGW_KEEP_YEARLY,
	DRGW_KEEP_RULES
};

/* --keep-X unlimited */
#define DRGW_KEEP_UNLIMITED (-1)

/* A restic duration: years, months, days and hours ("1y5m7d2h"). */
struct drgw_ymdh {
	int32_t y, m, d, h;
};

struct drgw_policy {
	/* Some keep-* setting was given at this level (even "0"): the level
	 * replaces the ones below it as a whole (config.h). */
	bool set;
	/* 0: rule off; DRGW_KEEP_UNLIMITED: every period. */
	int32_t count[DRGW_KEEP_RULES];
	/* --keep-within */
	struct drgw_ymdh within;
	/* --keep-within-hourly .. -yearly (index DRGW_KEEP_HOURLY - 1 ..). */
	struct drgw_ymdh within_period[DRGW_KEEP_RULES - 1];
};

/* Reasons to keep a snapshot: one bit each, named by
 * drgw_reason_name().  DRGW_REASON_OLDEST(rule bit) is restic's "oldest
 * daily snapshot": the oldest snapshot of the group, kept because the
 * rule had counts left. */
#define DRGW_REASON_RULE(r) (1ULL << (r)) /* last .. yearly: 0..5 */
#define DRGW_REASON_WITHIN (1ULL << 6)
#define DRGW_REASON_WITHIN_PERIOD(r) (1ULL << (6 + (r))) /* r: HOURLY.. */
#define DRGW_REASON_OLDEST(bit) ((bit) << 12)
#define DRGW_REASON_NEWEST (1ULL << 24)
#define DRGW_REASON_LOCKED (1ULL << 25)
/* Kept by an extra keeper (prune.h): issue 13's last good snapshot of a
 * series, issue 12's base objects of kept incremental versions. */
#define DRGW_REASON_GOOD (1ULL << 26)
#define DRGW_REASON_BASE (1ULL << 27)
#define DRGW_REASON_BITS 28

/* "daily", "oldest-within-weekly", "locked" ...; NULL for unused bits. */
const char *drgw_reason_name(unsigned bit);
/* The names of the bits of reasons, comma-separated; "" for none. */
void drgw_reasons_format(uint64_t reasons, char *buf, size_t size);

/* Is name a policy setting ("keep-daily", ...)? */
bool drgw_policy_key(const char *name);
/* Sets one keep-* setting: a count ("7", "unlimited") or a duration
 * ("30d", "1y6m").  -ENOENT for a name that is not a policy setting,
 * -EINVAL for a bad value (err says which and why). */
int drgw_policy_set(struct drgw_policy *p, const char *name,
		    const char *value, struct drgw_err *err);
/* Nothing to keep by: restic's "empty policy", a usage error here. */
bool drgw_policy_empty(const struct drgw_policy *p);
/* "keep 7 daily, 4 weekly, all within 30d of the newest" */
void drgw_policy_describe(const struct drgw_policy *p, char *buf,
			  size_t size);
/* The shortest and the longest span of time the policy's rules reach back
 * from the newest snapshot (a count of periods as that many periods;
 * keep-last, which depends on how often backups run, counts for neither).
 * 0 when no rule gives one; INT64_MAX for "unlimited". */
int64_t drgw_policy_shortest_window_ns(const struct drgw_policy *p);
int64_t drgw_policy_longest_window_ns(const struct drgw_policy *p);

/* Parses a restic duration ("1y5m7d2h", "30d"). */
int drgw_ymdh_parse(const char *s, struct drgw_ymdh *ret);

/* One snapshot of the group being planned. */
struct drgw_plan_item {
	int64_t time_ns;     /* when it was sealed */
	const char *id;      /* orders snapshots sealed in the same ns */
	uint64_t reasons;    /* out: why it is kept (0: remove) */
};

/*
 * Applies p to the n snapshots of one group, as restic's forget does:
 * sets items[i].reasons (0 means "remove").  The newest snapshot always
 * gets DRGW_REASON_NEWEST.  now_ns only decides which snapshots are in
 * the future (restic measures the within rules from the newest snapshot
 * not after now).  O(n log n).  0 or -ENOMEM.
 */
int drgw_policy_plan(const struct drgw_policy *p, struct drgw_plan_item *items,
		     size_t n, int64_t now_ns);

/* The period numbers of the counted rules, as restic computes them (in
 * UTC here): YYYYMMDDHH, YYYYMMDD, ISO year * 100 + ISO week, YYYYMM,
 * YYYY.  Exposed for the tests. */
int64_t drgw_policy_period(enum drgw_keep_rule rule, int64_t time_ns);

#endif
