"""The exporters and the application simulator of the sandbox, as the sandbox Prometheus scrapes
them: the job names and labels the rules expect, and the series the rules read."""

from __future__ import annotations

from typing import Any

import pytest

from sre.adapters.prometheus import PrometheusClient
from sre.local.procs import wait_until
from sre.sandbox import Stack

pytestmark = pytest.mark.slow


def _query(stack: Stack, expr: str, *, present: bool = True) -> list[dict[str, Any]]:
    assert stack.prometheus is not None
    with PrometheusClient(stack.prometheus.url) as prom:
        if not present:
            return prom.query(expr)
        return wait_until(lambda: prom.query(expr), timeout=15, interval=0.2, what=f"series of {expr}")


def _labels(rows: list[dict[str, Any]], *keys: str) -> set[tuple[str, ...]]:
    return {tuple(r["metric"].get(k, "") for k in keys) for r in rows}


def test_every_exporter_is_scraped_under_the_job_the_rules_expect(sandbox: Stack) -> None:
    expected = {("postgres", "main", "east1"), ("postgres", "main", "west1"), ("redis", "cache", "primary"),
                ("redis", "cache", "replica"), ("node", "", ""), ("api", "", ""), ("websocket-gateway", "", ""),
                ("alertmanager", "", "")}
    rows = wait_until(lambda: (r := _query(sandbox, "up == 1"))
                      and expected <= _labels(r, "job", "cluster", "node") and r, timeout=15, what="every job up")
    assert expected <= _labels(rows, "job", "cluster", "node")
    probes = _query(sandbox, 'probe_success{job="blackbox"} == 1')
    assert sandbox.appsim is not None and sandbox.appsim.tls_url in {r["metric"]["instance"] for r in probes}


def test_the_role_of_each_postgresql_node_is_published_by_the_exporter_version_here(sandbox: Stack) -> None:
    # postgres_exporter 0.11 has no pg_replication_is_replica: the rules read in_hot_standby instead.
    roles = _query(sandbox, "pg_settings_in_hot_standby")
    assert {(r["metric"]["node"], r["value"][1]) for r in roles} == {("east1", "0"), ("west1", "1")}
    assert _query(sandbox, 'pg_up{job="postgres"} == 1') and len(_query(sandbox, 'pg_up{job="postgres"}')) == 2
    idle = _query(sandbox, 'pg_stat_activity_max_tx_duration{state="idle in transaction", datname="postgres"}')
    assert {r["metric"]["node"] for r in idle} == {"east1", "west1"}


def test_only_the_redis_replica_publishes_its_link(sandbox: Stack) -> None:
    link = _query(sandbox, "redis_master_link_up")
    assert [(r["metric"]["node"], r["value"][1]) for r in link] == [("replica", "1")]
    assert {r["metric"]["node"] for r in _query(sandbox, "redis_memory_used_bytes")} == {"primary", "replica"}


def test_the_simulated_api_errors_and_certificate_reach_prometheus(sandbox: Stack) -> None:
    assert sandbox.appsim is not None
    rows = _query(sandbox, 'sum by (method, route, status_code) (http_request_duration_seconds_count{job="api"})')
    assert {(r["metric"]["status_code"], r["value"][1] == "0") for r in rows} == {
        ("200", False), ("401", True), ("429", True), ("500", True)}
    assert len(rows) == 12  # three routes, each with its 401s, 429s and 500s zeroed at start
    try:
        sandbox.appsim.control({"api": {"status_ratios": {"500": 0.5}}, "tls": {"cert_days": 4}})
        ratio = 'sum(rate(http_request_duration_seconds_count{job="api", status_code="500"}[3s])) / ' \
                'sum(rate(http_request_duration_seconds_count{job="api"}[3s]))'
        wait_until(lambda: 0.4 < float(_query(sandbox, ratio)[0]["value"][1]) < 0.6, timeout=15, interval=0.3,
                   what="half the API requests failing")
        expiry = f'probe_ssl_earliest_cert_expiry{{instance="{sandbox.appsim.tls_url}"}} - time()'
        wait_until(lambda: float(_query(sandbox, expiry)[0]["value"][1]) < 5 * 86400, timeout=15, interval=0.3,
                   what="the new certificate probed")
    finally:
        sandbox.appsim.control({"api": {"status_ratios": {}}, "tls": {"cert_days": 90}})
