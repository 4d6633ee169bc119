"""Runbook tests: the shipped ones pass and cover every automated runbook; a target one character
off fails `sre remediation test`; lint refuses an automated runbook without tests."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sre.content import content_dir
from sre.lint import check_runbook_tests
from sre.remediation.runbook import scan_runbooks
from sre.remediation.runbook_tests import coverage_problems, run_suite
from tests.cli import sre
from tests.remediation_support import write_runbook

TARGET = "kubernetes/messaging/deployment/ws-gateway"
LABELS = {"namespace": "messaging", "deployment": "ws-gateway"}


def _suite(directory: Path, target: str) -> Path:
    write_runbook(directory, "GatewayMemoryHigh")
    (directory / "tests").mkdir(exist_ok=True)
    path = directory / "tests" / "GatewayMemoryHigh.yaml"
    path.write_text(yaml.safe_dump({"runbook": "GatewayMemoryHigh", "cases": [
        {"name": "acts", "alert": {"labels": LABELS}, "expect": {"action": "kubernetes.rollout_restart",
                                                                  "target": target}},
        {"name": "cooldown", "alert": {"labels": LABELS}, "state": {"recent_actions": [{"ago": "5m"}]},
         "expect": {"guard": "cooldown"}},
    ]}))
    return path


def _config(tmp_path: Path, runbooks: Path) -> Path:
    path = tmp_path / "sre.yaml"
    path.write_text(yaml.safe_dump({"state": {"dir": str(tmp_path / "state")},
                                    "remediation": {"runbooks_dir": str(runbooks)}}))
    return path


def test_shipped_runbook_tests_pass_and_cover_every_automated_runbook() -> None:
    directory = content_dir("runbooks")
    runbooks, errors = scan_runbooks(directory)
    assert errors == []
    result = run_suite(directory, runbooks=runbooks)
    assert result.errors == []
    assert [(c.runbook, c.name, c.problems) for c in result.cases if not c.ok] == []
    assert [(rb.alert, msg) for rb, msg in coverage_problems(runbooks, result)] == []


def test_a_target_one_character_off_fails(tmp_path: Path) -> None:
    runbooks = tmp_path / "runbooks"
    _suite(runbooks, TARGET)
    ok = sre("remediation", "test", "-c", str(_config(tmp_path, runbooks)), "-o", "json")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    _suite(runbooks, TARGET[:-1] + "x")
    bad = sre("remediation", "test", "-c", str(_config(tmp_path, runbooks)), "-o", "json")

    assert bad.returncode == 1, bad.stderr
    failed = [c for c in json.loads(bad.stdout)["cases"] if not c["ok"]]
    assert [c["case"] for c in failed] == ["acts"]
    assert failed[0]["problems"] == [f"target: expected {TARGET[:-1] + 'x'!r}, got {TARGET!r}"]
    # The case no longer acts, so the runbook is not covered both ways either.
    assert json.loads(bad.stdout)["missing"][0]["runbook"] == "GatewayMemoryHigh"


def test_lint_refuses_an_automated_runbook_without_tests(tmp_path: Path) -> None:
    runbooks = tmp_path / "runbooks"
    write_runbook(runbooks, "GatewayMemoryHigh")
    write_runbook(runbooks, "PrimaryDown", "notify")  # human-only: needs no runbook test
    found, _ = scan_runbooks(runbooks)

    findings = check_runbook_tests(runbooks, found)

    assert sorted((Path(f.file).name, f.message.split(":")[0]) for f in findings) == [
        ("GatewayMemoryHigh.md", "automated"),
        ("GatewayMemoryHigh.md", "automated runbook without a passing runbook test where a guard refuses "
                                 "(runbooks/tests/)"),
        ("GatewayMemoryHigh.md", "automated runbook without a passing runbook test where it acts "
                                 "(runbooks/tests/)"),
    ]
