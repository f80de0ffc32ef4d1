# SPDX-License-Identifier: MIT
"""What drgw prune asks of the GCS plugin, through plugin-harness against
the emulator: parallel deletes, retried; holds and retention seen in the
listing and stat; a 403 that says whether a hold protects the object or
the credentials lack storage.objects.delete; the retention ctl."""
import json
import re

from conftest import BUCKET, key_prefix


def put_objects(harness, tmp_path, names):
    src = tmp_path / "obj"
    src.write_bytes(b"x" * 100)
    for n in names:
        harness.run("put", n, src)


def listed(harness):
    return sorted(line.split("\t")[0]
                  for line in harness.run("list").stdout.splitlines())


def deletes(emulator):
    return [e for e in emulator.log() if e["method"] == "DELETE"]


def patch(emulator, name, fields):
    st, body = emulator.api("PATCH", "/storage/v1/b/%s/o/%s" % (
        BUCKET, name.replace("/", "%2F")), json.dumps(fields).encode(),
        {"Content-Type": "application/json"})
    assert st == 200, body


def test_parallel_deletes(harness, emulator, tmp_path):
    names = ["%03d.drgw" % i for i in range(40)]
    put_objects(harness, tmp_path, names)
    emulator.reset_log()
    out = harness.run("rm-many", *names[:35], "never-was.drgw")
    assert out.stdout.count("\tok") == 36
    assert len(deletes(emulator)) == 36
    assert listed(harness) == names[35:]


def test_deletes_are_retried(harness, emulator, tmp_path):
    put_objects(harness, tmp_path, ["a.drgw", "b.drgw"])
    emulator.fail(count=2, status=503, method="DELETE")
    harness.run("rm-many", "a.drgw", "b.drgw")
    assert listed(harness) == []


def test_denied_delete_names_the_permission(harness, emulator, tmp_path):
    put_objects(harness, tmp_path, ["a.drgw", "b.drgw"])
    emulator.fail(count=100, status=403, method="DELETE")
    p = harness.run("rm-many", "a.drgw", "b.drgw", check=False)
    assert p.returncode == 1
    assert "a.drgw\tEACCES" in p.stdout and "b.drgw\tEACCES" in p.stdout
    err = p.stderr.strip()
    assert "\n" not in err
    assert re.search(r"403 forbidden.*lack storage\.objects\.delete", err)
    assert listed(harness) == ["a.drgw", "b.drgw"]


def test_holds_and_retention_are_seen(harness, emulator, tmp_path, request):
    prefix = key_prefix(request) + "/"
    put_objects(harness, tmp_path, ["held.drgw", "kept.drgw", "free.drgw"])
    patch(emulator, prefix + "held.drgw", {"temporaryHold": True})
    patch(emulator, prefix + "kept.drgw",
          {"retention": {"mode": "Unlocked",
                         "retainUntilTime": "2099-01-01T00:00:00Z"}})
    assert harness.run("lock", "held.drgw").stdout.strip() == "known 1 hold 1 until 0"
    assert harness.run("lock", "kept.drgw").stdout.strip() == \
        "known 1 hold 0 until 4070908800000000000"
    assert harness.run("lock", "free.drgw").stdout.strip() == "known 1 hold 0 until 0"
    # The listing asks for the lock fields: the gateway needs no stat.
    emulator.reset_log()
    harness.run("list")
    assert "temporaryHold" in emulator.log()[0]["path"]
    # GCS refuses; the plugin says it is a lock, not a permission.
    p = harness.run("rm-many", "held.drgw", "free.drgw", check=False)
    assert "held.drgw\tEPERM" in p.stdout and "free.drgw\tok" in p.stdout
    assert "protected by a hold or retention" in p.stderr
    patch(emulator, prefix + "held.drgw", {"temporaryHold": False})
    patch(emulator, prefix + "kept.drgw", {"retention": None})


def test_retention_ctl(harness, emulator):
    out = harness.run("retention").stdout
    assert out.startswith("flags 3 period 0")
    out = harness.run("retention", options={"retention-mode": "Unlocked",
                                            "retain-days": "30"}).stdout
    assert out.startswith("flags 3 period %d " % (30 * 86400 * 10**9))
    out = harness.run("retention", options={"temporary-hold": "on"}).stdout
    assert out.startswith("flags 3 period %d " % (2**63 - 1))
