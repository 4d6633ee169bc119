"""`sre dashboards validate --live` against the sandbox's real Prometheus scraping this service's metrics.

Every panel query runs against Prometheus; a query that names only sre_* metrics must return data.
The replica check runs for real against the sandbox's PostgreSQL and Redis pairs; the series of the
longer flows (backups, drills, webhook, remediation: each tested in its own area) are fed through
the service's own metric objects, with the labels those flows use.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sre.config import SreConfig
from sre.local.procs import free_port, wait_until
from sre.provision.dashboards_validate import live_check
from sre.provision.grafana import sources_for
from sre.sandbox import Stack
from tests.cli import sre

pytestmark = pytest.mark.slow


def exercise_service_metrics(cfg: SreConfig) -> None:
    from sre.checks.backups import (
        BACKUP_AGE,
        BACKUP_SIZE,
        MAX_AGE,
        PITR_LAG,
        RESTORE_DURATION,
        VERIFY_SUCCESS,
        WAL_GAP,
    )
    from sre.checks.backups import (
        LAST_SUCCESS as BACKUP_LAST_SUCCESS,
    )
    from sre.dr.readiness import EST_RPO, EST_RTO, READY, RPO_OBJECTIVE, RTO_OBJECTIVE
    from sre.drills.report import LAST_RPO_ROWS, LAST_RTO, LAST_SUCCESS, RUNS
    from sre.jobs import run_job
    from sre.remediation.metrics import BREAKER_OPEN, REMEDIATIONS, WEBHOOK_ALERTS, WEBHOOK_DURATION
    from sre.results import JobContext
    from sre.store import open_store
    from sre.telemetry import SCHEDULER_RUNNING

    store = open_store(cfg)
    try:
        outcome = run_job("replicas.check", JobContext(cfg=cfg, store=store))
        assert outcome.status in ("ok", "warn"), outcome.summary
    finally:
        store.dispose()
    SCHEDULER_RUNNING.set(1)
    for check in ("freshness", "completeness", "restore"):
        VERIFY_SUCCESS.labels("main", check).set(1)
    BACKUP_AGE.labels("main").set(600)
    BACKUP_SIZE.labels("main").set(3 << 20)
    RESTORE_DURATION.labels("main").set(4.2)
    for backup_set, fmt in (("main", "pg_dump"), ("main-pitr", "pgbackrest"), ("cache", "redis-rdb")):
        BACKUP_LAST_SUCCESS.labels(backup_set, fmt).set(1.7e9)
        MAX_AGE.labels(backup_set, fmt).set(86400)
    PITR_LAG.labels("main-pitr").set(0.4)
    WAL_GAP.labels("main-pitr").set(0)
    READY.labels("us-east-1", "eu-west-1").set(1)
    EST_RPO.labels("us-east-1", "eu-west-1", "main").set(0.2)
    RPO_OBJECTIVE.labels("us-east-1", "eu-west-1", "main").set(300)
    EST_RTO.labels("us-east-1", "eu-west-1").set(40)
    RTO_OBJECTIVE.labels("us-east-1", "eu-west-1").set(60)
    LAST_RTO.labels("main").set(2.5)
    LAST_RPO_ROWS.labels("main").set(0)
    LAST_SUCCESS.labels("main").set(1.7e9)
    RUNS.labels("passed").inc()
    WEBHOOK_ALERTS.labels("firing").inc()
    WEBHOOK_DURATION.labels("200").observe(0.004)
    REMEDIATIONS.labels("kubernetes.rollout_restart", "dry_run").inc()
    BREAKER_OPEN.set(0)


def test_every_sre_query_returns_data_from_the_sandbox_prometheus(sandbox: Stack, sandbox_config: SreConfig,
                                                                 sandbox_config_path: Path) -> None:
    from prometheus_client import start_http_server

    assert sandbox.prometheus is not None
    prom = sandbox.prometheus
    exercise_service_metrics(sandbox_config)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    prom.set_scrape_targets("sre", [f"127.0.0.1:{port}"])
    try:
        def scraped_twice() -> bool:
            r = httpx.get(f"{prom.url}/api/v1/query", timeout=5,
                          params={"query": 'count_over_time(sre_scheduler_running{job="sre"}[1m]) >= 3'})
            return bool(r.json()["data"]["result"])

        wait_until(scraped_twice, timeout=60, interval=0.5, what="Prometheus scraping the service three times")
        result = live_check(sources_for(sandbox_config), prom.url)
        assert result["failed"] == [], result["failed"]
        assert result["empty_required"] == [], "\n".join(f"{q['dashboard']} {q['where']}: {q['expr']}"
                                                         for q in result["empty_required"])
        assert result["queries"] > 150

        out = sre("dashboards", "validate", "--live", "--config", str(sandbox_config_path), "--output", "json")
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    finally:
        prom.set_scrape_targets("sre", [])
        server.shutdown()
        server.server_close()
        thread.join(5)
