"""`sre remediation ...` and `sre alertmanager config` as a person runs them (subprocesses)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from sre.cli.alertmanager import INHIBIT_RULES
from sre.config import load_config
from sre.local.procs import free_port, wait_until
from sre.remediation import breaker
from sre.sandbox.prometheus import Alertmanager
from sre.store import open_store
from sre.store.base import utcnow
from sre.store.remediation import Remediation
from tests.remediation_support import write_runbook

SRE = str(Path(sys.executable).parent / "sre")


def _sre(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SRE, *args, "--config", str(config)], capture_output=True, text=True, timeout=60)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "token").write_text("tok-123456\n")
    runbooks = tmp_path / "runbooks"
    write_runbook(runbooks, "GatewayMemoryHigh")
    write_runbook(runbooks, "OnlyDocs", remediation=False)
    path = tmp_path / "sre.yaml"
    path.write_text(yaml.safe_dump({
        "state": {"dir": str(tmp_path / "state")},
        "webhook": {"auth": "bearer", "token": {"file": str(tmp_path / "token")}, "max_body_bytes": "1MiB"},
        "remediation": {"runbooks_dir": str(runbooks), "breaker": {"max_actions": 3, "max_failures": 2}},
    }))
    return path


def test_list_show_and_breaker(config: Path) -> None:
    cfg = load_config(config)
    store = open_store(cfg)
    with store.session() as s:
        s.add(Remediation(fingerprint="f1", starts_at=utcnow(), alertname="GatewayMemoryHigh", labels={},
                          runbook="GatewayMemoryHigh.md", action="kubernetes.rollout_restart",
                          target="kubernetes/messaging/deployment/ws-gateway", params={}, outcome="skipped",
                          guard="cooldown", reason="cooldown 1800s", state="done", acted=False, result={}))
    listed = _sre("remediation", "list", "-o", "json", config=config)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["outcome"], row["guard"]) == ("skipped", "cooldown")
    shown = _sre("remediation", "show", str(row["id"]), config=config)
    assert shown.returncode == 0 and "cooldown 1800s" in shown.stdout
    missing = _sre("remediation", "show", "999", config=config)
    assert missing.returncode == 2 and "no remediation 999" in missing.stderr and "Traceback" not in missing.stderr

    assert _sre("remediation", "breaker", "status", config=config).returncode == 0
    with store.session() as s:
        breaker.trip_if_needed(s, cfg.remediation.breaker.model_copy(update={"max_failures": 0}),
                               before_action=False)
    status = _sre("remediation", "breaker", "status", "-o", "json", config=config)
    assert status.returncode == 1 and json.loads(status.stdout)["open"] is True
    reset = _sre("remediation", "breaker", "reset", "--by", "alice", config=config)
    assert reset.returncode == 0 and "closed" in reset.stdout
    after = json.loads(_sre("remediation", "breaker", "status", "-o", "json", config=config).stdout)
    assert after["open"] is False and after["reset_by"] == "alice"
    store.dispose()


def test_alertmanager_config_is_valid_for_alertmanager(config: Path, tmp_path: Path) -> None:
    out = _sre("alertmanager", "config", "--url", "http://sre.ops.svc:8080/webhook/alertmanager",
               "--credentials-file", "/etc/alertmanager/secrets/sre-token", config=config)
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    [receiver] = doc["receivers"]
    [wh] = receiver["webhook_configs"]
    assert wh["send_resolved"] is True and wh["max_alerts"] == 512
    assert wh["http_config"]["authorization"] == {"type": "Bearer",
                                                  "credentials_file": "/etc/alertmanager/secrets/sre-token"}
    [route] = doc["route"]["routes"]
    assert route["continue"] is True and route["matchers"] == ['alertname=~"GatewayMemoryHigh"']
    amtool = shutil.which("amtool")
    assert amtool, "amtool comes with the prometheus-alertmanager package (scripts/bootstrap)"
    full = {"route": {"receiver": "default", **doc["route"]},
            "receivers": [{"name": "default"}, *doc["receivers"]], "inhibit_rules": doc["inhibit_rules"]}
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(full))
    check = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    as_json = json.loads(_sre("alertmanager", "config", "-o", "json", config=config).stdout)
    assert as_json["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"] == \
        str(config.parent / "token")
    assert route["group_wait"] == "10s"
    faster = json.loads(_sre("alertmanager", "config", "--group-wait", "0s", "-o", "json", config=config).stdout)
    assert faster["route"]["routes"][0]["group_wait"] == "0s"
    bad = _sre("alertmanager", "config", "--group-wait", "soon", config=config)
    assert bad.returncode == 2 and "--group-wait" in bad.stderr


def test_the_inbox_shows_what_the_webhook_stored_by_state(config: Path) -> None:
    from sre.store.remediation import InboxRow

    cfg = load_config(config)
    store = open_store(cfg)
    now = utcnow()
    with store.session() as s:
        s.add_all([
            InboxRow(fingerprint="a1", status="firing", alertname="GatewayMemoryHigh", starts_at=now,
                     labels={"alertname": "GatewayMemoryHigh", "namespace": "messaging"}, state="pending"),
            InboxRow(fingerprint="b2", status="resolved", alertname="OnlyDocs", starts_at=now,
                     labels={"alertname": "OnlyDocs"}, state="done", outcome="no_runbook"),
        ])
    store.dispose()
    pending = json.loads(_sre("remediation", "inbox", "--state", "pending", "-o", "json", config=config).stdout)
    assert [(a["alertname"], a["status"], a["state"], a["labels"]["namespace"]) for a in pending] == [
        ("GatewayMemoryHigh", "firing", "pending", "messaging")]
    everything = json.loads(_sre("remediation", "inbox", "-o", "json", config=config).stdout)
    assert [(a["alertname"], a["outcome"]) for a in everything] == [("OnlyDocs", "no_runbook"),
                                                                   ("GatewayMemoryHigh", None)]
    table_out = _sre("remediation", "inbox", "--status", "resolved", config=config)
    assert table_out.returncode == 0 and "OnlyDocs" in table_out.stdout and "GatewayMemoryHigh" not in table_out.stdout
    bad = _sre("remediation", "inbox", "--state", "stuck", config=config)
    assert bad.returncode == 2


def test_a_down_service_pages_once_through_the_generated_inhibit_rules(tmp_path: Path) -> None:
    """SreDown and SreSchedulerNotRunning at once: a real Alertmanager with the generated inhibit
    rules holds back the scheduler alert; alone, the scheduler alert stays active."""
    am = Alertmanager(root=tmp_path / "am", port=free_port(), inhibit_rules=INHIBIT_RULES)
    am.start()
    try:
        def push(name: str) -> None:
            alert = {"labels": {"alertname": name, "severity": "page"}}
            httpx.post(f"{am.url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()

        def states() -> dict[str, str]:
            alerts = httpx.get(f"{am.url}/api/v2/alerts", timeout=5).json()
            return {a["labels"]["alertname"]: a["status"]["state"] for a in alerts}

        push("SreSchedulerNotRunning")
        wait_until(lambda: states() == {"SreSchedulerNotRunning": "active"}, timeout=15,
                   what="the scheduler alert active on its own")
        push("SreDown")
        wait_until(lambda: states() == {"SreDown": "active", "SreSchedulerNotRunning": "suppressed"}, timeout=15,
                   what="the scheduler alert inhibited by SreDown")
    finally:
        am.stop()
