"""The steps `sre up` runs after the stack and its sre.yaml exist and before the service starts.

Each takes (stack, cfg, console) and returns lines for the summary; `sre up` reports a failing
step and goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sre.adapters.dns import Route53, record_for_target, route53_client
from sre.adapters.prometheus import PrometheusClient
from sre.content import alerts_dir as shipped_alerts
from sre.drills.nodes import pick_cluster
from sre.provision.dashboards_render import render
from sre.provision.grafana import sources_for
from sre.provision.prometheus import RulesDirTarget, desired_files
from sre.provision.target import apply, plan
from sre.sandbox.backups import prepare

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.sandbox import Stack


def alert_rules(stack: Stack, cfg: SreConfig, console: Any) -> list[str]:
    """Load the shipped rules into the sandbox Prometheus, the way `sre alerts apply` does."""
    alerts_dir = shipped_alerts(cfg)
    if cfg.alerts.rules_dir is None or not Path(alerts_dir).is_dir():
        return [f"alerts: no rules tree at {alerts_dir}; nothing loaded into Prometheus"]
    files = desired_files(Path(alerts_dir), cfg.alerts.runbook_base_url, slo_severity=cfg.alerts.slo_severity)
    with RulesDirTarget(files, Path(cfg.alerts.rules_dir), PrometheusClient.from_config(cfg), prune=True) as target:
        result = apply(target, plan(target))
    assert stack.prometheus is not None
    return [f"alerts: {result.notes['confirmed_groups']} rule groups from {alerts_dir} loaded into Prometheus "
            f"(see {stack.prometheus.url}/alerts)"]


def backups(stack: Stack, cfg: SreConfig, console: Any) -> list[str]:
    """Buckets with good posture, a small messaging schema, one backup taken and verified."""
    return prepare(stack, cfg, console)


def dns_record(stack: Stack, cfg: SreConfig, console: Any) -> list[str]:
    """Create the Route 53 zone and the db record pointing at the primary (moto), so that
    `sre drill failover --execute` works against `sre up`."""
    if cfg.dns is None or stack.moto is None or not cfg.postgres.clusters:
        return []
    cluster = pick_cluster(cfg, None)
    primary = cfg.postgres.clusters[cluster].primary
    record = cfg.dns.records.get(cfg.drills.record)
    target = cfg.dns.node_targets.get(primary.name)
    if record is None or target is None:
        return []
    r53 = Route53(route53_client(cfg.aws), cfg.dns.zone)
    r53.ensure_zone()
    r53.wait_insync(r53.upsert_record(record_for_target(record, target, cfg.dns.ttl)))
    return [f"drills: Route 53 zone {cfg.dns.zone} with {record} -> {target} ({primary.name})"]


def dashboards(stack: Stack | None, cfg: SreConfig, console: Any) -> list[str]:
    """Render the dashboards for Grafana's file provisioning and say where they are."""
    out = cfg.state.dir / "grafana"
    sources = sources_for(cfg)
    render(sources, out, "provisioning")
    provider = out / "provisioning" / "dashboards" / "sre.yaml"
    return [
        f"dashboards: {len(sources.dashboards)} rendered for Grafana file provisioning under {out}",
        f"  point Grafana at them: GF_PATHS_PROVISIONING={out / 'provisioning'}, or copy {provider} into "
        "its provisioning/dashboards/; pick the Prometheus above in each dashboard's datasource variable",
    ]


UP_STEPS: list[Callable[[Stack, SreConfig, Any], list[str]]] = [alert_rules, backups, dns_record, dashboards]
