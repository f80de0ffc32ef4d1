# SPDX-License-Identifier: MIT
"""A year of backups in seconds, for the prune tests: the real daemon runs
under libfaketime (Debian's faketime) with its clock in a file that the
test moves from one backup to the next, so every snapshot is sealed "at"
the time the schedule says; the backends get real uploads.  And the
expected result of a prune, computed from the backends' object lists and
the schedule with restic_policy.py, never with drgw."""
import contextlib
import datetime as dt
import math
import os
import random
import re
import sqlite3
import time
from pathlib import Path

import restic_policy

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
VID_TIME = re.compile(r"^(\d{8}T\d{6}Z)-[0-9a-f]+\.drgw$")
UTC = dt.timezone.utc


class FakeClock:
    """libfaketime's clock of every process started with env(): the real
    clock plus an offset read from a file at every call."""

    def __init__(self, path):
        self.path = Path(path)
        self.real()

    def env(self):
        e = {"LD_PRELOAD": str(FAKETIME),
             "FAKETIME_TIMESTAMP_FILE": str(self.path),
             "FAKETIME_NO_CACHE": "1",
             # Timeouts, settle delays and backoff stay in real time.
             "DONT_FAKE_MONOTONIC": "1"}
        # A sanitizer runtime wants to be first among the libraries.
        asan = os.environ.get("ASAN_OPTIONS", "")
        e["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        return e

    def _write(self, text):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)

    def set(self, epoch):
        """The clock reads epoch + 1 to + 2 s from now on: never before."""
        self._write("%+d\n" % (math.ceil(epoch - time.time()) + 1))

    def real(self):
        self._write("+0\n")


@contextlib.contextmanager
def environ(extra):
    """Processes started inside see extra in their environment."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def schedule(seed, end, days):
    """[(epoch, name)]: a daily backup app-YYYYMMDD-HHMMSS.db over `days`
    days ending the day before `end`, with one to three a day, random gaps
    and a nine-day outage, and a state.json rewritten every sixth day.  No
    two snapshots share a minute of the day, and none is within a minute
    of midnight, so no window or period boundary falls within the
    second-resolution of the object names."""
    rng = random.Random(seed)
    minutes = [h * 60 + m for h in range(1, 23) for m in range(1, 59)]
    rng.shuffle(minutes)
    first = dt.datetime.fromtimestamp(end, UTC).replace(
        hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=days)
    out = []
    for d in range(days):
        day = first + dt.timedelta(days=d)
        if rng.random() < 0.12 or 200 <= d < 209:
            continue
        n = rng.choices([1, 2, 3], [75, 18, 7])[0]
        for _ in range(n):
            t = day + dt.timedelta(minutes=minutes.pop())
            out.append((t.timestamp(), t.strftime("app-%Y%m%d-%H%M%S.db")))
        if d % 6 == 0:
            t = day + dt.timedelta(minutes=minutes.pop())
            out.append((t.timestamp(), "state.json"))
    return sorted(out)


def catalog_count(cache, where="1"):
    db = sqlite3.connect("file:%s?mode=ro" % (Path(cache) / "catalog.db"),
                         uri=True, timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM versions WHERE " +
                          where).fetchone()[0]
    finally:
        db.close()


def wait_for(cond, what, timeout):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError(what)
        time.sleep(0.002)


def run_year(clock, mnt, cache, plan, timeout=10):
    """Writes plan's snapshots through the mount at their fake times, each
    sealed before the clock moves on; the local copies go once sealed (the
    seed's own retention is no part of this)."""
    base = catalog_count(cache)
    for i, (t, name) in enumerate(plan):
        path = Path(mnt) / name
        if path.exists():
            # A file rewritten while its last version is encoded changes
            # that version instead of making a new one: wait it out.
            wait_for(lambda: catalog_count(cache, "state = 'sealed'") == 0,
                     "%s was not encoded" % name, timeout)
        clock.set(t)
        path.write_bytes(("%s %d\n" % (name, i)).encode() * 8)
        wait_for(lambda: catalog_count(cache) >= base + i + 1,
                 "%s was not sealed" % name, timeout)
        if name != "state.json":
            path.unlink()
    clock.real()


def vid_time(key):
    m = VID_TIME.match(key)
    return dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(
        tzinfo=UTC).timestamp() if m else None


def name_pattern(name):
    """The group of a name: runs of digits in the last component -> '*'."""
    head, _, base = name.rpartition("/")
    return (head + "/" if head else "") + re.sub(r"\d+", "*", base)


def snapshots_of(keys, plan):
    """{vid: (epoch, name)} for the object keys of a backend: the time from
    the key (the UTC seal second), the name from the schedule entry it was
    sealed for (sealing takes well under a minute)."""
    times = sorted(plan)
    out = {}
    for key in keys:
        t = vid_time(key)
        assert t is not None, key
        match = [n for s, n in times if s <= t < s + 60]
        assert len(match) == 1, (key, match)
        out[key[:-len(".drgw")]] = (t, match[0])
    return out


def expected(policy, snaps, now):
    """{vid: set(reasons)} that a prune keeps; the rest go."""
    groups = {}
    for vid, (t, name) in snaps.items():
        groups.setdefault(name_pattern(name), []).append((int(t) * 10**9, vid))
    keep = {}
    for members in groups.values():
        for vid, why in restic_policy.plan(policy, members, int(now) * 10**9).items():
            keep[vid] = set(why)
    return keep
