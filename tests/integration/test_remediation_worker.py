"""The remediation worker end to end inside one process: a real SQLite store, the sandbox's real
Prometheus (verification) and Alertmanager (silences), the fake Kubernetes API, and a real HTTP
server standing for the escalation webhook. Every guard is shown stopping an action and saying so."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from sre.api.app import create_app
from sre.config import SreConfig, load_config
from sre.local.procs import wait_until
from sre.remediation import breaker
from sre.remediation.worker import RemediationWorker
from sre.sandbox import Stack
from sre.store import Store, open_store
from sre.store.remediation import InboxRow, Remediation, RemediationEvent
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
    silences,
    token_of,
    write_runbook,
)

pytestmark = pytest.mark.slow


@dataclass
class Rig:
    cfg: SreConfig
    store: Store
    worker: RemediationWorker
    client: TestClient
    kube: FakeKube
    escalations: HTTPServer
    runbooks: Path
    am_url: str
    token: str
    read: dict[str, str]
    metrics: dict[str, str]

    def deliver(self, *alerts: dict[str, Any]) -> None:
        resp = self.client.post("/webhook/alertmanager", json=payload(*alerts),
                                headers={"Authorization": f"Bearer {self.token}"})
        assert resp.status_code == 200, resp.text

    def drain(self, timeout: float = 20.0) -> None:
        """Run the worker until the inbox is processed and no verification is pending."""
        def idle() -> bool:
            self.worker.run_once()
            with self.store.session() as s:
                pending = s.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.state != "done"))
                verifying = s.scalar(select(func.count()).select_from(Remediation)
                                     .where(Remediation.state == "verifying"))
            return not pending and not verifying

        wait_until(idle, timeout=timeout, interval=0.1, what="remediation worker idle")

    def remediations(self) -> list[Remediation]:
        with self.store.session() as s:
            return list(s.scalars(select(Remediation).order_by(Remediation.id)))

    def events(self, rid: int) -> list[tuple[str, str]]:
        with self.store.session() as s:
            return [(e.kind, e.message) for e in s.scalars(
                select(RemediationEvent).where(RemediationEvent.remediation_id == rid).order_by(RemediationEvent.id))]

    def escalated(self) -> list[dict[str, Any]]:
        return [json.loads(req.get_data()) for req, _ in self.escalations.log if req.path == "/escalate"]

    def silence(self, silence_id: str | None) -> dict[str, Any]:
        """The silence as Alertmanager holds it (ids are unique across tests; remediation ids are not)."""
        assert silence_id, "the remediation has no silence"
        [found] = [s for s in silences(self.am_url) if s["id"] == silence_id]
        return found


def _rig(sandbox: Stack, sandbox_config_path: Path, tmp_path: Path, httpserver: HTTPServer,
         **cfg_kwargs: Any) -> Iterator[Rig]:
    httpserver.expect_request("/escalate", method="POST").respond_with_json({"ok": True})
    kube = FakeKube().start()
    fake_cluster(kube)
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    kwargs: dict[str, Any] = {"kube_url": kube.url, "escalation_url": httpserver.url_for("/escalate"), **cfg_kwargs}
    path = remediation_config(sandbox_config_path, tmp_path / "state", runbooks=runbooks, **kwargs)
    cfg = load_config(path)
    store = open_store(cfg)
    app = create_app(cfg, store)
    client = TestClient(app)
    assert sandbox.alertmanager is not None
    try:
        yield Rig(cfg, store, RemediationWorker(cfg, store), client, kube, httpserver, runbooks,
                  sandbox.alertmanager.url, token_of(path), role_headers(path, "read"), role_headers(path, "metrics"))
    finally:
        client.close()
        kube.stop()
        store.dispose()


@pytest.fixture
def rig(sandbox: Stack, sandbox_config_path: Path, tmp_path: Path, httpserver: HTTPServer) -> Iterator[Rig]:
    yield from _rig(sandbox, sandbox_config_path, tmp_path, httpserver)


def _restart_patches(kube: FakeKube) -> list[Any]:
    return [r for r in kube_writes(kube) if r.method == "PATCH" and r.path.endswith(f"/deployments/{DEPLOYMENT}")]


def test_firing_alert_restarts_once_silences_verifies_and_audits(rig: Rig) -> None:
    write_runbook(rig.runbooks, "GatewayMemoryHigh", verify={"query": 'up{job="prometheus"} == 1', "within": "20s"})
    rig.deliver(alert(fingerprint="aa01"))
    rig.drain()
    [patch] = _restart_patches(rig.kube)
    assert patch.content_type == "application/strategic-merge-patch+json"
    annotations = patch.body["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    dep = rig.kube.deployment(NS, DEPLOYMENT)
    assert dep is not None and "kubectl.kubernetes.io/restartedAt" in dep["spec"]["template"]["metadata"]["annotations"]
    [r] = rig.remediations()
    assert (r.outcome, r.state, r.acted, r.dry_run) == ("executed", "verified", True, False)
    assert r.target == f"kubernetes/{NS}/deployment/{DEPLOYMENT}" and r.runbook == "GatewayMemoryHigh.md"
    assert r.params == {"namespace": NS, "deployment": DEPLOYMENT}
    assert r.started_at and r.finished_at and r.verified_at and r.result["restartedAt"]
    kinds = [k for k, _ in rig.events(r.id)]
    assert kinds == ["decided", "silenced", "executed", "verified"]
    sil = rig.silence(r.silence_id)
    assert sil["createdBy"] == "sre" and sil["status"]["state"] == "active"
    assert sil["comment"].startswith(f"sre remediation #{r.id}: kubernetes.rollout_restart")
    assert {m["name"]: m["value"] for m in sil["matchers"]}["alertname"] == "GatewayMemoryHigh"
    assert rig.escalated() == []
    api = rig.client.get(f"/api/remediations/{r.id}", headers=rig.read).json()
    assert api["outcome"] == "executed" and [e["kind"] for e in api["events"]] == kinds
    assert rig.client.get("/api/remediations", headers=rig.read).json()[0]["id"] == r.id


def test_five_concurrent_identical_deliveries_make_one_action(rig: Rig) -> None:
    write_runbook(rig.runbooks, "GatewayMemoryHigh")
    barrier = threading.Barrier(5)

    def post() -> None:
        barrier.wait()
        rig.deliver(alert(fingerprint="bb01"))

    threads = [threading.Thread(target=post) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rig.drain()
    with rig.store.session() as s:
        assert s.scalar(select(func.count()).select_from(InboxRow)) == 5
    assert len(_restart_patches(rig.kube)) == 1
    [r] = rig.remediations()
    assert r.outcome == "executed"
    with rig.store.session() as s:
        inbox = [(i.state, i.outcome, i.remediation_id) for i in s.scalars(select(InboxRow).order_by(InboxRow.id))]
    assert inbox == [("done", "decided", r.id)] * 5
    assert [k for k, _ in rig.events(r.id)].count("duplicate") == 4


def test_resolved_only_payload_never_acts(rig: Rig) -> None:
    write_runbook(rig.runbooks, "GatewayMemoryHigh")
    rig.deliver(alert(status="resolved", fingerprint="cc01"), alert(status="resolved", fingerprint="cc02"))
    rig.drain()
    assert rig.kube.requests == [] and rig.remediations() == []
    with rig.store.session() as s:
        assert {r.outcome for r in s.scalars(select(InboxRow))} == {"resolved"}
    # and a firing copy of an alert already seen resolved (a late delivery) does not act either
    rig.deliver(alert(fingerprint="cc01"))
    rig.drain()
    assert kube_writes(rig.kube) == []
    [r] = rig.remediations()
    assert (r.outcome, r.guard) == ("skipped", "resolved")


def test_resolved_closes_the_open_remediation_and_expires_its_silence(rig: Rig) -> None:
    write_runbook(rig.runbooks, "GatewayMemoryHigh", verify={"query": "vector(1) > 2", "within": "5m"})
    rig.deliver(alert(fingerprint="dd01"))
    rig.worker.run_once()
    [r] = rig.remediations()
    assert r.state == "verifying" and r.silence_id
    assert rig.silence(r.silence_id)["status"]["state"] == "active"
    rig.deliver(alert(fingerprint="dd01", status="resolved"))
    rig.drain()
    [r] = rig.remediations()
    assert r.state == "resolved" and r.resolved_at is not None
    assert rig.silence(r.silence_id)["status"]["state"] == "expired"
    assert len(_restart_patches(rig.kube)) == 1


def test_verification_failure_escalates_and_expires_the_silence(rig: Rig) -> None:
    write_runbook(rig.runbooks, "GatewayMemoryHigh", verify={"query": "vector(1) > 2", "within": "1s"})
    rig.deliver(alert(fingerprint="ee01"))
    rig.drain()
    [r] = rig.remediations()
    assert (r.outcome, r.state) == ("executed", "verify_failed")
    assert "did not hold" in r.reason
    assert rig.silence(r.silence_id)["status"]["state"] == "expired"
    [esc] = rig.escalated()
    assert esc["kind"] == "verify_failed" and esc["remediation_id"] == r.id and esc["alertname"] == "GatewayMemoryHigh"
    assert [k for k, _ in rig.events(r.id)][-3:] == ["verify_failed", "silence_expired", "escalated"]


def test_cooldown_stops_a_second_alert_about_the_same_deployment(rig: Rig) -> None:
    write_runbook(rig.runbooks, "GatewayMemoryHigh", guards={"cooldown": "30m"})
    rig.deliver(alert(fingerprint="ff01", pod="p1"))
    rig.drain()
    rig.deliver(alert(fingerprint="ff02", pod="p2"))
    rig.drain()
    assert len(_restart_patches(rig.kube)) == 1
    first, second = rig.remediations()
    assert (second.outcome, second.guard, second.acted) == ("skipped", "cooldown", False)
    assert f"remediation #{first.id}" in second.reason and "cooldown 1800s" in second.reason


def test_lock_stops_an_alert_while_the_target_is_being_verified(rig: Rig) -> None:
    write_runbook(rig.runbooks, "GatewayMemoryHigh", guards={"cooldown": "0s"},
                  verify={"query": "vector(1) > 2", "within": "5m"})
    rig.deliver(alert(fingerprint="gg01", pod="p1"))
    rig.worker.run_once()
    rig.deliver(alert(fingerprint="gg02", pod="p2"))
    rig.worker.run_once()
    first, second = rig.remediations()
    assert first.state == "verifying"
    assert (second.outcome, second.guard) == ("skipped", "lock")
    assert f"locked by remediation #{first.id}" in second.reason
    assert len(_restart_patches(rig.kube)) == 1


def test_daily_cap_stops_an_action(rig: Rig) -> None:
    write_runbook(rig.runbooks, "GatewayMemoryHigh", guards={"cooldown": "0s", "max_per_day": 2})
    for i in range(3):
        rig.deliver(alert(fingerprint=f"hh0{i}", pod=f"p{i}"))
        rig.drain()
    assert len(_restart_patches(rig.kube)) == 2
    third = rig.remediations()[-1]
    assert (third.outcome, third.guard) == ("skipped", "max_per_day")
    assert "2 times in 24h (max_per_day 2)" in third.reason


def test_allowlist_stops_an_action_outside_the_namespaces(rig: Rig) -> None:
    write_runbook(rig.runbooks, "GatewayMemoryHigh")
    rig.deliver(alert(fingerprint="ii01", namespace="payments"))
    rig.drain()
    assert rig.kube.requests == []
    [r] = rig.remediations()
    assert (r.outcome, r.guard) == ("skipped", "allowlist")
    assert "'payments' is not in guards.only_namespaces" in r.reason


def test_breaker_opens_escalates_and_only_a_reset_closes_it(sandbox: Stack, sandbox_config_path: Path,
                                                            tmp_path: Path, httpserver: HTTPServer) -> None:
    for rig in _rig(sandbox, sandbox_config_path, tmp_path, httpserver,
                    breaker={"max_actions": 1, "max_failures": 5, "window": "10m"}):
        write_runbook(rig.runbooks, "GatewayMemoryHigh", guards={"cooldown": "0s"})
        rig.deliver(alert(fingerprint="jj01", pod="p1"))
        rig.drain()
        rig.deliver(alert(fingerprint="jj02", pod="p2"))
        rig.drain()
        assert len(_restart_patches(rig.kube)) == 1
        second = rig.remediations()[-1]
        assert (second.outcome, second.guard) == ("escalated", "breaker")
        assert "circuit breaker open" in second.reason and "max_actions 1" in second.reason
        assert [e["kind"] for e in rig.escalated()] == ["breaker"]
        st = breaker.status(rig.store, rig.cfg.remediation.breaker)
        assert st.open
        assert "sre_remediation_breaker_open 1.0" in rig.client.get("/metrics", headers=rig.metrics).text
        # it stays open: time alone never closes it
        rig.deliver(alert(fingerprint="jj03", pod="p3"))
        rig.drain()
        assert rig.remediations()[-1].guard == "breaker" and len(_restart_patches(rig.kube)) == 1
        breaker.reset(rig.store, "oncall")
        rig.deliver(alert(fingerprint="jj04", pod="p4"))
        rig.drain()
        assert len(_restart_patches(rig.kube)) == 2 and rig.remediations()[-1].outcome == "executed"
        assert "sre_remediation_breaker_open 0.0" in rig.client.get("/metrics", headers=rig.metrics).text


def test_failures_open_the_breaker(sandbox: Stack, sandbox_config_path: Path, tmp_path: Path,
                                   httpserver: HTTPServer) -> None:
    for rig in _rig(sandbox, sandbox_config_path, tmp_path, httpserver,
                    breaker={"max_actions": 20, "max_failures": 1, "window": "10m"}):
        write_runbook(rig.runbooks, "GatewayMemoryHigh", guards={"cooldown": "0s"})
        rig.kube.fail_next("PATCH", "/deployments/", 500, message="etcd is on fire")
        rig.deliver(alert(fingerprint="kk01", pod="p1"))
        rig.drain()
        first = rig.remediations()[0]
        assert first.outcome == "failed" and "etcd is on fire" in first.reason
        assert [e["kind"] for e in rig.escalated()] == ["action_failed"]
        assert rig.silence(first.silence_id)["status"]["state"] == "expired"
        rig.deliver(alert(fingerprint="kk02", pod="p2"))
        rig.drain()
        assert rig.remediations()[-1].guard == "breaker"


def test_global_dry_run_sends_no_request(sandbox: Stack, sandbox_config_path: Path, tmp_path: Path,
                                         httpserver: HTTPServer) -> None:
    for rig in _rig(sandbox, sandbox_config_path, tmp_path, httpserver, dry_run=True):
        write_runbook(rig.runbooks, "GatewayMemoryHigh")
        rig.deliver(alert(fingerprint="ll01"))
        rig.drain()
        assert rig.kube.requests == []
        [r] = rig.remediations()
        assert (r.outcome, r.dry_run, r.silence_id) == ("dry_run", True, None)
        assert "remediation.dry_run" in r.reason
        assert r.result["would"].startswith(f"would patch deployment {NS}/{DEPLOYMENT}")


def test_runbook_dry_run_and_no_cluster_configured_are_dry_runs(sandbox: Stack, sandbox_config_path: Path,
                                                                tmp_path: Path, httpserver: HTTPServer) -> None:
    for rig in _rig(sandbox, sandbox_config_path, tmp_path, httpserver, kube_url=None):
        write_runbook(rig.runbooks, "GatewayMemoryHigh")
        write_runbook(rig.runbooks, "PodStuck", "kubernetes.delete_pod",
                      target={"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"},
                      guards={"dry_run": True})
        rig.deliver(alert(fingerprint="mm01"), alert("PodStuck", fingerprint="mm02", pod="ws-gateway-abc-0"))
        rig.drain()
        assert rig.kube.requests == []
        first, second = rig.remediations()
        assert first.outcome == "dry_run" and "no Kubernetes API configured" in first.reason
        assert second.outcome == "dry_run" and "guards.dry_run" in second.reason


def test_delete_pod_only_when_a_controller_owns_it(rig: Rig) -> None:
    write_runbook(rig.runbooks, "PodStuck", "kubernetes.delete_pod",
                  target={"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"})
    rig.deliver(alert("PodStuck", fingerprint="nn01", pod="debug-shell"),
                alert("PodStuck", fingerprint="nn02", pod="ws-gateway-abc-1"))
    rig.drain()
    refused, deleted = rig.remediations()
    assert refused.outcome == "failed" and refused.reason.startswith("refused: pod messaging/debug-shell has no "
                                                                     "controller owner")
    assert deleted.outcome == "executed" and deleted.result["owner"] == "ReplicaSet/ws-gateway-abc"
    deletes = [r.path for r in kube_writes(rig.kube) if r.method == "DELETE"]
    assert deletes == [f"/api/v1/namespaces/{NS}/pods/ws-gateway-abc-1"]
    assert {p["metadata"]["name"] for p in rig.kube.pods(NS)} == {"ws-gateway-abc-0", "ws-gateway-abc-2",
                                                                  "debug-shell"}


def test_scale_stays_within_the_runbook_bounds(rig: Rig) -> None:
    write_runbook(rig.runbooks, "GatewayOverloaded", "kubernetes.scale", params={"by": 5, "min": 2, "max": 4},
                  guards={"cooldown": "0s"})
    rig.deliver(alert("GatewayOverloaded", fingerprint="oo01"))
    rig.drain()
    dep = rig.kube.deployment(NS, DEPLOYMENT)
    assert dep is not None and dep["spec"]["replicas"] == 4
    [r] = rig.remediations()
    assert r.result == {"from": 3, "to": 4}
    rig.deliver(alert("GatewayOverloaded", fingerprint="oo02"))
    rig.drain()
    at_max = rig.remediations()[-1]
    assert at_max.outcome == "failed" and "already has 4 replicas" in at_max.reason
    assert len([w for w in kube_writes(rig.kube) if w.path.endswith("/scale")]) == 1


def test_notify_escalates_and_changes_nothing(rig: Rig) -> None:
    write_runbook(rig.runbooks, "PrimaryDown", "notify", params={"message": "page the DBA"})
    rig.deliver(alert("PrimaryDown", fingerprint="pp01"))
    rig.drain()
    [r] = rig.remediations()
    assert r.outcome == "executed" and rig.kube.requests == []
    [esc] = rig.escalated()
    assert esc["kind"] == "notify" and esc["message"] == "page the DBA"


def test_alert_without_runbook_or_automation_is_only_recorded_in_the_inbox(rig: Rig) -> None:
    write_runbook(rig.runbooks, "JustDocs", remediation=False)
    rig.deliver(alert("NoSuchRunbook", fingerprint="qq01"), alert("JustDocs", fingerprint="qq02"))
    rig.drain()
    assert rig.remediations() == [] and rig.kube.requests == []
    with rig.store.session() as s:
        assert sorted(r.outcome for r in s.scalars(select(InboxRow))) == ["no_automation", "no_runbook"]
    done = rig.client.get("/api/inbox", params={"state": "done"}, headers=rig.read).json()
    assert sorted((a["alertname"], a["outcome"], a["remediation_id"]) for a in done) == [
        ("JustDocs", "no_automation", None), ("NoSuchRunbook", "no_runbook", None)]
    assert rig.client.get("/api/inbox", params={"state": "pending"}, headers=rig.read).json() == []
    assert rig.client.get("/api/inbox", params={"state": "stuck"}, headers=rig.read).status_code == 422
