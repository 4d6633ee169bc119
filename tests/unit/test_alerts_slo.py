"""SLO specs render to the workbook's multi-window, multi-burn-rate rules, byte for byte the same."""

from __future__ import annotations

from pathlib import Path

import yaml

from sre.rules.loader import load_tree
from sre.rules.render import render_files
from tests.cli import sre

ROOT = Path(__file__).parents[2]

SPEC = """
service: api
labels: {team: platform}
slos:
  - name: api-availability
    description: Requests without a 5xx
    objective: 99.9
    sli:
      bad: sum(rate(http_request_duration_seconds_count{job="api", status_code=~"5.."}[{{window}}]))
      total: sum(rate(http_request_duration_seconds_count{job="api"}[{{window}}]))
"""


def _tree(tmp_path: Path, spec: str = SPEC) -> Path:
    (tmp_path / "alerts" / "slos").mkdir(parents=True)
    (tmp_path / "alerts" / "slos" / "api.yaml").write_text(spec)
    return tmp_path / "alerts"


def test_recording_rules_per_window_and_the_four_burn_rate_pairs(tmp_path: Path) -> None:
    tree = load_tree(_tree(tmp_path))
    assert tree.findings == []
    (f,) = render_files(tree, "https://rb")
    (group,) = f.data["groups"]
    assert group["name"] == "slo-api-availability"
    records = [r for r in group["rules"] if "record" in r]
    windows = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
    assert [r["record"] for r in records][: len(windows)] == [f"slo:sli_error:ratio_rate{w}" for w in windows]
    assert records[0]["expr"] == ('(sum(rate(http_request_duration_seconds_count{job="api", status_code=~"5.."}[5m])))'
                                  ' / ((sum(rate(http_request_duration_seconds_count{job="api"}[5m]))) > 0)')
    # the SLO window is the mean of the 5m ratio, never a raw rate over 30 days of the source series
    assert records[7]["expr"] == ('sum_over_time(slo:sli_error:ratio_rate5m{slo="api-availability"}[30d])\n'
                                  '/ count_over_time(slo:sli_error:ratio_rate5m{slo="api-availability"}[30d])')
    assert records[0]["labels"] == {"team": "platform", "service": "api", "slo": "api-availability"}
    fast, slow = (r for r in group["rules"] if "alert" in r)
    assert (fast["alert"], fast["labels"]["severity"], slow["alert"], slow["labels"]["severity"]) == (
        "ApiAvailabilityFastBurn", "page", "ApiAvailabilitySlowBurn", "ticket")
    # thresholds: factor x (1 - 0.999), written exactly
    for clause in ('ratio_rate1h{slo="api-availability"} > 0.0144', 'ratio_rate5m{slo="api-availability"} > 0.0144',
                   'ratio_rate6h{slo="api-availability"} > 0.006', 'ratio_rate30m{slo="api-availability"} > 0.006'):
        assert clause in fast["expr"]
    for clause in ('ratio_rate1d{slo="api-availability"} > 0.003', 'ratio_rate2h{slo="api-availability"} > 0.003',
                   'ratio_rate3d{slo="api-availability"} > 0.001', 'ratio_rate6h{slo="api-availability"} > 0.001'):
        assert clause in slow["expr"]
    assert fast["annotations"]["runbook_url"] == "https://rb/ApiAvailabilityFastBurn.md"


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    a = sre("alerts", "render", "--alerts-dir", str(ROOT / "alerts"), "--out", str(tmp_path / "a"))
    b = sre("alerts", "render", "--alerts-dir", str(ROOT / "alerts"), "--out", str(tmp_path / "b"))
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert "slos-api.yaml" in names and "slos-websocket.yaml" in names
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()
    stdout = sre("alerts", "render", "--alerts-dir", str(ROOT / "alerts"))
    assert stdout.stdout == "---\n".join((tmp_path / "a" / n).read_text() for n in names)


def test_a_bad_spec_names_the_file_and_the_key(tmp_path: Path) -> None:
    spec = SPEC.replace("objective: 99.9", "objective: 99.9\n    window: 30 days").replace(
        "total: sum(rate(http_request_duration_seconds_count{job=\"api\"}[{{window}}]))",
        "total: sum(rate(http_request_duration_seconds_count{job=\"api\"}[5m]))")
    tree = load_tree(_tree(tmp_path, spec))
    problems = sorted(f.message for f in tree.findings)
    assert all(f.check == "slo-spec" and f.file.endswith("alerts/slos/api.yaml") for f in tree.findings)
    assert any(p.startswith("slos[0].window:") for p in problems), problems
    assert any(p.startswith("slos[0].sli:") and "[{{window}}]" in p for p in problems), problems


def test_shipped_slos_cover_api_availability_latency_and_websocket_delivery() -> None:
    tree = load_tree(ROOT / "alerts")
    assert sorted(s.name for s in tree.slo_specs) == ["api-availability", "api-latency", "websocket-delivery"]
    docs = {f.name: yaml.safe_load(f.text()) for f in render_files(tree, "https://rb") if f.name.startswith("slos-")}
    alerts = sorted(r["alert"] for d in docs.values() for g in d["groups"] for r in g["rules"] if "alert" in r)
    assert alerts == ["ApiAvailabilityFastBurn", "ApiAvailabilitySlowBurn", "ApiLatencyFastBurn",
                      "ApiLatencySlowBurn", "WebsocketDeliveryFastBurn", "WebsocketDeliverySlowBurn"]
