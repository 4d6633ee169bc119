"""The receiver with a PostgreSQL state store (the sandbox primary): rows as the ORM reads them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select, text

from sre.api.app import create_app
from sre.config import load_config
from sre.local.procs import wait_until
from sre.remediation.worker import MAX_ATTEMPTS, RemediationWorker
from sre.sandbox import Stack
from sre.store import open_store
from sre.store.remediation import TARGET_LEN, InboxRow, Remediation
from tests.remediation_support import alert, payload, role_headers, token_of, write_runbook

pytestmark = pytest.mark.slow


@pytest.fixture
def client(sandbox: Stack, sandbox_config_path: Path, tmp_path: Path, httpserver: HTTPServer) -> Iterator[TestClient]:
    assert sandbox.postgres is not None
    httpserver.expect_request("/escalate", method="POST").respond_with_json({"ok": True})
    db = f"sre_webhook_{secrets.token_hex(4)}"
    sandbox.postgres.primary.sql(f"CREATE DATABASE {db}")
    write_runbook(tmp_path / "runbooks", "GatewayMemoryHigh")
    write_runbook(tmp_path / "runbooks", "OnlyDocs", remediation=False)
    write_runbook(tmp_path / "runbooks", "PostgresIdleInTransaction", "postgres.terminate_idle_in_transaction",
                  target={"cluster": "{{ labels.cluster }}", "node": "{{ labels.node }}"},
                  guards={"only_clusters": ["main"]})
    data = yaml.safe_load(sandbox_config_path.read_text())
    data["state"]["url"] = sandbox.postgres.primary.url(database=db)
    data["remediation"] = {"runbooks_dir": str(tmp_path / "runbooks"), "dry_run": True,
                           "escalation_webhook": httpserver.url_for("/escalate")}
    path = tmp_path / "sre.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    store = open_store(cfg)
    try:
        with TestClient(create_app(cfg, store)) as c:
            c.headers["Authorization"] = f"Bearer {token_of(sandbox_config_path)}"
            c.app.state.config_path = sandbox_config_path  # type: ignore[attr-defined]
            yield c
    finally:
        store.dispose()
        sandbox.postgres.primary.sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_group_stored_in_one_statement_reads_back_through_the_orm(client: TestClient) -> None:
    body = payload(alert(fingerprint="p1", starts_at="2024-05-01T12:30:00.25+02:30"),
                   alert(fingerprint="p2", status="resolved"),
                   alert("OnlyDocs", fingerprint="p3"), alert("Unknown", fingerprint="p4", pod="it's \"quoted\"\t"))
    resp = client.post("/webhook/alertmanager", json=body)
    assert resp.status_code == 200, resp.text
    with client.app.state.store.session() as s:  # type: ignore[attr-defined]
        rows = list(s.scalars(select(InboxRow).order_by(InboxRow.id)))
    assert [(r.fingerprint, r.status, r.state, r.outcome) for r in rows] == [
        ("p1", "firing", "pending", None), ("p2", "resolved", "pending", None),
        ("p3", "firing", "done", "no_automation"), ("p4", "firing", "done", "no_runbook")]
    assert rows[0].starts_at.isoformat() == "2024-05-01T10:00:00.250000+00:00" and rows[0].ends_at is None
    assert rows[1].ends_at is not None and rows[1].ends_at.isoformat() == "2024-05-01T11:00:00+00:00"
    assert rows[3].labels["pod"] == "it's \"quoted\"\t" and rows[0].annotations == {"summary": "memory high"}
    assert rows[0].alertname == "GatewayMemoryHigh" and rows[0].receiver == "sre"
    assert rows[0].generator_url == "http://prometheus/graph" and rows[2].processed_at is not None

    inbox = client.get("/api/inbox", params={"state": "pending"}, headers=_read_headers(client))
    assert inbox.status_code == 200, inbox.text
    assert [(a["fingerprint"], a["status"]) for a in inbox.json()] == [("p2", "resolved"), ("p1", "firing")]
    done = client.get("/api/inbox", params={"state": "done", "alertname": "OnlyDocs"}, headers=_read_headers(client))
    assert [(a["fingerprint"], a["outcome"]) for a in done.json()] == [("p3", "no_automation")]


def _read_headers(client: TestClient) -> dict[str, str]:
    return role_headers(client.app.state.config_path, "read")  # type: ignore[attr-defined]


def _work_until_done(client: TestClient) -> RemediationWorker:
    worker = RemediationWorker(client.app.state.cfg, client.app.state.store)  # type: ignore[attr-defined]

    def done() -> bool:
        worker.run_once()
        with client.app.state.store.session() as s:  # type: ignore[attr-defined]
            return not s.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.state.in_(
                ("pending", "claimed"))))

    wait_until(done, timeout=30, interval=0.05, what="the inbox processed")
    return worker


def _escalations(httpserver: HTTPServer) -> list[dict[str, object]]:
    import json

    return [json.loads(req.get_data()) for req, _ in httpserver.log if req.path == "/escalate"]


def test_600_character_labels_are_processed_and_audited(client: TestClient, httpserver: HTTPServer) -> None:
    long = "x" * 600
    body = payload(alert(fingerprint="L1", deployment=long),
                   alert("PostgresIdleInTransaction", fingerprint="L2", cluster="main", node=long),
                   alert("PostgresIdleInTransaction", fingerprint="L3", cluster=long, node="east1"))
    assert client.post("/webhook/alertmanager", json=body).status_code == 200
    _work_until_done(client)
    with client.app.state.store.session() as s:  # type: ignore[attr-defined]
        inbox = [(r.state, r.outcome) for r in s.scalars(select(InboxRow).order_by(InboxRow.id))]
        rems = list(s.scalars(select(Remediation).order_by(Remediation.id)))
    assert inbox == [("done", "decided")] * 3
    assert [(r.fingerprint, r.outcome, r.guard) for r in rems] == [
        ("L1", "refused", "validation"), ("L2", "refused", "validation"), ("L3", "refused", "validation")]
    assert "deployment" in rems[0].reason and "no node" in rems[1].reason and "inventory" in rems[2].reason
    assert len(rems[1].target) <= TARGET_LEN and rems[1].target.startswith("postgres/main/xxx")
    assert rems[0].labels["deployment"] == long  # the audit keeps the alert as it came
    assert [e["kind"] for e in _escalations(httpserver)] == ["runbook"] * 3


def test_an_alert_that_keeps_failing_is_audited_and_escalated(client: TestClient, httpserver: HTTPServer) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    # A fault in the database itself: every decision about this alert is refused, except the record of giving up.
    with store.engine.begin() as conn:
        conn.execute(text("CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                          "IF NEW.fingerprint = 'poison' AND NEW.outcome <> 'error' THEN "
                          "RAISE EXCEPTION 'disk on fire'; END IF; RETURN NEW; END $$"))
        conn.execute(text("CREATE TRIGGER poison BEFORE INSERT ON remediations FOR EACH ROW EXECUTE FUNCTION poison()"))
    assert client.post("/webhook/alertmanager", json=payload(alert(fingerprint="poison"))).status_code == 200
    _work_until_done(client)
    with store.session() as s:
        row = s.scalars(select(InboxRow)).one()
        [rem] = s.scalars(select(Remediation)).all()
    assert (row.state, row.outcome, row.remediation_id, row.attempts) == ("failed", "error", rem.id, MAX_ATTEMPTS + 1)
    assert rem.outcome == "error" and rem.fingerprint == "poison" and rem.action == "kubernetes.rollout_restart"
    assert f"failed {MAX_ATTEMPTS} times" in rem.reason and "disk on fire" in rem.reason
    assert [e["kind"] for e in _escalations(httpserver)] == ["processing_failed"]


_long_text = st.text(min_size=0, max_size=2000)
_long_alerts = st.lists(st.fixed_dictionaries({
    "labels": st.dictionaries(st.text(min_size=1, max_size=300), _long_text, max_size=6),
    "annotations": st.dictionaries(st.text(max_size=50), _long_text, max_size=3),
    "fingerprint": st.text(min_size=1, max_size=128),
    "status": st.sampled_from(["firing", "resolved"]),
}), min_size=0, max_size=60)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow, HealthCheck.data_too_large])
@given(alerts=_long_alerts)
def test_generated_long_and_many_alerts_are_stored_or_refused_never_5xx(client: TestClient,
                                                                       alerts: list[dict[str, object]]) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    with store.session() as s:
        before = int(s.scalar(select(func.count()).select_from(InboxRow)) or 0)
    body = payload(*[{**alert(fingerprint="x"), **a} for a in alerts])
    resp = client.post("/webhook/alertmanager", json=body)
    assert resp.status_code in (200, 413, 422), resp.text
    with store.session() as s:
        after = int(s.scalar(select(func.count()).select_from(InboxRow)) or 0)
    # Answered 200: every alert of it is in the inbox; refused: none is.
    assert after - before == (len(alerts) if resp.status_code == 200 else 0)


def test_the_inbox_writer_commits_synchronously_whatever_the_server_default(client: TestClient) -> None:
    from sre.remediation.inbox import InboxWriter

    store = client.app.state.store  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        db = conn.exec_driver_sql("SELECT current_database()").scalar()
        conn.exec_driver_sql(f"ALTER DATABASE {db} SET synchronous_commit = off")
        conn.commit()
    store.engine.dispose()  # new connections pick the database default up
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    writer = InboxWriter(store)
    try:
        assert writer._connection().exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    finally:
        writer._close()
