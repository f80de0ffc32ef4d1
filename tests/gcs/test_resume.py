# SPDX-License-Identifier: MIT
"""Resumable uploads that are interrupted and resumed: SIGKILL in the
middle of a chunk and right after a token was saved, sessions that
vanished, connections cut mid-chunk, lost answers, a server that
disagrees on the offset, cancellation, abort_put(), and resume tokens that
must not be trusted."""
import json
import signal
import time
import urllib.parse

from conftest import (BUCKET, MiB, Harness, chunk_start, is_status_query,
                      range_end, sha256_file, uploads, write_random)

CHUNK = {"chunk-size": "1M"}
ALIGN = 256 * 1024


def token(path):
    """The fields of a saved resume token, {} if there is none."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    assert lines[0] == "drgw-gcs-resumable 1"
    size, sha = lines[1].split()[1], lines[1].split()[3]
    assert lines[2].startswith("session ")
    assert lines[3].startswith("offset ")
    return {"size": int(size), "sha256": sha,
            "session": urllib.parse.unquote(lines[2][8:]),
            "offset": int(lines[3][7:])}


def put(h, tok, key, src, *extra, options=CHUNK, **kw):
    """The gateway's retry: same key, same object, same token store."""
    return h.run("put", "--token", tok, "--sha256", sha256_file(src),
                 *extra, key, src, options=options, **kw)


def check_resumed(emulator, key, src, tmp_path, at_least=0):
    """After a resumed put: a status query came first, the upload went on
    from the offset the server confirmed, nothing before it was sent
    again, no new session was started, and the object is byte-identical."""
    log = emulator.log()
    assert not [e for e in log if e["method"] == "POST"], log
    ups = uploads(log)
    assert is_status_query(ups[0]) and ups[0]["status"] == 308, ups[0]
    confirmed = range_end(ups[0])
    assert confirmed >= at_least
    starts = [chunk_start(e) for e in ups[1:]]
    assert starts[0] == confirmed
    assert all(s is not None and s >= confirmed for s in starts), starts
    assert ups[-1]["status"] == 200
    assert emulator.media(key) == src.read_bytes()
    return confirmed


def test_sigkill_mid_chunk(harness, emulator, tmp_path):
    """SIGKILL while a chunk is on the wire; the server may keep part of
    it, and the restarted upload must take the server's word for it."""
    src = write_random(tmp_path / "f", 40 * MiB, seed=10)
    tok = tmp_path / "tok"
    # At 10 MiB/s a 1 MiB chunk is read for 100 ms (digests), then sent
    # in two 512 KiB pieces read for 50 ms each: 175 ms after a save, half
    # of the next chunk is on the wire.
    proc = harness.popen("put", "--token", tok, "--sha256", sha256_file(src),
                         "--rate", 10 * MiB, "big", src, options=CHUNK)
    deadline = time.time() + 120
    while token(tok).get("offset", 0) < 8 * MiB:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.005)
    time.sleep(0.175)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    saved = token(tok)
    cut = [e for e in emulator.log() if e["status"] is None]
    assert saved["size"] == 40 * MiB and saved["sha256"] == sha256_file(src)

    emulator.reset_log()
    put(harness, tok, "big", src)
    confirmed = check_resumed(emulator, "test_sigkill_mid_chunk/big", src,
                              tmp_path, at_least=saved["offset"])
    assert confirmed % ALIGN == 0
    # Usually the kill cut a chunk and the server kept part of it, beyond
    # the token's offset; on a slow machine the kill may fall between
    # chunks instead, which the assertions above cover as well.
    if cut and cut[0]["bytesReceived"] >= ALIGN:
        assert confirmed > saved["offset"]
    print("token offset %d, server offset %d, cut after %s bytes"
          % (saved["offset"], confirmed,
             cut[0]["bytesReceived"] if cut else None))


def test_sigkill_after_token_saved(harness, emulator, tmp_path):
    """A crash right after progress was recorded: resume exactly there."""
    src = write_random(tmp_path / "f", 6 * MiB + 5, seed=11)
    tok = tmp_path / "tok"
    # Saves: 1 after the session started, then one per confirmed chunk.
    p = put(harness, tok, "k", src, "--kill-after-saves", "4", check=False)
    assert p.returncode == -signal.SIGKILL
    assert token(tok)["offset"] == 3 * MiB
    emulator.reset_log()
    put(harness, tok, "k", src)
    assert check_resumed(emulator, "test_sigkill_after_token_saved/k", src,
                         tmp_path) == 3 * MiB


def test_sigkill_before_any_data(harness, emulator, tmp_path):
    """The session URI is saved before data is sent; a 308 without Range
    means "start at 0", in the same session."""
    src = write_random(tmp_path / "f", 2 * MiB + 1, seed=12)
    tok = tmp_path / "tok"
    p = put(harness, tok, "k", src, "--kill-after-saves", "1", check=False)
    assert p.returncode == -signal.SIGKILL
    assert token(tok)["offset"] == 0
    assert [e["method"] for e in emulator.log()] == ["POST"]
    emulator.reset_log()
    put(harness, tok, "k", src)
    log = uploads(emulator.log())
    assert log[0]["responseRange"] is None
    assert check_resumed(emulator, "test_sigkill_before_any_data/k", src,
                         tmp_path) == 0


def test_session_deleted(harness, emulator, tmp_path):
    """The session is gone (cancelled, expired): start a new one."""
    src = write_random(tmp_path / "f", 4 * MiB, seed=13)
    tok = tmp_path / "tok"
    put(harness, tok, "k", src, "--kill-after-saves", "3", check=False)
    session = token(tok)["session"]
    path = session[len(emulator.url):]
    assert emulator.api("DELETE", path)[0] == 499
    emulator.reset_log()
    put(harness, tok, "k", src)
    log = emulator.log()
    assert (log[0]["method"], log[0]["status"]) == ("PUT", 404)
    assert is_status_query(log[0])
    # Not stored already (a final chunk that landed before the session
    # went): a new session.
    assert (log[1]["method"], log[1]["status"]) == ("GET", 404)
    assert (log[2]["method"], log[2]["status"]) == ("POST", 200)
    assert [chunk_start(e) for e in log[3:]] == [0, MiB, 2 * MiB, 3 * MiB]
    assert emulator.media("test_session_deleted/k") == src.read_bytes()
    assert token(tok)["session"] != session


def test_emulator_restarts(own_emulator, tmp_path):
    """A restart on the same data keeps the session; one on a fresh data
    dir loses it, and a new session is started."""
    emu = own_emulator()
    h = Harness(tmp_path, emu.url, "gcs://%s/r" % BUCKET, options=CHUNK)
    src = write_random(tmp_path / "f", 5 * MiB, seed=14)
    tok = tmp_path / "tok"
    put(h, tok, "k", src, "--kill-after-saves", "3", check=False)
    emu.restart()
    put(h, tok, "k", src)
    assert check_resumed(emu, "r/k", src, tmp_path) == 2 * MiB

    tok2 = tmp_path / "tok2"
    put(h, tok2, "k2", src, "--kill-after-saves", "3", check=False)
    emu.restart(fresh_dir=tmp_path / "fresh")
    put(h, tok2, "k2", src)
    log = emu.log()
    assert [(e["method"], e["status"]) for e in log[:3]] == \
        [("PUT", 404), ("GET", 404), ("POST", 200)]
    assert emu.media("r/k2") == src.read_bytes()


def test_connection_cut_mid_chunk(harness, emulator, tmp_path):
    """The server keeps the 256 KiB-aligned part of a cut chunk; the
    upload asks where it is and goes on from there."""
    src = write_random(tmp_path / "f", 3 * MiB, seed=15)
    tok = tmp_path / "tok"
    emulator.fail(mode="reset", bytes=600_000, method="PUT", path="upload_id")
    put(harness, tok, "k", src)
    ups = uploads(emulator.log())
    assert ups[0]["status"] is None and ups[0]["fault"] == "reset"
    assert is_status_query(ups[1]) and ups[1]["responseRange"] == "bytes=0-524287"
    assert [chunk_start(e) for e in ups[2:]] == [524288, 524288 + MiB, 524288 + 2 * MiB]
    assert emulator.media("test_connection_cut_mid_chunk/k") == src.read_bytes()


def test_lost_chunk_answer(harness, emulator, tmp_path):
    """A chunk was stored but its 308 never came: not sent again."""
    src = write_random(tmp_path / "f", 3 * MiB, seed=16)
    tok = tmp_path / "tok"
    emulator.fail(status=503, mode="after", method="PUT", path="upload_id")
    put(harness, tok, "k", src)
    ups = uploads(emulator.log())
    assert ups[0]["fault"] == "after" and chunk_start(ups[0]) == 0
    assert is_status_query(ups[1]) and range_end(ups[1]) == MiB
    assert [chunk_start(e) for e in ups[2:]] == [MiB, 2 * MiB]
    assert emulator.media("test_lost_chunk_answer/k") == src.read_bytes()


def test_lost_final_answer(tmp_path, emulator, proxy):
    """The last chunk completed the object but the answer was lost: the
    status query finds the object, which is checked, not uploaded again."""
    h = Harness(tmp_path, proxy.url, "gcs://%s/lostfinal" % BUCKET,
                options={"chunk-size": "256K"})
    src = write_random(tmp_path / "f", 600_000, seed=17)
    lost = []

    def lose(rec):
        if "x-goog-hash" in rec["headers"] and not lost:
            lost.append(rec)
            return True
        return False
    proxy.lose_answer = lose
    put(h, tmp_path / "tok", "k", src, options={"chunk-size": "256K"})
    puts = [r for r in proxy.requests("PUT")]
    ranges = [r["headers"]["content-range"] for r in puts]
    assert ranges == ["bytes 0-262143/600000", "bytes 262144-524287/600000",
                      "bytes 524288-599999/600000", "bytes */600000"]
    assert lost and puts[2].get("lost") and puts[3]["status"] == 200
    assert emulator.media("lostfinal/k") == src.read_bytes()


def test_offset_mismatch_asks_the_server(tmp_path, emulator, proxy):
    """A server acknowledged a chunk it then lost.  It answers the next
    chunk with its plain-text 503 "upload offset ... exceeds"; the plugin
    asks for the offset instead of sending the same chunk again, and sends
    the lost bytes from there."""
    h = Harness(tmp_path, proxy.url, "gcs://%s/mismatch" % BUCKET,
                options={"chunk-size": "256K"})
    src = write_random(tmp_path / "f", 900_000, seed=18)

    def lose_second_chunk(rec):
        if rec["headers"].get("content-range") == "bytes 262144-524287/900000" \
                and not any(r.get("faked") for r in proxy.requests()):
            return 308, [("Range", "bytes=0-524287")], b""
        return None
    proxy.intercept = lose_second_chunk
    put(h, tmp_path / "tok", "k", src, options={"chunk-size": "256K"})
    seen = [(r["headers"]["content-range"], r["status"]) for r in proxy.requests("PUT")]
    assert seen == [("bytes 0-262143/900000", 308),
                    ("bytes 262144-524287/900000", 308),     # faked
                    ("bytes 524288-786431/900000", 503),
                    ("bytes */900000", 308),
                    ("bytes 262144-524287/900000", 308),
                    ("bytes 524288-786431/900000", 308),
                    ("bytes 786432-899999/900000", 200)]
    mismatch = [e for e in emulator.log() if e["status"] == 503]
    assert len(mismatch) == 1
    assert emulator.media("mismatch/k") == src.read_bytes()


def test_chunk_failures_give_up(harness, emulator, tmp_path):
    src = write_random(tmp_path / "f", 2 * MiB, seed=19)
    tok = tmp_path / "tok"
    emulator.fail(count=100, status=503, method="PUT", path="upload_id")
    p = put(harness, tok, "k", src, check=False)
    assert p.returncode == 1
    assert "put: EAGAIN: gcs: UPLOAD STATUS drgw/test_chunk_failures_give_up/k: " \
           "503 backendError: Injected fault: 503 Service Unavailable" in p.stderr
    # The session survives in the token for the gateway's next try.
    emulator.clear_faults()
    emulator.reset_log()
    put(harness, tok, "k", src)
    assert check_resumed(emulator, "test_chunk_failures_give_up/k", src,
                         tmp_path) == 0


def test_cancel_saves_progress(harness, emulator, tmp_path):
    src = write_random(tmp_path / "f", 8 * MiB, seed=20)
    tok, cancel = tmp_path / "tok", tmp_path / "cancel"
    proc = harness.popen("put", "--token", tok, "--sha256", sha256_file(src),
                         "--rate", 16 * MiB, "--cancel-file", cancel, "k", src,
                         options=CHUNK)
    deadline = time.time() + 60
    while token(tok).get("offset", 0) < 2 * MiB:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.005)
    cancel.write_text("")
    out, err = proc.communicate()
    assert proc.returncode == 1
    assert err.strip() == ("plugin-harness: put: ECANCELED: gcs: UPLOAD "
                           "drgw/test_cancel_saves_progress/k: upload cancelled")
    done = token(tok)["offset"]
    assert 2 * MiB <= done < 8 * MiB
    cancel.unlink()
    emulator.reset_log()
    put(harness, tok, "k", src)
    assert check_resumed(emulator, "test_cancel_saves_progress/k", src,
                         tmp_path) >= done


def test_abort_put(harness, emulator, tmp_path):
    src = write_random(tmp_path / "f", 3 * MiB, seed=21)
    tok = tmp_path / "tok"
    put(harness, tok, "k", src, "--kill-after-saves", "2", check=False)
    session = token(tok)["session"]
    emulator.reset_log()
    harness.run("abort", "k", tok)
    [e] = emulator.log()
    assert (e["method"], e["status"]) == ("DELETE", 499)
    assert emulator.api("PUT", session[len(emulator.url):], b"",
                        {"Content-Range": "bytes */3145728"})[0] == 404
    # Again, and with tokens that are not ours: nothing to do.
    harness.run("abort", "k", tok)
    other = tmp_path / "other"
    other.write_text("drgw-s3-mpu 1\nsize 1 part 5 sha256 -\nupload x\n")
    emulator.reset_log()
    harness.run("abort", "k", other)
    assert emulator.log() == []


def test_token_for_other_object(harness, emulator, tmp_path):
    """A token saved for other bytes under this key is not resumed; its
    session is cancelled."""
    a = write_random(tmp_path / "a", 3 * MiB, seed=22)
    b = write_random(tmp_path / "b", 3 * MiB, seed=23)
    tok = tmp_path / "tok"
    put(harness, tok, "k", a, "--kill-after-saves", "2", check=False)
    emulator.reset_log()
    put(harness, tok, "k", b)
    log = emulator.log()
    assert (log[0]["method"], log[0]["status"]) == ("DELETE", 499)
    assert log[1]["method"] == "POST"
    assert emulator.media("test_token_for_other_object/k") == b.read_bytes()


def test_token_with_foreign_session_ignored(harness, emulator, tmp_path):
    """Object bytes go to the configured endpoint only, whatever the
    catalog says."""
    src = write_random(tmp_path / "f", 2 * MiB, seed=24)
    tok = tmp_path / "tok"
    tok.write_text("drgw-gcs-resumable 1\nsize %d sha256 %s\nsession %s\noffset 0\n"
                   % (2 * MiB, sha256_file(src),
                      urllib.parse.quote("http://198.51.100.7/upload/storage/v1/b/x/o"
                                         "?uploadType=resumable&upload_id=evil", safe="")))
    put(harness, tok, "k", src, options={"chunk-size": "1M", "connect-timeout": "30"})
    log = emulator.log()
    assert log[0]["method"] == "POST"
    assert emulator.media("test_token_with_foreign_session_ignored/k") == src.read_bytes()
    # Garbage tokens are ignored the same way.
    tok.write_text("drgw-gcs-resumable 1\nsize x\n")
    put(harness, tok, "k", src)


def test_small_object_with_session_token(harness, emulator, tmp_path):
    """A session saved under a smaller chunk-size still resumes after the
    option grew past the object's size."""
    src = write_random(tmp_path / "f", 3 * MiB, seed=25)
    tok = tmp_path / "tok"
    put(harness, tok, "k", src, "--kill-after-saves", "2", check=False)
    emulator.reset_log()
    put(harness, tok, "k", src, options={"chunk-size": "16M"})
    assert check_resumed(emulator, "test_small_object_with_session_token/k",
                         src, tmp_path) == MiB
    assert [chunk_start(e) for e in uploads(emulator.log())[1:]] == [MiB]


def test_completed_session_with_wrong_object(tmp_path, emulator, proxy):
    """A session that reports a completed object with other content than
    ours: that generation is deleted, and the upload starts over instead
    of asking the same session forever."""
    h = Harness(tmp_path, proxy.url, "gcs://%s/wrongdone" % BUCKET,
                options={"chunk-size": "256K"})
    src = write_random(tmp_path / "f", 600_000, seed=26)
    tok = tmp_path / "tok"
    put(h, tok, "k", src, "--kill-after-saves", "2", check=False,
        options={"chunk-size": "256K"})
    bogus = {"name": "wrongdone/k", "size": "600000", "generation": "42",
             "crc32c": "AAAAAA==", "md5Hash": "AAAAAAAAAAAAAAAAAAAAAA=="}

    def fake_done(rec):
        if rec["headers"].get("content-range") == "bytes */600000" and \
                not any(r.get("faked") for r in proxy.requests()):
            return 200, [("Content-Type", "application/json")], \
                json.dumps(bogus).encode()
        return None
    proxy.intercept = fake_done
    proxy.clear()
    put(h, tok, "k", src, options={"chunk-size": "256K"})
    seen = [(r["method"], r["path"].split("?")[0].rsplit("/", 1)[-1],
             r["status"]) for r in proxy.requests()]
    assert seen[0] == ("PUT", "o", 200)                       # faked
    assert seen[1] == ("DELETE", "wrongdone%2Fk", 404)         # generation 42
    assert "ifGenerationMatch=42" in proxy.requests()[1]["path"]
    assert seen[2][0] == "POST"                                # a new session
    assert emulator.media("wrongdone/k") == src.read_bytes()


def test_killed_after_the_final_chunk_landed(emulator, proxy, tmp_path):
    """Issue 15, defect 2: the final chunk reached GCS, the process died
    before it heard back, and by the time the upload is resumed the
    session is forgotten (404, as GCS does in time).  The object is there
    with this upload's size, crc32c and md5: done, without a new session
    or a byte sent again."""
    h = Harness(tmp_path, proxy.url, "gcs://%s/landed" % BUCKET)
    src = write_random(tmp_path / "f", 3 * MiB, seed=41)
    tok = tmp_path / "tok"
    # The final chunk carries the total size; its answer is held back.
    final = proxy.add_fault(method="PUT", path=r"upload_id=", stall=60,
                            skip=2)
    proc = h.popen("put", "--token", tok, "--sha256", sha256_file(src),
                   "k", src, options=CHUNK)
    try:
        deadline = time.time() + 60
        while not [r for r in proxy.requests("PUT") if r.get("stalled") or
                   (r.get("upstream_status") == 200)]:
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert final.hits == 1
    assert token(tok)["offset"] == 2 * MiB
    proxy.clear_faults()
    proxy.clear()
    proxy.intercept = lambda rec: (404, [], b"Not Found") \
        if rec["method"] == "PUT" else None
    put(h, tok, "k", src)
    assert [r["method"] for r in proxy.requests()] == ["PUT", "GET"], \
        proxy.requests()
    assert emulator.media("landed/k") == src.read_bytes()
