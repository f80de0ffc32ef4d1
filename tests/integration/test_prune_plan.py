# SPDX-License-Identifier: MIT
"""drgw's retention planner (policy.c, through tests/unit/policy-plan)
against restic_policy.py, an independent Python implementation of restic's
forget rules, on random groups and policies: every rule, several
snapshots a day and gaps, snapshots in the future, same-second ties,
month ends, ISO weeks across years.  No FUSE needed."""
import random
import subprocess

import pytest

from conftest import BUILD
from restic_policy import plan

TOOL = BUILD / "tests" / "unit" / "policy-plan"
BASE = 1704067200  # 2024-01-01T00:00:00Z


@pytest.fixture(autouse=True)
def need_fuse():
    """Overrides the suite's: this test mounts nothing."""


def drgw_plan(policy, snaps, now_s):
    args = [str(TOOL), str(now_s * 10**9)]
    for k, v in policy.items():
        args.append("keep-%s=%s" % (k, "unlimited" if v == -1 else v))
    inp = "".join("%d %s\n" % (t * 10**9, i) for t, i in snaps)
    out = subprocess.run(args, input=inp, capture_output=True, text=True,
                         check=True).stdout
    kept = {}
    for line in out.splitlines():
        ident, why = line.split()
        if why != "-":
            kept[ident] = set(why.split(","))
    return kept


def random_policy(rng):
    p = {}
    for k in ["last", "hourly", "daily", "weekly", "monthly", "yearly"]:
        if rng.random() < 0.35:
            p[k] = rng.choice([1, 2, 3, 5, 7, 12, -1])
    if rng.random() < 0.3:
        p["within"] = rng.choice(["1d", "2d12h", "1m", "1y", "3m10d", "36h"])
    for k in ["hourly", "daily", "weekly", "monthly", "yearly"]:
        if rng.random() < 0.15:
            p["within-" + k] = rng.choice(["1d", "7d", "1m", "1y", "2m15d"])
    return p or {"daily": 3}


def random_group(rng):
    """Snapshots over up to 3 years: bursts, gaps, duplicates."""
    n = rng.randint(1, 200)
    span = rng.choice([2 * 86400, 40 * 86400, 400 * 86400, 1100 * 86400])
    times = []
    for _ in range(n):
        t = BASE + rng.randrange(span)
        if rng.random() < 0.3:
            t -= t % 3600  # on the hour: period boundaries
        times.append(t)
    if rng.random() < 0.2:
        times.append(times[0])  # same second
    return [(t, "v%04d" % i) for i, t in enumerate(times)]


def test_planner_matches_restic_rules():
    rng = random.Random(20261203)
    for round_ in range(300):
        policy = random_policy(rng)
        snaps = random_group(rng)
        last = max(t for t, _ in snaps)
        # Mostly after every snapshot; sometimes some are in the future.
        now = last + 3600 if rng.random() < 0.8 else last - rng.randrange(86400 * 30)
        want = {k: set(v) for k, v in plan(policy, [(t * 10**9, i) for t, i in snaps],
                                             now * 10**9).items()}
        got = drgw_plan(policy, snaps, now)
        assert got == want, (round_, policy, sorted(snaps))


def test_month_ends_and_iso_years():
    # keep-within 1m from March 31 reaches back to March 3 (Go's AddDate);
    # Dec 31 2024 is in ISO week 1 of 2025.
    snaps = [(1709424000 + d * 86400, "d%02d" % d) for d in range(-3, 29)]
    policy = {"within": "1m", "weekly": 10}
    now = 1711929600
    want = {k: set(v) for k, v in plan(policy, [(t * 10**9, i) for t, i in snaps],
                                         now * 10**9).items()}
    assert drgw_plan(policy, snaps, now) == want
    dec = [(1735603200 + h * 3600 * 7, "h%03d" % h) for h in range(40)]
    policy = {"weekly": 3, "yearly": 2}
    now = 1737000000
    want = {k: set(v) for k, v in plan(policy, [(t * 10**9, i) for t, i in dec],
                                         now * 10**9).items()}
    assert drgw_plan(policy, dec, now) == want
