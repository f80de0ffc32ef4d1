# SPDX-License-Identifier: MIT
"""restic's `forget` policy in plain Python: the expected sets the prune
tests compare drgw with.  Written from restic's documentation and its
ApplyPolicy (internal/data/snapshot_policy.go), not from drgw's code, with
drgw's documented differences: periods in UTC, the newest snapshot of a
group is always kept.

    keep = plan(policy, [(time, id), ...], now)  ->  {id: [reasons]}

time is a timezone-aware datetime (or ns since the epoch); a policy is a
dict like {"daily": 7, "weekly": 4, "within": "30d", "within-daily": "7d"},
with -1 for "unlimited".
"""
import datetime as dt
import re

UTC = dt.timezone.utc
COUNTED = ["last", "hourly", "daily", "weekly", "monthly", "yearly"]
PERIODS = ["hourly", "daily", "weekly", "monthly", "yearly"]


def as_datetime(t):
    if isinstance(t, dt.datetime):
        return t.astimezone(UTC)
    return dt.datetime.fromtimestamp(t // 10**9, UTC).replace(
        microsecond=(t % 10**9) // 1000)


def period(kind, t):
    t = as_datetime(t)
    if kind == "hourly":
        return (t.year, t.month, t.day, t.hour)
    if kind == "daily":
        return (t.year, t.month, t.day)
    if kind == "weekly":
        iso = t.isocalendar()
        return (iso[0], iso[1])
    if kind == "monthly":
        return (t.year, t.month)
    return (t.year,)


def parse_duration(s):
    """restic's "1y5m7d2h": years, months, days, hours."""
    if not re.fullmatch(r"(\d+[ymdh])+", s):
        raise ValueError(s)
    d = {"y": 0, "m": 0, "d": 0, "h": 0}
    for n, unit in re.findall(r"(\d+)([ymdh])", s):
        d[unit] += int(n)
    return d


def before(t, d):
    """Go's t.AddDate(-y, -m, -d).Add(-h hours): months roll over like
    Go's time.Date (March 31 - 1 month = "February 31" = March 3)."""
    y, m = t.year - d["y"], t.month - d["m"]
    while m < 1:
        m += 12
        y -= 1
    first = t.replace(year=y, month=m, day=1)
    return first + dt.timedelta(days=t.day - 1 - d["d"], hours=-d["h"])


def plan(policy, snapshots, now):
    """{id: [reasons]} for the kept ones; the others are removed."""
    now = as_datetime(now)
    snaps = sorted(((as_datetime(t), i) for t, i in snapshots),
                   key=lambda x: (x[0], x[1]), reverse=True)
    if not snaps:
        return {}
    past = [t for t, _ in snaps if t < now]
    latest = max(past) if past else None
    counts = {k: policy.get(k, 0) for k in COUNTED}
    last = {k: None for k in COUNTED}
    wlast = {k: None for k in PERIODS}
    within = parse_duration(policy["within"]) if policy.get("within") else None
    wfrom = {}
    for k in PERIODS:
        if policy.get("within-" + k):
            wfrom[k] = (before(latest, parse_duration(policy["within-" + k]))
                        if latest else None)
    keep = {}
    for nr, (t, ident) in enumerate(snaps):
        oldest = nr == len(snaps) - 1
        why = []
        if within and (latest is None or t > before(latest, within)):
            why.append("within")
        for k in COUNTED:
            if counts[k] == 0:
                continue
            val = nr if k == "last" else period(k, t)
            if val == last[k] and not oldest:
                continue
            why.append(("oldest-" + k) if val == last[k] else k)
            last[k] = val
            if counts[k] > 0:
                counts[k] -= 1
        for k in PERIODS:
            if k not in wfrom or not (wfrom[k] is None or t > wfrom[k]):
                continue
            val = period(k, t)
            if val == wlast[k] and not oldest:
                continue
            why.append(("oldest-within-" if val == wlast[k] else "within-") + k)
            wlast[k] = val
        if nr == 0:
            why.append("newest")
        if why:
            keep[ident] = why
    return keep
