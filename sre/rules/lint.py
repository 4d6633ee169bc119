"""The rule checks of `sre alerts lint` that promtool cannot make (`sre.lint` runs them all):

- labels           a `severity` label of page, ticket or info on every alert
- annotations      `summary` and `description` on every alert; `runbook_url` only from config
- for              every paging alert waits (`for:`) before it pages
- duplicate        an alert name defined twice
- never-matches    a selector no series can satisfy (contradicting matchers, `le` off a bucket,
                   a histogram's bare name, the service's metrics under a job other than its own)
- tests            each alert has a promtool test where it fires and one where it does not
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Set

from sre.rules.promql import PromQLSyntaxError, Selector, selectors_many
from sre.rules.tree import SEVERITIES, Finding, Rule, runbook_url
from sre.rules.unittests import Suite

SERVICE_JOB = "sre"  # the scrape job of this service; its metrics' own `job` label becomes exported_job
REQUIRED_ANNOTATIONS = ("summary", "description")


# ---------------------------------------------------------------- rule checks


def check_rule_fields(rule: Rule, base_url: str) -> list[Finding]:
    out: list[Finding] = []
    if rule.kind != "alert":
        return out

    def finding(check: str, msg: str) -> None:
        out.append(Finding(check, rule.file, msg, rule.group, rule.name))

    sev = rule.severity
    if sev is None:
        finding("labels", f"no severity label (give one of {', '.join(SEVERITIES)})")
    elif sev not in SEVERITIES:
        finding("labels", f"severity {sev!r} is not one of {', '.join(SEVERITIES)}")
    ann = rule.annotations
    for key in REQUIRED_ANNOTATIONS:
        if not ann.get(key, "").strip():
            finding("annotations", f"no {key} annotation")
    if "runbook_url" in ann and ann["runbook_url"] != runbook_url(base_url, rule.name):
        finding("annotations", "runbook_url is added from config alerts.runbook_base_url: remove it here")
    if sev == "page" and rule.for_ is None:
        finding("for", "a paging alert needs `for:` (how long the condition holds before it pages)")
    return out


def _fullmatch(pattern: str, value: str) -> bool | None:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return None  # RE2 syntax Python lacks: promtool judges the regex itself


def never_matches(sel: Selector, histograms: set[str]) -> str | None:
    """Why no series can ever satisfy `sel`, or None."""
    labels = [m.label for m in sel.matchers]
    if sel.name:
        labels.append("__name__")
    if len(set(labels)) != len(labels):  # two matchers on one label: can they both hold?
        by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
        if sel.name:
            by_label["__name__"].append(("=", sel.name))
        for m in sel.matchers:
            by_label[m.label].append((m.op, m.value))
        for label, ms in by_label.items():
            eq = sorted({v for op, v in ms if op == "="})
            if len(eq) > 1:
                return f"{label} cannot equal both {eq[0]!r} and {eq[1]!r}"
            if not eq:
                continue
            value = eq[0]
            for op, v in ms:
                if op == "!=" and v == value:
                    return f"{label} cannot both equal and differ from {value!r}"
                if op == "=~" and _fullmatch(v, value) is False:
                    return f"{label}={value!r} never matches the regex {v!r}"
                if op == "!~" and _fullmatch(v, value) is True:
                    return f"{label}={value!r} is excluded by !~{v!r}"
    name = sel.metric()
    if name is None:
        return None
    if name in histograms:
        return f"{name} is a histogram: its series are {name}_bucket, {name}_sum and {name}_count"
    for m in sel.matchers:
        if m.label == "le" and m.op in ("=", "=~") and m.value and not name.endswith("_bucket"):
            return f"only histogram _bucket series carry an le label, not {name}"
        if m.label == "job" and m.op == "=" and m.value != SERVICE_JOB and name.startswith("sre_"):
            return (f"the service's metrics are scraped as job={SERVICE_JOB!r}; their own job label is "
                    f"exported_job (use exported_job={m.value!r})")
    return None


def check_selectors(rules: list[Rule]) -> list[Finding]:
    parsed: list[tuple[Rule, list[Selector]]] = []
    out: list[Finding] = []
    for rule, found in zip(rules, selectors_many([r.expr for r in rules]), strict=True):
        if isinstance(found, PromQLSyntaxError):
            # promtool reports it too, in its own words; this one says where
            out.append(Finding("promql", rule.file, f"expr: {found}", rule.group, rule.name))
            continue
        parsed.append((rule, found))
    histograms = {s.name[: -len("_bucket")] for _, sels in parsed for s in sels
                  if s.name and s.name.endswith("_bucket")}
    for rule, sels in parsed:
        for sel in sels:
            why = never_matches(sel, histograms)
            if why:
                out.append(Finding("never-matches", rule.file, f"{sel.promql()} can never match: {why}",
                                   rule.group, rule.name))
    return out


def check_duplicates(rules: list[Rule]) -> list[Finding]:
    seen: dict[str, Rule] = {}
    out = []
    for rule in rules:
        if rule.kind != "alert":
            continue
        first = seen.setdefault(rule.name, rule)
        if first is not rule:
            out.append(Finding("duplicate", rule.file, f"alert {rule.name} is also defined in {first.file} "
                                                       f'(group "{first.group}"): alert names must be unique',
                               rule.group, rule.name))
    return out


def check_tests(alerts: dict[str, Rule], suite: Suite, *, covered: Set[str] = frozenset()) -> list[Finding]:
    """Every alert fires in a test and stays quiet in another (`covered`: by generated tests)."""
    out = list(suite.findings)
    cov = suite.coverage()
    for name, rule in alerts.items():
        fires, quiet = (True, True) if name in covered else cov.get(name, (False, False))
        if not fires:
            out.append(Finding("tests", rule.file, "no promtool test where it fires (alerts/tests/)", rule.group,
                               name))
        if not quiet:
            out.append(Finding("tests", rule.file, "no promtool test where it stays quiet (alerts/tests/)",
                               rule.group, name))
    for case in suite.cases:
        if case.alertname not in alerts:
            out.append(Finding("tests", case.file, f"tests[{case.test}]: alert {case.alertname} does not exist"))
    return out
