"""Burn alerts from budget shares for any SLO window, and the promtool tests generated from them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sre.rules import promtool
from sre.rules.loader import load_tree
from sre.rules.render import render_files
from sre.rules.testing import run_tests, write_generated
from sre.rules.unittests import parse_test_output

SLI = """    sli:
      bad: sum(rate(http_request_duration_seconds_count{job="api", status_code=~"5.."}[{{window}}]))
      total: sum(rate(http_request_duration_seconds_count{job="api"}[{{window}}]))
"""
SLOTH_7D = """apiVersion: sloth.slok.dev/v1
kind: AlertWindows
spec:
  sloPeriod: 7d
  page:
    quick: {errorBudgetPercent: 8, shortWindow: 5m, longWindow: 1h}
    slow: {errorBudgetPercent: 12.5, shortWindow: 30m, longWindow: 6h}
  ticket:
    quick: {errorBudgetPercent: 20, shortWindow: 2h, longWindow: 1d}
    slow: {errorBudgetPercent: 42, shortWindow: 6h, longWindow: 3d}
"""


def spec(name: str, window: str, extra: str = "") -> str:
    return (f"service: api\nslos:\n  - name: {name}\n    objective: 99.9\n    window: {window}\n{SLI}{extra}")


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "alerts"
    for rel, text in files.items():
        (root / "slos" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "slos" / rel).write_text(text)
    return root


def thresholds(root: Path, alert: str) -> list[str]:
    (rule,) = [r for r in load_tree(root).alerts() if r.name == alert]
    return re.findall(r"ratio_rate\w+\{[^}]*\} > ([0-9.]+)\n  and", rule.expr)


def factors(root: Path, slo: str) -> list[str]:
    (spec_,) = [s for s in load_tree(root).slo_specs if s.name == slo]
    return [str(f) for ba in spec_.burn_alerts() for _, _, f in ba.pairs]


def test_30d_and_28d_windows_get_the_workbook_shares(tmp_path: Path) -> None:
    root = tree(tmp_path, {"a.yaml": spec("month", "30d"), "b.yaml": spec("four-weeks", "28d")})
    assert load_tree(root).findings == []
    assert factors(root, "month") == ["14.4", "6", "3", "1"]
    assert factors(root, "four-weeks") == ["13.44", "5.6", "2.8", "0.9333"]
    assert thresholds(root, "MonthFastBurn") == ["0.0144", "0.006"]
    assert thresholds(root, "FourWeeksFastBurn") == ["0.01344", "0.0056"]
    assert thresholds(root, "FourWeeksSlowBurn") == ["0.0028", "0.0009333"]


def test_a_7d_window_without_shares_is_refused_saying_why(tmp_path: Path) -> None:
    root = tree(tmp_path, {"a.yaml": spec("week", "7d")})
    (finding,) = load_tree(root).findings
    assert finding.check == "slo-spec" and finding.file.endswith("slos/a.yaml")
    assert "window 7d is shorter than 28d" in finding.message
    assert "3.36/1.4/0.7/0.2333" in finding.message and "alerting.preset" in finding.message


def test_a_7d_window_with_sloths_example_windows(tmp_path: Path) -> None:
    root = tree(tmp_path, {"windows/7d.yaml": SLOTH_7D,
                           "a.yaml": spec("week", "7d", "    alerting: {preset: 7d}\n")})
    assert load_tree(root).findings == []
    assert factors(root, "week") == ["13.44", "3.5", "1.4", "0.98"]
    assert thresholds(root, "WeekSlowBurn") == ["0.0014", "0.00098"]


def test_inline_shares_toggles_and_a_preset_for_another_window(tmp_path: Path) -> None:
    inline = ("    alerting:\n      windows:\n        page: [{budget_percent: 5, long: 2h, short: 10m}]\n"
              "        ticket: [{budget_percent: 10, long: 1d, short: 2h}]\n      ticket: {enabled: false}\n"
              "      page: {for: 5m}\n")
    root = tree(tmp_path, {"windows/7d.yaml": SLOTH_7D, "a.yaml": spec("custom", "30d", inline),
                           "b.yaml": spec("wrong", "30d", "    alerting: {preset: 7d}\n"),
                           "c.yaml": spec("unknown", "14d", "    alerting: {preset: fortnight}\n")})
    loaded = load_tree(root)
    assert sorted(r.name for r in loaded.alerts()) == ["CustomFastBurn"]
    (rule,) = loaded.alerts()
    assert rule.for_ == "5m" and "ratio_rate2h" in rule.expr and "> 0.018\n" in rule.expr  # 5% x 30d / 2h = 18
    messages = sorted(f.message for f in loaded.findings)
    assert "is made for a 7d SLO window, this SLO's window is 30d" in messages[1]
    assert "no preset 'fortnight' (known: 7d, workbook" in messages[0]


@pytest.fixture(scope="module")
def budget_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("budget")
    return tree(tmp_path, {"windows/7d.yaml": SLOTH_7D, "a.yaml": spec("month", "30d"),
                           "b.yaml": spec("four-weeks", "28d"),
                           "c.yaml": spec("week", "7d", "    alerting: {preset: 7d}\n")})


@pytest.mark.slow
def test_generated_tests_pass_for_30d_28d_and_7d(budget_tree: Path) -> None:
    report = run_tests(budget_tree, "https://rb")
    assert report.ok, report.to_dict()
    assert sorted(f.file for f in report.files) == [f"generated/{slo}/{kind}" for slo in ("four-weeks", "month", "week")
                                                    for kind in ("page-1h", "page-6h", "ticket-1d", "ticket-3d")]
    assert report.cases == 3 * 2 * 2 * 2  # SLOs x alerts x pairs x (quiet, fires)


def _break(data: dict[str, Any], alert: str, old: str, new: str) -> None:
    for group in data["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                assert old in rule["expr"]
                rule["expr"] = rule["expr"].replace(old, new)


@pytest.mark.slow
def test_a_wrong_factor_fails_a_generated_test(budget_tree: Path, tmp_path: Path) -> None:
    loaded = load_tree(budget_tree)
    rendered = [f for f in render_files(loaded, "https://rb") if f.source == "slos/a.yaml"]
    _break(rendered[0].data, "MonthFastBurn", "> 0.0144", "> 0.016")  # a 16x factor: a late page
    _break(rendered[0].data, "MonthSlowBurn", "> 0.001", "> 0.0009")  # 0.9x: a ticket on a sustainable burn
    files, findings = write_generated(loaded, rendered, tmp_path)
    assert findings == []
    _, out, err = promtool.start(["test", "rules", *[str(p) for p in files]]).wait()
    results = {r.file: r for r in parse_test_output(out, err, files)}
    # the 3d threshold at 0.9x also makes the 1d pair's quiet case fire (through the 3d clause)
    assert sorted(name for name, r in results.items() if not r.ok) == [
        "generated/month/page-1h", "generated/month/ticket-1d", "generated/month/ticket-3d"]
    assert "MonthFastBurn" in results["generated/month/page-1h"].output
    assert "MonthSlowBurn" in results["generated/month/ticket-3d"].output
