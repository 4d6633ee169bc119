"""Dashboards as code: loading, rendering, conventions and validation (no Grafana needed)."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from sre.adapters.grafana import RetryPolicy
from sre.errors import UsageError
from sre.provision.dashboards import MANAGED_TAG, comparable, default_dir, folder_uid, from_export, load
from sre.provision.dashboards_render import render
from sre.provision.dashboards_validate import (
    EXPORTER_METRICS,
    for_live,
    metric_names,
    queries,
    service_metrics,
    substitute,
    validate,
)
from sre.provision.dashkit import AlertRule, Context

SHIPPED = {
    "sre-platform-overview", "sre-api", "sre-websocket-gateway", "sre-postgres-ha", "sre-redis", "sre-backups-dr",
    "sre-k8s-workloads", "sre-slos", "sre-service", "rYdddlPWk",
}


@pytest.fixture(scope="module")
def shipped() -> Any:
    return load()


def panels(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in body.get("panels") or []:
        out.append(p)
        out.extend(p.get("panels") or [])
    return out


def test_the_shipped_dashboards_are_all_there(shipped: Any) -> None:
    assert {d.uid for d in shipped.dashboards} == SHIPPED
    assert [f.name for f in shipped.folders][:3] == ["Infrastructure", "Platform", "SRE"]
    assert {"Platform/Databases", "Platform/Resilience"} <= {f.name for f in shipped.folders}


@pytest.mark.parametrize("fmt", ["json", "provisioning", "configmap"])
def test_render_is_deterministic(tmp_path: Path, fmt: str) -> None:
    first = render(load(), tmp_path / "a", fmt)
    second = render(load(), tmp_path / "b", fmt)
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    for a, b in zip(first, second, strict=True):
        if a.name == "sre.yaml":  # the provider names absolute paths, which differ by design
            continue
        assert filecmp.cmp(a, b, shallow=False), a


def test_every_shipped_dashboard_validates(shipped: Any) -> None:
    report = validate(shipped)
    assert report.errors == [], "\n".join(f"{p.dashboard} {p.where}: {p.message}" for p in report.errors)
    assert report.queries > 150 and report.dashboards == len(SHIPPED)


def test_conventions_datasource_variable_runbooks_thresholds(shipped: Any) -> None:
    ctx = Context.from_project()
    for d in shipped.dashboards:
        variables = {v["name"]: v for v in d.body["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", d.uid
        assert "${DS_" not in json.dumps(d.body), d.uid
        for p in panels(d.body):
            for t in p.get("targets") or []:
                if "expr" in t:
                    assert t["datasource"]["uid"] == "${datasource}", (d.uid, p["title"])
        if d.source.endswith(".py") and d.uid not in ("sre-service", "sre-slos", "sre-backups-dr"):
            assert {"region"} & set(variables), f"{d.uid} has no region variable"
    # A panel watching an alert links its runbook and draws the rule's own threshold.
    lag = next(p for p in panels(shipped.by_uid()["sre-postgres-ha"].body) if p["title"] == "Lag per replica")
    assert lag["links"][0]["url"].endswith("/ReplicaLagHigh.md")
    rule_value = ctx.alerts["ReplicaLagHigh"].threshold
    assert rule_value is not None
    steps = lag["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "red", "value": rule_value[1]}
    assert lag["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"


def test_slo_dashboard_has_a_row_per_spec(shipped: Any) -> None:
    ctx = Context.from_project()
    titles = [p["title"] for p in panels(shipped.by_uid()["sre-slos"].body) if p["type"] == "row"]
    assert ctx.slos and all(any(t.startswith(s["name"] + ":") for t in titles) for s in ctx.slos)


def test_uids_are_stable_and_unique(tmp_path: Path, shipped: Any) -> None:
    again = load()
    assert [(d.uid, d.hash) for d in shipped.dashboards] == [(d.uid, d.hash) for d in again.dashboards]
    d = tmp_path / "dashboards"
    shutil.copytree(default_dir(), d, ignore=shutil.ignore_patterns("__pycache__"))
    (d / "Infrastructure" / "copy.json").write_text((d / "Infrastructure" / "node-exporter-full.json").read_text())
    with pytest.raises(UsageError, match="rYdddlPWk"):
        load(d)


def test_folder_uids_are_readable_or_hashed_within_40_characters() -> None:
    assert folder_uid(("Platform", "Databases")) == "sre-platform-databases"
    long = folder_uid(("A very long folder title indeed", "and a nested one too"))
    assert long.startswith("sre-") and len(long) <= 40


def test_an_exported_dashboard_is_taken_as_is(tmp_path: Path) -> None:
    raw = {"__inputs": [{"name": "DS_PROM", "type": "datasource", "pluginId": "prometheus"}],
           "__requires": [{"type": "grafana", "id": "grafana"}], "id": 17, "version": 4, "uid": "x1", "title": "X",
           "panels": [{"id": 3, "datasource": {"type": "prometheus", "uid": "${DS_PROM}"},
                       "targets": [{"expr": "up", "datasource": {"uid": "${DS_PROM}"}}]}]}
    body = from_export(raw)
    assert "__inputs" not in body and "id" not in body and "version" not in body
    assert body["panels"][0]["datasource"]["uid"] == "${datasource}"
    assert body["templating"]["list"][0]["name"] == "datasource"
    assert comparable({**body, "id": 9, "version": 8, "tags": ["a", "sre-hash:abc"]}) == comparable(
        {**body, "tags": ["a"]})
    assert "id" not in comparable(body)["panels"][0]


def test_validation_reports_bad_queries_unknown_metrics_and_datasource_uids(tmp_path: Path) -> None:
    d = tmp_path / "dashboards" / "Team"
    d.mkdir(parents=True)
    dash = {"uid": "bad-one", "title": "Bad", "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": [
            {"title": "broken", "datasource": {"uid": "${datasource}"}, "targets": [{"refId": "A", "expr": "sum(rate(up[5m])"}]},
            {"title": "unknown", "datasource": {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"},
             "targets": [{"refId": "A", "expr": 'rate(made_up_metric_total{job="$job"}[$__rate_interval])'}]},
        ]}
    (d / "bad.json").write_text(json.dumps(dash))
    report = validate(load(tmp_path / "dashboards"))
    messages = {(p.where, p.message.split(":")[0]) for p in report.errors}
    assert ("panel 'broken' query A", "does not parse") in messages
    assert any("made_up_metric_total" in p.message for p in report.errors)
    assert any("hard-coded datasource uid 'P1809F7CD0C75ACF3'" in p.message for p in report.errors)


def test_metric_names_and_grafana_variables() -> None:
    expr = ('topk(10, histogram_quantile(0.99, sum by (route, le) (rate(x_bucket{a=~"$region"}[$__rate_interval])))) '
            '/ on (instance) group_left y_total or vector(0)')
    assert metric_names(expr) == {"x_bucket", "y_total"}
    assert substitute(expr).count("[5m]") == 1 and '"$region"' in substitute(expr)
    assert for_live('up{job="$job", ns=~"$ns"}') == 'up{job=~".*", ns=~".*"}'
    assert for_live('up{job!="$job"}') == 'up{job!~".*"}'


def test_service_metrics_come_from_the_code() -> None:
    names = service_metrics()
    assert {"sre_job_runs_total", "sre_job_duration_seconds_bucket", "sre_replication_lag_seconds"} <= names
    assert "sre_job_runs_total_total" not in names
    assert "http_request_duration_seconds_count" in EXPORTER_METRICS["nestjs prom-client"]


def test_alert_thresholds_are_read_from_simple_rules_only() -> None:
    assert AlertRule("A", "x > 64 * 1024 * 1024").threshold == (">", 67108864.0)
    assert AlertRule("B", "time() - y > 35 * 86400").threshold == (">", 3024000.0)
    assert AlertRule("C", "z < 0.5").threshold == ("<", 0.5)
    assert AlertRule("D", "a / b > 0.9 and b > 0").threshold is None
    assert AlertRule("E", "(sum(s) or vector(0)) < 1").threshold is None
    assert AlertRule("F", 'a{x="and"} == 0').threshold == ("==", 0.0)


def test_configmaps_for_the_grafana_sidecar_are_valid_kubernetes(tmp_path: Path) -> None:
    import kubernetes_validate

    files = render(load(), tmp_path, "configmap")
    assert len(files) == len(SHIPPED)
    for path in files:
        cm = yaml.safe_load(path.read_text())
        kubernetes_validate.validate(cm, "1.29", strict=True)
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"]
        (key, data), = cm["data"].items()
        assert MANAGED_TAG in json.loads(data)["tags"] and key.endswith(".json")


def test_provisioning_provider_names_each_folder(tmp_path: Path) -> None:
    files = render(load(), tmp_path, "provisioning")
    provider = yaml.safe_load((tmp_path / "provisioning" / "dashboards" / "sre.yaml").read_text())
    by_folder = {p.get("folder", "General"): p for p in provider["providers"]}
    assert by_folder["Platform - Databases"]["folderUid"] == "sre-platform-databases"
    for p in provider["providers"]:
        assert Path(p["options"]["path"]).is_dir() and p["type"] == "file"
    assert len([f for f in files if f.suffix == ".json"]) == len(SHIPPED)


def test_queries_include_variables(shipped: Any) -> None:
    where = {q.where for q in queries(shipped.by_uid()["rYdddlPWk"])}
    assert {"variable job", "variable nodename", "variable node"} <= where


def test_retry_after_is_honoured_up_to_the_cap_and_backoff_is_bounded() -> None:
    from urllib3 import HTTPResponse

    retry = RetryPolicy(base=0.5, cap=30).retry()
    assert retry.get_retry_after(HTTPResponse(headers={"Retry-After": "3"})) == 3.0
    assert retry.get_retry_after(HTTPResponse(headers={"Retry-After": "120"})) == 30.0
    assert retry.get_retry_after(HTTPResponse(headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0
    later = retry
    for _ in range(4):
        later = later.increment("GET", "/api/search", response=HTTPResponse(status=503))
    assert later.get_backoff_time() <= 30.0


@pytest.mark.parametrize(("method", "status", "retried"), [
    ("GET", 503, True), ("PUT", 502, True), ("DELETE", 504, True), ("GET", 429, True),
    ("POST", 429, True),  # refused before any work: safe to send again
    ("POST", 503, False), ("POST", 502, False),  # may have been done: never sent twice
    ("GET", 404, False),
])
def test_only_idempotent_requests_are_retried_and_a_post_only_on_429(method: str, status: int, retried: bool) -> None:
    assert RetryPolicy().retry().is_retry(method, status, has_retry_after=False) is retried


def test_sre_up_renders_for_file_provisioning_and_says_where(tmp_path: Path) -> None:
    from sre.config import SreConfig
    from sre.sandbox.steps import dashboards

    cfg = SreConfig.model_validate({"state": {"dir": str(tmp_path)}})
    lines = dashboards(None, cfg, None)
    provider = tmp_path / "grafana" / "provisioning" / "dashboards" / "sre.yaml"
    assert provider.is_file() and str(provider) in lines[1] and "GF_PATHS_PROVISIONING" in lines[1]
    assert lines[0].startswith(f"dashboards: {len(SHIPPED)} rendered")


def test_alerts_readme_decides_which_exporters_run(tmp_path: Path) -> None:
    from sre.provision.dashboards_validate import exporter_metrics

    names, source = exporter_metrics(tmp_path)
    assert source == "built-in exporter list" and "pg_up" in names
    (tmp_path / "README.md").write_text("Scraped: kube-state-metrics and node-exporter; the gateway exports "
                                        "`ws_connections_open`.\n")
    names, source = exporter_metrics(tmp_path)
    assert source == "alerts/README.md"
    assert {"ws_connections_open", "kube_pod_info", "node_load1"} <= names and "pg_up" not in names
