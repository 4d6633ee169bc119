"""Logs: ECS JSON off a TTY with the service's fields; registered secrets never printed."""

from __future__ import annotations

import io
import json
import logging

import pytest

from sre import telemetry


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
