"""The service's own log lines are ECS JSON whose every field the logs-sre template maps, so a
shipper needs no parsing and nothing is left to dynamic mapping."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from sre import telemetry
from sre.provision.elasticsearch import load_desired

# What each mapped type accepts from a JSON value.
_ACCEPTS = {
    str: {"keyword", "constant_keyword", "wildcard", "match_only_text", "text", "date", "ip"},
    bool: {"boolean", "keyword"},
    int: {"long", "integer", "double", "float", "keyword"},
    float: {"double", "float", "scaled_float"},
}


def leaves(doc: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in doc.items():
        path = prefix + key
        if isinstance(value, dict):
            yield from leaves(value, path + ".")
        else:
            yield path, value


@pytest.fixture
def ecs_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    telemetry.setup_logging("INFO", json_lines=True)
    yield buf
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_sre", False)]:
        root.removeHandler(handler)


def test_service_log_lines_parse_as_json_with_fields_the_logs_sre_template_maps(ecs_lines: io.StringIO) -> None:
    log = logging.getLogger("sre.jobs")
    log.info("job finished", extra=telemetry.log_fields(job="replicas.check", status="ok", duration_seconds=0.25,
                                                        run_id=42, trigger="schedule"))
    log.warning("remediation refused", extra=telemetry.log_fields(
        alertname="WebsocketGatewayMemoryHigh", fingerprint="a1b2c3d4e5f6", action="kubernetes.rollout_restart",
        outcome="refused", remediation_id=17, dry_run=True))
    log.info("drill step", extra=telemetry.log_fields(drill_id="d-2024-01", cluster="main", replica="west1",
                                                      check="replication.postgres", step="promote"))
    try:
        raise ConnectionError("replica west1 unreachable")
    except ConnectionError:
        log.exception("check failed", extra=telemetry.log_fields(check="replication.postgres"))

    lines = [json.loads(line) for line in ecs_lines.getvalue().splitlines() if line.strip()]
    assert len(lines) == 4
    mapped = load_desired().resolved_fields("logs-sre")
    for line in lines:
        assert line["event"]["dataset"] == "sre", "event.dataset must match the logs-sre-* data stream's dataset"
        assert line["service"]["name"] == "sre" and line["log.level"] in ("info", "warning", "error")
        for path, value in leaves(line):
            assert path in mapped, f"{path} is not mapped by the logs-sre template"
            assert mapped[path] in _ACCEPTS[type(value)], f"{path}={value!r} does not fit type {mapped[path]}"
    error = lines[-1]
    assert error["error"]["type"] == "ConnectionError" and "raise ConnectionError" in error["error"]["stack_trace"]
