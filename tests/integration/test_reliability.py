# SPDX-License-Identifier: MIT
"""The defects of the fault campaign (issue 15), each reproduced as an
operator's worst week would: a full cache disk, failed write-back, stalled
backends.  Every test checks what a user would check: is the file on the
backend, does it restore byte for byte, what does drgw say."""
import hashlib
import os
import subprocess
import time

import pytest

from conftest import run


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def small_fs(tmp_path):
    """A 24 MiB file system for the cache, so it can be filled."""
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700",
                    "tmpfs", d], check=True)
    yield d
    subprocess.run(["umount", "-l", d])


def fill(path):
    """Writes path until the file system is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass


def test_seal_is_retried_after_the_cache_disk_was_full(env, small_fs, tmp_path):
    cache = small_fs / "cache"
    gw = env.gateway(cache=cache, settle="1s").start()
    data = os.urandom(1 << 20)
    with open(env.mnt / "a.db", "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    fill(small_fs / "filler")          # during a.db's settle delay
    gw.wait_log(r"cannot record snapshot a\.db in the catalog: No space left")
    # While nothing can be sealed, nothing may claim to be replicated.
    p = env.drgw("wait", "--timeout", "2s", cache=cache, check=False)
    assert p.returncode != 0, p.stdout
    os.unlink(small_fs / "filler")
    env.drgw("wait", "--timeout", "60s", cache=cache)
    gw.stop()
    out = tmp_path / "out"
    env.client("restore", "a.db", out)
    assert out.read_bytes() == data


def test_stop_with_an_unsealable_file_does_not_claim_replicated(env, small_fs):
    cache = small_fs / "cache"
    gw = env.gateway("--drain-timeout", "2s", cache=cache, settle="1s").start()
    (env.mnt / "a.db").write_bytes(os.urandom(1 << 20))
    fill(small_fs / "filler")
    gw.wait_log(r"cannot record snapshot a\.db")
    gw.stop()
    assert "everything is replicated" not in gw.log()
    assert "still pending" in gw.log()
