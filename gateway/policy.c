/* SPDX-License-Identifier: MIT */
/*
 * Retention policies and the planner; see policy.h.
 *
 * The planner follows restic's ApplyPolicy step by step: snapshots newest
 * first; each counted rule keeps a snapshot whose period differs from the
 * period of the last one it kept, while it has counts left; a rule with
 * counts left when it reaches the oldest snapshot keeps that one too
 * ("oldest"); --keep-within keeps what is after newest - duration; the
 * --keep-within-X rules keep one snapshot per period after newest -
 * duration, and the oldest one in range.  A snapshot is kept if any rule
 * keeps it.  Because every rule keeps the newest snapshot of whole
 * periods, applying a policy again to what it kept keeps all of it: a
 * prune that was interrupted and run again removes exactly what one
 * uninterrupted run would have.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

static const char *const rule_names[DRGW_KEEP_RULES] = {
	"last", "hourly", "daily", "weekly", "monthly", "yearly",
};

/* Nominal period lengths, for the windows (not for the planning). */
static const int64_t rule_seconds[DRGW_KEEP_RULES] = {
	0, 3600, 86400, 7 * 86400, 31 * 86400, 366 * 86400,
};

const char *drgw_reason_name(unsigned bit)
{
	static const char *const names[DRGW_REASON_BITS] = {
		[0] = "last", [1] = "hourly", [2] = "daily", [3] = "weekly",
		[4] = "monthly", [5] = "yearly", [6] = "within",
		[7] = "within-hourly", [8] = "within-daily",
		[9] = "within-weekly", [10] = "within-monthly",
		[11] = "within-yearly",
		[13] = "oldest-hourly", [14] = "oldest-daily",
		[15] = "oldest-weekly", [16] = "oldest-monthly",
		[17] = "oldest-yearly",
		[19] = "oldest-within-hourly", [20] = "oldest-within-daily",
		[21] = "oldest-within-weekly", [22] = "oldest-within-monthly",
		[23] = "oldest-within-yearly",
		[24] = "newest", [25] = "locked", [26] = "good", [27] = "base",
	};

	return bit < DRGW_REASON_BITS ? names[bit] : NULL;
}

void drgw_reasons_format(uint64_t reasons, char *buf, size_t size)
{
	size_t len = 0;

	if (size)
		buf[0] = '\0';
	for (unsigned b = 0; b < DRGW_REASON_BITS && size; b++) {
		const char *name = drgw_reason_name(b);
		int n;

		if (!(reasons & (1ULL << b)) || !name)
			continue;
		n = snprintf(buf + len, size - len, "%s%s", len ? "," : "",
			     name);
		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
	}
}

/* --- settings --- */

bool drgw_policy_key(const char *name)
{
	return !strncmp(name, "keep-", 5);
}

int drgw_ymdh_parse(const char *s, struct drgw_ymdh *ret)
{
	struct drgw_ymdh d = { 0 };
	bool any = false;

	while (*s) {
		uint64_t v = 0;
		const char *start = s;
		int32_t *field;

		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (uint64_t)(*s - '0');
			if (v > 1000000)
				return -ERANGE;
			s++;
		}
		if (s == start)
			return -EINVAL;
		switch (*s) {
		case 'y':
			field = &d.y;
			break;
		case 'm':
			field = &d.m;
			break;
		case 'd':
			field = &d.d;
			break;
		case 'h':
			field = &d.h;
			break;
		default:
			return -EINVAL;
		}
		*field += (int32_t)v;
		if (*field > 1000000)
			return -ERANGE;
		s++;
		any = true;
	}
	if (!any)
		return -EINVAL;
	*ret = d;
	return 0;
}

static bool ymdh_zero(const struct drgw_ymdh *d)
{
	return !d->y && !d->m && !d->d && !d->h;
}

static int parse_count(const char *value, int32_t *ret)
{
	uint64_t v;

	if (!strcmp(value, "unlimited")) {
		*ret = DRGW_KEEP_UNLIMITED;
		return 0;
	}
	if (drgw_parse_u64(value, &v) < 0 || v > INT32_MAX)
		return -EINVAL;
	*ret = (int32_t)v;
	return 0;
}

int drgw_policy_set(struct drgw_policy *p, const char *name,
		    const char *value, struct drgw_err *err)
{
	const char *rest;

	if (!drgw_policy_key(name))
		return -ENOENT;
	rest = name + 5;
	for (int r = 0; r < DRGW_KEEP_RULES; r++) {
		if (strcmp(rest, rule_names[r]))
			continue;
		if (parse_count(value, &p->count[r]) < 0) {
			drgw_err_set(err,
				     "invalid value '%s' for %s: expected a count or 'unlimited'",
				     value, name);
			return -EINVAL;
		}
		p->set = true;
		return 0;
	}
	if (!strncmp(rest, "within", 6)) {
		struct drgw_ymdh *d = NULL;

		if (!rest[6])
			d = &p->within;
		for (int r = DRGW_KEEP_HOURLY; !d && r < DRGW_KEEP_RULES; r++)
			if (rest[6] == '-' && !strcmp(rest + 7, rule_names[r]))
				d = &p->within_period[r - 1];
		if (d) {
			if (drgw_ymdh_parse(value, d) < 0) {
				drgw_err_set(err,
					     "invalid duration '%s' for %s: expected years, months, days and hours as restic writes them, e.g. 30d, 1y6m, 2d12h",
					     value, name);
				return -EINVAL;
			}
			p->set = true;
			return 0;
		}
	}
	drgw_err_set(err,
		     "unknown setting '%s' (keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly, keep-yearly, keep-within, keep-within-hourly ... keep-within-yearly)",
		     name);
	return -ENOENT;
}

bool drgw_policy_empty(const struct drgw_policy *p)
{
	for (int r = 0; r < DRGW_KEEP_RULES; r++)
		if (p->count[r])
			return false;
	if (!ymdh_zero(&p->within))
		return false;
	for (int r = 0; r < DRGW_KEEP_RULES - 1; r++)
		if (!ymdh_zero(&p->within_period[r]))
			return false;
	return true;
}

static void ymdh_format(const struct drgw_ymdh *d, char *buf, size_t size)
{
	size_t len = 0;
	const int32_t v[4] = { d->y, d->m, d->d, d->h };
	const char units[4] = { 'y', 'm', 'd', 'h' };

	buf[0] = '\0';
	for (int i = 0; i < 4; i++) {
		int n;

		if (!v[i])
			continue;
		n = snprintf(buf + len, size - len, "%d%c", v[i], units[i]);
		if (n < 0 || (size_t)n >= size - len)
			return;
		len += (size_t)n;
	}
}

void drgw_policy_describe(const struct drgw_policy *p, char *buf,
			  size_t size)
{
	size_t len = 0;
	char dur[64];

#define ADD(...)                                                           \
	do {                                                               \
		int n_ = snprintf(buf + len, size - len, __VA_ARGS__);     \
		if (n_ > 0 && (size_t)n_ < size - len)                     \
			len += (size_t)n_;                                 \
	} while (0)
	buf[0] = '\0';
	if (drgw_policy_empty(p)) {
		ADD("no policy");
		return;
	}
	ADD("keep");
	for (int r = 0; r < DRGW_KEEP_RULES; r++) {
		if (p->count[r] == DRGW_KEEP_UNLIMITED)
			ADD("%s all %s", len > 4 ? "," : "", rule_names[r]);
		else if (p->count[r])
			ADD("%s %d %s", len > 4 ? "," : "", p->count[r],
			    rule_names[r]);
	}
	for (int r = DRGW_KEEP_HOURLY; r < DRGW_KEEP_RULES; r++) {
		if (ymdh_zero(&p->within_period[r - 1]))
			continue;
		ymdh_format(&p->within_period[r - 1], dur, sizeof(dur));
		ADD("%s %s within %s", len > 4 ? "," : "", rule_names[r], dur);
	}
	if (!ymdh_zero(&p->within)) {
		ymdh_format(&p->within, dur, sizeof(dur));
		ADD("%s all within %s of the newest", len > 4 ? "," : "", dur);
	}
#undef ADD
}

static int64_t ymdh_nominal_ns(const struct drgw_ymdh *d)
{
	return ((int64_t)d->y * 366 * 86400 + (int64_t)d->m * 31 * 86400 +
		(int64_t)d->d * 86400 + (int64_t)d->h * 3600) *
	       NSEC_PER_SEC;
}

/* Each rule's window; fn picks one. */
static int64_t window(const struct drgw_policy *p, bool longest)
{
	int64_t best = 0;

	for (int r = 0; r <= DRGW_KEEP_RULES + DRGW_KEEP_RULES - 1; r++) {
		int64_t w;

		if (r < DRGW_KEEP_RULES) {
			if (!p->count[r] || !rule_seconds[r])
				continue;
			w = p->count[r] == DRGW_KEEP_UNLIMITED ?
				    INT64_MAX :
				    (int64_t)p->count[r] * rule_seconds[r] *
					    NSEC_PER_SEC;
		} else {
			const struct drgw_ymdh *d =
				r == DRGW_KEEP_RULES ?
					&p->within :
					&p->within_period[r - DRGW_KEEP_RULES - 1];

			if (ymdh_zero(d))
				continue;
			w = ymdh_nominal_ns(d);
		}
		if (!best || (longest ? w > best : w < best))
			best = w;
	}
	return best;
}

int64_t drgw_policy_shortest_window_ns(const struct drgw_policy *p)
{
	return window(p, false);
}

int64_t drgw_policy_longest_window_ns(const struct drgw_policy *p)
{
	return window(p, true);
}

/* --- planning --- */

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

/* ISO 8601 year * 100 + week of tm (UTC): weeks start on Monday, week 1
 * holds the year's first Thursday. */
static int64_t iso_week(const struct tm *tm)
{
	int year = tm->tm_year + 1900;
	int wday = tm->tm_wday ? tm->tm_wday : 7; /* Monday 1 .. Sunday 7 */
	int yday = tm->tm_yday + 1;
	int week = (yday - wday + 10) / 7;

	if (week < 1) {
		/* The last week of the previous year: 52 or 53. */
		int py = year - 1;
		int pdays = (py % 4 == 0 && (py % 100 || py % 400 == 0)) ? 366 : 365;

		year = py;
		week = (yday + pdays - wday + 10) / 7;
	} else if (week == 53) {
		/* Week 53 only if the year's Dec 31 is a Thursday or later
		 * in its week (Thu, Fri, Sat, Sun). */
		int days = (year % 4 == 0 && (year % 100 || year % 400 == 0)) ?
				   366 : 365;
		int dec31_wday = (wday + (days - yday)) % 7;

		if (dec31_wday == 0)
			dec31_wday = 7;
		if (dec31_wday < 4) {
			year++;
			week = 1;
		}
	}
	return (int64_t)year * 100 + week;
}

int64_t drgw_policy_period(enum drgw_keep_rule rule, int64_t time_ns)
{
	time_t s = (time_t)floor_div(time_ns, NSEC_PER_SEC);
	struct tm tm;
	int64_t y, m, d;

	gmtime_r(&s, &tm);
	y = tm.tm_year + 1900;
	m = tm.tm_mon + 1;
	d = tm.tm_mday;
	switch (rule) {
	case DRGW_KEEP_HOURLY:
		return y * 1000000 + m * 10000 + d * 100 + tm.tm_hour;
	case DRGW_KEEP_DAILY:
		return y * 10000 + m * 100 + d;
	case DRGW_KEEP_WEEKLY:
		return iso_week(&tm);
	case DRGW_KEEP_MONTHLY:
		return y * 100 + m;
	case DRGW_KEEP_YEARLY:
		return y;
	default:
		return 0;
	}
}

/* newest - d, as Go's AddDate(-y, -m, -d).Add(-h hours) computes it in
 * UTC: the date moves by calendar years, months and days (a day past the
 * end of a month rolls over, as timegm() does), then by whole hours. */
static int64_t ymdh_before(int64_t t_ns, const struct drgw_ymdh *d)
{
	time_t s = (time_t)floor_div(t_ns, NSEC_PER_SEC);
	int64_t frac = t_ns - (int64_t)s * NSEC_PER_SEC;
	struct tm tm;

	gmtime_r(&s, &tm);
	tm.tm_year -= d->y;
	tm.tm_mon -= d->m;
	tm.tm_mday -= d->d;
	s = timegm(&tm) - (time_t)d->h * 3600;
	return (int64_t)s * NSEC_PER_SEC + frac;
}

static int newest_first(const void *a, const void *b, void *arg)
{
	const struct drgw_plan_item *items = arg;
	const struct drgw_plan_item *x = &items[*(const size_t *)a];
	const struct drgw_plan_item *y = &items[*(const size_t *)b];

	if (x->time_ns != y->time_ns)
		return x->time_ns > y->time_ns ? -1 : 1;
	return -strcmp(x->id ? x->id : "", y->id ? y->id : "");
}

int drgw_policy_plan(const struct drgw_policy *p, struct drgw_plan_item *items,
		     size_t n, int64_t now_ns)
{
	int64_t last[DRGW_KEEP_RULES], wlast[DRGW_KEEP_RULES - 1];
	int64_t wfrom[DRGW_KEEP_RULES - 1], from = 0;
	int32_t count[DRGW_KEEP_RULES];
	int64_t latest = INT64_MIN;
	size_t *order;

	if (n == 0)
		return 0;
	order = malloc(n * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		order[i] = i;
		items[i].reasons = 0;
		/* restic: the newest snapshot that is not in the future. */
		if (items[i].time_ns < now_ns && items[i].time_ns > latest)
			latest = items[i].time_ns;
	}
	qsort_r(order, n, sizeof(*order), newest_first, items);

	for (int r = 0; r < DRGW_KEEP_RULES; r++) {
		count[r] = p->count[r];
		last[r] = INT64_MIN;
	}
	/* Without a snapshot in the past restic measures from the zero
	 * time, so every snapshot is within any duration. */
	if (!ymdh_zero(&p->within))
		from = latest == INT64_MIN ? INT64_MIN :
					     ymdh_before(latest, &p->within);
	for (int r = 0; r < DRGW_KEEP_RULES - 1; r++) {
		wlast[r] = INT64_MIN;
		wfrom[r] = ymdh_zero(&p->within_period[r]) || latest == INT64_MIN ?
				   INT64_MIN :
				   ymdh_before(latest, &p->within_period[r]);
	}

	for (size_t nr = 0; nr < n; nr++) {
		struct drgw_plan_item *it = &items[order[nr]];
		bool oldest = nr == n - 1;

		if (!ymdh_zero(&p->within) && it->time_ns > from)
			it->reasons |= DRGW_REASON_WITHIN;
		for (int r = 0; r < DRGW_KEEP_RULES; r++) {
			int64_t val;

			if (!count[r])
				continue;
			/* keep-last: every snapshot is a period of its own. */
			val = r == DRGW_KEEP_LAST ? (int64_t)nr :
						    drgw_policy_period(r, it->time_ns);
			if (val == last[r] && !oldest)
				continue;
			it->reasons |= val == last[r] ?
					       DRGW_REASON_OLDEST(DRGW_REASON_RULE(r)) :
					       DRGW_REASON_RULE(r);
			last[r] = val;
			if (count[r] > 0)
				count[r]--;
		}
		for (int r = DRGW_KEEP_HOURLY; r < DRGW_KEEP_RULES; r++) {
			int64_t val;

			if (ymdh_zero(&p->within_period[r - 1]) ||
			    !(it->time_ns > wfrom[r - 1]))
				continue;
			val = drgw_policy_period(r, it->time_ns);
			if (val == wlast[r - 1] && !oldest)
				continue;
			it->reasons |= val == wlast[r - 1] ?
					       DRGW_REASON_OLDEST(DRGW_REASON_WITHIN_PERIOD(r)) :
					       DRGW_REASON_WITHIN_PERIOD(r);
			wlast[r - 1] = val;
		}
	}
	/* Never removed, whatever the rules say. */
	items[order[0]].reasons |= DRGW_REASON_NEWEST;
	free(order);
	return 0;
}
