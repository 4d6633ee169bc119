"""The webhook receiver against a real SQLite store: auth, limits, validation, one transaction, 5xx only on storage."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from sre.api.app import create_app
from sre.config import SreConfig, load_config
from sre.store import open_store
from sre.store.remediation import InboxRow
from tests.remediation_support import alert, payload, write_runbook

TOKEN = "s3cret-webhook-token"
METRICS_TOKEN = "s3cret-metrics-token"
URL = "/webhook/alertmanager"


def _config(tmp: Path, webhook: dict[str, Any] | None) -> SreConfig:
    (tmp / "token").write_text(TOKEN + "\n")
    (tmp / "password").write_text("pa55word-long-enough\n")
    (tmp / "metrics-token").write_text(METRICS_TOKEN + "\n")
    write_runbook(tmp / "runbooks", "GatewayMemoryHigh")
    lines = [f"state: {{dir: {tmp / 'state'}}}", f"remediation: {{runbooks_dir: {tmp / 'runbooks'}}}"]
    lines.append("api: " + json.dumps({"tokens": {"metrics": [{"file": str(tmp / "metrics-token")}]}}))
    if webhook is not None:
        lines.append("webhook: " + json.dumps(webhook))
    (tmp / "sre.yaml").write_text("\n".join(lines) + "\n")
    return load_config(tmp / "sre.yaml")


def _client(cfg: SreConfig, insecure: bool = False) -> Iterator[TestClient]:
    store = open_store(cfg)
    app = create_app(cfg, store, insecure_webhook=insecure)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    store.dispose()


@pytest.fixture
def bearer(tmp_path: Path) -> Iterator[TestClient]:
    cfg = _config(tmp_path, {"auth": "bearer", "token": {"file": str(tmp_path / "token")},
                             "max_body_bytes": "64KiB"})
    yield from _client(cfg)


def _count(client: TestClient) -> int:
    with client.app.state.store.session() as s:  # type: ignore[attr-defined]
        return int(s.scalar(select(func.count()).select_from(InboxRow)) or 0)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_stores_every_alert_of_the_group_before_answering(bearer: TestClient) -> None:
    body = payload(alert(fingerprint="a1"), alert(fingerprint="a2", status="resolved"), alert(fingerprint="a3"),
                   alert("NoRunbookForThis", fingerprint="a4"), routeLabels={"team": "sre"}, notification_reason="new")
    resp = bearer.post(URL, json=body, headers=AUTH)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "stored", "alerts": 4}
    with bearer.app.state.store.session() as s:  # type: ignore[attr-defined]
        rows = list(s.scalars(select(InboxRow).order_by(InboxRow.id)))
    # A firing alert that no runbook automates is stored already done: the worker never looks at it.
    assert [(r.fingerprint, r.status, r.state, r.outcome) for r in rows] == [
        ("a1", "firing", "pending", None), ("a2", "resolved", "pending", None), ("a3", "firing", "pending", None),
        ("a4", "firing", "done", "no_runbook")]
    first = rows[0]
    assert first.alertname == "GatewayMemoryHigh" and first.labels["deployment"] == "ws-gateway"
    assert first.starts_at.isoformat() == "2024-05-01T10:00:00.123456+00:00"
    assert first.ends_at is None  # Go's zero time of a firing alert
    assert rows[1].ends_at is not None and rows[1].ends_at.isoformat() == "2024-05-01T11:00:00+00:00"
    assert first.group_key == '{}:{alertname="x"}' and first.receiver == "sre"


def test_times_are_stored_in_utc_whatever_the_offset(bearer: TestClient) -> None:
    body = payload(alert(fingerprint="t1", starts_at="2024-05-01T12:30:00+02:30"),
                   alert(fingerprint="t2", starts_at="2024-05-01T10:00:00.5-01:00"))
    assert bearer.post(URL, json=body, headers=AUTH).status_code == 200
    with bearer.app.state.store.session() as s:  # type: ignore[attr-defined]
        got = [r.starts_at.isoformat() for r in s.scalars(select(InboxRow).order_by(InboxRow.id))]
    assert got == ["2024-05-01T10:00:00+00:00", "2024-05-01T11:00:00.500000+00:00"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": TOKEN}])
def test_401_without_or_with_wrong_credentials(bearer: TestClient, headers: dict[str, str]) -> None:
    resp = bearer.post(URL, json=payload(alert()), headers=headers)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert _count(bearer) == 0


def test_basic_auth(tmp_path: Path) -> None:
    cfg = _config(tmp_path, {"auth": "basic", "username": "am", "password": {"file": str(tmp_path / "password")}})
    for client in _client(cfg):
        good = base64.b64encode(b"am:pa55word-long-enough").decode()
        bad = base64.b64encode(b"am:wrong").decode()
        assert client.post(URL, json=payload(alert()), headers={"Authorization": f"Basic {bad}"}).status_code == 401
        assert client.post(URL, json=payload(alert()), headers={"Authorization": "Basic !!"}).status_code == 401
        assert client.post(URL, json=payload(alert()), headers={"Authorization": f"Basic {good}"}).status_code == 200


def test_no_credentials_refuses_unless_insecure(tmp_path: Path) -> None:
    cfg = _config(tmp_path, None)
    for client in _client(cfg):
        assert client.post(URL, json=payload(alert())).status_code == 401
    for client in _client(cfg, insecure=True):
        assert client.post(URL, json=payload(alert())).status_code == 200


def test_422_names_the_failing_field(bearer: TestClient) -> None:
    bad = payload(alert(), alert(fingerprint="x2"))
    bad["alerts"][1]["startsAt"] = "yesterday"
    resp = bearer.post(URL, json=bad, headers=AUTH)
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "alerts", 1, "startsAt"]
    missing = payload(alert())
    del missing["alerts"][0]["fingerprint"]
    assert bearer.post(URL, json=missing, headers=AUTH).json()["detail"][0]["loc"] == ["body", "alerts", 0,
                                                                                         "fingerprint"]
    nul = payload(alert(pod="a\u0000b"))
    resp = bearer.post(URL, content=json.dumps(nul), headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "alerts", 0, "labels", "pod"]
    assert bearer.post(URL, content=b"{not json", headers=AUTH).status_code == 422
    assert _count(bearer) == 0  # nothing of a refused group is stored


def test_413_over_the_limit_declared_or_streamed(bearer: TestClient) -> None:
    big = json.dumps(payload(*[alert(fingerprint=f"{i:08x}", filler="x" * 500) for i in range(200)])).encode()
    assert len(big) > 64 * 1024
    resp = bearer.post(URL, content=big, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    resp = bearer.post(URL, content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 413
    assert _count(bearer) == 0


def test_503_only_when_storing_fails(bearer: TestClient) -> None:
    store = bearer.app.state.store  # type: ignore[attr-defined]
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE alert_inbox RENAME TO alert_inbox_gone"))
    try:
        resp = bearer.post(URL, json=payload(alert()), headers=AUTH)
        assert resp.status_code == 503 and "retry" in resp.json()["detail"]
        assert "Traceback" not in resp.text
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE alert_inbox_gone RENAME TO alert_inbox"))
    assert bearer.post(URL, json=payload(alert()), headers=AUTH).status_code == 200


def test_metrics_count_alerts_and_answers(bearer: TestClient) -> None:
    bearer.post(URL, json=payload(alert(fingerprint="m1"), alert(fingerprint="m2", status="resolved"),
                                  truncatedAlerts=4), headers=AUTH)
    text_ = bearer.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert 'sre_webhook_alerts_total{status="firing"}' in text_
    assert 'sre_webhook_alerts_total{status="truncated"}' in text_
    assert 'sre_webhook_request_duration_seconds_count{code="200"}' in text_


_label = st.text(min_size=0, max_size=20)
_json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=8)
_alerts = st.fixed_dictionaries({
    "status": st.sampled_from(["firing", "resolved", "pending", ""]),
    "labels": st.dictionaries(_label, _label, max_size=4) | _json_value,
    "annotations": st.dictionaries(_label, st.text(max_size=50), max_size=3),
    "startsAt": st.sampled_from(["2024-05-01T10:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00",
                                 "2024-05-01T10:00:00.999999999+02:00", "2024-05-01", "", "2024-13-01T00:00:00Z"])
    | st.integers(),
    "endsAt": st.sampled_from(["0001-01-01T00:00:00Z", "2024-05-01T11:00:00Z", None]),
    "generatorURL": st.text(max_size=30),
    "fingerprint": st.text(max_size=140),
}, optional={"extra": _json_value})
_payloads = st.fixed_dictionaries({
    "version": st.sampled_from(["4", "3", 4]),
    "status": st.sampled_from(["firing", "resolved", "x"]),
    "alerts": st.lists(_alerts, max_size=4),
}, optional={"groupKey": st.text(max_size=20), "receiver": _json_value, "truncatedAlerts": st.integers(),
             "commonLabels": st.dictionaries(_label, _label, max_size=2), "routeLabels": _json_value})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_payloads | _json_value)
def test_generated_payloads_never_5xx(bearer: TestClient, body: Any) -> None:
    resp = bearer.post(URL, content=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code in (200, 413, 422), resp.text
