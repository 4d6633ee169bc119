"""End to end: a condition made real reaches Alertmanager through the shipped rule.

The service's replication check exports `sre_replication_connected`; here a real HTTP endpoint
exposes it (prometheus-client, scraped as job `sre` by the sandbox Prometheus), the shipped
ReplicaDisconnected rule is applied with `sre alerts apply` (its `for:` shortened so the test
does not wait a minute), and the alert is read back from Alertmanager's /api/v2/alerts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sre.local.procs import free_port, wait_until
from sre.sandbox import Stack
from tests.cli import sre

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]


@pytest.fixture
def exporter(sandbox: Stack) -> Iterator[Any]:
    """A /metrics endpoint with sre_replication_connected, scraped by the sandbox as job `sre`."""
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    assert sandbox.prometheus
    registry = CollectorRegistry()
    gauge = Gauge("sre_replication_connected", "1 while the replica streams.", ["cluster", "replica", "region"],
                  registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    targets = sandbox.prometheus.set_scrape_targets("sre", [f"127.0.0.1:{port}"])
    try:
        yield gauge
    finally:
        targets.unlink(missing_ok=True)
        server.shutdown()
        thread.join(timeout=5)


def _alerts(am_url: str, name: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{am_url}/api/v2/alerts", params={"filter": f'alertname="{name}"', "active": "true"},
                     timeout=5)
    resp.raise_for_status()
    return list(resp.json())


def test_a_stopped_replica_reaches_alertmanager(sandbox: Stack, exporter: Any, tmp_path: Path) -> None:
    assert sandbox.prometheus and sandbox.alertmanager
    tree = tmp_path / "alerts"
    tree.mkdir()
    shipped = yaml.safe_load((ROOT / "alerts" / "replication.yaml").read_text())
    (group,) = shipped["groups"]
    rule = next(r for r in group["rules"] if r["alert"] == "ReplicaDisconnected")
    rule["for"] = "2s"
    (tree / "replication-e2e.yaml").write_text(yaml.safe_dump({"groups": [{"name": "replication-e2e",
                                                                             "rules": [rule]}]}))
    cfg = tmp_path / "sre.yaml"
    cfg.write_text(yaml.safe_dump({
        "state": {"dir": str(tmp_path / "state")},
        "endpoints": {"prometheus": {"url": sandbox.prometheus.url}},
        "alerts": {"rules_dir": str(sandbox.prometheus.rules_dir), "source_dir": str(tree),
                   "runbook_base_url": "https://runbooks.example.com"},
    }))
    rule_file = sandbox.prometheus.rules_dir / "replication-e2e.yaml"
    try:
        exporter.labels("main", "west1", "eu-west-1").set(1)
        proc = sre("alerts", "apply", "--config", str(cfg), "--output", "json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["results"][0]["confirmed_groups"] == 1

        # the replica streams: scraped, evaluated, and no alert
        wait_until(lambda: httpx.get(f"{sandbox.prometheus.url}/api/v1/query",  # type: ignore[union-attr]
                                     params={"query": 'sre_replication_connected{job="sre"} == 1'},
                                     timeout=5).json()["data"]["result"], timeout=30, what="the gauge scraped")
        assert _alerts(sandbox.alertmanager.url, "ReplicaDisconnected") == []

        exporter.labels("main", "west1", "eu-west-1").set(0)  # the replica stops streaming
        alerts = wait_until(lambda: _alerts(sandbox.alertmanager.url, "ReplicaDisconnected"),  # type: ignore[union-attr]
                            timeout=60, interval=0.5, what="ReplicaDisconnected in Alertmanager")
        (alert,) = alerts
        assert alert["labels"] | {"job": "sre"} == alert["labels"]
        assert {k: alert["labels"][k] for k in ("severity", "cluster", "replica", "region")} == {
            "severity": "page", "cluster": "main", "replica": "west1", "region": "eu-west-1"}
        assert alert["annotations"]["summary"] == "Replica main/west1 (eu-west-1) is not streaming"
        assert alert["annotations"]["runbook_url"] == "https://runbooks.example.com/ReplicaDisconnected.md"
        assert alert["status"]["state"] == "active"
    finally:
        rule_file.unlink(missing_ok=True)
        sandbox.prometheus.reload()
