"""Logs: ECS JSON off a TTY with the service's fields; registered secrets never printed."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from sre import telemetry
from sre.config import SecretRef


def test_ecs_json_lines_with_sre_fields_and_masked_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    telemetry.setup_logging("INFO", json_lines=True)
    telemetry.register_secret("hunter2-token-value")
    log = logging.getLogger("sre.test")
    log.info("calling with token hunter2-token-value", extra=telemetry.log_fields(job="replicas.check", run_id=7))
    line = json.loads(buf.getvalue().strip().splitlines()[-1])
    assert line["message"] == "calling with token ***"
    assert line["log.level"] == "info" and line["service"]["name"] == "sre" and "@timestamp" in line
    assert line["sre"] == {"job": "replicas.check", "run_id": 7}
    assert "hunter2" not in buf.getvalue()


def test_a_resolved_secret_is_masked_in_exception_text_traceback_and_extra_fields(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    telemetry.setup_logging("INFO", json_lines=True)
    # Any secret reference, once resolved, is registered: not only the webhook's.
    (tmp_path / "dsn").write_text('postgresql://app:pa"ss-4711-word@db/x\n')
    dsn = SecretRef(file=tmp_path / "dsn").resolve().get_secret_value()
    log = logging.getLogger("sre.test")
    try:
        raise RuntimeError(f"connection to {dsn} refused")
    except RuntimeError:
        log.exception("the check failed", extra=telemetry.log_fields(target=dsn))
    out = buf.getvalue()
    line = json.loads(out.strip().splitlines()[-1])
    assert "pa\"ss-4711-word" not in out and 'pa\\"ss-4711-word' not in out
    assert line["error"]["message"] == "connection to *** refused"
    assert line["sre"]["target"] == "***"
    assert "RuntimeError" in line["error"]["stack_trace"]


def test_a_password_in_a_plain_state_url_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    from sre.config import StateConfig

    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    telemetry.setup_logging("INFO", json_lines=True)
    url = StateConfig(url="postgresql+psycopg://sre:pl%40in-state-pass@db:5432/sre").resolved_url()
    logging.getLogger("sre.test").error("cannot reach %s (password pl@in-state-pass)", url)
    out = buf.getvalue()
    assert "in-state-pass" not in out and "postgresql+psycopg://sre:***@db:5432/sre" in out
