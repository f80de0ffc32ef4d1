# SPDX-License-Identifier: MIT
"""The PrometheusRule: its groups pass `promtool check rules` (PromQL and
the annotation templates), and `promtool test rules` (rules_test*.yaml)
shows each alert firing when it should and not before."""
import shutil
import subprocess

import pytest
import yaml

from conftest import HERE, find


def promtool():
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool not installed: run scripts/install-deps (prometheus)")
    return path


def groups(rendered):
    return find(rendered["monitoring"], "PrometheusRule", "drgw")["spec"]["groups"]


def test_check_rules(rendered, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups(rendered)}, sort_keys=False))
    p = subprocess.run([promtool(), "check", "rules", str(rules)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout


def test_alerts_fire_when_they_should(rendered, tmp_path):
    stripped = []
    for g in groups(rendered):
        rules = [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]
        stripped.append({**g, "rules": rules})
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": stripped}, sort_keys=False))
    tests = sorted(HERE.glob("rules_test*.yaml"))
    for t in tests:
        shutil.copy(t, tmp_path / t.name)
    p = subprocess.run([promtool(), "test", "rules", *(t.name for t in tests)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("SUCCESS") == len(tests)
