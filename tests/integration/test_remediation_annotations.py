"""Every finished remediation becomes one Grafana annotation, from its action to its verification;
Grafana failing never fails the remediation, and the annotation arrives once Grafana answers again.
The fake Grafana and Kubernetes APIs, the sandbox's real Prometheus for verification; SQLite and
PostgreSQL state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sre import annotate
from sre.config import SreConfig
from sre.local.procs import wait_until
from sre.remediation.replay import alert_from, execute
from sre.remediation.runbook import load_runbook
from sre.remediation.worker import RemediationWorker
from sre.sandbox import Stack
from sre.store import Store
from sre.store.base import utcnow
from sre.store.remediation import Remediation
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kube import FakeKube
from tests.remediation_store import DIALECTS, state_store
from tests.remediation_support import DEPLOYMENT, NS, fake_cluster, write_runbook

pytestmark = pytest.mark.slow

ALERT = "GatewayMemoryHigh"


@pytest.fixture(params=DIALECTS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with state_store(request, request.param, tmp_path) as st:
        yield st


@pytest.fixture
def fakes() -> Iterator[tuple[FakeGrafana, FakeKube]]:
    grafana, kube = FakeGrafana().start(), FakeKube().start()
    fake_cluster(kube)
    try:
        yield grafana, kube
    finally:
        grafana.stop()
        kube.stop()


def _remediate(sandbox: Stack, store: Store, tmp_path: Path, grafana: FakeGrafana, kube: FakeKube,
               monkeypatch: pytest.MonkeyPatch) -> tuple[RemediationWorker, int]:
    """A live rollout restart, verified against the real Prometheus by the worker."""
    monkeypatch.setenv("SRE_TEST_GRAFANA_TOKEN", "test-token")
    write_runbook(tmp_path / "runbooks", ALERT, verify={"query": "vector(1)", "within": "10s"})
    cfg = SreConfig.model_validate({
        "kubernetes": {"host": kube.url},
        "endpoints": {"prometheus": {"url": sandbox.prometheus.url},
                      "grafana": {"url": grafana.url, "token": {"env": "SRE_TEST_GRAFANA_TOKEN"}}},
        "remediation": {"runbooks_dir": str(tmp_path / "runbooks")}})
    rb = load_runbook(tmp_path / "runbooks" / f"{ALERT}.md")
    labels = {"alertname": ALERT, "namespace": NS, "deployment": DEPLOYMENT, "severity": "ticket"}
    rid = execute(cfg, store, alert_from({"labels": labels, "startsAt": (utcnow() - timedelta(minutes=1)).isoformat()}),
                  rb, reason="test", by="test")
    assert rid is not None
    worker = RemediationWorker(cfg, store)

    def verified() -> bool:
        worker.run_once()
        with store.session() as s:
            row = s.get(Remediation, rid)
            return row is not None and row.state == "verified"

    wait_until(verified, timeout=20, interval=0.1, what="remediation verified")
    return worker, rid


def test_a_remediation_leaves_one_annotation_from_action_to_verification(
        sandbox: Stack, store: Store, tmp_path: Path, fakes: tuple[FakeGrafana, FakeKube],
        monkeypatch: pytest.MonkeyPatch) -> None:
    grafana, kube = fakes
    _, rid = _remediate(sandbox, store, tmp_path, grafana, kube, monkeypatch)

    [note] = grafana.annotations
    with store.session() as s:
        row = s.get(Remediation, rid)
        assert row is not None and row.started_at is not None and row.verified_at is not None
        started, verified = row.started_at, row.verified_at
    assert note["tags"] == ["sre", "remediation", DEPLOYMENT, ALERT, "verified"]
    assert note["time"] == int(started.timestamp() * 1000) and note["timeEnd"] == int(verified.timestamp() * 1000)
    assert note["text"].startswith(f"sre remediation #{rid} {ALERT}: kubernetes.rollout_restart on ")
    assert annotate.pending(store) == 0


def test_grafana_failing_never_fails_the_remediation_and_the_annotation_comes_later(
        sandbox: Stack, store: Store, tmp_path: Path, fakes: tuple[FakeGrafana, FakeKube],
        monkeypatch: pytest.MonkeyPatch) -> None:
    grafana, kube = fakes
    grafana.fail_next("POST", "/api/annotations", 500, times=100)

    worker, rid = _remediate(sandbox, store, tmp_path, grafana, kube, monkeypatch)

    with store.session() as s:
        row = s.get(Remediation, rid)
        assert row is not None and (row.outcome, row.state) == ("executed", "verified")
    assert grafana.annotations == [] and grafana.requests_to("POST", "/api/annotations")
    assert annotate.pending(store) == 1

    grafana.faults.clear()  # Grafana is back
    monkeypatch.setattr(annotate, "FLUSH_EVERY", 0.0)  # the worker's periodic send, without waiting for it
    worker.run_once()

    assert annotate.pending(store) == 0
    [note] = grafana.annotations
    assert note["tags"][-1] == "verified" and note["text"].startswith(f"sre remediation #{rid} ")
