"""Replay decides like the engine without touching the store; maintenance windows pause an alert that
would act, record it as `paused`, and the same alert acts once the window is over. SQLite and
PostgreSQL (the sandbox primary); the fake Kubernetes API receives the real action."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from sre.config import SreConfig
from sre.remediation import windows
from sre.remediation.engine import Engine
from sre.remediation.replay import alert_from, execute, replay
from sre.remediation.runbook import load_runbook
from sre.store import Store
from sre.store.base import utcnow
from sre.store.remediation import Remediation, RemediationEvent
from tests.fakes.kube import FakeKube
from tests.remediation_store import DIALECTS, row_counts, state_store
from tests.remediation_support import DEPLOYMENT, NS, fake_cluster, kube_writes, write_runbook

ALERT = "GatewayMemoryHigh"
TARGET = f"kubernetes/{NS}/deployment/{DEPLOYMENT}"


@pytest.fixture(params=DIALECTS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with state_store(request, request.param, tmp_path) as st:
        yield st


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    fake = FakeKube().start()
    fake_cluster(fake)
    try:
        yield fake
    finally:
        fake.stop()


def _cfg(tmp_path: Path, kube: FakeKube) -> SreConfig:
    write_runbook(tmp_path / "runbooks", ALERT)
    return SreConfig.model_validate({"kubernetes": {"host": kube.url},
                                     "remediation": {"runbooks_dir": str(tmp_path / "runbooks")}})


def _alert(starts_ago: float = 60.0) -> dict[str, object]:
    return {"labels": {"alertname": ALERT, "namespace": NS, "deployment": DEPLOYMENT, "severity": "ticket"},
            "startsAt": (utcnow() - timedelta(seconds=starts_ago)).isoformat()}


def test_replay_within_cooldown_names_the_guard_and_changes_nothing(store: Store, tmp_path: Path,
                                                                    kube: FakeKube) -> None:
    cfg = _cfg(tmp_path, kube)
    rb = load_runbook(tmp_path / "runbooks" / f"{ALERT}.md")
    a = alert_from(_alert())
    assert replay(cfg, store, a, rb).decision == "act"
    with store.session() as s:
        s.add(Remediation(created_at=utcnow() - timedelta(minutes=5), fingerprint="earlier", starts_at=utcnow(),
                          alertname=ALERT, action="kubernetes.rollout_restart", target=TARGET, outcome="executed",
                          acted=True, state="done"))
    before = row_counts(store)

    got = replay(cfg, store, a, rb)

    assert (got.decision, got.guard, got.target) == ("stopped", "cooldown", TARGET)
    assert "cooldown 1800s" in got.reason
    assert [c.guard for c in got.checks if not c.passed] == ["cooldown"]
    assert got.would.startswith("would patch deployment messaging/ws-gateway")
    assert row_counts(store) == before
    assert kube_writes(kube) == []


def test_window_pauses_an_alert_that_would_act_and_it_acts_after(store: Store, tmp_path: Path,
                                                                 kube: FakeKube) -> None:
    cfg = _cfg(tmp_path, kube)
    rb = load_runbook(tmp_path / "runbooks" / f"{ALERT}.md")
    a = alert_from(_alert())
    engine = Engine(cfg, store, "test")
    w = windows.pause(store, reason="node pool upgrade", by="alice", until=utcnow() + timedelta(hours=1),
                      scope_kind="namespace", scope_value=NS)
    assert replay(cfg, store, a, rb).guard == "paused"

    outcome, rid = engine.handle(a, rb)

    with store.session() as s:
        row = s.get(Remediation, rid)
        assert row is not None
        assert (outcome, row.outcome, row.guard, row.acted) == ("decided", "skipped", "paused", False)
        assert f"maintenance window #{w.id}" in row.reason and "node pool upgrade" in row.reason
    assert kube_writes(kube) == []
    assert [x.id for x in windows.refresh_gauge(store, cfg)] == [w.id]
    assert REGISTRY.get_sample_value("sre_remediation_paused", {"scope": f"namespace={NS}"}) == 1

    windows.resume(store, int(w.id), "alice")
    assert windows.refresh_gauge(store, cfg) == []
    assert REGISTRY.get_sample_value("sre_remediation_paused", {"scope": f"namespace={NS}"}) is None
    _, acted = engine.handle(a, rb)  # Alertmanager repeats the same alert

    with store.session() as s:
        row = s.get(Remediation, acted)
        assert row is not None and (row.outcome, row.acted) == ("executed", True)
    assert [r.path for r in kube_writes(kube)] == [f"/apis/apps/v1/namespaces/{NS}/deployments/{DEPLOYMENT}"]


def test_execute_runs_through_the_engine_and_is_audited(store: Store, tmp_path: Path, kube: FakeKube) -> None:
    cfg = _cfg(tmp_path, kube)
    rb = load_runbook(tmp_path / "runbooks" / f"{ALERT}.md")
    rid = execute(cfg, store, alert_from(_alert()), rb, reason="rehearsal of the fix", by="bob")
    assert rid is not None
    with store.session() as s:
        row = s.get(Remediation, rid)
        assert row is not None and (row.outcome, row.acted) == ("executed", True)
        events = [e.kind for e in s.scalars(select(RemediationEvent).where(RemediationEvent.remediation_id == rid))]
    assert "manual" in events and len(kube_writes(kube)) == 1
    # Every guard still applies: a second run by hand is stopped by the lock (verification pending).
    again = execute(cfg, store, alert_from(_alert(30)), rb, reason="again", by="bob")
    with store.session() as s:
        second = s.get(Remediation, again)
        assert second is not None and second.guard == "lock"
    assert len(kube_writes(kube)) == 1
