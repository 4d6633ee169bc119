"""Whole flows through `sre serve` processes: a rule fires in the sandbox's Prometheus, the sandbox's
Alertmanager posts to the service, the action reaches the fake Kubernetes API, the real Prometheus
verifies it, the audit has it. Then the failure cases: SIGKILL between answering and acting, and
two service processes sharing one PostgreSQL store."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, text

from sre.local.procs import free_port, wait_until
from sre.sandbox import Stack
from tests.fakes.kube import FakeKube
from tests.remediation_support import (
    DEPLOYMENT,
    NS,
    alert,
    fake_cluster,
    kube_writes,
    payload,
    remediation_config,
    role_headers,
    token_of,
    write_runbook,
)

pytestmark = pytest.mark.slow
SRE = str(Path(sys.executable).parent / "sre")


class Serve:
    """One `sre serve` process, stopped (or killed) by its PID."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token_of(config)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Serve:
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen([SRE, "serve", "--config", str(self.config), "--port", str(self.port)],
                                         stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(self._healthy, timeout=30, what=f"sre serve on {self.port} (log {self.log})")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"sre serve exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)

    def post(self, body: dict[str, Any]) -> int:
        req = urllib.request.Request(f"{self.url}/webhook/alertmanager", data=json.dumps(body).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {self.token}",
                                                             "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)

    def get(self, path: str, role: str = "read") -> Any:
        req = urllib.request.Request(f"{self.url}{path}", headers=role_headers(self.config, role))
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read()) if path.startswith("/api/") else resp.read().decode()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as k:
        fake_cluster(k)
        yield k


@pytest.fixture
def escalations(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/escalate", method="POST").respond_with_json({"ok": True})
    return httpserver


def _restarts(kube: FakeKube) -> list[Any]:
    return [r for r in kube_writes(kube) if r.method == "PATCH" and r.path.endswith(f"/deployments/{DEPLOYMENT}")]


def _sqlite_rows(state_dir: Path, sql: str) -> list[Any]:
    engine = create_engine(f"sqlite:///{state_dir / 'sre.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def test_prometheus_rule_to_alertmanager_to_verified_audited_restart(
        sandbox: Stack, sandbox_config_path: Path, tmp_path: Path, kube: FakeKube, escalations: HTTPServer) -> None:
    assert sandbox.prometheus is not None and sandbox.alertmanager is not None
    name = f"SreE2eGatewayMemory{secrets.token_hex(3)}"
    runbooks = tmp_path / "runbooks"
    write_runbook(runbooks, name, verify={"query": 'up{job="prometheus"} == 1', "within": "60s"})
    cfg = remediation_config(sandbox_config_path, tmp_path / "state", runbooks=runbooks, kube_url=kube.url,
                             escalation_url=escalations.url_for("/escalate"))
    rule = sandbox.prometheus.rules_dir / f"{name}.yaml"
    service = Serve(cfg, tmp_path / "serve.log").start()
    am = sandbox.alertmanager
    old_webhook = (am.webhook_url, am.webhook_credentials_file)
    try:
        token_file = Path(yaml.safe_load(cfg.read_text())["webhook"]["token"]["file"])
        am.set_webhook(f"{service.url}/webhook/alertmanager", token_file)
        rule.write_text(yaml.safe_dump({"groups": [{"name": name, "rules": [{
            "alert": name, "expr": "vector(1)", "for": "0s",
            "labels": {"namespace": NS, "deployment": DEPLOYMENT, "severity": "ticket"},
            "annotations": {"summary": "end-to-end test alert"}}]}]}))
        sandbox.prometheus.reload()

        def verified() -> dict[str, Any] | None:
            rows = [r for r in service.get("/api/remediations") if r["alertname"] == name]
            return rows[0] if rows and rows[0]["state"] == "verified" else None

        rem = wait_until(verified, timeout=60, interval=0.5, what="a verified remediation")
        [patch] = _restarts(kube)
        assert "kubectl.kubernetes.io/restartedAt" in patch.body["spec"]["template"]["metadata"]["annotations"]
        assert patch.headers["user-agent"].startswith("OpenAPI-Generator")  # the real kubernetes client
        assert rem["outcome"] == "executed" and rem["labels"]["alertname"] == name
        detail = service.get(f"/api/remediations/{rem['id']}")
        assert [e["kind"] for e in detail["events"]] == ["decided", "silenced", "executed", "verified"]
        inbox = _sqlite_rows(tmp_path / "state", "SELECT status, generator_url, receiver FROM alert_inbox")
        assert inbox and inbox[0][1].startswith(sandbox.prometheus.url) and inbox[0][2] == "sre"
        metrics = service.get("/metrics", role="metrics")
        assert 'sre_remediations_total{action="kubernetes.rollout_restart",outcome="executed"} 1.0' in metrics
        assert 'sre_remediations_total{action="kubernetes.rollout_restart",outcome="verified"} 1.0' in metrics
    finally:
        rule.unlink(missing_ok=True)
        sandbox.prometheus.reload()
        am.set_webhook(*old_webhook) if old_webhook[0] else am.set_webhook("http://127.0.0.1:9/none")
        service.stop()


def test_sigkill_after_answering_and_before_acting_acts_exactly_once_after_restart(
        sandbox: Stack, sandbox_config_path: Path, tmp_path: Path, kube: FakeKube, escalations: HTTPServer) -> None:
    runbooks = tmp_path / "runbooks"
    write_runbook(runbooks, "GatewayMemoryHigh")
    state = tmp_path / "state"
    kwargs: dict[str, Any] = {"runbooks": runbooks, "kube_url": kube.url,
                              "escalation_url": escalations.url_for("/escalate")}
    # The worker is off in the first life: the alert is answered, then the process dies before acting.
    first = Serve(remediation_config(sandbox_config_path, state, enabled=False, **kwargs), tmp_path / "1.log").start()
    try:
        assert first.post(payload(alert(fingerprint="k111", starts_at="2024-05-01T10:00:00Z"))) == 200
    finally:
        first.kill()
    assert _sqlite_rows(state, "SELECT state FROM alert_inbox") == [("pending",)]
    assert kube.requests == []

    config = remediation_config(sandbox_config_path, state, **kwargs)
    for life in (2, 3):  # restarted twice: the second restart must not act again
        service = Serve(config, tmp_path / f"{life}.log").start()
        try:
            wait_until(lambda: _sqlite_rows(state, "SELECT state FROM alert_inbox") == [("done",)],
                       timeout=20, what="the inbox processed")
            wait_until(lambda: _sqlite_rows(state, "SELECT state FROM remediations") == [("verified",)],
                       timeout=20, what="the remediation verified")
        finally:
            service.kill()
        assert len(_restarts(kube)) == 1


def test_two_processes_sharing_one_postgresql_store_act_once(
        sandbox: Stack, sandbox_config_path: Path, tmp_path: Path, kube: FakeKube, escalations: HTTPServer) -> None:
    assert sandbox.postgres is not None
    db = f"sre_remediation_{secrets.token_hex(4)}"
    sandbox.postgres.primary.sql(f"CREATE DATABASE {db}")
    url = sandbox.postgres.primary.url(database=db)
    runbooks = tmp_path / "runbooks"
    write_runbook(runbooks, "GatewayMemoryHigh", guards={"cooldown": "0s", "max_per_day": 100})
    services = []
    try:
        for i in (1, 2):
            cfg = remediation_config(sandbox_config_path, tmp_path / f"state{i}", runbooks=runbooks,
                                     kube_url=kube.url, escalation_url=escalations.url_for("/escalate"),
                                     state_url=url)
            services.append(Serve(cfg, tmp_path / f"serve{i}.log").start())
        body = payload(alert(fingerprint="pg000001", starts_at="2024-05-01T10:00:00Z"))
        barrier = threading.Barrier(10)
        codes: list[int] = []

        def deliver(svc: Serve) -> None:
            barrier.wait()
            codes.append(svc.post(body))

        threads = [threading.Thread(target=deliver, args=(services[i % 2],)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes == [200] * 10

        def settled() -> bool:
            rows = sandbox.postgres.primary.sql(  # type: ignore[union-attr]
                "SELECT count(*) FILTER (WHERE state <> 'done'), count(*) FROM alert_inbox", database=db)
            return rows[0] == (0, 10)

        wait_until(settled, timeout=30, what="both workers done with the inbox")
        wait_until(lambda: sandbox.postgres.primary.sql(  # type: ignore[union-attr]
            "SELECT state FROM remediations WHERE acted", database=db) == [("verified",)], timeout=20,
            what="one verified remediation")
        assert len(_restarts(kube)) == 1
        hosts = sandbox.postgres.primary.sql("SELECT DISTINCT claimed_by FROM alert_inbox", database=db)
        assert len(hosts) >= 1
        # Every other delivery says why it did not act: a duplicate of the acting record, or, when it
        # arrived while the first held the target's lock, stopped by the lock (again: "repeated").
        (dup,), = sandbox.postgres.primary.sql(  # type: ignore[union-attr]
            "SELECT count(*) FROM remediation_events WHERE kind = 'duplicate'", database=db)
        (locked,), = sandbox.postgres.primary.sql(  # type: ignore[union-attr]
            "SELECT (SELECT count(*) FROM remediations WHERE NOT acted AND guard = 'lock') + "
            "(SELECT count(*) FROM remediation_events e JOIN remediations r ON r.id = e.remediation_id "
            "WHERE r.guard = 'lock' AND e.kind = 'repeated')", database=db)
        assert dup + locked == 9, (dup, locked)
    finally:
        for svc in services:
            svc.stop()
        sandbox.postgres.primary.sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_serve_refuses_to_start_without_webhook_credentials(tmp_path: Path) -> None:
    cfg = tmp_path / "sre.yaml"
    cfg.write_text(f"state: {{dir: {tmp_path / 'state'}}}\n")
    proc = subprocess.run([SRE, "serve", "--config", str(cfg), "--port", str(free_port())], capture_output=True,
                          text=True, timeout=30, env={**os.environ, "SRE_CONFIG": ""})
    assert proc.returncode == 2
    assert "no credentials configured" in proc.stderr and "Traceback" not in proc.stderr
