"""The service: health, readiness, metrics, clean shutdown, and the real Prometheus scraping it."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from sre.local.procs import wait_until
from sre.sandbox import Stack
from tests.remediation_support import role_headers, role_token_file
from tests.service import running_service

pytestmark = pytest.mark.slow


def test_health_ready_metrics_and_sigterm(sandbox_config_path: Path) -> None:
    with running_service(sandbox_config_path) as svc:
        assert httpx.get(f"{svc.url}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{svc.url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["store"] is True
        assert httpx.get(f"{svc.url}/metrics").status_code == 401
        metrics = httpx.get(f"{svc.url}/metrics", headers=role_headers(sandbox_config_path, "metrics")).text
        assert "sre_build_info" in metrics and "sre_scheduler_running 1.0" in metrics
        assert httpx.get(f"{svc.url}/openapi.json").json()["info"]["title"] == "sre"
        assert svc.stop(signal.SIGTERM) == 0
        assert "Application shutdown complete" in svc.log.read_text()


def test_real_prometheus_scrapes_the_service(sandbox: Stack, sandbox_config_path: Path) -> None:
    assert sandbox.prometheus
    with running_service(sandbox_config_path) as svc:
        job = f"sre-{svc.port}"
        sandbox.prometheus.set_authorized_scrape(job, [f"127.0.0.1:{svc.port}"],
                                                 Path(role_token_file(sandbox_config_path, "metrics")))

        def target_up() -> bool:
            r = httpx.get(f"{sandbox.prometheus.url}/api/v1/targets", params={"state": "active"}).json()  # type: ignore[union-attr]
            return any(t["labels"].get("job") == job and t["health"] == "up" for t in r["data"]["activeTargets"])

        wait_until(target_up, timeout=30, interval=0.5, what="Prometheus reporting the service's target up")
        q = httpx.get(f"{sandbox.prometheus.url}/api/v1/query", params={"query": f'sre_build_info{{job="{job}"}}'})
        assert q.json()["data"]["result"], q.text
        sandbox.prometheus.set_authorized_scrape(job, [], Path())
