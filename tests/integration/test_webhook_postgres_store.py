"""The receiver with a PostgreSQL state store (the sandbox primary): rows as the ORM reads them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from sre.api.app import create_app
from sre.config import load_config
from sre.sandbox import Stack
from sre.store import open_store
from sre.store.remediation import InboxRow
from tests.remediation_support import alert, payload, token_of, write_runbook

pytestmark = pytest.mark.slow


@pytest.fixture
def client(sandbox: Stack, sandbox_config_path: Path, tmp_path: Path) -> Iterator[TestClient]:
    assert sandbox.postgres is not None
    db = f"sre_webhook_{secrets.token_hex(4)}"
    sandbox.postgres.primary.sql(f"CREATE DATABASE {db}")
    write_runbook(tmp_path / "runbooks", "GatewayMemoryHigh")
    write_runbook(tmp_path / "runbooks", "OnlyDocs", remediation=False)
    data = yaml.safe_load(sandbox_config_path.read_text())
    data["state"]["url"] = sandbox.postgres.primary.url(database=db)
    data["remediation"] = {"runbooks_dir": str(tmp_path / "runbooks")}
    path = tmp_path / "sre.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    store = open_store(cfg)
    try:
        with TestClient(create_app(cfg, store)) as c:
            c.headers["Authorization"] = f"Bearer {token_of(sandbox_config_path)}"
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
