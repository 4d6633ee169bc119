"""Sloth prometheus/v1 and OpenSLO v1 SLO documents render to the rules their native spec gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sre.rules.loader import load_tree
from sre.rules.render import render_files

SLOTH = """version: "prometheus/v1"
service: "api"
labels:
  team: "platform"
slos:
  - name: "requests-availability"
    objective: 99.9
    description: "Requests answered without a server error"
    sli:
      events:
        error_query: sum(rate(http_request_duration_seconds_count{job="api",status_code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_request_duration_seconds_count{job="api"}[{{.window}}]))
    alerting:
      name: ApiHighErrorRate
      labels:
        category: "availability"
      page_alert:
        labels:
          severity: pageteam
      ticket_alert:
        disable: true
"""
NATIVE_OF_SLOTH = """service: api
labels: {team: platform}
slos:
  - name: requests-availability
    alert: ApiHighErrorRate
    objective: 99.9
    window: 30d
    description: Requests answered without a server error
    sli:
      bad: sum(rate(http_request_duration_seconds_count{job="api",status_code=~"5.."}[{{window}}]))
      total: sum(rate(http_request_duration_seconds_count{job="api"}[{{window}}]))
    alerting:
      page: {labels: {category: availability}}
      ticket: {enabled: false}
"""
OPENSLO = """apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-latency
  displayName: API latency
  labels: {team: platform}
spec:
  description: API requests answered within 500ms
  service: api
  indicator:
    metadata: {name: api-latency-sli}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_request_duration_seconds_bucket{job="api", le="0.5"}[{{.window}}]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_request_duration_seconds_count{job="api"}[{{.window}}]))
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: within 500ms
      target: 0.99
"""
NATIVE_OF_OPENSLO = """service: api
slos:
  - name: api-latency
    objective: 99
    window: 28d
    description: API requests answered within 500ms
    labels: {team: platform}
    sli:
      good: sum(rate(http_request_duration_seconds_bucket{job="api", le="0.5"}[{{window}}]))
      total: sum(rate(http_request_duration_seconds_count{job="api"}[{{window}}]))
"""


def groups(tmp_path: Path, name: str, text: str) -> list[dict[str, Any]]:
    root = tmp_path / name / "alerts"
    (root / "slos").mkdir(parents=True)
    (root / "slos" / "spec.yaml").write_text(text)
    tree = load_tree(root)
    assert tree.findings == []
    (rendered,) = render_files(tree, "https://rb")
    return list(rendered.data["groups"])


def test_a_sloth_spec_renders_as_its_native_twin(tmp_path: Path) -> None:
    sloth = groups(tmp_path, "sloth", SLOTH)
    assert sloth == groups(tmp_path, "native", NATIVE_OF_SLOTH)
    alerts = [r for g in sloth for r in g["rules"] if "alert" in r]
    assert [(a["alert"], a["labels"]["severity"], a["labels"]["category"]) for a in alerts] == [
        ("ApiHighErrorRateFastBurn", "page", "availability")]  # severity from config, ticket disabled


def test_an_openslo_document_renders_as_its_native_twin(tmp_path: Path) -> None:
    openslo = groups(tmp_path, "openslo", OPENSLO)
    assert openslo == groups(tmp_path, "native", NATIVE_OF_OPENSLO)
    assert 'ratio_rate1h{slo="api-latency"} > 0.1344' in openslo[0]["rules"][-2]["expr"]  # 28d: 13.44x


def test_what_cannot_move_over_is_named(tmp_path: Path) -> None:
    root = tmp_path / "alerts"
    (root / "slos").mkdir(parents=True)
    (root / "slos" / "raw.yaml").write_text(SLOTH.replace(
        "      events:\n        error_query", "      raw:\n        error_ratio_query").replace(
        "        total_query: sum(rate(http_request_duration_seconds_count{job=\"api\"}[{{.window}}]))\n", ""))
    (root / "slos" / "calendar.yaml").write_text(OPENSLO.replace("isRolling: true", "isRolling: false"))
    (root / "slos" / "week.yaml").write_text(OPENSLO.replace("duration: 28d", "duration: 7d"))
    messages = sorted(f"{Path(f.file).name}: {f.message}" for f in load_tree(root).findings)
    assert len(messages) == 3, messages
    assert "calendar.yaml: document 1: spec.timeWindow: only rolling windows" in messages[0]
    assert "raw.yaml: slos[0].sli: only `events`" in messages[1]
    assert "week.yaml: slos[0] (api-latency): window 7d is shorter than 28d" in messages[2]


def test_an_openslo_week_names_its_alert_windows_in_an_annotation(tmp_path: Path) -> None:
    week = OPENSLO.replace("duration: 28d", "duration: 7d").replace(
        "  labels: {team: platform}", "  labels: {team: platform}\n  annotations: {sre/alert-windows: sloth-7d}")
    root = tmp_path / "alerts"
    (root / "slos" / "windows").mkdir(parents=True)
    (root / "slos" / "week.yaml").write_text(week)
    (root / "slos" / "windows" / "sloth-7d.yaml").write_text(
        (Path(__file__).parents[2] / "alerts" / "slos" / "windows" / "sloth-7d.yaml").read_text())
    tree = load_tree(root)
    assert tree.findings == []
    (slo,) = tree.slo_specs
    assert [str(f) for ba in slo.burn_alerts() for _, _, f in ba.pairs] == ["13.44", "3.5", "1.4", "0.98"]
