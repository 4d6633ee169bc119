"""`sre alerts lint --live`: ask a Prometheus whether each rule's selectors have series (like pint).

Every distinct selector is looked up once (`/api/v1/series` over the lookback window). For one
that finds nothing, the finding says why: the metric has no series at all, or it has series
but one of the label matchers matches none of them. Selectors of metrics that rules in the
tree record themselves are skipped (their inputs are checked instead), and so are those inside
absent(), which exist to match nothing.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sre.rules.promql import PromQLSyntaxError, Selector, selectors
from sre.rules.tree import Finding, Rule

if TYPE_CHECKING:
    from sre.adapters.prometheus import PrometheusClient

BUILTIN = frozenset({"ALERTS", "ALERTS_FOR_STATE"})


def _explain(prom: PrometheusClient, sel: Selector, start: float, end: float) -> str:
    name = sel.metric()
    if name is None:
        return f"no series match {sel.promql()}"
    if not prom.series([name], start=start, end=end):
        return f"metric {name} has no series"
    culprits = []
    for m in sel.matchers:
        if m.label == "__name__":
            continue
        if not prom.series([f'{name}{{{m}}}'], start=start, end=end):
            if m.op in ("=", "=~") and m.value and not prom.series([f'{name}{{{m.label}!=""}}'], start=start, end=end):
                culprits.append(f"label {m.label} is never set on {name}")
            else:
                culprits.append(f"no series of {name} has {m}")
    return "; ".join(culprits) or f"no series match {sel.promql()} (each matcher alone does)"


def expected_absence(selector: str, absent: dict[str, str]) -> str | None:
    """The reason `selector` (as lint prints it) is known to have no series here, if it is listed."""
    for pattern, reason in absent.items():
        if re.fullmatch(pattern, selector):
            return reason
    return None


def live_findings(rules: list[Rule], prom: PrometheusClient, *, lookback: float = 3600.0,
                  workers: int = 4, absent: dict[str, str] | None = None,
                  expected: list[Finding] | None = None) -> list[Finding]:
    """Findings for selectors without series. Those matching a pattern of `absent` (the config's
    alerts.live_absent) are not findings: they go to `expected`, with the listed reason."""
    recorded = {r.name for r in rules if r.kind == "record"}
    by_selector: dict[str, tuple[Selector, list[Rule]]] = {}
    for rule in rules:
        try:
            sels = selectors(rule.expr)
        except PromQLSyntaxError:
            continue
        for sel in sels:
            if sel.in_absent or sel.metric() in recorded or sel.metric() in BUILTIN:
                continue
            key = sel.promql()
            by_selector.setdefault(key, (sel, []))[1].append(rule)
    end = time.time()
    start = end - lookback

    def probe(key: str) -> tuple[str, str | None]:
        sel, _ = by_selector[key]
        if prom.series([key], start=start, end=end):
            return key, None
        return key, _explain(prom, sel, start, end)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(probe, sorted(by_selector)))
    out = []
    for key, why in results:
        if why is None:
            continue
        reason = expected_absence(key, absent or {})
        for rule in by_selector[key][1]:
            if reason is None:
                out.append(Finding("live", rule.file, f"{key}: {why}", rule.group, rule.name))
            elif expected is not None:
                expected.append(Finding("live-absent", rule.file, f"{key}: {why} (listed: {reason})",
                                        rule.group, rule.name))
    return out
